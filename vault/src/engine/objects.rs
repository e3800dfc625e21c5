//! Objects: streaming writes that commit atomically, range reads, deletes and listings.
//!
//! A write seals its content into a new blob while it streams in, hashing the plaintext for the
//! ETag on the way; only once the blob is durable does one metadata transaction point the key at
//! it. A crash before that transaction leaves the old object and an orphan blob, which the next
//! start removes; a crash after it leaves the new object. Readers holding the old blob keep
//! reading it until they finish, because the old blob is deleted only after the commit.

use std::sync::Arc;

use md5::{Digest, Md5};

use super::Engine;
use super::changes::Change;
use crate::blob::{BlobId, BlobStore, BlobWriter};
use crate::error::VaultError;
use crate::ids::VaultId;
use crate::meta::{
    Entry, EntryKind, ListItem, ListQuery, NewFile, ObjectAttrs, WriteCondition, entries,
};
use crate::path::ObjectKey;

/// Objects up to this size are sealed into their metadata row: committing one is a metadata
/// transaction (shared with concurrent writes, see [`crate::meta::MetaStore::write_grouped`])
/// with no file to create and fsync.
pub const INLINE_MAX: usize = 32 * 1024;

/// Where an object's sealed content is going.
enum Destination {
    /// Still small: plaintext held here (wiped on drop) until it grows past [`INLINE_MAX`] or is
    /// committed inline.
    Small {
        plaintext: zeroize::Zeroizing<Vec<u8>>,
        key: crate::crypto::SecretKey,
        store: Arc<dyn BlobStore>,
    },
    /// A blob file, sealed as the content streams in.
    Blob(Box<BlobWriter>),
}

/// An object being written. Dropping it before [`Engine::commit_write`] discards the content.
pub struct ObjectWriter {
    vault: VaultId,
    blob_id: BlobId,
    key_version: u32,
    destination: Destination,
    md5: Md5,
    len: u64,
}

impl ObjectWriter {
    /// Appends plaintext.
    ///
    /// # Errors
    /// A blob store failure.
    pub fn write(&mut self, data: &[u8]) -> Result<(), VaultError> {
        self.md5.update(data);
        self.len += data.len() as u64;
        if let Destination::Small {
            plaintext,
            key,
            store,
        } = &mut self.destination
        {
            if plaintext.len() + data.len() <= INLINE_MAX {
                plaintext.extend_from_slice(data);
                return Ok(());
            }
            let mut writer = BlobWriter::new(store.as_ref(), self.blob_id, key, self.key_version)?;
            writer.write(plaintext)?;
            self.destination = Destination::Blob(Box::new(writer));
        }
        match &mut self.destination {
            Destination::Blob(writer) => Ok(writer.write(data)?),
            Destination::Small { .. } => unreachable!("a small object moved to a blob above"),
        }
    }

    /// Bytes written so far.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The hex MD5 of what was written so far, as the ETag will show it.
    #[must_use]
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5.clone().finalize())
    }

    /// Seals the content: into a durable blob file, or (for a small object) into bytes for the
    /// metadata row. Returns the inline bytes, if any, and the plaintext size.
    fn finish(self) -> Result<(Option<Vec<u8>>, u64), VaultError> {
        match self.destination {
            Destination::Blob(writer) => Ok((None, writer.finish()?)),
            Destination::Small { plaintext, key, .. } => {
                let memory = crate::blob::MemoryBlobStore::new();
                let mut writer = BlobWriter::new(&memory, self.blob_id, &key, self.key_version)?;
                writer.write(&plaintext)?;
                let size = writer.finish()?;
                Ok((memory.raw_bytes(self.blob_id), size))
            }
        }
    }

    /// Seals the last segment and makes the blob durable, without pointing any key at it yet;
    /// returns the blob, its key version and its size. Parts are always blob files.
    pub(crate) fn seal(self) -> Result<(BlobId, u32, u64), VaultError> {
        let (blob_id, key_version) = (self.blob_id, self.key_version);
        match self.destination {
            Destination::Blob(writer) => Ok((blob_id, key_version, writer.finish()?)),
            Destination::Small { .. } => Err(VaultError::Internal(
                "a multipart part was buffered as a small object".to_owned(),
            )),
        }
    }
}

