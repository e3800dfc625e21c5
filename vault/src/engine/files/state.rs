//! The content of one open file: plaintext segments held in memory while they change, and
//! where every other segment is on disk.
//!
//! Content has one of three backings:
//! - **fresh**: a new or truncated file. Segments that must leave memory are sealed straight
//!   into a new blob nobody points at yet; a checkpoint finishes that blob and points the entry
//!   at it in one transaction, so a crash before it leaves the old content.
//! - **in place**: the blob the entry points at. Changed segments are sealed into the segment
//!   journal (see [`crate::meta::journal`]) and copied into the blob after the transaction that
//!   commits them, so a crash at any point leaves each segment old or new, never torn.
//! - **parts**: a multipart object, read through its parts; the first change copies it into a
//!   fresh blob.
//!
//! Segments in memory are full 64 KiB buffers; bytes past the end of the file are zero, which
//! is what makes growing a file read back zeros.

use std::collections::{BTreeMap, BTreeSet};

use zeroize::Zeroizing;

use crate::blob::format::{Header, Layout, SEGMENT_LEN, SEGMENT_OVERHEAD, SEGMENT_SIZE};
use crate::blob::segment::SegmentCipher;
use crate::blob::{BlobId, MutableBlob};
use crate::crypto::SecretKey;
use crate::engine::ObjectReader;
use crate::error::VaultError;

/// Plaintext segments one open file may hold in memory before sealing some of them.
pub(super) const MAX_RESIDENT_SEGMENTS: usize = 64;

const SEG: u64 = SEGMENT_SIZE as u64;

/// A blob open for writing, with the cipher of its segments.
pub(super) struct SealedBlob {
    pub(super) id: BlobId,
    pub(super) key_version: u32,
    pub(super) file: Box<dyn MutableBlob>,
    pub(super) cipher: SegmentCipher,
}

impl SealedBlob {
    pub(super) fn new(
        id: BlobId,
        key_version: u32,
        key: &SecretKey,
        file: Box<dyn MutableBlob>,
    ) -> Self {
        let cipher = SegmentCipher::new(key, &Header::new(id, key_version));
        Self {
            id,
            key_version,
            file,
            cipher,
        }
    }

    /// Seals `plaintext` as segment `index`.
    pub(super) fn seal(&self, index: u64, last: bool, plaintext: &[u8]) -> Vec<u8> {
        let mut sealed = Vec::with_capacity(plaintext.len() + SEGMENT_OVERHEAD);
        self.cipher.seal(index, last, plaintext, &mut sealed);
        sealed
    }

    /// Opens the sealed segment `index` into a full, zero-padded segment buffer.
    pub(super) fn open(
        &self,
        index: u64,
        last: bool,
        mut sealed: Vec<u8>,
    ) -> Result<Segment, VaultError> {
        let range = self.cipher.open_in_place(index, last, &mut sealed)?;
        let mut segment = Segment::zeroed();
        segment.0[..range.len()].copy_from_slice(&sealed[range]);
        Ok(segment)
    }

    /// Reads and opens segment `index` as stored in the blob under `layout`.
    pub(super) fn read_committed(
        &self,
        layout: &Layout,
        index: u64,
    ) -> Result<Segment, VaultError> {
        let mut sealed = vec![0u8; layout.segment_sealed_len(index)];
        self.file
            .read_exact_at(&mut sealed, layout.segment_offset(index))?;
        self.open(index, index == layout.last_segment(), sealed)
    }

    /// Reads and opens segment `index` written as a full, non-final segment.
    pub(super) fn read_full(&self, index: u64) -> Result<Segment, VaultError> {
        let mut sealed = vec![0u8; SEGMENT_LEN + SEGMENT_OVERHEAD];
        self.file
            .read_exact_at(&mut sealed, segment_offset(index))?;
        self.open(index, false, sealed)
    }
}

/// One segment of plaintext, wiped when dropped.
#[derive(Clone)]
pub(super) struct Segment(Zeroizing<Vec<u8>>);

