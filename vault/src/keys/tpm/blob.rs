//! Byte layout of a TPM-sealed key, the value stored (base64) in `master.sealed`.
//!
//! Format version 1, frozen: `[1u8][u16 BE len][TPMT_PUBLIC][u16 BE len][TPM2B_PRIVATE buffer]`.
//! The public area is kept in the TSS marshalled form and the private area as the TPM returned
//! it (already encrypted and integrity-protected by the storage key), so this layer only frames
//! them; the TPM checks their integrity when it loads them.

/// Version byte of the layout. Frozen: blobs of version 1 must stay loadable.
const VERSION: u8 = 1;

/// Frames the marshalled public area and the private area into one blob.
pub(super) fn encode(public: &[u8], private: &[u8]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(5 + public.len() + private.len());
    blob.push(VERSION);
    for part in [public, private] {
        let len = u16::try_from(part.len())
            .expect("TPM public and private areas are bounded by the TSS to a few KiB");
        blob.extend_from_slice(&len.to_be_bytes());
        blob.extend_from_slice(part);
    }
    blob
}

/// Splits a blob into the public and private areas; `None` unless it follows the layout exactly.
pub(super) fn decode(blob: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&version, rest) = blob.split_first()?;
    if version != VERSION {
        return None;
    }

    let (public, rest) = split_prefixed(rest)?;
    let (private, rest) = split_prefixed(rest)?;
    if !rest.is_empty() {
        return None;
    }
    Some((public, private))
}

fn split_prefixed(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn layout_is_version_then_length_prefixed_parts() {
        assert_eq!(encode(b"ab", b"c"), [1, 0, 2, b'a', b'b', 0, 1, b'c']);
    }

    #[test]
    fn rejects_other_versions_truncation_and_trailing_bytes() {
        let blob = encode(b"public", b"private");

        let mut other_version = blob.clone();
        other_version[0] = 2;
        let mut trailing = blob.clone();
        trailing.push(0);

        assert_eq!(decode(&other_version), None);
        assert_eq!(decode(&trailing), None);
        assert_eq!(decode(&blob[..blob.len() - 1]), None);
        assert_eq!(decode(&[]), None);
    }

    proptest! {
        #[test]
        fn round_trips(
            public in proptest::collection::vec(any::<u8>(), 0..600),
            private in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let blob = encode(&public, &private);
            prop_assert_eq!(decode(&blob), Some((&public[..], &private[..])));
        }
    }
}
