//! The on-disk blob format, version 1: the header and the segment layout.
//!
//! ```text
//! header (32 bytes)
//!   magic "VHB1" | format_version u16 LE | flags u16 LE | key_version u32 LE
//!   | segment_size u32 LE | blob_id [u8; 16]
//! segment 0 .. segment n-1
//!   nonce (12, random) | ciphertext (segment_size bytes, fewer in the last) | tag (16)
//! ```
//!
//! Plaintext is cut into segments of `segment_size` bytes; all but the last are full and the
//! last holds `0..=segment_size` bytes, so an empty blob is exactly one empty segment. Every
//! plaintext length has exactly one layout, which lets the reader derive the plaintext length
//! from the file length alone; file lengths no layout produces are malformed.
//!
//! Each segment is sealed with AES-256-GCM-SIV under the blob key, HKDF-SHA256 of the vault data
//! key with the blob id as salt and [`BLOB_KEY_INFO`] as info. Its associated data is the 32
//! header bytes, the segment index (u64 LE) and a last flag (one byte, 1 for the final segment).
//! Binding the header catches edits to it; the index catches reordering; the derived key and the
//! header catch segments moved between blobs; the last flag catches truncation at a segment
//! boundary and appended segments.
//!
//! Everything in this module is frozen for format version 1: blobs written with these values
//! are on disk, and changing any of them makes those blobs unreadable. A new layout needs a new
//! format version.

use super::{BlobError, BlobId};

/// The first four bytes of every blob. Frozen for format version 1.
pub const MAGIC: [u8; 4] = *b"VHB1";

/// The format version this module writes and reads. Frozen: version 1 is this layout.
pub const FORMAT_VERSION: u16 = 1;

/// Length of the header in bytes. Frozen for format version 1.
pub const HEADER_LEN: usize = 32;

/// Plaintext bytes per segment (64 KiB). Frozen for format version 1: a version 1 header holding
/// any other value is malformed.
pub const SEGMENT_SIZE: u32 = 64 * 1024;

/// [`SEGMENT_SIZE`] as a buffer length.
pub const SEGMENT_LEN: usize = SEGMENT_SIZE as usize;

/// Length of the random nonce before each segment's ciphertext. Frozen for format version 1.
pub const SEGMENT_NONCE_LEN: usize = 12;

/// Length of the tag after each segment's ciphertext. Frozen for format version 1.
pub const SEGMENT_TAG_LEN: usize = 16;

/// Bytes each segment adds to its plaintext on disk. Frozen for format version 1.
pub const SEGMENT_OVERHEAD: usize = SEGMENT_NONCE_LEN + SEGMENT_TAG_LEN;

/// On-disk length of a full segment; segment `i` starts at `HEADER_LEN + i * SEGMENT_STRIDE`.
/// Frozen for format version 1.
pub const SEGMENT_STRIDE: usize = SEGMENT_LEN + SEGMENT_OVERHEAD;

/// HKDF info string for deriving a blob key from a vault data key. Frozen for format version 1.
pub const BLOB_KEY_INFO: &[u8] = b"vh blob v1";

/// Length of a segment's associated data: header, index and last flag.
pub(crate) const AAD_LEN: usize = HEADER_LEN + 8 + 1;

// The segment framing is the cipher's framing; the format must not drift if the cipher module
// ever changes its constants.
const _: () = assert!(SEGMENT_NONCE_LEN == crate::crypto::NONCE_LEN);
const _: () = assert!(SEGMENT_TAG_LEN == crate::crypto::TAG_LEN);

/// The decoded header of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The version of the vault data key the blob key was derived from.
    pub key_version: u32,
    /// The blob's own id, so a file renamed to another id is caught.
    pub blob_id: BlobId,
}

impl Header {
    /// The header of a new blob.
    #[must_use]
    pub const fn new(blob_id: BlobId, key_version: u32) -> Self {
        Self {
            key_version,
            blob_id,
        }
    }

    /// The 32 bytes written at the start of the blob.
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0..4].copy_from_slice(&MAGIC);
        bytes[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        // Bytes 6..8 are the flags, all zero in version 1.
        bytes[8..12].copy_from_slice(&self.key_version.to_le_bytes());
        bytes[12..16].copy_from_slice(&SEGMENT_SIZE.to_le_bytes());
        bytes[16..32].copy_from_slice(self.blob_id.as_bytes());
        bytes
    }

    /// Parses and checks the header of the blob stored under `expected`.
    ///
    /// # Errors
    ///
    /// [`BlobError::UnsupportedFormat`] for another format version, [`BlobError::Malformed`] for
    /// a wrong magic, unknown flags, a segment size other than [`SEGMENT_SIZE`], or a header
    /// naming a blob other than `expected`.
    pub fn decode(bytes: &[u8; HEADER_LEN], expected: BlobId) -> Result<Self, BlobError> {
        let malformed = |what| BlobError::Malformed { id: expected, what };
        let [
            m0,
            m1,
            m2,
            m3,
            v0,
            v1,
            f0,
            f1,
            k0,
            k1,
            k2,
            k3,
            s0,
            s1,
            s2,
            s3,
            id @ ..,
        ] = *bytes;

        if [m0, m1, m2, m3] != MAGIC {
            return Err(malformed("not a blob (bad magic)"));
        }
        let version = u16::from_le_bytes([v0, v1]);
        if version != FORMAT_VERSION {
            return Err(BlobError::UnsupportedFormat {
                id: expected,
                version,
            });
        }
        if u16::from_le_bytes([f0, f1]) != 0 {
            return Err(malformed("unknown header flags"));
        }
        if u32::from_le_bytes([s0, s1, s2, s3]) != SEGMENT_SIZE {
            return Err(malformed(
                "segment size other than 64 KiB in a version 1 header",
            ));
        }
        if id != *expected.as_bytes() {
            return Err(malformed("header names a different blob"));
        }

        let key_version = u32::from_le_bytes([k0, k1, k2, k3]);
        Ok(Self {
            key_version,
            blob_id: expected,
        })
    }
}

