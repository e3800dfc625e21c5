//! `HttpPreviewService`: the preview server (see [`crate::preview`]) as a supervised service.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::oneshot;
use vault::Engine;

use super::{check_tcp, socket_address};
use crate::config::Config;
use crate::supervisor::{BoxFuture, Running, Service};

/// The preview server over one engine.
pub struct PreviewService {
    engine: Arc<Engine>,
}

impl PreviewService {
    /// The preview server over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

impl Service for PreviewService {
    fn name(&self) -> &'static str {
        "HttpPreviewService"
    }

    fn enabled(&self, config: &Config) -> bool {
        config.preview.enabled
    }

    fn section(&self, config: &Config) -> serde_json::Value {
        serde_json::to_value(&config.preview).unwrap_or_default()
    }

    fn start<'a>(&'a self, config: &'a Config) -> BoxFuture<'a, anyhow::Result<Running>> {
        Box::pin(async move {
            let preview = &config.preview;
            let bind_addr = socket_address(&preview.host, preview.port);
            let listener = tokio::net::TcpListener::bind(&bind_addr)
                .await
                .with_context(|| format!("listen on {bind_addr} (preview.host / preview.port)"))?;
            let settings = crate::preview::PreviewConfig {
                max_source_bytes: preview.max_source_mb.saturating_mul(1024 * 1024),
                ..crate::preview::PreviewConfig::default()
            };
            let engine = Arc::clone(&self.engine);
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                crate::preview::serve(listener, engine, settings, async {
                    let _ = stopped.await;
                })
                .await
                .context("preview server stopped serving")
            });
            tracing::info!(listen = %bind_addr, "HTTP preview server listening");
            Ok(Running {
                task,
                stop,
                listen: Some(bind_addr),
            })
        })
    }

    fn check<'a>(&'a self, listen: Option<&'a str>) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(check_tcp(listen))
    }
}
