//! The namespace for the mount: lookups, directory pages, creating, removing and renaming
//! entries, attributes and extended attributes.

use super::Engine;
use crate::crypto::{open_bytes, seal_bytes};
use crate::error::{TreeError, VaultError};
use crate::ids::{EntryId, VaultId};
use crate::meta::{AttrChange, Entry, NewNode, RenameMode, Renamed, entries, tree, xattrs};

/// A vault as the mount shows it: a top-level directory.
#[derive(Clone, Debug)]
pub struct MountedVault {
    /// The vault's name, the directory's name.
    pub name: String,
    /// The vault's root entry.
    pub root: Entry,
    /// Whether the mount may write into it: no bucket bound to it is API-exclusive.
    pub writable: bool,
}

/// The longest extended attribute value kept, as on ext4.
pub const MAX_XATTR_VALUE: usize = 64 * 1024;

fn not_found(what: String) -> VaultError {
    VaultError::Tree {
        kind: TreeError::NotFound,
        path: what,
    }
}

/// The associated data an extended attribute value is sealed with.
fn xattr_context(entry: EntryId, name: &str) -> Vec<u8> {
    let mut context = b"vh xattr v1\0".to_vec();
    context.extend_from_slice(&entry.0.to_le_bytes());
    context.extend_from_slice(name.as_bytes());
    context
}

impl Engine {
    /// The vaults the mount shows, by name.
    ///
    /// # Errors
    /// A metadata failure.
    pub fn mounted_vaults(&self) -> Result<Vec<MountedVault>, VaultError> {
        let roots = self
            .meta
            .read(|conn| Ok::<_, VaultError>(tree::mounted_roots(conn)?))?;
        Ok(roots
            .into_iter()
            .map(|(name, root, exclusive)| MountedVault {
                name,
                root,
                writable: !exclusive,
            })
            .collect())
    }

    /// The entry `id`.
    ///
    /// # Errors
    /// `Tree(NotFound)`, or a metadata failure.
    pub fn entry(&self, id: EntryId) -> Result<Entry, VaultError> {
        self.meta.read(|conn| tree::require(conn, id))
    }

    /// The entry `name` in directory `parent`.
    ///
    /// # Errors
    /// `Tree(NotFound)`, or a metadata failure.
    pub fn lookup(&self, parent: EntryId, name: &str) -> Result<Entry, VaultError> {
        self.meta
            .read(|conn| Ok::<_, VaultError>(entries::child(conn, parent, name)?))?
            .ok_or_else(|| not_found(name.to_owned()))
    }

