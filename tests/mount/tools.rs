//! Everyday tools on the mount, checked the way their users check them: `cp` and `mv` in and
//! out, `rm -r`, `tar` both ways, `rsync -a` twice, a `git clone` that must pass `git fsck`, a
//! SQLite database that must pass its integrity check before and after a restart, and `dd`
//! patching a file at random offsets exactly as it patches a local copy.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::assert_same_bytes;
use crate::mount::support::{
    arg, assert_absent, assert_same_tree, list, local_dir, mounted_node, read, run_ok,
    run_with_input, seeded_bytes, sha256_hex, test_seed, writable_vault, write,
};

/// Sizes that sit on the edges the store cares about: empty, one byte, a page, the 64 KiB
/// segment and just past it, 1 MiB, and a file of many segments.
const FILE_SIZES: [usize; 8] = [0, 1, 4095, 4096, 65_536, 65_537, 1 << 20, (24 << 20) + 3];

#[test]
fn cp_copies_small_and_large_files_in_and_out_byte_for_byte() {
    let Some(node) = mounted_node("cp") else {
        return;
    };
    let vault = writable_vault(&node, "tools-cp");
    let local = local_dir(&node, "cp");

    let mut names = Vec::new();
    for size in FILE_SIZES {
        let name = format!("file-{size}.bin");
        let data = seeded_bytes(size as u64, size);
        let source = local.join(&name);
        write(&source, &data);
        let inside = vault.join(&name);
        run_ok(
            Command::new("cp").arg(&source).arg(&inside),
            &format!("cp {name} into the mount"),
        );
        assert_same_bytes(&read(&inside), &data, &format!("{name} read in the mount"));

        let back = local.join(format!("{name}.back"));
        run_ok(
            Command::new("cp").arg(&inside).arg(&back),
            &format!("cp {name} out of the mount"),
        );
        run_ok(
            Command::new("cmp").arg(&source).arg(&back),
            &format!("cmp of {name} with its copy out of the mount"),
        );
        names.push(name);
    }

    // cp onto an existing, larger file leaves exactly the new bytes.
    let small = local.join("file-1.bin");
    let target = vault.join("file-1048576.bin");
    run_ok(
        Command::new("cp").arg(&small).arg(&target),
        "cp of 1 byte over a 1 MiB file in the mount",
    );
    assert_same_bytes(
        &read(&target),
        &read(&small),
        "1 MiB file overwritten by cp",
    );

    // cp -r of a directory with a subdirectory.
    let tree = local.join("tree");
    fs::create_dir_all(tree.join("sub")).expect("create a local tree");
    write(&tree.join("a.txt"), b"alpha\n");
    write(&tree.join("sub/b.bin"), &seeded_bytes(7, 300_000));
    run_ok(
        Command::new("cp")
            .arg("-r")
            .arg(&tree)
            .arg(vault.join("tree")),
        "cp -r of a tree into the mount",
    );
    assert_same_tree(&vault.join("tree"), &tree, "tree copied with cp -r");

    names.push("tree".to_owned());
    names.sort();
    assert_eq!(list(&vault), names, "ls of the vault after the copies");
}

#[test]
fn mv_renames_inside_the_mount_and_moves_across_its_edge() {
    let Some(node) = mounted_node("mv") else {
        return;
    };
    let vault = writable_vault(&node, "tools-mv");
    let local = local_dir(&node, "mv");
    let data = seeded_bytes(1, 3 << 20);
    write(&vault.join("a.bin"), &data);
    fs::create_dir_all(vault.join("dir/sub")).expect("mkdir -p in the mount");
    write(&vault.join("dir/sub/inner.txt"), b"inner\n");

    let mv = |from: &Path, to: &Path, what: &str| {
        run_ok(Command::new("mv").arg(from).arg(to), what);
    };
    mv(
        &vault.join("a.bin"),
        &vault.join("b.bin"),
        "mv of a file in the mount",
    );
    assert_absent(&vault.join("a.bin"), "the old name after mv");
    assert_same_bytes(&read(&vault.join("b.bin")), &data, "the file after mv");

    mv(
        &vault.join("b.bin"),
        &vault.join("dir/sub"),
        "mv of a file into a directory",
    );
    assert_same_bytes(
        &read(&vault.join("dir/sub/b.bin")),
        &data,
        "the file moved into dir/sub",
    );

    mv(
        &vault.join("dir"),
        &vault.join("renamed"),
        "mv of a directory in the mount",
    );
    assert_absent(&vault.join("dir"), "the old directory name after mv");
    assert_eq!(list(&vault.join("renamed/sub")), ["b.bin", "inner.txt"]);
    assert_eq!(read(&vault.join("renamed/sub/inner.txt")), b"inner\n");

    // Across the mount's edge mv copies and removes the source.
    let outside = local.join("from-outside.bin");
    let outside_data = seeded_bytes(2, 200_000);
    write(&outside, &outside_data);
    mv(
        &outside,
        &vault.join("from-outside.bin"),
        "mv of a local file into the mount",
    );
    assert_absent(&outside, "the local source after mv into the mount");
    assert_same_bytes(
        &read(&vault.join("from-outside.bin")),
        &outside_data,
        "the file moved into the mount",
    );
    mv(
        &vault.join("renamed"),
        &local.join("renamed"),
        "mv of a directory out of the mount",
    );
    assert_absent(
        &vault.join("renamed"),
        "the directory moved out of the mount",
    );
    assert_same_bytes(
        &read(&local.join("renamed/sub/b.bin")),
        &data,
        "the file moved out",
    );

    assert_eq!(
        list(&vault),
        ["from-outside.bin"],
        "ls of the vault after the moves"
    );
}

