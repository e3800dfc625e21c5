//! Files open through the mount: random reads and writes, truncation and durable commits.
//!
//! Every open of an entry shares one [`OpenFile`], so a write through one descriptor is seen by
//! a read through another at once. Its content changes in memory, a bounded number of 64 KiB
//! segments at a time; segments that must leave memory are sealed first (see [`state`]), so no
//! plaintext ever reaches the disk. [`Engine::sync_file`] (on `fsync` and on every `close`)
//! commits: it returns once content and metadata are durable, and the gateway sees the new
//! content from then on.

mod hashing;
mod recovery;
mod state;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use md5::{Digest, Md5};
use rusqlite::params;

use self::state::{
    Backing, Committed, FileState, MAX_RESIDENT_SEGMENTS, SealedBlob, Segment, segment_offset,
    tail_index,
};
use super::Engine;
use super::objects::INLINE_MAX;
use crate::blob::format::{Layout, SEGMENT_LEN, SEGMENT_SIZE};
use crate::blob::{BlobError, BlobId};
use crate::error::{TreeError, VaultError};
use crate::ids::{EntryId, VaultId};
use crate::meta::blobs::queue_blob_collection;
use crate::meta::tree::EMPTY_MD5;
use crate::meta::{Entry, EntryKind, MetaError, journal, now_ms, parts};

const SEG: u64 = SEGMENT_SIZE as u64;

/// What a commit points an entry at.
#[derive(Clone, Copy)]
struct Content<'a> {
    /// The blob and its key version; `None` for an empty file.
    blob: Option<(BlobId, u32)>,
    /// Plaintext size.
    size: u64,
    /// For a small file: the sealed blob itself, kept in the row.
    inline: Option<&'a [u8]>,
}

/// A file open through the mount, shared by all of its descriptors.
pub struct OpenFile {
    id: EntryId,
    vault: VaultId,
    /// Descriptors open on it.
    handles: AtomicUsize,
    state: Mutex<FileState>,
}

impl OpenFile {
    /// The entry (inode) this file is.
    #[must_use]
    pub fn id(&self) -> EntryId {
        self.id
    }

    fn lock(&self) -> MutexGuard<'_, FileState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the modification time shown until the next commit records it.
    pub(crate) fn set_mtime(&self, mtime_ms: i64) {
        self.lock().mtime_ms = mtime_ms;
    }

    /// Whether this state still speaks for its entry: not cut off by a removal, and not
    /// waiting to reload content the gateway replaced.
    #[must_use]
    pub fn is_current(&self) -> bool {
        let state = self.lock();
        !state.detached && !state.replaced
    }

    /// The length and modification time as the mount shows them, with changes not yet
    /// committed.
    #[must_use]
    pub fn size_and_mtime(&self) -> (u64, i64) {
        let state = self.lock();
        (state.size, state.mtime_ms)
    }
}

/// The open files, by entry. A file whose entry was replaced under it drops out of the map but
/// lives on for the descriptors that have it.
#[derive(Default)]
pub(crate) struct OpenFiles {
    files: Mutex<HashMap<EntryId, Arc<OpenFile>>>,
}

impl OpenFiles {
    fn lock(&self) -> MutexGuard<'_, HashMap<EntryId, Arc<OpenFile>>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Cuts the open file of `id`, if any, off its entry (removed or replaced): its
    /// descriptors keep reading and writing, but nothing they do is committed.
    pub(crate) fn detach(&self, id: EntryId) {
        // It stays in the map, so `fstat` on its descriptors still finds it; the next open of
        // the entry (if it still exists) replaces it.
        let file = self.lock().get(&id).map(Arc::clone);
        if let Some(file) = file {
            file.lock().detached = true;
        }
    }

    /// Tells the open file of `id`, if any, that the gateway replaced its content: it reloads
    /// before its next operation.
    pub(crate) fn mark_replaced(&self, id: EntryId) {
        let file = self.lock().get(&id).map(Arc::clone);
        if let Some(file) = file {
            file.lock().replaced = true;
        }
    }

