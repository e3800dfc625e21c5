//! The client scenario with s3cmd: path-style, plain HTTP, SigV4, the 100 MiB upload in 5 MiB
//! parts. s3cmd reads ranges only to resume a download (`get --continue`), and presigns with
//! SigV2 only (`signurl`); both are part of the run.

use std::fs;
use std::path::Path;

use crate::clients::support::{
    BIG_KEY, BIG_SIZE, COPY_KEY, Checks, EMPTY_KEY, META_BODY, META_CONTENT_TYPE, META_KEY,
    META_PAIRS, Run, SMALL_BODY, SMALL_KEY, TREE_LISTED_DIR, TREE_PREFIX, Tool, Workspace,
    fetch_presigned, listed_dir_keys, node_with_credential, path_arg, sha256_file, sha256_hex,
    small_text, tree_dirs, tree_keys,
};
use crate::common::TestNode;

const BUCKET: &str = "matrix-s3cmd";

/// Runs the whole scenario; the test fails with every check that did not hold.
pub fn scenario() {
    let (node, access_key, secret) = node_with_credential("s3cmd");
    let work = Workspace::new(&node);
    let s3cmd = S3cmd::new(&node, &access_key, &secret);
    let mut checks = Checks::new("s3cmd");

    let made = s3cmd.run(&["mb", &bucket_url()]);
    if checks.ran("mb", &made).is_none() {
        checks.finish();
        return;
    }
    checks.eq(
        "mb output",
        made.stdout.trim(),
        format!("Bucket '{}/' created", bucket_url()).as_str(),
    );
    if let Some(stdout) = checks.ran("ls of the buckets", &s3cmd.run(&["ls"])) {
        checks.check(
            "ls shows the bucket",
            stdout.lines().any(|l| l.ends_with(&bucket_url())),
            || stdout.clone(),
        );
    }

    small_objects(&s3cmd, &work, &mut checks);
    big_object(&s3cmd, &work, &mut checks);
    tree_listing(&s3cmd, &work, &mut checks);
    metadata_and_copy(&s3cmd, &work, &mut checks);
    presign(&s3cmd, &node, &mut checks);
    deletes(&s3cmd, &mut checks);
    checks.finish();
}

/// s3cmd with a config file of its own.
struct S3cmd {
    tool: Tool,
    config: String,
}

impl S3cmd {
    /// Writes `HOME/s3cfg`: the node as `host_base` and `host_bucket` (no `%(bucket)s`, so
    /// path-style requests), plain HTTP, SigV4.
    fn new(node: &TestNode, access_key: &str, secret: &str) -> Self {
        let tool = Tool::new("s3cmd", &node.root().join("s3cmd-home"));
        let config = tool.home().join("s3cfg");
        let host = format!("127.0.0.1:{}", node.port());
        fs::write(
            &config,
            format!(
                "[default]\naccess_key = {access_key}\nsecret_key = {secret}\n\
                 host_base = {host}\nhost_bucket = {host}\nuse_https = False\n\
                 signature_v2 = False\nbucket_location = us-east-1\n"
            ),
        )
        .expect("write the s3cmd config");
        Self {
            config: path_arg(&config),
            tool,
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut full = vec!["-c", self.config.as_str(), "--no-progress"];
        full.extend_from_slice(args);
        self.tool.run(&full)
    }

    /// `s3cmd info`, as `(MIME type, x-amz-meta-* lines)`.
    fn info(&self, checks: &mut Checks, key: &str) -> Option<(String, Vec<String>)> {
        let stdout = checks.ran(&format!("info {key}"), &self.run(&["info", &url(key)]))?;
        let mime = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("MIME type:"))
            .map(|m| m.trim().to_owned())
            .unwrap_or_default();
        let mut meta: Vec<String> = stdout
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("x-amz-meta-") && !l.starts_with("x-amz-meta-s3cmd-attrs"))
            .map(str::to_owned)
            .collect();
        meta.sort();
        Some((mime, meta))
    }
}

fn bucket_url() -> String {
    format!("s3://{BUCKET}")
}

fn url(key: &str) -> String {
    format!("s3://{BUCKET}/{key}")
}

/// The keys an `s3cmd ls` prints, in its order (`DIR` lines when `dirs`, object lines else).
fn listed(stdout: &str, dirs: bool) -> Vec<String> {
    let prefix = format!("{}/", bucket_url());
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("DIR") == dirs)
        .filter_map(|l| l.split_whitespace().last())
        .filter_map(|u| u.strip_prefix(&prefix))
        .map(str::to_owned)
        .collect()
}

