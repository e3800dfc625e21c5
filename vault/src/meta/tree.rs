//! The namespace as the mount sees it: directory pages by id, creating and removing single
//! entries, renames that carry whole subtrees, and attribute changes.
//!
//! The gateway's functions in [`super::entries`] work by object key and create or prune implicit
//! directories on the way; these work by entry and never do either: a directory the user sees
//! in the mount stays until the user removes it.

use rusqlite::{Connection, params};

use super::blobs::queue_blob_collection;
use super::entries::{self, ENTRY_COLUMNS, Entry, EntryKind, has_children};
use super::{MetaError, now_ms, parts};
use crate::error::{TreeError, VaultError};
use crate::ids::EntryId;
use crate::path::{ObjectKey, prefix_successor};

/// What to create in a directory.
#[derive(Clone, Debug)]
pub struct NewNode {
    /// File, directory or symlink.
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// For a symlink, where it points.
    pub target: Option<String>,
}

/// How a rename treats an entry already at the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenameMode {
    /// Replace it, as `rename(2)` does.
    Replace,
    /// Fail with `Exists` (`RENAME_NOREPLACE`).
    NoReplace,
    /// Swap the two entries (`RENAME_EXCHANGE`); the destination must exist.
    Exchange,
}

/// An attribute change; `None` leaves the attribute as it is.
#[derive(Clone, Debug, Default)]
pub struct AttrChange {
    /// Permission bits.
    pub mode: Option<u32>,
    /// Owner.
    pub uid: Option<u32>,
    /// Group.
    pub gid: Option<u32>,
    /// Last access, milliseconds since the epoch.
    pub atime_ms: Option<i64>,
    /// Last modification, milliseconds since the epoch.
    pub mtime_ms: Option<i64>,
}

/// The MD5 of no bytes: the ETag of every empty object.
pub const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

fn tree_error(kind: TreeError, entry_path: &str) -> VaultError {
    VaultError::Tree {
        kind,
        path: entry_path.to_owned(),
    }
}

/// The entry `id`, or `NotFound`.
pub(crate) fn require(conn: &Connection, id: EntryId) -> Result<Entry, VaultError> {
    entries::by_id(conn, id)?.ok_or_else(|| tree_error(TreeError::NotFound, &format!("#{id}")))
}

/// Up to `limit` entries of directory `dir` with ids above `after`, in id order. Ids only
/// grow, so a directory read in pages by id sees every entry that stays put exactly once, however
/// many are added or removed between pages.
pub fn children_after(
    conn: &Connection,
    dir: EntryId,
    after: i64,
    limit: usize,
) -> Result<Vec<Entry>, MetaError> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM entries WHERE parent_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![dir.0, after, limit], Entry::from_row)?;
    let mut children = Vec::new();
    for row in rows {
        children.push(row??);
    }
    Ok(children)
}

/// The path `name` gets inside `dir`, checked as an object key.
fn child_path(dir: &Entry, name: &str, kind: EntryKind) -> Result<String, VaultError> {
    if name.contains('/') || name.is_empty() {
        return Err(tree_error(TreeError::InvalidName, name));
    }
    let mut path = format!("{}{name}", dir.path);
    if kind == EntryKind::Directory {
        path.push('/');
    }
    ObjectKey::parse(&path).map_err(|reason| match reason {
        crate::path::InvalidKey::TooLong { .. }
        | crate::path::InvalidKey::SegmentTooLong { .. } => {
            tree_error(TreeError::NameTooLong, &path)
        }
        _ => tree_error(TreeError::InvalidName, &path),
    })?;
    Ok(path)
}

fn require_directory(conn: &Connection, id: EntryId) -> Result<Entry, VaultError> {
    let dir = require(conn, id)?;
    if dir.kind != EntryKind::Directory {
        return Err(tree_error(TreeError::NotADirectory, &dir.path));
    }
    Ok(dir)
}

/// Creates `name` in directory `parent`. A file starts empty, with no blob.
pub fn create(
    conn: &Connection,
    parent: EntryId,
    name: &str,
    node: &NewNode,
) -> Result<Entry, VaultError> {
    let dir = require_directory(conn, parent)?;
    let path = child_path(&dir, name, node.kind)?;
    if entries::child(conn, dir.id, name)?.is_some() {
        return Err(tree_error(TreeError::Exists, &path));
    }
    let now = now_ms();
    let etag = (node.kind == EntryKind::File).then_some(EMPTY_MD5);
    conn.prepare_cached(
        "INSERT INTO entries (vault_id, parent_id, name, path, kind, explicit, size, mode,
         mtime_ms, ctime_ms, atime_ms, uid, gid, target, etag)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?8, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        dir.vault.0,
        dir.id.0,
        name,
        path,
        node.kind.to_sql(),
        node.kind == EntryKind::Directory,
        node.mode,
        now,
        node.uid,
        node.gid,
        node.target,
        etag,
    ])?;
    let id = EntryId(conn.last_insert_rowid());
    touch_directory(conn, dir.id, now)?;
    require(conn, id)
}

