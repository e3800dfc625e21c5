//! The node: the engine, the services over it, and the answers to control requests.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Mutex;
use vault::{BucketRow, CredentialRow, Engine, VaultId, VaultRow};
use vh_cli::protocol::{
    BucketInfo, CredentialInfo, NewCredential, NodeStatus, Output, Request, VaultInfo,
};

use crate::config::Config;
use crate::config_edit;
use crate::control::done;
use crate::services::admin::AdminService;
use crate::services::gateway::GatewayService;
use crate::services::janitor::JanitorService;
use crate::services::preview::PreviewService;
use crate::services::sync::SyncService;
use crate::supervisor::{Service, Supervisor};

/// The S3 gateway's service name.
const GATEWAY: &str = "S3GatewayService";

/// The running node.
pub struct Node {
    config_path: PathBuf,
    config: Mutex<Config>,
    engine: Arc<Engine>,
    supervisor: Arc<Supervisor>,
    /// A development node: its paths are fixed whatever its config file says.
    dev: bool,
}

fn secs(ms: i64) -> u64 {
    u64::try_from(ms / 1000).unwrap_or(0)
}

impl Node {
    /// A node over an opened engine; services are started by [`Node::start`].
    pub fn new(config_path: PathBuf, config: Config, engine: Arc<Engine>, dev: bool) -> Self {
        let gateway = GatewayService::new(Arc::clone(&engine));
        let admin = AdminService::new(gateway.metrics());
        let supervisor_slot = admin.supervisor_slot();
        let services: Vec<Box<dyn Service>> = vec![
            Box::new(gateway),
            Box::new(PreviewService::new(Arc::clone(&engine))),
            Box::new(JanitorService::new(Arc::clone(&engine))),
            Box::new(SyncService),
            Box::new(admin),
        ];
        let supervisor = Arc::new(Supervisor::new(services));
        let _ = supervisor_slot.set(Arc::downgrade(&supervisor));
        Self {
            config_path,
            config: Mutex::new(config),
            engine,
            supervisor,
            dev,
        }
    }

    /// Starts every enabled service. A service that fails to start is reported and retried by
    /// the watchdog, not fatal: the control socket stays up so `vh status` can say what is wrong.
    pub async fn start(&self) {
        let config = self.config.lock().await.clone();
        self.supervisor.start_all(&config).await;
    }

    /// Stops every service.
    pub async fn shutdown(&self) {
        self.supervisor.stop_all().await;
    }

