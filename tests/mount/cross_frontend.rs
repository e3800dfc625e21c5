//! The mount and the S3 gateway are two views of the same vaults. What the mount writes is an
//! object at once (ETag = MD5 of the bytes), for the AWS CLI and boto3 alike; what S3 puts,
//! overwrites or deletes, the mount shows at once, with no remount and no waiting. Renames and
//! mkdir show in listings; a file held open survives its deletion over S3; inode numbers
//! survive restarts; and an API-exclusive vault is read-only in the mount.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::time::SystemTime;

use rustix::fs::XattrFlags;
use rustix::io::Errno;

use crate::common::{TestNode, assert_same_bytes};
use crate::mount::support::{
    S3, assert_absent, assert_errno, assert_rustix_errno, list, local_dir, md5_hex, mounted_node,
    names_in, read, seeded_bytes, vault_dir, writable_vault, write,
};

/// The ETag of an empty object.
const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

#[test]
fn files_written_in_the_mount_are_objects_for_the_aws_cli_and_boto3() {
    let Some(node) = mounted_node("mount to S3") else {
        return;
    };
    let bucket = "from-mount";
    let vault = writable_vault(&node, bucket);
    let s3 = S3::new(&node);
    let files: [(&str, Vec<u8>); 5] = [
        ("hello.txt", b"hello from the mount\n".to_vec()),
        ("empty.bin", Vec::new()),
        ("a/b/c.txt", b"nested three deep\n".to_vec()),
        ("big/five-mib.bin", seeded_bytes(5, 5 << 20)),
        ("big/odd.bin", seeded_bytes(6, 65_537)),
    ];
    for (key, data) in &files {
        let path = vault.join(key);
        fs::create_dir_all(path.parent().expect("keys have a parent")).expect("mkdir -p");
        write(&path, data);
    }
    let mut expected_keys: Vec<String> = files.iter().map(|(k, _)| (*k).to_owned()).collect();
    expected_keys.sort();

    assert_eq!(
        s3.file_keys(bucket),
        expected_keys,
        "aws s3api list-objects-v2 right after the files were closed in the mount"
    );
    let work = local_dir(&node, "downloads");
    for (key, data) in &files {
        assert_eq!(
            s3.etag(bucket, key),
            md5_hex(data),
            "ETag of {key} against the MD5 of the bytes written in the mount"
        );
        let download = work.join("download.bin");
        s3.aws.run_ok(&[
            "s3",
            "cp",
            "--no-progress",
            &format!("s3://{bucket}/{key}"),
            download.to_str().expect("UTF-8 path"),
        ]);
        assert_same_bytes(&read(&download), data, &format!("aws s3 cp of {key}"));

        let got = s3.boto3(&["get", bucket, key]);
        assert_eq!(
            (got["md5"].as_str(), got["length"].as_u64()),
            (Some(md5_hex(data).as_str()), Some(data.len() as u64)),
            "boto3 get_object of {key}: {got}"
        );
    }
    let listed = s3.boto3(&["list", bucket]);
    let boto3_files: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("boto3 list printed no keys: {listed}"))
        .iter()
        .filter_map(|key| key.as_str())
        .filter(|key| !key.ends_with('/'))
        .collect();
    assert_eq!(
        boto3_files, expected_keys,
        "boto3 list_objects_v2: {listed}"
    );

    // Deleted over S3, gone from the mount at once.
    s3.delete(bucket, "hello.txt");
    assert_absent(&vault.join("hello.txt"), "hello.txt after aws s3 rm");
    s3.boto3(&["delete", bucket, "a/b/c.txt"]);
    assert_absent(
        &vault.join("a/b/c.txt"),
        "a/b/c.txt after boto3 delete_object",
    );
    let top = list(&vault);
    assert!(
        !top.contains(&"hello.txt".to_owned()),
        "ls of the vault still shows hello.txt after aws s3 rm: {top:?}"
    );
    assert_eq!(
        s3.file_keys(bucket),
        ["big/five-mib.bin", "big/odd.bin", "empty.bin"],
        "listing after both deletions"
    );
}

