//! Entry rows: the path/inode/id cache of every vault.
//!
//! Each file, directory and symlink is one row, addressed three ways: by id (the inode number),
//! by `(parent_id, name)` (a directory lookup) and by `(vault_id, path)` (an object key). A
//! directory's path ends in `/`, a file's does not, so one index range over `path` yields a
//! bucket listing in S3's byte order, and the unique `(parent_id, name)` index stops a file and
//! a directory from ever sharing a name.
//!
//! Directories made on the way to a key (`a/` for `a/b.txt`) are *implicit*: they hold the tree
//! together but are not objects, and they disappear again when their last child goes. A
//! directory created on purpose (a `key/` marker or a `mkdir`) is *explicit* and is listed as a
//! zero-byte object.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::blobs::queue_blob_collection;
use super::parts::{self, StoredPart};
use super::{MetaError, now_ms};
use crate::blob::BlobId;
use crate::error::VaultError;
use crate::ids::{EntryId, VaultId};
use crate::path::{ObjectKey, prefix_successor};

/// Default permission bits of a file created through the gateway.
pub const DEFAULT_FILE_MODE: u32 = 0o644;
/// Default permission bits of a directory created through the gateway.
pub const DEFAULT_DIR_MODE: u32 = 0o755;

pub(crate) const ENTRY_COLUMNS: &str = "id, vault_id, parent_id, name, path, kind, explicit, size, \
                             mode, mtime_ms, blob_id, key_version, etag, attrs, parts, uid, gid, \
                             ctime_ms, atime_ms, target, inline IS NOT NULL";

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
}

impl EntryKind {
    pub(crate) fn to_sql(self) -> i64 {
        match self {
            Self::File => 1,
            Self::Directory => 2,
            Self::Symlink => 3,
        }
    }

    fn from_sql(value: i64) -> Result<Self, MetaError> {
        match value {
            1 => Ok(Self::File),
            2 => Ok(Self::Directory),
            3 => Ok(Self::Symlink),
            other => Err(MetaError::Corrupt {
                what: format!("entry kind {other}"),
            }),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Directory => "directory",
            Self::Symlink => "symlink",
        }
    }
}

/// HTTP-level attributes of an object, kept so they round-trip through the gateway.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAttrs {
    /// `Content-Type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Content-Encoding` (never `aws-chunked`, which only frames an upload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// `Cache-Control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `Expires`, as the client sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `x-amz-meta-*` headers, by lowercased name without the prefix.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    /// Verified checksums by algorithm name (`CRC32`, `SHA256`, …), base64 as S3 shows them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, String>,
}

/// One row of the entries table.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The stable id (inode number).
    pub id: EntryId,
    /// The vault it belongs to.
    pub vault: VaultId,
    /// Its directory; `None` for a vault's root.
    pub parent: Option<EntryId>,
    /// Its name inside the parent; empty for a vault's root.
    pub name: String,
    /// Its object key: `a/b.txt` for a file, `a/` for a directory, empty for the root.
    pub path: String,
    /// File, directory or symlink.
    pub kind: EntryKind,
    /// For a directory: created on purpose, and so listed as a `key/` object.
    pub explicit: bool,
    /// Plaintext size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Last modification, in milliseconds since the epoch.
    pub mtime_ms: i64,
    /// The blob holding the content, if there is any.
    pub blob: Option<BlobId>,
    /// The vault key version the blob was sealed with.
    pub key_version: Option<u32>,
    /// The hex MD5 of the content (the S3 ETag without quotes).
    pub etag: Option<String>,
    /// Attributes that round-trip through the gateway.
    pub attrs: ObjectAttrs,
    /// For an object made by a multipart upload, how many parts hold its content (its `blob` is
    /// then `None`); 0 otherwise.
    pub parts: u32,
    /// Owner user id (0 for entries made through the gateway).
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Last status change, in milliseconds since the epoch.
    pub ctime_ms: i64,
    /// Last access as recorded (the mount does not update it on reads).
    pub atime_ms: i64,
    /// For a symlink, where it points.
    pub target: Option<String>,
    /// Whether the sealed content lives in the row itself (a small object) rather than in the
    /// blob file `blob` names.
    pub inline: bool,
}

