//! A seeded random walk of file operations, each applied to the mount and to a local directory:
//! create, write at random offsets (also far past the end, leaving holes), truncate up and down,
//! rename of files and directories (also over existing entries), unlink, mkdir, rmdir, fsync and
//! read. After every operation both results must agree (success, or the same errno); every few
//! operations, and at the end, both trees must hold the same names, kinds, sizes and bytes.
//!
//! The seed is printed; `VH_MOUNT_RANDOM_SEED` replays one, `VH_MOUNT_RANDOM_STEPS` changes the
//! length of the walk.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use rustix::io::Errno;

use crate::mount::support::{
    Tree, local_dir, mounted_node, seeded_bytes, sha256_hex, snapshot, test_seed, tree_differences,
    writable_vault,
};

/// Operations in a walk unless `VH_MOUNT_RANDOM_STEPS` says otherwise.
const DEFAULT_STEPS: usize = 400;
/// The trees are compared whole after this many operations.
const TREE_CHECK_EVERY: usize = 10;
/// How many of the last operations a failure message shows.
const HISTORY_SHOWN: usize = 20;
/// The names paths are made of: few, so operations keep meeting existing entries.
const NAMES: [&str; 6] = ["a", "b", "c", "x.bin", "y.bin", "z"];
/// The store seals 64 KiB segments; writes and truncations like to land near their edges.
const SEGMENT: u64 = 65_536;
/// Files stay below this size, so a whole-tree comparison stays quick.
const MAX_FILE_SIZE: u64 = 1_500_000;

/// One file operation on a path relative to the walk's root.
#[derive(Clone, Debug)]
enum Op {
    /// `open(O_WRONLY | O_CREAT)`, with `O_EXCL` when `exclusive`.
    Create { path: String, exclusive: bool },
    /// `open(O_WRONLY)` then `pwrite` of `len` bytes (from `seed`) at `offset`.
    Write {
        path: String,
        offset: u64,
        len: usize,
        seed: u64,
    },
    /// `open(O_WRONLY)` then `ftruncate`.
    Truncate { path: String, len: u64 },
    /// `rename`.
    Rename { from: String, to: String },
    /// `unlink`.
    Unlink { path: String },
    /// `mkdir`.
    Mkdir { path: String },
    /// `rmdir`.
    Rmdir { path: String },
    /// `open(O_RDONLY)` then `fsync` (files and directories).
    Fsync { path: String },
    /// `open(O_RDONLY)` then `pread` of up to `len` bytes at `offset`.
    Read {
        path: String,
        offset: u64,
        len: usize,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Create { path, exclusive } => {
                let flag = if *exclusive { " O_EXCL" } else { "" };
                write!(f, "create{flag} {path}")
            }
            Self::Write {
                path, offset, len, ..
            } => write!(f, "write {len} bytes at {offset} into {path}"),
            Self::Truncate { path, len } => write!(f, "truncate {path} to {len}"),
            Self::Rename { from, to } => write!(f, "rename {from} -> {to}"),
            Self::Unlink { path } => write!(f, "unlink {path}"),
            Self::Mkdir { path } => write!(f, "mkdir {path}"),
            Self::Rmdir { path } => write!(f, "rmdir {path}"),
            Self::Fsync { path } => write!(f, "fsync {path}"),
            Self::Read { path, offset, len } => write!(f, "read {len} bytes at {offset} of {path}"),
        }
    }
}

/// What an operation did, as far as its caller can tell.
#[derive(Clone, PartialEq, Eq)]
enum Outcome {
    Done,
    Read(Vec<u8>),
    Failed(Errno),
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Done => write!(f, "ok"),
            Self::Read(data) => {
                write!(f, "read {} bytes (sha256 {})", data.len(), sha256_hex(data))
            }
            Self::Failed(errno) => write!(f, "failed: {errno}"),
        }
    }
}

#[test]
fn random_operations_leave_the_mount_like_a_local_directory() {
    let Some(node) = mounted_node("random operations") else {
        return;
    };
    let seed = test_seed("VH_MOUNT_RANDOM_SEED");
    let steps = match std::env::var("VH_MOUNT_RANDOM_STEPS") {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|e| panic!("VH_MOUNT_RANDOM_STEPS={text:?}: {e}")),
        Err(_) => DEFAULT_STEPS,
    };
    let vault = writable_vault(&node, "random-walk");
    let mounted = vault.join("walk");
    let local = local_dir(&node, "walk");
    fs::create_dir(&mounted).expect("create the walk's root in the mount");

    let mut rng = StdRng::seed_from_u64(seed);
    let mut history: Vec<String> = Vec::new();
    for step in 0..steps {
        let entries = existing_entries(&local);
        let op = pick_op(&mut rng, &entries);
        history.push(format!("{step}: {op}"));
        let in_mount = normalize(&op, apply(&op, &mounted));
        let in_local = normalize(&op, apply(&op, &local));
        assert!(
            in_mount == in_local,
            "seed {seed}, step {step}: `{op}` gave {in_mount:?} in the mount but {in_local:?} \
             in a local directory\n{}",
            recent(&history)
        );
        if step % TREE_CHECK_EVERY == TREE_CHECK_EVERY - 1 || step + 1 == steps {
            compare_trees(&mounted, &local, || {
                format!("seed {seed}, after step {step}\n{}", recent(&history))
            });
        }
    }
}