impl Engine {
    /// Starts writing an object into `vault`.
    ///
    /// # Errors
    /// Fails when the vault's key is unavailable.
    pub fn begin_write(&self, vault: VaultId) -> Result<ObjectWriter, VaultError> {
        let (key_version, key) = self.keyring.current_vault_key(&self.meta, vault)?;
        Ok(ObjectWriter {
            vault,
            blob_id: BlobId::generate(),
            key_version,
            destination: Destination::Small {
                plaintext: zeroize::Zeroizing::new(Vec::new()),
                key,
                store: Arc::clone(&self.blobs),
            },
            md5: Md5::new(),
            len: 0,
        })
    }

    /// Starts writing a multipart part into `vault` (into the part store, when one is set).
    ///
    /// # Errors
    /// Fails when the vault's key is unavailable or the blob cannot be created.
    pub fn begin_part(&self, vault: VaultId) -> Result<ObjectWriter, VaultError> {
        let (key_version, key) = self.keyring.current_vault_key(&self.meta, vault)?;
        let blob_id = BlobId::generate();
        let writer = BlobWriter::new(self.part_blobs.as_ref(), blob_id, &key, key_version)?;
        Ok(ObjectWriter {
            vault,
            blob_id,
            key_version,
            destination: Destination::Blob(Box::new(writer)),
            md5: Md5::new(),
            len: 0,
        })
    }

