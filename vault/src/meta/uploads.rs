//! Multipart uploads in progress and their parts.

use rusqlite::{Connection, OptionalExtension, params};

use super::blobs::{blob_id_from, queue_blob_collection};
use super::entries::ObjectAttrs;
use super::parts::StoredPart;
use super::{MetaError, now_ms};
use crate::ids::VaultId;

/// An upload in progress.
#[derive(Clone, Debug)]
pub struct Upload {
    /// The id the client uses for every later call.
    pub upload_id: String,
    /// The vault the object goes into.
    pub vault: VaultId,
    /// The object key.
    pub key: String,
    /// When it was created, milliseconds since the epoch.
    pub created_ms: i64,
    /// The attributes given at creation; the object gets them on completion.
    pub attrs: ObjectAttrs,
    /// The checksum algorithm declared at creation (`CRC32`, …), if any.
    pub checksum_algorithm: Option<String>,
}

/// A page of uploads of a vault, selected the way ListMultipartUploads does.
#[derive(Clone, Debug, Default)]
pub struct UploadQuery {
    /// Only keys starting with this.
    pub prefix: String,
    /// Resume after this key (and, with `upload_id_marker`, after that upload of it).
    pub key_marker: String,
    /// Resume after this upload of `key_marker`.
    pub upload_id_marker: String,
    /// At most this many uploads.
    pub max_uploads: usize,
}

const UPLOAD_COLUMNS: &str = "upload_id, vault_id, key, created_ms, attrs, checksum_algorithm";

fn upload_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Upload, String)> {
    Ok((
        Upload {
            upload_id: row.get(0)?,
            vault: VaultId(row.get(1)?),
            key: row.get(2)?,
            created_ms: row.get(3)?,
            attrs: ObjectAttrs::default(),
            checksum_algorithm: row.get(5)?,
        },
        row.get(4)?,
    ))
}

fn finish_upload((mut upload, attrs): (Upload, String)) -> Result<Upload, MetaError> {
    upload.attrs = serde_json::from_str(&attrs).map_err(|_| MetaError::Corrupt {
        what: format!("attributes of upload {}", upload.upload_id),
    })?;
    Ok(upload)
}

/// Records a new upload.
pub(crate) fn insert(conn: &Connection, upload: &Upload) -> Result<(), MetaError> {
    let attrs = serde_json::to_string(&upload.attrs).expect("attributes serialize");
    conn.execute(
        &format!("INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            upload.upload_id,
            upload.vault.0,
            upload.key,
            upload.created_ms,
            attrs,
            upload.checksum_algorithm
        ],
    )?;
    Ok(())
}

/// The upload with this id.
pub(crate) fn get(conn: &Connection, upload_id: &str) -> Result<Option<Upload>, MetaError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = ?1"
    ))?;
    stmt.query_row(params![upload_id], upload_from_row)
        .optional()?
        .map(finish_upload)
        .transpose()
}

/// A page of a vault's uploads by key, then creation time; the flag says whether more follow.
pub(crate) fn list(
    conn: &Connection,
    vault: VaultId,
    query: &UploadQuery,
) -> Result<(Vec<Upload>, bool), MetaError> {
    let limit = i64::try_from(query.max_uploads.saturating_add(1)).unwrap_or(i64::MAX);
    let upper = crate::path::prefix_successor(&query.prefix);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {UPLOAD_COLUMNS} FROM uploads
         WHERE vault_id = ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3)
           AND (key > ?4 OR (key = ?4 AND (created_ms, upload_id) >
                (SELECT created_ms, upload_id FROM uploads WHERE upload_id = ?5)))
         ORDER BY key, created_ms, upload_id LIMIT ?6"
    ))?;
    let rows = stmt.query_map(
        params![
            vault.0,
            query.prefix,
            upper,
            query.key_marker,
            query.upload_id_marker,
            limit
        ],
        upload_from_row,
    )?;
    let mut uploads = Vec::new();
    for row in rows {
        uploads.push(finish_upload(row?)?);
    }
    let truncated = uploads.len() > query.max_uploads;
    uploads.truncate(query.max_uploads);
    Ok((uploads, truncated))
}

