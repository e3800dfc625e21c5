//! The storage interface behind blobs.
//!
//! A [`BlobStore`] keeps opaque, already-sealed bytes under a [`BlobId`]; it never sees
//! plaintext or keys. The interface is synchronous: callers on an async runtime run it on
//! blocking threads. A new blob goes through a [`BlobSink`] and becomes visible only when the
//! sink commits, so readers never see a half-written blob and a crash mid-write leaves nothing
//! under the blob's id.

use super::{BlobError, BlobId, MutableBlob};

/// Where blobs are kept.
pub trait BlobStore: Send + Sync + 'static {
    /// A sink for a new blob; nothing is visible under `id` until [`BlobSink::commit`].
    ///
    /// Committing replaces any blob already stored under `id`.
    ///
    /// # Errors
    ///
    /// [`BlobError::Io`] if the store cannot make room for the blob.
    fn create(&self, id: BlobId) -> Result<Box<dyn BlobSink>, BlobError>;

    /// The committed blob `id`, for reading.
    ///
    /// # Errors
    ///
    /// [`BlobError::NotFound`] if no blob with this id was committed, [`BlobError::Io`] if the
    /// store fails.
    fn open(&self, id: BlobId) -> Result<Box<dyn BlobSource>, BlobError>;

    /// Removes the committed blob `id`. Removing a blob that does not exist succeeds, so a
    /// retried or repeated removal is harmless.
    ///
    /// Sources opened before the removal may keep reading the old bytes.
    ///
    /// # Errors
    ///
    /// [`BlobError::Io`] if the store fails.
    fn remove(&self, id: BlobId) -> Result<(), BlobError>;

    /// The ids of all committed blobs, in ascending order. Blobs still being written are not
    /// listed.
    ///
    /// # Errors
    ///
    /// [`BlobError::Io`] if the store fails.
    fn list(&self) -> Result<Vec<BlobId>, BlobError>;

    /// The blob `id` open for in-place rewrites; with `create`, a new empty blob under `id`
    /// (which must not exist yet). A new blob is visible under its id at once, so the caller
    /// must not point metadata at it before it is complete and synced.
    ///
    /// # Errors
    ///
    /// [`BlobError::NotFound`] without `create` if there is no such blob; [`BlobError::Io`] if
    /// the store fails.
    fn open_mutable(&self, id: BlobId, create: bool) -> Result<Box<dyn MutableBlob>, BlobError>;
}

/// A blob being written. Dropping it without [`BlobSink::commit`] discards what was written.
pub trait BlobSink: Send {
    /// Appends `buf` to the blob.
    ///
    /// # Errors
    ///
    /// [`BlobError::Io`] if the store fails; the sink should then be dropped.
    fn write_all(&mut self, buf: &[u8]) -> Result<(), BlobError>;

    /// Makes the blob visible under its id. Once this returns `Ok` the blob is durable: it
    /// survives a crash or power loss.
    ///
    /// # Errors
    ///
    /// [`BlobError::Io`] if the store fails. The blob may then be visible but not durable; the
    /// caller treats the write as failed and leaves the blob to garbage collection.
    fn commit(self: Box<Self>) -> Result<(), BlobError>;
}

/// A committed blob, open for positional reads. Several threads may read at once.
#[expect(
    clippy::len_without_is_empty,
    reason = "a stored blob always holds a header and a segment, so is_empty would mean nothing"
)]
pub trait BlobSource: Send + Sync {
    /// Length of the stored (sealed) blob in bytes.
    ///
    /// # Errors
    ///
    /// [`BlobError::Io`] if the store fails.
    fn len(&self) -> Result<u64, BlobError>;

    /// Fills `buf` with the stored bytes starting at `offset`.
    ///
    /// # Errors
    ///
    /// [`BlobError::Io`] if the store fails or the blob ends before `buf` is full.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), BlobError>;
}
