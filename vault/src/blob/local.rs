//! A [`BlobStore`] on the local file system.
//!
//! Committed blobs live at `root/<first two hex digits>/<32 hex digits>`; the fan-out keeps
//! directories small, and the random names reveal nothing about the files they hold. Blobs being
//! written live at `root/tmp/<random hex>` until commit, which fsyncs the file, renames it into
//! place and fsyncs the directory, so a committed blob survives a crash and a crash mid-write
//! leaves only a temporary file for [`LocalBlobStore::clear_temp`]. Files are created `0600` and
//! directories `0700`: only the service user may read even the ciphertext.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::crypto::fill_random;

use super::{BlobError, BlobId, BlobSink, BlobSource, BlobStore, MutableBlob};

/// Name of the folder holding blobs that are still being written.
const TEMP_DIR: &str = "tmp";

/// A blob store in a directory of the local file system.
#[derive(Clone)]
pub struct LocalBlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    temp: PathBuf,
    /// Whether fan-out directory `i` is known to be recorded durably in `root`. A directory made
    /// by another thread, or by a process that crashed before syncing `root`, may not be yet, so
    /// the first commit into each directory in this process syncs `root` itself.
    fanout_durable: [AtomicBool; 256],
}

impl LocalBlobStore {
    /// Opens the store at `root`, creating `root` and its temporary folder if they are missing.
    ///
    /// # Errors
    ///
    /// [`BlobError::Io`] if the folders cannot be created.
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        let store_io = |source| BlobError::Io { id: None, source };
        let existed = root.try_exists().map_err(store_io)?;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(store_io)?;
        if !existed && let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent).map_err(store_io)?;
        }

        let temp = root.join(TEMP_DIR);
        create_dir_if_missing(&temp).map_err(store_io)?;

        let inner = Inner {
            root: root.to_path_buf(),
            temp,
            fanout_durable: std::array::from_fn(|_| AtomicBool::new(false)),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The folder the store lives in.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Removes the leftovers of writes that never committed (a crash, a killed process) and
    /// returns how many files it removed. Call it at start-up, before any writes: it would
    /// also remove the temporary files of writes in progress.
    ///
    /// # Errors
    ///
    /// [`BlobError::Io`] if the temporary folder cannot be read or a file in it removed.
    pub fn clear_temp(&self) -> Result<usize, BlobError> {
        let store_io = |source| BlobError::Io { id: None, source };
        let mut removed = 0;
        for entry in fs::read_dir(&self.inner.temp).map_err(store_io)? {
            let path = entry.map_err(store_io)?.path();
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(store_io(err)),
            }
        }

        if removed > 0 {
            tracing::info!(
                removed,
                "removed temporary files of interrupted blob writes"
            );
        }
        Ok(removed)
    }
}

impl Inner {
    fn fanout_dir(&self, id: BlobId) -> PathBuf {
        self.root.join(fanout_name(id))
    }

    fn blob_path(&self, id: BlobId) -> PathBuf {
        self.fanout_dir(id).join(id.to_hex())
    }

    /// Makes sure the fan-out directory of `id` exists and is recorded durably in `root`.
    fn ensure_fanout_dir(&self, id: BlobId) -> io::Result<PathBuf> {
        let dir = self.fanout_dir(id);
        let durable = &self.fanout_durable[usize::from(id.as_bytes()[0])];
        if durable.load(Ordering::Acquire) {
            return Ok(dir);
        }

        create_dir_if_missing(&dir)?;
        sync_dir(&self.root)?;
        durable.store(true, Ordering::Release);
        Ok(dir)
    }
}

impl BlobStore for LocalBlobStore {
    fn create(&self, id: BlobId) -> Result<Box<dyn BlobSink>, BlobError> {
        // A random temporary name, not the blob id, so two writers of one id cannot collide.
        let mut name = [0u8; 16];
        fill_random(&mut name);
        let temp_path = self.inner.temp.join(hex::encode(name));

        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp_path)
            .map_err(|err| BlobError::io(id, err))?;
        Ok(Box::new(LocalSink {
            inner: Arc::clone(&self.inner),
            id,
            file,
            temp_path,
            done: false,
        }))
    }

    fn open(&self, id: BlobId) -> Result<Box<dyn BlobSource>, BlobError> {
        match File::open(self.inner.blob_path(id)) {
            Ok(file) => Ok(Box::new(LocalSource { id, file })),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Err(BlobError::NotFound { id }),
            Err(err) => Err(BlobError::io(id, err)),
        }
    }

    fn remove(&self, id: BlobId) -> Result<(), BlobError> {
        // The removal is not synced: if a crash undoes it, the blob reappears as an orphan that
        // garbage collection removes again, so paying an fsync here buys nothing.
        match fs::remove_file(self.inner.blob_path(id)) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(BlobError::io(id, err)),
        }
    }

    fn open_mutable(&self, id: BlobId, create: bool) -> Result<Box<dyn MutableBlob>, BlobError> {
        let io_err = |err| BlobError::io(id, err);
        let mut options = OpenOptions::new();
        options.read(true).write(true).mode(0o600);
        let (path, unsynced_dir) = if create {
            options.create_new(true);
            let dir = self.inner.ensure_fanout_dir(id).map_err(io_err)?;
            (dir.join(id.to_hex()), Some(dir))
        } else {
            (self.inner.blob_path(id), None)
        };
        match options.open(&path) {
            Ok(file) => Ok(Box::new(LocalMutable {
                source: LocalSource { id, file },
                unsynced_dir: std::sync::Mutex::new(unsynced_dir),
            })),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Err(BlobError::NotFound { id }),
            Err(err) => Err(io_err(err)),
        }
    }

    fn list(&self) -> Result<Vec<BlobId>, BlobError> {
        let store_io = |source| BlobError::Io { id: None, source };
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.inner.root).map_err(store_io)? {
            let entry = entry.map_err(store_io)?;
            let Some(prefix) = entry
                .file_name()
                .to_str()
                .filter(|n| is_fanout_name(n))
                .map(str::to_owned)
            else {
                continue;
            };
            if !entry.file_type().map_err(store_io)?.is_dir() {
                continue;
            }

            for blob in fs::read_dir(entry.path()).map_err(store_io)? {
                let name = blob.map_err(store_io)?.file_name();
                let id = name.to_str().and_then(BlobId::from_hex);
                match id {
                    Some(id) if fanout_name(id) == prefix => ids.push(id),
                    _ => tracing::debug!(?name, "ignoring a file that is no blob in the store"),
                }
            }
        }

        ids.sort_unstable();
        Ok(ids)
    }
}

