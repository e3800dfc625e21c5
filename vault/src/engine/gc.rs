//! Blob collection: deleting blobs no entry points at any more.
//!
//! A blob is queued in `blob_gc` in the same transaction that stops referencing it, and deleted
//! after that transaction commits. A crash between the two leaves the row, and the next run
//! finishes the job. Blobs written by a request that never committed are found by the orphan
//! sweep at start, when no write can be in flight.

use super::Engine;
use crate::blob::BlobId;
use crate::error::VaultError;
use crate::meta::blobs;

/// How many queued blobs one pass deletes before re-reading the queue.
const GC_BATCH: usize = 256;

impl Engine {
    /// Deletes every blob queued for collection.
    ///
    /// # Errors
    /// A metadata or blob store failure; what was deleted stays deleted.
    pub fn collect_garbage(&self) -> Result<(), VaultError> {
        loop {
            let queued = self
                .meta
                .read(|conn| Ok::<_, VaultError>(blobs::queued_blobs(conn, GC_BATCH)?))?;
            if queued.is_empty() {
                return Ok(());
            }
            for blob in &queued {
                self.blobs.remove(*blob)?;
            }
            self.meta.write(|tx| {
                for blob in &queued {
                    blobs::forget_queued_blob(tx, *blob)?;
                }
                Ok::<_, VaultError>(())
            })?;
            if queued.len() < GC_BATCH {
                return Ok(());
            }
        }
    }

    /// Collection after a write or delete: a failure here loses nothing (the queue keeps the
    /// blob) and must not fail the request that triggered it.
    pub(crate) fn collect_garbage_quietly(&self) {
        if let Err(err) = self.collect_garbage() {
            tracing::warn!(error = %err, "blob collection failed; it will be retried");
        }
    }

    /// Deletes a blob that a failed commit left behind.
    pub(crate) fn discard_blob(&self, blob: BlobId) {
        if let Err(err) = self.blobs.remove(blob) {
            tracing::warn!(%blob, error = %err, "could not delete a discarded blob; the next start removes it");
        }
    }

    /// Deletes committed blobs that no entry references: writes that crashed between sealing
    /// their blob and committing its metadata. Only safe while no write is in flight.
    pub(crate) fn remove_orphan_blobs(&self) -> Result<usize, VaultError> {
        let referenced = self
            .meta
            .read(|conn| Ok::<_, VaultError>(blobs::referenced_blobs(conn)?))?;
        let mut removed = 0;
        for blob in self.blobs.list()? {
            if !referenced.contains(&blob) {
                self.blobs.remove(blob)?;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, "removed orphaned blobs of interrupted writes");
        }
        Ok(removed)
    }
}
