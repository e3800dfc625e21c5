//! Streaming plaintext into a new blob.
//!
//! [`BlobWriter`] buffers at most one segment of plaintext and seals a full segment only once
//! another byte has arrived: until then it cannot know whether that segment is the last one,
//! whose last flag must be set. Memory stays at about two segments whatever the blob's size.

use std::io;

use zeroize::Zeroizing;

use crate::crypto::SecretKey;

use super::format::{HEADER_LEN, Header, SEGMENT_LEN, SEGMENT_STRIDE};
use super::segment::SegmentCipher;
use super::{BlobError, BlobId, BlobSink, BlobStore};

/// Writes one new blob, sealing its segments as plaintext streams in.
///
/// Nothing is visible in the store until [`BlobWriter::finish`] returns; dropping the writer
/// before that discards the blob. After any error the writer refuses further use and should be
/// dropped.
pub struct BlobWriter {
    output: SealedOutput,
    /// Plaintext not yet sealed: at most one segment, wiped when dropped.
    pending: Zeroizing<Vec<u8>>,
    plaintext_len: u64,
    failed: bool,
}

/// The sealing and storing half of a writer, apart from the plaintext buffer so that the buffer
/// can be sealed without copying it.
struct SealedOutput {
    id: BlobId,
    sink: Box<dyn BlobSink>,
    cipher: SegmentCipher,
    /// Sealed bytes on their way to the sink; the header goes out with the first segment so a
    /// small blob takes one write.
    buf: Vec<u8>,
    next_segment: u64,
}

impl BlobWriter {
    /// Starts the blob `id` in `store`, sealed under the vault data key `data_key` whose
    /// version is `key_version` (recorded in the header so readers can find the key).
    ///
    /// # Errors
    ///
    /// Whatever [`BlobStore::create`] reports.
    pub fn new(
        store: &dyn BlobStore,
        id: BlobId,
        data_key: &SecretKey,
        key_version: u32,
    ) -> Result<Self, BlobError> {
        let sink = store.create(id)?;
        let cipher = SegmentCipher::new(data_key, &Header::new(id, key_version));
        let mut buf = Vec::with_capacity(HEADER_LEN + SEGMENT_STRIDE);
        buf.extend_from_slice(cipher.header());

        let output = SealedOutput {
            id,
            sink,
            cipher,
            buf,
            next_segment: 0,
        };
        Ok(Self {
            output,
            pending: Zeroizing::new(Vec::with_capacity(SEGMENT_LEN)),
            plaintext_len: 0,
            failed: false,
        })
    }

    /// The blob being written.
    #[must_use]
    pub fn id(&self) -> BlobId {
        self.output.id
    }