#[test]
fn s3_puts_overwrites_and_deletes_show_in_the_mount_at_once() {
    let Some(node) = mounted_node("S3 to mount") else {
        return;
    };
    let bucket = "from-s3";
    let vault = writable_vault(&node, bucket);
    let s3 = S3::new(&node);
    let work = local_dir(&node, "uploads");

    // Each client in turn: put, read in the mount, overwrite with another size, delete.
    for client in ["aws", "boto3"] {
        let key = format!("docs/{client}.bin");
        let path = vault.join(&key);
        let first = seeded_bytes(1, 300_000);
        let second = seeded_bytes(2, 70_001);
        let put = |data: &[u8]| {
            let upload = work.join("upload.bin");
            write(&upload, data);
            if client == "aws" {
                s3.put_file(bucket, &key, &upload);
            } else {
                s3.boto3(&["put", bucket, &key, upload.to_str().expect("UTF-8 path")]);
            }
        };

        put(&first);
        assert_eq!(
            fs::metadata(&path).map(|m| m.len()).ok(),
            Some(first.len() as u64),
            "stat of {key} right after the {client} PUT"
        );
        assert_same_bytes(
            &read(&path),
            &first,
            &format!("{key} after the {client} PUT"),
        );
        assert!(
            list(&vault.join("docs")).contains(&format!("{client}.bin")),
            "ls of docs/ after the {client} PUT"
        );

        // The mount has the old size and bytes cached now; the overwrite must replace both.
        put(&second);
        assert_eq!(
            fs::metadata(&path).map(|m| m.len()).ok(),
            Some(second.len() as u64),
            "stat of {key} right after the {client} overwrite"
        );
        assert_same_bytes(
            &read(&path),
            &second,
            &format!("{key} after the {client} overwrite"),
        );

        if client == "aws" {
            s3.delete(bucket, &key);
        } else {
            s3.boto3(&["delete", bucket, &key]);
        }
        assert_errno(
            fs::metadata(&path),
            Errno::NOENT,
            &format!("stat of {key} right after the {client} DELETE"),
        );
        assert_errno(
            File::open(&path),
            Errno::NOENT,
            &format!("open of {key} right after the {client} DELETE"),
        );
        // docs/ was made by the PUT alone, so it may go with its last key.
        let left = names_in(&vault.join("docs")).unwrap_or_default();
        assert!(
            !left.contains(&format!("{client}.bin")),
            "ls of docs/ after the {client} DELETE: {left:?}"
        );
    }
}

#[test]
fn etag_of_a_file_written_in_the_mount_is_the_md5_of_its_bytes() {
    let Some(node) = mounted_node("ETag") else {
        return;
    };
    let bucket = "etags";
    let vault = writable_vault(&node, bucket);
    let s3 = S3::new(&node);

    let sequential = seeded_bytes(10, 1_234_567);
    write(&vault.join("sequential.bin"), &sequential);
    write(&vault.join("empty.bin"), b"");

    // Random writes, holes and an overwrite, then close: the ETag covers the final bytes.
    let mut expected = vec![0u8; 0];
    let file = File::create(vault.join("patched.bin")).expect("create in the mount");
    let patches: [(u64, usize, u64); 6] = [
        (0, 100_000, 1),
        (500_000, 10, 2),
        (65_530, 20, 3),
        (1_000_000, 70_000, 4),
        (50, 50, 5),
        (99_999, 2, 6),
    ];
    for (offset, len, seed) in patches {
        let data = seeded_bytes(seed, len);
        file.write_all_at(&data, offset)
            .expect("pwrite in the mount");
        let end = offset as usize + len;
        if expected.len() < end {
            expected.resize(end, 0);
        }
        expected[offset as usize..end].copy_from_slice(&data);
    }
    drop(file);

    let truncated = seeded_bytes(11, 200_000);
    write(&vault.join("truncated.bin"), &truncated);
    OpenOptions::new()
        .write(true)
        .open(vault.join("truncated.bin"))
        .and_then(|f| f.set_len(123_456))
        .expect("truncate in the mount");

    for (key, data) in [
        ("sequential.bin", &sequential[..]),
        ("empty.bin", &[][..]),
        ("patched.bin", &expected[..]),
        ("truncated.bin", &truncated[..123_456]),
    ] {
        let head = s3.head(bucket, key);
        assert_eq!(
            head["ETag"].as_str().map(|e| e.trim_matches('"')),
            Some(md5_hex(data).as_str()),
            "ETag of {key} written in the mount: {head}"
        );
        assert_eq!(head["ContentLength"], data.len(), "size of {key}: {head}");
        assert_same_bytes(&s3.get_ok(bucket, key), data, &format!("GET of {key}"));
    }
    assert_eq!(s3.etag(bucket, "empty.bin"), EMPTY_MD5);
}

