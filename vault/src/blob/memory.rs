//! An in-memory [`BlobStore`] for tests.
//!
//! It keeps the same promises as the local store (nothing visible before commit, sources keep
//! the bytes they opened) and lets tests damage stored bytes to check that damage is caught.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{BlobError, BlobId, BlobSink, BlobSource, BlobStore, MutableBlob};

type Blobs = BTreeMap<BlobId, Arc<Vec<u8>>>;

/// A blob store in memory. Clones share the same blobs.
#[derive(Clone, Default)]
pub struct MemoryBlobStore {
    blobs: Arc<Mutex<Blobs>>,
}

impl MemoryBlobStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets `edit` change the stored bytes of blob `id`, to simulate damage. Sources opened
    /// earlier keep the bytes they saw.
    ///
    /// # Errors
    ///
    /// [`BlobError::NotFound`] if no blob `id` was committed.
    pub fn with_bytes_mut(
        &self,
        id: BlobId,
        edit: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), BlobError> {
        let mut blobs = self.lock();
        let Some(bytes) = blobs.get_mut(&id) else {
            return Err(BlobError::NotFound { id });
        };

        edit(Arc::make_mut(bytes));
        Ok(())
    }

    /// A copy of the stored bytes of blob `id`, if it was committed.
    #[must_use]
    pub fn raw_bytes(&self, id: BlobId) -> Option<Vec<u8>> {
        self.lock().get(&id).map(|bytes| bytes.to_vec())
    }

    /// Stores `bytes` as the committed blob `id`, as if written by someone else; for fixtures.
    pub fn insert_raw(&self, id: BlobId, bytes: Vec<u8>) {
        self.lock().insert(id, Arc::new(bytes));
    }

    /// The map of blobs. Every critical section is a single map operation (or a test's edit of
    /// one blob), so a panic while it was held cannot have left the map inconsistent.
    fn lock(&self) -> MutexGuard<'_, Blobs> {
        self.blobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BlobStore for MemoryBlobStore {
    fn create(&self, id: BlobId) -> Result<Box<dyn BlobSink>, BlobError> {
        Ok(Box::new(MemorySink {
            store: self.clone(),
            id,
            bytes: Vec::new(),
        }))
    }

    fn open(&self, id: BlobId) -> Result<Box<dyn BlobSource>, BlobError> {
        let Some(bytes) = self.lock().get(&id).cloned() else {
            return Err(BlobError::NotFound { id });
        };
        Ok(Box::new(MemorySource { id, bytes }))
    }

    fn remove(&self, id: BlobId) -> Result<(), BlobError> {
        self.lock().remove(&id);
        Ok(())
    }

    fn list(&self) -> Result<Vec<BlobId>, BlobError> {
        Ok(self.lock().keys().copied().collect())
    }

    fn open_mutable(&self, id: BlobId, create: bool) -> Result<Box<dyn MutableBlob>, BlobError> {
        let mut blobs = self.lock();
        match (blobs.contains_key(&id), create) {
            (false, false) => return Err(BlobError::NotFound { id }),
            (true, true) => {
                let exists = io::Error::new(io::ErrorKind::AlreadyExists, "blob exists");
                return Err(BlobError::io(id, exists));
            }
            (false, true) => {
                blobs.insert(id, Arc::new(Vec::new()));
            }
            (true, false) => {}
        }
        Ok(Box::new(MemoryMutable {
            store: self.clone(),
            id,
        }))
    }
}

/// A committed blob of a [`MemoryBlobStore`] open for in-place rewrites; changes are visible to
/// sources opened afterwards.
struct MemoryMutable {
    store: MemoryBlobStore,
    id: BlobId,
}

impl MemoryMutable {
    fn with_bytes<T>(&self, f: impl FnOnce(&mut Vec<u8>) -> T) -> Result<T, BlobError> {
        let mut blobs = self.store.lock();
        let Some(bytes) = blobs.get_mut(&self.id) else {
            let gone = io::Error::new(io::ErrorKind::NotFound, "blob removed");
            return Err(BlobError::io(self.id, gone));
        };
        Ok(f(Arc::make_mut(bytes)))
    }
}

