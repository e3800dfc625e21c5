//! Multipart uploads: parts sealed as they arrive, an object assembled from them by one
//! metadata transaction.
//!
//! Each part is its own sealed blob. Completing an upload copies nothing: the object's entry
//! lists the chosen part blobs with their offsets, and the parts left out are queued for
//! collection. The object's ETag is S3's `md5-of-md5s-N`.

use md5::{Digest, Md5};

use super::{Engine, ObjectWriter};
use crate::error::VaultError;
use crate::ids::VaultId;
use crate::meta::entries::{self, NewFile};
use crate::meta::parts::StoredPart;
use crate::meta::uploads::{self, Upload, UploadQuery};
use crate::meta::{Entry, ObjectAttrs, WriteCondition};
use crate::path::ObjectKey;

/// The highest part number S3 accepts.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// Turns the parts chosen for an object into its checksum: the algorithm name and value.
pub type ObjectChecksum<'a> = dyn Fn(&[StoredPart]) -> Option<(String, String)> + 'a;

/// A part as a CompleteMultipartUpload request names it.
#[derive(Clone, Debug)]
pub struct CompletePart {
    /// Its number.
    pub part_number: u32,
    /// The ETag the client got when uploading it (quotes are ignored).
    pub etag: String,
}

/// A page of an upload's parts.
#[derive(Clone, Debug)]
pub struct PartsPage {
    /// The parts, by number.
    pub parts: Vec<StoredPart>,
    /// Each part's last upload time, milliseconds since the epoch.
    pub modified_ms: Vec<i64>,
    /// Whether more parts follow.
    pub truncated: bool,
}

/// The S3 ETag of an object assembled from parts: the MD5 of the parts' binary MD5s, `-N`.
#[must_use]
pub fn multipart_etag(parts: &[StoredPart]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(hex::decode(&part.etag).unwrap_or_default());
    }
    format!("{}-{}", hex::encode(md5.finalize()), parts.len())
}

impl Engine {
    /// Starts a multipart upload of `key` into `vault`.
    ///
    /// # Errors
    /// `NoSuchVault`, or a metadata failure.
    pub fn create_upload(
        &self,
        vault: VaultId,
        key: &ObjectKey,
        attrs: ObjectAttrs,
        checksum_algorithm: Option<String>,
    ) -> Result<Upload, VaultError> {
        if key.is_directory() {
            return Err(VaultError::DirectoryWithContent(key.as_str().to_owned()));
        }
        let upload = Upload {
            upload_id: uploads::new_upload_id(),
            vault,
            key: key.as_str().to_owned(),
            created_ms: uploads::created_now(),
            attrs,
            checksum_algorithm,
        };
        self.meta
            .write(|tx| Ok::<_, VaultError>(uploads::insert(tx, &upload)?))?;
        Ok(upload)
    }

    /// The upload `upload_id` of `vault`.
    ///
    /// # Errors
    /// `NoSuchUpload` when it does not exist in that vault.
    pub fn upload(&self, vault: VaultId, upload_id: &str) -> Result<Upload, VaultError> {
        self.meta
            .read(|conn| Ok::<_, VaultError>(uploads::get(conn, upload_id)?))?
            .filter(|upload| upload.vault == vault)
            .ok_or_else(|| VaultError::NoSuchUpload(upload_id.to_owned()))
    }

    /// Makes `writer`'s content part `part_number` of the upload, replacing an earlier upload of
    /// the same number.
    ///
    /// # Errors
    /// `NoSuchUpload`, or a storage failure; on error the content is discarded.
    pub fn commit_part(
        &self,
        upload: &Upload,
        part_number: u32,
        writer: ObjectWriter,
        checksum: Option<String>,
    ) -> Result<StoredPart, VaultError> {
        let etag = writer.md5_hex();
        let (blob, key_version, size) = writer.seal()?;
        let part = StoredPart {
            part_number,
            offset: 0,
            size,
            blob,
            key_version,
            etag,
            checksum,
        };
        let recorded = self.meta.write(|tx| {
            if uploads::get(tx, &upload.upload_id)?.is_none() {
                return Err(VaultError::NoSuchUpload(upload.upload_id.clone()));
            }
            uploads::put_part(tx, &upload.upload_id, &part)?;
            Ok(())
        });
        if let Err(err) = recorded {
            self.discard_blob(blob);
            return Err(err);
        }
        self.collect_garbage_quietly();
        Ok(part)
    }

    /// A page of the upload's parts after part number `marker`.
    ///
    /// # Errors
    /// A metadata failure.
    pub fn list_parts(
        &self,
        upload: &Upload,
        marker: u32,
        max_parts: usize,
    ) -> Result<PartsPage, VaultError> {
        let (parts, modified_ms, truncated) = self.meta.read(|conn| {
            Ok::<_, VaultError>(uploads::parts(conn, &upload.upload_id, marker, max_parts)?)
        })?;
        Ok(PartsPage {
            parts,
            modified_ms,
            truncated,
        })
    }

