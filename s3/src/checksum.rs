//! Additional checksums for S3 object integrity (`x-amz-checksum-*`).
//!
//! S3 lets a client send, besides `Content-MD5`, one checksum out of CRC32, CRC32C, CRC64NVME,
//! SHA-1 and SHA-256, either as a request header or as an `aws-chunked` trailer (see
//! [`crate::chunked`]). The value is always the base64 encoding of the big-endian digest. See
//! [Checking object integrity](https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::Digest as _;

/// One of the checksum algorithms S3 accepts in `x-amz-checksum-*` headers and trailers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    /// CRC-32 (IEEE 802.3), `x-amz-checksum-crc32`.
    Crc32,
    /// CRC-32C (Castagnoli), `x-amz-checksum-crc32c`.
    Crc32c,
    /// CRC-64/NVME, `x-amz-checksum-crc64nvme`.
    Crc64Nvme,
    /// SHA-1, `x-amz-checksum-sha1`.
    Sha1,
    /// SHA-256, `x-amz-checksum-sha256`.
    Sha256,
}

impl ChecksumAlgorithm {
    /// Every supported algorithm, in a fixed order.
    pub const ALL: [Self; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
    ];

    /// Parses a header or trailer name such as `x-amz-checksum-crc32c` (any letter case).
    #[must_use]
    pub fn from_header_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|alg| name.eq_ignore_ascii_case(alg.header_name()))
    }

    /// Parses an algorithm name as used by `x-amz-checksum-algorithm`,
    /// `x-amz-sdk-checksum-algorithm` and the XML `ChecksumAlgorithm` element (any letter case).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|alg| name.eq_ignore_ascii_case(alg.name()))
    }

    /// The header (and trailer) name carrying this checksum, in lower case.
    #[must_use]
    pub fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The algorithm name as S3 spells it in headers and XML (`CRC32`, `CRC64NVME`, ...).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    /// Length in bytes of the raw digest.
    #[must_use]
    pub fn digest_len(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    /// Whether `value` is a well-formed checksum for this algorithm: standard base64 with
    /// padding that decodes to exactly [`digest_len`](Self::digest_len) bytes.
    #[must_use]
    pub fn is_well_formed(self, value: &str) -> bool {
        BASE64
            .decode(value)
            .is_ok_and(|raw| raw.len() == self.digest_len())
    }
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Incremental computation of an S3 checksum; [`finish`](Self::finish) yields the value exactly
/// as S3 sends and expects it (base64 of the big-endian digest).
#[derive(Clone)]
pub struct ChecksumHasher {
    state: State,
}

#[derive(Clone)]
enum State {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(crc64fast_nvme::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl ChecksumHasher {
    /// Starts a checksum of the empty input.
    #[must_use]
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        let state = match algorithm {
            ChecksumAlgorithm::Crc32 => State::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => State::Crc32c(0),
            ChecksumAlgorithm::Crc64Nvme => State::Crc64Nvme(crc64fast_nvme::Digest::new()),
            ChecksumAlgorithm::Sha1 => State::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
        };
        Self { state }
    }

    /// The algorithm this hasher computes.
    #[must_use]
    pub fn algorithm(&self) -> ChecksumAlgorithm {
        match self.state {
            State::Crc32(_) => ChecksumAlgorithm::Crc32,
            State::Crc32c(_) => ChecksumAlgorithm::Crc32c,
            State::Crc64Nvme(_) => ChecksumAlgorithm::Crc64Nvme,
            State::Sha1(_) => ChecksumAlgorithm::Sha1,
            State::Sha256(_) => ChecksumAlgorithm::Sha256,
        }
    }

    /// Feeds more input.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Crc32(hasher) => hasher.update(data),
            State::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
            State::Crc64Nvme(digest) => digest.write(data),
            State::Sha1(hasher) => hasher.update(data),
            State::Sha256(hasher) => hasher.update(data),
        }
    }

    /// The raw big-endian digest of everything fed so far.
    #[must_use]
    pub fn finish_raw(self) -> Vec<u8> {
        match self.state {
            State::Crc32(hasher) => hasher.finalize().to_be_bytes().to_vec(),
            State::Crc32c(crc) => crc.to_be_bytes().to_vec(),
            State::Crc64Nvme(digest) => digest.sum64().to_be_bytes().to_vec(),
            State::Sha1(hasher) => hasher.finalize().to_vec(),
            State::Sha256(hasher) => hasher.finalize().to_vec(),
        }
    }

    /// The checksum of everything fed so far, base64-encoded as S3 encodes it.
    #[must_use]
    pub fn finish(self) -> String {
        BASE64.encode(self.finish_raw())
    }
}

