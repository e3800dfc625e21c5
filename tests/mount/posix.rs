//! POSIX behaviour of the mount that programs rely on: ownership, modes and times (also after a
//! restart); truncation up and down; `O_APPEND`; `renameat2` with `RENAME_NOREPLACE` and
//! `RENAME_EXCHANGE`; symlinks; `user.*` extended attributes; `statfs`; `readdir` while the
//! directory changes; and what the mount refuses: hard links and special files. Inode numbers
//! are never handed out twice.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, SystemTime};

use rustix::fs::{CWD, FileType, Mode, RenameFlags, XattrFlags};
use rustix::io::Errno;

use crate::common::assert_same_bytes;
use crate::mount::support::{
    assert_absent, assert_errno, assert_rustix_errno, ino, list, lstat, mounted_node, read, run_ok,
    seeded_bytes, writable_vault, write,
};

/// `f_type` of every FUSE filesystem (`FUSE_SUPER_MAGIC`).
const FUSE_SUPER_MAGIC: u64 = 0x6573_5546;

#[test]
fn chmod_chown_and_utimens_show_in_stat_and_survive_a_restart() {
    let Some(mut node) = mounted_node("chmod, chown, utimens") else {
        return;
    };
    let vault = writable_vault(&node, "posix-attrs");
    let file = vault.join("file.txt");
    let dir = vault.join("dir");
    write(&file, b"attributes\n");
    fs::create_dir(&dir).expect("mkdir in the mount");

    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).expect("chmod the file");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).expect("chmod the directory");
    chown(&file, Some(1234), Some(5678)).expect("chown the file");
    chown(&dir, Some(42), Some(43)).expect("chown the directory");
    // Whole milliseconds: the finest precision the mount promises to keep.
    let accessed = SystemTime::UNIX_EPOCH + Duration::new(1_600_000_000, 250_000_000);
    let modified = SystemTime::UNIX_EPOCH + Duration::new(1_500_000_000, 125_000_000);
    for path in [&file, &dir] {
        File::open(path)
            .and_then(|f| {
                f.set_times(
                    FileTimes::new()
                        .set_accessed(accessed)
                        .set_modified(modified),
                )
            })
            .unwrap_or_else(|e| panic!("utimens {}: {e}", path.display()));
    }

    let check = |when: &str| {
        for (path, mode, uid, gid) in [(&file, 0o640, 1234, 5678), (&dir, 0o750, 42, 43)] {
            let meta = lstat(path);
            let what = format!("stat of {} {when}", path.display());
            assert_eq!(meta.mode() & 0o7777, mode, "{what}: mode {:o}", meta.mode());
            assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{what}: owner");
            assert_eq!(
                (meta.atime(), meta.atime_nsec()),
                (1_600_000_000, 250_000_000),
                "{what}: atime"
            );
            assert_eq!(
                (meta.mtime(), meta.mtime_nsec()),
                (1_500_000_000, 125_000_000),
                "{what}: mtime"
            );
        }
        assert!(
            lstat(&file).is_file() && lstat(&dir).is_dir(),
            "kinds {when}"
        );
    };
    check("right after the changes");
    node.restart();
    check("after a restart");
    assert_eq!(read(&file), b"attributes\n", "content after a restart");
}

#[test]
fn truncate_grows_with_zeros_and_shrinks_without_leaving_stale_bytes() {
    let Some(node) = mounted_node("truncate") else {
        return;
    };
    let vault = writable_vault(&node, "posix-truncate");
    let path = vault.join("t.bin");
    let data = seeded_bytes(1, 200_000);
    write(&path, &data);
    let truncate = |len: u64| {
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(len))
            .unwrap_or_else(|e| panic!("truncate {} to {len}: {e}", path.display()));
    };
    let mut expected = data.clone();

    // A reader keeps its handle open throughout and must see every size change.
    let reader = File::open(&path).expect("open for reading");
    for len in [300_000u64, 70_000, 150_000, 65_536, 65_537, 0, 5] {
        truncate(len);
        expected.resize(len as usize, 0);
        assert_same_bytes(
            &read(&path),
            &expected,
            &format!("content after truncate to {len}"),
        );
        assert_eq!(
            reader.metadata().map(|m| m.len()).ok(),
            Some(len),
            "fstat of an open handle after truncate to {len}"
        );
    }

    // O_TRUNC on open empties the file.
    write(&path, &data);
    drop(
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .expect("open O_TRUNC"),
    );
    assert_eq!(
        fs::metadata(&path).map(|m| m.len()).ok(),
        Some(0),
        "size after O_TRUNC"
    );
}