impl MutableBlob for MemoryMutable {
    fn len(&self) -> Result<u64, BlobError> {
        self.with_bytes(|bytes| bytes.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), BlobError> {
        let id = self.id;
        self.with_bytes(|bytes| {
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            match bytes.get(start..start.saturating_add(buf.len())) {
                Some(stored) => {
                    buf.copy_from_slice(stored);
                    Ok(())
                }
                None => Err(BlobError::io(
                    id,
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "read past the end of the blob",
                    ),
                )),
            }
        })?
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<(), BlobError> {
        self.with_bytes(|bytes| {
            let start = usize::try_from(offset).expect("test blobs fit in memory");
            let end = start + buf.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[start..end].copy_from_slice(buf);
        })
    }

    fn set_len(&self, len: u64) -> Result<(), BlobError> {
        self.with_bytes(|bytes| bytes.resize(usize::try_from(len).expect("fits in memory"), 0))
    }

    fn sync(&self) -> Result<(), BlobError> {
        Ok(())
    }
}

/// A blob being written to a [`MemoryBlobStore`]; it exists only in the sink until commit.
struct MemorySink {
    store: MemoryBlobStore,
    id: BlobId,
    bytes: Vec<u8>,
}

impl BlobSink for MemorySink {
    fn write_all(&mut self, buf: &[u8]) -> Result<(), BlobError> {
        self.bytes.extend_from_slice(buf);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), BlobError> {
        let Self { store, id, bytes } = *self;
        store.insert_raw(id, bytes);
        Ok(())
    }
}

/// A snapshot of a committed blob in a [`MemoryBlobStore`].
struct MemorySource {
    id: BlobId,
    bytes: Arc<Vec<u8>>,
}

impl BlobSource for MemorySource {
    fn len(&self) -> Result<u64, BlobError> {
        Ok(self.bytes.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), BlobError> {
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(buf.len())?))
            .filter(|range| range.end <= self.bytes.len());
        let Some(range) = range else {
            let eof = io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the blob",
            );
            return Err(BlobError::io(self.id, eof));
        };

        buf.copy_from_slice(&self.bytes[range]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_visible_before_commit() {
        let store = MemoryBlobStore::new();
        let id = BlobId::generate();
        let mut sink = store.create(id).unwrap();
        sink.write_all(b"abc").unwrap();

        assert!(matches!(store.open(id), Err(BlobError::NotFound { .. })));
        assert!(store.list().unwrap().is_empty());

        sink.commit().unwrap();
        assert_eq!(store.list().unwrap(), vec![id]);
        assert_eq!(store.raw_bytes(id).unwrap(), b"abc");
    }

    #[test]
    fn dropped_sink_leaves_nothing() {
        let store = MemoryBlobStore::new();
        let id = BlobId::generate();

        store.create(id).unwrap().write_all(b"abc").unwrap();

        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn sources_read_positionally_and_keep_their_snapshot() {
        let store = MemoryBlobStore::new();
        let id = BlobId::generate();
        store.insert_raw(id, b"0123456789".to_vec());
        let source = store.open(id).unwrap();

        store.with_bytes_mut(id, |bytes| bytes[0] = b'x').unwrap();
        store.remove(id).unwrap();

        let mut buf = [0u8; 4];
        source.read_exact_at(&mut buf, 3).unwrap();
        assert_eq!(&buf, b"3456");
        assert_eq!(source.len().unwrap(), 10);
        assert!(source.read_exact_at(&mut buf, 7).is_err());
        assert!(source.read_exact_at(&mut buf, u64::MAX).is_err());
    }

    #[test]
    fn remove_is_idempotent_and_edits_need_a_blob() {
        let store = MemoryBlobStore::new();
        let id = BlobId::generate();

        store.remove(id).unwrap();

        assert!(matches!(
            store.with_bytes_mut(id, |_| ()),
            Err(BlobError::NotFound { .. })
        ));
    }
}
