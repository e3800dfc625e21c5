//! The filesystem core driven without a kernel: what `readdir`, `rename`, permissions and
//! descriptors answer.

use std::collections::BTreeSet;
use std::ffi::OsStr;

use vault::engine::EngineConfig;
use vault::keys::KeyProviderChoice;

use super::*;

const ME: Caller = Caller {
    uid: 1000,
    gid: 1000,
};

struct Fixture {
    _dir: tempfile::TempDir,
    core: FsCore,
}

/// A core over a fresh engine with a writable vault `www` and an API-exclusive vault `xxx`.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(&EngineConfig {
        data_dir: dir.path().to_owned(),
        key_provider: KeyProviderChoice::Software,
        tpm_tcti: None,
        part_dir: None,
    })
    .unwrap();
    engine.create_local_bucket("www", false).unwrap();
    engine.create_local_bucket("xxx", true).unwrap();
    Fixture {
        _dir: dir,
        core: FsCore::new(Arc::new(engine)),
    }
}

fn os(name: &str) -> &OsStr {
    OsStr::new(name)
}

impl Fixture {
    fn vault(&self, name: &str) -> u64 {
        self.core.lookup(ROOT_INODE, os(name)).unwrap().ino
    }

    fn names(&self, dir: u64) -> BTreeSet<String> {
        self.core
            .readdir(dir, 0)
            .unwrap()
            .into_iter()
            .map(|entry| String::from_utf8(entry.name).unwrap())
            .filter(|name| name != "." && name != "..")
            .collect()
    }

    fn write_file(&self, dir: u64, name: &str, data: &[u8]) -> u64 {
        let (attr, fh) = self
            .core
            .create(dir, os(name), 0o644, libc::O_WRONLY, ME)
            .unwrap();
        self.core.write(fh, 0, data).unwrap();
        self.core.release(fh).unwrap();
        attr.ino
    }

    fn read_file(&self, ino: u64) -> Vec<u8> {
        let fh = self.core.open(ino, libc::O_RDONLY).unwrap();
        let data = self.core.read(fh, 0, 1 << 20).unwrap();
        self.core.release(fh).unwrap();
        data
    }
}

#[test]
fn the_root_lists_vaults_and_refuses_changes() {
    let fx = fixture();
    assert_eq!(
        fx.names(ROOT_INODE),
        BTreeSet::from(["www".into(), "xxx".into()])
    );
    assert_eq!(
        fx.core.mkdir(ROOT_INODE, os("new"), 0o755, ME).unwrap_err(),
        Errno(libc::EPERM)
    );
    assert_eq!(fx.core.getattr(ROOT_INODE).unwrap().kind, Kind::Directory);
}

#[test]
fn an_api_exclusive_vault_is_read_only() {
    let fx = fixture();
    let x = fx.vault("xxx");
    let err = fx
        .core
        .create(x, os("f"), 0o644, libc::O_WRONLY, ME)
        .unwrap_err();
    assert_eq!(err, Errno(libc::EROFS));
    assert_eq!(
        fx.core.mkdir(x, os("d"), 0o755, ME).unwrap_err(),
        Errno(libc::EROFS)
    );
    assert!(fx.names(x).is_empty(), "nothing was created");
}

#[test]
fn readdir_resumed_after_changes_neither_repeats_nor_skips_entries_that_stayed() {
    let fx = fixture();
    let w = fx.vault("www");
    for i in 0..40 {
        fx.write_file(w, &format!("f{i:02}"), b"x");
    }
    let first = fx.core.readdir(w, 0).unwrap();
    let resume_at = first[21].next_offset; // ".", "..", then f00..f19
    // Between pages: remove one already listed, one not yet listed, add two.
    fx.core.unlink(w, os("f05")).unwrap();
    fx.core.unlink(w, os("f30")).unwrap();
    fx.write_file(w, "late-a", b"x");
    fx.write_file(w, "late-b", b"x");
    let rest = fx.core.readdir(w, resume_at).unwrap();
    let mut seen: Vec<String> = first[..22]
        .iter()
        .chain(&rest)
        .map(|entry| String::from_utf8(entry.name.clone()).unwrap())
        .collect();
    let total = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), total, "no entry twice");
    for i in (0..40).filter(|&i| i != 30) {
        assert!(seen.contains(&format!("f{i:02}")), "f{i:02} listed");
    }
    assert!(
        !seen.contains(&"f30".to_owned()),
        "removed before it was reached"
    );
    assert!(seen.contains(&"late-a".to_owned()) && seen.contains(&"late-b".to_owned()));
}

