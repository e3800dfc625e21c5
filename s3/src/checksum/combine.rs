//! Checksums of whole multipart objects, built from their parts' checksums.
//!
//! S3 offers two kinds. A *composite* checksum hashes the concatenated binary part checksums
//! and is shown as `value-N`. A *full-object* checksum (CRC algorithms only) equals the CRC of
//! the whole content; it is derived from the part CRCs with the standard CRC combination (zlib's
//! `crc32_combine`, generalised to any reflected CRC), without reading the content again.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{ChecksumAlgorithm, ChecksumHasher};

/// The reflected polynomial of a CRC algorithm, and its width in bits.
fn reflected_polynomial(algorithm: ChecksumAlgorithm) -> Option<(u64, u32)> {
    match algorithm {
        ChecksumAlgorithm::Crc32 => Some((0xEDB8_8320, 32)),
        ChecksumAlgorithm::Crc32c => Some((0x82F6_3B78, 32)),
        ChecksumAlgorithm::Crc64Nvme => Some((0x9A6C_9329_AC4B_C9B5, 64)),
        ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => None,
    }
}

fn gf2_times(matrix: &[u64], mut vector: u64) -> u64 {
    let mut sum = 0;
    let mut row = 0;
    while vector != 0 {
        if vector & 1 == 1 {
            sum ^= matrix[row];
        }
        vector >>= 1;
        row += 1;
    }
    sum
}

fn gf2_square(square: &mut [u64], matrix: &[u64]) {
    for (n, slot) in square.iter_mut().enumerate() {
        *slot = gf2_times(matrix, matrix[n]);
    }
}

/// The CRC of `a || b` from `crc(a)`, `crc(b)` and `len(b)`.
fn crc_combine(polynomial: u64, width: u32, mut crc1: u64, crc2: u64, mut len2: u64) -> u64 {
    if len2 == 0 {
        return crc1;
    }
    let width = width as usize;
    let mut odd = vec![0u64; width];
    let mut even = vec![0u64; width];
    odd[0] = polynomial;
    for (n, slot) in odd.iter_mut().enumerate().skip(1) {
        *slot = 1 << (n - 1);
    }
    gf2_square(&mut even, &odd);
    gf2_square(&mut odd, &even);
    loop {
        gf2_square(&mut even, &odd);
        if len2 & 1 == 1 {
            crc1 = gf2_times(&even, crc1);
        }
        len2 >>= 1;
        if len2 == 0 {
            break;
        }
        gf2_square(&mut odd, &even);
        if len2 & 1 == 1 {
            crc1 = gf2_times(&odd, crc1);
        }
        len2 >>= 1;
        if len2 == 0 {
            break;
        }
    }
    crc1 ^ crc2
}

fn decode(value: &str, bytes: usize) -> Option<u64> {
    let raw = STANDARD.decode(value).ok()?;
    if raw.len() != bytes {
        return None;
    }
    Some(raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// The full-object checksum of parts given as `(base64 checksum, size)` in order, for a CRC
/// algorithm; `None` for SHA algorithms or a malformed part checksum.
#[must_use]
pub fn full_object(algorithm: ChecksumAlgorithm, parts: &[(&str, u64)]) -> Option<String> {
    let (polynomial, width) = reflected_polynomial(algorithm)?;
    let bytes = (width / 8) as usize;
    let mut crc: Option<u64> = None;
    for (value, size) in parts {
        let part = decode(value, bytes)?;
        crc = Some(match crc {
            None => part,
            Some(so_far) => crc_combine(polynomial, width, so_far, part, *size),
        });
    }
    let crc = crc.unwrap_or(0);
    let be = crc.to_be_bytes();
    Some(STANDARD.encode(&be[8 - bytes..]))
}

/// The composite checksum of parts' base64 checksums: the checksum of their concatenated
/// binary values, followed by `-N`.
#[must_use]
pub fn composite(algorithm: ChecksumAlgorithm, parts: &[&str]) -> Option<String> {
    let mut hasher = ChecksumHasher::new(algorithm);
    for value in parts {
        hasher.update(&STANDARD.decode(value).ok()?);
    }
    Some(format!("{}-{}", hasher.finish(), parts.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checksum(algorithm: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut hasher = ChecksumHasher::new(algorithm);
        hasher.update(data);
        hasher.finish()
    }

    #[test]
    fn full_object_crcs_equal_the_crc_of_the_whole() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 253) as u8).collect();
        for algorithm in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            for cuts in [
                vec![0usize, 300_000],
                vec![0, 1, 300_000],
                vec![0, 100_000, 250_000, 299_999, 300_000],
            ] {
                let parts: Vec<(String, u64)> = cuts
                    .windows(2)
                    .map(|w| (checksum(algorithm, &data[w[0]..w[1]]), (w[1] - w[0]) as u64))
                    .collect();
                let refs: Vec<(&str, u64)> = parts.iter().map(|(v, s)| (v.as_str(), *s)).collect();
                assert_eq!(
                    full_object(algorithm, &refs).unwrap(),
                    checksum(algorithm, &data),
                    "{algorithm:?} {cuts:?}"
                );
            }
        }
        assert_eq!(full_object(ChecksumAlgorithm::Sha256, &[("AAAA", 1)]), None);
    }

    #[test]
    fn composite_hashes_the_binary_part_checksums() {
        let a = checksum(ChecksumAlgorithm::Sha256, b"part one");
        let b = checksum(ChecksumAlgorithm::Sha256, b"part two");
        let mut concatenated = STANDARD.decode(&a).unwrap();
        concatenated.extend(STANDARD.decode(&b).unwrap());
        let expected = format!("{}-2", checksum(ChecksumAlgorithm::Sha256, &concatenated));
        assert_eq!(
            composite(ChecksumAlgorithm::Sha256, &[&a, &b]).unwrap(),
            expected
        );
    }
}
