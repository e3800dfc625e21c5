//! Blobs: the encrypted files that hold vault content, and the stores that keep them.
//!
//! A blob is one file's content sealed in the segmented format of [`format`](mod@format): a
//! 32-byte header (magic, format version, key version, segment size, blob id) followed by
//! fixed-size plaintext segments, each sealed with AES-256-GCM-SIV under a key derived for that
//! blob alone. The header, the segment index and a last-segment flag are bound as associated
//! data, so segments cannot be reordered, moved between blobs, dropped from the end or appended
//! unseen. [`BlobWriter`] streams plaintext into a new blob in bounded memory; [`BlobReader`]
//! decrypts only the segments a range read touches.
//!
//! Where the sealed bytes live is the business of a [`BlobStore`]: [`LocalBlobStore`] keeps them
//! as files under random names with crash-safe commits, [`MemoryBlobStore`] keeps them in memory
//! for tests. Stores only ever see ciphertext.

use std::fmt;
use std::io;

use crate::crypto::fill_random;

pub mod format;
mod local;
mod memory;
mod mutable;
mod reader;
pub(crate) mod segment;
mod store;
#[cfg(test)]
mod tamper_tests;
#[cfg(test)]
mod testing;
mod tiered;
mod writer;

pub use local::LocalBlobStore;
pub use memory::MemoryBlobStore;
pub use mutable::MutableBlob;
pub use reader::BlobReader;
pub use store::{BlobSink, BlobSource, BlobStore};
pub use tiered::TieredBlobStore;
pub use writer::BlobWriter;

/// The random 128-bit name of a blob.
///
/// Blob ids are random rather than derived from content or paths so the store's layout reveals
/// nothing about the files it holds. They print as 32 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId([u8; 16]);

impl BlobId {
    /// A fresh random id.
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot provide random bytes.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        fill_random(&mut bytes);
        Self(bytes)
    }

    /// The id with these bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw 16 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The id as 32 lowercase hex characters.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 32 hex characters. Only lowercase is accepted, so every id has exactly one
    /// spelling (file names in the store must be canonical).
    #[must_use]
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 32 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }

        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({self})")
    }
}

/// Errors from reading, writing and storing blobs.
///
/// Every variant that concerns one blob names it, so a log line is enough to find the file.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No committed blob has this id.
    #[error("blob {id} not found")]
    NotFound {
        /// The blob looked for.
        id: BlobId,
    },

    /// The store failed to read or write; `id` is `None` for operations on the whole store.
    #[error("blob store I/O failed{}", for_blob(.id.as_ref()))]
    Io {
        /// The blob being read or written, if any.
        id: Option<BlobId>,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },

    /// A segment's tag did not verify: the blob was tampered with, truncated, extended, had
    /// segments moved, or is being read with the wrong key.
    #[error("blob {id}: segment {segment} failed its integrity check")]
    IntegrityCheckFailed {
        /// The damaged blob.
        id: BlobId,
        /// The index of the segment that failed.
        segment: u64,
    },

    /// The blob's bytes cannot be a valid blob whatever the key.
    #[error("blob {id} is malformed: {what}")]
    Malformed {
        /// The damaged blob.
        id: BlobId,
        /// What is wrong with it.
        what: &'static str,
    },

    /// The blob was sealed under a data key version the caller cannot provide.
    #[error("blob {id} needs data key version {version}, which is not available")]
    UnknownKeyVersion {
        /// The blob.
        id: BlobId,
        /// The key version its header names.
        version: u32,
    },

    /// The blob is in a format version this build cannot read.
    #[error("blob {id} has unsupported format version {version}")]
    UnsupportedFormat {
        /// The blob.
        id: BlobId,
        /// The format version its header names.
        version: u16,
    },

    /// A caller asked for a segment past the end of the blob.
    #[error("blob {id} has {segment_count} segments, segment {segment} does not exist")]
    SegmentOutOfRange {
        /// The blob.
        id: BlobId,
        /// The segment asked for.
        segment: u64,
        /// How many segments the blob has.
        segment_count: u64,
    },
}

impl BlobError {
    /// Wraps an I/O error on the blob `id`.
    pub(crate) fn io(id: BlobId, source: io::Error) -> Self {
        Self::Io {
            id: Some(id),
            source,
        }
    }
}

/// Renders the optional blob id of [`BlobError::Io`].
fn for_blob(id: Option<&BlobId>) -> String {
    id.map(|id| format!(" for blob {id}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::error::Error as _;

    use super::*;

    #[test]
    fn hex_round_trips_and_is_lowercase() {
        let id = BlobId::from_bytes([0xab; 16]);

        assert_eq!(id.to_hex(), "abababababababababababababababab");
        assert_eq!(id.to_string(), id.to_hex());
        assert_eq!(BlobId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(
            format!("{id:?}"),
            "BlobId(abababababababababababababababab)"
        );
    }

    #[test]
    fn from_hex_rejects_non_canonical_text() {
        for text in [
            "",
            "abab",
            "ABABABABABABABABABABABABABABABAB",
            "abababababababababababababababa",
            "abababababababababababababababab0",
            "zbababababababababababababababab",
            "+bababababababababababababababab",
        ] {
            assert_eq!(BlobId::from_hex(text), None, "{text:?}");
        }
    }

    #[test]
    fn generated_ids_differ() {
        let ids: HashSet<BlobId> = (0..100).map(|_| BlobId::generate()).collect();

        assert_eq!(ids.len(), 100);
    }

    #[test]
    fn io_error_names_the_blob_and_keeps_its_source() {
        let id = BlobId::from_bytes([1; 16]);
        let err = BlobError::io(id, io::Error::other("disk on fire"));

        assert_eq!(
            err.to_string(),
            format!("blob store I/O failed for blob {id}")
        );
        assert_eq!(err.source().unwrap().to_string(), "disk on fire");

        let err = BlobError::Io {
            id: None,
            source: io::Error::other("x"),
        };
        assert_eq!(err.to_string(), "blob store I/O failed");
    }
}
