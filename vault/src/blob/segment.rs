//! Sealing and opening single segments of one blob.
//!
//! A [`SegmentCipher`] holds the blob key (derived once from the vault data key and the blob id)
//! and the encoded header, which together with the segment index and last flag form each
//! segment's associated data (see [`super::format`]).

use std::ops::Range;

use crate::crypto::{AeadKey, SecretKey, derive_key, random_nonce};

use super::format::{
    BLOB_KEY_INFO, HEADER_LEN, Header, SEGMENT_NONCE_LEN, SEGMENT_TAG_LEN, segment_aad,
};
use super::{BlobError, BlobId};

/// The cipher state for the segments of one blob.
pub(crate) struct SegmentCipher {
    key: AeadKey,
    header: [u8; HEADER_LEN],
    id: BlobId,
}

impl SegmentCipher {
    /// Derives the blob key for `header`'s blob from the vault data key.
    pub(crate) fn new(data_key: &SecretKey, header: &Header) -> Self {
        let blob_key = derive_key(data_key, header.blob_id.as_bytes(), BLOB_KEY_INFO);
        Self {
            key: AeadKey::new(&blob_key),
            header: header.encode(),
            id: header.blob_id,
        }
    }

    /// The encoded header bound into every segment.
    pub(crate) fn header(&self) -> &[u8; HEADER_LEN] {
        &self.header
    }

    /// Seals `plaintext` as segment `index` and appends `nonce || ciphertext || tag` to `out`.
    pub(crate) fn seal(&self, index: u64, last: bool, plaintext: &[u8], out: &mut Vec<u8>) {
        let nonce = random_nonce();
        out.extend_from_slice(&nonce);

        // Encrypt in the output buffer itself, saving a copy per segment.
        let start = out.len();
        out.extend_from_slice(plaintext);
        let aad = segment_aad(&self.header, index, last);
        let tag = self.key.seal_in_place(&nonce, &aad, &mut out[start..]);
        out.extend_from_slice(&tag);
    }

    /// Verifies and decrypts the sealed segment `index` in place; returns where its plaintext
    /// lies in `sealed`.
    ///
    /// # Errors
    ///
    /// [`BlobError::Malformed`] if `sealed` is too short to be a segment,
    /// [`BlobError::IntegrityCheckFailed`] if its tag does not verify.
    pub(crate) fn open_in_place(
        &self,
        index: u64,
        last: bool,
        sealed: &mut [u8],
    ) -> Result<Range<usize>, BlobError> {
        let Some(body_len) = sealed
            .len()
            .checked_sub(SEGMENT_NONCE_LEN + SEGMENT_TAG_LEN)
        else {
            return Err(BlobError::Malformed {
                id: self.id,
                what: "segment shorter than its framing",
            });
        };

        let (nonce, rest) = sealed.split_at_mut(SEGMENT_NONCE_LEN);
        let (body, tag) = rest.split_at_mut(body_len);
        let nonce: &[u8; SEGMENT_NONCE_LEN] = (&*nonce).try_into().expect("split at nonce length");
        let tag: &[u8; SEGMENT_TAG_LEN] = (&*tag).try_into().expect("split leaves the tag");

        let aad = segment_aad(&self.header, index, last);
        self.key
            .open_in_place(nonce, &aad, body, tag)
            .map_err(|_| BlobError::IntegrityCheckFailed {
                id: self.id,
                segment: index,
            })?;
        Ok(SEGMENT_NONCE_LEN..SEGMENT_NONCE_LEN + body_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(key: &SecretKey, id: u8, key_version: u32) -> SegmentCipher {
        SegmentCipher::new(key, &Header::new(BlobId::from_bytes([id; 16]), key_version))
    }

    #[test]
    fn seal_then_open_round_trips() {
        let key = SecretKey::generate();
        let cipher = cipher(&key, 1, 1);
        let mut sealed = Vec::new();

        cipher.seal(3, false, b"segment body", &mut sealed);
        let range = cipher.open_in_place(3, false, &mut sealed).unwrap();

        assert_eq!(&sealed[range], b"segment body");
    }

    #[test]
    fn index_last_flag_blob_and_key_are_bound() {
        let key = SecretKey::generate();
        let mut sealed = Vec::new();
        cipher(&key, 1, 1).seal(3, false, b"segment body", &mut sealed);

        let attempts = [
            (cipher(&key, 1, 1), 4, false),
            (cipher(&key, 1, 1), 3, true),
            (cipher(&key, 2, 1), 3, false),
            (cipher(&key, 1, 2), 3, false),
            (cipher(&SecretKey::generate(), 1, 1), 3, false),
        ];
        for (cipher, index, last) in attempts {
            let err = cipher
                .open_in_place(index, last, &mut sealed.clone())
                .unwrap_err();
            assert!(
                matches!(err, BlobError::IntegrityCheckFailed { segment, .. } if segment == index),
                "{err:?}"
            );
        }
    }

    #[test]
    fn short_segment_is_malformed() {
        let cipher = cipher(&SecretKey::generate(), 1, 1);

        let err = cipher.open_in_place(0, true, &mut [0u8; 27]).unwrap_err();

        assert!(matches!(err, BlobError::Malformed { .. }), "{err:?}");
    }
}
