//! A mounted session: mounting, unmounting, and forwarding gateway changes to the kernel.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use fuser::{BackgroundSession, Config, INodeNo, MountOption, Notifier, Session, SessionACL};
use vault::engine::{Change, ChangeListener};
use vault::{Engine, EntryId};

use crate::adapter::Adapter;
use crate::core::FsCore;

/// How to mount.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// The directory the filesystem is mounted on; created when missing.
    pub mount_point: PathBuf,
    /// Let users other than the node's own reach the mount (the kernel then checks each
    /// entry's owner and mode).
    pub allow_other: bool,
    /// Threads answering the kernel.
    pub threads: usize,
}

/// Why mounting or unmounting failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The mount point could not be prepared.
    #[error("cannot prepare mount point {path}: {source}")]
    MountPoint {
        /// The mount point.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The kernel refused the mount.
    #[error("cannot mount on {path}: {source} (is /dev/fuse present and fuse3 installed?)")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Unmounting failed.
    #[error("cannot unmount {path}: {source}")]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A mounted filesystem. Dropping it unmounts.
pub struct Mount {
    engine: Arc<Engine>,
    core: Arc<FsCore>,
    mount_point: PathBuf,
    session: Option<BackgroundSession>,
    notices: Arc<dyn ChangeListener>,
    /// The vault directories the kernel was last shown, to tell it which ones went away.
    shown: Mutex<Vec<(String, u64)>>,
    notifier: Notifier,
}

/// Forwards the gateway's changes to the kernel from a thread of its own, so a gateway request
/// never waits on the kernel.
struct KernelNotices {
    queue: mpsc::Sender<Vec<Change>>,
}

impl ChangeListener for KernelNotices {
    fn changed(&self, changes: &[Change]) {
        // A closed queue means the mount is going away; there is nothing left to tell.
        let _ = self.queue.send(changes.to_vec());
    }
}

fn forward_notices(notifier: &Notifier, queue: mpsc::Receiver<Vec<Change>>) {
    for changes in queue {
        for change in changes {
            let result = match &change {
                Change::Entry(id) => notifier.inval_inode(INodeNo(inode(*id)), 0, 0),
                Change::Name {
                    parent,
                    name,
                    entry,
                } => notifier
                    .delete(
                        INodeNo(inode(*parent)),
                        INodeNo(inode(*entry)),
                        OsStr::new(name),
                    )
                    .or_else(|_| notifier.inval_entry(INodeNo(inode(*parent)), OsStr::new(name))),
            };
            // ENOENT only means the kernel had nothing cached for it.
            if let Err(err) = result
                && err.raw_os_error() != Some(libc::ENOENT)
            {
                tracing::debug!(?change, error = %err, "kernel cache invalidation failed");
            }
        }
    }
}

fn inode(id: EntryId) -> u64 {
    u64::try_from(id.0).unwrap_or(0)
}

/// Whether `path` is the root of a mount.
fn is_mount_point(path: &Path) -> io::Result<bool> {
    let own = fs::metadata(path)?;
    let Some(parent) = path.parent() else {
        return Ok(true);
    };
    let parent = fs::metadata(parent)?;
    Ok(own.dev() != parent.dev() || own.ino() == parent.ino())
}

/// Detaches the mount on `path` even while it is in use.
fn lazy_unmount(path: &Path) -> io::Result<std::process::ExitStatus> {
    Command::new("fusermount3")
        .arg("-u")
        .arg("-z")
        .arg(path)
        .status()
        .or_else(|_| Command::new("umount").arg("-l").arg(path).status())
}

/// Unmounts what a dead process left on `path` ("Transport endpoint is not connected").
fn clear_stale_mount(path: &Path) -> Result<(), MountError> {
    let stale = match fs::metadata(path) {
        Err(err) => err.raw_os_error() == Some(libc::ENOTCONN),
        Ok(_) => false,
    };
    if !stale {
        return Ok(());
    }
    tracing::warn!(path = %path.display(), "clearing a stale mount left by a process that died");
    let status = lazy_unmount(path).map_err(|source| MountError::MountPoint {
        path: path.to_owned(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(MountError::MountPoint {
            path: path.to_owned(),
            source: io::Error::other(format!(
                "a stale mount is in the way and unmounting it failed ({status}); \
                 run `fusermount3 -u -z {}`",
                path.display()
            )),
        })
    }
}

impl Mount {
    /// Mounts every vault whose mount flag is set on `options.mount_point`; returns once the
    /// kernel has accepted the mount. A stale mount left on the directory by a process that
    /// died is cleared first.
    ///
    /// # Errors
    /// The mount point cannot be created or the kernel refuses the mount.
    pub fn start(engine: Arc<Engine>, options: &MountOptions) -> Result<Self, MountError> {
        let path = options.mount_point.clone();
        clear_stale_mount(&path)?;
        fs::create_dir_all(&path).map_err(|source| MountError::MountPoint {
            path: path.clone(),
            source,
        })?;
        if is_mount_point(&path).unwrap_or(false) {
            return Err(MountError::Mount {
                path: path.clone(),
                source: io::Error::other("something is already mounted there; unmount it first"),
            });
        }

        let core = Arc::new(FsCore::new(Arc::clone(&engine)));
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("vaulthalla".to_owned()),
            MountOption::Subtype("vaulthalla".to_owned()),
            MountOption::DefaultPermissions,
            MountOption::NoDev,
            MountOption::NoSuid,
            MountOption::NoAtime,
        ];
        if options.allow_other {
            // No auto_unmount: it needs a fusermount helper watching the node, which a service
            // without setuid binaries lacks. A mount left by a crash is cleared at the next
            // start (above) and by the unit's ExecStopPost.
            config.acl = SessionACL::All;
        }
        config.n_threads = Some(options.threads.max(1));
        let session = Session::new(Adapter::new(Arc::clone(&core)), &path, &config)
            .and_then(Session::spawn)
            .map_err(|source| MountError::Mount {
                path: path.clone(),
                source,
            })?;
        let notifier = session.notifier();
        let (queue, notices) = mpsc::channel();
        let forward_to = session.notifier();
        std::thread::Builder::new()
            .name("vh-mount-notices".to_owned())
            .spawn(move || forward_notices(&forward_to, notices))
            .map_err(|source| MountError::Mount {
                path: path.clone(),
                source,
            })?;
        let notices: Arc<dyn ChangeListener> = Arc::new(KernelNotices { queue });
        engine.add_change_listener(Arc::clone(&notices));
        let shown = Self::vault_inodes(&core);
        tracing::info!(mount_point = %path.display(), vaults = shown.len(), "vaults mounted");
        Ok(Self {
            engine,
            core,
            mount_point: path,
            session: Some(session),
            notices,
            shown: Mutex::new(shown),
            notifier,
        })
    }

    fn vault_inodes(core: &FsCore) -> Vec<(String, u64)> {
        core.mounted_vaults()
            .unwrap_or_default()
            .into_iter()
            .map(|vault| (vault.name, inode(vault.root.id)))
            .collect()
    }

    /// Whether the session is still answering the kernel.
    #[must_use]
    pub fn is_alive(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|session| !session.guard.is_finished())
            && fs::metadata(&self.mount_point).is_ok()
    }

    /// The set of mounted vaults, or whether one may be written, changed: the kernel forgets
    /// what it cached of the top-level directory.
    pub fn vaults_changed(&self) {
        let now = Self::vault_inodes(&self.core);
        let mut shown = self.shown.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, ino) in shown.iter() {
            if !now.contains(&(name.clone(), *ino)) {
                let _ = self
                    .notifier
                    .inval_entry(INodeNo(crate::core::ROOT_INODE), OsStr::new(name));
            }
            let _ = self.notifier.inval_inode(INodeNo(*ino), 0, 0);
        }
        let _ = self
            .notifier
            .inval_inode(INodeNo(crate::core::ROOT_INODE), 0, 0);
        *shown = now;
    }

    /// Unmounts and waits for the session to end.
    ///
    /// # Errors
    /// The kernel refuses to unmount.
    pub fn unmount(mut self) -> Result<(), MountError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), MountError> {
        self.engine.remove_change_listener(&self.notices);
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let guard_finished = session.guard.is_finished();
        let result = if guard_finished {
            session.join()
        } else {
            session.umount_and_join()
        };
        self.core.release_all();
        result.map_err(|source| {
            // Busy (a shell inside it, a file open): detach it lazily so the name is free; the
            // kernel drops the connection when its last user lets go.
            let _ = lazy_unmount(&self.mount_point);
            MountError::Unmount {
                path: self.mount_point.clone(),
                source,
            }
        })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(err) = self.shut_down() {
            tracing::warn!(error = %err, "unmount failed");
        }
    }
}
