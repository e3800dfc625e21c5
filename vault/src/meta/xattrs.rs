//! Extended attributes of entries. Values are sealed under the vault key by the engine before
//! they get here; names are stored as given, like file names.

use rusqlite::{Connection, OptionalExtension, params};

use super::MetaError;
use crate::ids::EntryId;

/// The sealed value of attribute `name` of `entry`.
pub(crate) fn get(
    conn: &Connection,
    entry: EntryId,
    name: &str,
) -> Result<Option<Vec<u8>>, MetaError> {
    Ok(conn
        .prepare_cached("SELECT sealed FROM xattrs WHERE entry_id = ?1 AND name = ?2")?
        .query_row(params![entry.0, name], |row| row.get(0))
        .optional()?)
}

/// Whether `entry` has attribute `name`.
pub(crate) fn exists(conn: &Connection, entry: EntryId, name: &str) -> Result<bool, MetaError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM xattrs WHERE entry_id = ?1 AND name = ?2")?
        .exists(params![entry.0, name])?)
}

/// Sets attribute `name` of `entry`.
pub(crate) fn set(
    conn: &Connection,
    entry: EntryId,
    name: &str,
    sealed: &[u8],
) -> Result<(), MetaError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO xattrs (entry_id, name, sealed) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![entry.0, name, sealed])?;
    Ok(())
}

/// Removes attribute `name` of `entry`; returns whether it existed.
pub(crate) fn remove(conn: &Connection, entry: EntryId, name: &str) -> Result<bool, MetaError> {
    let removed = conn
        .prepare_cached("DELETE FROM xattrs WHERE entry_id = ?1 AND name = ?2")?
        .execute(params![entry.0, name])?;
    Ok(removed > 0)
}

/// The attribute names of `entry`, sorted.
pub(crate) fn names(conn: &Connection, entry: EntryId) -> Result<Vec<String>, MetaError> {
    let mut stmt =
        conn.prepare_cached("SELECT name FROM xattrs WHERE entry_id = ?1 ORDER BY name")?;
    let rows = stmt.query_map(params![entry.0], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
