//! Identifier newtypes that cross crate boundaries, so a vault id is never passed where an
//! entry id (inode number) is expected.

use std::fmt;

/// The id of a vault: its row in the `vaults` table.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct VaultId(pub i64);

/// The stable id of a file, directory or symlink; the FUSE frontend uses it as the inode number.
///
/// Ids come from an `AUTOINCREMENT` column, so SQLite never hands out an id twice, even after the
/// entry holding it is removed.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct EntryId(pub i64);

impl fmt::Display for VaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
