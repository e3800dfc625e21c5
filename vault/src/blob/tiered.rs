//! Two stores seen as one: new objects go to the primary store, multipart parts to a separate
//! part store (`s3_gateway.multipart.part_dir`), and reads find a blob in either.
//!
//! A completed multipart object keeps referring to its part blobs, wherever they were written;
//! no bytes move when an upload completes.

use std::sync::Arc;

use super::{BlobError, BlobId, BlobSink, BlobSource, BlobStore, MutableBlob};

/// A primary store with a second store for multipart parts.
pub struct TieredBlobStore {
    primary: Arc<dyn BlobStore>,
    parts: Arc<dyn BlobStore>,
}

impl TieredBlobStore {
    /// Combines `primary` (where [`BlobStore::create`] writes) and `parts`.
    #[must_use]
    pub fn new(primary: Arc<dyn BlobStore>, parts: Arc<dyn BlobStore>) -> Self {
        Self { primary, parts }
    }
}

impl BlobStore for TieredBlobStore {
    fn create(&self, id: BlobId) -> Result<Box<dyn BlobSink>, BlobError> {
        self.primary.create(id)
    }

    fn open(&self, id: BlobId) -> Result<Box<dyn BlobSource>, BlobError> {
        match self.primary.open(id) {
            Err(BlobError::NotFound { .. }) => self.parts.open(id),
            other => other,
        }
    }

    fn remove(&self, id: BlobId) -> Result<(), BlobError> {
        self.primary.remove(id)?;
        self.parts.remove(id)
    }

    fn open_mutable(&self, id: BlobId, create: bool) -> Result<Box<dyn MutableBlob>, BlobError> {
        // Only whole files are rewritten in place, and those live in the primary store.
        self.primary.open_mutable(id, create)
    }

    fn list(&self) -> Result<Vec<BlobId>, BlobError> {
        let mut ids = self.primary.list()?;
        ids.extend(self.parts.list()?);
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::MemoryBlobStore;

    fn put(store: &dyn BlobStore, id: BlobId) {
        let mut sink = store.create(id).unwrap();
        sink.write_all(b"x").unwrap();
        sink.commit().unwrap();
    }

    #[test]
    fn reads_find_blobs_in_either_store_and_removal_clears_both() {
        let primary = Arc::new(MemoryBlobStore::new());
        let parts = Arc::new(MemoryBlobStore::new());
        let tiered = TieredBlobStore::new(primary.clone(), parts.clone());
        let (a, b) = (BlobId::generate(), BlobId::generate());
        put(&tiered, a);
        put(parts.as_ref(), b);
        assert!(primary.raw_bytes(a).is_some());
        assert!(tiered.open(b).is_ok());
        assert_eq!(tiered.list().unwrap().len(), 2);
        tiered.remove(b).unwrap();
        assert!(matches!(tiered.open(b), Err(BlobError::NotFound { .. })));
    }
}
