//! Reading and decrypting a stored blob.
//!
//! [`BlobReader::open`] checks the header, derives the blob key and authenticates the final
//! segment, so once a reader exists its length is trustworthy: a blob truncated at a segment
//! boundary, extended, or read with the wrong key fails at open rather than part way through a
//! response. Reads then decrypt only the segments they touch.

use std::ops::Range;

use zeroize::Zeroizing;

use crate::crypto::SecretKey;

use super::format::{HEADER_LEN, Header, Layout, SEGMENT_SIZE, SEGMENT_STRIDE};
use super::segment::SegmentCipher;
use super::{BlobError, BlobId, BlobSource, BlobStore};

/// An open blob, ready for segment and range reads. Several threads may read at once.
///
/// The reader keeps the final segment's plaintext from its check at open (at most one segment,
/// wiped on drop), so small blobs are read and decrypted once.
pub struct BlobReader {
    id: BlobId,
    source: Box<dyn BlobSource>,
    cipher: SegmentCipher,
    key_version: u32,
    layout: Layout,
    tail: Zeroizing<Vec<u8>>,
}

impl BlobReader {
    /// Opens the blob `id` in `store`. `key_for_version` is asked for the vault data key of
    /// the version named in the blob's header.
    ///
    /// # Errors
    ///
    /// [`BlobError::NotFound`] if there is no such blob; [`BlobError::Malformed`] or
    /// [`BlobError::UnsupportedFormat`] if its header or length is not a valid version 1 blob
    /// (including a header that names another blob); [`BlobError::UnknownKeyVersion`] if
    /// `key_for_version` returns `None`; [`BlobError::IntegrityCheckFailed`] if the final
    /// segment does not verify (wrong key, truncation, extension, tampering);
    /// [`BlobError::Io`] if the store fails.
    pub fn open(
        store: &dyn BlobStore,
        id: BlobId,
        key_for_version: impl FnOnce(u32) -> Option<SecretKey>,
    ) -> Result<Self, BlobError> {
        let source = store.open(id)?;
        let file_len = source.len()?;
        if file_len < HEADER_LEN as u64 {
            return Err(BlobError::Malformed {
                id,
                what: "shorter than a blob header",
            });
        }

        // A blob of one segment is read whole: header and segment in one I/O.
        let single_segment_len = (HEADER_LEN + SEGMENT_STRIDE) as u64;
        let prefix_len = if file_len <= single_segment_len {
            file_len
        } else {
            HEADER_LEN as u64
        };
        let mut prefix = vec![0u8; usize::try_from(prefix_len).expect("at most one segment")];
        source.read_exact_at(&mut prefix, 0)?;

        let (header_bytes, first_segment) = prefix.split_at(HEADER_LEN);
        let header_bytes = header_bytes.try_into().expect("split at the header length");
        let header = Header::decode(header_bytes, id)?;
        let layout = Layout::from_file_len(file_len, id)?;
        let Some(data_key) = key_for_version(header.key_version) else {
            return Err(BlobError::UnknownKeyVersion {
                id,
                version: header.key_version,
            });
        };
        let cipher = SegmentCipher::new(&data_key, &header);

        let mut reader = Self {
            id,
            source,
            cipher,
            key_version: header.key_version,
            layout,
            tail: Zeroizing::new(Vec::new()),
        };
        reader.tail = reader.open_tail(first_segment)?;
        Ok(reader)
    }

    /// The blob this reader reads.
    #[must_use]
    pub fn id(&self) -> BlobId {
        self.id
    }