/// Where the segments of a blob lie, derived from its plaintext length or its file length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    plaintext_len: u64,
    segment_count: u64,
}

impl Layout {
    /// The layout of a blob holding `plaintext_len` bytes.
    #[must_use]
    pub const fn for_plaintext_len(plaintext_len: u64) -> Self {
        let segment_count = if plaintext_len == 0 {
            1
        } else {
            plaintext_len.div_ceil(SEGMENT_SIZE as u64)
        };
        Self {
            plaintext_len,
            segment_count,
        }
    }

    /// The layout of the blob `id` whose file is `file_len` bytes long.
    ///
    /// # Errors
    ///
    /// [`BlobError::Malformed`] if no plaintext length produces a file of this length: shorter
    /// than a header and one empty segment, ending in a fragment too short to hold a nonce and
    /// a tag, or ending in an empty segment after full ones.
    pub fn from_file_len(file_len: u64, id: BlobId) -> Result<Self, BlobError> {
        let malformed = |what| BlobError::Malformed { id, what };
        let Some(body) = file_len.checked_sub(HEADER_LEN as u64) else {
            return Err(malformed("shorter than a blob header"));
        };

        let stride = SEGMENT_STRIDE as u64;
        let overhead = SEGMENT_OVERHEAD as u64;
        let full = body / stride;
        let rest = body % stride;
        if rest == 0 && full == 0 {
            return Err(malformed("no segments after the header"));
        }
        if rest != 0 && rest < overhead {
            return Err(malformed("final segment shorter than its nonce and tag"));
        }

        if rest == overhead && full != 0 {
            // Only an empty blob ends in an empty segment; a writer seals a full segment with
            // the last flag rather than follow it with an empty one.
            return Err(malformed("empty final segment after full segments"));
        }

        // A body of whole strides ends in a full final segment; otherwise the fragment is the
        // final segment, holding `rest - overhead` bytes of plaintext.
        let tail_plaintext = if rest == 0 { 0 } else { rest - overhead };
        let layout = Self::for_plaintext_len(full * SEGMENT_SIZE as u64 + tail_plaintext);
        debug_assert_eq!(
            layout.file_len(),
            file_len,
            "every accepted length has one layout"
        );
        Ok(layout)
    }

    /// Bytes of plaintext in the blob.
    #[must_use]
    pub const fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Number of segments, at least one.
    #[must_use]
    pub const fn segment_count(&self) -> u64 {
        self.segment_count
    }

    /// Index of the final segment, the one sealed with the last flag set.
    #[must_use]
    pub const fn last_segment(&self) -> u64 {
        self.segment_count - 1
    }

    /// Length of the whole blob file.
    #[must_use]
    pub const fn file_len(&self) -> u64 {
        HEADER_LEN as u64 + self.plaintext_len + self.segment_count * SEGMENT_OVERHEAD as u64
    }

    /// Offset of segment `index` in the file.
    #[must_use]
    pub const fn segment_offset(&self, index: u64) -> u64 {
        HEADER_LEN as u64 + index * SEGMENT_STRIDE as u64
    }

    /// Offset of segment `index`'s first byte in the plaintext.
    #[must_use]
    pub const fn plaintext_offset(&self, index: u64) -> u64 {
        index * SEGMENT_SIZE as u64
    }

    /// Bytes of plaintext in segment `index`; the caller keeps `index` below the segment count.
    #[must_use]
    pub fn segment_plaintext_len(&self, index: u64) -> usize {
        debug_assert!(index < self.segment_count, "segment {index} out of range");
        if index < self.last_segment() {
            return SEGMENT_LEN;
        }

        let tail = self.plaintext_len - self.plaintext_offset(self.last_segment());
        usize::try_from(tail).expect("a segment holds at most SEGMENT_SIZE bytes")
    }

    /// Bytes segment `index` takes on disk.
    #[must_use]
    pub fn segment_sealed_len(&self, index: u64) -> usize {
        self.segment_plaintext_len(index) + SEGMENT_OVERHEAD
    }
}

