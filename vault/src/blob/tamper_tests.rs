//! Damaged blobs: every kind of damage the format promises to catch is caught, and reported
//! with the right error and segment.

use std::ops::Range;

use crate::crypto::SecretKey;

use super::format::{HEADER_LEN, Layout, SEGMENT_SIZE, SEGMENT_STRIDE};
use super::testing::{open, pattern, read_all, read_range, write_blob};
use super::{BlobError, BlobId, BlobReader, BlobStore, MemoryBlobStore};

const SEG: usize = SEGMENT_SIZE as usize;

/// Where segment `index` lies in a blob file of `file_len` bytes.
fn segment_bytes(file_len: usize, index: usize) -> Range<usize> {
    let start = HEADER_LEN + index * SEGMENT_STRIDE;
    start..(start + SEGMENT_STRIDE).min(file_len)
}

fn fixture(len: usize) -> (MemoryBlobStore, SecretKey, BlobId, Vec<u8>) {
    let store = MemoryBlobStore::new();
    let key = SecretKey::generate();
    let data = pattern(len);
    let id = write_blob(&store, &key, &[&data]);
    (store, key, id, data)
}

fn assert_integrity_failure(result: Result<impl Sized, BlobError>, expected: u64) {
    match result {
        Err(BlobError::IntegrityCheckFailed { segment, .. }) => assert_eq!(segment, expected),
        Err(err) => panic!("expected an integrity failure in segment {expected}, got {err:?}"),
        Ok(_) => panic!("expected an integrity failure in segment {expected}, got success"),
    }
}

fn open_err(store: &MemoryBlobStore, id: BlobId, key: &SecretKey) -> BlobError {
    match open(store, id, key) {
        Ok(_) => panic!("damaged blob {id} opened"),
        Err(err) => err,
    }
}

#[test]
fn flipped_byte_in_any_segment_names_that_segment() {
    let len = 3 * SEG + 100;
    for segment in 0..4 {
        let (store, key, id, data) = fixture(len);
        let file_len = store.raw_bytes(id).unwrap().len();
        let bytes = segment_bytes(file_len, segment);
        // One byte each of the nonce, the ciphertext and the tag.
        for at in [bytes.start, bytes.start + 12 + 50, bytes.end - 1] {
            let original = store.raw_bytes(id).unwrap();
            store.with_bytes_mut(id, |b| b[at] ^= 0x01).unwrap();
            let expected = segment as u64;

            if segment == 3 {
                assert_integrity_failure(open(&store, id, &key), expected);
            } else {
                let reader = open(&store, id, &key).unwrap();
                assert_integrity_failure(reader.read_segment(expected), expected);
                assert_integrity_failure(read_range(&reader, 0, u64::MAX), expected);
                // A range that avoids the damaged segment still reads: only touched segments
                // are decrypted.
                let last = (3 * SEG) as u64;
                assert_eq!(
                    read_range(&reader, last, u64::MAX).unwrap(),
                    &data[3 * SEG..]
                );
            }
            store.with_bytes_mut(id, |b| *b = original).unwrap();
        }
    }
}

#[test]
fn every_flipped_byte_of_a_small_blob_is_caught() {
    let (store, key, id, _) = fixture(100);
    let original = store.raw_bytes(id).unwrap();

    for at in 0..original.len() {
        let mut damaged = original.clone();
        damaged[at] ^= 0x80;
        store.insert_raw(id, damaged);

        let err = open_err(&store, id, &key);
        if at >= HEADER_LEN {
            assert!(
                matches!(err, BlobError::IntegrityCheckFailed { segment: 0, .. }),
                "{at}"
            );
        }
    }
}

#[test]
fn swapped_segments_are_caught() {
    let (store, key, id, _) = fixture(3 * SEG + 1);
    store
        .with_bytes_mut(id, |b| {
            let (first, second) = (segment_bytes(b.len(), 0), segment_bytes(b.len(), 1));
            let copy = b[first.clone()].to_vec();
            b.copy_within(second, first.start);
            b[first.end..first.end + copy.len()].copy_from_slice(&copy);
        })
        .unwrap();

    let reader = open(&store, id, &key).unwrap();

    assert_integrity_failure(reader.read_segment(0), 0);
    assert_integrity_failure(reader.read_segment(1), 1);
    assert_integrity_failure(read_range(&reader, 0, u64::MAX), 0);
}

#[test]
fn swapping_the_final_segment_is_caught_at_open() {
    let (store, key, id, _) = fixture(2 * SEG);
    store
        .with_bytes_mut(id, |b| b[HEADER_LEN..].rotate_left(SEGMENT_STRIDE))
        .unwrap();

    assert_integrity_failure(open(&store, id, &key), 1);
}

#[test]
fn segment_from_another_blob_is_caught() {
    let (store, key, id, _) = fixture(2 * SEG + 5);
    let other = write_blob(&store, &key, &[&pattern(2 * SEG + 5)]);
    let foreign = store.raw_bytes(other).unwrap();
    store
        .with_bytes_mut(id, |b| {
            let first = segment_bytes(b.len(), 0);
            b[first.clone()].copy_from_slice(&foreign[first]);
        })
        .unwrap();

    let reader = open(&store, id, &key).unwrap();

    assert_integrity_failure(reader.read_segment(0), 0);
}

