//! `FuseService`: the FUSE mount of the `fs` crate as a supervised service.
//!
//! Mounting and unmounting block (they wait on the kernel), so both run on blocking threads. The
//! running task checks every second that the session still answers the kernel and ends with an
//! error when it does not (someone ran `fusermount3 -u`, or the session failed), so the watchdog
//! mounts again. The live mount sits in a [`MountHandle`] shared with the node, whose handlers
//! tell it when a vault is mounted, unmounted or changes its API exclusivity.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ::fs::{Mount, MountOptions};
use anyhow::{Context, anyhow};
use tokio::sync::oneshot;
use vault::Engine;

use crate::config::{Config, FuseConfig};
use crate::supervisor::{BoxFuture, Running, Service};

/// How often the running task checks that the session still answers the kernel.
const LIVENESS_INTERVAL: Duration = Duration::from_secs(1);

/// A mount and the directory it is mounted on.
struct Live {
    mount: Mount,
    mount_point: PathBuf,
}

/// The live mount, if any: started and stopped by [`FuseService`], told of vault changes by the
/// node. Cloning shares it.
#[derive(Clone, Default)]
pub struct MountHandle {
    live: Arc<Mutex<Option<Live>>>,
}

impl MountHandle {
    fn lock(&self) -> MutexGuard<'_, Option<Live>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells the live mount that the set of mounted vaults, or whether one may be written,
    /// changed, so the kernel forgets what it cached of the top-level directory. Returns the
    /// mount point, or `None` when nothing is mounted. Blocks on the kernel: call it from a
    /// blocking thread.
    pub fn vaults_changed(&self) -> Option<PathBuf> {
        let live = self.lock();
        let live = live.as_ref()?;
        live.mount.vaults_changed();
        Some(live.mount_point.clone())
    }

    /// Whether a mount is live and answering the kernel. A notice in progress holds the lock;
    /// the session is taken as alive then rather than waiting on the kernel from async code.
    fn is_alive(&self) -> bool {
        match self.live.try_lock() {
            Ok(live) => live.as_ref().is_some_and(|live| live.mount.is_alive()),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned
                .into_inner()
                .as_ref()
                .is_some_and(|live| live.mount.is_alive()),
            Err(std::sync::TryLockError::WouldBlock) => true,
        }
    }

    fn put(&self, mount: Mount, mount_point: PathBuf) {
        *self.lock() = Some(Live { mount, mount_point });
    }

    /// Unmounts the live mount, if any, and waits for its session to end. Blocks: call it from
    /// a blocking thread.
    ///
    /// # Errors
    /// The kernel refused to unmount.
    pub fn unmount(&self) -> anyhow::Result<()> {
        let Some(Live { mount, mount_point }) = self.lock().take() else {
            return Ok(());
        };
        mount
            .unmount()
            .with_context(|| format!("unmount the vaults from {}", mount_point.display()))?;
        tracing::info!(mount_point = %mount_point.display(), "vaults unmounted");
        Ok(())
    }

    /// [`MountHandle::unmount`] on a blocking thread.
    pub async fn unmount_async(&self) -> anyhow::Result<()> {
        let handle = self.clone();
        tokio::task::spawn_blocking(move || handle.unmount())
            .await
            .context("unmount task")?
    }
}

/// The FUSE mount over one engine.
pub struct FuseService {
    engine: Arc<Engine>,
    handle: MountHandle,
}

impl FuseService {
    /// The mount over `engine`, not mounted yet.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            handle: MountHandle::default(),
        }
    }

    /// The live mount, for the node's handlers.
    pub fn handle(&self) -> MountHandle {
        self.handle.clone()
    }
}

fn mount_options(config: &FuseConfig) -> MountOptions {
    MountOptions {
        mount_point: config.mount_point.clone(),
        allow_other: config.allow_other,
        threads: config.threads,
    }
}