#[test]
fn rm_r_removes_a_nested_tree_and_nothing_else() {
    let Some(node) = mounted_node("rm -r") else {
        return;
    };
    let vault = writable_vault(&node, "tools-rm");
    for d in 0..4 {
        for s in 0..3 {
            let dir = vault.join(format!("doomed/d{d}/s{s}"));
            fs::create_dir_all(&dir).expect("mkdir -p in the mount");
            for f in 0..3 {
                write(
                    &dir.join(format!("f{f}")),
                    &seeded_bytes(d * 10 + s, 1000 * f as usize),
                );
            }
        }
    }
    write(&vault.join("keep.txt"), b"keep me\n");
    fs::create_dir(vault.join("doomed/empty")).expect("mkdir an empty directory");

    let out = run_ok(
        Command::new("rm").arg("-r").arg(vault.join("doomed")),
        "rm -r of a tree in the mount",
    );
    assert!(out.is_empty(), "rm -r printed: {out}");
    assert_absent(&vault.join("doomed"), "the tree after rm -r");
    assert_eq!(list(&vault), ["keep.txt"], "ls of the vault after rm -r");
    assert_eq!(read(&vault.join("keep.txt")), b"keep me\n");
}

#[test]
fn tar_extracts_into_the_mount_and_archives_from_it_identically() {
    let Some(node) = mounted_node("tar") else {
        return;
    };
    let vault = writable_vault(&node, "tools-tar");
    let local = local_dir(&node, "tar");
    let source = local.join("source");
    make_sample_tree(&source);
    let archive = local.join("source.tar");
    run_ok(
        Command::new("tar")
            .arg("-cf")
            .arg(&archive)
            .arg("-C")
            .arg(&source)
            .arg("."),
        "tar -c of the local tree",
    );

    let extracted = vault.join("extracted");
    fs::create_dir(&extracted).expect("mkdir in the mount");
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&extracted),
        "tar -x into the mount",
    );
    diff_r(
        &extracted,
        &source,
        "diff -r of the tree extracted into the mount",
    );
    assert_same_tree(&extracted, &source, "tree extracted into the mount");

    // An archive written into the mount from the mount, then extracted outside.
    let inner_archive = vault.join("archive.tar");
    run_ok(
        Command::new("tar")
            .arg("-cf")
            .arg(&inner_archive)
            .arg("-C")
            .arg(&extracted)
            .arg("."),
        "tar -c of the tree in the mount into the mount",
    );
    let back = local.join("back");
    fs::create_dir(&back).expect("create a local directory");
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(&inner_archive)
            .arg("-C")
            .arg(&back),
        "tar -x of the archive in the mount",
    );
    diff_r(
        &back,
        &source,
        "diff -r of the tree archived from the mount",
    );
    assert_same_tree(&back, &source, "tree archived from the mount");

    // tar -tv shows mode, owner, size, mtime and link target; extraction restored them, so
    // both archives list the same entries.
    assert_eq!(
        sorted_listing(&inner_archive),
        sorted_listing(&archive),
        "tar -tv of the archive made from the mount against the original archive"
    );
}