    /// The open file of `id`, if it is open.
    pub(crate) fn get(&self, id: EntryId) -> Option<Arc<OpenFile>> {
        self.lock().get(&id).map(Arc::clone)
    }
}

fn is_file(entry: &Entry) -> Result<(), VaultError> {
    match entry.kind {
        EntryKind::File => Ok(()),
        EntryKind::Directory => Err(VaultError::Tree {
            kind: TreeError::IsADirectory,
            path: entry.path.clone(),
        }),
        EntryKind::Symlink => Err(VaultError::Tree {
            kind: TreeError::InvalidArgument,
            path: entry.path.clone(),
        }),
    }
}

impl Engine {
    /// Opens entry `id` for reading and writing; with `truncate`, its content is cut to nothing
    /// (committed at the next [`Engine::sync_file`]). Pair every call with
    /// [`Engine::release_file`].
    ///
    /// # Errors
    /// `Tree(NotFound)`, `Tree(IsADirectory)`, or a storage failure.
    pub fn open_file(&self, id: EntryId, truncate: bool) -> Result<Arc<OpenFile>, VaultError> {
        let file = {
            // The map stays locked from the lookup to counting the descriptor, so a close
            // that sees the last descriptor go cannot race this open (see `release_file`).
            let mut files = self.open_files.lock();
            let live = files
                .get(&id)
                .filter(|file| !file.lock().detached)
                .map(Arc::clone);
            let file = match live {
                // The open state is the truth for its entry: everything that changes the
                // entry elsewhere (a gateway write or delete, a rename over it, an unlink)
                // detaches it first.
                Some(file) => file,
                None => {
                    let (entry, state) = self.load_entry_state(id)?;
                    let file = Arc::new(OpenFile {
                        id,
                        vault: entry.vault,
                        handles: AtomicUsize::new(0),
                        state: Mutex::new(state),
                    });
                    files.insert(id, Arc::clone(&file));
                    file
                }
            };
            file.handles.fetch_add(1, Ordering::AcqRel);
            file
        };
        if truncate && let Err(err) = self.set_file_len(&file, 0) {
            let _ = self.release_file(&file);
            return Err(err);
        }
        Ok(file)
    }

    /// Reads entry `id` and opens its content. A rename or write that replaces the content
    /// between the two steps deletes the blob just read about; reading the entry again finds
    /// what replaced it (or that it is gone).
    fn load_entry_state(&self, id: EntryId) -> Result<(Entry, FileState), VaultError> {
        let mut attempts = 0;
        loop {
            let entry = self
                .meta
                .read(|conn| crate::meta::tree::require(conn, id))?;
            is_file(&entry)?;
            let committed = Committed {
                blob: entry.blob,
                parts: entry.parts,
                size: entry.size,
            };
            match self.load_state(&entry, committed) {
                Err(VaultError::Blob(BlobError::NotFound { .. })) if attempts < 3 => attempts += 1,
                Err(VaultError::Blob(BlobError::NotFound { .. })) => {
                    return Err(VaultError::Tree {
                        kind: TreeError::NotFound,
                        path: entry.path,
                    });
                }
                other => return Ok((entry, other?)),
            }
        }
    }

    fn load_state(&self, entry: &Entry, committed: Committed) -> Result<FileState, VaultError> {
        let backing = if entry.parts > 0 || entry.inline {
            let reader = self.open_object_by_entry(entry.clone())?;
            Backing::Parts(Box::new(reader))
        } else if let (Some(blob), Some(version)) = (entry.blob, entry.key_version) {
            let key = self
                .keyring
                .vault_key(&self.meta, entry.vault, version)?
                .ok_or_else(|| {
                    VaultError::Blob(BlobError::UnknownKeyVersion { id: blob, version })
                })?;
            let file = self.blobs.open_mutable(blob, false)?;
            Backing::InPlace {
                blob: SealedBlob::new(blob, version, &key, file),
                layout: Layout::for_plaintext_len(entry.size),
                spilled: BTreeSet::new(),
            }
        } else {
            Backing::Fresh {
                blob: None,
                written: BTreeSet::new(),
            }
        };
        let md5 = (entry.size == 0).then(hashing::RunningMd5::new);
        Ok(FileState {
            backing,
            committed,
            size: entry.size,
            resident: std::collections::BTreeMap::new(),
            zero_from: u64::MAX,
            md5,
            changed: false,
            etag_stale: entry.etag.is_none(),
            mtime_ms: entry.mtime_ms,
            detached: false,
            replaced: false,
            replay_pending: false,
        })
    }

