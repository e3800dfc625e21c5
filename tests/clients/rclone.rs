//! The client scenario with rclone, on a remote configured entirely from `RCLONE_CONFIG_VH_*`
//! variables (provider `Other`, path style). rclone uploads below 200 MiB in one PUT; the
//! 100 MiB file is sent with `--s3-upload-cutoff 16M` so that it goes multipart in rclone's own
//! 5 MiB chunks, as larger files do. rclone has no multi-object delete and presigns GETs only.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::clients::support::{
    BIG_KEY, BIG_RANGES, COPY_KEY, Checks, EMPTY_KEY, META_BODY, META_CONTENT_TYPE, META_KEY,
    META_PAIRS, Run, SMALL_BODY, SMALL_KEY, TREE_LISTED_DIR, TREE_PREFIX, Tool, Workspace,
    fetch_presigned, listed_dir_keys, node_with_credential, path_arg, sha256_file, small_text,
    tree_dirs, tree_keys,
};
use crate::common::TestNode;

const BUCKET: &str = "matrix-rclone";

/// Runs the whole scenario; the test fails with every check that did not hold.
pub fn scenario() {
    let (node, access_key, secret) = node_with_credential("rclone");
    let work = Workspace::new(&node);
    let rclone = Rclone::new(&node, &access_key, &secret);
    let mut checks = Checks::new("rclone");

    if checks
        .ran(
            "mkdir of the bucket",
            &rclone.run(&["mkdir", &bucket_remote()]),
        )
        .is_none()
    {
        checks.finish();
        return;
    }
    if let Some(stdout) = checks.ran("lsd of the buckets", &rclone.run(&["lsd", "vh:"])) {
        let names: Vec<&str> = stdout
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .collect();
        checks.eq("lsd shows the bucket", names, vec![BUCKET]);
    }

    small_objects(&rclone, &work, &mut checks);
    big_object(&rclone, &work, &mut checks);
    tree_listing(&rclone, &work, &mut checks);
    metadata_and_copy(&rclone, &work, &mut checks);
    presign(&rclone, &node, &mut checks);
    deletes(&rclone, &mut checks);
    checks.finish();
}

/// rclone with the `vh:` remote in its environment and a config file that does not exist.
struct Rclone {
    tool: Tool,
}

impl Rclone {
    fn new(node: &TestNode, access_key: &str, secret: &str) -> Self {
        let home = node.root().join("rclone-home");
        let tool = Tool::new("rclone", &home)
            .env("RCLONE_CONFIG", &path_arg(&home.join("rclone.conf")))
            .env("RCLONE_CONFIG_VH_TYPE", "s3")
            .env("RCLONE_CONFIG_VH_PROVIDER", "Other")
            .env("RCLONE_CONFIG_VH_ENDPOINT", &node.endpoint())
            .env("RCLONE_CONFIG_VH_ACCESS_KEY_ID", access_key)
            .env("RCLONE_CONFIG_VH_SECRET_ACCESS_KEY", secret)
            .env("RCLONE_CONFIG_VH_REGION", crate::common::REGION)
            .env("RCLONE_CONFIG_VH_FORCE_PATH_STYLE", "true");
        Self { tool }
    }

    /// Runs rclone without retries, so that a failed request fails the command.
    fn run(&self, args: &[&str]) -> Run {
        let mut full = vec!["--retries", "1", "--low-level-retries", "1"];
        full.extend_from_slice(args);
        self.tool.run(&full)
    }

    /// `lsjson -M` of one object: its JSON entry.
    fn stat(&self, checks: &mut Checks, key: &str) -> Value {
        let run = self.run(&["lsjson", "-M", &remote(key)]);
        let Some(stdout) = checks.ran(&format!("lsjson -M {key}"), &run) else {
            return Value::Null;
        };
        let parsed: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        parsed.get(0).cloned().unwrap_or_else(|| {
            checks.fail(
                &format!("lsjson -M {key}"),
                format!("listed nothing: {stdout}"),
            );
            Value::Null
        })
    }
}

fn bucket_remote() -> String {
    format!("vh:{BUCKET}")
}

fn remote(key: &str) -> String {
    format!("vh:{BUCKET}/{key}")
}