#[test]
fn rsync_a_copies_a_tree_and_a_second_run_sends_only_what_changed() {
    let Some(node) = mounted_node("rsync") else {
        return;
    };
    let vault = writable_vault(&node, "tools-rsync");
    let local = local_dir(&node, "rsync");
    let source = local.join("source");
    make_sample_tree(&source);
    let target = vault.join("copy");
    let rsync = |what: &str| {
        run_ok(
            Command::new("rsync")
                .args(["-a", "--itemize-changes"])
                .arg(format!("{}/", arg(&source)))
                .arg(format!("{}/", arg(&target))),
            what,
        )
    };

    rsync("first rsync -a into the mount");
    diff_r(&target, &source, "diff -r after rsync -a");
    assert_same_tree(&target, &source, "tree after rsync -a");

    // rsync -a kept sizes and mtimes, so a second run has nothing to send.
    let again = rsync("second rsync -a into the mount");
    let sent: Vec<&str> = again.lines().filter(|l| l.starts_with('>')).collect();
    assert!(
        sent.is_empty(),
        "a second rsync -a sent files again, so sizes or mtimes did not stick in the mount:\n{again}"
    );

    write(&source.join("top.txt"), b"changed after the first sync\n");
    let third = rsync("rsync -a after one file changed");
    let sent: Vec<&str> = third.lines().filter(|l| l.starts_with('>')).collect();
    assert_eq!(sent.len(), 1, "rsync -a should send only top.txt:\n{third}");
    assert!(sent[0].ends_with(" top.txt"), "rsync -a sent {sent:?}");
    assert_same_tree(&target, &source, "tree after the third rsync -a");

    let back = local.join("back");
    run_ok(
        Command::new("rsync")
            .arg("-a")
            .arg(format!("{}/", arg(&target)))
            .arg(format!("{}/", arg(&back))),
        "rsync -a out of the mount",
    );
    diff_r(&back, &source, "diff -r after rsync -a out of the mount");
}

#[test]
fn git_clone_into_the_mount_passes_fsck_and_keeps_its_history() {
    let Some(node) = mounted_node("git") else {
        return;
    };
    let vault = writable_vault(&node, "tools-git");
    let local = local_dir(&node, "git");
    let home = local.join("home");
    fs::create_dir(&home).expect("create git's home");
    let git = |dir: &Path, args: &[&str]| -> String {
        run_ok(
            Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(args)
                .env("HOME", &home)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_AUTHOR_NAME", "Test Author")
                .env("GIT_AUTHOR_EMAIL", "author@example.invalid")
                .env("GIT_COMMITTER_NAME", "Test Committer")
                .env("GIT_COMMITTER_EMAIL", "committer@example.invalid")
                .env("GIT_AUTHOR_DATE", "2026-01-02T03:04:05Z")
                .env("GIT_COMMITTER_DATE", "2026-01-02T03:04:05Z"),
            &format!("git -C {} {args:?}", dir.display()),
        )
    };

    let source = local.join("source");
    fs::create_dir(&source).expect("create the source repository");
    make_history(&source, &git);

    let clone = vault.join("clone");
    git(
        &vault,
        &["clone", "--no-hardlinks", "--quiet", arg(&source), "clone"],
    );
    git(&clone, &["fsck", "--full", "--strict"]);
    let log = ["log", "--format=%H %an %s"];
    assert_eq!(
        git(&clone, &log),
        git(&source, &log),
        "git log of the clone"
    );
    // The path rev-list prints next to an object depends on walk order; the ids do not.
    let object_ids = |repo: &Path| -> Vec<String> {
        let listed = git(repo, &["rev-list", "--all", "--objects"]);
        let mut ids: Vec<String> = listed
            .lines()
            .filter_map(|line| line.split(' ').next())
            .map(str::to_owned)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        object_ids(&clone),
        object_ids(&source),
        "objects reachable in the clone"
    );
    assert_eq!(
        git(&clone, &["status", "--porcelain"]),
        "",
        "git status of the fresh clone"
    );
    run_ok(
        Command::new("diff")
            .args(["-r", "--no-dereference", "--exclude=.git"])
            .arg(&clone)
            .arg(&source),
        "diff -r of the clone's work tree against the source's",
    );

    // Work in the clone: a commit, then a gc that repacks and deletes loose objects.
    write(&clone.join("notes.txt"), b"written in the mount\n");
    git(&clone, &["add", "notes.txt"]);
    git(
        &clone,
        &["commit", "--quiet", "-m", "commit made in the mount"],
    );
    git(&clone, &["gc", "--quiet", "--prune=now"]);
    git(&clone, &["fsck", "--full", "--strict"]);
    let subjects = git(&clone, &["log", "--format=%s"]);
    assert_eq!(
        subjects.lines().collect::<Vec<_>>(),
        [
            "commit made in the mount",
            "remove the old notes",
            "rename readme",
            "add a 2 MiB binary",
            "edit the readme",
            "first commit",
        ],
        "git log --format=%s of the clone after a commit and gc"
    );
    assert_eq!(
        git(&clone, &["status", "--porcelain"]),
        "",
        "git status after the commit"
    );
}