/// The associated data sealed with segment `index`.
pub(crate) fn segment_aad(header: &[u8; HEADER_LEN], index: u64, last: bool) -> [u8; AAD_LEN] {
    let mut aad = [0u8; AAD_LEN];
    aad[..HEADER_LEN].copy_from_slice(header);
    aad[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&index.to_le_bytes());
    aad[HEADER_LEN + 8] = u8::from(last);
    aad
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ID: BlobId = BlobId::from_bytes([0x5a; 16]);
    const SEG: u64 = SEGMENT_SIZE as u64;

    #[test]
    fn header_has_the_documented_bytes() {
        let bytes = Header::new(ID, 0x0102_0304).encode();

        assert_eq!(&bytes[0..4], b"VHB1");
        assert_eq!(&bytes[4..6], &[1, 0]);
        assert_eq!(&bytes[6..8], &[0, 0]);
        assert_eq!(&bytes[8..12], &[4, 3, 2, 1]);
        assert_eq!(&bytes[12..16], &[0, 0, 1, 0]);
        assert_eq!(&bytes[16..32], ID.as_bytes());
        assert_eq!(
            Header::decode(&bytes, ID).unwrap(),
            Header::new(ID, 0x0102_0304)
        );
    }

    #[test]
    fn header_checks_each_field() {
        let good = Header::new(ID, 7).encode();
        let edited = |at: usize, value: u8| {
            let mut bytes = good;
            bytes[at] = value;
            Header::decode(&bytes, ID)
        };

        assert!(matches!(edited(0, b'X'), Err(BlobError::Malformed { .. })));
        assert!(matches!(
            edited(4, 2),
            Err(BlobError::UnsupportedFormat { version: 2, .. })
        ));
        assert!(matches!(edited(6, 1), Err(BlobError::Malformed { .. })));
        assert!(matches!(edited(14, 2), Err(BlobError::Malformed { .. })));
        assert!(matches!(edited(31, 0), Err(BlobError::Malformed { .. })));
        assert_eq!(edited(8, 9).unwrap().key_version, 9);
        assert!(matches!(
            Header::decode(&good, BlobId::from_bytes([0; 16])),
            Err(BlobError::Malformed { .. })
        ));
    }

    #[test]
    fn layout_of_segment_edges() {
        let cases = [
            (0, 1, 0),
            (1, 1, 1),
            (SEG - 1, 1, SEG - 1),
            (SEG, 1, SEG),
            (SEG + 1, 2, 1),
            (3 * SEG, 3, SEG),
        ];
        for (len, count, tail) in cases {
            let layout = Layout::for_plaintext_len(len);
            assert_eq!(layout.segment_count(), count, "len {len}");
            assert_eq!(
                layout.segment_plaintext_len(count - 1) as u64,
                tail,
                "len {len}"
            );
            assert_eq!(
                Layout::from_file_len(layout.file_len(), ID).unwrap(),
                layout
            );
        }
        assert_eq!(Layout::for_plaintext_len(0).file_len(), 60);
        assert_eq!(
            Layout::for_plaintext_len(SEG + 1).segment_offset(1),
            32 + SEG + 28
        );
    }

    #[test]
    fn impossible_file_lengths_are_malformed() {
        let stride = SEGMENT_STRIDE as u64;
        let bad = [
            0,
            1,
            31,
            32,
            33,
            59,
            32 + stride + 1,
            32 + stride + 27,
            32 + stride + 28,
            32 + 2 * stride + 5,
            32 + 2 * stride + 28,
        ];
        for file_len in bad {
            let err = Layout::from_file_len(file_len, ID).unwrap_err();
            assert!(
                matches!(err, BlobError::Malformed { .. }),
                "file_len {file_len}"
            );
        }
    }

    #[test]
    fn aad_binds_header_index_and_last_flag() {
        let header = Header::new(ID, 1).encode();
        let aad = segment_aad(&header, 0x0102, true);

        assert_eq!(&aad[..32], &header);
        assert_eq!(&aad[32..40], &[2, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(aad[40], 1);
        assert_eq!(segment_aad(&header, 0, false)[40], 0);
    }

    proptest! {
        #[test]
        fn file_len_and_plaintext_len_agree(len in 0u64..(1 << 40)) {
            let layout = Layout::for_plaintext_len(len);
            let parsed = Layout::from_file_len(layout.file_len(), ID).unwrap();

            prop_assert_eq!(parsed, layout);
            let last = layout.last_segment();
            let end = layout.segment_offset(last) + layout.segment_sealed_len(last) as u64;
            prop_assert_eq!(end, layout.file_len());
        }

        #[test]
        fn accepted_file_lengths_are_exactly_those_of_a_layout(
            segments in 0u64..64,
            extra in 0u64..(2 * SEGMENT_OVERHEAD as u64),
        ) {
            // Lengths near the segment boundaries, where the layouts could be ambiguous.
            let file_len = (HEADER_LEN as u64 + segments * SEGMENT_STRIDE as u64 + extra)
                .saturating_sub(SEGMENT_OVERHEAD as u64);
            if let Ok(layout) = Layout::from_file_len(file_len, ID) {
                prop_assert_eq!(layout.file_len(), file_len);
            }
        }
    }
}