/// Records that a directory's listing changed.
fn touch_directory(conn: &Connection, dir: EntryId, now: i64) -> Result<(), MetaError> {
    conn.prepare_cached("UPDATE entries SET mtime_ms = ?2, ctime_ms = ?2 WHERE id = ?1")?
        .execute(params![dir.0, now])?;
    Ok(())
}

/// Deletes one entry row with what hangs off it (parts, queued blob).
fn delete_entry(conn: &Connection, entry: &Entry) -> Result<(), MetaError> {
    if entry.parts > 0 {
        parts::release(conn, entry.id)?;
    }
    conn.prepare_cached("DELETE FROM entries WHERE id = ?1")?
        .execute(params![entry.id.0])?;
    if let Some(blob) = entry.blob {
        queue_blob_collection(conn, blob)?;
    }
    Ok(())
}

/// Removes `name` from `parent`: a file or symlink (`directory` false), or an empty directory
/// (`directory` true). Returns the removed entry.
pub fn remove(
    conn: &Connection,
    parent: EntryId,
    name: &str,
    directory: bool,
) -> Result<Entry, VaultError> {
    let dir = require_directory(conn, parent)?;
    let Some(entry) = entries::child(conn, dir.id, name)? else {
        return Err(tree_error(
            TreeError::NotFound,
            &format!("{}{name}", dir.path),
        ));
    };
    match (entry.kind == EntryKind::Directory, directory) {
        (true, false) => return Err(tree_error(TreeError::IsADirectory, &entry.path)),
        (false, true) => return Err(tree_error(TreeError::NotADirectory, &entry.path)),
        (true, true) if has_children(conn, entry.id)? => {
            return Err(tree_error(TreeError::NotEmpty, &entry.path));
        }
        _ => {}
    }
    delete_entry(conn, &entry)?;
    touch_directory(conn, dir.id, now_ms())?;
    Ok(entry)
}

/// What a rename did.
#[derive(Clone, Debug)]
pub struct Renamed {
    /// The moved entry, at its new place.
    pub moved: Entry,
    /// The entry that stood at the destination: removed by a replacing rename, or moved to the
    /// source's place by an exchange.
    pub displaced: Option<Entry>,
}

/// Moves `entry` (and its subtree) to `name` in `dir`, updating every path below it.
fn move_entry(conn: &Connection, entry: &Entry, dir: &Entry, name: &str) -> Result<(), VaultError> {
    let new_path = if name.starts_with('\0') {
        // An exchange parks the source under a name no path can hold; it is not a key.
        format!(
            "{}{name}{}",
            dir.path,
            if entry.kind == EntryKind::Directory {
                "/"
            } else {
                ""
            }
        )
    } else {
        child_path(dir, name, entry.kind)?
    };
    if entry.kind == EntryKind::Directory && !name.starts_with('\0') {
        check_subtree_fits(conn, entry, &new_path)?;
    }
    let now = now_ms();
    conn.prepare_cached(
        "UPDATE entries SET parent_id = ?2, name = ?3, path = ?4, ctime_ms = ?5 WHERE id = ?1",
    )?
    .execute(params![entry.id.0, dir.id.0, name, new_path, now])?;
    if entry.kind == EntryKind::Directory {
        let old_prefix = &entry.path;
        let upper = prefix_successor(old_prefix);
        let moved = conn
            .prepare_cached(
                "UPDATE entries SET path = ?3 || substr(path, length(?2) + 1)
                 WHERE vault_id = ?1 AND path > ?2 AND (?4 IS NULL OR path < ?4)
                   AND id != ?5",
            )?
            .execute(params![
                entry.vault.0,
                old_prefix,
                new_path,
                upper,
                entry.id.0
            ])?;
        tracing::trace!(moved, from = %old_prefix, to = %new_path, "moved a subtree");
    }
    Ok(())
}

/// Refuses a directory move that would make a key below it longer than a key may be.
fn check_subtree_fits(conn: &Connection, dir: &Entry, new_path: &str) -> Result<(), VaultError> {
    let Some(growth) = new_path
        .len()
        .checked_sub(dir.path.len())
        .filter(|&g| g > 0)
    else {
        return Ok(());
    };
    let upper = prefix_successor(&dir.path);
    let longest: Option<i64> = conn
        .prepare_cached(
            "SELECT MAX(length(CAST(path AS BLOB))) FROM entries
             WHERE vault_id = ?1 AND path > ?2 AND (?3 IS NULL OR path < ?3)",
        )?
        .query_row(params![dir.vault.0, dir.path, upper], |row| row.get(0))?;
    let longest = usize::try_from(longest.unwrap_or(0)).unwrap_or(0);
    if longest + growth > crate::path::MAX_KEY_LEN {
        return Err(tree_error(TreeError::NameTooLong, new_path));
    }
    Ok(())
}