impl Entry {
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Result<Self, MetaError>> {
        Self::from_offset_row(row, 0)
    }

    /// Reads an entry whose [`ENTRY_COLUMNS`] start at column `base` of `row`.
    pub(crate) fn from_offset_row(
        row: &Row<'_>,
        base: usize,
    ) -> rusqlite::Result<Result<Self, MetaError>> {
        let kind: i64 = row.get(base + 5)?;
        let blob: Option<Vec<u8>> = row.get(base + 10)?;
        let attrs: Option<String> = row.get(base + 13)?;
        let size: i64 = row.get(base + 7)?;
        let mode: i64 = row.get(base + 8)?;
        let key_version: Option<i64> = row.get(base + 11)?;
        let mtime_ms: i64 = row.get(base + 9)?;
        let ctime_ms: Option<i64> = row.get(base + 17)?;
        let atime_ms: Option<i64> = row.get(base + 18)?;
        let uid: i64 = row.get(base + 15)?;
        let gid: i64 = row.get(base + 16)?;
        let build = || -> Result<Self, MetaError> {
            let corrupt = |what: &str| MetaError::Corrupt {
                what: what.to_owned(),
            };
            let blob = match blob {
                Some(bytes) => Some(
                    <[u8; 16]>::try_from(bytes.as_slice())
                        .map(BlobId::from_bytes)
                        .map_err(|_| corrupt("blob id length"))?,
                ),
                None => None,
            };
            let attrs = match attrs {
                Some(json) => {
                    serde_json::from_str(&json).map_err(|_| corrupt("entry attributes"))?
                }
                None => ObjectAttrs::default(),
            };
            Ok(Self {
                id: EntryId(row.get(base)?),
                vault: VaultId(row.get(base + 1)?),
                parent: row.get::<_, Option<i64>>(2)?.map(EntryId),
                name: row.get(base + 3)?,
                path: row.get(base + 4)?,
                kind: EntryKind::from_sql(kind)?,
                explicit: row.get(base + 6)?,
                size: u64::try_from(size).map_err(|_| corrupt("negative size"))?,
                mode: u32::try_from(mode).map_err(|_| corrupt("mode"))?,
                mtime_ms,
                blob,
                key_version: key_version
                    .map(u32::try_from)
                    .transpose()
                    .map_err(|_| corrupt("key version"))?,
                etag: row.get(base + 12)?,
                attrs,
                parts: row.get(base + 14)?,
                uid: u32::try_from(uid).map_err(|_| corrupt("uid"))?,
                gid: u32::try_from(gid).map_err(|_| corrupt("gid"))?,
                ctime_ms: ctime_ms.unwrap_or(mtime_ms),
                atime_ms: atime_ms.unwrap_or(mtime_ms),
                target: row.get(base + 19)?,
                inline: row.get(base + 20)?,
            })
        };
        Ok(build())
    }
}

/// A precondition on a write, checked in the same transaction as the write itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum WriteCondition {
    /// Write unconditionally.
    #[default]
    None,
    /// `If-None-Match: *`: only if no object has the key.
    IfAbsent,
    /// `If-Match: "etag"`: only if the current object has this ETag (hex, unquoted; `*` for any).
    IfMatch(String),
}

/// The content of a file about to be committed.
#[derive(Clone, Debug)]
pub struct NewFile {
    /// The sealed content, or `None` for an empty file.
    pub blob: Option<BlobId>,
    /// The vault key version `blob` was sealed with.
    pub key_version: u32,
    /// Plaintext size.
    pub size: u64,
    /// Hex MD5 of the plaintext.
    pub etag: String,
    /// Gateway attributes.
    pub attrs: ObjectAttrs,
    /// For content assembled from a multipart upload: its parts, in order (`blob` is `None`).
    pub parts: Vec<StoredPart>,
    /// For a small object: the sealed blob itself, kept in the row (`blob` names it).
    pub inline: Option<Vec<u8>>,
}