impl Segment {
    pub(super) fn zeroed() -> Self {
        Self(Zeroizing::new(vec![0u8; SEGMENT_LEN]))
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

/// Offset of segment `index` in any blob file.
pub(super) fn segment_offset(index: u64) -> u64 {
    Layout::for_plaintext_len(0).segment_offset(index)
}

/// Where the content lives.
pub(super) enum Backing {
    /// A new blob nobody points at yet (created when the first segment leaves memory).
    Fresh {
        blob: Option<SealedBlob>,
        /// Segments sealed into `blob` (all full and non-final).
        written: BTreeSet<u64>,
    },
    /// The blob the entry points at, as committed with `layout`.
    InPlace {
        blob: SealedBlob,
        layout: Layout,
        /// Segments whose newest version is an uncommitted journal row.
        spilled: BTreeSet<u64>,
    },
    /// A multipart object, still unchanged.
    Parts(Box<ObjectReader>),
}

/// What the entry row says of the content, as of the last commit this state saw or made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Committed {
    pub(super) blob: Option<BlobId>,
    pub(super) parts: u32,
    pub(super) size: u64,
}

/// The mutable state of one open file.
pub(super) struct FileState {
    pub(super) backing: Backing,
    pub(super) committed: Committed,
    /// The file's length, including changes not yet committed.
    pub(super) size: u64,
    /// Segments held in memory, changed since the last commit.
    pub(super) resident: BTreeMap<u64, Segment>,
    /// Segments from here on hold nothing from disk: a truncation cut them off.
    pub(super) zero_from: u64,
    /// The MD5 of the content while it is written front to back.
    pub(super) md5: Option<super::hashing::RunningMd5>,
    /// Whether anything changed since the last commit.
    pub(super) changed: bool,
    /// Whether the stored ETag is out of date (set by a commit without a whole-file MD5).
    pub(super) etag_stale: bool,
    /// Last modification, milliseconds since the epoch.
    pub(super) mtime_ms: i64,
    /// The entry was removed or replaced by someone else: changes go nowhere, as to an unlinked
    /// file.
    pub(super) detached: bool,
    /// The gateway replaced the content: reload before the next operation.
    pub(super) replaced: bool,
    /// A commit reached the journal but copying it into the blob failed; the next commit copies
    /// it first.
    pub(super) replay_pending: bool,
}

/// Index of the segment holding the last byte of a file of `size` bytes (0 when empty).
pub(super) fn tail_index(size: u64) -> u64 {
    size.saturating_sub(1) / SEG
}

impl FileState {
    /// Index of the final segment at the current size.
    pub(super) fn tail(&self) -> u64 {
        tail_index(self.size)
    }

    /// The plaintext of segment `index` as it is now, without keeping it in memory.
    pub(super) fn load(
        &self,
        index: u64,
        journal: &dyn Fn(BlobId, u64) -> Result<Option<Vec<u8>>, VaultError>,
    ) -> Result<Segment, VaultError> {
        if let Some(segment) = self.resident.get(&index) {
            return Ok(segment.clone());
        }
        if index >= self.zero_from || index * SEG >= self.size {
            return Ok(Segment::zeroed());
        }
        match &self.backing {
            Backing::Fresh { blob, written } => match blob {
                Some(blob) if written.contains(&index) => blob.read_full(index),
                _ => Ok(Segment::zeroed()),
            },
            Backing::InPlace {
                blob,
                layout,
                spilled,
            } => {
                if spilled.contains(&index) {
                    let sealed = journal(blob.id, index)?.ok_or_else(|| {
                        VaultError::Internal(format!(
                            "journal row {index} of blob {} vanished",
                            blob.id
                        ))
                    })?;
                    return blob.open(index, false, sealed);
                }
                if index < layout.segment_count() && layout.plaintext_len() > 0 {
                    return blob.read_committed(layout, index);
                }
                Ok(Segment::zeroed())
            }
            Backing::Parts(reader) => {
                let start = index * SEG;
                let end = (start + SEG).min(reader.len());
                let mut segment = Segment::zeroed();
                let mut at = 0;
                reader.read_range(start, end, &mut |chunk| {
                    segment.bytes_mut()[at..at + chunk.len()].copy_from_slice(chunk);
                    at += chunk.len();
                    Ok(())
                })?;
                Ok(segment)
            }
        }
    }

    /// Updates the running MD5 for a write of `data` at `offset`. The hash always covers the
    /// whole file while it lives (any other change drops it), so only an append keeps it.
    pub(super) fn hash_write(&mut self, offset: u64, data: &[u8]) {
        match &mut self.md5 {
            Some(md5) if offset == md5.len() => md5.update(data),
            _ => self.md5 = None,
        }
    }

    /// The hex MD5 of the whole content, when the running hash covers it.
    pub(super) fn whole_md5(&self) -> Option<String> {
        match &self.md5 {
            Some(md5) if md5.len() == self.size => md5.hex_digest(),
            _ => None,
        }
    }
}
