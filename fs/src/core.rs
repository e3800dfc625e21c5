//! The filesystem itself, without a kernel: inode numbers, attributes, directory pages, file
//! handles and errno answers, over the vault engine.
//!
//! Inode 1 is the mount's root, listing the mounted vaults; every other inode is the stable id
//! of an entry, so inode numbers survive restarts and are never reused. A vault whose bucket is
//! API-exclusive is read-only here (`EROFS`), so file tools cannot break what S3 clients rely on.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vault::engine::MountedVault;
use vault::error::TreeError;
use vault::meta::{AttrChange, Entry, EntryKind, NewNode, RenameMode};
use vault::{Engine, EntryId, OpenFile, VaultError, VaultId};

/// The root of the mount.
pub const ROOT_INODE: u64 = 1;

/// Permission bits of the mount's root directory.
const ROOT_MODE: u32 = 0o755;

/// An errno answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

/// What every operation returns.
pub type FsResult<T> = Result<T, Errno>;

impl From<VaultError> for Errno {
    fn from(err: VaultError) -> Self {
        Self(match &err {
            VaultError::Tree { kind, .. } => match kind {
                TreeError::NotFound => libc::ENOENT,
                TreeError::Exists => libc::EEXIST,
                TreeError::NotEmpty => libc::ENOTEMPTY,
                TreeError::NotADirectory => libc::ENOTDIR,
                TreeError::IsADirectory => libc::EISDIR,
                TreeError::CrossVault => libc::EXDEV,
                TreeError::InvalidName | TreeError::InvalidArgument => libc::EINVAL,
                TreeError::NameTooLong => libc::ENAMETOOLONG,
            },
            VaultError::Blob(vault::blob::BlobError::Io { source, .. })
                if source.raw_os_error() == Some(libc::ENOSPC) =>
            {
                libc::ENOSPC
            }
            other => {
                tracing::warn!(error = %other, "mount operation failed");
                libc::EIO
            }
        })
    }
}

/// The kind of an inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
}

/// The attributes of an inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: u64,
    /// Length in bytes (a symlink: its target's length).
    pub size: u64,
    /// Kind.
    pub kind: Kind,
    /// Permission bits.
    pub perm: u16,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Last access.
    pub atime: SystemTime,
    /// Last modification.
    pub mtime: SystemTime,
    /// Last status change.
    pub ctime: SystemTime,
}

/// One directory entry of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Its inode.
    pub ino: u64,
    /// The offset that resumes the listing after it.
    pub next_offset: u64,
    /// Its kind.
    pub kind: Kind,
    /// Its name.
    pub name: Vec<u8>,
}

/// An attribute change from `setattr`.
#[derive(Clone, Debug, Default)]
pub struct SetAttr {
    /// Permission bits.
    pub mode: Option<u32>,
    /// Owner.
    pub uid: Option<u32>,
    /// Group.
    pub gid: Option<u32>,
    /// New length.
    pub size: Option<u64>,
    /// Last access.
    pub atime: Option<SystemTime>,
    /// Last modification.
    pub mtime: Option<SystemTime>,
}

/// Free space as `statfs` reports it.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsStats {
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Blocks free for unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Block size.
    pub bsize: u32,
}

/// Who is asking: new entries belong to them.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// An open file descriptor as the core tracks it.
struct FileHandle {
    file: Arc<OpenFile>,
    writable: bool,
    append: bool,
}

/// Entries returned per directory page from the engine.
const DIR_PAGE: usize = 256;

/// The directory offsets of `.` and `..`; an entry's offset is its id plus this.
const DOT_OFFSETS: u64 = 2;

/// The filesystem over one engine.
pub struct FsCore {
    engine: Arc<Engine>,
    handles: Mutex<HashMap<u64, FileHandle>>,
    next_handle: AtomicU64,
    /// When the filesystem started: the times of the mount's root.
    started: SystemTime,
}

fn to_time(ms: i64) -> SystemTime {
    match u64::try_from(ms) {
        Ok(ms) => UNIX_EPOCH + Duration::from_millis(ms),
        Err(_) => UNIX_EPOCH,
    }
}

