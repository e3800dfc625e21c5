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
use crate::runtime::GatewayService;

/// The running node.
pub struct Node {
    config_path: PathBuf,
    config: Mutex<Config>,
    engine: Arc<Engine>,
    gateway: GatewayService,
}

fn secs(ms: i64) -> u64 {
    u64::try_from(ms / 1000).unwrap_or(0)
}

impl Node {
    /// A node over an opened engine; services are started by [`Node::start`].
    pub fn new(config_path: PathBuf, config: Config, engine: Arc<Engine>) -> Self {
        let gateway = GatewayService::new(Arc::clone(&engine));
        Self {
            config_path,
            config: Mutex::new(config),
            engine,
            gateway,
        }
    }

    /// Starts every enabled service. A service that fails to start is reported, not fatal:
    /// the control socket stays up so `vh status` can say what went wrong.
    pub async fn start(&self) {
        let config = self.config.lock().await.clone();
        let max_age = std::time::Duration::from_secs(
            config
                .s3_gateway
                .multipart
                .abort_after_days
                .saturating_mul(86_400),
        );
        tokio::spawn(crate::janitor::run(
            Arc::clone(&self.engine),
            max_age,
            crate::janitor::JANITOR_INTERVAL,
        ));
        if let Err(err) = self.gateway.apply(&config.s3_gateway).await {
            tracing::error!(error = %format!("{err:#}"), "S3 gateway failed to start");
        }
    }

    /// Stops every service.
    pub async fn shutdown(&self) {
        self.gateway.stop().await;
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
            Request::GatewayStatus => Ok(Output::Gateway(self.gateway.status())),
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
            services: vec![self.gateway.status()],
            vaults,
            buckets,
        }))
    }

    /// Edits the config file and restarts only the gateway.
    async fn set_gateway_enabled(&self, enabled: bool) -> anyhow::Result<Output> {
        let mut config = self.config.lock().await;
        let path = self.config_path.clone();
        let edited =
            tokio::task::spawn_blocking(move || config_edit::set_gateway_enabled(&path, enabled))
                .await??;
        // Only the gateway's section takes effect here; other edits wait for a restart.
        config.s3_gateway = edited.s3_gateway;
        let gateway = config.s3_gateway.clone();
        drop(config);
        self.gateway.apply(&gateway).await?;
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