#[test]
fn o_append_writes_always_land_at_the_end() {
    let Some(node) = mounted_node("O_APPEND") else {
        return;
    };
    let vault = writable_vault(&node, "posix-append");
    let path = vault.join("log.txt");
    let head = seeded_bytes(2, 100_000);
    write(&path, &head);
    let open_append = || {
        OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open O_APPEND")
    };
    let mut first = open_append();
    let mut second = open_append();
    first.write_all(b"one\n").expect("append");
    second
        .write_all(b"two\n")
        .expect("append from a second handle");
    first
        .write_all(b"three\n")
        .expect("append again from the first handle");
    // A seek does not move where O_APPEND writes go.
    first.seek(SeekFrom::Start(0)).expect("seek to the start");
    first.write_all(b"four\n").expect("append after a seek");
    drop((first, second));

    let mut expected = head;
    expected.extend_from_slice(b"one\ntwo\nthree\nfour\n");
    assert_same_bytes(
        &read(&path),
        &expected,
        "file after appends from two handles",
    );
}

#[test]
fn rename_noreplace_refuses_an_existing_target() {
    let Some(node) = mounted_node("RENAME_NOREPLACE") else {
        return;
    };
    let vault = writable_vault(&node, "posix-noreplace");
    let (a, b, c) = (vault.join("a"), vault.join("b"), vault.join("c"));
    write(&a, b"a\n");
    write(&b, b"b\n");
    let noreplace = |from: &Path, to: &Path| {
        rustix::fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE)
    };

    assert_rustix_errno(
        noreplace(&a, &b),
        Errno::EXIST,
        "RENAME_NOREPLACE a -> existing b",
    );
    assert_eq!(
        (read(&a), read(&b)),
        (b"a\n".to_vec(), b"b\n".to_vec()),
        "after the refusal"
    );

    noreplace(&a, &c).expect("RENAME_NOREPLACE a -> absent c");
    assert_absent(&a, "a after RENAME_NOREPLACE to c");
    assert_eq!(read(&c), b"a\n");

    fs::create_dir(vault.join("d1")).expect("mkdir");
    fs::create_dir(vault.join("d2")).expect("mkdir");
    assert_rustix_errno(
        noreplace(&vault.join("d1"), &vault.join("d2")),
        Errno::EXIST,
        "RENAME_NOREPLACE of a directory onto an empty directory",
    );
    assert_eq!(list(&vault), ["b", "c", "d1", "d2"]);
}

#[test]
fn rename_exchange_swaps_two_entries() {
    let Some(node) = mounted_node("RENAME_EXCHANGE") else {
        return;
    };
    let vault = writable_vault(&node, "posix-exchange");
    let (a, b) = (vault.join("a"), vault.join("b"));
    write(&a, b"content of a\n");
    write(&b, &seeded_bytes(3, 100_000));
    let (ino_a, ino_b) = (ino(&a), ino(&b));
    let exchange =
        |x: &Path, y: &Path| rustix::fs::renameat_with(CWD, x, CWD, y, RenameFlags::EXCHANGE);

    exchange(&a, &b).expect("RENAME_EXCHANGE of two files");
    assert_eq!(read(&b), b"content of a\n", "b after the exchange");
    assert_eq!(read(&a), seeded_bytes(3, 100_000), "a after the exchange");
    assert_eq!(
        (ino(&a), ino(&b)),
        (ino_b, ino_a),
        "inode numbers follow the files"
    );

    // A file and a directory with a child swap places too.
    let dir = vault.join("dir");
    fs::create_dir(&dir).expect("mkdir");
    write(&dir.join("child.txt"), b"child\n");
    exchange(&a, &dir).expect("RENAME_EXCHANGE of a file and a directory");
    assert!(lstat(&a).is_dir(), "a is the directory now");
    assert_eq!(read(&a.join("child.txt")), b"child\n");
    assert_eq!(read(&dir), seeded_bytes(3, 100_000), "dir is the file now");

    assert_rustix_errno(
        exchange(&b, &vault.join("missing")),
        Errno::NOENT,
        "RENAME_EXCHANGE with a missing entry",
    );
    assert_eq!(list(&vault), ["a", "b", "dir"]);
}