/// What a committed file write changed.
#[derive(Clone, Debug)]
pub struct PutOutcome {
    /// The entry that now holds the content.
    pub entry: Entry,
    /// Whether the write replaced stored content, now queued for collection.
    pub replaced_content: bool,
}

/// Selection of a listing, with S3's meaning of each field.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Only keys starting with this.
    pub prefix: String,
    /// Roll keys up to the first occurrence of this after the prefix (empty: no roll-up).
    pub delimiter: String,
    /// Only keys (and prefixes) greater than this.
    pub start_after: String,
    /// Resume after this common prefix (a previous page ended on it).
    pub after_prefix: bool,
    /// At most this many keys plus common prefixes.
    pub max_keys: usize,
}

/// One item of a listing page.
#[derive(Clone, Debug)]
pub enum ListItem {
    /// An object.
    Object(Box<Entry>),
    /// A common prefix rolled up at the delimiter.
    Prefix(String),
}

/// Creates the root directory of a new vault.
pub(crate) fn create_root(conn: &Connection, vault: VaultId) -> Result<EntryId, MetaError> {
    conn.execute(
        "INSERT INTO entries (vault_id, parent_id, name, path, kind, mode, mtime_ms)
         VALUES (?1, NULL, '', '', ?2, ?3, ?4)",
        params![
            vault.0,
            EntryKind::Directory.to_sql(),
            DEFAULT_DIR_MODE,
            now_ms()
        ],
    )?;
    Ok(EntryId(conn.last_insert_rowid()))
}

pub(crate) fn query_one(
    conn: &Connection,
    sql_where: &str,
    args: impl rusqlite::Params,
) -> Result<Option<Entry>, MetaError> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE {sql_where}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let found = stmt.query_row(args, Entry::from_row).optional()?;
    found.transpose()
}

/// The entry at `path` of `vault` (`""` is the root, `a/` a directory, `a` a file).
pub fn by_path(conn: &Connection, vault: VaultId, path: &str) -> Result<Option<Entry>, MetaError> {
    query_one(conn, "vault_id = ?1 AND path = ?2", params![vault.0, path])
}

/// The sealed content of a small object kept in its row, while the row still holds `blob`.
pub fn inline_content(
    conn: &Connection,
    id: EntryId,
    blob: BlobId,
) -> Result<Option<Vec<u8>>, MetaError> {
    Ok(conn
        .prepare_cached("SELECT inline FROM entries WHERE id = ?1 AND blob_id = ?2")?
        .query_row(params![id.0, blob.as_bytes()], |row| row.get(0))
        .optional()?
        .flatten())
}

/// The entry with this id.
pub fn by_id(conn: &Connection, id: EntryId) -> Result<Option<Entry>, MetaError> {
    query_one(conn, "id = ?1", params![id.0])
}

/// The entry called `name` inside directory `parent`.
pub fn child(conn: &Connection, parent: EntryId, name: &str) -> Result<Option<Entry>, MetaError> {
    query_one(
        conn,
        "parent_id = ?1 AND name = ?2",
        params![parent.0, name],
    )
}

fn root(conn: &Connection, vault: VaultId) -> Result<Entry, MetaError> {
    by_path(conn, vault, "")?.ok_or_else(|| MetaError::Corrupt {
        what: format!("vault {vault} has no root entry"),
    })
}