#[test]
fn renames_follow_rename2() {
    let fx = fixture();
    let w = fx.vault("www");
    let a = fx.write_file(w, "a", b"alpha");
    let b = fx.write_file(w, "b", b"beta");
    let d = fx.core.mkdir(w, os("d"), 0o755, ME).unwrap().ino;
    fx.write_file(d, "inner", b"in");

    let noreplace = fx
        .core
        .rename(w, os("a"), w, os("b"), libc::RENAME_NOREPLACE);
    assert_eq!(noreplace.unwrap_err(), Errno(libc::EEXIST));

    fx.core
        .rename(w, os("a"), w, os("b"), libc::RENAME_EXCHANGE)
        .unwrap();
    assert_eq!(fx.core.lookup(w, os("a")).unwrap().ino, b);
    assert_eq!(
        fx.read_file(fx.core.lookup(w, os("b")).unwrap().ino),
        b"alpha"
    );

    fx.core.rename(w, os("a"), w, os("b"), 0).unwrap();
    assert_eq!(fx.names(w), BTreeSet::from(["b".into(), "d".into()]));
    assert_eq!(
        fx.core.lookup(w, os("b")).unwrap().ino,
        b,
        "the moved inode keeps its number"
    );
    let _ = a;

    assert_eq!(
        fx.core.rename(w, os("d"), d, os("loop"), 0).unwrap_err(),
        Errno(libc::EINVAL),
        "a directory cannot move into itself"
    );
    assert_eq!(
        fx.core.rename(w, os("b"), w, os("d"), 0).unwrap_err(),
        Errno(libc::EISDIR)
    );
    let x = fx.vault("xxx");
    assert!(fx.core.rename(w, os("b"), x, os("b"), 0).is_err());

    fx.core.rename(w, os("d"), w, os("e"), 0).unwrap();
    let e = fx.core.lookup(w, os("e")).unwrap().ino;
    assert_eq!(e, d);
    let inner = fx.core.lookup(e, os("inner")).unwrap().ino;
    assert_eq!(fx.read_file(inner), b"in");
    let key = fx
        .core
        .engine()
        .entry(EntryId(i64::try_from(inner).unwrap()))
        .unwrap()
        .path;
    assert_eq!(key, "e/inner", "the subtree's keys moved with it");
}

#[test]
fn an_unlinked_open_file_stays_readable_and_writable_through_its_descriptor() {
    let fx = fixture();
    let w = fx.vault("www");
    let ino = fx.write_file(w, "f", b"kept");
    let fh = fx.core.open(ino, libc::O_RDWR).unwrap();
    fx.core.unlink(w, os("f")).unwrap();
    assert_eq!(fx.core.lookup(w, os("f")).unwrap_err(), Errno(libc::ENOENT));
    assert_eq!(fx.core.read(fh, 0, 100).unwrap(), b"kept");
    fx.core.write(fh, 4, b" more").unwrap();
    assert_eq!(fx.core.getattr(ino).unwrap().size, 9);
    fx.core.fsync(fh).unwrap();
    fx.core.release(fh).unwrap();
    let again = fx.write_file(w, "f", b"new");
    assert_ne!(again, ino, "a new file never gets the old inode");
}