#[test]
fn renames_in_the_mount_change_the_keys_in_listings() {
    let Some(node) = mounted_node("rename to S3") else {
        return;
    };
    let bucket = "renames";
    let vault = writable_vault(&node, bucket);
    let s3 = S3::new(&node);
    let data = seeded_bytes(3, 90_000);
    write(&vault.join("old.bin"), &data);
    fs::create_dir_all(vault.join("olddir/sub")).expect("mkdir -p in the mount");
    write(&vault.join("olddir/one.txt"), b"one\n");
    write(&vault.join("olddir/sub/two.txt"), b"two\n");

    fs::rename(vault.join("old.bin"), vault.join("new.bin")).expect("rename a file");
    assert_eq!(
        s3.file_keys(bucket),
        ["new.bin", "olddir/one.txt", "olddir/sub/two.txt"],
        "listing right after renaming old.bin to new.bin"
    );
    assert_same_bytes(
        &s3.get_ok(bucket, "new.bin"),
        &data,
        "GET of the renamed key",
    );
    assert_eq!(s3.get(bucket, "old.bin").status, 404, "GET of the old key");

    fs::rename(vault.join("olddir"), vault.join("newdir")).expect("rename a directory");
    assert_eq!(
        s3.file_keys(bucket),
        ["new.bin", "newdir/one.txt", "newdir/sub/two.txt"],
        "listing right after renaming olddir/ to newdir/"
    );
    let everything = s3.keys(bucket);
    assert!(
        !everything.iter().any(|key| key.starts_with("olddir/")),
        "keys under the old directory name are still listed: {everything:?}"
    );
    assert_eq!(s3.get_ok(bucket, "newdir/sub/two.txt"), b"two\n");

    // Renamed over an existing file: one key left, with the moved bytes.
    write(&vault.join("victim.txt"), b"replaced\n");
    fs::rename(vault.join("new.bin"), vault.join("victim.txt")).expect("rename over a file");
    assert_eq!(
        s3.file_keys(bucket),
        ["newdir/one.txt", "newdir/sub/two.txt", "victim.txt"],
        "listing after renaming over an existing file"
    );
    assert_eq!(s3.etag(bucket, "victim.txt"), md5_hex(&data));
}

#[test]
fn mkdir_in_the_mount_is_a_common_prefix_in_delimiter_listings() {
    let Some(node) = mounted_node("mkdir to S3") else {
        return;
    };
    let bucket = "prefixes";
    let vault = writable_vault(&node, bucket);
    let s3 = S3::new(&node);
    fs::create_dir(vault.join("empty")).expect("mkdir in the mount");
    fs::create_dir_all(vault.join("photos/2026")).expect("mkdir -p in the mount");
    write(&vault.join("photos/cover.jpg"), b"jpeg\n");
    write(&vault.join("top.txt"), b"top\n");

    let top = s3.listing(bucket, "", Some("/"));
    assert_eq!(
        top.prefixes,
        ["empty/", "photos/"],
        "common prefixes at the top: {top:?}"
    );
    assert_eq!(top.keys, ["top.txt"], "keys at the top: {top:?}");

    // A folder marker object for the directory itself may be listed under its own prefix.
    let photos = s3.listing(bucket, "photos/", Some("/"));
    assert_eq!(
        photos.prefixes,
        ["photos/2026/"],
        "prefixes under photos/: {photos:?}"
    );
    let keys: Vec<&str> = photos
        .keys
        .iter()
        .map(String::as_str)
        .filter(|k| *k != "photos/")
        .collect();
    assert_eq!(keys, ["photos/cover.jpg"], "keys under photos/: {photos:?}");

    let ls = s3.aws.run_ok(&["s3", "ls", &format!("s3://{bucket}/")]);
    let pre: Vec<&str> = ls
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("PRE "))
        .collect();
    assert_eq!(pre, ["PRE empty/", "PRE photos/"], "aws s3 ls:\n{ls}");

    // Without a delimiter, each directory made in the mount is a zero-byte `dir/` object.
    let all = s3.listing(bucket, "", None);
    assert_eq!(
        all.keys,
        [
            "empty/",
            "photos/",
            "photos/2026/",
            "photos/cover.jpg",
            "top.txt"
        ],
        "listing without a delimiter: {all:?}"
    );
    assert_eq!(
        s3.head(bucket, "empty/")["ContentLength"],
        0,
        "size of the empty/ marker"
    );
}