impl fmt::Debug for ChecksumHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChecksumHasher")
            .field("algorithm", &self.algorithm())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn raw(alg: ChecksumAlgorithm, data: &[u8]) -> Vec<u8> {
        let mut hasher = ChecksumHasher::new(alg);
        hasher.update(data);
        hasher.finish_raw()
    }

    #[test]
    fn crc_check_values_of_123456789() {
        assert_eq!(
            raw(ChecksumAlgorithm::Crc32, b"123456789"),
            0xcbf4_3926_u32.to_be_bytes()
        );
        assert_eq!(
            raw(ChecksumAlgorithm::Crc32c, b"123456789"),
            0xe306_9283_u32.to_be_bytes()
        );
        assert_eq!(
            raw(ChecksumAlgorithm::Crc64Nvme, b"123456789"),
            0xae8b_1486_0a79_9888_u64.to_be_bytes()
        );
    }

    #[test]
    fn hello_world_values_match_s3_encoding() {
        let value = |alg| {
            let mut hasher = ChecksumHasher::new(alg);
            hasher.update(b"hello world");
            hasher.finish()
        };
        // CRC32("hello world") = 0x0d4a1185.
        assert_eq!(value(ChecksumAlgorithm::Crc32), "DUoRhQ==");
        assert_eq!(
            value(ChecksumAlgorithm::Sha1),
            "Kq5sNclPz7QV2+lfQIuc6R7oRu0="
        );
        assert_eq!(
            value(ChecksumAlgorithm::Sha256),
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
        );
    }

    #[test]
    fn crc32c_of_the_documented_trailer_example() {
        // 66560 bytes of 'a' carry `x-amz-checksum-crc32c:sOO8/Q==` in AWS's trailer example.
        let mut hasher = ChecksumHasher::new(ChecksumAlgorithm::Crc32c);
        hasher.update(&[b'a'; 66_560]);
        assert_eq!(hasher.finish(), "sOO8/Q==");
    }

    #[test]
    fn empty_input_checksums() {
        let mut sha = ChecksumHasher::new(ChecksumAlgorithm::Sha256);
        sha.update(b"");
        assert_eq!(sha.finish(), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert_eq!(
            ChecksumHasher::new(ChecksumAlgorithm::Crc32).finish(),
            "AAAAAA=="
        );
    }

    #[test]
    fn names_round_trip() {
        for alg in ChecksumAlgorithm::ALL {
            assert_eq!(ChecksumAlgorithm::from_name(alg.name()), Some(alg));
            assert_eq!(
                ChecksumAlgorithm::from_header_name(alg.header_name()),
                Some(alg)
            );
            assert_eq!(ChecksumHasher::new(alg).algorithm(), alg);
            assert!(alg.is_well_formed(&ChecksumHasher::new(alg).finish()));
        }
        assert_eq!(
            ChecksumAlgorithm::from_name("crc32c"),
            Some(ChecksumAlgorithm::Crc32c)
        );
        assert_eq!(
            ChecksumAlgorithm::from_header_name("X-Amz-Checksum-CRC64NVME"),
            Some(ChecksumAlgorithm::Crc64Nvme)
        );
        assert_eq!(ChecksumAlgorithm::from_name("MD5"), None);
        assert_eq!(
            ChecksumAlgorithm::from_header_name("x-amz-checksum-md5"),
            None
        );
    }

    #[test]
    fn malformed_values_are_detected() {
        assert!(!ChecksumAlgorithm::Crc32.is_well_formed("DUoRhQ"));
        assert!(!ChecksumAlgorithm::Crc32.is_well_formed("DUoRhQAA"));
        assert!(!ChecksumAlgorithm::Sha1.is_well_formed("DUoRhQ=="));
        assert!(!ChecksumAlgorithm::Crc32c.is_well_formed("not base64!"));
    }

    proptest! {
        #[test]
        fn streaming_matches_one_shot(data in proptest::collection::vec(any::<u8>(), 0..2048),
                                      split in 0usize..2048) {
            let split = split.min(data.len());
            for alg in ChecksumAlgorithm::ALL {
                let mut hasher = ChecksumHasher::new(alg);
                hasher.update(&data[..split]);
                hasher.update(&data[split..]);
                prop_assert_eq!(hasher.finish_raw(), raw(alg, &data));
            }
        }
    }
}

pub mod combine;