    /// The state of `file`, first reloaded from its entry if the gateway replaced the content
    /// since: every descriptor then reads the new content (the inode is the same, as when
    /// another program rewrites a file), and changes not yet committed are dropped, the
    /// gateway's write being the later one.
    fn current_state<'f>(
        &self,
        file: &'f OpenFile,
    ) -> Result<MutexGuard<'f, FileState>, VaultError> {
        let mut state = file.lock();
        if state.replaced && !state.detached {
            match self.load_entry_state(file.id) {
                Ok((_, fresh)) => *state = fresh,
                Err(VaultError::Tree {
                    kind: TreeError::NotFound,
                    ..
                }) => state.detached = true,
                Err(err) => return Err(err),
            }
        }
        Ok(state)
    }

    /// The open file of entry `id`, if a descriptor has it open.
    #[must_use]
    pub fn open_file_of(&self, id: EntryId) -> Option<Arc<OpenFile>> {
        self.open_files.get(id)
    }

    /// Up to `len` bytes of `file` from `offset` (fewer at the end of the file).
    ///
    /// # Errors
    /// `Integrity` when stored content fails authentication; a storage failure.
    pub fn read_file(
        &self,
        file: &OpenFile,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, VaultError> {
        let state = self.current_state(file)?;
        let end = state.size.min(offset.saturating_add(len as u64));
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(usize::try_from(end - offset).unwrap_or(0));
        let journal = |blob, index| self.journal_row(blob, index);
        let mut at = offset;
        while at < end {
            let index = at / SEG;
            let segment = state.load(index, &journal)?;
            let from = usize::try_from(at - index * SEG).expect("within a segment");
            let to = usize::try_from(end.min((index + 1) * SEG) - index * SEG)
                .expect("within a segment");
            out.extend_from_slice(&segment.bytes()[from..to]);
            at = index * SEG + to as u64;
        }
        Ok(out)
    }

    fn journal_row(&self, blob: BlobId, index: u64) -> Result<Option<Vec<u8>>, VaultError> {
        self.meta
            .read(|conn| Ok::<_, VaultError>(journal::get(conn, blob, index)?))
    }

    /// Writes `data` at `offset` of `file`, growing it as needed (a gap reads as zeros).
    ///
    /// # Errors
    /// A storage failure while making room in memory; the write then did not happen.
    pub fn write_file(&self, file: &OpenFile, offset: u64, data: &[u8]) -> Result<(), VaultError> {
        if data.is_empty() {
            return Ok(());
        }
        let mut state = self.current_state(file)?;
        self.leave_parts(file.vault, &mut state)?;
        let end = offset + data.len() as u64;
        state.hash_write(offset, data);
        if end > state.size {
            let first_written = offset / SEG;
            self.grow(file.vault, &mut state, end, Some(first_written))?;
        }
        let mut at = offset;
        while at < end {
            let index = at / SEG;
            let start = index * SEG;
            let from = usize::try_from(at - start).expect("within a segment");
            let to = usize::try_from(end.min(start + SEG) - start).expect("within a segment");
            let source = &data[usize::try_from(at - offset).expect("within data")..][..to - from];
            if from == 0 && to == SEGMENT_LEN {
                let mut segment = Segment::zeroed();
                segment.bytes_mut().copy_from_slice(source);
                state.resident.insert(index, segment);
            } else {
                self.make_resident(&mut state, index)?;
                let segment = state.resident.get_mut(&index).expect("made resident");
                segment.bytes_mut()[from..to].copy_from_slice(source);
            }
            at = start + to as u64;
        }
        state.changed = true;
        state.mtime_ms = now_ms();
        self.relieve_memory(file.vault, &mut state)
    }

    /// Cuts or extends `file` to `len` bytes.
    ///
    /// # Errors
    /// A storage failure.
    pub fn set_file_len(&self, file: &OpenFile, len: u64) -> Result<(), VaultError> {
        let mut state = self.current_state(file)?;
        state.changed = true;
        state.mtime_ms = now_ms();
        if len == state.size {
            return Ok(());
        }
        if len == 0 {
            // Nothing of the old content is needed: start a fresh blob.
            self.start_empty(&mut state);
            return Ok(());
        }
        self.leave_parts(file.vault, &mut state)?;
        state.md5 = None;
        if len > state.size {
            self.grow(file.vault, &mut state, len, None)?;
            return self.relieve_memory(file.vault, &mut state);
        }
        let tail = tail_index(len);
        self.make_resident(&mut state, tail)?;
        state.resident.retain(|&index, _| index <= tail);
        let keep = usize::try_from(len - tail * SEG).expect("within a segment");
        state
            .resident
            .get_mut(&tail)
            .expect("made resident")
            .bytes_mut()[keep..]
            .fill(0);
        state.zero_from = state.zero_from.min(tail + 1);
        match &mut state.backing {
            Backing::Fresh { written, .. } => written.retain(|&index| index <= tail),
            Backing::InPlace { spilled, .. } => spilled.retain(|&index| index <= tail),
            Backing::Parts(_) => {}
        }
        state.size = len;
        Ok(())
    }

    /// Grows the file to `new_size`: the old final segment becomes resident (it will be sealed
    /// again, as a full non-final segment), and segments a write does not cover become zeros.
    fn grow(
        &self,
        vault: VaultId,
        state: &mut FileState,
        new_size: u64,
        first_written: Option<u64>,
    ) -> Result<(), VaultError> {
        let old_size = state.size;
        let first_new = if old_size == 0 {
            0
        } else {
            self.make_resident(state, tail_index(old_size))?;
            tail_index(old_size) + 1
        };
        state.size = new_size;
        let last_gap = first_written.unwrap_or(tail_index(new_size) + 1);
        for index in first_new..last_gap.min(tail_index(new_size) + 1) {
            state.resident.insert(index, Segment::zeroed());
            self.relieve_memory(vault, state)?;
        }
        if first_written.is_none() {
            state
                .resident
                .entry(tail_index(new_size))
                .or_insert_with(Segment::zeroed);
        }
        Ok(())
    }

    /// Brings segment `index` into memory.
    fn make_resident(&self, state: &mut FileState, index: u64) -> Result<(), VaultError> {
        if state.resident.contains_key(&index) {
            return Ok(());
        }
        let segment = state.load(index, &|blob, index| self.journal_row(blob, index))?;
        state.resident.insert(index, segment);
        Ok(())
    }

    /// Turns a multipart object into a fresh blob holding the same bytes, before a change:
    /// segment by segment, sealing as memory fills.
    fn leave_parts(&self, vault: VaultId, state: &mut FileState) -> Result<(), VaultError> {
        if !matches!(state.backing, Backing::Parts(_)) {
            return Ok(());
        }
        let parts = std::mem::replace(
            &mut state.backing,
            Backing::Fresh {
                blob: None,
                written: BTreeSet::new(),
            },
        );
        let source = FileState {
            backing: parts,
            committed: state.committed.clone(),
            size: state.size,
            resident: std::collections::BTreeMap::new(),
            zero_from: u64::MAX,
            md5: None,
            changed: false,
            etag_stale: false,
            mtime_ms: state.mtime_ms,
            detached: false,
            replaced: false,
            replay_pending: false,
        };
        state.resident.clear();
        state.changed = true;
        for index in 0..state.size.div_ceil(SEG) {
            let segment = source.load(index, &|_, _| Ok(None))?;
            state.resident.insert(index, segment);
            self.relieve_memory(vault, state)?;
        }
        Ok(())
    }

    /// Seals segments out of memory when the file holds too many: every resident segment but
    /// the final one.
    fn relieve_memory(&self, vault: VaultId, state: &mut FileState) -> Result<(), VaultError> {
        if state.resident.len() <= MAX_RESIDENT_SEGMENTS {
            return Ok(());
        }
        let tail = state.tail();
        let victims: Vec<u64> = state
            .resident
            .keys()
            .copied()
            .filter(|&index| index != tail)
            .collect();
        match &mut state.backing {
            Backing::Fresh { blob, written } => {
                let blob = match blob {
                    Some(blob) => blob,
                    None => blob.insert(self.create_fresh_blob(vault)?),
                };
                for &index in &victims {
                    let segment = &state.resident[&index];
                    let sealed = blob.seal(index, false, segment.bytes());
                    blob.file.write_all_at(&sealed, segment_offset(index))?;
                    written.insert(index);
                }
            }
            Backing::InPlace { blob, spilled, .. } => {
                let sealed: Vec<(u64, Vec<u8>)> = victims
                    .iter()
                    .map(|&index| {
                        (
                            index,
                            blob.seal(index, false, state.resident[&index].bytes()),
                        )
                    })
                    .collect();
                let id = blob.id;
                self.meta.write(|tx| {
                    for (index, sealed) in &sealed {
                        journal::put(tx, id, *index, sealed, false)?;
                    }
                    Ok::<_, VaultError>(())
                })?;
                spilled.extend(victims.iter().copied());
            }
            Backing::Parts(_) => unreachable!("a change leaves the parts first"),
        }
        for index in victims {
            state.resident.remove(&index);
        }
        Ok(())
    }

    fn create_fresh_blob(&self, vault: VaultId) -> Result<SealedBlob, VaultError> {
        let (version, key) = self.keyring.current_vault_key(&self.meta, vault)?;
        let id = BlobId::generate();
        let file = self.blobs.open_mutable(id, true)?;
        let blob = SealedBlob::new(id, version, &key, file);
        blob.file.write_all_at(blob.cipher.header(), 0)?;
        Ok(blob)
    }

    /// Commits `file`: once this returns, its content and size are durable and the gateway
    /// serves them. A file removed or replaced by someone else since it was opened commits
    /// nothing, as writes to an unlinked file go nowhere.
    ///
    /// # Errors
    /// A storage failure (a full disk among others); the changes then stay pending in memory
    /// and the next commit tries again.
    pub fn sync_file(&self, file: &OpenFile) -> Result<(), VaultError> {
        let mut state = self.current_state(file)?;
        if state.replay_pending {
            self.replay_journal(&mut state)?;
        }
        if state.detached || !state.changed {
            return Ok(());
        }
        let result = if state.size == 0 {
            self.commit_empty(file.id, &mut state)
        } else if matches!(state.backing, Backing::InPlace { .. }) {
            self.commit_in_place(file.id, &mut state)
        } else {
            self.commit_fresh(file.id, file.vault, &mut state)
        };
        match result {
            Err(VaultError::Tree {
                kind: TreeError::NotFound,
                ..
            }) => {
                state.detached = true;
                Ok(())
            }
            other => other,
        }
    }

    /// Checks in the commit's transaction that the entry still holds what this state last saw.
    fn check_unchanged(
        tx: &rusqlite::Connection,
        id: EntryId,
        committed: &Committed,
    ) -> Result<Entry, VaultError> {
        let entry = crate::meta::tree::require(tx, id)?;
        if entry.blob != committed.blob || entry.parts != committed.parts {
            return Err(VaultError::Tree {
                kind: TreeError::NotFound,
                path: entry.path,
            });
        }
        Ok(entry)
    }

    /// Points the entry at `blob` (or at nothing), retiring the content it had.
    fn point_entry(
        tx: &rusqlite::Connection,
        entry: &Entry,
        content: Content<'_>,
        etag: Option<&str>,
        mtime_ms: i64,
    ) -> Result<(), VaultError> {
        let Content { blob, size, inline } = content;
        if entry.parts > 0 {
            parts::release(tx, entry.id)?;
        }
        if let Some(old) = entry.blob
            && Some(old) != blob.map(|(id, _)| id)
        {
            queue_blob_collection(tx, old)?;
            journal::clear(tx, old)?;
        }
        let mut attrs = entry.attrs.clone();
        // Checksums the gateway verified describe the old content.
        attrs.checksums.clear();
        let attrs = serde_json::to_string(&attrs).expect("attributes serialize");
        tx.prepare_cached(
            "UPDATE entries SET blob_id = ?2, key_version = ?3, size = ?4, etag = ?5,
             mtime_ms = ?6, ctime_ms = ?6, parts = 0, attrs = ?7, inline = ?8 WHERE id = ?1",
        )?
        .execute(params![
            entry.id.0,
            blob.map(|(id, _)| id.as_bytes().to_vec()),
            blob.map(|(_, version)| version),
            i64::try_from(size).map_err(|_| MetaError::Corrupt {
                what: "size".into()
            })?,
            etag,
            mtime_ms,
            attrs,
            inline
        ])?;
        Ok(())
    }

    fn commit_empty(&self, id: EntryId, state: &mut FileState) -> Result<(), VaultError> {
        let committed = state.committed.clone();
        let mtime = state.mtime_ms;
        self.meta.write(|tx| {
            let entry = Self::check_unchanged(tx, id, &committed)?;
            let empty = Content {
                blob: None,
                size: 0,
                inline: None,
            };
            Self::point_entry(tx, &entry, empty, Some(EMPTY_MD5), mtime)
        })?;
        self.start_empty(state);
        state.committed = Committed {
            blob: None,
            parts: 0,
            size: 0,
        };
        state.changed = false;
        state.etag_stale = false;
        self.collect_garbage_quietly();
        Ok(())
    }

    /// Empties the content in memory: no segments, and a fresh blob (made when needed) for
    /// what is written next; a fresh blob already started is discarded.
    fn start_empty(&self, state: &mut FileState) {
        if let Backing::Fresh {
            blob: Some(blob), ..
        } = &state.backing
        {
            self.discard_blob(blob.id);
        }
        state.backing = Backing::Fresh {
            blob: None,
            written: BTreeSet::new(),
        };
        state.resident.clear();
        state.size = 0;
        state.zero_from = u64::MAX;
        state.md5 = Some(hashing::RunningMd5::new());
    }

    fn commit_fresh(
        &self,
        id: EntryId,
        vault: VaultId,
        state: &mut FileState,
    ) -> Result<(), VaultError> {
        let layout = Layout::for_plaintext_len(state.size);
        let tail = state.tail();
        self.make_resident(state, tail)?;
        let small = usize::try_from(state.size).is_ok_and(|size| size <= INLINE_MAX);
        if small && matches!(state.backing, Backing::Fresh { blob: None, .. }) {
            return self.commit_inline(id, vault, state);
        }
        if let Backing::Fresh { blob: None, .. } = state.backing {
            let blob = self.create_fresh_blob(vault)?;
            state.backing = Backing::Fresh {
                blob: Some(blob),
                written: BTreeSet::new(),
            };
        }
        let Backing::Fresh {
            blob: Some(blob), ..
        } = &state.backing
        else {
            unreachable!("a fresh blob was just made");
        };
        for (&index, segment) in state.resident.range(..=tail) {
            let plaintext = &segment.bytes()[..layout.segment_plaintext_len(index)];
            let sealed = blob.seal(index, index == tail, plaintext);
            blob.file
                .write_all_at(&sealed, layout.segment_offset(index))?;
        }
        blob.file.set_len(layout.file_len())?;
        blob.file.sync()?;

        let etag = state.whole_md5();
        let committed = state.committed.clone();
        let (blob_id, version, mtime, size) =
            (blob.id, blob.key_version, state.mtime_ms, state.size);
        self.meta.write(|tx| {
            let entry = Self::check_unchanged(tx, id, &committed)?;
            let content = Content {
                blob: Some((blob_id, version)),
                size,
                inline: None,
            };
            Self::point_entry(tx, &entry, content, etag.as_deref(), mtime)
        })?;
        let Backing::Fresh {
            blob: Some(blob), ..
        } = std::mem::replace(
            &mut state.backing,
            Backing::Fresh {
                blob: None,
                written: BTreeSet::new(),
            },
        )
        else {
            unreachable!("the fresh blob is still there");
        };
        state.backing = Backing::InPlace {
            blob,
            layout,
            spilled: BTreeSet::new(),
        };
        self.finish_commit(state, Some(blob_id), etag.is_none());
        self.collect_garbage_quietly();
        Ok(())
    }

    /// Commits a small file by sealing it into its metadata row: one transaction, no file.
    fn commit_inline(
        &self,
        id: EntryId,
        vault: VaultId,
        state: &mut FileState,
    ) -> Result<(), VaultError> {
        let (version, key) = self.keyring.current_vault_key(&self.meta, vault)?;
        let blob_id = BlobId::generate();
        let memory = crate::blob::MemoryBlobStore::new();
        let mut writer = crate::blob::BlobWriter::new(&memory, blob_id, &key, version)?;
        for (&index, segment) in &state.resident {
            let start = index * SEG;
            let len = usize::try_from((state.size - start).min(SEG)).expect("within a segment");
            writer.write(&segment.bytes()[..len])?;
        }
        let size = writer.finish()?;
        debug_assert_eq!(
            size, state.size,
            "every segment of a small file is resident"
        );
        let sealed = memory
            .raw_bytes(blob_id)
            .ok_or_else(|| VaultError::Internal("a sealed small file vanished".to_owned()))?;
        let etag = state.whole_md5();
        let committed = state.committed.clone();
        let mtime = state.mtime_ms;
        let entry = self.meta.write(|tx| {
            let entry = Self::check_unchanged(tx, id, &committed)?;
            let content = Content {
                blob: Some((blob_id, version)),
                size,
                inline: Some(&sealed),
            };
            Self::point_entry(tx, &entry, content, etag.as_deref(), mtime)?;
            crate::meta::tree::require(tx, id)
        })?;
        // Further reads come from the row; a further change copies it out again.
        state.backing = Backing::Parts(Box::new(self.open_object_by_entry(entry)?));
        self.finish_commit(state, Some(blob_id), etag.is_none());
        self.collect_garbage_quietly();
        Ok(())
    }

    fn commit_in_place(&self, id: EntryId, state: &mut FileState) -> Result<(), VaultError> {
        let layout = Layout::for_plaintext_len(state.size);
        let tail = state.tail();
        let Backing::InPlace {
            layout: committed_layout,
            ..
        } = &state.backing
        else {
            unreachable!("called for in-place files only");
        };
        if committed_layout.plaintext_len() != state.size {
            self.make_resident(state, tail)?;
        }
        let Backing::InPlace { blob, .. } = &state.backing else {
            unreachable!("still in place");
        };
        let sealed: Vec<(u64, Vec<u8>)> = state
            .resident
            .range(..=tail)
            .map(|(&index, segment)| {
                let plaintext = &segment.bytes()[..layout.segment_plaintext_len(index)];
                (index, blob.seal(index, index == tail, plaintext))
            })
            .collect();
        let etag = state.whole_md5();
        let committed = state.committed.clone();
        let (blob_id, version, mtime, size) =
            (blob.id, blob.key_version, state.mtime_ms, state.size);

        let _exclusive = self.blob_locks.write(blob_id);
        self.meta.write(|tx| {
            let entry = Self::check_unchanged(tx, id, &committed)?;
            journal::begin_checkpoint(tx, blob_id, layout.segment_count())?;
            for (index, sealed) in &sealed {
                journal::put(tx, blob_id, *index, sealed, true)?;
            }
            let content = Content {
                blob: Some((blob_id, version)),
                size,
                inline: None,
            };
            Self::point_entry(tx, &entry, content, etag.as_deref(), mtime)
        })?;
        drop(sealed);
        if let Backing::InPlace {
            layout: committed_layout,
            spilled,
            ..
        } = &mut state.backing
        {
            *committed_layout = layout;
            spilled.clear();
        }
        self.finish_commit(state, Some(blob_id), etag.is_none());
        state.replay_pending = true;
        self.copy_journal_into_blob(state)
    }

    /// Copies the committed journal rows of an in-place file into its blob and syncs it.
    fn replay_journal(&self, state: &mut FileState) -> Result<(), VaultError> {
        let Backing::InPlace { blob, .. } = &state.backing else {
            state.replay_pending = false;
            return Ok(());
        };
        let _exclusive = self.blob_locks.write(blob.id);
        self.copy_journal_into_blob(state)
    }

    /// The copy of [`Engine::replay_journal`]; the caller holds the blob's write lock.
    fn copy_journal_into_blob(&self, state: &mut FileState) -> Result<(), VaultError> {
        let Backing::InPlace { blob, layout, .. } = &state.backing else {
            state.replay_pending = false;
            return Ok(());
        };
        self.meta.read(|conn| {
            journal::for_each_committed(
                conn,
                blob.id,
                layout.segment_count(),
                &mut |index, sealed| {
                    Ok(blob
                        .file
                        .write_all_at(sealed, layout.segment_offset(index))?)
                },
            )
        })?;
        blob.file.set_len(layout.file_len())?;
        blob.file.sync()?;
        state.replay_pending = false;
        Ok(())
    }

    fn finish_commit(&self, state: &mut FileState, blob: Option<BlobId>, etag_stale: bool) {
        state.resident.clear();
        state.committed = Committed {
            blob,
            parts: 0,
            size: state.size,
        };
        state.zero_from = u64::MAX;
        state.changed = false;
        state.etag_stale = etag_stale;
    }

    /// Closes one descriptor of `file`. The last one commits what is pending, records the
    /// ETag if it could not be kept while writing, and frees the file's memory.
    ///
    /// # Errors
    /// A storage failure of the final commit.
    pub fn release_file(&self, file: &Arc<OpenFile>) -> Result<(), VaultError> {
        let remaining = {
            let _files = self.open_files.lock();
            file.handles.fetch_sub(1, Ordering::AcqRel) - 1
        };
        if remaining > 0 {
            return Ok(());
        }
        // The file stays registered while it is wrapped up, so an open in the meantime
        // shares this state instead of reading the entry before the final commit lands.
        let result = self.sync_file(file).and_then(|()| self.wrap_up(file));
        let mut files = self.open_files.lock();
        if file.handles.load(Ordering::Acquire) == 0
            && files
                .get(&file.id)
                .is_some_and(|open| Arc::ptr_eq(open, file))
        {
            files.remove(&file.id);
        }
        result
    }

    /// What the last close does after the final commit: record the ETag if it could not be
    /// kept while writing, drop the journal rows already copied into the blob, or discard the
    /// content of a file detached from its entry.
    fn wrap_up(&self, file: &OpenFile) -> Result<(), VaultError> {
        let mut state = file.lock();
        if file.handles.load(Ordering::Acquire) > 0 {
            // Reopened meanwhile: the next close wraps up.
            return Ok(());
        }
        if state.detached {
            if let Backing::Fresh {
                blob: Some(blob), ..
            } = &state.backing
            {
                self.discard_blob(blob.id);
            }
            return Ok(());
        }
        if state.etag_stale {
            self.record_etag(file.id, &mut state)?;
        }
        if let Backing::InPlace { blob, spilled, .. } = &state.backing
            && !state.changed
            && spilled.is_empty()
        {
            let id = blob.id;
            self.meta
                .write(|tx| Ok::<_, VaultError>(journal::clear(tx, id)?))?;
        }
        Ok(())
    }

    /// Computes the MD5 of the whole committed content and stores it as the ETag.
    fn record_etag(&self, id: EntryId, state: &mut FileState) -> Result<(), VaultError> {
        let mut md5 = Md5::new();
        let journal = |blob, index| self.journal_row(blob, index);
        for index in 0..state.size.div_ceil(SEG) {
            let segment = state.load(index, &journal)?;
            let len = usize::try_from((state.size - index * SEG).min(SEG)).expect("segment");
            md5.update(&segment.bytes()[..len]);
        }
        let etag = hex::encode(md5.finalize());
        let committed = state.committed.clone();
        self.meta.write(|tx| {
            Self::check_unchanged(tx, id, &committed)?;
            tx.prepare_cached("UPDATE entries SET etag = ?2 WHERE id = ?1")?
                .execute(params![id.0, etag])?;
            Ok::<_, VaultError>(())
        })?;
        state.etag_stale = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
