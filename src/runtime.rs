//! The runtime manager: the node's services by name, each started, stopped and restarted on
//! its own, each reporting its state.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vault::Engine;
use vh_cli::protocol::ServiceStatus;

use crate::config::{GatewayConfig, TlsConfig};

/// The S3 gateway service's name.
pub const S3_GATEWAY_SERVICE: &str = "S3GatewayService";

/// What a service is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceState {
    /// Serving.
    Running,
    /// Not started, because the config disables it.
    Disabled,
    /// Stopped, or never started.
    Stopped,
    /// Failed to start or died.
    Failed,
}

impl ServiceState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Disabled => "disabled",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

struct Slot {
    state: ServiceState,
    enabled: bool,
    listen: Option<String>,
    started_at: Option<SystemTime>,
    restarts: u32,
    error: Option<String>,
    running: Option<Running>,
}

impl Slot {
    fn new() -> Self {
        Self {
            state: ServiceState::Stopped,
            enabled: false,
            listen: None,
            started_at: None,
            restarts: 0,
            error: None,
            running: None,
        }
    }
}

/// The S3 gateway as a service of the node.
pub struct GatewayService {
    engine: Arc<Engine>,
    slot: Arc<Mutex<Slot>>,
    starts: Mutex<u32>,
}

impl GatewayService {
    /// A stopped gateway over `engine`.
    #[must_use]
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            slot: Arc::new(Mutex::new(Slot::new())),
            starts: Mutex::new(0),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Brings the service in line with `config`: stops it, then starts it again when enabled.
    ///
    /// # Errors
    /// Binding the listener failed; the service is then `failed` with the error recorded.
    pub async fn apply(&self, config: &GatewayConfig) -> anyhow::Result<()> {
        self.stop().await;
        self.slot().enabled = config.enabled;
        if !config.enabled {
            let mut slot = self.slot();
            slot.state = ServiceState::Disabled;
            slot.listen = None;
            slot.error = None;
            return Ok(());
        }
        match self.start(config).await {
            Ok(()) => Ok(()),
            Err(err) => {
                let mut slot = self.slot();
                slot.state = ServiceState::Failed;
                slot.error = Some(format!("{err:#}"));
                Err(err)
            }
        }
    }

    async fn start(&self, config: &GatewayConfig) -> anyhow::Result<()> {
        let tls = config.tls.as_ref().map(load_tls).transpose()?;
        let address = format!("{}:{}", config.host, config.port);
        let bind_addr = if config.host.contains(':') {
            format!("[{}]:{}", config.host, config.port)
        } else {
            address.clone()
        };
        let listener = tokio::net::TcpListener::bind(&bind_addr)
            .await
            .with_context(|| {
                format!("S3 gateway: listen on {bind_addr} (s3_gateway.host / s3_gateway.port)")
            })?;
        let gateway = Arc::new(s3::Gateway {
            engine: Arc::clone(&self.engine),
            config: gateway_settings(config, tls),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let slot = Arc::clone(&self.slot);
        let task = tokio::spawn(async move {
            let outcome = s3::serve(listener, gateway, async {
                let _ = stopped.await;
            })
            .await;
            if let Err(err) = outcome {
                tracing::error!(error = %err, "S3 gateway stopped serving");
                let mut slot = slot
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                slot.state = ServiceState::Failed;
                slot.error = Some(err.to_string());
            }
        });
        let mut starts = self
            .starts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *starts += 1;
        let mut slot = self.slot();
        slot.state = ServiceState::Running;
        slot.listen = Some(bind_addr.clone());
        slot.started_at = Some(SystemTime::now());
        slot.restarts = starts.saturating_sub(1);
        slot.error = None;
        slot.running = Some(Running { stop, task });
        tracing::info!(listen = %bind_addr, tls = config.tls.is_some(), "S3 gateway listening");
        Ok(())
    }

    /// Stops the service and waits for open requests to finish.
    pub async fn stop(&self) {
        let running = self.slot().running.take();
        if let Some(Running { stop, task }) = running {
            let _ = stop.send(());
            let _ = task.await;
            let mut slot = self.slot();
            slot.state = ServiceState::Stopped;
            slot.listen = None;
            tracing::info!("S3 gateway stopped");
        }
    }

    /// The service's state for `vh`.
    #[must_use]
    pub fn status(&self) -> ServiceStatus {
        let slot = self.slot();
        ServiceStatus {
            name: S3_GATEWAY_SERVICE.to_owned(),
            state: slot.state.as_str().to_owned(),
            enabled: slot.enabled,
            listen: slot.listen.clone(),
            started_at: slot
                .started_at
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
            restarts: slot.restarts,
            error: slot.error.clone(),
        }
    }
}

/// Reads the certificate and key named by `s3_gateway.tls`; the key file must not be open to
/// group or others.
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

fn gateway_settings(config: &GatewayConfig, tls: Option<s3::TlsConfig>) -> s3::GatewayConfig {
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
        min_part_size: config
            .multipart
            .min_part_size_mb
            .saturating_mul(1024 * 1024),
        tls,
    }
}