/// Renames `parent/name` to `new_parent/new_name`.
pub fn rename(
    conn: &Connection,
    parent: EntryId,
    name: &str,
    new_parent: EntryId,
    new_name: &str,
    mode: RenameMode,
) -> Result<Renamed, VaultError> {
    let from_dir = require_directory(conn, parent)?;
    let to_dir = require_directory(conn, new_parent)?;
    let Some(source) = entries::child(conn, from_dir.id, name)? else {
        return Err(tree_error(
            TreeError::NotFound,
            &format!("{}{name}", from_dir.path),
        ));
    };
    if from_dir.vault != to_dir.vault {
        return Err(tree_error(TreeError::CrossVault, &source.path));
    }
    // A directory cannot move into itself or below itself.
    if source.kind == EntryKind::Directory && to_dir.path.starts_with(&source.path) {
        return Err(tree_error(TreeError::InvalidArgument, &source.path));
    }
    let target = entries::child(conn, to_dir.id, new_name)?;
    if target.as_ref().is_some_and(|t| t.id == source.id) {
        // Renaming an entry onto itself changes nothing.
        return Ok(Renamed {
            moved: source,
            displaced: None,
        });
    }
    let now = now_ms();
    let displaced = match (mode, target) {
        (RenameMode::Exchange, None) => {
            return Err(tree_error(
                TreeError::NotFound,
                &format!("{}{new_name}", to_dir.path),
            ));
        }
        (RenameMode::Exchange, Some(target)) => {
            if target.kind == EntryKind::Directory && from_dir.path.starts_with(&target.path) {
                return Err(tree_error(TreeError::InvalidArgument, &target.path));
            }
            let parking = format!("\0exchange-{}", source.id);
            move_entry(conn, &source, &from_dir, &parking)?;
            let parked = require(conn, source.id)?;
            move_entry(conn, &target, &from_dir, name)?;
            move_entry(conn, &parked, &to_dir, new_name)?;
            let displaced = require(conn, target.id)?;
            touch_directory(conn, from_dir.id, now)?;
            touch_directory(conn, to_dir.id, now)?;
            return Ok(Renamed {
                moved: require(conn, source.id)?,
                displaced: Some(displaced),
            });
        }
        (RenameMode::NoReplace, Some(target)) => {
            return Err(tree_error(TreeError::Exists, &target.path));
        }
        (_, None) => None,
        (RenameMode::Replace, Some(target)) => {
            match (
                source.kind == EntryKind::Directory,
                target.kind == EntryKind::Directory,
            ) {
                (true, false) => return Err(tree_error(TreeError::NotADirectory, &target.path)),
                (false, true) => return Err(tree_error(TreeError::IsADirectory, &target.path)),
                (true, true) if has_children(conn, target.id)? => {
                    return Err(tree_error(TreeError::NotEmpty, &target.path));
                }
                _ => {}
            }
            delete_entry(conn, &target)?;
            Some(target)
        }
    };
    move_entry(conn, &source, &to_dir, new_name)?;
    touch_directory(conn, from_dir.id, now)?;
    touch_directory(conn, to_dir.id, now)?;
    Ok(Renamed {
        moved: require(conn, source.id)?,
        displaced,
    })
}

/// Applies `change` to entry `id`.
pub fn set_attrs(conn: &Connection, id: EntryId, change: &AttrChange) -> Result<Entry, VaultError> {
    let entry = require(conn, id)?;
    conn.prepare_cached(
        "UPDATE entries SET mode = ?2, uid = ?3, gid = ?4, atime_ms = ?5, mtime_ms = ?6,
         ctime_ms = ?7 WHERE id = ?1",
    )?
    .execute(params![
        id.0,
        change.mode.unwrap_or(entry.mode),
        change.uid.unwrap_or(entry.uid),
        change.gid.unwrap_or(entry.gid),
        change.atime_ms.unwrap_or(entry.atime_ms),
        change.mtime_ms.unwrap_or(entry.mtime_ms),
        now_ms(),
    ])?;
    require(conn, id)
}

/// The root directory entries of every vault the mount shows, with the vault's name and
/// whether a bucket bound to it is API-exclusive.
pub fn mounted_roots(conn: &Connection) -> Result<Vec<(String, Entry, bool)>, MetaError> {
    let sql = format!(
        "SELECT v.name, EXISTS (SELECT 1 FROM buckets b WHERE b.vault_id = v.id
                                AND b.api_exclusive != 0), {}
         FROM vaults v JOIN entries e ON e.vault_id = v.id AND e.parent_id IS NULL
         WHERE v.mounted != 0 ORDER BY v.name",
        ENTRY_COLUMNS
            .split(", ")
            .map(|column| format!("e.{}", column.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([])?;
    let mut roots = Vec::new();
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let exclusive: bool = row.get(1)?;
        let entry = Entry::from_offset_row(row, 2)??;
        roots.push((name, entry, exclusive));
    }
    Ok(roots)
}