fn small_objects(rclone: &Rclone, work: &Workspace, checks: &mut Checks) {
    for (name, key, body) in [
        ("hello.txt", SMALL_KEY, SMALL_BODY),
        ("empty.bin", EMPTY_KEY, &b""[..]),
    ] {
        checks.ran(
            &format!("copyto {key}"),
            &rclone.run(&["copyto", &work.arg(name), &remote(key)]),
        );
        let cat = rclone.run(&["cat", &remote(key)]);
        checks.ran(&format!("cat {key}"), &cat);
        checks.eq(
            &format!("{key} read back with cat"),
            cat.stdout_bytes,
            body.to_vec(),
        );
    }
}

fn big_object(rclone: &Rclone, work: &Workspace, checks: &mut Checks) {
    let up = rclone.run(&[
        "copyto",
        "-v",
        "--s3-upload-cutoff",
        "16M",
        &path_arg(&work.big),
        &remote(BIG_KEY),
    ]);
    checks.ran("copyto of 100 MiB (multipart)", &up);
    let back = work.path("big.back");
    checks.ran(
        "copyto of 100 MiB back",
        &rclone.run(&["copyto", &remote(BIG_KEY), &path_arg(&back)]),
    );
    checks.eq(
        "100 MiB read back with copyto",
        sha256_file(&back),
        Some(work.big_sha256.clone()),
    );
    // rclone keeps the MD5 of a multipart upload in its own user metadata (md5chksum).
    let md5 = rclone.run(&["md5sum", &remote(BIG_KEY)]);
    if let Some(stdout) = checks.ran("md5sum of 100 MiB", &md5) {
        let local = md5_hex_file(&work.big);
        checks.eq(
            "md5sum of 100 MiB",
            stdout.split_whitespace().next(),
            Some(local.as_str()),
        );
    }
    for (index, &(first, last)) in BIG_RANGES.iter().enumerate() {
        let offset = first.to_string();
        let count = (last - first + 1).to_string();
        let cat = rclone.run(&[
            "cat",
            "--offset",
            &offset,
            "--count",
            &count,
            &remote(BIG_KEY),
        ]);
        checks.ran(&format!("cat --offset {offset} --count {count}"), &cat);
        checks.eq(
            &format!("bytes {first}-{last}"),
            cat.stdout_bytes,
            work.big_range(index).to_vec(),
        );
    }
}

fn md5_hex_file(path: &std::path::Path) -> String {
    use md5::{Digest, Md5};
    let data = std::fs::read(path).expect("read the large file");
    hex::encode(Md5::digest(&data))
}

fn tree_listing(rclone: &Rclone, work: &Workspace, checks: &mut Checks) {
    let tree = work.tree("tree");
    let base = remote(TREE_PREFIX.trim_end_matches('/'));
    checks.ran(
        "copy of 2,500 files",
        &rclone.run(&["copy", "--transfers", "8", &path_arg(&tree), &base]),
    );
    let check = rclone.run(&["check", &path_arg(&tree), &base]);
    if checks.ran("check of the tree", &check).is_some() {
        checks.check(
            "check reports 0 differences",
            check.stderr.contains("0 differences found"),
            || check.stderr.clone(),
        );
        checks.check(
            "check reports 2500 matching files",
            check.stderr.contains("2500 matching files"),
            || check.stderr.clone(),
        );
    }
    if let Some(stdout) = checks.ran("lsf of the tree", &rclone.run(&["lsf", &base])) {
        let listed: Vec<String> = stdout
            .lines()
            .map(|l| format!("{TREE_PREFIX}{l}"))
            .collect();
        checks.eq("lsf shows the directories", listed, tree_dirs());
    }
    let dir = remote(TREE_LISTED_DIR);
    if let Some(stdout) = checks.ran("lsf of one directory", &rclone.run(&["lsf", &dir])) {
        let listed: Vec<String> = stdout
            .lines()
            .map(|l| format!("{TREE_LISTED_DIR}{l}"))
            .collect();
        checks.eq(
            "lsf of one directory shows its keys",
            listed,
            listed_dir_keys(),
        );
    }
    // --fast-list reads the whole tree as one paged listing without a delimiter.
    let all = rclone.run(&["lsf", "-R", "--files-only", "--fast-list", &base]);
    if let Some(stdout) = checks.ran("lsf -R --fast-list of the tree", &all) {
        let listed: Vec<String> = stdout
            .lines()
            .map(|l| format!("{TREE_PREFIX}{l}"))
            .collect();
        let unique: BTreeSet<&String> = listed.iter().collect();
        checks.eq(
            "lsf -R lists 2,500 entries",
            listed.len(),
            tree_keys().len(),
        );
        checks.eq(
            "lsf -R lists every key once",
            unique.into_iter().cloned().collect::<Vec<_>>(),
            tree_keys(),
        );
    }
}

