//! `S3GatewayService`: the S3 gateway as a supervised service.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;

use anyhow::{Context, bail};
use s3::metrics::GatewayMetrics;
use vault::Engine;

use super::{check_tcp, start_listener};
use crate::config::{Config, GatewayConfig, TlsConfig};
use crate::supervisor::{BoxFuture, Running, Service};

/// The S3 gateway over one engine; its counters outlive restarts.
pub struct GatewayService {
    engine: Arc<Engine>,
    metrics: Arc<GatewayMetrics>,
}

impl GatewayService {
    /// The gateway over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            metrics: Arc::new(GatewayMetrics::default()),
        }
    }

    /// The gateway's counters, for the admin listener.
    pub fn metrics(&self) -> Arc<GatewayMetrics> {
        Arc::clone(&self.metrics)
    }
}

impl Service for GatewayService {
    fn name(&self) -> &'static str {
        "S3GatewayService"
    }

    fn enabled(&self, config: &Config) -> bool {
        config.s3_gateway.enabled
    }

    fn section(&self, config: &Config) -> serde_json::Value {
        // Buckets created over S3 follow `fuse.mount_new_vaults` too.
        serde_json::json!({
            "s3_gateway": config.s3_gateway,
            "mount_new_vaults": config.fuse.mount_new_vaults,
        })
    }

    fn start<'a>(&'a self, config: &'a Config) -> BoxFuture<'a, anyhow::Result<Running>> {
        Box::pin(async move {
            let mount_new_vaults = config.fuse.mount_new_vaults;
            let config = &config.s3_gateway;
            let tls = config.tls.as_ref().map(load_tls).transpose()?;
            let scheme = if tls.is_some() { "https" } else { "http" };
            let gateway = Arc::new(s3::Gateway {
                engine: Arc::clone(&self.engine),
                config: gateway_settings(config, mount_new_vaults, tls),
                metrics: Arc::clone(&self.metrics),
            });
            let keys = "s3_gateway.host / s3_gateway.port";
            let running = start_listener(
                &config.host,
                config.port,
                keys,
                |listener, shutdown| async move {
                    s3::serve(listener, gateway, shutdown)
                        .await
                        .context("S3 gateway stopped serving")
                },
            )
            .await?;
            tracing::info!(listen = ?running.listen, scheme, "S3 gateway listening");
            Ok(running)
        })
    }

    fn check<'a>(&'a self, listen: Option<&'a str>) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(check_tcp(listen))
    }

    fn counters(&self) -> (u64, u64) {
        self.metrics.totals()
    }
}

fn load_tls(tls: &TlsConfig) -> anyhow::Result<s3::TlsConfig> {
    let cert = std::fs::read(&tls.cert)
        .with_context(|| format!("s3_gateway.tls.cert: read {}", tls.cert.display()))?;
    let key_file = tls.key.display();
    let mode = std::fs::metadata(&tls.key)
        .with_context(|| format!("s3_gateway.tls.key: read {key_file}"))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "s3_gateway.tls.key: {key_file} is open to group or others (mode {:o}); \
             restrict it with `chmod 600`",
            mode & 0o7777
        );
    }
    let key =
        std::fs::read(&tls.key).with_context(|| format!("s3_gateway.tls.key: read {key_file}"))?;
    s3::TlsConfig::from_pem(&cert, key).map_err(|err| {
        let which = match err {
            s3::tls::TlsError::InvalidCertificate(_) | s3::tls::TlsError::NoCertificate => {
                format!("s3_gateway.tls.cert: {}", tls.cert.display())
            }
            s3::tls::TlsError::InvalidKey(_) => format!("s3_gateway.tls.key: {key_file}"),
            s3::tls::TlsError::Rejected(_) => {
                format!("s3_gateway.tls: {} with {key_file}", tls.cert.display())
            }
        };
        anyhow::Error::new(err).context(which)
    })
}

fn gateway_settings(
    config: &GatewayConfig,
    mount_new_vaults: bool,
    tls: Option<s3::TlsConfig>,
) -> s3::GatewayConfig {
    s3::GatewayConfig {
        max_connections: config.max_connections,
        max_body_size: config.max_body_size_mb.saturating_mul(1024 * 1024),
        require_sigv4: config.require_sigv4,
        addressing: s3::Addressing {
            path_style: config.allow_path_style,
            virtual_hosted_style: config.allow_virtual_hosted_style,
            base_domains: config
                .base_domains
                .iter()
                .map(|domain| domain.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
        },
        region: "us-east-1".to_owned(),
        default_bucket_mode: config.default_bucket_mode.as_str().to_owned(),
        default_api_exclusive: config.default_api_exclusive,
        mount_new_vaults,
        min_part_size: config
            .multipart
            .min_part_size_mb
            .saturating_mul(1024 * 1024),
        tls,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn refusal(tls: &TlsConfig) -> String {
        format!("{:#}", load_tls(tls).unwrap_err())
    }

    #[test]
    fn tls_files_are_refused_with_the_key_that_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let tls = TlsConfig {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        let err = refusal(&tls);
        assert!(err.starts_with("s3_gateway.tls.cert: read "), "{err}");

        write(&tls.cert, "not a certificate", 0o644);
        write(&tls.key, "not a key", 0o640);
        let err = refusal(&tls);
        assert!(
            err.starts_with("s3_gateway.tls.key: ") && err.contains("chmod 600"),
            "{err}"
        );

        std::fs::set_permissions(&tls.key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = refusal(&tls);
        assert!(err.starts_with("s3_gateway.tls.cert: "), "{err}");
        assert!(err.contains("no PEM certificate"), "{err}");
    }
}
