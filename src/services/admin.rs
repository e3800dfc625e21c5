//! `AdminService`: the admin listener, loopback by default. `GET /metrics` answers the node's
//! counters in the Prometheus text format; `GET /health` answers `200` when every enabled
//! service runs (or idles) and `503` with the failing ones otherwise.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock, Weak};

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use s3::metrics::GatewayMetrics;
use vh_cli::protocol::ServiceStatus;

use super::{check_tcp, start_listener};
use crate::config::Config;
use crate::supervisor::{BoxFuture, Running, Service, Supervisor};

/// What the admin listener reports on.
#[derive(Clone)]
struct Sources {
    supervisor: Arc<OnceLock<Weak<Supervisor>>>,
    gateway: Arc<GatewayMetrics>,
}

/// The admin listener.
pub struct AdminService {
    sources: Sources,
}

impl AdminService {
    /// An admin listener reporting the gateway's counters; [`AdminService::supervisor_slot`]
    /// must be filled once the supervisor exists.
    pub fn new(gateway: Arc<GatewayMetrics>) -> Self {
        Self {
            sources: Sources {
                supervisor: Arc::new(OnceLock::new()),
                gateway,
            },
        }
    }

    /// Where the supervisor is put once built (it owns this service, so it comes later).
    pub fn supervisor_slot(&self) -> Arc<OnceLock<Weak<Supervisor>>> {
        Arc::clone(&self.sources.supervisor)
    }
}

/// Whether a service counts as healthy: running, idle, or switched off by the config.
pub fn is_healthy(service: &ServiceStatus) -> bool {
    !service.enabled || matches!(service.state.as_str(), "running" | "idle")
}

async fn services(sources: &Sources) -> Vec<ServiceStatus> {
    match sources.supervisor.get().and_then(Weak::upgrade) {
        Some(supervisor) => supervisor.status().await,
        None => Vec::new(),
    }
}

async fn health(State(sources): State<Sources>) -> Response {
    let services = services(&sources).await;
    let failing: Vec<&str> = services
        .iter()
        .filter(|s| !is_healthy(s))
        .map(|s| s.name.as_str())
        .collect();
    if failing.is_empty() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {}\n", failing.join(", ")),
        )
            .into_response()
    }
}

async fn metrics(State(sources): State<Sources>) -> Response {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP vaulthalla_service_up Whether a service runs (1) or not (0).\n# TYPE vaulthalla_service_up gauge"
    );
    let services = services(&sources).await;
    for service in &services {
        let up = u8::from(matches!(service.state.as_str(), "running" | "idle"));
        let _ = writeln!(
            out,
            "vaulthalla_service_up{{service=\"{}\",state=\"{}\"}} {up}",
            service.name, service.state
        );
    }
    let _ = writeln!(
        out,
        "# HELP vaulthalla_service_restarts_total Restarts by the watchdog.\n# TYPE vaulthalla_service_restarts_total counter"
    );
    for service in &services {
        let _ = writeln!(
            out,
            "vaulthalla_service_restarts_total{{service=\"{}\"}} {}",
            service.name, service.restarts
        );
    }
    sources.gateway.render(&mut out);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}

impl Service for AdminService {
    fn name(&self) -> &'static str {
        "AdminService"
    }

    fn enabled(&self, config: &Config) -> bool {
        config.admin.enabled
    }

    fn section(&self, config: &Config) -> serde_json::Value {
        serde_json::to_value(&config.admin).unwrap_or_default()
    }

    fn start<'a>(&'a self, config: &'a Config) -> BoxFuture<'a, anyhow::Result<Running>> {
        Box::pin(async move {
            let app = axum::Router::new()
                .route("/health", axum::routing::get(health))
                .route("/metrics", axum::routing::get(metrics))
                .with_state(self.sources.clone());
            let admin = &config.admin;
            let running = start_listener(
                &admin.host,
                admin.port,
                "admin.host / admin.port",
                |listener, shutdown| async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                        .context("admin listener stopped serving")
                },
            )
            .await?;
            tracing::info!(listen = ?running.listen, "admin listener serving /metrics and /health");
            Ok(running)
        })
    }

    fn check<'a>(&'a self, listen: Option<&'a str>) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(check_tcp(listen))
    }
}