    /// A page of the uploads in progress in `vault`; the flag says whether more follow.
    ///
    /// # Errors
    /// A metadata failure.
    pub fn list_uploads(
        &self,
        vault: VaultId,
        query: &UploadQuery,
    ) -> Result<(Vec<Upload>, bool), VaultError> {
        self.meta
            .read(|conn| Ok(uploads::list(conn, vault, query)?))
    }

    /// Aborts an upload and deletes its parts.
    ///
    /// # Errors
    /// `NoSuchUpload`.
    pub fn abort_upload(&self, upload: &Upload) -> Result<(), VaultError> {
        self.meta.write(|tx| {
            if uploads::get(tx, &upload.upload_id)?.is_none() {
                return Err(VaultError::NoSuchUpload(upload.upload_id.clone()));
            }
            uploads::remove(tx, &upload.upload_id, &[])?;
            Ok(())
        })?;
        self.collect_garbage_quietly();
        Ok(())
    }

    /// Assembles the object from the listed parts, if `condition` holds, and ends the upload.
    ///
    /// `composite_checksum` turns the chosen parts into the object's checksum (algorithm name
    /// and value), when the upload declared an algorithm; it runs inside the transaction.
    ///
    /// # Errors
    /// `NoSuchUpload`, `InvalidPartOrder`, `InvalidPart`, `EntityTooSmall`, `KeyConflict`,
    /// `PreconditionFailed`; on error nothing changes and the upload stays open.
    pub fn complete_upload(
        &self,
        upload: &Upload,
        requested: &[CompletePart],
        min_part_size: u64,
        condition: &WriteCondition,
        composite_checksum: &ObjectChecksum<'_>,
    ) -> Result<Entry, VaultError> {
        if requested
            .windows(2)
            .any(|pair| pair[0].part_number >= pair[1].part_number)
        {
            return Err(VaultError::InvalidPartOrder);
        }
        let key = ObjectKey::parse(&upload.key)?;
        let entry = self.meta.write(|tx| {
            if uploads::get(tx, &upload.upload_id)?.is_none() {
                return Err(VaultError::NoSuchUpload(upload.upload_id.clone()));
            }
            let (stored, _, _) = uploads::parts(tx, &upload.upload_id, 0, usize::MAX)?;
            let chosen = choose_parts(&stored, requested, min_part_size)?;
            let mut attrs = upload.attrs.clone();
            if let Some((algorithm, value)) = composite_checksum(&chosen) {
                attrs.checksums.insert(algorithm, value);
            }
            let file = NewFile {
                blob: None,
                key_version: chosen.first().map_or(0, |part| part.key_version),
                size: chosen.iter().map(|part| part.size).sum(),
                etag: multipart_etag(&chosen),
                attrs,
                parts: chosen.clone(),
                inline: None,
            };
            let outcome = entries::put_file(tx, upload.vault, &key, &file, condition)?;
            let kept: Vec<_> = chosen.iter().map(|part| part.blob).collect();
            uploads::remove(tx, &upload.upload_id, &kept)?;
            Ok(outcome.entry)
        })?;
        self.announce_written(&entry);
        self.collect_garbage_quietly();
        Ok(entry)
    }

    /// Aborts every upload created before `before_ms`; returns how many.
    ///
    /// # Errors
    /// A metadata failure.
    pub fn abort_uploads_older_than(&self, before_ms: i64) -> Result<usize, VaultError> {
        let stale = self
            .meta
            .read(|conn| Ok::<_, VaultError>(uploads::older_than(conn, before_ms)?))?;
        for upload_id in &stale {
            self.meta
                .write(|tx| Ok::<_, VaultError>(uploads::remove(tx, upload_id, &[])?))?;
        }
        if !stale.is_empty() {
            self.collect_garbage_quietly();
        }
        Ok(stale.len())
    }
}

/// Picks the stored parts a completion names, checks them, and lays them out end to end.
fn choose_parts(
    stored: &[StoredPart],
    requested: &[CompletePart],
    min_part_size: u64,
) -> Result<Vec<StoredPart>, VaultError> {
    let mut chosen = Vec::with_capacity(requested.len());
    let mut offset = 0;
    for wanted in requested {
        let etag = wanted.etag.trim().trim_matches('"');
        let part = stored
            .iter()
            .find(|part| part.part_number == wanted.part_number && part.etag == etag)
            .ok_or(VaultError::InvalidPart {
                part_number: wanted.part_number,
            })?;
        chosen.push(StoredPart {
            offset,
            ..part.clone()
        });
        offset += part.size;
    }
    if let Some((_, all_but_last)) = chosen.split_last()
        && let Some(small) = all_but_last.iter().find(|part| part.size < min_part_size)
    {
        return Err(VaultError::EntityTooSmall {
            part_number: small.part_number,
            size: small.size,
            min: min_part_size,
        });
    }
    Ok(chosen)
}