#[test]
fn truncation_at_a_segment_boundary_is_caught_at_open() {
    for (len, keep) in [(3 * SEG + 5, 2), (3 * SEG, 2), (2 * SEG, 1), (SEG + 1, 1)] {
        let (store, key, id, _) = fixture(len);
        store
            .with_bytes_mut(id, |b| b.truncate(HEADER_LEN + keep * SEGMENT_STRIDE))
            .unwrap();

        assert_integrity_failure(open(&store, id, &key), keep as u64 - 1);
    }
}

#[test]
fn truncation_mid_segment_is_caught_at_open() {
    let (store, key, id, _) = fixture(2 * SEG + 100);
    let original = store.raw_bytes(id).unwrap();
    let cuts = [
        0,
        1,
        31,
        32,
        33,
        59,
        60,
        1000,
        HEADER_LEN + SEGMENT_STRIDE + 27,
    ];
    let cuts = cuts
        .into_iter()
        .chain([SEGMENT_STRIDE + 5000, original.len() - 1]);

    for cut in cuts {
        store.insert_raw(id, original[..cut].to_vec());

        let err = open_err(&store, id, &key);
        assert!(
            matches!(
                err,
                BlobError::Malformed { .. } | BlobError::IntegrityCheckFailed { .. }
            ),
            "cut at {cut}: {err:?}"
        );
    }
}

#[test]
fn appended_segments_are_caught_at_open() {
    let (store, key, id, _) = fixture(2 * SEG);
    let original = store.raw_bytes(id).unwrap();
    let final_segment = original[segment_bytes(original.len(), 1)].to_vec();

    // A copy of the real final segment.
    store
        .with_bytes_mut(id, |b| b.extend_from_slice(&final_segment))
        .unwrap();
    assert_integrity_failure(open(&store, id, &key), 2);

    // A partial segment from another blob of the same vault.
    let short = write_blob(&store, &key, &[b"tail"]);
    let short_segment = store.raw_bytes(short).unwrap()[HEADER_LEN..].to_vec();
    store.insert_raw(id, [original.clone(), short_segment].concat());
    assert_integrity_failure(open(&store, id, &key), 2);

    // An empty segment: no plaintext length ends in an empty segment after full ones.
    let empty = write_blob(&store, &key, &[]);
    let empty_segment = store.raw_bytes(empty).unwrap()[HEADER_LEN..].to_vec();
    store.insert_raw(id, [original, empty_segment].concat());
    assert!(matches!(
        open_err(&store, id, &key),
        BlobError::Malformed { .. }
    ));
}

#[test]
fn edited_key_version_is_caught() {
    let (store, key, id, _) = fixture(10);
    store.with_bytes_mut(id, |b| b[8] = 2).unwrap();

    // Even when the edited version maps to the very same key, the header is bound.
    let err = BlobReader::open(&store, id, |_| Some(key.clone()))
        .err()
        .unwrap();
    assert!(
        matches!(err, BlobError::IntegrityCheckFailed { segment: 0, .. }),
        "{err:?}"
    );

    let err = BlobReader::open(&store, id, |v| (v == 1).then(|| key.clone()))
        .err()
        .unwrap();
    assert!(
        matches!(err, BlobError::UnknownKeyVersion { version: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn blob_under_another_id_is_caught() {
    let (store, key, id, _) = fixture(10);
    let bytes = store.raw_bytes(id).unwrap();
    let other = BlobId::generate();

    // Copied as is: the header names the original blob.
    store.insert_raw(other, bytes.clone());
    assert!(matches!(
        open_err(&store, other, &key),
        BlobError::Malformed { .. }
    ));

    // Header rewritten to match: the blob key and associated data still differ.
    let mut forged = bytes;
    forged[16..32].copy_from_slice(other.as_bytes());
    store.insert_raw(other, forged);
    assert_integrity_failure(open(&store, other, &key), 0);
}

#[test]
fn edited_format_fields_are_reported() {
    let (store, key, id, _) = fixture(10);
    let original = store.raw_bytes(id).unwrap();
    let edit = |at: usize, value: u8| {
        let mut bytes = original.clone();
        bytes[at] = value;
        store.insert_raw(id, bytes);
        open_err(&store, id, &key)
    };

    assert!(matches!(edit(0, b'x'), BlobError::Malformed { .. }));
    assert!(matches!(
        edit(4, 9),
        BlobError::UnsupportedFormat { version: 9, .. }
    ));
    assert!(matches!(edit(7, 1), BlobError::Malformed { .. }));
    assert!(matches!(edit(14, 2), BlobError::Malformed { .. }));
}

#[test]
fn wrong_key_is_caught_at_open() {
    for len in [0, 10, 3 * SEG] {
        let (store, _, id, _) = fixture(len);
        let last = Layout::for_plaintext_len(len as u64).last_segment();

        assert_integrity_failure(open(&store, id, &SecretKey::generate()), last);
    }
}

#[test]
fn undamaged_blobs_still_read_after_the_checks() {
    let (store, key, id, data) = fixture(2 * SEG + 3);

    assert_eq!(read_all(&store as &dyn BlobStore, id, &key).unwrap(), data);
}