#[test]
fn symlinks_keep_their_target_and_resolve() {
    let Some(node) = mounted_node("symlinks") else {
        return;
    };
    let vault = writable_vault(&node, "posix-symlinks");
    write(&vault.join("target.txt"), b"the target\n");
    fs::create_dir(vault.join("sub")).expect("mkdir");
    write(&vault.join("sub/inner.txt"), b"inner\n");
    let long_target = format!("{}/end", "x".repeat(1000));
    let links: [(&str, &str); 5] = [
        ("to-file", "target.txt"),
        ("to-dir", "sub"),
        ("absolute", "/etc/hostname"),
        ("dangling", "nowhere/missing"),
        ("long", &long_target),
    ];
    for (name, target) in links {
        symlink(target, vault.join(name)).unwrap_or_else(|e| panic!("symlink {name}: {e}"));
    }

    for (name, target) in links {
        let path = vault.join(name);
        assert_eq!(
            fs::read_link(&path).ok(),
            Some(PathBuf::from(target)),
            "readlink {name}"
        );
        let meta = lstat(&path);
        assert!(
            meta.file_type().is_symlink(),
            "lstat of {name} is a symlink"
        );
        assert_eq!(
            meta.len(),
            target.len() as u64,
            "st_size of {name} is its target's length"
        );
    }
    assert_eq!(
        read(&vault.join("to-file")),
        b"the target\n",
        "reading through to-file"
    );
    assert_eq!(
        read(&vault.join("to-dir/inner.txt")),
        b"inner\n",
        "a path through to-dir"
    );
    assert_errno(
        fs::metadata(vault.join("dangling")),
        Errno::NOENT,
        "stat through the dangling link",
    );
    let listed: Vec<(String, bool)> = fs::read_dir(&vault)
        .expect("readdir")
        .map(|e| {
            let e = e.expect("readdir entry");
            let kind = e.file_type().expect("d_type");
            (
                e.file_name().to_string_lossy().into_owned(),
                kind.is_symlink(),
            )
        })
        .filter(|(_, is_link)| *is_link)
        .collect();
    let listed: BTreeSet<String> = listed.into_iter().map(|(n, _)| n).collect();
    let expected: BTreeSet<String> = links.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(listed, expected, "entries readdir reports as symlinks");

    fs::remove_file(vault.join("to-file")).expect("unlink a symlink");
    assert_eq!(
        read(&vault.join("target.txt")),
        b"the target\n",
        "target after unlinking"
    );
}

#[test]
fn user_xattrs_can_be_set_read_listed_and_removed() {
    let Some(mut node) = mounted_node("xattrs") else {
        return;
    };
    let vault = writable_vault(&node, "posix-xattrs");
    let file = vault.join("file.txt");
    let dir = vault.join("dir");
    write(&file, b"with attributes\n");
    fs::create_dir(&dir).expect("mkdir");
    let binary: Vec<u8> = (0..=255).collect();
    let big = seeded_bytes(9, 2000);
    let attrs: [(&str, &[u8]); 4] = [
        ("user.color", b"blue"),
        ("user.empty", b""),
        ("user.binary", &binary),
        ("user.big", &big),
    ];
    for path in [&file, &dir] {
        for (name, value) in attrs {
            rustix::fs::setxattr(path, name, value, XattrFlags::empty())
                .unwrap_or_else(|e| panic!("setxattr {name} on {}: {e}", path.display()));
        }
    }

    let check = |when: &str| {
        for path in [&file, &dir] {
            let what = format!("{} {when}", path.display());
            let expected: BTreeSet<String> = attrs.iter().map(|(n, _)| (*n).to_owned()).collect();
            assert_eq!(user_xattrs(path), expected, "listxattr of {what}");
            for (name, value) in attrs {
                assert_eq!(
                    rustix::fs::getxattr_query(path, name).ok(),
                    Some(value.len()),
                    "size query of {name} on {what}"
                );
                assert_eq!(
                    get_xattr(path, name).as_deref(),
                    Ok(value),
                    "{name} on {what}"
                );
            }
        }
    };
    check("after setxattr");

    // Flags and errors the way getfattr and setfattr meet them.
    assert_rustix_errno(
        rustix::fs::setxattr(&file, "user.color", b"red", XattrFlags::CREATE),
        Errno::EXIST,
        "XATTR_CREATE of an existing attribute",
    );
    assert_rustix_errno(
        rustix::fs::setxattr(&file, "user.absent", b"x", XattrFlags::REPLACE),
        Errno::NODATA,
        "XATTR_REPLACE of a missing attribute",
    );
    let mut small = [0u8; 2];
    assert_rustix_errno(
        rustix::fs::getxattr(&file, "user.color", &mut small[..]),
        Errno::RANGE,
        "getxattr into a buffer too small",
    );
    rustix::fs::setxattr(&file, "user.color", b"green", XattrFlags::REPLACE)
        .expect("XATTR_REPLACE of an existing attribute");
    assert_eq!(get_xattr(&file, "user.color").as_deref(), Ok(&b"green"[..]));
    rustix::fs::setxattr(&file, "user.color", b"blue", XattrFlags::empty()).expect("set back");

    node.restart();
    check("after a restart");

    rustix::fs::removexattr(&file, "user.color").expect("removexattr");
    assert_eq!(
        get_xattr(&file, "user.color"),
        Err(Errno::NODATA),
        "getxattr after removal"
    );
    assert_rustix_errno(
        rustix::fs::removexattr(&file, "user.color"),
        Errno::NODATA,
        "removexattr of a removed attribute",
    );
    assert!(
        !user_xattrs(&file).contains("user.color"),
        "listxattr still shows a removed attribute"
    );
}

