//! Reading objects: one blob, or the parts of a multipart object, decrypted range by range.

use std::sync::Arc;

use super::Engine;
use super::locks::BlobLocks;
use crate::blob::{BlobError, BlobReader, BlobStore, MemoryBlobStore};
use crate::crypto::SecretKey;
use crate::error::VaultError;
use crate::ids::VaultId;
use crate::meta::parts::{self, StoredPart};
use crate::meta::{Entry, entries};
use crate::path::ObjectKey;

/// Where an object's content is.
enum Content {
    /// An empty object, or a directory marker.
    Empty,
    /// One blob, opened (its header and last segment already authenticated), with the lock
    /// that keeps in-place rewrites by the mount out of a read.
    Blob(Box<BlobReader>, Arc<BlobLocks>),
    /// The parts of a multipart object, opened one at a time as a read reaches them.
    Parts {
        parts: Vec<StoredPart>,
        keys: Vec<(u32, SecretKey)>,
        store: Arc<dyn BlobStore>,
    },
}

/// An object opened for reading: its metadata and its sealed content.
pub struct ObjectReader {
    /// The entry as it was when opened.
    pub entry: Entry,
    content: Content,
}

impl ObjectReader {
    /// Plaintext length.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.entry.size
    }

    /// Whether the object is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entry.size == 0
    }

    /// The parts of a multipart object (empty for any other object).
    #[must_use]
    pub fn parts(&self) -> &[StoredPart] {
        match &self.content {
            Content::Parts { parts, .. } => parts,
            Content::Empty | Content::Blob(..) => &[],
        }
    }

    /// Hands the plaintext of `start..end` to `sink` in order, decrypting only the segments the
    /// range touches.
    ///
    /// # Errors
    /// `Integrity` when a segment fails authentication; a blob store failure; or `sink`'s error.
    pub fn read_range(
        &self,
        start: u64,
        end: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        match &self.content {
            Content::Empty => Ok(()),
            Content::Blob(blob, locks) => {
                let _shared = locks.read(blob.id());
                read_blob(blob, start, end, sink)
            }
            Content::Parts { parts, keys, store } => {
                for part in parts {
                    let part_end = part.offset + part.size;
                    if part_end <= start || part.offset >= end {
                        continue;
                    }
                    let blob = BlobReader::open(store.as_ref(), part.blob, |version| {
                        key_for(keys, version)
                    })?;
                    let local_start = start.saturating_sub(part.offset);
                    let local_end = end.min(part_end) - part.offset;
                    read_blob(&blob, local_start, local_end, sink)?;
                }
                Ok(())
            }
        }
    }
}

fn key_for(keys: &[(u32, SecretKey)], version: u32) -> Option<SecretKey> {
    keys.iter()
        .find(|(v, _)| *v == version)
        .map(|(_, key)| key.clone())
}

fn read_blob(
    blob: &BlobReader,
    start: u64,
    end: u64,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), VaultError>,
) -> Result<(), VaultError> {
    let mut failure = None;
    let result = blob.read_range(start, end, &mut |chunk| {
        sink(chunk).map_err(|err| {
            failure = Some(err);
            // Stops the read; the sink's own error is what the caller gets.
            BlobError::Io {
                id: None,
                source: std::io::Error::other("reader stopped"),
            }
        })
    });
    match (result, failure) {
        (_, Some(err)) => Err(err),
        (Err(err), None) => Err(err.into()),
        (Ok(()), None) => Ok(()),
    }
}

impl Engine {
    /// Opens the object `key` for reading.
    ///
    /// # Errors
    /// `NoSuchKey`; `Integrity` when the blob's header does not authenticate.
    pub fn open_object(&self, vault: VaultId, key: &ObjectKey) -> Result<ObjectReader, VaultError> {
        // An overwrite that commits between reading the entry and opening its blob deletes
        // that blob; reading the entry again finds the new one.
        let mut attempts = 0;
        loop {
            match self.open_object_once(vault, key) {
                Err(VaultError::Blob(crate::blob::BlobError::NotFound { .. })) if attempts < 3 => {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    fn open_object_once(
        &self,
        vault: VaultId,
        key: &ObjectKey,
    ) -> Result<ObjectReader, VaultError> {
        let entry = self.head_object(vault, key)?;
        self.open_object_by_entry(entry)
    }

    /// Opens the content of `entry` for reading.
    pub(crate) fn open_object_by_entry(&self, entry: Entry) -> Result<ObjectReader, VaultError> {
        let vault = entry.vault;
        if entry.parts > 0 {
            let parts = self
                .meta
                .read(|conn| Ok::<_, VaultError>(parts::of_entry(conn, entry.id)?))?;
            let mut keys: Vec<(u32, SecretKey)> = Vec::new();
            for version in parts.iter().map(|part| part.key_version) {
                if keys.iter().any(|(v, _)| *v == version) {
                    continue;
                }
                if let Some(key) = self.keyring.vault_key(&self.meta, vault, version)? {
                    keys.push((version, key));
                }
            }
            let content = Content::Parts {
                parts,
                keys,
                store: Arc::clone(&self.blobs),
            };
            return Ok(ObjectReader { entry, content });
        }
        let (Some(blob_id), Some(version)) = (entry.blob, entry.key_version) else {
            return Ok(ObjectReader {
                entry,
                content: Content::Empty,
            });
        };
        let key = self.keyring.vault_key(&self.meta, vault, version)?;
        let key_for = |wanted| key.filter(|_| wanted == version);
        let blob = if entry.inline {
            // A small object: its sealed bytes are in the row, read like any blob.
            let sealed = self
                .meta
                .read(|conn| {
                    Ok::<_, VaultError>(entries::inline_content(conn, entry.id, blob_id)?)
                })?
                .ok_or(VaultError::Blob(BlobError::NotFound { id: blob_id }))?;
            let memory = MemoryBlobStore::new();
            memory.insert_raw(blob_id, sealed);
            BlobReader::open(&memory, blob_id, key_for)?
        } else {
            let _shared = self.blob_locks.read(blob_id);
            BlobReader::open(self.blobs.as_ref(), blob_id, key_for)?
        };
        Ok(ObjectReader {
            entry,
            content: Content::Blob(Box::new(blob), Arc::clone(&self.blob_locks)),
        })
    }
}