/// A blob being written to a temporary file of a [`LocalBlobStore`].
struct LocalSink {
    inner: Arc<Inner>,
    id: BlobId,
    file: File,
    temp_path: PathBuf,
    /// Set once the temporary file has been renamed into place; until then dropping the sink
    /// removes it.
    done: bool,
}

impl BlobSink for LocalSink {
    fn write_all(&mut self, buf: &[u8]) -> Result<(), BlobError> {
        self.file
            .write_all(buf)
            .map_err(|err| BlobError::io(self.id, err))
    }

    fn commit(mut self: Box<Self>) -> Result<(), BlobError> {
        let id = self.id;
        let io_err = |err| BlobError::io(id, err);

        // Data first, then the name: a rename that reaches the disk before the data would
        // leave a committed name pointing at a torn file after a crash.
        self.file.sync_all().map_err(io_err)?;
        let dir = self.inner.ensure_fanout_dir(id).map_err(io_err)?;
        fs::rename(&self.temp_path, dir.join(id.to_hex())).map_err(io_err)?;
        self.done = true;
        sync_dir(&dir).map_err(io_err)?;

        tracing::trace!(blob = %id, "blob committed");
        Ok(())
    }
}

impl Drop for LocalSink {
    fn drop(&mut self) {
        if self.done {
            return;
        }

        match fs::remove_file(&self.temp_path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            // Not fatal: clear_temp removes it at the next start.
            Err(error) => tracing::warn!(
                blob = %self.id,
                %error,
                "could not remove the temporary file of a discarded blob"
            ),
        }
    }
}

/// A committed blob file open for reading.
struct LocalSource {
    id: BlobId,
    file: File,
}

impl BlobSource for LocalSource {
    fn len(&self) -> Result<u64, BlobError> {
        let metadata = self
            .file
            .metadata()
            .map_err(|err| BlobError::io(self.id, err))?;
        Ok(metadata.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), BlobError> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|err| BlobError::io(self.id, err))
    }
}

/// A blob file open for in-place rewrites: its reads are a [`LocalSource`]'s.
struct LocalMutable {
    source: LocalSource,
    /// The directory of a blob created by this handle, until its name has been synced.
    unsynced_dir: std::sync::Mutex<Option<PathBuf>>,
}