/// An entry of the reference directory, which the next operation may pick.
struct Existing {
    /// Relative to the walk's root.
    path: String,
    is_dir: bool,
    /// `st_size` of a file.
    size: u64,
}

/// Every entry under `root` (the reference), found with `stat` only.
fn existing_entries(root: &Path) -> Vec<Existing> {
    let mut found = Vec::new();
    collect_entries(root, "", &mut found);
    found
}

fn collect_entries(dir: &Path, prefix: &str, found: &mut Vec<Existing>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("list {}: {e}", dir.display()));
        let path = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let meta = entry
            .metadata()
            .unwrap_or_else(|e| panic!("stat {}: {e}", entry.path().display()));
        if meta.is_dir() {
            collect_entries(&entry.path(), &format!("{path}/"), found);
        }
        found.push(Existing {
            path,
            is_dir: meta.is_dir(),
            size: meta.len(),
        });
    }
}

fn pick_op(rng: &mut StdRng, entries: &[Existing]) -> Op {
    let paths = |keep: fn(&Existing) -> bool| -> Vec<&str> {
        entries
            .iter()
            .filter(|e| keep(e))
            .map(|e| e.path.as_str())
            .collect()
    };
    let files = paths(|e| !e.is_dir);
    let dirs = paths(|e| e.is_dir);
    let any = paths(|_| true);
    let size_of = |path: &str| {
        entries
            .iter()
            .find(|e| e.path == path)
            .map_or(0, |e| e.size)
    };

    match rng.random_range(0..100) {
        0..12 => Op::Create {
            path: new_path(rng, &dirs),
            exclusive: rng.random_bool(0.3),
        },
        12..32 => {
            let path = target(rng, &files, &any);
            let offset = pick_offset(rng, size_of(&path));
            let len: usize = match rng.random_range(0..3) {
                0 => rng.random_range(1..100),
                1 => rng.random_range(100..9000),
                _ => rng.random_range(9000..140_000),
            };
            let room = usize::try_from(MAX_FILE_SIZE - offset).expect("sizes fit in usize");
            Op::Write {
                path,
                offset,
                len: len.min(room),
                seed: rng.next_u64(),
            }
        }
        32..42 => {
            let path = target(rng, &files, &any);
            let len = pick_offset(rng, size_of(&path));
            Op::Truncate { path, len }
        }
        42..56 => {
            let from = target(rng, &any, &any);
            let to = if rng.random_bool(0.4) && !any.is_empty() {
                any[rng.random_range(0..any.len())].to_owned()
            } else {
                new_path(rng, &dirs)
            };
            Op::Rename { from, to }
        }
        56..63 => Op::Unlink {
            path: target(rng, &files, &any),
        },
        63..73 => Op::Mkdir {
            path: new_path(rng, &dirs),
        },
        73..79 => Op::Rmdir {
            path: target(rng, &dirs, &any),
        },
        79..85 => Op::Fsync {
            path: target(rng, &any, &any),
        },
        _ => {
            let path = target(rng, &files, &any);
            let offset = pick_offset(rng, size_of(&path));
            Op::Read {
                path,
                offset,
                len: rng.random_range(1..200_000),
            }
        }
    }
}

/// Mostly an entry of `preferred`; sometimes any entry or a path that may not exist, so that
/// errors (ENOENT, EISDIR, ENOTDIR, ...) are compared too.
fn target(rng: &mut StdRng, preferred: &[&str], any: &[&str]) -> String {
    let roll = rng.random_range(0..10);
    if roll < 8 && !preferred.is_empty() {
        return preferred[rng.random_range(0..preferred.len())].to_owned();
    }
    if roll < 9 && !any.is_empty() {
        return any[rng.random_range(0..any.len())].to_owned();
    }
    random_path(rng)
}

/// A name in an existing directory (or the root); sometimes a random path instead.
fn new_path(rng: &mut StdRng, dirs: &[&str]) -> String {
    let name = NAMES[rng.random_range(0..NAMES.len())];
    match rng.random_range(0..10) {
        0 => random_path(rng),
        1..4 => name.to_owned(),
        _ if dirs.is_empty() => name.to_owned(),
        _ => format!("{}/{name}", dirs[rng.random_range(0..dirs.len())]),
    }
}