#[test]
fn statfs_describes_the_mount() {
    let Some(node) = mounted_node("statfs") else {
        return;
    };
    let vault = writable_vault(&node, "posix-statfs");
    for path in [node.mount_point(), vault] {
        let stats =
            rustix::fs::statfs(&path).unwrap_or_else(|e| panic!("statfs {}: {e}", path.display()));
        let what = format!("statfs of {}: {stats:?}", path.display());
        assert_eq!(
            stats.f_type as u64, FUSE_SUPER_MAGIC,
            "{what}: not a FUSE filesystem"
        );
        assert!(stats.f_bsize > 0, "{what}: no block size");
        assert!(
            stats.f_bfree <= stats.f_blocks,
            "{what}: more free blocks than blocks"
        );
        assert!(
            stats.f_bavail <= stats.f_blocks,
            "{what}: more available blocks than blocks"
        );
        assert!(
            stats.f_namelen >= 255,
            "{what}: names shorter than 255 bytes"
        );
    }
    let df = run_ok(
        Command::new("df").arg("-P").arg(node.mount_point()),
        "df -P of the mount",
    );
    assert!(df.lines().count() == 2, "df -P printed:\n{df}");
}

#[test]
fn readdir_during_changes_has_no_duplicates_and_keeps_untouched_entries() {
    let Some(node) = mounted_node("readdir") else {
        return;
    };
    let vault = writable_vault(&node, "posix-readdir");
    let dir = vault.join("busy");
    fs::create_dir(&dir).expect("mkdir");
    // Enough entries that a listing takes several readdir calls.
    let kept: BTreeSet<String> = (0..1500).map(|i| format!("keep-{i:05}")).collect();
    for name in &kept {
        write(&dir.join(name), b"");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let churn = thread::spawn({
        let (dir, stop) = (dir.clone(), Arc::clone(&stop));
        move || {
            let mut created = 0u64;
            while !stop.load(Ordering::SeqCst) {
                write(&dir.join(format!("churn-{created}")), b"x");
                if created >= 5 {
                    fs::remove_file(dir.join(format!("churn-{}", created - 5)))
                        .expect("remove a churn file");
                }
                created += 1;
            }
            created
        }
    });

    for pass in 0..20 {
        let names: Vec<String> = fs::read_dir(&dir)
            .expect("readdir")
            .map(|e| {
                e.expect("readdir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "pass {pass}: readdir returned a name twice"
        );
        let missing: Vec<&String> = kept.iter().filter(|n| !unique.contains(n)).collect();
        assert!(
            missing.is_empty(),
            "pass {pass}: readdir missed untouched entries {missing:?}"
        );
        let strangers: Vec<&String> = names
            .iter()
            .filter(|n| !n.starts_with("keep-") && !n.starts_with("churn-"))
            .collect();
        assert!(
            strangers.is_empty(),
            "pass {pass}: readdir invented {strangers:?}"
        );
    }
    stop.store(true, Ordering::SeqCst);
    let created = churn.join().expect("the churn thread does not panic");

    let mut expected = kept;
    expected.extend((created.saturating_sub(5)..created).map(|i| format!("churn-{i}")));
    let final_names: BTreeSet<String> = list(&dir).into_iter().collect();
    assert_eq!(final_names, expected, "readdir once the directory is quiet");
}

#[test]
fn hard_links_are_refused_with_eperm() {
    let Some(node) = mounted_node("hard links") else {
        return;
    };
    let vault = writable_vault(&node, "posix-link");
    let source = vault.join("source.txt");
    write(&source, b"only one name\n");
    assert_errno(
        fs::hard_link(&source, vault.join("second-name.txt")),
        Errno::PERM,
        "link() in the mount",
    );
    assert_absent(&vault.join("second-name.txt"), "the refused hard link");
    assert_eq!(lstat(&source).nlink(), 1, "link count of the source");
    assert_eq!(read(&source), b"only one name\n");
}

#[test]
fn mknod_of_a_fifo_is_refused() {
    let Some(node) = mounted_node("mknod") else {
        return;
    };
    let vault = writable_vault(&node, "posix-mknod");
    let fifo = vault.join("pipe");
    let result = rustix::fs::mknodat(CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o644), 0);
    let Err(errno) = result else {
        panic!(
            "mknod of a FIFO in the mount succeeded; the mount keeps only files, directories and symlinks"
        );
    };
    eprintln!("mknod of a FIFO in the mount fails with {errno}");
    assert!(
        errno == Errno::PERM || errno == Errno::NOSYS,
        "mknod of a FIFO failed with {errno}, expected EPERM or ENOSYS"
    );
    assert_absent(&fifo, "the refused FIFO");
}

#[test]
fn inode_numbers_are_never_reused() {
    let Some(mut node) = mounted_node("inode reuse") else {
        return;
    };
    let vault = writable_vault(&node, "posix-inodes");
    let mut retired = BTreeSet::new();
    for i in 0..5 {
        let file = vault.join(format!("victim-{i}"));
        write(&file, b"short-lived");
        retired.insert(ino(&file));
        fs::remove_file(&file).expect("unlink");
        let dir = vault.join(format!("victim-dir-{i}"));
        fs::create_dir(&dir).expect("mkdir");
        retired.insert(ino(&dir));
        fs::remove_dir(&dir).expect("rmdir");
    }

    let mut live = BTreeSet::new();
    let create_many = |prefix: &str, live: &mut BTreeSet<u64>| {
        for i in 0..150 {
            let file = vault.join(format!("{prefix}-file-{i}"));
            write(&file, b"new");
            assert!(
                live.insert(ino(&file)),
                "{} shares an inode number",
                file.display()
            );
            if i % 10 == 0 {
                let dir = vault.join(format!("{prefix}-dir-{i}"));
                fs::create_dir(&dir).expect("mkdir");
                assert!(
                    live.insert(ino(&dir)),
                    "{} shares an inode number",
                    dir.display()
                );
            }
        }
    };
    create_many("before", &mut live);
    let reused: Vec<&u64> = live.intersection(&retired).collect();
    assert!(
        reused.is_empty(),
        "deleted inode numbers came back: {reused:?}"
    );

    node.restart();
    create_many("after", &mut live);
    let reused: Vec<&u64> = live.intersection(&retired).collect();
    assert!(
        reused.is_empty(),
        "deleted inode numbers came back after a restart: {reused:?}"
    );
}

/// The `user.*` names `listxattr` reports for `path`.
fn user_xattrs(path: &Path) -> BTreeSet<String> {
    let mut buffer = vec![0u8; 64 * 1024];
    let len = rustix::fs::listxattr(path, &mut buffer[..])
        .unwrap_or_else(|e| panic!("listxattr {}: {e}", path.display()));
    buffer[..len]
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .filter(|name| name.starts_with("user."))
        .collect()
}

/// The value of attribute `name` of `path`.
fn get_xattr(path: &Path, name: &str) -> Result<Vec<u8>, Errno> {
    let mut buffer = vec![0u8; 64 * 1024];
    let len = rustix::fs::getxattr(path, name, &mut buffer[..])?;
    buffer.truncate(len);
    Ok(buffer)
}