    /// Bytes of plaintext in the blob.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.layout.plaintext_len()
    }

    /// Whether the blob holds no plaintext.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The version of the vault data key the blob is sealed under.
    #[must_use]
    pub fn key_version(&self) -> u32 {
        self.key_version
    }

    /// Number of segments, at least one.
    #[must_use]
    pub fn segment_count(&self) -> u64 {
        self.layout.segment_count()
    }

    /// The plaintext of segment `index`.
    ///
    /// # Errors
    ///
    /// [`BlobError::SegmentOutOfRange`] past the last segment;
    /// [`BlobError::IntegrityCheckFailed`] if the segment does not verify; [`BlobError::Io`]
    /// if the store fails.
    pub fn read_segment(&self, index: u64) -> Result<Vec<u8>, BlobError> {
        let segment_count = self.layout.segment_count();
        if index >= segment_count {
            return Err(BlobError::SegmentOutOfRange {
                id: self.id,
                segment: index,
                segment_count,
            });
        }
        if index == self.layout.last_segment() {
            return Ok(self.tail.to_vec());
        }

        // A failed check leaves ciphertext in the buffer, so it needs no wiping; a successful
        // one hands the plaintext to the caller anyway.
        let mut buf = Vec::new();
        let plaintext = self.decrypt(index, &mut buf)?;
        keep_range(&mut buf, plaintext);
        Ok(buf)
    }

    /// Hands the plaintext of `start..end` to `sink` in order, in one slice per segment
    /// touched. `end` is clamped to the blob's length; an empty range calls `sink` not at all.
    ///
    /// # Errors
    ///
    /// [`BlobError::IntegrityCheckFailed`] if a segment in the range does not verify (slices
    /// of the segments before it have been handed out already); [`BlobError::Io`] if the
    /// store fails; whatever `sink` returns, which stops the read.
    pub fn read_range(
        &self,
        start: u64,
        end: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), BlobError>,
    ) -> Result<(), BlobError> {
        let end = end.min(self.len());
        if start >= end {
            return Ok(());
        }

        let segment_size = u64::from(SEGMENT_SIZE);
        let first = start / segment_size;
        let last = (end - 1) / segment_size;
        // Reused for every segment; wiped when the read ends.
        let mut scratch = Zeroizing::new(Vec::new());
        for index in first..=last {
            let offset = self.layout.plaintext_offset(index);
            let from = in_segment(start.max(offset) - offset);
            let to = in_segment(end.min(offset + segment_size) - offset);

            if index == self.layout.last_segment() {
                sink(&self.tail[from..to])?;
                continue;
            }
            let plaintext = self.decrypt(index, &mut scratch)?;
            sink(&scratch[plaintext][from..to])?;
        }
        Ok(())
    }

    /// Authenticates and decrypts the final segment, reading it unless `prefetched` already
    /// holds it (a single-segment blob read whole at open).
    fn open_tail(&self, prefetched: &[u8]) -> Result<Zeroizing<Vec<u8>>, BlobError> {
        let last = self.layout.last_segment();
        let mut tail = Zeroizing::new(prefetched.to_vec());
        if last != 0 {
            self.read_sealed(last, &mut tail)?;
        }

        let plaintext = self.cipher.open_in_place(last, true, &mut tail)?;
        keep_range(&mut tail, plaintext);
        Ok(tail)
    }

    /// Reads segment `index` into `buf` and decrypts it there; returns where its plaintext lies.
    fn decrypt(&self, index: u64, buf: &mut Vec<u8>) -> Result<Range<usize>, BlobError> {
        self.read_sealed(index, buf)?;
        let last = index == self.layout.last_segment();
        self.cipher.open_in_place(index, last, buf)
    }

    /// Reads the sealed bytes of segment `index` into `buf`, replacing its contents.
    fn read_sealed(&self, index: u64, buf: &mut Vec<u8>) -> Result<(), BlobError> {
        buf.clear();
        buf.resize(self.layout.segment_sealed_len(index), 0);
        self.source
            .read_exact_at(buf, self.layout.segment_offset(index))
    }
}

/// Shrinks `buf` to `range`, moving its bytes to the front.
fn keep_range(buf: &mut Vec<u8>, range: Range<usize>) {
    let len = range.len();
    buf.copy_within(range, 0);
    buf.truncate(len);
}

/// An offset within one segment as an index; segments are 64 KiB.
fn in_segment(offset: u64) -> usize {
    usize::try_from(offset).expect("an offset within a segment is below 64 KiB")
}

#[cfg(test)]
mod tests {
    use super::super::testing::{open, pattern, read_range, write_blob};
    use super::super::{BlobWriter, MemoryBlobStore};
    use super::*;

    const SEG: u64 = SEGMENT_SIZE as u64;

    fn fixture(len: u64) -> (MemoryBlobStore, SecretKey, BlobId, Vec<u8>) {
        let store = MemoryBlobStore::new();
        let key = SecretKey::generate();
        let data = pattern(usize::try_from(len).unwrap());
        let id = write_blob(&store, &key, &[&data]);
        (store, key, id, data)
    }

    #[test]
    fn range_reads_around_segment_edges() {
        let (store, key, id, data) = fixture(3 * SEG + 1);
        let reader = open(&store, id, &key).unwrap();
        let len = data.len() as u64;
        let mut edges = vec![0, 1, len - 1, len, len + 1, u64::MAX];
        for k in 1..=3 {
            edges.extend([k * SEG - 1, k * SEG, k * SEG + 1]);
        }

        for &start in &edges {
            for &end in &edges {
                let got = read_range(&reader, start, end).unwrap();
                let (a, b) = (start.min(len) as usize, end.min(len) as usize);
                let expected = if a < b { &data[a..b] } else { &[][..] };
                assert_eq!(got, expected, "range {start}..{end}");
            }
        }
    }