/// Walks `segments` down from the root, creating implicit directories where none exist.
fn ensure_directories<'a>(
    conn: &Connection,
    vault: VaultId,
    key: &ObjectKey,
    segments: impl Iterator<Item = &'a str>,
) -> Result<Entry, VaultError> {
    let mut dir = root(conn, vault)?;
    let mut path = String::new();
    for name in segments {
        path.push_str(name);
        path.push('/');
        dir = match child(conn, dir.id, name)? {
            Some(existing) if existing.kind == EntryKind::Directory => existing,
            Some(existing) => {
                return Err(VaultError::KeyConflict {
                    key: key.as_str().to_owned(),
                    existing: existing.kind.noun(),
                    at: existing.path,
                });
            }
            None => insert_directory(conn, vault, dir.id, name, &path, false)?,
        };
    }
    Ok(dir)
}

fn insert_directory(
    conn: &Connection,
    vault: VaultId,
    parent: EntryId,
    name: &str,
    path: &str,
    explicit: bool,
) -> Result<Entry, MetaError> {
    conn.prepare_cached(
        "INSERT INTO entries (vault_id, parent_id, name, path, kind, explicit, mode, mtime_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        vault.0,
        parent.0,
        name,
        path,
        EntryKind::Directory.to_sql(),
        explicit,
        DEFAULT_DIR_MODE,
        now_ms()
    ])?;
    by_id(conn, EntryId(conn.last_insert_rowid()))?.ok_or_else(|| MetaError::Corrupt {
        what: "inserted directory vanished".to_owned(),
    })
}

fn check_condition(
    key: &ObjectKey,
    current: Option<&Entry>,
    condition: &WriteCondition,
) -> Result<(), VaultError> {
    let holds = match (condition, current) {
        (WriteCondition::None, _) => true,
        (WriteCondition::IfAbsent, current) => current.is_none(),
        (WriteCondition::IfMatch(_), None) => false,
        (WriteCondition::IfMatch(want), Some(entry)) => {
            want == "*" || entry.etag.as_deref() == Some(want.as_str())
        }
    };
    if holds {
        Ok(())
    } else {
        Err(VaultError::PreconditionFailed(key.as_str().to_owned()))
    }
}

/// Points `key` at new content, creating parent directories, in the caller's transaction.
///
/// An existing file keeps its entry id (a mounted view sees the same inode with new content);
/// its old blob is queued for collection and returned.
///
/// # Errors
/// `KeyConflict` when a file stands where a directory is needed or the reverse,
/// `PreconditionFailed` when `condition` does not hold.
pub fn put_file(
    conn: &Connection,
    vault: VaultId,
    key: &ObjectKey,
    file: &NewFile,
    condition: &WriteCondition,
) -> Result<PutOutcome, VaultError> {
    let segments: Vec<&str> = key.segments().collect();
    let (name, parents) = segments.split_last().expect("a parsed key has a segment");
    let parent = ensure_directories(conn, vault, key, parents.iter().copied())?;
    let current = child(conn, parent.id, name)?;
    if let Some(existing) = &current
        && existing.kind != EntryKind::File
    {
        return Err(VaultError::KeyConflict {
            key: key.as_str().to_owned(),
            existing: existing.kind.noun(),
            at: existing.path.clone(),
        });
    }
    check_condition(key, current.as_ref(), condition)?;

    let attrs = serde_json::to_string(&file.attrs).expect("attributes serialize");
    let blob = file.blob.map(|id| id.as_bytes().to_vec());
    let size = i64::try_from(file.size).map_err(|_| MetaError::Corrupt {
        what: "size".into(),
    })?;
    let id = match &current {
        Some(existing) => {
            if existing.parts > 0 {
                parts::release(conn, existing.id)?;
            }
            conn.prepare_cached(
                "UPDATE entries SET size = ?2, mtime_ms = ?3, ctime_ms = ?3, blob_id = ?4,
                 key_version = ?5, etag = ?6, attrs = ?7, parts = ?8, inline = ?9 WHERE id = ?1",
            )?
            .execute(params![
                existing.id.0,
                size,
                now_ms(),
                blob,
                file.key_version,
                file.etag,
                attrs,
                file.parts.len(),
                file.inline
            ])?;
            existing.id
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO entries (vault_id, parent_id, name, path, kind, size, mode, mtime_ms,
                 blob_id, key_version, etag, attrs, parts, inline)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                vault.0,
                parent.id.0,
                name,
                key.as_str(),
                EntryKind::File.to_sql(),
                size,
                DEFAULT_FILE_MODE,
                now_ms(),
                blob,
                file.key_version,
                file.etag,
                attrs,
                file.parts.len(),
                file.inline
            ])?;
            EntryId(conn.last_insert_rowid())
        }
    };
    parts::insert(conn, id, &file.parts)?;
    let replaced_content = current
        .as_ref()
        .is_some_and(|old| old.blob.is_some() || old.parts > 0);
    if let Some(old) = current.and_then(|old| old.blob) {
        queue_blob_collection(conn, old)?;
    }
    let entry = by_id(conn, id)?.ok_or_else(|| MetaError::Corrupt {
        what: "written entry vanished".into(),
    })?;
    Ok(PutOutcome {
        entry,
        replaced_content,
    })
}