fn metadata_and_copy(rclone: &Rclone, work: &Workspace, checks: &mut Checks) {
    let mut args = vec!["copyto".to_owned(), "-M".to_owned()];
    for (name, value) in META_PAIRS
        .iter()
        .chain(&[("content-type", META_CONTENT_TYPE)])
    {
        args.extend(["--metadata-set".to_owned(), format!("{name}={value}")]);
    }
    args.extend([work.arg("doc.md"), remote(META_KEY)]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    checks.ran("copyto with --metadata-set", &rclone.run(&args));
    let copied = rclone.run(&["copyto", "-v", &remote(META_KEY), &remote(COPY_KEY)]);
    if checks.ran("copyto bucket to bucket", &copied).is_some() {
        checks.check(
            "copyto copies server side",
            copied.stderr.contains("server-side copy"),
            || copied.stderr.clone(),
        );
    }
    for key in [META_KEY, COPY_KEY] {
        let entry = rclone.stat(checks, key);
        checks.eq(
            &format!("{key} MimeType"),
            entry["MimeType"].as_str(),
            Some(META_CONTENT_TYPE),
        );
        for (name, value) in META_PAIRS {
            checks.eq(
                &format!("{key} metadata {name}"),
                entry["Metadata"][name].as_str(),
                Some(value),
            );
        }
        let cat = rclone.run(&["cat", &remote(key)]);
        checks.ran(&format!("cat {key}"), &cat);
        checks.eq(
            &format!("{key} content"),
            cat.stdout_bytes,
            META_BODY.to_vec(),
        );
    }
}

fn presign(rclone: &Rclone, node: &TestNode, checks: &mut Checks) {
    let link = rclone.run(&["link", "--expire", "5m", &remote(SMALL_KEY)]);
    let Some(url) = checks.ran("link (presigned GET)", &link) else {
        return;
    };
    match fetch_presigned(node, &url) {
        Ok((status, body)) => {
            checks.eq("GET of the link: status", status, 200);
            checks.eq("GET of the link: body", body, small_text());
        }
        Err(problem) => checks.fail("link", problem),
    }
}

fn deletes(rclone: &Rclone, checks: &mut Checks) {
    checks.ran(
        "deletefile of one object",
        &rclone.run(&["deletefile", &remote(SMALL_KEY)]),
    );
    if let Some(stdout) = checks.ran(
        "lsf after deletefile",
        &rclone.run(&["lsf", &remote("small/")]),
    ) {
        checks.eq(
            "lsf after deletefile",
            stdout.lines().collect::<Vec<_>>(),
            vec!["empty.bin"],
        );
    }
    let base = remote(TREE_PREFIX.trim_end_matches('/'));
    checks.ran(
        "delete of the tree",
        &rclone.run(&["delete", "--checkers", "8", &base]),
    );
    if let Some(stdout) = checks.ran(
        "lsf -R after delete",
        &rclone.run(&["lsf", "-R", "--files-only", &base]),
    ) {
        checks.eq("the tree is gone", stdout.trim(), "");
    }
    let not_empty = rclone.run(&["rmdir", &bucket_remote()]);
    checks.refused(
        "rmdir of a bucket with objects",
        &not_empty,
        "BucketNotEmpty",
    );
    checks.ran(
        "purge of the bucket",
        &rclone.run(&["purge", &bucket_remote()]),
    );
    if let Some(stdout) = checks.ran("lsd after purge", &rclone.run(&["lsd", "vh:"])) {
        checks.eq("the bucket is gone", stdout.trim(), "");
    }
}
