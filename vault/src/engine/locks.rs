//! Locks that keep gateway reads of a blob apart from the mount copying journaled segments
//! into it, so a read never sees a segment half rewritten.

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::blob::BlobId;

/// How many locks the blobs share; two blobs rewritten at once rarely share one.
const SHARDS: usize = 64;

/// A fixed set of reader-writer locks, one chosen per blob by its id.
pub(crate) struct BlobLocks {
    shards: [RwLock<()>; SHARDS],
}

impl Default for BlobLocks {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| RwLock::new(())),
        }
    }
}

impl BlobLocks {
    fn shard(&self, blob: BlobId) -> &RwLock<()> {
        // Blob ids are random, so their first byte spreads them evenly.
        &self.shards[usize::from(blob.as_bytes()[0]) % SHARDS]
    }

    /// Held while reading `blob`.
    pub(crate) fn read(&self, blob: BlobId) -> RwLockReadGuard<'_, ()> {
        self.shard(blob)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Held while rewriting `blob` in place.
    pub(crate) fn write(&self, blob: BlobId) -> RwLockWriteGuard<'_, ()> {
        self.shard(blob)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