    /// Up to `limit` entries of directory `dir` with ids above `after`, in id order.
    ///
    /// # Errors
    /// A metadata failure.
    pub fn read_dir(
        &self,
        dir: EntryId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Entry>, VaultError> {
        self.meta
            .read(|conn| Ok::<_, VaultError>(tree::children_after(conn, dir, after, limit)?))
    }

    /// Creates `name` in `parent`.
    ///
    /// # Errors
    /// `Tree(Exists)`, `Tree(NotADirectory)`, `Tree(InvalidName)`, `Tree(NameTooLong)`, or a
    /// metadata failure.
    pub fn create_node(
        &self,
        parent: EntryId,
        name: &str,
        node: &NewNode,
    ) -> Result<Entry, VaultError> {
        // Durable with the next commit (the file's close or fsync, or a directory fsync).
        self.meta
            .write_relaxed(|tx| tree::create(tx, parent, name, node))
    }

    /// Removes the file or symlink (`directory` false) or empty directory (`directory` true)
    /// `name` of `parent`. A file still open keeps its content for its descriptors.
    ///
    /// # Errors
    /// `Tree(NotFound)`, `Tree(IsADirectory)`, `Tree(NotADirectory)`, `Tree(NotEmpty)`, or a
    /// metadata failure.
    pub fn remove_node(
        &self,
        parent: EntryId,
        name: &str,
        directory: bool,
    ) -> Result<Entry, VaultError> {
        let removed = self
            .meta
            .write(|tx| tree::remove(tx, parent, name, directory))?;
        self.open_files.detach(removed.id);
        if removed.blob.is_some() || removed.parts > 0 {
            self.collect_garbage_quietly();
        }
        Ok(removed)
    }

    /// Renames `parent/name` to `new_parent/new_name`.
    ///
    /// # Errors
    /// `Tree(..)` for what `rename(2)` refuses, or a metadata failure.
    pub fn rename_node(
        &self,
        parent: EntryId,
        name: &str,
        new_parent: EntryId,
        new_name: &str,
        mode: RenameMode,
    ) -> Result<Renamed, VaultError> {
        let renamed = self
            .meta
            .write(|tx| tree::rename(tx, parent, name, new_parent, new_name, mode))?;
        if mode != RenameMode::Exchange
            && let Some(replaced) = &renamed.displaced
        {
            self.open_files.detach(replaced.id);
            self.collect_garbage_quietly();
        }
        Ok(renamed)
    }

    /// Makes every namespace and attribute change so far durable (a directory `fsync`).
    ///
    /// # Errors
    /// A metadata failure.
    pub fn sync_namespace(&self) -> Result<(), VaultError> {
        Ok(self.meta.sync()?)
    }

    /// Changes the attributes of entry `id`.
    ///
    /// # Errors
    /// `Tree(NotFound)`, or a metadata failure.
    pub fn set_node_attrs(&self, id: EntryId, change: &AttrChange) -> Result<Entry, VaultError> {
        let entry = self
            .meta
            .write_relaxed(|tx| tree::set_attrs(tx, id, change))?;
        if let (Some(mtime), Some(file)) = (change.mtime_ms, self.open_files.get(id)) {
            file.set_mtime(mtime);
        }
        Ok(entry)
    }

    /// The value of extended attribute `name` of `id`.
    ///
    /// # Errors
    /// `Tree(NotFound)` when there is no such attribute; a key or metadata failure.
    pub fn xattr(&self, vault: VaultId, id: EntryId, name: &str) -> Result<Vec<u8>, VaultError> {
        let sealed = self
            .meta
            .read(|conn| Ok::<_, VaultError>(xattrs::get(conn, id, name)?))?
            .ok_or_else(|| not_found(name.to_owned()))?;
        let (version, body) = sealed
            .split_first_chunk::<4>()
            .ok_or_else(|| VaultError::Internal(format!("extended attribute {name} is damaged")))?;
        let version = u32::from_le_bytes(*version);
        let key = self
            .keyring
            .vault_key(&self.meta, vault, version)?
            .ok_or_else(|| {
                VaultError::Internal(format!("no key version {version} for an attribute"))
            })?;
        Ok(open_bytes(&key, body, &xattr_context(id, name))?.to_vec())
    }

    /// Sets extended attribute `name` of `id`; `create_only` fails if it exists,
    /// `replace_only` fails if it does not.
    ///
    /// # Errors
    /// `Tree(Exists)` / `Tree(NotFound)` for the flags; a key or metadata failure.
    pub fn set_xattr(
        &self,
        vault: VaultId,
        id: EntryId,
        name: &str,
        value: &[u8],
        create_only: bool,
        replace_only: bool,
    ) -> Result<(), VaultError> {
        let (version, key) = self.keyring.current_vault_key(&self.meta, vault)?;
        let mut sealed = version.to_le_bytes().to_vec();
        sealed.extend_from_slice(&seal_bytes(&key, value, &xattr_context(id, name)));
        self.meta.write_relaxed(|tx| {
            tree::require(tx, id)?;
            let exists = xattrs::exists(tx, id, name)?;
            if create_only && exists {
                return Err(VaultError::Tree {
                    kind: TreeError::Exists,
                    path: name.to_owned(),
                });
            }
            if replace_only && !exists {
                return Err(not_found(name.to_owned()));
            }
            xattrs::set(tx, id, name, &sealed)?;
            Ok(())
        })
    }

    /// The extended attribute names of `id`.
    ///
    /// # Errors
    /// A metadata failure.
    pub fn xattr_names(&self, id: EntryId) -> Result<Vec<String>, VaultError> {
        self.meta
            .read(|conn| Ok::<_, VaultError>(xattrs::names(conn, id)?))
    }

    /// Removes extended attribute `name` of `id`.
    ///
    /// # Errors
    /// `Tree(NotFound)` when there is no such attribute; a metadata failure.
    pub fn remove_xattr(&self, id: EntryId, name: &str) -> Result<(), VaultError> {
        let removed = self
            .meta
            .write(|tx| Ok::<_, VaultError>(xattrs::remove(tx, id, name)?))?;
        if removed {
            Ok(())
        } else {
            Err(not_found(name.to_owned()))
        }
    }
}