/// One to three names from [`NAMES`].
fn random_path(rng: &mut StdRng) -> String {
    let depth = rng.random_range(1..=3);
    (0..depth)
        .map(|_| NAMES[rng.random_range(0..NAMES.len())])
        .collect::<Vec<_>>()
        .join("/")
}

/// An offset inside a file of about `size` bytes, at a segment edge, or past the end.
fn pick_offset(rng: &mut StdRng, size: u64) -> u64 {
    let offset = match rng.random_range(0..4) {
        0 if size > 0 => rng.random_range(0..size),
        1 => (rng.random_range(0..20) * SEGMENT).saturating_add_signed(rng.random_range(-3..=3)),
        2 => size + rng.random_range(0..400_000),
        _ => rng.random_range(0..300_000),
    };
    offset.min(MAX_FILE_SIZE - 1)
}

fn apply(op: &Op, root: &Path) -> Outcome {
    let at = |path: &str| -> PathBuf { root.join(path) };
    let result: io::Result<Option<Vec<u8>>> = match op {
        Op::Create { path, exclusive } => {
            let mut options = OpenOptions::new();
            options.write(true);
            if *exclusive {
                options.create_new(true);
            } else {
                options.create(true);
            }
            options.open(at(path)).map(|_| None)
        }
        Op::Write {
            path,
            offset,
            len,
            seed,
        } => OpenOptions::new()
            .write(true)
            .open(at(path))
            .and_then(|file| {
                let data = seeded_bytes(*seed, *len);
                file.write_all_at(&data, *offset).map(|()| None)
            }),
        Op::Truncate { path, len } => OpenOptions::new()
            .write(true)
            .open(at(path))
            .and_then(|file| file.set_len(*len).map(|()| None)),
        Op::Rename { from, to } => fs::rename(at(from), at(to)).map(|()| None),
        Op::Unlink { path } => fs::remove_file(at(path)).map(|()| None),
        Op::Mkdir { path } => fs::create_dir(at(path)).map(|()| None),
        Op::Rmdir { path } => fs::remove_dir(at(path)).map(|()| None),
        Op::Fsync { path } => File::open(at(path)).and_then(|file| file.sync_all().map(|()| None)),
        Op::Read { path, offset, len } => {
            File::open(at(path)).and_then(|file| read_at_most(&file, *offset, *len).map(Some))
        }
    };
    match result {
        Ok(None) => Outcome::Done,
        Ok(Some(data)) => Outcome::Read(data),
        Err(error) => Outcome::Failed(Errno::from_io_error(&error).unwrap_or_else(|| {
            panic!(
                "`{op}` under {} failed without an errno: {error}",
                root.display()
            )
        })),
    }
}

/// `pread` until `len` bytes or the end of the file.
fn read_at_most(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut data = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut data[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    data.truncate(filled);
    Ok(data)
}

/// POSIX lets `rename` onto a non-empty directory and `rmdir` of one fail with either EEXIST
/// or ENOTEMPTY; both count as the same answer.
fn normalize(op: &Op, outcome: Outcome) -> Outcome {
    match (op, outcome) {
        (Op::Rename { .. } | Op::Rmdir { .. }, Outcome::Failed(Errno::EXIST)) => {
            Outcome::Failed(Errno::NOTEMPTY)
        }
        (_, outcome) => outcome,
    }
}

fn compare_trees(mounted: &Path, local: &Path, context: impl Fn() -> String) {
    let got: Tree = snapshot(mounted)
        .unwrap_or_else(|e| panic!("walking the mount failed: {e}\n{}", context()));
    let want: Tree = snapshot(local)
        .unwrap_or_else(|e| panic!("walking the local reference failed: {e}\n{}", context()));
    let differences = tree_differences(&got, &want);
    if differences.is_empty() {
        return;
    }
    let detail: Vec<String> = differences
        .iter()
        .map(|line| {
            let path = line.split([' ', ':']).find(|w| got.contains_key(*w));
            match path.and_then(|p| first_difference(&mounted.join(p), &local.join(p))) {
                Some(at) => format!("{line} (first differing byte at {at})"),
                None => line.clone(),
            }
        })
        .collect();
    panic!(
        "the mount and the local directory differ in {} places:\n{}\n{}",
        differences.len(),
        detail.join("\n"),
        context()
    );
}

/// The first offset where two files differ, when both can be read.
fn first_difference(a: &Path, b: &Path) -> Option<usize> {
    let (a, b) = (fs::read(a).ok()?, fs::read(b).ok()?);
    a.iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

fn recent(history: &[String]) -> String {
    let start = history.len().saturating_sub(HISTORY_SHOWN);
    format!("last operations:\n{}", history[start..].join("\n"))
}