fn small_objects(s3cmd: &S3cmd, work: &Workspace, checks: &mut Checks) {
    for (name, key, body) in [
        ("hello.txt", SMALL_KEY, SMALL_BODY),
        ("empty.bin", EMPTY_KEY, &b""[..]),
    ] {
        checks.ran(
            &format!("put {key}"),
            &s3cmd.run(&["put", &work.arg(name), &url(key)]),
        );
        let back = work.path(&format!("{name}.back"));
        checks.ran(
            &format!("get {key}"),
            &s3cmd.run(&["get", "--force", &url(key), &path_arg(&back)]),
        );
        checks.eq(
            &format!("{key} read back with get"),
            sha256_file(&back),
            Some(sha256_hex(body)),
        );
    }
    let missing = s3cmd.run(&["get", &url("small/none.txt"), &work.arg("none.back")]);
    checks.refused("get of a missing key", &missing, "does not exist");
}

fn big_object(s3cmd: &S3cmd, work: &Workspace, checks: &mut Checks) {
    // `--progress` (off when stdout is not a terminal) makes s3cmd print a line per part.
    let up = s3cmd.run(&[
        "--progress",
        "put",
        "--multipart-chunk-size-mb=5",
        &path_arg(&work.big),
        &url(BIG_KEY),
    ]);
    if let Some(stdout) = checks.ran("put of 100 MiB in 5 MiB parts", &up) {
        let parts = stdout
            .split(['\n', '\r'])
            .filter(|l| l.starts_with("upload: ") && l.contains("[part "))
            .count();
        checks.eq(
            "put of 100 MiB reports 20 parts",
            parts,
            BIG_SIZE / (5 << 20),
        );
    }
    if let Some(stdout) = checks.ran("info of 100 MiB", &s3cmd.run(&["info", &url(BIG_KEY)])) {
        checks.check(
            "info shows 100 MiB",
            stdout.contains(&format!("File size: {BIG_SIZE}")),
            || stdout.clone(),
        );
    }
    let back = work.path("big.back");
    checks.ran(
        "get of 100 MiB",
        &s3cmd.run(&["get", "--force", &url(BIG_KEY), &path_arg(&back)]),
    );
    checks.eq(
        "100 MiB read back with get",
        sha256_file(&back),
        Some(work.big_sha256.clone()),
    );

    // `get --continue` asks for the rest of a partial download with `Range: bytes=N-`.
    let partial = work.path("big.partial");
    copy_prefix(&work.big, &partial, BIG_SIZE as u64 - 100);
    checks.ran(
        "get --continue of the last 100 bytes",
        &s3cmd.run(&["get", "--continue", &url(BIG_KEY), &path_arg(&partial)]),
    );
    checks.eq(
        "100 MiB completed with a ranged read",
        sha256_file(&partial),
        Some(work.big_sha256.clone()),
    );
    let partial = work.path("hello.partial");
    fs::write(&partial, &SMALL_BODY[..5]).expect("write a partial download");
    checks.ran(
        "get --continue of a small object",
        &s3cmd.run(&["get", "--continue", &url(SMALL_KEY), &path_arg(&partial)]),
    );
    checks.eq(
        "small object completed with a ranged read",
        fs::read(&partial).ok(),
        Some(SMALL_BODY.to_vec()),
    );
}

/// Writes the first `len` bytes of `from` to `to`.
fn copy_prefix(from: &Path, to: &Path, len: u64) {
    let mut data = fs::read(from).expect("read the large file");
    data.truncate(usize::try_from(len).expect("the length fits in memory"));
    fs::write(to, data).expect("write a partial download");
}

fn tree_listing(s3cmd: &S3cmd, work: &Workspace, checks: &mut Checks) {
    let tree = work.tree("tree");
    let source = format!("{}/", path_arg(&tree));
    let up = s3cmd.run(&["put", "--recursive", &source, &url(TREE_PREFIX)]);
    if let Some(stdout) = checks.ran("put --recursive of 2,500 files", &up) {
        let uploads = stdout.lines().filter(|l| l.starts_with("upload: ")).count();
        checks.eq(
            "put --recursive reports 2,500 uploads",
            uploads,
            tree_keys().len(),
        );
    }
    if let Some(stdout) = checks.ran("ls of the tree", &s3cmd.run(&["ls", &url(TREE_PREFIX)])) {
        checks.eq(
            "ls shows the directories",
            listed(&stdout, true),
            tree_dirs(),
        );
        checks.eq(
            "ls shows no object at the top",
            listed(&stdout, false),
            Vec::new(),
        );
    }
    if let Some(stdout) = checks.ran(
        "ls of one directory",
        &s3cmd.run(&["ls", &url(TREE_LISTED_DIR)]),
    ) {
        checks.eq(
            "ls of one directory shows its keys",
            listed(&stdout, false),
            listed_dir_keys(),
        );
        checks.eq(
            "ls of one directory shows no directory",
            listed(&stdout, true),
            Vec::new(),
        );
    }
    if let Some(stdout) = checks.ran(
        "ls --recursive of the tree",
        &s3cmd.run(&["ls", "--recursive", &url(TREE_PREFIX)]),
    ) {
        checks.eq(
            "ls --recursive lists every key once, in order",
            listed(&stdout, false),
            tree_keys(),
        );
    }
}