/// Creates (or marks as explicit) the directory named by a `key/` marker.
///
/// # Errors
/// `KeyConflict` when a file stands on the path.
pub fn put_directory(
    conn: &Connection,
    vault: VaultId,
    key: &ObjectKey,
    condition: &WriteCondition,
) -> Result<Entry, VaultError> {
    let segments: Vec<&str> = key.segments().collect();
    let (name, parents) = segments.split_last().expect("a parsed key has a segment");
    let parent = ensure_directories(conn, vault, key, parents.iter().copied())?;
    match child(conn, parent.id, name)? {
        Some(existing) if existing.kind != EntryKind::Directory => Err(VaultError::KeyConflict {
            key: key.as_str().to_owned(),
            existing: existing.kind.noun(),
            at: existing.path,
        }),
        Some(existing) => {
            let visible = existing.explicit.then_some(&existing);
            check_condition(key, visible, condition)?;
            conn.execute(
                "UPDATE entries SET explicit = 1, mtime_ms = ?2 WHERE id = ?1",
                params![existing.id.0, now_ms()],
            )?;
            Ok(by_id(conn, existing.id)?.unwrap_or(existing))
        }
        None => {
            check_condition(key, None, condition)?;
            Ok(insert_directory(
                conn,
                vault,
                parent.id,
                name,
                key.as_str(),
                true,
            )?)
        }
    }
}

/// Removes the object `key`, if there is one, and prunes implicit directories it leaves empty.
///
/// Deleting a directory marker whose directory still has children only hides the marker: the
/// children keep the prefix alive, as in S3. Returns the removed entry, whose blob is queued for
/// collection.
///
/// Implicit directories removed on the way are pushed to `pruned`.
pub fn delete_object(
    conn: &Connection,
    vault: VaultId,
    key: &ObjectKey,
    pruned: &mut Vec<Entry>,
) -> Result<Option<Entry>, VaultError> {
    let Some(entry) = by_path(conn, vault, key.as_str())? else {
        return Ok(None);
    };
    if entry.kind == EntryKind::Directory {
        if !entry.explicit {
            return Ok(None);
        }
        if has_children(conn, entry.id)? {
            conn.execute(
                "UPDATE entries SET explicit = 0 WHERE id = ?1",
                params![entry.id.0],
            )?;
            return Ok(Some(entry));
        }
    }
    if entry.parts > 0 {
        parts::release(conn, entry.id)?;
    }
    conn.execute("DELETE FROM entries WHERE id = ?1", params![entry.id.0])?;
    if let Some(blob) = entry.blob {
        queue_blob_collection(conn, blob)?;
    }
    prune_implicit_parents(conn, entry.parent, pruned)?;
    Ok(Some(entry))
}

pub(crate) fn has_children(conn: &Connection, dir: EntryId) -> Result<bool, MetaError> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM entries WHERE parent_id = ?1 LIMIT 1")?;
    Ok(stmt.exists(params![dir.0])?)
}