    /// Bytes of plaintext accepted so far.
    #[must_use]
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Appends `data` to the blob.
    ///
    /// # Errors
    ///
    /// [`BlobError::Io`] if the store fails, or if an earlier call failed.
    pub fn write(&mut self, data: &[u8]) -> Result<(), BlobError> {
        self.check_usable()?;

        let result = self.write_segments(data);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// Seals the final segment, commits the blob and returns its plaintext length. The blob is
    /// durable once this returns `Ok`.
    ///
    /// # Errors
    ///
    /// [`BlobError::Io`] if the store fails, or if an earlier call failed; the blob is then
    /// not committed.
    pub fn finish(self) -> Result<u64, BlobError> {
        self.check_usable()?;

        let Self {
            mut output,
            pending,
            plaintext_len,
            ..
        } = self;
        output.push(&pending, true)?;
        drop(pending);

        let SealedOutput {
            id,
            sink,
            next_segment,
            ..
        } = output;
        sink.commit()?;
        tracing::debug!(blob = %id, plaintext_len, segments = next_segment, "blob written");
        Ok(plaintext_len)
    }

    fn check_usable(&self) -> Result<(), BlobError> {
        if !self.failed {
            return Ok(());
        }

        let source = io::Error::other("an earlier write to this blob failed");
        Err(BlobError::io(self.output.id, source))
    }

    fn write_segments(&mut self, mut data: &[u8]) -> Result<(), BlobError> {
        while !data.is_empty() {
            // More data is coming, so a full buffered segment is not the last one.
            if self.pending.len() == SEGMENT_LEN {
                self.output.push(&self.pending, false)?;
                self.pending.clear();
            }

            // A whole segment with more behind it can be sealed straight from the caller's
            // buffer, sparing the copy into `pending`.
            if self.pending.is_empty() && data.len() > SEGMENT_LEN {
                let (segment, rest) = data.split_at(SEGMENT_LEN);
                self.output.push(segment, false)?;
                self.plaintext_len += SEGMENT_LEN as u64;
                data = rest;
                continue;
            }

            let take = (SEGMENT_LEN - self.pending.len()).min(data.len());
            let (head, rest) = data.split_at(take);
            self.pending.extend_from_slice(head);
            self.plaintext_len += take as u64;
            data = rest;
        }
        Ok(())
    }
}

impl SealedOutput {
    /// Seals `plaintext` as the next segment and hands it to the sink.
    fn push(&mut self, plaintext: &[u8], last: bool) -> Result<(), BlobError> {
        self.cipher
            .seal(self.next_segment, last, plaintext, &mut self.buf);
        self.next_segment += 1;

        let result = self.sink.write_all(&self.buf);
        self.buf.clear();
        result
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::format::{Layout, SEGMENT_SIZE};
    use super::super::testing::{open, pattern, read_all, write_blob};
    use super::super::{BlobSource, MemoryBlobStore};
    use super::*;

    const SEG: usize = SEGMENT_SIZE as usize;

    #[test]
    fn round_trips_at_segment_edges() {
        let store = MemoryBlobStore::new();
        let key = SecretKey::generate();

        for len in [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG - 1, 3 * SEG] {
            let data = pattern(len);
            let id = write_blob(&store, &key, &[&data]);

            let stored = store.raw_bytes(id).unwrap();
            let layout = Layout::for_plaintext_len(len as u64);
            assert_eq!(stored.len() as u64, layout.file_len(), "len {len}");
            assert_eq!(read_all(&store, id, &key).unwrap(), data, "len {len}");
        }
    }

    #[test]
    fn empty_blob_is_one_empty_segment() {
        let store = MemoryBlobStore::new();
        let key = SecretKey::generate();

        let id = write_blob(&store, &key, &[]);

        assert_eq!(store.raw_bytes(id).unwrap().len(), 32 + 12 + 16);
        let reader = open(&store, id, &key).unwrap();
        assert_eq!(reader.len(), 0);
        assert_eq!(reader.segment_count(), 1);
        assert!(reader.read_segment(0).unwrap().is_empty());
    }

    #[test]
    fn header_is_written_first() {
        let store = MemoryBlobStore::new();
        let id = write_blob(&store, &SecretKey::generate(), &[b"hello"]);

        let stored = store.raw_bytes(id).unwrap();

        assert_eq!(&stored[..HEADER_LEN], &Header::new(id, 1).encode());
    }

    #[test]
    fn same_plaintext_seals_differently_each_time() {
        let store = MemoryBlobStore::new();
        let key = SecretKey::generate();
        let data = pattern(100);

        let a = store.raw_bytes(write_blob(&store, &key, &[&data])).unwrap();
        let b = store.raw_bytes(write_blob(&store, &key, &[&data])).unwrap();

        assert_ne!(a[HEADER_LEN..], b[HEADER_LEN..]);
    }

    #[test]
    fn dropping_an_unfinished_writer_discards_the_blob() {
        let store = MemoryBlobStore::new();
        let id = BlobId::generate();
        let mut writer = BlobWriter::new(&store, id, &SecretKey::generate(), 1).unwrap();
        writer.write(&pattern(3 * SEG)).unwrap();

        drop(writer);

        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn writer_tracks_its_length_and_id() {
        let store = MemoryBlobStore::new();
        let id = BlobId::generate();
        let mut writer = BlobWriter::new(&store, id, &SecretKey::generate(), 1).unwrap();

        writer.write(&pattern(SEG + 5)).unwrap();
        writer.write(&[]).unwrap();
        writer.write(b"abc").unwrap();

        assert_eq!(writer.id(), id);
        assert_eq!(writer.plaintext_len(), SEG as u64 + 8);
    }

    /// A store whose sinks fail after a number of bytes, for checking the writer's failure path.
    struct FailingStore {
        fail_after: usize,
    }

    struct FailingSink {
        remaining: usize,
    }

    impl BlobStore for FailingStore {
        fn create(&self, _id: BlobId) -> Result<Box<dyn BlobSink>, BlobError> {
            Ok(Box::new(FailingSink {
                remaining: self.fail_after,
            }))
        }

        fn open(&self, id: BlobId) -> Result<Box<dyn BlobSource>, BlobError> {
            Err(BlobError::NotFound { id })
        }

        fn remove(&self, _id: BlobId) -> Result<(), BlobError> {
            Ok(())
        }

        fn list(&self) -> Result<Vec<BlobId>, BlobError> {
            Ok(Vec::new())
        }

        fn open_mutable(
            &self,
            id: BlobId,
            _create: bool,
        ) -> Result<Box<dyn crate::blob::MutableBlob>, BlobError> {
            Err(BlobError::NotFound { id })
        }
    }

    impl BlobSink for FailingSink {
        fn write_all(&mut self, buf: &[u8]) -> Result<(), BlobError> {
            let Some(remaining) = self.remaining.checked_sub(buf.len()) else {
                let id = BlobId::from_bytes([0; 16]);
                return Err(BlobError::io(id, io::Error::other("disk full")));
            };
            self.remaining = remaining;
            Ok(())
        }

        fn commit(self: Box<Self>) -> Result<(), BlobError> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_poisons_the_writer() {
        let store = FailingStore {
            fail_after: HEADER_LEN + SEGMENT_STRIDE,
        };
        let key = SecretKey::generate();
        let mut writer = BlobWriter::new(&store, BlobId::generate(), &key, 1).unwrap();

        writer.write(&pattern(2 * SEG + 1)).unwrap_err();

        assert!(matches!(writer.write(b"x"), Err(BlobError::Io { .. })));
        assert!(matches!(writer.finish(), Err(BlobError::Io { .. })));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn random_sizes_round_trip(len in 0usize..300 * 1024) {
            let store = MemoryBlobStore::new();
            let key = SecretKey::generate();
            let data = pattern(len);

            let id = write_blob(&store, &key, &[&data]);

            prop_assert_eq!(read_all(&store, id, &key).unwrap(), data);
        }

        #[test]
        fn chunked_writes_agree_with_one_shot(
            len in 0usize..300 * 1024,
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let store = MemoryBlobStore::new();
            let key = SecretKey::generate();
            let data = pattern(len);
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
            cuts.push(0);
            cuts.push(len);
            cuts.sort_unstable();
            let chunks: Vec<&[u8]> = cuts.windows(2).map(|w| &data[w[0]..w[1]]).collect();

            let chunked = write_blob(&store, &key, &chunks);
            let one_shot = write_blob(&store, &key, &[&data]);

            let chunked_len = store.raw_bytes(chunked).unwrap().len();
            prop_assert_eq!(chunked_len, store.raw_bytes(one_shot).unwrap().len());
            prop_assert_eq!(read_all(&store, chunked, &key).unwrap(), data);
        }
    }
}