    /// Re-reads the config file after a change and restarts the services whose section changed.
    /// An invalid file is logged with the key at fault and ignored.
    pub async fn reload_config(&self, path: &std::path::Path) {
        let new = match Config::load(path, true) {
            Ok(new) if self.dev => new.with_dev_paths(),
            Ok(new) => new,
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "config change refused; the running config stays");
                return;
            }
        };
        let mut current = self.config.lock().await;
        if *current == new {
            return;
        }
        for (key, changed) in [
            ("data_dir", current.data_dir != new.data_dir),
            (
                "control_socket",
                current.control_socket != new.control_socket,
            ),
            ("keys", current.keys != new.keys),
        ] {
            if changed {
                tracing::warn!(
                    key,
                    "this config change takes effect when the node restarts"
                );
            }
        }
        let restarted = self.supervisor.reconfigure(&current, &new).await;
        tracing::info!(services = ?restarted, "config reloaded");
        *current = new;
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T, vault::VaultError> + Send + 'static,
    ) -> anyhow::Result<T> {
        let engine = Arc::clone(&self.engine);
        Ok(tokio::task::spawn_blocking(move || f(&engine))
            .await
            .context("engine task")??)
    }

    /// Answers one control request.
    ///
    /// # Errors
    /// Whatever failed, with a message for the operator.
    pub async fn handle(&self, request: Request) -> anyhow::Result<Output> {
        match request {
            Request::Status => self.status().await,
            Request::GatewayEnable => self.set_gateway_enabled(true).await,
            Request::GatewayDisable => self.set_gateway_enabled(false).await,
            Request::GatewayStatus => Ok(Output::Gateway(self.service_status(GATEWAY).await?)),
            Request::ServiceStart { name } | Request::ServiceRestart { name } => {
                let config = self.config.lock().await.clone();
                Ok(Output::Service(
                    self.supervisor.restart(&name, &config).await?,
                ))
            }
            Request::ServiceStop { name } => {
                Ok(Output::Service(self.supervisor.stop(&name).await?))
            }
            Request::DebugKillService { name } => {
                self.supervisor.kill(&name).await?;
                tracing::warn!(service = %name, "service task aborted on request");
                Ok(done(format!("aborted {name}; the watchdog restarts it")))
            }
            Request::CredentialCreate { name } => {
                let created = self.blocking(move |e| e.create_credential(&name)).await?;
                tracing::info!(access_key = %created.access_key, name = %created.name, "gateway credential created");
                Ok(Output::NewCredential(NewCredential {
                    name: created.name,
                    access_key_id: created.access_key,
                    secret_access_key: created.secret.expose_secret().to_owned(),
                }))
            }
            Request::CredentialList => {
                let rows = self.blocking(Engine::list_credentials).await?;
                Ok(Output::Credentials(
                    rows.into_iter().map(credential_info).collect(),
                ))
            }
            Request::CredentialRevoke { access_key } => {
                let key = access_key.clone();
                self.blocking(move |e| e.revoke_credential(&key)).await?;
                tracing::info!(%access_key, "gateway credential revoked");
                Ok(done(format!("revoked {access_key}")))
            }
            Request::BucketCreateLocal {
                name,
                api_exclusive,
            } => {
                let default = self.config.lock().await.s3_gateway.default_api_exclusive;
                let api_exclusive = api_exclusive.unwrap_or(default);
                let row = self
                    .blocking(move |e| e.create_local_bucket(&name, api_exclusive))
                    .await?;
                Ok(Output::Bucket(self.bucket_info(row).await?))
            }
            Request::BucketBind {
                name,
                vault,
                mode,
                api_exclusive,
            } => {
                if mode != "local" {
                    anyhow::bail!(
                        "bucket mode {mode:?} needs a remote vault, which this node does not offer yet; use --mode local"
                    );
                }
                let row = self
                    .blocking(move |e| {
                        let found = e.find_vault(&vault)?;
                        e.bind_bucket(&name, found.id, &mode, api_exclusive)
                    })
                    .await?;
                Ok(Output::Bucket(self.bucket_info(row).await?))
            }
            Request::BucketList => {
                let (buckets, vaults) = self
                    .blocking(|e| Ok((e.list_buckets()?, e.list_vaults()?)))
                    .await?;
                Ok(Output::Buckets(
                    buckets
                        .into_iter()
                        .map(|b| bucket_info_with(b, &vaults))
                        .collect(),
                ))
            }
            Request::BucketUnbind { name } => {
                let row = self.blocking(move |e| e.unbind_bucket(&name)).await?;
                Ok(done(format!(
                    "unbound bucket {}; vault {} and its data stay",
                    row.name, row.vault
                )))
            }
            Request::VaultCreate { name } => {
                let row = self.blocking(move |e| e.create_vault(&name)).await?;
                Ok(Output::Vault(VaultInfo {
                    id: row.id.0,
                    name: row.name,
                    created_at: secs(row.created_ms),
                    buckets: Vec::new(),
                }))
            }
            Request::VaultList => {
                let (vaults, buckets) = self
                    .blocking(|e| Ok((e.list_vaults()?, e.list_buckets()?)))
                    .await?;
                Ok(Output::Vaults(
                    vaults
                        .into_iter()
                        .map(|v| vault_info(v, &buckets))
                        .collect(),
                ))
            }
        }
    }

    async fn status(&self) -> anyhow::Result<Output> {
        let config = self.config.lock().await.clone();
        let (vaults, buckets) = self
            .blocking(|e| Ok((e.list_vaults()?.len(), e.list_buckets()?.len())))
            .await?;
        Ok(Output::Status(NodeStatus {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            config_path: self.config_path.display().to_string(),
            data_dir: config.data_dir.display().to_string(),
            key_provider: self.engine.key_provider().to_string(),
            services: self.supervisor.status().await,
            vaults,
            buckets,
        }))
    }

    async fn service_status(&self, name: &str) -> anyhow::Result<vh_cli::protocol::ServiceStatus> {
        self.supervisor
            .status()
            .await
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| anyhow::anyhow!("no service named {name}"))
    }

    /// Edits the config file and restarts only the gateway.
    async fn set_gateway_enabled(&self, enabled: bool) -> anyhow::Result<Output> {
        let mut config = self.config.lock().await;
        let path = self.config_path.clone();
        let edited =
            tokio::task::spawn_blocking(move || config_edit::set_gateway_enabled(&path, enabled))
                .await??;
        // Only the gateway's section takes effect here; other edits reach the services through
        // the config watcher.
        config.s3_gateway = edited.s3_gateway;
        let applied = config.clone();
        drop(config);
        let status = self.supervisor.restart(GATEWAY, &applied).await?;
        let gateway = &applied.s3_gateway;
        if let Some(error) = status
            .error
            .filter(|_| enabled && status.state != "running")
        {
            anyhow::bail!(
                "S3 gateway enabled in {} but it did not start: {error}",
                self.config_path.display()
            );
        }
        let state = if enabled {
            format!("enabled, listening on {}:{}", gateway.host, gateway.port)
        } else {
            "disabled".to_owned()
        };
        Ok(done(format!(
            "S3 gateway {state} (saved in {})",
            self.config_path.display()
        )))
    }

    async fn bucket_info(&self, row: BucketRow) -> anyhow::Result<BucketInfo> {
        let vaults = self.blocking(Engine::list_vaults).await?;
        Ok(bucket_info_with(row, &vaults))
    }
}

fn credential_info(row: CredentialRow) -> CredentialInfo {
    CredentialInfo {
        access_key_id: row.access_key,
        name: row.name,
        created_at: secs(row.created_ms),
        revoked_at: row.revoked_ms.map(secs),
    }
}

fn bucket_info_with(row: BucketRow, vaults: &[VaultRow]) -> BucketInfo {
    let vault_name = vaults
        .iter()
        .find(|v| v.id == row.vault)
        .map(|v| v.name.clone())
        .unwrap_or_default();
    BucketInfo {
        name: row.name,
        vault_id: row.vault.0,
        vault_name,
        mode: row.mode,
        api_exclusive: row.api_exclusive,
        created_at: secs(row.created_ms),
    }
}

fn vault_info(row: VaultRow, buckets: &[BucketRow]) -> VaultInfo {
    let bound = buckets
        .iter()
        .filter(|b| b.vault == VaultId(row.id.0))
        .map(|b| b.name.clone())
        .collect();
    VaultInfo {
        id: row.id.0,
        name: row.name,
        created_at: secs(row.created_ms),
        buckets: bound,
    }
}
