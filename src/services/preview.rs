//! `HttpPreviewService`: the preview server (see [`crate::preview`]) as a supervised service.

use std::sync::Arc;

use anyhow::Context;
use vault::Engine;

use super::{check_tcp, start_listener};
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
            let settings = crate::preview::PreviewConfig {
                max_source_bytes: preview.max_source_mb.saturating_mul(1024 * 1024),
                ..crate::preview::PreviewConfig::default()
            };
            let engine = Arc::clone(&self.engine);
            let running = start_listener(
                &preview.host,
                preview.port,
                "preview.host / preview.port",
                |listener, shutdown| async move {
                    crate::preview::serve(listener, engine, settings, shutdown)
                        .await
                        .context("preview server stopped serving")
                },
            )
            .await?;
            tracing::info!(listen = ?running.listen, "HTTP preview server listening");
            Ok(running)
        })
    }

    fn check<'a>(&'a self, listen: Option<&'a str>) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(check_tcp(listen))
    }
}