    /// Makes `writer`'s content the object `key`, durably, if `condition` holds.
    ///
    /// # Errors
    /// `KeyConflict`, `PreconditionFailed`, `DirectoryWithContent`, or a storage failure; on
    /// error nothing changes and the new content is discarded.
    pub fn commit_write(
        &self,
        writer: ObjectWriter,
        key: &ObjectKey,
        attrs: ObjectAttrs,
        condition: &WriteCondition,
    ) -> Result<Entry, VaultError> {
        if key.is_directory() {
            if !writer.is_empty() {
                return Err(VaultError::DirectoryWithContent(key.as_str().to_owned()));
            }
            let vault = writer.vault;
            drop(writer);
            let entry = self
                .meta
                .write(|tx| entries::put_directory(tx, vault, key, condition))?;
            self.announce_written(&entry);
            return self.with_etag(entry);
        }
        let (vault, blob_id, key_version) = (writer.vault, writer.blob_id, writer.key_version);
        let etag = writer.md5_hex();
        let (inline, size) = writer.finish()?;
        let file = NewFile {
            blob: Some(blob_id),
            key_version,
            size,
            etag,
            attrs,
            parts: Vec::new(),
            inline,
        };
        let (owned_key, owned_condition) = (key.clone(), condition.clone());
        let outcome = self.meta.write_grouped(move |tx| {
            entries::put_file(tx, vault, &owned_key, &file, &owned_condition)
        });
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(err) => {
                self.discard_blob(blob_id);
                return Err(err);
            }
        };
        self.announce_written(&outcome.entry);
        if outcome.replaced_content {
            self.collect_garbage_quietly();
        }
        Ok(outcome.entry)
    }

    /// The object `key`: a file, or an explicit directory marker.
    ///
    /// # Errors
    /// `NoSuchKey`.
    pub fn head_object(&self, vault: VaultId, key: &ObjectKey) -> Result<Entry, VaultError> {
        let entry = self
            .meta
            .read(|conn| Ok::<_, VaultError>(entries::by_path(conn, vault, key.as_str())?))?;
        match entry {
            // A symlink made in the mount reads as an empty object, as listings show it.
            Some(entry) if entry.kind != EntryKind::Directory || entry.explicit => {
                self.with_etag(entry)
            }
            _ => Err(VaultError::NoSuchKey(key.as_str().to_owned())),
        }
    }

    /// Deletes the object `key`; deleting a missing key succeeds, as in S3.
    ///
    /// # Errors
    /// A storage failure.
    pub fn delete_object(
        &self,
        vault: VaultId,
        key: &ObjectKey,
    ) -> Result<Option<Entry>, VaultError> {
        let mut pruned = Vec::new();
        let (removed, entry_gone) = self.meta.write(|tx| {
            let removed = entries::delete_object(tx, vault, key, &mut pruned)?;
            let gone = match &removed {
                Some(entry) => entries::by_id(tx, entry.id)?.is_none(),
                None => false,
            };
            Ok::<_, VaultError>((removed, gone))
        })?;
        self.announce_removed(removed.as_ref(), entry_gone, &pruned);
        if removed
            .as_ref()
            .is_some_and(|entry| entry.blob.is_some() || entry.parts > 0)
        {
            self.collect_garbage_quietly();
        }
        Ok(removed)
    }

    /// Tells the mount that the gateway wrote `entry`.
    pub(crate) fn announce_written(&self, entry: &Entry) {
        // Descriptors the mount has open see this content from their next operation on.
        self.open_files.mark_replaced(entry.id);
        let mut changes = vec![Change::Entry(entry.id)];
        changes.extend(entry.parent.map(Change::Entry));
        self.changes.announce(&changes);
    }

    /// Tells the mount what a gateway delete removed: the entry (or, for a directory marker
    /// whose directory stays, only its marker) and the implicit directories pruned after it.
    fn announce_removed(&self, removed: Option<&Entry>, entry_gone: bool, pruned: &[Entry]) {
        let Some(removed) = removed else { return };
        self.open_files.detach(removed.id);
        let name_change = |entry: &Entry| {
            Some(Change::Name {
                parent: entry.parent?,
                name: entry.name.clone(),
                entry: entry.id,
            })
        };
        let mut changes = Vec::new();
        if entry_gone {
            changes.extend(name_change(removed));
            changes.extend(removed.parent.map(Change::Entry));
        } else {
            changes.push(Change::Entry(removed.id));
        }
        changes.extend(pruned.iter().filter_map(name_change));
        self.changes.announce(&changes);
    }

    /// One page of a listing of `vault`; the flag says whether more follow.
    ///
    /// # Errors
    /// A metadata failure.
    pub fn list_objects(
        &self,
        vault: VaultId,
        query: &ListQuery,
    ) -> Result<(Vec<ListItem>, bool), VaultError> {
        let (mut items, truncated) = self
            .meta
            .read(|conn| Ok::<_, VaultError>(entries::list(conn, vault, query)?))?;
        for item in &mut items {
            if let ListItem::Object(entry) = item
                && entry.etag.is_none()
            {
                **entry = self.with_etag((**entry).clone())?;
            }
        }
        Ok((items, truncated))
    }

    /// `entry` with its ETag: a file the mount is rewriting at random has none recorded until
    /// it is closed, so it is computed from the committed content.
    fn with_etag(&self, mut entry: Entry) -> Result<Entry, VaultError> {
        if entry.etag.is_none() {
            entry.etag = Some(match entry.kind {
                EntryKind::File => self.content_md5(&entry)?,
                // Directory markers and symlinks hold no bytes.
                EntryKind::Directory | EntryKind::Symlink => {
                    crate::meta::tree::EMPTY_MD5.to_owned()
                }
            });
        }
        Ok(entry)
    }

    /// Whether `vault` holds no object.
    ///
    /// # Errors
    /// A metadata failure.
    pub fn vault_is_empty(&self, vault: VaultId) -> Result<bool, VaultError> {
        self.meta.read(|conn| Ok(entries::is_empty(conn, vault)?))
    }

    /// The blob store, for tests that inspect or damage stored data.
    #[must_use]
    pub fn blob_store(&self) -> Arc<dyn BlobStore> {
        Arc::clone(&self.blobs)
    }
}