#[test]
fn xattrs_round_trip_and_answer_enodata() {
    let fx = fixture();
    let w = fx.vault("www");
    let ino = fx.write_file(w, "f", b"");
    fx.core.setxattr(ino, os("user.tag"), b"blue", 0).unwrap();
    assert_eq!(fx.core.getxattr(ino, os("user.tag")).unwrap(), b"blue");
    assert_eq!(fx.core.listxattr(ino).unwrap(), b"user.tag\0");
    assert_eq!(
        fx.core
            .setxattr(ino, os("user.tag"), b"red", libc::XATTR_CREATE)
            .unwrap_err(),
        Errno(libc::EEXIST)
    );
    fx.core.removexattr(ino, os("user.tag")).unwrap();
    assert_eq!(
        fx.core.getxattr(ino, os("user.tag")).unwrap_err(),
        Errno(libc::ENODATA)
    );
}

#[test]
fn append_descriptors_write_at_the_end_and_truncate_by_path_commits() {
    let fx = fixture();
    let w = fx.vault("www");
    let ino = fx.write_file(w, "log", b"one\n");
    let fh = fx.core.open(ino, libc::O_WRONLY | libc::O_APPEND).unwrap();
    fx.core.write(fh, 0, b"two\n").unwrap();
    fx.core.release(fh).unwrap();
    assert_eq!(fx.read_file(ino), b"one\ntwo\n");
    let change = SetAttr {
        size: Some(3),
        ..SetAttr::default()
    };
    assert_eq!(fx.core.setattr(ino, &change, None).unwrap().size, 3);
    assert_eq!(fx.read_file(ino), b"one");
    assert_eq!(
        fx.core
            .mknod(w, os("fifo"), libc::S_IFIFO | 0o644, ME)
            .unwrap_err(),
        Errno(libc::EPERM)
    );
}

#[test]
fn acls_are_refused_so_tools_fall_back_to_chmod() {
    let fx = fixture();
    let w = fx.vault("www");
    let ino = fx.write_file(w, "f", b"");
    let acl = fx
        .core
        .setxattr(ino, os("system.posix_acl_access"), b"\x02\0\0\0", 0);
    assert_eq!(acl.unwrap_err(), Errno(libc::EOPNOTSUPP));
    assert_eq!(
        fx.core.getxattr(ino, os("trusted.x")).unwrap_err(),
        Errno(libc::EOPNOTSUPP)
    );
}

#[test]
fn a_directory_rename_that_would_make_a_key_too_long_is_refused() {
    let fx = fixture();
    let mut dir = fx.vault("www");
    let top = fx.core.mkdir(dir, os("d"), 0o755, ME).unwrap().ino;
    dir = top;
    // 19 levels of 50-byte names: keys of about 1000 bytes below `d/`.
    for _ in 0..19 {
        dir = fx
            .core
            .mkdir(dir, os(&"n".repeat(50)), 0o755, ME)
            .unwrap()
            .ino;
    }
    fx.write_file(dir, "f", b"deep");
    let www = fx.vault("www");
    let longer = "D".repeat(200);
    assert_eq!(
        fx.core
            .rename(www, os("d"), www, os(&longer), 0)
            .unwrap_err(),
        Errno(libc::ENAMETOOLONG)
    );
    fx.core.rename(www, os("d"), www, os("e"), 0).unwrap();
}

#[test]
fn opening_an_entry_renamed_over_asks_the_kernel_to_look_again() {
    let fx = fixture();
    let w = fx.vault("www");
    let old = fx.write_file(w, "cfg", b"old");
    fx.write_file(w, "cfg.tmp", b"new");
    fx.core.rename(w, os("cfg.tmp"), w, os("cfg"), 0).unwrap();
    assert_eq!(
        fx.core.open(old, libc::O_RDONLY).unwrap_err(),
        Errno(libc::ESTALE)
    );
    let now = fx.core.lookup(w, os("cfg")).unwrap().ino;
    assert_eq!(fx.read_file(now), b"new");
}