fn to_ms(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(elapsed) => i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn kind_of(entry: &Entry) -> Kind {
    match entry.kind {
        EntryKind::File => Kind::File,
        EntryKind::Directory => Kind::Directory,
        EntryKind::Symlink => Kind::Symlink,
    }
}

/// `ESTALE` for an entry that no longer exists, so the kernel retries the path lookup.
fn stale_if_gone(err: VaultError) -> Errno {
    match err {
        VaultError::Tree {
            kind: TreeError::NotFound,
            ..
        } => Errno(libc::ESTALE),
        other => other.into(),
    }
}

fn name_str(name: &OsStr) -> FsResult<&str> {
    // Names become object keys, which are UTF-8.
    name.to_str().ok_or(Errno(libc::EINVAL))
}

fn entry_id(ino: u64) -> FsResult<EntryId> {
    i64::try_from(ino)
        .map(EntryId)
        .map_err(|_| Errno(libc::ENOENT))
}

fn permission_bits(mode: u32) -> u32 {
    mode & 0o7777
}

impl FsCore {
    /// The filesystem over `engine`.
    #[must_use]
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            handles: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            started: SystemTime::now(),
        }
    }

    /// The engine underneath.
    #[must_use]
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The vaults shown at the root.
    ///
    /// # Errors
    /// `EIO` when the metadata cannot be read.
    pub fn mounted_vaults(&self) -> FsResult<Vec<MountedVault>> {
        Ok(self.engine.mounted_vaults()?)
    }

    fn vault_of(&self, vault: VaultId) -> FsResult<MountedVault> {
        self.mounted_vaults()?
            .into_iter()
            .find(|mounted| mounted.root.vault == vault)
            .ok_or(Errno(libc::ENOENT))
    }

    fn require_writable(&self, vault: VaultId) -> FsResult<()> {
        if self.vault_of(vault)?.writable {
            Ok(())
        } else {
            Err(Errno(libc::EROFS))
        }
    }

    fn root_attr(&self) -> Attr {
        Attr {
            ino: ROOT_INODE,
            size: 0,
            kind: Kind::Directory,
            perm: ROOT_MODE as u16,
            nlink: 2,
            uid: 0,
            gid: 0,
            atime: self.started,
            mtime: self.started,
            ctime: self.started,
        }
    }

    /// The attributes of `entry`, with the size and time of changes not yet committed.
    fn attr_of(&self, entry: &Entry) -> Attr {
        let kind = kind_of(entry);
        let open = self
            .engine
            .open_file_of(entry.id)
            .filter(|file| file.is_current());
        let (size, mtime_ms) = match (kind, open) {
            (Kind::File, Some(file)) => file.size_and_mtime(),
            (Kind::Symlink, _) => (
                entry
                    .target
                    .as_ref()
                    .map_or(0, |target| target.len() as u64),
                entry.mtime_ms,
            ),
            _ => (entry.size, entry.mtime_ms),
        };
        let ino = u64::try_from(entry.id.0).unwrap_or(0);
        Attr {
            ino,
            size,
            kind,
            perm: u16::try_from(permission_bits(entry.mode)).unwrap_or(0o644),
            nlink: if kind == Kind::Directory { 2 } else { 1 },
            uid: entry.uid,
            gid: entry.gid,
            atime: to_time(entry.atime_ms),
            mtime: to_time(mtime_ms),
            ctime: to_time(entry.ctime_ms.max(mtime_ms)),
        }
    }

    /// The entry of a directory inode other than the root.
    fn directory(&self, ino: u64) -> FsResult<Entry> {
        let entry = self.engine.entry(entry_id(ino)?)?;
        if entry.kind != EntryKind::Directory {
            return Err(Errno(libc::ENOTDIR));
        }
        Ok(entry)
    }

    /// Looks `name` up in directory `parent`.
    ///
    /// # Errors
    /// `ENOENT`, `ENOTDIR`, `EIO`.
    pub fn lookup(&self, parent: u64, name: &OsStr) -> FsResult<Attr> {
        let name = name_str(name).map_err(|_| Errno(libc::ENOENT))?;
        if parent == ROOT_INODE {
            let vault = self
                .mounted_vaults()?
                .into_iter()
                .find(|mounted| mounted.name == name)
                .ok_or(Errno(libc::ENOENT))?;
            return Ok(self.attr_of(&vault.root));
        }
        let dir = self.directory(parent)?;
        Ok(self.attr_of(&self.engine.lookup(dir.id, name)?))
    }

    /// The attributes of `ino`.
    ///
    /// # Errors
    /// `ENOENT`, `EIO`.
    pub fn getattr(&self, ino: u64) -> FsResult<Attr> {
        if ino == ROOT_INODE {
            return Ok(self.root_attr());
        }
        let id = entry_id(ino)?;
        match self.engine.entry(id) {
            Ok(entry) => Ok(self.attr_of(&entry)),
            Err(err) => {
                // An unlinked file still open keeps its attributes for its descriptors.
                if let Some(file) = self.engine.open_file_of(id) {
                    let (size, mtime_ms) = file.size_and_mtime();
                    let mut attr = self.root_attr();
                    attr.ino = ino;
                    attr.kind = Kind::File;
                    attr.size = size;
                    attr.nlink = 0;
                    attr.perm = 0o644;
                    attr.mtime = to_time(mtime_ms);
                    return Ok(attr);
                }
                Err(err.into())
            }
        }
    }

    /// Changes attributes of `ino`; `fh` is the descriptor of an `ftruncate`.
    ///
    /// # Errors
    /// `EROFS` in an API-exclusive vault, `EPERM` on the root, `EISDIR` when truncating a
    /// directory, `ENOENT`, `EIO`.
    pub fn setattr(&self, ino: u64, change: &SetAttr, fh: Option<u64>) -> FsResult<Attr> {
        if ino == ROOT_INODE {
            return Err(Errno(libc::EPERM));
        }
        let id = entry_id(ino)?;
        let entry = self.engine.entry(id)?;
        self.require_writable(entry.vault)?;
        if let Some(size) = change.size {
            if entry.kind == EntryKind::Directory {
                return Err(Errno(libc::EISDIR));
            }
            self.truncate(id, size, fh)?;
        }
        let attrs = AttrChange {
            mode: change.mode.map(permission_bits),
            uid: change.uid,
            gid: change.gid,
            atime_ms: change.atime.map(to_ms),
            mtime_ms: change.mtime.map(to_ms),
        };
        let has_attrs = attrs.mode.is_some()
            || attrs.uid.is_some()
            || attrs.gid.is_some()
            || attrs.atime_ms.is_some()
            || attrs.mtime_ms.is_some();
        let entry = if has_attrs {
            self.engine.set_node_attrs(id, &attrs)?
        } else {
            self.engine.entry(id)?
        };
        Ok(self.attr_of(&entry))
    }

    fn truncate(&self, id: EntryId, size: u64, fh: Option<u64>) -> FsResult<()> {
        let from_handle = fh.and_then(|fh| {
            self.lock_handles()
                .get(&fh)
                .map(|handle| Arc::clone(&handle.file))
        });
        if let Some(file) = from_handle {
            self.engine.set_file_len(&file, size)?;
            return Ok(());
        }
        // A truncate by path: open, cut, commit, close.
        let file = self.engine.open_file(id, false)?;
        let result = self
            .engine
            .set_file_len(&file, size)
            .and_then(|()| self.engine.sync_file(&file));
        let released = self.engine.release_file(&file);
        result?;
        released?;
        Ok(())
    }

    /// The target of symlink `ino`.
    ///
    /// # Errors
    /// `EINVAL` when `ino` is not a symlink, `ENOENT`, `EIO`.
    pub fn readlink(&self, ino: u64) -> FsResult<Vec<u8>> {
        let entry = self.engine.entry(entry_id(ino)?)?;
        match entry.target {
            Some(target) if entry.kind == EntryKind::Symlink => Ok(target.into_bytes()),
            _ => Err(Errno(libc::EINVAL)),
        }
    }

    fn create_node(&self, parent: u64, name: &OsStr, node: &NewNode) -> FsResult<Entry> {
        if parent == ROOT_INODE {
            // Vaults are made with `vh vault create`, not mkdir.
            return Err(Errno(libc::EPERM));
        }
        let dir = self.directory(parent)?;
        self.require_writable(dir.vault)?;
        let name = name_str(name)?;
        Ok(self.engine.create_node(dir.id, name, node)?)
    }

    /// Creates a regular file (`mknod` of `S_IFREG`); other node types are refused.
    ///
    /// # Errors
    /// `EPERM` for devices, FIFOs and sockets, which a vault cannot hold; as [`FsCore::create`].
    pub fn mknod(&self, parent: u64, name: &OsStr, mode: u32, caller: Caller) -> FsResult<Attr> {
        if mode & libc::S_IFMT != libc::S_IFREG && mode & libc::S_IFMT != 0 {
            return Err(Errno(libc::EPERM));
        }
        let entry =
            self.create_node(parent, name, &Self::new_node(EntryKind::File, mode, caller))?;
        Ok(self.attr_of(&entry))
    }

    fn new_node(kind: EntryKind, mode: u32, caller: Caller) -> NewNode {
        NewNode {
            kind,
            mode: permission_bits(mode),
            uid: caller.uid,
            gid: caller.gid,
            target: None,
        }
    }

    /// Creates a directory.
    ///
    /// # Errors
    /// `EEXIST`, `EROFS`, `EPERM` at the root, `EINVAL` for a name that cannot be a key.
    pub fn mkdir(&self, parent: u64, name: &OsStr, mode: u32, caller: Caller) -> FsResult<Attr> {
        let node = Self::new_node(EntryKind::Directory, mode, caller);
        Ok(self.attr_of(&self.create_node(parent, name, &node)?))
    }

    /// Creates a symlink to `target`.
    ///
    /// # Errors
    /// As [`FsCore::mkdir`]; `EINVAL` for a target that is not UTF-8.
    pub fn symlink(
        &self,
        parent: u64,
        name: &OsStr,
        target: &OsStr,
        caller: Caller,
    ) -> FsResult<Attr> {
        let target = target.to_str().ok_or(Errno(libc::EINVAL))?;
        let mut node = Self::new_node(EntryKind::Symlink, 0o777, caller);
        node.target = Some(target.to_owned());
        Ok(self.attr_of(&self.create_node(parent, name, &node)?))
    }

    fn remove(&self, parent: u64, name: &OsStr, directory: bool) -> FsResult<()> {
        if parent == ROOT_INODE {
            return Err(Errno(libc::EPERM));
        }
        let dir = self.directory(parent)?;
        self.require_writable(dir.vault)?;
        self.engine
            .remove_node(dir.id, name_str(name)?, directory)?;
        Ok(())
    }

    /// Removes a file or symlink. An open file stays readable through its descriptors.
    ///
    /// # Errors
    /// `ENOENT`, `EISDIR`, `EROFS`.
    pub fn unlink(&self, parent: u64, name: &OsStr) -> FsResult<()> {
        self.remove(parent, name, false)
    }

    /// Removes an empty directory.
    ///
    /// # Errors
    /// `ENOENT`, `ENOTDIR`, `ENOTEMPTY`, `EROFS`.
    pub fn rmdir(&self, parent: u64, name: &OsStr) -> FsResult<()> {
        self.remove(parent, name, true)
    }

    /// Renames; `flags` are `renameat2`'s.
    ///
    /// # Errors
    /// What `rename(2)` answers: `EEXIST` for `RENAME_NOREPLACE`, `ENOTEMPTY`, `EISDIR`,
    /// `ENOTDIR`, `EXDEV` between vaults, `EINVAL` for unknown flags or moving a directory
    /// into itself, `EROFS`.
    pub fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: u32,
    ) -> FsResult<()> {
        if parent == ROOT_INODE || new_parent == ROOT_INODE {
            return Err(Errno(libc::EPERM));
        }
        let mode = match flags {
            0 => RenameMode::Replace,
            libc::RENAME_NOREPLACE => RenameMode::NoReplace,
            libc::RENAME_EXCHANGE => RenameMode::Exchange,
            _ => return Err(Errno(libc::EINVAL)),
        };
        let from = self.directory(parent)?;
        let to = self.directory(new_parent)?;
        self.require_writable(from.vault)?;
        self.require_writable(to.vault)?;
        self.engine
            .rename_node(from.id, name_str(name)?, to.id, name_str(new_name)?, mode)?;
        Ok(())
    }

    fn lock_handles(&self) -> std::sync::MutexGuard<'_, HashMap<u64, FileHandle>> {
        self.handles.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn handle_file(&self, fh: u64) -> FsResult<(Arc<OpenFile>, bool, bool)> {
        self.lock_handles()
            .get(&fh)
            .map(|handle| (Arc::clone(&handle.file), handle.writable, handle.append))
            .ok_or(Errno(libc::EBADF))
    }

    fn register(&self, file: Arc<OpenFile>, flags: i32) -> u64 {
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        let access = flags & libc::O_ACCMODE;
        let handle = FileHandle {
            file,
            writable: access == libc::O_WRONLY || access == libc::O_RDWR,
            append: flags & libc::O_APPEND != 0,
        };
        self.lock_handles().insert(fh, handle);
        fh
    }

    /// Opens file `ino` with `open(2)` `flags`; returns the descriptor.
    ///
    /// # Errors
    /// `EROFS` for writing in an API-exclusive vault, `EISDIR`, `ENOENT`, `EIO`.
    pub fn open(&self, ino: u64, flags: i32) -> FsResult<u64> {
        if ino == ROOT_INODE {
            return Err(Errno(libc::EISDIR));
        }
        let id = entry_id(ino)?;
        // A name the kernel resolved a moment ago may have been renamed over since: ESTALE
        // makes the kernel look the path up again instead of failing the open.
        let entry = self.engine.entry(id).map_err(stale_if_gone)?;
        let access = flags & libc::O_ACCMODE;
        let truncate = flags & libc::O_TRUNC != 0;
        if access != libc::O_RDONLY || truncate {
            self.require_writable(entry.vault)?;
        }
        let file = self
            .engine
            .open_file(id, truncate && access != libc::O_RDONLY)
            .map_err(stale_if_gone)?;
        Ok(self.register(file, flags))
    }

    /// Creates and opens file `name` in `parent`.
    ///
    /// # Errors
    /// `EEXIST` (with `O_EXCL`, as the kernel asks only for new names), `EROFS`, `EINVAL`.
    pub fn create(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> FsResult<(Attr, u64)> {
        let entry =
            self.create_node(parent, name, &Self::new_node(EntryKind::File, mode, caller))?;
        let file = self.engine.open_file(entry.id, false)?;
        let fh = self.register(file, flags);
        Ok((self.attr_of(&entry), fh))
    }

    /// Reads up to `size` bytes at `offset`.
    ///
    /// # Errors
    /// `EBADF`, `EIO` (a segment that fails authentication among others).
    pub fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let (file, _, _) = self.handle_file(fh)?;
        Ok(self.engine.read_file(&file, offset, size as usize)?)
    }

    /// Writes `data` at `offset` (at the end for an `O_APPEND` descriptor); returns the count.
    ///
    /// # Errors
    /// `EBADF` for a read-only descriptor, `ENOSPC`, `EIO`.
    pub fn write(&self, fh: u64, offset: u64, data: &[u8]) -> FsResult<usize> {
        let (file, writable, append) = self.handle_file(fh)?;
        if !writable {
            return Err(Errno(libc::EBADF));
        }
        let offset = if append {
            file.size_and_mtime().0
        } else {
            offset
        };
        offset
            .checked_add(data.len() as u64)
            .filter(|end| i64::try_from(*end).is_ok())
            .ok_or(Errno(libc::EFBIG))?;
        self.engine.write_file(&file, offset, data)?;
        Ok(data.len())
    }

    /// Commits the descriptor's file: on return its content is durable (`fsync`, and `close`
    /// through `flush`).
    ///
    /// # Errors
    /// `EBADF`, `ENOSPC`, `EIO`.
    pub fn fsync(&self, fh: u64) -> FsResult<()> {
        let (file, _, _) = self.handle_file(fh)?;
        Ok(self.engine.sync_file(&file)?)
    }

    /// Closes a descriptor.
    ///
    /// # Errors
    /// `EIO` when the final commit fails.
    pub fn release(&self, fh: u64) -> FsResult<()> {
        let handle = self.lock_handles().remove(&fh).ok_or(Errno(libc::EBADF))?;
        Ok(self.engine.release_file(&handle.file)?)
    }

    /// Makes every namespace change so far durable (`fsync` of a directory).
    ///
    /// # Errors
    /// `EIO` when the metadata cannot be synced.
    pub fn sync_namespace(&self) -> FsResult<()> {
        Ok(self.engine.sync_namespace()?)
    }

    /// Checks that `ino` is a directory that can be listed.
    ///
    /// # Errors
    /// `ENOTDIR`, `ENOENT`.
    pub fn opendir(&self, ino: u64) -> FsResult<()> {
        if ino != ROOT_INODE {
            self.directory(ino)?;
        }
        Ok(())
    }

    /// The entries of directory `ino` after `offset` (0 starts), with `.` and `..`. Offsets
    /// are entry ids, which only grow, so a listing resumed after entries were added or
    /// removed neither repeats nor skips one that stayed.
    ///
    /// # Errors
    /// `ENOTDIR`, `ENOENT`, `EIO`.
    pub fn readdir(&self, ino: u64, offset: u64) -> FsResult<Vec<DirEntry>> {
        let mut page = Vec::new();
        let parent_ino = if ino == ROOT_INODE {
            ROOT_INODE
        } else {
            let dir = self.directory(ino)?;
            dir.parent.map_or(ROOT_INODE, |parent| {
                u64::try_from(parent.0).unwrap_or(ROOT_INODE)
            })
        };
        if offset < 1 {
            page.push(DirEntry {
                ino,
                next_offset: 1,
                kind: Kind::Directory,
                name: b".".to_vec(),
            });
        }
        if offset < DOT_OFFSETS {
            page.push(DirEntry {
                ino: parent_ino,
                next_offset: DOT_OFFSETS,
                kind: Kind::Directory,
                name: b"..".to_vec(),
            });
        }
        let after = i64::try_from(offset.saturating_sub(DOT_OFFSETS)).unwrap_or(i64::MAX);
        let entries: Vec<(Vec<u8>, Entry)> = if ino == ROOT_INODE {
            self.mounted_vaults()?
                .into_iter()
                .filter(|mounted| mounted.root.id.0 > after)
                .map(|mounted| (mounted.name.into_bytes(), mounted.root))
                .collect::<Vec<_>>()
        } else {
            self.engine
                .read_dir(entry_id(ino)?, after, DIR_PAGE)?
                .into_iter()
                .map(|entry| (entry.name.clone().into_bytes(), entry))
                .collect()
        };
        let mut entries = entries;
        entries.sort_by_key(|(_, entry)| entry.id);
        for (name, entry) in entries {
            let id = u64::try_from(entry.id.0).unwrap_or(0);
            page.push(DirEntry {
                ino: id,
                next_offset: id + DOT_OFFSETS,
                kind: kind_of(&entry),
                name,
            });
        }
        Ok(page)
    }

    /// Free space of the disk holding the data directory.
    #[must_use]
    pub fn statfs(&self) -> FsStats {
        let Some(dir) = self.engine.data_dir() else {
            return FsStats::default();
        };
        statvfs(dir).unwrap_or_default()
    }

    fn entry_for_xattr(&self, ino: u64, name: Option<&OsStr>) -> FsResult<Entry> {
        if ino == ROOT_INODE {
            return Err(Errno(libc::ENOTSUP));
        }
        // POSIX ACLs and other system attributes would have to change what the kernel checks;
        // refusing them makes `cp -p` and friends fall back to chmod, which the mode keeps.
        if name.is_some_and(|name| !name.as_encoded_bytes().starts_with(b"user.")) {
            return Err(Errno(libc::EOPNOTSUPP));
        }
        Ok(self.engine.entry(entry_id(ino)?)?)
    }

    /// The value of extended attribute `name`.
    ///
    /// # Errors
    /// `ENODATA` when it is not set.
    pub fn getxattr(&self, ino: u64, name: &OsStr) -> FsResult<Vec<u8>> {
        let entry = self.entry_for_xattr(ino, Some(name))?;
        let name = name_str(name).map_err(|_| Errno(libc::ENODATA))?;
        match self.engine.xattr(entry.vault, entry.id, name) {
            Err(VaultError::Tree {
                kind: TreeError::NotFound,
                ..
            }) => Err(Errno(libc::ENODATA)),
            other => Ok(other?),
        }
    }

    /// Sets extended attribute `name` (`XATTR_CREATE` / `XATTR_REPLACE` in `flags`).
    ///
    /// # Errors
    /// `EEXIST`, `ENODATA`, `E2BIG` for a value over 64 KiB, `EROFS`.
    pub fn setxattr(&self, ino: u64, name: &OsStr, value: &[u8], flags: i32) -> FsResult<()> {
        let entry = self.entry_for_xattr(ino, Some(name))?;
        self.require_writable(entry.vault)?;
        if value.len() > vault::engine::MAX_XATTR_VALUE {
            return Err(Errno(libc::E2BIG));
        }
        let name = name_str(name)?;
        let create_only = flags & libc::XATTR_CREATE != 0;
        let replace_only = flags & libc::XATTR_REPLACE != 0;
        match self.engine.set_xattr(
            entry.vault,
            entry.id,
            name,
            value,
            create_only,
            replace_only,
        ) {
            Err(VaultError::Tree {
                kind: TreeError::NotFound,
                ..
            }) => Err(Errno(libc::ENODATA)),
            other => Ok(other?),
        }
    }

    /// The extended attribute names of `ino`, each NUL-terminated, as `listxattr` returns them.
    ///
    /// # Errors
    /// `ENOENT`, `EIO`.
    pub fn listxattr(&self, ino: u64) -> FsResult<Vec<u8>> {
        if ino == ROOT_INODE {
            return Ok(Vec::new());
        }
        let mut list = Vec::new();
        for name in self.engine.xattr_names(entry_id(ino)?)? {
            list.extend_from_slice(name.as_bytes());
            list.push(0);
        }
        Ok(list)
    }

    /// Removes extended attribute `name`.
    ///
    /// # Errors
    /// `ENODATA` when it is not set, `EROFS`.
    pub fn removexattr(&self, ino: u64, name: &OsStr) -> FsResult<()> {
        let entry = self.entry_for_xattr(ino, Some(name))?;
        self.require_writable(entry.vault)?;
        let name = name_str(name).map_err(|_| Errno(libc::ENODATA))?;
        match self.engine.remove_xattr(entry.id, name) {
            Err(VaultError::Tree {
                kind: TreeError::NotFound,
                ..
            }) => Err(Errno(libc::ENODATA)),
            other => Ok(other?),
        }
    }

    /// Closes every descriptor still open (the mount is going away), committing their files.
    pub fn release_all(&self) {
        let handles: Vec<FileHandle> = self
            .lock_handles()
            .drain()
            .map(|(_, handle)| handle)
            .collect();
        for handle in handles {
            if let Err(err) = self.engine.release_file(&handle.file) {
                tracing::warn!(error = %err, "could not commit a file open at unmount");
            }
        }
    }
}

fn statvfs(dir: &std::path::Path) -> Option<FsStats> {
    let stats = rustix::fs::statvfs(dir).ok()?;
    Some(FsStats {
        blocks: stats.f_blocks,
        bfree: stats.f_bfree,
        bavail: stats.f_bavail,
        files: stats.f_files,
        ffree: stats.f_ffree,
        bsize: u32::try_from(stats.f_frsize).unwrap_or(4096),
    })
}

#[cfg(test)]
mod tests;
