//! The queue of blobs to delete.
//!
//! A blob is queued in the same transaction that stops referencing it, and deleted from the
//! blob store only after that transaction commits, so a crash can never leave metadata pointing
//! at a deleted blob; at worst a queued blob is deleted on the next pass.

use std::collections::HashSet;

use rusqlite::{Connection, params};

use super::{MetaError, now_ms};
use crate::blob::BlobId;

/// Reads a blob id column.
pub(crate) fn blob_id_from(bytes: &[u8], what: &str) -> Result<BlobId, MetaError> {
    <[u8; 16]>::try_from(bytes)
        .map(BlobId::from_bytes)
        .map_err(|_| MetaError::Corrupt {
            what: format!("{what} blob id"),
        })
}

/// Queues a blob that no entry points at any more; it is deleted after the commit.
pub(crate) fn queue_blob_collection(conn: &Connection, blob: BlobId) -> Result<(), MetaError> {
    conn.prepare_cached("INSERT OR IGNORE INTO blob_gc (blob_id, queued_ms) VALUES (?1, ?2)")?
        .execute(params![blob.as_bytes().to_vec(), now_ms()])?;
    Ok(())
}

/// The blobs waiting to be deleted.
pub(crate) fn queued_blobs(conn: &Connection, limit: usize) -> Result<Vec<BlobId>, MetaError> {
    let mut stmt = conn.prepare_cached("SELECT blob_id FROM blob_gc LIMIT ?1")?;
    let rows = stmt.query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
        row.get::<_, Vec<u8>>(0)
    })?;
    let mut ids = Vec::new();
    for bytes in rows {
        let bytes = bytes?;
        let id = <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| MetaError::Corrupt {
            what: "queued blob id".into(),
        })?;
        ids.push(BlobId::from_bytes(id));
    }
    Ok(ids)
}

/// Forgets a queued blob once it is deleted.
pub(crate) fn forget_queued_blob(conn: &Connection, blob: BlobId) -> Result<(), MetaError> {
    conn.execute(
        "DELETE FROM blob_gc WHERE blob_id = ?1",
        params![blob.as_bytes().to_vec()],
    )?;
    Ok(())
}

/// Every blob an entry, an object part or an upload part points at.
pub(crate) fn referenced_blobs(conn: &Connection) -> Result<HashSet<BlobId>, MetaError> {
    let mut stmt = conn.prepare(
        "SELECT blob_id FROM entries WHERE blob_id IS NOT NULL
         UNION ALL SELECT blob_id FROM object_parts
         UNION ALL SELECT blob_id FROM upload_parts",
    )?;
    let rows = stmt.query_map([], |row| row.get::<_, Vec<u8>>(0))?;
    let mut ids = HashSet::new();
    for bytes in rows {
        let bytes = bytes?;
        let id = <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| MetaError::Corrupt {
            what: "entry blob id".into(),
        })?;
        ids.insert(BlobId::from_bytes(id));
    }
    Ok(ids)
}