#[test]
fn a_file_open_in_the_mount_keeps_its_bytes_after_it_is_deleted() {
    let Some(node) = mounted_node("unlink while open") else {
        return;
    };
    let bucket = "open-files";
    let vault = writable_vault(&node, bucket);
    let s3 = S3::new(&node);
    let data = seeded_bytes(4, 3 << 20);

    // Deleted over S3 while open for reading in the mount.
    let path = vault.join("held.bin");
    write(&path, &data);
    let mut held = File::open(&path).expect("open in the mount");
    let mut head = [0u8; 4096];
    held.read_exact(&mut head).expect("read the first page");
    s3.delete(bucket, "held.bin");
    assert_absent(&path, "held.bin after aws s3 rm");
    assert!(
        !list(&vault).contains(&"held.bin".to_owned()),
        "ls after aws s3 rm"
    );
    assert_eq!(
        held.metadata().map(|m| m.len()).ok(),
        Some(data.len() as u64),
        "fstat of the open file after the S3 delete"
    );
    let mut rest = Vec::new();
    held.seek(SeekFrom::Start(0)).expect("seek to the start");
    held.read_to_end(&mut rest)
        .expect("read the deleted file through its open handle");
    assert_same_bytes(&rest, &data, "the open file after the S3 delete");
    drop(held);

    // Unlinked in the mount while open: the descriptor still reads every byte. What it writes
    // from then on is discarded (docs/SEMANTICS.md), but the write itself succeeds.
    let path = vault.join("scratch.bin");
    write(&path, &data);
    let mut scratch = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open read-write in the mount");
    fs::remove_file(&path).expect("unlink in the mount");
    assert_absent(&path, "scratch.bin after unlink");
    assert_eq!(
        s3.get(bucket, "scratch.bin").status,
        404,
        "GET after unlink in the mount"
    );
    let mut back = Vec::new();
    scratch
        .read_to_end(&mut back)
        .expect("read the unlinked file through its open handle");
    assert_same_bytes(&back, &data, "the unlinked file through its open handle");
    scratch
        .write_all_at(b"discarded", 10)
        .expect("write to the unlinked file");
    // Reading on still works; the patched range may show the write or not, the rest may not
    // change.
    let mut after = vec![0u8; data.len()];
    scratch
        .read_exact_at(&mut after, 0)
        .expect("read the unlinked file after writing to it");
    let mut patched = data.clone();
    patched[10..19].copy_from_slice(b"discarded");
    assert!(
        after == data || after == patched,
        "the unlinked file after a write through its handle is neither its old bytes nor \
         those with the write"
    );
    drop(scratch);
    assert_absent(&path, "scratch.bin after the last close");
    assert!(s3.keys(bucket).is_empty(), "keys left after both deletions");
}

#[test]
fn inode_numbers_survive_a_restart_and_a_crash() {
    let Some(mut node) = mounted_node("inode numbers") else {
        return;
    };
    let bucket = "inodes";
    let vault = writable_vault(&node, bucket);
    let s3 = S3::new(&node);
    fs::create_dir_all(vault.join("dir/sub")).expect("mkdir -p in the mount");
    write(&vault.join("dir/sub/file.txt"), b"file\n");
    write(&vault.join("top.bin"), &seeded_bytes(1, 100_000));
    symlink("top.bin", vault.join("link")).expect("symlink in the mount");
    let upload = local_dir(&node, "inodes").join("put.txt");
    write(&upload, b"put over S3\n");
    s3.put_file(bucket, "s3dir/put.txt", &upload);

    let before = inode_map(&node, bucket);
    assert!(
        before.len() >= 8,
        "expected the vault and seven entries, found {before:?}"
    );
    node.restart();
    assert_eq!(
        inode_map(&node, bucket),
        before,
        "st_ino after a clean restart"
    );

    node.kill9();
    node.start_again();
    assert_eq!(
        inode_map(&node, bucket),
        before,
        "st_ino after SIGKILL and a start"
    );
}

