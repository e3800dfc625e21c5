//! The segment journal: sealed segments of a file being rewritten in place.
//!
//! A segment of a blob that metadata already points at is never overwritten directly, because a
//! crash half way through the write would leave a segment that fails authentication. Its new
//! version goes into this table first. Rows start uncommitted (a spill of a large write) and
//! become committed in the same transaction that records the file's new size; only committed
//! rows are copied into the blob, and a start after a crash copies them again (the copy is
//! idempotent) before anything reads the blob.

use rusqlite::{Connection, params};

use super::MetaError;
use super::blobs::blob_id_from;
use crate::blob::BlobId;

/// Stores the sealed segment `index` of `blob`, replacing any earlier version of it.
pub(crate) fn put(
    conn: &Connection,
    blob: BlobId,
    index: u64,
    sealed: &[u8],
    committed: bool,
) -> Result<(), MetaError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO segment_journal (blob_id, idx, sealed, committed)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        blob.as_bytes(),
        index_sql(index),
        sealed,
        committed
    ])?;
    Ok(())
}

fn index_sql(index: u64) -> i64 {
    i64::try_from(index).expect("segment indexes stay far below i64::MAX")
}

/// The sealed segment `index` of `blob`, committed or not.
pub(crate) fn get(
    conn: &Connection,
    blob: BlobId,
    index: u64,
) -> Result<Option<Vec<u8>>, MetaError> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached("SELECT sealed FROM segment_journal WHERE blob_id = ?1 AND idx = ?2")?
        .query_row(params![blob.as_bytes(), index_sql(index)], |row| row.get(0))
        .optional()?)
}

/// Starts a checkpoint of `blob`: forgets the rows of the previous one (already copied into the
/// blob), drops spilled segments past `segment_count`, and commits the remaining spills.
pub(crate) fn begin_checkpoint(
    conn: &Connection,
    blob: BlobId,
    segment_count: u64,
) -> Result<(), MetaError> {
    conn.prepare_cached(
        "DELETE FROM segment_journal WHERE blob_id = ?1 AND (committed != 0 OR idx >= ?2)",
    )?
    .execute(params![blob.as_bytes(), index_sql(segment_count)])?;
    conn.prepare_cached("UPDATE segment_journal SET committed = 1 WHERE blob_id = ?1")?
        .execute(params![blob.as_bytes()])?;
    Ok(())
}

/// What [`for_each_committed`] hands each segment to: its index and sealed bytes.
pub(crate) type ApplySegment<'a> = dyn FnMut(u64, &[u8]) -> Result<(), crate::VaultError> + 'a;

/// Calls `apply` with each committed segment of `blob` below `segment_count`, in index order.
pub(crate) fn for_each_committed(
    conn: &Connection,
    blob: BlobId,
    segment_count: u64,
    apply: &mut ApplySegment<'_>,
) -> Result<(), crate::VaultError> {
    let mut stmt = conn.prepare_cached(
        "SELECT idx, sealed FROM segment_journal
         WHERE blob_id = ?1 AND committed != 0 AND idx < ?2 ORDER BY idx",
    )?;
    let mut rows = stmt.query(params![blob.as_bytes(), index_sql(segment_count)])?;
    while let Some(row) = rows.next()? {
        let index: i64 = row.get(0)?;
        let sealed = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
        apply(u64::try_from(index).unwrap_or(0), sealed)?;
    }
    Ok(())
}

/// Forgets every row of `blob`.
pub(crate) fn clear(conn: &Connection, blob: BlobId) -> Result<(), MetaError> {
    conn.prepare_cached("DELETE FROM segment_journal WHERE blob_id = ?1")?
        .execute(params![blob.as_bytes()])?;
    Ok(())
}

/// Every blob with rows in the journal.
pub(crate) fn blobs(conn: &Connection) -> Result<Vec<BlobId>, MetaError> {
    let mut stmt = conn.prepare("SELECT DISTINCT blob_id FROM segment_journal")?;
    let rows = stmt.query_map([], |row| row.get::<_, Vec<u8>>(0))?;
    let mut ids = Vec::new();
    for row in rows {
        ids.push(blob_id_from(&row?, "journal blob id")?);
    }
    Ok(ids)
}
