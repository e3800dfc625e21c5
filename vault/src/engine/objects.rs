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

/// An object being written. Dropping it before [`Engine::commit_write`] discards the content.
pub struct ObjectWriter {
    vault: VaultId,
    blob_id: BlobId,
    key_version: u32,
    writer: BlobWriter,
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
        self.writer.write(data)?;
        self.len += data.len() as u64;
        Ok(())
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

    /// Seals the last segment and makes the blob durable, without pointing any key at it yet;
    /// returns the blob, its key version and its size.
    pub(crate) fn seal(self) -> Result<(BlobId, u32, u64), VaultError> {
        let size = self.writer.finish()?;
        Ok((self.blob_id, self.key_version, size))
    }
}

impl Engine {
    /// Starts writing an object into `vault`.
    ///
    /// # Errors
    /// Fails when the vault's key is unavailable or the blob cannot be created.
    pub fn begin_write(&self, vault: VaultId) -> Result<ObjectWriter, VaultError> {
        self.begin_write_into(vault, self.blobs.as_ref())
    }

    /// Starts writing a multipart part into `vault` (into the part store, when one is set).
    ///
    /// # Errors
    /// As [`Engine::begin_write`].
    pub fn begin_part(&self, vault: VaultId) -> Result<ObjectWriter, VaultError> {
        self.begin_write_into(vault, self.part_blobs.as_ref())
    }

    fn begin_write_into(
        &self,
        vault: VaultId,
        store: &dyn BlobStore,
    ) -> Result<ObjectWriter, VaultError> {
        let (key_version, key) = self.keyring.current_vault_key(&self.meta, vault)?;
        let blob_id = BlobId::generate();
        let writer = BlobWriter::new(store, blob_id, &key, key_version)?;
        Ok(ObjectWriter {
            vault,
            blob_id,
            key_version,
            writer,
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
        let ObjectWriter {
            vault,
            blob_id,
            key_version,
            writer,
            md5,
            len,
        } = writer;
        if key.is_directory() {
            if len > 0 {
                return Err(VaultError::DirectoryWithContent(key.as_str().to_owned()));
            }
            drop(writer);
            let entry = self
                .meta
                .write(|tx| entries::put_directory(tx, vault, key, condition))?;
            self.announce_written(&entry);
            return Ok(entry);
        }
        let size = writer.finish()?;
        debug_assert_eq!(size, len);
        let file = NewFile {
            blob: Some(blob_id),
            key_version,
            size,
            etag: hex::encode(md5.finalize()),
            attrs,
            parts: Vec::new(),
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
            Some(entry) if entry.kind == EntryKind::File || entry.explicit => self.with_etag(entry),
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
        // Descriptors the mount has open keep what they had; the next open sees this write.
        self.open_files.detach(entry.id);
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
        if entry.etag.is_none() && entry.kind == EntryKind::File {
            entry.etag = Some(self.content_md5(&entry)?);
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