/// Uploads created before `before_ms`, for the janitor.
pub(crate) fn older_than(conn: &Connection, before_ms: i64) -> Result<Vec<String>, MetaError> {
    let mut stmt = conn.prepare_cached("SELECT upload_id FROM uploads WHERE created_ms < ?1")?;
    let rows = stmt.query_map(params![before_ms], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Removes an upload; `keep` names the part blobs that live on in a completed object, every
/// other part blob is queued for collection.
pub(crate) fn remove(
    conn: &Connection,
    upload_id: &str,
    keep: &[crate::blob::BlobId],
) -> Result<(), MetaError> {
    for part in parts(conn, upload_id, 0, usize::MAX)?.0 {
        if !keep.contains(&part.blob) {
            queue_blob_collection(conn, part.blob)?;
        }
    }
    conn.execute(
        "DELETE FROM uploads WHERE upload_id = ?1",
        params![upload_id],
    )?;
    Ok(())
}

/// Records a part, replacing (and queueing the blob of) an earlier upload of the same number.
pub(crate) fn put_part(
    conn: &Connection,
    upload_id: &str,
    part: &StoredPart,
) -> Result<(), MetaError> {
    let old: Option<Vec<u8>> = conn
        .prepare_cached(
            "SELECT blob_id FROM upload_parts WHERE upload_id = ?1 AND part_number = ?2",
        )?
        .query_row(params![upload_id, part.part_number], |row| row.get(0))
        .optional()?;
    if let Some(old) = old {
        queue_blob_collection(conn, blob_id_from(&old, "upload part")?)?;
    }
    let size = i64::try_from(part.size).map_err(|_| MetaError::Corrupt {
        what: "part size".into(),
    })?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO upload_parts
         (upload_id, part_number, size, blob_id, key_version, etag, checksum, modified_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        upload_id,
        part.part_number,
        size,
        part.blob.as_bytes().to_vec(),
        part.key_version,
        part.etag,
        part.checksum,
        now_ms()
    ])?;
    Ok(())
}

/// A page of an upload's parts after `marker`, with their modification times; the flag says
/// whether more follow.
pub(crate) fn parts(
    conn: &Connection,
    upload_id: &str,
    marker: u32,
    max_parts: usize,
) -> Result<(Vec<StoredPart>, Vec<i64>, bool), MetaError> {
    let limit = i64::try_from(max_parts.saturating_add(1)).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT part_number, size, blob_id, key_version, etag, checksum, modified_ms FROM upload_parts
         WHERE upload_id = ?1 AND part_number > ?2 ORDER BY part_number LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![upload_id, marker, limit], |row| {
        Ok((
            row.get::<_, u32>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, Vec<u8>>(2)?,
            row.get::<_, u32>(3)?,
            row.get::<_, String>(4)?,
            row.get::<_, Option<String>>(5)?,
            row.get::<_, i64>(6)?,
        ))
    })?;
    let mut parts = Vec::new();
    let mut modified = Vec::new();
    for row in rows {
        let (part_number, size, blob, key_version, etag, checksum, modified_ms) = row?;
        parts.push(StoredPart {
            part_number,
            offset: 0,
            size: u64::try_from(size).map_err(|_| MetaError::Corrupt {
                what: "part size".into(),
            })?,
            blob: blob_id_from(&blob, "upload part")?,
            key_version,
            etag,
            checksum,
        });
        modified.push(modified_ms);
    }
    let truncated = parts.len() > max_parts;
    parts.truncate(max_parts);
    modified.truncate(max_parts);
    Ok((parts, modified, truncated))
}

/// A fresh upload id: 32 random hex characters.
#[must_use]
pub fn new_upload_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// The creation time to record for a new upload.
#[must_use]
pub fn created_now() -> i64 {
    now_ms()
}