    #[test]
    fn range_reads_hand_out_one_slice_per_segment() {
        let (store, key, id, data) = fixture(2 * SEG + 10);
        let reader = open(&store, id, &key).unwrap();
        let mut slices = Vec::new();

        reader
            .read_range(SEG - 1, 2 * SEG + 5, &mut |chunk| {
                slices.push(chunk.to_vec());
                Ok(())
            })
            .unwrap();

        let lens: Vec<usize> = slices.iter().map(Vec::len).collect();
        assert_eq!(lens, [1, SEGMENT_SIZE as usize, 5]);
        assert_eq!(
            slices.concat(),
            &data[(SEG - 1) as usize..(2 * SEG + 5) as usize]
        );
    }

    #[test]
    fn empty_ranges_never_call_the_sink() {
        let (store, key, id, _) = fixture(SEG + 1);
        let reader = open(&store, id, &key).unwrap();

        for (start, end) in [
            (0, 0),
            (5, 5),
            (10, 3),
            (SEG + 1, SEG + 9),
            (u64::MAX, u64::MAX),
        ] {
            reader
                .read_range(start, end, &mut |_| {
                    panic!("sink called for {start}..{end}")
                })
                .unwrap();
        }
    }

    #[test]
    fn sink_errors_stop_the_read() {
        let (store, key, id, _) = fixture(3 * SEG);
        let reader = open(&store, id, &key).unwrap();
        let mut calls = 0;

        let err = reader
            .read_range(0, u64::MAX, &mut |_| {
                calls += 1;
                Err(BlobError::NotFound { id })
            })
            .unwrap_err();

        assert!(matches!(err, BlobError::NotFound { .. }));
        assert_eq!(calls, 1);
    }

    #[test]
    fn segments_read_one_by_one() {
        let (store, key, id, data) = fixture(2 * SEG + 7);
        let reader = open(&store, id, &key).unwrap();

        assert_eq!(reader.segment_count(), 3);
        let segments: Vec<Vec<u8>> = (0..3).map(|i| reader.read_segment(i).unwrap()).collect();
        assert_eq!(segments[2].len(), 7);
        assert_eq!(segments.concat(), data);
        assert!(matches!(
            reader.read_segment(3),
            Err(BlobError::SegmentOutOfRange {
                segment: 3,
                segment_count: 3,
                ..
            })
        ));
    }

    #[test]
    fn open_reports_length_id_and_key_version() {
        let store = MemoryBlobStore::new();
        let key = SecretKey::generate();
        let id = BlobId::generate();
        let mut writer = BlobWriter::new(&store, id, &key, 42).unwrap();
        writer.write(&pattern(1000)).unwrap();
        writer.finish().unwrap();
        let mut asked = None;

        let reader = BlobReader::open(&store, id, |version| {
            asked = Some(version);
            Some(key.clone())
        })
        .unwrap();

        assert_eq!(asked, Some(42));
        assert_eq!(
            (reader.id(), reader.len(), reader.key_version()),
            (id, 1000, 42)
        );
        assert!(!reader.is_empty());
    }

    #[test]
    fn missing_key_version_is_reported() {
        let (store, _, id, _) = fixture(10);

        let err = BlobReader::open(&store, id, |_| None).err().unwrap();

        assert!(
            matches!(err, BlobError::UnknownKeyVersion { version: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn missing_blob_is_not_found() {
        let store = MemoryBlobStore::new();

        let err = open(&store, BlobId::generate(), &SecretKey::generate())
            .err()
            .unwrap();

        assert!(matches!(err, BlobError::NotFound { .. }), "{err:?}");
    }

    #[test]
    fn reads_a_blob_sealed_by_an_independent_implementation() {
        // Built with Python's hmac and `cryptography` (AESGCMSIV) from the format description:
        // data key 0x42 * 32, blob id 00..0f, key version 3, segment nonce a0..ab.
        let bytes = hex::decode(
            "56484231010000000300000000000100000102030405060708090a0b0c0d0e0fa0a1a2a3a4a5a6a7\
             a8a9aaabfc12bd43313e2acfad7f36120defa644543ee17c8b4cc16235a9ceeee51716517206965a\
             f423fcfce1",
        )
        .unwrap();
        let store = MemoryBlobStore::new();
        let id = BlobId::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
        store.insert_raw(id, bytes);
        let key = SecretKey::from_bytes([0x42; 32]);

        let reader = BlobReader::open(&store, id, |v| (v == 3).then(|| key.clone())).unwrap();

        assert_eq!(
            reader.read_segment(0).unwrap(),
            b"Vaulthalla blob format v1"
        );
    }

    #[test]
    fn reader_is_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<BlobReader>();
    }
}