impl MutableBlob for LocalMutable {
    fn len(&self) -> Result<u64, BlobError> {
        self.source.len()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), BlobError> {
        self.source.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<(), BlobError> {
        self.source
            .file
            .write_all_at(buf, offset)
            .map_err(|err| BlobError::io(self.source.id, err))
    }

    fn set_len(&self, len: u64) -> Result<(), BlobError> {
        self.source
            .file
            .set_len(len)
            .map_err(|err| BlobError::io(self.source.id, err))
    }

    fn sync(&self) -> Result<(), BlobError> {
        let io_err = |err| BlobError::io(self.source.id, err);
        // fdatasync covers the length too: it is needed to read the data back.
        self.source.file.sync_data().map_err(io_err)?;
        let mut unsynced_dir = self
            .unsynced_dir
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(dir) = unsynced_dir.as_deref() {
            sync_dir(dir).map_err(io_err)?;
            *unsynced_dir = None;
        }
        Ok(())
    }
}

/// The fan-out directory name of `id`: the first two hex digits of its name.
fn fanout_name(id: BlobId) -> String {
    hex::encode(&id.as_bytes()[..1])
}

fn is_fanout_name(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Creates `dir` with mode `0700`; a directory already there is fine.
fn create_dir_if_missing(dir: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        result => result,
    }
}

/// Flushes a directory's entries to disk, making renames and creations in it durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn temp_files(store: &LocalBlobStore) -> usize {
        fs::read_dir(store.root().join(TEMP_DIR)).unwrap().count()
    }

    #[test]
    fn committed_blob_is_stored_under_its_fanout_name_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("blobs");
        let store = LocalBlobStore::open(&root).unwrap();
        let id = BlobId::from_hex("ab0123456789abcdef0123456789abcd").unwrap();

        let mut sink = store.create(id).unwrap();
        sink.write_all(b"sealed bytes").unwrap();
        assert_eq!(temp_files(&store), 1);
        assert!(matches!(store.open(id), Err(BlobError::NotFound { .. })));
        assert!(store.list().unwrap().is_empty());
        sink.commit().unwrap();

        let path = root.join("ab").join(id.to_hex());
        assert_eq!(fs::read(&path).unwrap(), b"sealed bytes");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("ab")), 0o700);
        assert_eq!(mode(&root.join(TEMP_DIR)), 0o700);
        assert_eq!(temp_files(&store), 0);
        assert_eq!(store.list().unwrap(), vec![id]);
    }

    #[test]
    fn source_reads_positionally() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let id = BlobId::generate();
        let mut sink = store.create(id).unwrap();
        sink.write_all(b"0123456789").unwrap();
        sink.commit().unwrap();

        let source = store.open(id).unwrap();
        let mut buf = [0u8; 3];
        source.read_exact_at(&mut buf, 6).unwrap();

        assert_eq!(&buf, b"678");
        assert_eq!(source.len().unwrap(), 10);
        assert!(matches!(
            source.read_exact_at(&mut buf, 8),
            Err(BlobError::Io { .. })
        ));
    }

    #[test]
    fn dropped_sink_removes_its_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let id = BlobId::generate();

        let mut sink = store.create(id).unwrap();
        sink.write_all(b"half a blob").unwrap();
        drop(sink);

        assert_eq!(temp_files(&store), 0);
        assert!(store.list().unwrap().is_empty());
        assert!(matches!(store.open(id), Err(BlobError::NotFound { .. })));
    }

    #[test]
    fn commit_replaces_a_blob_with_the_same_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let id = BlobId::generate();
        for content in [&b"first"[..], b"second"] {
            let mut sink = store.create(id).unwrap();
            sink.write_all(content).unwrap();
            sink.commit().unwrap();
        }

        let source = store.open(id).unwrap();
        let mut buf = vec![0u8; 6];
        source.read_exact_at(&mut buf, 0).unwrap();

        assert_eq!(buf, b"second");
        assert_eq!(store.list().unwrap(), vec![id]);
    }

    #[test]
    fn remove_deletes_and_tolerates_missing_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let ids: Vec<BlobId> = (0..5).map(|_| BlobId::generate()).collect();
        for &id in &ids {
            store.create(id).unwrap().commit().unwrap();
        }

        store.remove(ids[2]).unwrap();
        store.remove(ids[2]).unwrap();

        let mut expected = ids.clone();
        expected.remove(2);
        expected.sort_unstable();
        assert_eq!(store.list().unwrap(), expected);
        assert!(matches!(
            store.open(ids[2]),
            Err(BlobError::NotFound { .. })
        ));
    }

    #[test]
    fn list_ignores_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let id = BlobId::from_hex("cd0123456789abcdef0123456789abcd").unwrap();
        store.create(id).unwrap().commit().unwrap();

        fs::write(dir.path().join("README"), b"x").unwrap();
        fs::write(dir.path().join("ef"), b"x").unwrap();
        fs::create_dir(dir.path().join("AB")).unwrap();
        fs::write(dir.path().join("cd").join("notes.txt"), b"x").unwrap();
        // A valid name in the wrong fan-out folder is not where open would look for it.
        fs::write(
            dir.path()
                .join("cd")
                .join("ee0123456789abcdef0123456789abcd"),
            b"x",
        )
        .unwrap();

        assert_eq!(store.list().unwrap(), vec![id]);
    }

    #[test]
    fn clear_temp_removes_leftovers_of_crashed_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        fs::write(dir.path().join(TEMP_DIR).join("0011"), b"torn").unwrap();
        let mut crashed = store.create(BlobId::generate()).unwrap();
        crashed.write_all(b"torn").unwrap();
        // Forgetting the sink stands in for a crash: nothing runs to clean up after it.
        std::mem::forget(crashed);
        let kept = BlobId::generate();
        store.create(kept).unwrap().commit().unwrap();

        assert_eq!(store.clear_temp().unwrap(), 2);

        assert_eq!(temp_files(&store), 0);
        assert_eq!(store.list().unwrap(), vec![kept]);
        assert_eq!(store.clear_temp().unwrap(), 0);
    }

    #[test]
    fn reopening_an_existing_store_keeps_its_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let id = BlobId::generate();
        LocalBlobStore::open(dir.path())
            .unwrap()
            .create(id)
            .unwrap()
            .commit()
            .unwrap();

        let store = LocalBlobStore::open(dir.path()).unwrap();

        assert_eq!(store.list().unwrap(), vec![id]);
    }
}
