//! Blobs rewritten in place, segment by segment, for files written through the mount.
//!
//! A [`MutableBlob`] is the sealed file of one blob opened for positional reads and writes. It
//! knows nothing of segments or keys: the engine seals each segment before it gets here, so the
//! store still only ever sees ciphertext. Crash safety is the engine's business too: it writes a
//! blob directly only while no metadata points at it, and otherwise goes through the segment
//! journal in the metadata database.

use super::BlobError;

/// A blob open for positional reads and writes.
#[expect(
    clippy::len_without_is_empty,
    reason = "a blob always holds a header, so is_empty would mean nothing"
)]
pub trait MutableBlob: Send + Sync {
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

    /// Writes all of `buf` at `offset`, extending the blob if needed.
    ///
    /// # Errors
    ///
    /// [`BlobError::Io`] if the store fails (a full disk among others).
    fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<(), BlobError>;

    /// Cuts or extends the blob to `len` bytes.
    ///
    /// # Errors
    ///
    /// [`BlobError::Io`] if the store fails.
    fn set_len(&self, len: u64) -> Result<(), BlobError>;

    /// Makes everything written so far durable, and the blob's name with it.
    ///
    /// # Errors
    ///
    /// [`BlobError::Io`] if the store fails; what was written may then be lost.
    fn sync(&self) -> Result<(), BlobError>;
}
