//! The object a preview is made of: found by bucket and key, decrypted range by range into
//! memory, never onto disk.
//!
//! Everything here blocks; callers run it on a blocking thread.

use vault::meta::EntryKind;
use vault::{Engine, ObjectKey, ObjectReader, VaultError};

use super::error::PreviewError;

/// Opens the object `key` of `bucket` for reading.
///
/// # Errors
/// `NoSuchBucket`, `NoSuchKey` (also for a key that cannot exist), `Unsupported` for a
/// directory marker, or a storage failure.
pub fn open(engine: &Engine, bucket: &str, key: &str) -> Result<ObjectReader, PreviewError> {
    let row = engine.bucket(bucket)?;
    let key = ObjectKey::parse(key).map_err(|_| PreviewError::NoSuchKey)?;
    let reader = engine.open_object(row.vault, &key)?;
    match reader.entry.kind {
        EntryKind::File => Ok(reader),
        EntryKind::Directory | EntryKind::Symlink => Err(PreviewError::Unsupported(
            "no preview of a directory marker".to_owned(),
        )),
    }
}

/// Appends the plaintext of `start..end` to `buf`, decrypting only the segments it touches.
/// Stops with an error rather than letting `buf` pass `start..end`'s length, whatever the
/// store hands back.
///
/// # Errors
/// A storage or integrity failure.
pub fn read_into(
    reader: &ObjectReader,
    start: u64,
    end: u64,
    buf: &mut Vec<u8>,
) -> Result<(), PreviewError> {
    let end = end.min(reader.len());
    if start >= end {
        return Ok(());
    }
    let wanted = usize::try_from(end - start).map_err(|_| {
        PreviewError::TooLarge("the range does not fit in memory on this machine".to_owned())
    })?;
    let limit = buf.len().saturating_add(wanted);
    buf.reserve_exact(wanted);
    reader
        .read_range(start, end, &mut |chunk| {
            if buf.len().saturating_add(chunk.len()) > limit {
                return Err(VaultError::Internal(
                    "the store returned more than the range asked for".to_owned(),
                ));
            }
            buf.extend_from_slice(chunk);
            Ok(())
        })
        .map_err(PreviewError::from)
}
