//! The parts of objects made by multipart uploads.
//!
//! Such an object keeps each uploaded part as its own sealed blob; its entry has no blob of its
//! own, and `object_parts` lists the part blobs with their offsets in the object. Completing an
//! upload is therefore a metadata change, whatever the object's size.

use rusqlite::{Connection, params};

use super::MetaError;
use super::blobs::{blob_id_from, queue_blob_collection};
use crate::blob::BlobId;
use crate::ids::EntryId;

/// One part of an object, or of an upload in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPart {
    /// The part number the client gave it (1..=10000).
    pub part_number: u32,
    /// Where the part starts in the object (0 for an upload's part until it is completed).
    pub offset: u64,
    /// Plaintext size.
    pub size: u64,
    /// The sealed content.
    pub blob: BlobId,
    /// The vault key version that sealed it.
    pub key_version: u32,
    /// Hex MD5 of the part.
    pub etag: String,
    /// The part's verified checksum (base64), when the upload declared an algorithm.
    pub checksum: Option<String>,
}

fn to_i64(value: u64, what: &str) -> Result<i64, MetaError> {
    i64::try_from(value).map_err(|_| MetaError::Corrupt {
        what: format!("{what} out of range"),
    })
}

fn from_i64(value: i64, what: &str) -> Result<u64, MetaError> {
    u64::try_from(value).map_err(|_| MetaError::Corrupt {
        what: format!("negative {what}"),
    })
}

/// Records the parts of an entry's content.
pub(crate) fn insert(
    conn: &Connection,
    entry: EntryId,
    parts: &[StoredPart],
) -> Result<(), MetaError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO object_parts (entry_id, part_number, offset, size, blob_id, key_version, etag, checksum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for part in parts {
        stmt.execute(params![
            entry.0,
            part.part_number,
            to_i64(part.offset, "part offset")?,
            to_i64(part.size, "part size")?,
            part.blob.as_bytes().to_vec(),
            part.key_version,
            part.etag,
            part.checksum
        ])?;
    }
    Ok(())
}

/// The parts of an entry, in order.
///
/// # Errors
/// A metadata failure or a corrupt row.
pub fn of_entry(conn: &Connection, entry: EntryId) -> Result<Vec<StoredPart>, MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT part_number, offset, size, blob_id, key_version, etag, checksum
         FROM object_parts WHERE entry_id = ?1 ORDER BY part_number",
    )?;
    let rows = stmt.query_map(params![entry.0], |row| {
        Ok((
            row.get::<_, u32>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, Vec<u8>>(3)?,
            row.get::<_, u32>(4)?,
            row.get::<_, String>(5)?,
            row.get::<_, Option<String>>(6)?,
        ))
    })?;
    let mut parts = Vec::new();
    for row in rows {
        let (part_number, offset, size, blob, key_version, etag, checksum) = row?;
        parts.push(StoredPart {
            part_number,
            offset: from_i64(offset, "part offset")?,
            size: from_i64(size, "part size")?,
            blob: blob_id_from(&blob, "object part")?,
            key_version,
            etag,
            checksum,
        });
    }
    Ok(parts)
}

/// Drops an entry's parts and queues their blobs for collection.
pub(crate) fn release(conn: &Connection, entry: EntryId) -> Result<(), MetaError> {
    for part in of_entry(conn, entry)? {
        queue_blob_collection(conn, part.blob)?;
    }
    conn.execute(
        "DELETE FROM object_parts WHERE entry_id = ?1",
        params![entry.0],
    )?;
    Ok(())
}
