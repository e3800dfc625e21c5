//! The node: the engine, the services over it, and the answers to control requests.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use vault::{BucketRow, CredentialRow, Engine, VaultError, VaultId, VaultRow};
use vh_cli::protocol::{
    BucketDetail, BucketInfo, CredentialInfo, NewCredential, NodeStatus, Output, PROTOCOL_VERSION,
    Request, VaultDetail, VaultInfo, VersionInfo,
};

use crate::config::Config;
use crate::config_edit;
use crate::control::done;
use crate::services::admin::AdminService;
use crate::services::fuse::{FuseService, MountHandle};
use crate::services::gateway::GatewayService;
use crate::services::janitor::JanitorService;
use crate::services::preview::PreviewService;
use crate::services::sync::SyncService;
use crate::supervisor::{Service, Supervisor};

/// The S3 gateway's service name.
const GATEWAY: &str = "S3GatewayService";
/// How often the credentials' last-use times kept in memory are written to the database.
const CREDENTIAL_USE_FLUSH_INTERVAL: Duration = Duration::from_secs(30);
/// The longest credential description accepted, in characters.
const MAX_DESCRIPTION_CHARS: usize = 256;

/// The running node.
pub struct Node {
    config_path: PathBuf,
    config: Mutex<Config>,
    engine: Arc<Engine>,
    supervisor: Arc<Supervisor>,
    /// The live FUSE mount, told when vaults are mounted, unmounted or change exclusivity.
    mount: MountHandle,
    /// A development node: its paths are fixed whatever its config file says.
    dev: bool,
    /// The task writing credentials' last-use times to the database.
    use_flusher: std::sync::Mutex<Option<JoinHandle<()>>>,
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
        let fuse = FuseService::new(Arc::clone(&engine));
        let mount = fuse.handle();
        let services: Vec<Box<dyn Service>> = vec![
            Box::new(gateway),
            Box::new(fuse),
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
            mount,
            dev,
            use_flusher: std::sync::Mutex::new(None),
        }
    }

    /// Starts every enabled service. A service that fails to start is reported and retried by
    /// the watchdog, not fatal: the control socket stays up so `vh status` can say what is wrong.
    pub async fn start(&self) {
        let config = self.config.lock().await.clone();
        self.supervisor.start_all(&config).await;
        let engine = Arc::clone(&self.engine);
        let flusher = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CREDENTIAL_USE_FLUSH_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                flush_credential_use(&engine).await;
            }
        });
        let previous = self
            .use_flusher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace(flusher);
        if let Some(previous) = previous {
            previous.abort();
        }
    }

    /// Stops every service and writes the last credential use times.
    pub async fn shutdown(&self) {
        let flusher = self
            .use_flusher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(flusher) = flusher {
            flusher.abort();
        }
        self.supervisor.stop_all().await;
        // A mount whose task was aborted rather than stopped is still in the handle.
        if let Err(err) = self.mount.unmount_async().await {
            tracing::error!(error = %format!("{err:#}"), "unmounting at shutdown failed");
        }
        flush_credential_use(&self.engine).await;
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
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .context("engine task")?
            .map_err(with_hint)
    }

    /// Answers one control request.
    ///
    /// # Errors
    /// Whatever failed, with a message for the operator.
    pub async fn handle(&self, request: Request) -> anyhow::Result<Output> {
        match request {
            Request::Status => self.status().await,
            Request::Version => Ok(Output::Version(VersionInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                protocol: PROTOCOL_VERSION,
            })),
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
            Request::CredentialCreate {
                name,
                description,
                expires_at_ms,
            } => {
                self.create_credential(name, description, expires_at_ms)
                    .await
            }
            Request::CredentialList => {
                let rows = self.blocking(Engine::list_credentials).await?;
                let now = vault::meta::now_ms();
                Ok(Output::Credentials(
                    rows.into_iter().map(|r| credential_info(r, now)).collect(),
                ))
            }
            Request::CredentialShow { access_key } => {
                let row = self.blocking(move |e| e.credential(&access_key)).await?;
                Ok(Output::Credential(credential_info(
                    row,
                    vault::meta::now_ms(),
                )))
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
                let (default, mounted) = {
                    let config = self.config.lock().await;
                    (
                        config.s3_gateway.default_api_exclusive,
                        config.fuse.mount_new_vaults,
                    )
                };
                let api_exclusive = api_exclusive.unwrap_or(default);
                let row = self
                    .blocking(move |e| e.create_local_bucket_with(&name, api_exclusive, mounted))
                    .await?;
                self.notify_mount().await;
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
                self.notify_mount().await;
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
            Request::BucketShow { name } => {
                let (row, vaults, (objects, bytes)) = self
                    .blocking(move |e| {
                        let row = e.bucket(&name)?;
                        let usage = e.vault_usage(row.vault)?;
                        Ok((row, e.list_vaults()?, usage))
                    })
                    .await?;
                Ok(Output::BucketDetail(BucketDetail {
                    bucket: bucket_info_with(row, &vaults),
                    objects,
                    bytes,
                }))
            }
            Request::BucketUnbind { name } => {
                let row = self.blocking(move |e| e.unbind_bucket(&name)).await?;
                self.notify_mount().await;
                Ok(done(format!(
                    "unbound bucket {}; vault {} and its data stay",
                    row.name, row.vault
                )))
            }
            Request::BucketSetApiExclusive {
                name,
                api_exclusive,
            } => self.set_api_exclusive(name, api_exclusive).await,
            Request::VaultCreate { name } => {
                let mounted = self.config.lock().await.fuse.mount_new_vaults;
                let row = self
                    .blocking(move |e| e.create_vault_with(&name, mounted))
                    .await?;
                self.notify_mount().await;
                Ok(Output::Vault(vault_info(row, &[])))
            }
            Request::VaultMount { vault } => self.set_vault_mounted(vault, true).await,
            Request::VaultUnmount { vault } => self.set_vault_mounted(vault, false).await,
            Request::VaultShow { vault } => {
                let (row, buckets, (objects, bytes)) = self
                    .blocking(move |e| {
                        let row = e.find_vault(&vault)?;
                        let usage = e.vault_usage(row.id)?;
                        Ok((row, e.list_buckets()?, usage))
                    })
                    .await?;
                Ok(Output::VaultDetail(VaultDetail {
                    vault: vault_info(row, &buckets),
                    objects,
                    bytes,
                }))
            }
            Request::VaultRename { vault, new_name } => {
                let (old, new) = self
                    .blocking(move |e| {
                        let old = e.find_vault(&vault)?;
                        let new = e.rename_vault(old.id, &new_name)?;
                        Ok((old, new))
                    })
                    .await?;
                tracing::info!(vault = %new.id, from = %old.name, to = %new.name, "vault renamed");
                self.notify_mount().await;
                Ok(done(format!(
                    "renamed vault {} (id {}) to {}",
                    old.name, new.id, new.name
                )))
            }
            Request::VaultDelete { vault, force } => self.delete_vault(vault, force).await,
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

    async fn create_credential(
        &self,
        name: String,
        description: Option<String>,
        expires_at_ms: Option<i64>,
    ) -> anyhow::Result<Output> {
        let description = description.filter(|d| !d.trim().is_empty());
        if let Some(text) = &description {
            check_description(text)?;
        }
        if let Some(at) = expires_at_ms.filter(|at| *at <= vault::meta::now_ms()) {
            let when = time::OffsetDateTime::from_unix_timestamp(at.div_euclid(1000))
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| format!("{at} ms since the epoch"));
            bail!(
                "the expiry time {when} is in the past; give --expires a future RFC 3339 time or \
                 a duration such as 30d, 12h or 90m"
            );
        }
        let stored_description = description.clone();
        let created = self
            .blocking(move |e| {
                e.create_credential_with(&name, description.as_deref(), expires_at_ms)
            })
            .await?;
        tracing::info!(
            access_key = %created.access_key,
            name = %created.name,
            expires_ms = ?expires_at_ms,
            "gateway credential created"
        );
        Ok(Output::NewCredential(NewCredential {
            name: created.name,
            access_key_id: created.access_key,
            secret_access_key: created.secret.expose_secret().to_owned(),
            description: stored_description,
            expires_at: expires_at_ms.map(secs),
        }))
    }

    /// Deletes a vault; with `force`, unbinds the buckets it serves first.
    async fn delete_vault(&self, vault: String, force: bool) -> anyhow::Result<Output> {
        let (row, bound, (objects, bytes)) = self
            .blocking(move |e| {
                let row = e.find_vault(&vault)?;
                let bound: Vec<String> = e
                    .list_buckets()?
                    .into_iter()
                    .filter(|b| b.vault == row.id)
                    .map(|b| b.name)
                    .collect();
                let usage = e.vault_usage(row.id)?;
                Ok((row, bound, usage))
            })
            .await?;
        if !force && !bound.is_empty() {
            bail!(
                "vault {} (id {}) is bound to bucket(s) {}; unbind them with `vh s3-gateway \
                 bucket unbind NAME`, or pass --force to unbind them and delete the vault",
                row.name,
                row.id,
                bound.join(", ")
            );
        }
        let id = row.id;
        let unbound = if force {
            self.blocking(move |e| e.delete_vault_and_unbind(id))
                .await?
                .into_iter()
                .map(|b| b.name)
                .collect()
        } else {
            self.blocking(move |e| e.delete_vault(id)).await?;
            Vec::new()
        };
        tracing::info!(vault = %id, name = %row.name, unbound = ?unbound, objects, "vault deleted");
        self.notify_mount().await;
        let mut message = String::new();
        if !unbound.is_empty() {
            message = format!("unbound bucket(s) {}; ", unbound.join(", "));
        }
        message.push_str(&format!(
            "deleted vault {} (id {}) with {objects} object(s), {bytes} bytes",
            row.name, id
        ));
        Ok(done(message))
    }

    /// Shows or hides a vault in the FUSE mount and tells the live mount.
    async fn set_vault_mounted(&self, vault: String, mounted: bool) -> anyhow::Result<Output> {
        let (before, after) = self
            .blocking(move |e| {
                let before = e.find_vault(&vault)?;
                let after = e.set_vault_mounted(before.id, mounted)?;
                Ok((before, after))
            })
            .await?;
        tracing::info!(vault = %after.id, name = %after.name, mounted, "vault mount flag set");
        let live = self.notify_mount().await;
        let fuse_enabled = self.config.lock().await.fuse.enabled;

        let verb = match (before.mounted == mounted, mounted) {
            (false, true) => "is mounted",
            (false, false) => "is unmounted",
            (true, true) => "was mounted already",
            (true, false) => "was unmounted already",
        };
        let subject = format!("vault {} (id {}) {verb}", after.name, after.id);
        let message = match (live, mounted) {
            (Some(mount_point), true) => format!(
                "{subject}: it shows in the mount at {}",
                mount_point.display()
            ),
            (Some(mount_point), false) => format!(
                "{subject}: it no longer shows in the mount at {} (its data stays)",
                mount_point.display()
            ),
            (None, _) => format!(
                "{subject}: the flag is saved, but {}",
                mount_is_off(fuse_enabled, &self.config_path)
            ),
        };
        Ok(done(message))
    }

    /// Changes whether only the gateway may write into a bucket's vault, and tells the mount.
    async fn set_api_exclusive(&self, name: String, api_exclusive: bool) -> anyhow::Result<Output> {
        let (row, vaults) = self
            .blocking(move |e| {
                Ok((
                    e.set_bucket_api_exclusive(&name, api_exclusive)?,
                    e.list_vaults()?,
                ))
            })
            .await?;
        tracing::info!(bucket = %row.name, vault = %row.vault, api_exclusive, "bucket API exclusivity set");
        self.notify_mount().await;
        let bucket = bucket_info_with(row, &vaults);
        let (name, vault, id) = (&bucket.name, &bucket.vault_name, bucket.vault_id);
        let message = if api_exclusive {
            format!(
                "bucket {name} is api-exclusive: only the S3 gateway may write into vault {vault} \
                 (id {id})"
            )
        } else {
            format!(
                "bucket {name} is not api-exclusive: the mount may write into vault {vault} \
                 (id {id}) too"
            )
        };
        Ok(done(message))
    }

    /// Tells the live mount that vaults changed; returns its mount point, or `None` when the
    /// mount does not run. A notice is no operation of its own, so a failed one is logged.
    async fn notify_mount(&self) -> Option<PathBuf> {
        let mount = self.mount.clone();
        match tokio::task::spawn_blocking(move || mount.vaults_changed()).await {
            Ok(live) => live,
            Err(err) => {
                tracing::warn!(error = %err, "telling the FUSE mount that vaults changed failed");
                None
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

/// Writes the credentials' last-use times; a failure is logged and retried at the next flush.
async fn flush_credential_use(engine: &Arc<Engine>) {
    let engine = Arc::clone(engine);
    let flushed = tokio::task::spawn_blocking(move || engine.flush_credential_use()).await;
    match flushed {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            let error = format!("{:#}", anyhow::Error::new(err));
            tracing::warn!(%error, "recording credential use failed; retrying later");
        }
        Err(err) => tracing::warn!(error = %err, "credential use flush task failed"),
    }
}

fn check_description(text: &str) -> anyhow::Result<()> {
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        bail!("the description is longer than {MAX_DESCRIPTION_CHARS} characters; shorten it");
    }
    if text.chars().any(char::is_control) {
        bail!("the description holds control characters (such as newlines); use plain text");
    }
    Ok(())
}

/// The engine's error for the operator, with the `vh` command that helps where there is one.
fn with_hint(err: VaultError) -> anyhow::Error {
    let hint = match &err {
        VaultError::NoSuchVault(_) => "list vaults with `vh vault list`",
        VaultError::VaultExists(_) => "choose another name (`vh vault list` shows those taken)",
        VaultError::NoSuchBucket(_) => "list buckets with `vh s3-gateway bucket list`",
        VaultError::BucketExists(_) => {
            "choose another name (`vh s3-gateway bucket list` shows those taken)"
        }
        VaultError::NoSuchCredential(_) => "list credentials with `vh s3-gateway creds list`",
        // The other errors either say what to change themselves (names, a bound vault) or are
        // failures of the node, whose chain says what failed.
        _ => return anyhow::Error::new(err),
    };
    anyhow!("{err}; {hint}")
}

fn credential_info(row: CredentialRow, now_ms: i64) -> CredentialInfo {
    let state = if row.revoked_ms.is_some() {
        "revoked"
    } else if row.is_expired(now_ms) {
        "expired"
    } else {
        "active"
    };
    CredentialInfo {
        access_key_id: row.access_key,
        name: row.name,
        description: row.description,
        state: state.to_owned(),
        created_at: secs(row.created_ms),
        expires_at: row.expires_ms.map(secs),
        last_used_at: row.last_used_ms.map(secs),
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
        mounted: row.mounted,
    }
}

/// Why a mount flag has no effect yet, and what turns the mount on.
fn mount_is_off(fuse_enabled: bool, config_path: &Path) -> String {
    if fuse_enabled {
        "the FUSE mount is not running (`vh status` says why); it applies once the mount runs"
            .to_owned()
    } else {
        format!(
            "the FUSE mount is off; set fuse.enabled: true in {} to turn it on",
            config_path.display()
        )
    }
}
