//! File helpers for key material: private directories, permission checks on read, and atomic
//! writes that leave either the old file or the complete new one after a crash.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::KeyError;

/// Permission bits that must be clear on a file holding key material: any access by group or
/// others.
const GROUP_OTHER_BITS: u32 = 0o077;

/// Creates `dir` (and missing parents) with mode 0700 if it does not exist yet. An existing
/// directory is left as the administrator set it up.
pub(super) fn ensure_private_dir(dir: &Path) -> Result<(), KeyError> {
    if dir.is_dir() {
        return Ok(());
    }

    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| KeyError::io(dir, e))
}

/// Reads a file that must be private to its owner, refusing it if group or others have any
/// access. Returns `None` when the file does not exist. At most `max_len + 1` bytes are read so a
/// caller can tell an oversized file apart without reading all of it.
pub(super) fn read_private_file(
    path: &Path,
    max_len: usize,
) -> Result<Option<Zeroizing<Vec<u8>>>, KeyError> {
    let Some(file) = open_existing(path)? else {
        return Ok(None);
    };

    // Check the opened file, not the path, so a swap between check and read cannot slip past.
    let meta = file.metadata().map_err(|e| KeyError::io(path, e))?;
    if !meta.is_file() {
        return Err(malformed(path, "not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & GROUP_OTHER_BITS != 0 {
        return Err(KeyError::KeyFileInsecure {
            path: path.to_owned(),
            mode,
        });
    }

    read_limited(file, path, max_len).map(Some)
}

/// Reads a file whose content is not secret on its own (a sealed blob). Returns `None` when the
/// file does not exist.
pub(super) fn read_file(path: &Path, max_len: usize) -> Result<Option<Vec<u8>>, KeyError> {
    let Some(file) = open_existing(path)? else {
        return Ok(None);
    };

    let bytes = read_limited(file, path, max_len)?;
    Ok(Some(bytes.to_vec()))
}

/// Writes `bytes` to `path` with mode 0600 so that readers see either no file, the old file or
/// the complete new one: temp file, fsync, rename, fsync of the directory.
pub(super) fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let dir = parent_dir(path);
    let tmp = temp_path(path);

    // A temp file left by a crash may have other permissions; `mode` only applies on creation.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(KeyError::io(&tmp, e)),
    }

    let result = write_synced(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| KeyError::io(path, e)));
    if result.is_err() {
        // Best effort: the error being returned is the one that matters.
        let _ = fs::remove_file(&tmp);
    }
    result?;

    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| KeyError::io(dir, e))
}

pub(super) fn malformed(path: &Path, what: impl Into<String>) -> KeyError {
    KeyError::KeyFileMalformed {
        path: path.to_owned(),
        what: what.into(),
    }
}

fn open_existing(path: &Path) -> Result<Option<File>, KeyError> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(KeyError::io(path, e)),
    }
}

fn read_limited(file: File, path: &Path, max_len: usize) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let mut buf = Zeroizing::new(Vec::with_capacity(max_len + 1));
    let limit = u64::try_from(max_len + 1).unwrap_or(u64::MAX);
    file.take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| KeyError::io(path, e))?;
    Ok(buf)
}

fn write_synced(tmp: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| KeyError::io(tmp, e))?;
    file.write_all(bytes).map_err(|e| KeyError::io(tmp, e))?;
    file.sync_all().map_err(|e| KeyError::io(tmp, e))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}
