//! The engine: the one entry point both frontends use.
//!
//! It owns the metadata store, the blob store and the keyring, and turns a frontend's request
//! (put this object, list that prefix, bind this bucket) into blob I/O plus one metadata
//! transaction. All methods block; async callers run them on blocking threads.

mod admin;
mod changes;
mod files;
mod gc;
mod locks;
mod multipart;
mod objects;
mod reader;
mod tree;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use admin::{NewCredential, Secret};
pub use changes::{Change, ChangeListener};
pub use files::OpenFile;
pub use multipart::{CompletePart, MAX_PART_NUMBER, PartsPage, multipart_etag};
pub use objects::ObjectWriter;
pub use reader::ObjectReader;
pub use tree::{MAX_XATTR_VALUE, MountedVault};

use crate::blob::{BlobStore, LocalBlobStore, TieredBlobStore};
use crate::error::VaultError;
use crate::keyring::Keyring;
use crate::keys::{KeyProvider, KeyProviderChoice, load_or_create_master_key};
use crate::meta::MetaStore;

/// Where the engine keeps its state and how it unseals its master key.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The data directory: `meta.db`, `blobs/` and `keys/` live under it.
    pub data_dir: PathBuf,
    /// Which key provider seals the master key.
    pub key_provider: KeyProviderChoice,
    /// The TPM's TCTI, e.g. `device:/dev/tpmrm0` or `swtpm:host=127.0.0.1,port=2321`.
    pub tpm_tcti: Option<String>,
    /// Where multipart parts are written (sealed like everything else); `None` for the data
    /// directory.
    pub part_dir: Option<PathBuf>,
}

/// The vault engine.
pub struct Engine {
    meta: MetaStore,
    /// Every blob, wherever it was written.
    blobs: Arc<dyn BlobStore>,
    /// Where multipart parts are written.
    part_blobs: Arc<dyn BlobStore>,
    keyring: Keyring,
    credentials: admin::CredentialCache,
    /// Files open through the mount.
    open_files: files::OpenFiles,
    /// Keeps gateway reads apart from in-place rewrites.
    blob_locks: Arc<locks::BlobLocks>,
    /// Who hears of changes the gateway makes (the mount, to drop the kernel's caches).
    changes: changes::Listeners,
    /// The data directory, for free-space figures.
    data_dir: Option<PathBuf>,
    /// Held for the engine's life: a second node on the same data directory would delete the
    /// first one's in-flight blobs as orphans at its start.
    _data_dir_lock: Option<fs::File>,
}

/// Takes the data directory's lock, or says which process holds it.
fn lock_data_dir(dir: &Path) -> Result<fs::File, VaultError> {
    let path = dir.join("lock");
    let io = |source| VaultError::Blob(crate::blob::BlobError::Io { id: None, source });
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(VaultError::DataDirInUse(dir.to_owned())),
        Err(fs::TryLockError::Error(err)) => Err(io(err)),
    }
}

impl Engine {
    /// Opens the engine over `config.data_dir`, creating it on first start: unseals (or creates)
    /// the master key, migrates the metadata database and finishes any blob deletions a crash
    /// interrupted.
    ///
    /// # Errors
    /// Fails when the data directory cannot be created, the master key cannot be unsealed or
    /// the database cannot be opened.
    pub fn open(config: &EngineConfig) -> Result<Self, VaultError> {
        let dir = &config.data_dir;
        create_private_dir(dir)?;
        let lock = lock_data_dir(dir)?;
        let master = load_or_create_master_key(
            &dir.join("keys"),
            config.key_provider,
            config.tpm_tcti.as_deref(),
        )?;
        let meta = MetaStore::open(&dir.join("meta.db"))?;
        let primary = LocalBlobStore::open(&dir.join("blobs"))?;
        primary.clear_temp()?;
        let primary: Arc<dyn BlobStore> = Arc::new(primary);
        let (blobs, part_blobs): (Arc<dyn BlobStore>, Arc<dyn BlobStore>) = match &config.part_dir {
            Some(part_dir) => {
                create_private_dir(part_dir)?;
                let parts = LocalBlobStore::open(part_dir)?;
                parts.clear_temp()?;
                let parts: Arc<dyn BlobStore> = Arc::new(parts);
                (
                    Arc::new(TieredBlobStore::new(
                        Arc::clone(&primary),
                        Arc::clone(&parts),
                    )),
                    parts,
                )
            }
            None => (Arc::clone(&primary), primary),
        };
        let engine = Self {
            meta,
            blobs,
            part_blobs,
            keyring: Keyring::new(master),
            credentials: admin::CredentialCache::default(),
            open_files: files::OpenFiles::default(),
            blob_locks: Arc::default(),
            changes: changes::Listeners::default(),
            data_dir: Some(dir.clone()),
            _data_dir_lock: Some(lock),
        };
        engine.recover_journal()?;
        engine.collect_garbage()?;
        engine.remove_orphan_blobs()?;
        Ok(engine)
    }

    /// An engine over caller-supplied stores, for tests.
    #[must_use]
    pub fn with_stores(meta: MetaStore, blobs: Arc<dyn BlobStore>, keyring: Keyring) -> Self {
        Self {
            meta,
            part_blobs: Arc::clone(&blobs),
            blobs,
            keyring,
            credentials: admin::CredentialCache::default(),
            open_files: files::OpenFiles::default(),
            blob_locks: Arc::default(),
            changes: changes::Listeners::default(),
            data_dir: None,
            _data_dir_lock: None,
        }
    }

    /// The data directory, when the engine has one on disk.
    #[must_use]
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// Which provider sealed the master key.
    #[must_use]
    pub fn key_provider(&self) -> KeyProvider {
        self.keyring.provider()
    }
}

fn create_private_dir(dir: &Path) -> Result<(), VaultError> {
    use std::os::unix::fs::DirBuilderExt;
    let io = |source| VaultError::Blob(crate::blob::BlobError::Io { id: None, source });
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)
}

#[cfg(test)]
pub(crate) mod tests;