#[test]
fn writes_into_an_api_exclusive_vault_fail_with_erofs_and_change_nothing() {
    let Some(node) = mounted_node("EROFS") else {
        return;
    };
    let bucket = "exclusive";
    let created = node.create_bucket_with_flags(bucket, &[]);
    assert_eq!(
        created["api_exclusive"], true,
        "create-local without flags should take s3_gateway.default_api_exclusive (true): \
         {created}"
    );
    let s3 = S3::new(&node);
    let upload = local_dir(&node, "exclusive").join("doc.txt");
    write(&upload, b"only S3 writes here\n");
    s3.put_file(bucket, "doc.txt", &upload);
    s3.put_file(bucket, "dir/inner.txt", &upload);
    let vault = vault_dir(&node, bucket);

    assert_eq!(
        list(&vault),
        ["dir", "doc.txt"],
        "ls of the API-exclusive vault"
    );
    assert_eq!(read(&vault.join("doc.txt")), b"only S3 writes here\n");
    let doc = vault.join("doc.txt");
    let refusals: Vec<(&str, std::io::Result<()>)> = vec![
        (
            "create a file",
            File::create(vault.join("new.txt")).map(drop),
        ),
        (
            "open for writing",
            OpenOptions::new().write(true).open(&doc).map(drop),
        ),
        (
            "open for appending",
            OpenOptions::new().append(true).open(&doc).map(drop),
        ),
        ("mkdir", fs::create_dir(vault.join("newdir"))),
        ("unlink", fs::remove_file(&doc)),
        ("rmdir", fs::remove_dir(vault.join("dir"))),
        ("rename", fs::rename(&doc, vault.join("renamed.txt"))),
        (
            "chmod",
            fs::set_permissions(&doc, fs::Permissions::from_mode(0o600)),
        ),
        ("symlink", symlink("doc.txt", vault.join("link"))),
        (
            "utimens",
            File::open(&doc).and_then(|f| f.set_modified(SystemTime::UNIX_EPOCH)),
        ),
    ];
    for (what, result) in refusals {
        assert_errno(
            result,
            Errno::ROFS,
            &format!("{what} in an API-exclusive vault"),
        );
    }
    assert_rustix_errno(
        rustix::fs::setxattr(&doc, "user.note", b"x", XattrFlags::empty()),
        Errno::ROFS,
        "setxattr in an API-exclusive vault",
    );

    assert_eq!(
        list(&vault),
        ["dir", "doc.txt"],
        "ls after the refused writes"
    );
    assert_eq!(
        s3.keys(bucket),
        ["dir/inner.txt", "doc.txt"],
        "keys after the refused writes"
    );
    assert_eq!(s3.get_ok(bucket, "doc.txt"), b"only S3 writes here\n");
    assert_ne!(
        fs::metadata(&doc).map(|m| m.mtime()).ok(),
        Some(0),
        "the refused utimens changed the mtime"
    );
}

/// `st_ino` of the vault directory and everything under it, by path.
fn inode_map(node: &TestNode, bucket: &str) -> BTreeMap<String, u64> {
    let vault = vault_dir(node, bucket);
    let mut map = BTreeMap::new();
    map.insert(
        ".".to_owned(),
        fs::symlink_metadata(&vault).expect("stat the vault").ino(),
    );
    collect_inodes(&vault, "", &mut map);
    map
}

fn collect_inodes(dir: &Path, prefix: &str, map: &mut BTreeMap<String, u64>) {
    for name in list(dir) {
        let path = dir.join(&name);
        let meta =
            fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
        let relative = format!("{prefix}{name}");
        map.insert(relative.clone(), meta.ino());
        if meta.is_dir() {
            collect_inodes(&path, &format!("{relative}/"), map);
        }
    }
}
