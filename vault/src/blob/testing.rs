//! Helpers shared by the blob tests.

use crate::crypto::SecretKey;

use super::{BlobError, BlobId, BlobReader, BlobStore, BlobWriter};

/// Bytes that differ from segment to segment, so a misplaced segment cannot go unnoticed.
pub(crate) fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8)
        .collect()
}

/// Writes `chunks` as a new blob under key version 1 and checks the reported length.
pub(crate) fn write_blob(store: &dyn BlobStore, key: &SecretKey, chunks: &[&[u8]]) -> BlobId {
    let id = BlobId::generate();
    let mut writer = BlobWriter::new(store, id, key, 1).unwrap();
    for chunk in chunks {
        writer.write(chunk).unwrap();
    }

    let expected: usize = chunks.iter().map(|c| c.len()).sum();
    assert_eq!(writer.finish().unwrap(), expected as u64);
    id
}

/// Opens blob `id` with `key` for every key version.
pub(crate) fn open(
    store: &dyn BlobStore,
    id: BlobId,
    key: &SecretKey,
) -> Result<BlobReader, BlobError> {
    BlobReader::open(store, id, |_| Some(key.clone()))
}

/// Reads `start..end` of the blob through `read_range`.
pub(crate) fn read_range(reader: &BlobReader, start: u64, end: u64) -> Result<Vec<u8>, BlobError> {
    let mut out = Vec::new();
    reader.read_range(start, end, &mut |chunk| {
        out.extend_from_slice(chunk);
        Ok(())
    })?;
    Ok(out)
}

/// Opens blob `id` with `key` and reads all of it.
pub(crate) fn read_all(
    store: &dyn BlobStore,
    id: BlobId,
    key: &SecretKey,
) -> Result<Vec<u8>, BlobError> {
    read_range(&open(store, id, key)?, 0, u64::MAX)
}