fn prune_implicit_parents(
    conn: &Connection,
    mut dir: Option<EntryId>,
    pruned: &mut Vec<Entry>,
) -> Result<(), MetaError> {
    while let Some(id) = dir {
        let Some(entry) = by_id(conn, id)? else {
            return Ok(());
        };
        if entry.parent.is_none() || entry.explicit || has_children(conn, id)? {
            return Ok(());
        }
        conn.execute("DELETE FROM entries WHERE id = ?1", params![id.0])?;
        dir = entry.parent;
        pruned.push(entry);
    }
    Ok(())
}

/// Whether `vault` holds no object at all.
pub fn is_empty(conn: &Connection, vault: VaultId) -> Result<bool, MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT 1 FROM entries WHERE vault_id = ?1 AND parent_id IS NOT NULL LIMIT 1",
    )?;
    Ok(!stmt.exists(params![vault.0])?)
}

/// One page of the objects of `vault` in key order, with common prefixes rolled up.
///
/// Returns the items and whether more follow. The work is bounded by the page size plus the
/// implicit directories passed over, never by the size of the vault: each rolled-up prefix is
/// skipped with one index seek.
pub fn list(
    conn: &Connection,
    vault: VaultId,
    query: &ListQuery,
) -> Result<(Vec<ListItem>, bool), MetaError> {
    let upper = prefix_successor(&query.prefix);
    let mut items = Vec::new();
    // The lower bound: strictly after `after` when set, else from the prefix.
    let mut after: Option<String> = None;
    let mut from = query.prefix.clone();
    if !query.start_after.is_empty() && query.start_after >= query.prefix {
        if query.after_prefix {
            match prefix_successor(&query.start_after) {
                Some(next) => from = next,
                None => return Ok((items, false)),
            }
        } else {
            after = Some(query.start_after.clone());
        }
    }
    let batch = query.max_keys.clamp(1, 1000) + 1;
    loop {
        let rows = scan(
            conn,
            vault,
            &from,
            after.as_deref(),
            upper.as_deref(),
            batch,
        )?;
        let exhausted = rows.len() < batch;
        let mut reseek = None;
        for entry in rows {
            after = Some(entry.path.clone());
            let rest = &entry.path[query.prefix.len()..];
            let rolled = (!query.delimiter.is_empty())
                .then(|| rest.find(&query.delimiter))
                .flatten()
                .map(|at| format!("{}{}", query.prefix, &rest[..at + query.delimiter.len()]));
            if let Some(common) = rolled {
                if items.len() == query.max_keys {
                    return Ok((items, true));
                }
                let already_returned = !query.start_after.is_empty() && common <= query.start_after;
                if !already_returned {
                    items.push(ListItem::Prefix(common.clone()));
                }
                reseek = Some(common);
                break;
            }
            if entry.kind == EntryKind::Directory && !entry.explicit {
                continue;
            }
            if items.len() == query.max_keys {
                return Ok((items, true));
            }
            items.push(ListItem::Object(Box::new(entry)));
        }
        match reseek {
            Some(common) => match prefix_successor(&common) {
                Some(next) => {
                    from = next;
                    after = None;
                }
                None => return Ok((items, false)),
            },
            None if exhausted => return Ok((items, false)),
            None => {}
        }
    }
}

fn scan(
    conn: &Connection,
    vault: VaultId,
    from: &str,
    after: Option<&str>,
    upper: Option<&str>,
    limit: usize,
) -> Result<Vec<Entry>, MetaError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let lower = after.unwrap_or(from);
    let lower_op = if after.is_some() { ">" } else { ">=" };
    let upper_clause = if upper.is_some() {
        "AND path < ?3"
    } else {
        "AND ?3 IS NULL"
    };
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM entries WHERE vault_id = ?1 AND path {lower_op} ?2
         {upper_clause} AND parent_id IS NOT NULL ORDER BY path LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![vault.0, lower, upper, limit], Entry::from_row)?;
    let mut entries = Vec::new();
    for row in rows {
        entries.push(row??);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests;