#[test]
fn sqlite_database_on_the_mount_passes_integrity_checks_before_and_after_a_restart() {
    const BATCHES: u64 = 10;
    const ROWS: u64 = 500;
    let Some(mut node) = mounted_node("sqlite") else {
        return;
    };
    let vault = writable_vault(&node, "tools-sqlite");
    let db = vault.join("app.db");
    let sqlite = |script: &str, what: &str| {
        run_with_input(
            Command::new("sqlite3").args(["-bail", "-batch"]).arg(&db),
            script.as_bytes(),
            what,
        )
    };

    sqlite(
        "CREATE TABLE items(id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, body TEXT NOT NULL);
         CREATE INDEX items_by_batch ON items(batch);",
        "create the schema",
    );
    for batch in 0..BATCHES {
        sqlite(
            &insert_batch(batch, ROWS, "COMMIT"),
            &format!("transaction {batch}"),
        );
    }
    sqlite(
        &insert_batch(99, ROWS, "ROLLBACK"),
        "a transaction rolled back",
    );
    sqlite(
        "DELETE FROM items WHERE id % 7 = 0; VACUUM;",
        "delete every seventh row and vacuum",
    );

    let total = BATCHES * ROWS;
    let deleted: Vec<u64> = (1..=total).filter(|id| id % 7 == 0).collect();
    let expected = format!(
        "{}|{}|{BATCHES}\nok\n",
        total - deleted.len() as u64,
        (1..=total).sum::<u64>() - deleted.iter().sum::<u64>()
    );
    let query = "SELECT count(*), sum(id), count(DISTINCT batch) FROM items;
                 PRAGMA integrity_check;";
    assert_eq!(sqlite(query, "count and integrity check"), expected);
    let before = sha256_hex(&read(&db));

    node.restart();
    assert_eq!(
        sha256_hex(&read(&vault.join("app.db"))),
        before,
        "the database file changed across a restart"
    );
    assert_eq!(
        sqlite(query, "count and integrity check after a restart"),
        expected
    );
    sqlite(
        &insert_batch(BATCHES, ROWS, "COMMIT"),
        "a transaction after the restart",
    );
    assert_eq!(
        sqlite(
            "SELECT count(*) FROM items; PRAGMA integrity_check;",
            "count after one more transaction"
        ),
        format!("{}\nok\n", total - deleted.len() as u64 + ROWS)
    );
}

#[test]
fn dd_at_random_offsets_patches_the_file_like_a_local_copy() {
    let Some(node) = mounted_node("dd") else {
        return;
    };
    let vault = writable_vault(&node, "tools-dd");
    let local = local_dir(&node, "dd");
    let seed = test_seed("VH_MOUNT_DD_SEED");
    let mut rng = StdRng::seed_from_u64(seed);
    let base = seeded_bytes(seed, (3 << 20) + 1234);
    let in_mount = vault.join("patched.bin");
    let reference = local.join("patched.bin");
    write(&in_mount, &base);
    write(&reference, &base);

    let chunk = local.join("chunk.bin");
    for step in 0..40u64 {
        let len = match rng.random_range(0..4) {
            0 => rng.random_range(1..64),
            1 => rng.random_range(64..8192),
            _ => rng.random_range(8192..200_000),
        };
        let size = fs::metadata(&reference).expect("stat the local copy").len();
        let offset = match rng.random_range(0..4) {
            // Just before a 64 KiB segment boundary, so the patch straddles it.
            0 => (rng.random_range(0..size / 65_536 + 1) * 65_536).saturating_sub(len / 2),
            // Past the end: dd extends the file with a hole.
            1 => size + rng.random_range(0..(2u64 << 20)),
            _ => rng.random_range(0..size),
        };
        write(&chunk, &seeded_bytes(seed ^ step, len as usize));
        let conv = if step % 5 == 0 {
            "notrunc,fsync"
        } else {
            "notrunc"
        };
        for target in [&in_mount, &reference] {
            run_ok(
                Command::new("dd")
                    .arg(format!("if={}", arg(&chunk)))
                    .arg(format!("of={}", arg(target)))
                    .args(["bs=65536", "oflag=seek_bytes", "status=none"])
                    .arg(format!("seek={offset}"))
                    .arg(format!("conv={conv}")),
                &format!(
                    "step {step}: dd of {len} bytes at {offset} into {}",
                    target.display()
                ),
            );
        }
        let sizes = (
            fs::metadata(&in_mount)
                .expect("stat the file in the mount")
                .len(),
            fs::metadata(&reference).expect("stat the local copy").len(),
        );
        assert_eq!(
            sizes.0, sizes.1,
            "seed {seed}, step {step}: size after dd of {len} bytes at {offset} (mount, local)"
        );
        if step % 8 == 7 {
            assert_same_bytes(
                &read(&in_mount),
                &read(&reference),
                &format!("seed {seed}, step {step}: content after dd"),
            );
        }
    }
    assert_same_bytes(
        &read(&in_mount),
        &read(&reference),
        &format!("seed {seed}: content after every dd"),
    );
}