impl Service for FuseService {
    fn name(&self) -> &'static str {
        "FuseService"
    }

    fn enabled(&self, config: &Config) -> bool {
        config.fuse.enabled
    }

    /// The mount's own settings. `mount_new_vaults` is left out: it only decides the flag of
    /// vaults created later, and changing it must not unmount under the users of the mount.
    fn section(&self, config: &Config) -> serde_json::Value {
        let fuse = &config.fuse;
        serde_json::json!({
            "enabled": fuse.enabled,
            "mount_point": fuse.mount_point,
            "allow_other": fuse.allow_other,
            "threads": fuse.threads,
        })
    }

    fn start<'a>(&'a self, config: &'a Config) -> BoxFuture<'a, anyhow::Result<Running>> {
        Box::pin(async move {
            let options = mount_options(&config.fuse);
            let mount_point = options.mount_point.clone();
            let engine = Arc::clone(&self.engine);
            let handle = self.handle.clone();
            tokio::task::spawn_blocking(move || mount(&handle, engine, &options))
                .await
                .context("mount task")??;
            tracing::debug!(
                mount_point = %mount_point.display(),
                allow_other = config.fuse.allow_other,
                threads = config.fuse.threads,
                "FUSE service started"
            );

            let (stop, stopped) = oneshot::channel::<()>();
            let handle = self.handle.clone();
            let task = tokio::spawn(run(handle, mount_point.clone(), stopped));
            Ok(Running {
                task,
                stop,
                listen: Some(mount_point.display().to_string()),
            })
        })
    }

    fn check<'a>(&'a self, _listen: Option<&'a str>) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            if self.handle.is_alive() {
                Ok(())
            } else {
                Err(anyhow!("the FUSE session no longer answers the kernel"))
            }
        })
    }
}

/// Mounts, after unmounting a mount left behind by a task that was aborted instead of stopped.
fn mount(handle: &MountHandle, engine: Arc<Engine>, options: &MountOptions) -> anyhow::Result<()> {
    if let Err(err) = handle.unmount() {
        tracing::warn!(error = %format!("{err:#}"), "unmounting the previous mount failed");
    }
    let mount = Mount::start(engine, options).with_context(|| {
        format!(
            "mount the vaults on {} (fuse.mount_point; fuse.enabled: false turns the mount off)",
            options.mount_point.display()
        )
    })?;
    handle.put(mount, options.mount_point.clone());
    Ok(())
}

/// The running mount: ends when asked to stop (unmounting first) or, with an error, when the
/// session stops answering the kernel.
async fn run(
    handle: MountHandle,
    mount_point: PathBuf,
    mut stopped: oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let mut ticks = tokio::time::interval(LIVENESS_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stopped => return stop(&handle).await,
            _ = ticks.tick() => {
                if !handle.is_alive() {
                    return Err(session_ended(&handle, &mount_point).await);
                }
            }
        }
    }
}

/// Unmounts on request. The supervisor does not look at how a stopped task ended, so a failure
/// is logged here. A busy mount is detached lazily: its name is free at once, and programs
/// still inside it get errors until they leave.
async fn stop(handle: &MountHandle) -> anyhow::Result<()> {
    let unmounted = handle.unmount_async().await;
    if let Err(err) = &unmounted {
        tracing::error!(
            error = %format!("{err:#}"),
            "the mount was busy and was detached lazily; programs still using it get I/O \
             errors until they close their files and leave the directory"
        );
    }
    unmounted
}

/// Clears what is left of a session that ended on its own, and says so.
async fn session_ended(handle: &MountHandle, mount_point: &Path) -> anyhow::Error {
    if let Err(err) = handle.unmount_async().await {
        tracing::debug!(error = %format!("{err:#}"), "clearing the ended FUSE session");
    }
    anyhow!(
        "the FUSE session on {} ended (unmounted from outside, or it failed)",
        mount_point.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_leaves_out_the_flag_of_new_vaults() {
        let dir = tempfile::tempdir().unwrap();
        let service = FuseService::new(Arc::new(
            Engine::open(&vault::EngineConfig {
                data_dir: dir.path().to_owned(),
                key_provider: vault::KeyProviderChoice::Software,
                tpm_tcti: None,
                part_dir: None,
            })
            .unwrap(),
        ));
        let mut config = Config::default();
        let before = service.section(&config);
        config.fuse.mount_new_vaults = false;
        assert_eq!(service.section(&config), before);
        config.fuse.threads = 2;
        assert_ne!(service.section(&config), before);
        assert!(service.enabled(&config));
        config.fuse.enabled = false;
        assert!(!service.enabled(&config));
    }

    #[test]
    fn an_empty_handle_has_nothing_to_notify_or_unmount() {
        let handle = MountHandle::default();
        assert_eq!(handle.vaults_changed(), None);
        assert!(!handle.is_alive());
        handle.unmount().unwrap();
    }
}