fn metadata_and_copy(s3cmd: &S3cmd, work: &Workspace, checks: &mut Checks) {
    let mut args = vec!["put".to_owned(), format!("--mime-type={META_CONTENT_TYPE}")];
    args.extend(
        META_PAIRS
            .iter()
            .map(|(k, v)| format!("--add-header=x-amz-meta-{k}:{v}")),
    );
    args.extend([work.arg("doc.md"), url(META_KEY)]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    checks.ran("put with --mime-type and --add-header", &s3cmd.run(&args));
    let copied = s3cmd.run(&["cp", &url(META_KEY), &url(COPY_KEY)]);
    if let Some(stdout) = checks.ran("cp (CopyObject)", &copied) {
        checks.check(
            "cp reports the remote copy",
            stdout.contains("remote copy: "),
            || stdout.clone(),
        );
    }
    let expected_meta: Vec<String> = META_PAIRS
        .iter()
        .map(|(k, v)| format!("x-amz-meta-{k}: {v}"))
        .collect();
    for key in [META_KEY, COPY_KEY] {
        if let Some((mime, meta)) = s3cmd.info(checks, key) {
            checks.eq(
                &format!("{key} MIME type"),
                mime.as_str(),
                META_CONTENT_TYPE,
            );
            checks.eq(&format!("{key} metadata"), meta, expected_meta.clone());
        }
        let back = work.path("doc.back");
        checks.ran(
            &format!("get {key}"),
            &s3cmd.run(&["get", "--force", &url(key), &path_arg(&back)]),
        );
        checks.eq(
            &format!("{key} content"),
            fs::read(&back).ok(),
            Some(META_BODY.to_vec()),
        );
    }
}

fn presign(s3cmd: &S3cmd, node: &TestNode, checks: &mut Checks) {
    let signed = s3cmd.run(&["signurl", &url(SMALL_KEY), "+300"]);
    let Some(url) = checks.ran("signurl (SigV2)", &signed) else {
        return;
    };
    match fetch_presigned(node, &url) {
        Ok((status, body)) => {
            checks.eq("GET of the signurl URL: status", status, 200);
            checks.eq("GET of the signurl URL: body", body, small_text());
        }
        Err(problem) => checks.fail("signurl", problem),
    }
}

fn deletes(s3cmd: &S3cmd, checks: &mut Checks) {
    if let Some(stdout) = checks.ran("del of one object", &s3cmd.run(&["del", &url(SMALL_KEY)])) {
        checks.eq(
            "del output",
            stdout.trim(),
            format!("delete: '{}'", url(SMALL_KEY)).as_str(),
        );
    }
    let info = s3cmd.run(&["info", &url(SMALL_KEY)]);
    checks.refused("info after del", &info, "404");

    // `del --recursive` deletes with DeleteObjects, up to 1,000 keys a request.
    let batch = s3cmd.run(&["del", "--recursive", "--force", &url(TREE_PREFIX)]);
    if let Some(stdout) = checks.ran("del --recursive of the tree (DeleteObjects)", &batch) {
        let deleted = stdout.lines().filter(|l| l.starts_with("delete: ")).count();
        checks.eq(
            "del --recursive reports 2,500 deletions",
            deleted,
            tree_keys().len(),
        );
    }
    if let Some(stdout) = checks.ran(
        "ls --recursive after del",
        &s3cmd.run(&["ls", "--recursive", &url(TREE_PREFIX)]),
    ) {
        checks.eq("the tree is gone", listed(&stdout, false), Vec::new());
    }

    let not_empty = s3cmd.run(&["rb", &bucket_url()]);
    checks.refused("rb of a bucket with objects", &not_empty, "BucketNotEmpty");
    checks.ran(
        "del --recursive of the rest",
        &s3cmd.run(&["del", "--recursive", "--force", &bucket_url()]),
    );
    let removed = s3cmd.run(&["rb", &bucket_url()]);
    if let Some(stdout) = checks.ran("rb", &removed) {
        checks.eq(
            "rb output",
            stdout.trim(),
            format!("Bucket '{}/' removed", bucket_url()).as_str(),
        );
    }
    if let Some(stdout) = checks.ran("ls of the buckets after rb", &s3cmd.run(&["ls"])) {
        checks.check(
            "the bucket is gone",
            !stdout.contains(&bucket_url()),
            || stdout.clone(),
        );
    }
}