/// A tree with nested and empty directories, symlinks (to a file, to a directory, dangling),
/// an executable, and files of the sizes in [`FILE_SIZES`] up to 1.5 MiB.
fn make_sample_tree(root: &Path) {
    for dir in ["nested/a/b/c", "nested/empty-dir", "big", "links"] {
        fs::create_dir_all(root.join(dir)).expect("create the sample tree");
    }
    for (index, size) in FILE_SIZES.iter().take(7).enumerate() {
        write(
            &root.join(format!("size-{size}.bin")),
            &seeded_bytes(index as u64, *size),
        );
    }
    write(&root.join("top.txt"), b"top of the tree\n");
    write(
        &root.join("big/large.bin"),
        &seeded_bytes(100, (3 << 19) + 5),
    );
    write(&root.join("nested/a/b/c/deep.txt"), b"deep\n");
    write(&root.join("nested/a/b/sibling.txt"), b"sibling\n");
    let script = root.join("run.sh");
    write(&script, b"#!/bin/sh\necho hello\n");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod the script");
    symlink("../top.txt", root.join("links/to-top")).expect("symlink to a file");
    symlink("../nested/a", root.join("links/to-dir")).expect("symlink to a directory");
    symlink("../does-not-exist", root.join("links/dangling")).expect("dangling symlink");
}

/// A repository with six commits: add, edit, a 2 MiB binary, a rename, a removal, a branch and
/// a tag; the first five on `main`.
fn make_history(repo: &Path, git: &impl Fn(&Path, &[&str]) -> String) {
    git(repo, &["init", "--quiet", "--initial-branch=main"]);
    write(&repo.join("README.md"), b"# A project\n");
    write(&repo.join("notes.txt"), b"old notes\n");
    fs::create_dir(repo.join("src")).expect("mkdir src");
    write(&repo.join("src/lib.rs"), b"pub fn answer() -> u32 { 42 }\n");
    git(repo, &["add", "."]);
    git(repo, &["commit", "--quiet", "-m", "first commit"]);
    write(
        &repo.join("README.md"),
        b"# A project\n\nNow with a description.\n",
    );
    git(repo, &["commit", "--quiet", "-am", "edit the readme"]);
    write(&repo.join("blob.bin"), &seeded_bytes(42, 2 << 20));
    git(repo, &["add", "blob.bin"]);
    git(repo, &["commit", "--quiet", "-m", "add a 2 MiB binary"]);
    git(repo, &["tag", "-a", "v1", "-m", "version 1"]);
    git(repo, &["mv", "README.md", "README"]);
    git(repo, &["commit", "--quiet", "-m", "rename readme"]);
    git(repo, &["rm", "--quiet", "notes.txt"]);
    git(repo, &["commit", "--quiet", "-m", "remove the old notes"]);
    git(repo, &["checkout", "--quiet", "-b", "feature"]);
    write(&repo.join("feature.txt"), b"on a branch\n");
    git(repo, &["add", "feature.txt"]);
    git(repo, &["commit", "--quiet", "-m", "work on a branch"]);
    git(repo, &["checkout", "--quiet", "main"]);
}

/// One SQLite transaction inserting `rows` rows of batch `batch`, ended by `end`.
fn insert_batch(batch: u64, rows: u64, end: &str) -> String {
    format!(
        "BEGIN;
         WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {rows})
         INSERT INTO items(batch, body)
             SELECT {batch}, printf('%d-%d-%s', {batch}, x, hex(randomblob(40))) FROM n;
         {end};"
    )
}

/// `diff -r --no-dereference`, which compares contents and symlink targets.
fn diff_r(actual: &Path, expected: &Path, what: &str) {
    run_ok(
        Command::new("diff")
            .args(["-r", "--no-dereference"])
            .arg(actual)
            .arg(expected),
        what,
    );
}

/// `tar -tvf` of `archive`, lines sorted (entry order follows readdir order).
fn sorted_listing(archive: &Path) -> Vec<String> {
    let listing = run_ok(
        Command::new("tar").arg("-tvf").arg(archive),
        &format!("tar -tvf {}", archive.display()),
    );
    sorted_lines(&listing)
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}
