//! What the mount tests share: a node with its mount (or a skip when the machine has no FUSE),
//! vaults the mount may write, S3 access through the AWS CLI, raw requests and boto3, errno
//! checks, commands that must succeed, and snapshots of directory trees to compare a mount with
//! a local directory.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use md5::{Digest as _, Md5};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use rustix::io::Errno;
use serde_json::Value;
use sha2::Sha256;

use crate::common::{Aws, RawRequest, RawResponse, TestNode, wait_for};

/// How long a new vault may take to show up in the top-level directory of the mount.
const VAULT_APPEAR_TIMEOUT: Duration = Duration::from_secs(10);

/// A node with its mount up, or `None` after saying why `test` is skipped: only a machine
/// without `/dev/fuse` skips.
pub fn mounted_node(test: &str) -> Option<TestNode> {
    if !Path::new("/dev/fuse").exists() {
        eprintln!(
            "skipping {test}: /dev/fuse is absent, so nothing can be mounted here (load the fuse \
             module, or give the container --device /dev/fuse)"
        );
        return None;
    }
    Some(TestNode::start_with_mount())
}

/// Creates bucket `name` with `--no-api-exclusive`, so the mount may write its vault; returns
/// the vault's directory in the mount once it is there.
pub fn writable_vault(node: &TestNode, name: &str) -> PathBuf {
    let bucket = node.create_bucket_with_flags(name, &["--no-api-exclusive"]);
    assert_eq!(
        bucket["api_exclusive"], false,
        "`bucket create-local {name} --no-api-exclusive` made an API-exclusive bucket: {bucket}"
    );
    vault_dir(node, name)
}

/// The directory of vault `name` in the mount, once the mount shows it.
pub fn vault_dir(node: &TestNode, name: &str) -> PathBuf {
    let dir = node.vault_path(name);
    wait_for(
        VAULT_APPEAR_TIMEOUT,
        &format!("vault {name} to appear in the mount as {}", dir.display()),
        || dir.is_dir().then_some(()),
        || {
            format!(
                "top level of the mount: {:?}\n{}",
                names_in(&node.mount_point()),
                node.log_report()
            )
        },
    );
    dir
}

/// A local directory (outside the mount) named `name` in the node's directory, created empty.
pub fn local_dir(node: &TestNode, name: &str) -> PathBuf {
    let dir = node.root().join("local").join(name);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// The names in `dir`, sorted; the error text when it cannot be listed.
pub fn names_in(dir: &Path) -> Result<Vec<String>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("read_dir {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("read_dir {}: {e}", dir.display()))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// The names in `dir`, sorted; panics naming `dir` when it cannot be listed.
#[track_caller]
pub fn list(dir: &Path) -> Vec<String> {
    names_in(dir).unwrap_or_else(|e| panic!("{e}"))
}

/// `path` as a command-line argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Reads `path` whole, panicking with the path and the error.
#[track_caller]
pub fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Writes `data` to `path`, panicking with the path and the error.
#[track_caller]
pub fn write(path: &Path, data: &[u8]) {
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// `stat` of `path` (not following a final symlink), panicking with the path and the error.
#[track_caller]
pub fn lstat(path: &Path) -> fs::Metadata {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
}

/// The inode number of `path` (not following a final symlink).
#[track_caller]
pub fn ino(path: &Path) -> u64 {
    lstat(path).ino()
}

/// `len` bytes that depend only on `seed`: the same call always gives the same content.
pub fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// The seed of a randomized test: `var` from the environment when set, else a fresh one.
/// Printed either way, so a failure can be replayed.
pub fn test_seed(var: &str) -> u64 {
    let seed = match std::env::var(var) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|e| panic!("{var}={text:?} is not a u64 seed: {e}")),
        Err(_) => rand::random(),
    };
    eprintln!("seed {seed} (replay with {var}={seed})");
    seed
}

/// MD5 in lower-case hex, as S3 ETags of single-part objects carry it.
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// SHA-256 in lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The errno of a failed call.
pub fn errno_of(error: &io::Error) -> Option<Errno> {
    Errno::from_io_error(error)
}

/// Asserts that `result` failed with `expected`; `what` names the call.
#[track_caller]
pub fn assert_errno<T: Debug>(result: io::Result<T>, expected: Errno, what: &str) {
    match result {
        Ok(value) => panic!("{what}: succeeded with {value:?}, expected {expected}"),
        Err(error) => assert_eq!(
            errno_of(&error),
            Some(expected),
            "{what}: failed with {error}, expected {expected}"
        ),
    }
}

/// Asserts that `result` failed with `expected`, for rustix calls.
#[track_caller]
pub fn assert_rustix_errno<T: Debug>(result: rustix::io::Result<T>, expected: Errno, what: &str) {
    match result {
        Ok(value) => panic!("{what}: succeeded with {value:?}, expected {expected}"),
        Err(errno) => assert_eq!(
            errno, expected,
            "{what}: failed with {errno}, expected {expected}"
        ),
    }
}

/// Asserts that nothing exists at `path` (not even a dangling symlink).
#[track_caller]
pub fn assert_absent(path: &Path, what: &str) {
    assert_errno(fs::symlink_metadata(path), Errno::NOENT, what);
}

/// Runs `command`, asserting it exits 0; returns stdout. `what` names it in a failure, which
/// shows the exit status, stdout and stderr.
#[track_caller]
pub fn run_ok(command: &mut Command, what: &str) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
    checked(&output, what)
}

/// Runs `command` with `input` on its standard input, asserting it exits 0; returns stdout.
#[track_caller]
pub fn run_with_input(command: &mut Command, input: &[u8], what: &str) -> String {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // A program that fails early stops reading; its exit status tells why, not the EPIPE here.
    let _ = stdin.write_all(input);
    drop(stdin);
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{what}: wait for {command:?}: {e}"));
    checked(&output, what)
}

#[track_caller]
fn checked(output: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what}: exited with {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// One entry of a directory tree, as a user comparing two trees sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A directory.
    Dir,
    /// A regular file: its size and content hash.
    File {
        /// `st_size`.
        len: u64,
        /// SHA-256 of the content read back.
        sha256: String,
    },
    /// A symbolic link and its target, not followed.
    Symlink(PathBuf),
    /// Anything else (FIFO, socket, device), by its `Debug` file type.
    Other(String),
}

/// Every entry under a root, by path relative to it (`a/b/c`), the root itself left out.
pub type Tree = BTreeMap<String, Entry>;

/// Walks `root` without following symlinks, reading every file; the error names the path that
/// failed.
pub fn snapshot(root: &Path) -> Result<Tree, String> {
    let mut tree = Tree::new();
    walk(root, "", &mut tree)?;
    Ok(tree)
}

fn walk(dir: &Path, prefix: &str, tree: &mut Tree) -> Result<(), String> {
    for name in names_in(dir)? {
        let path = dir.join(&name);
        let relative = format!("{prefix}{name}");
        let meta =
            fs::symlink_metadata(&path).map_err(|e| format!("lstat {}: {e}", path.display()))?;
        let kind = meta.file_type();
        let entry = if kind.is_dir() {
            walk(&path, &format!("{relative}/"), tree)?;
            Entry::Dir
        } else if kind.is_symlink() {
            let target =
                fs::read_link(&path).map_err(|e| format!("readlink {}: {e}", path.display()))?;
            Entry::Symlink(target)
        } else if kind.is_file() {
            let data = fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
            if data.len() as u64 != meta.len() {
                return Err(format!(
                    "{}: stat says {} bytes, reading gave {}",
                    path.display(),
                    meta.len(),
                    data.len()
                ));
            }
            Entry::File {
                len: meta.len(),
                sha256: sha256_hex(&data),
            }
        } else {
            let kind_name = if kind.is_fifo() { "fifo" } else { "special" };
            Entry::Other(kind_name.to_owned())
        };
        tree.insert(relative, entry);
    }
    Ok(())
}

/// How `actual` differs from `expected`, one line per path; empty when they are the same.
pub fn tree_differences(actual: &Tree, expected: &Tree) -> Vec<String> {
    let mut lines = Vec::new();
    for (path, want) in expected {
        match actual.get(path) {
            None => lines.push(format!("missing {path} (expected {want:?})")),
            Some(got) if got != want => {
                lines.push(format!("{path}: found {got:?}, expected {want:?}"));
            }
            Some(_) => {}
        }
    }
    for (path, got) in actual {
        if !expected.contains_key(path) {
            lines.push(format!("unexpected {path} ({got:?})"));
        }
    }
    lines
}

/// Asserts that the trees under `actual` and `expected` hold the same names, kinds, symlink
/// targets, sizes and contents.
#[track_caller]
pub fn assert_same_tree(actual: &Path, expected: &Path, what: &str) {
    let got = snapshot(actual).unwrap_or_else(|e| panic!("{what}: {e}"));
    let want = snapshot(expected).unwrap_or_else(|e| panic!("{what}: {e}"));
    let differences = tree_differences(&got, &want);
    assert!(
        differences.is_empty(),
        "{what}: {} differs from {} in {} places:\n{}",
        actual.display(),
        expected.display(),
        differences.len(),
        differences.join("\n")
    );
}

/// A listing of a bucket: keys and common prefixes, in the order the gateway returned them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// `Contents[].Key`.
    pub keys: Vec<String>,
    /// `CommonPrefixes[].Prefix`.
    pub prefixes: Vec<String>,
}

/// S3 access to a node with a credential of its own: the AWS CLI for what users run, raw
/// signed requests where a byte-exact body is all that matters.
pub struct S3 {
    /// The AWS CLI, configured with the credential.
    pub aws: Aws,
    /// The credential's access key id.
    pub access_key: String,
    /// Its secret.
    pub secret: String,
    port: u16,
    endpoint: String,
    home: PathBuf,
}

impl S3 {
    /// Creates a credential on `node` and configures the AWS CLI with it.
    pub fn new(node: &TestNode) -> Self {
        let (access_key, secret) = node.create_credential("mount-tests");
        let aws = node.aws();
        aws.configure(&access_key, &secret);
        Self {
            aws,
            access_key,
            secret,
            port: node.port(),
            endpoint: node.endpoint(),
            home: node.root().join("python-home"),
        }
    }

    /// `aws s3api list-objects-v2` of `bucket` under `prefix`, with `delimiter` when given; the
    /// CLI pages through the whole listing.
    pub fn listing(&self, bucket: &str, prefix: &str, delimiter: Option<&str>) -> Listing {
        let mut args = vec![
            "s3api",
            "list-objects-v2",
            "--bucket",
            bucket,
            "--prefix",
            prefix,
        ];
        if let Some(delimiter) = delimiter {
            args.extend(["--delimiter", delimiter]);
        }
        let listing = self.aws.json(&args);
        let strings = |field: &str, name: &str| -> Vec<String> {
            listing[field]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|item| {
                            item[name]
                                .as_str()
                                .unwrap_or_else(|| panic!("{field}[].{name} in {listing}"))
                                .to_owned()
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        Listing {
            keys: strings("Contents", "Key"),
            prefixes: strings("CommonPrefixes", "Prefix"),
        }
    }

    /// Every key of `bucket`.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.listing(bucket, "", None).keys
    }

    /// Every key of `bucket` but the `dir/` markers: a directory made in the mount is explicit
    /// and listed as a zero-byte `dir/` object (see `vault/src/meta/entries.rs`).
    pub fn file_keys(&self, bucket: &str) -> Vec<String> {
        let mut keys = self.keys(bucket);
        keys.retain(|key| !key.ends_with('/'));
        keys
    }

    /// `aws s3api head-object`; the parsed answer.
    pub fn head(&self, bucket: &str, key: &str) -> Value {
        self.aws
            .json(&["s3api", "head-object", "--bucket", bucket, "--key", key])
    }

    /// The ETag of an object without its quotes.
    pub fn etag(&self, bucket: &str, key: &str) -> String {
        let head = self.head(bucket, key);
        head["ETag"]
            .as_str()
            .unwrap_or_else(|| panic!("head-object {bucket}/{key} has no ETag: {head}"))
            .trim_matches('"')
            .to_owned()
    }

    /// `aws s3 cp FILE s3://bucket/key`.
    pub fn put_file(&self, bucket: &str, key: &str, file: &Path) {
        self.aws.run_ok(&[
            "s3",
            "cp",
            "--no-progress",
            arg(file),
            &format!("s3://{bucket}/{key}"),
        ]);
    }

    /// `aws s3 rm s3://bucket/key`.
    pub fn delete(&self, bucket: &str, key: &str) {
        self.aws
            .run_ok(&["s3", "rm", &format!("s3://{bucket}/{key}")]);
    }

    /// A signed GET of `bucket/key` (keys of `[A-Za-z0-9._/-]` only), sent raw.
    pub fn get(&self, bucket: &str, key: &str) -> RawResponse {
        RawRequest::new(self.port, "GET", &format!("/{bucket}/{key}"))
            .creds(&self.access_key, &self.secret)
            .send()
    }

    /// The body of `bucket/key`, asserting a 200.
    #[track_caller]
    pub fn get_ok(&self, bucket: &str, key: &str) -> Vec<u8> {
        let response = self.get(bucket, key);
        assert_eq!(
            response.status,
            200,
            "GET {bucket}/{key}: {}",
            response.text()
        );
        response.body
    }

    /// Runs one boto3 call (`list`, `get`, `put`, `delete`; see [`BOTO3_PROGRAM`]) and returns
    /// the JSON it prints.
    pub fn boto3(&self, args: &[&str]) -> Value {
        let mut command = Command::new("python3");
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy().to_ascii_uppercase();
            if text.starts_with("AWS_") || text.starts_with("BOTO") || text.ends_with("_PROXY") {
                command.env_remove(&name);
            }
        }
        fs::create_dir_all(&self.home).expect("create the python home");
        command
            .current_dir(&self.home)
            .env("HOME", &self.home)
            .env("AWS_CONFIG_FILE", self.home.join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.home.join("aws-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("VH_ENDPOINT", &self.endpoint)
            .env("VH_ACCESS_KEY", &self.access_key)
            .env("VH_SECRET_KEY", &self.secret)
            .args(["-c", BOTO3_PROGRAM])
            .args(args);
        let stdout = run_ok(&mut command, &format!("boto3 {args:?}"));
        let last = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("boto3 {args:?} printed no JSON ({e}): {stdout}"))
    }
}

/// One boto3 call per run: `list BUCKET`, `get BUCKET KEY`, `put BUCKET KEY FILE`,
/// `delete BUCKET KEY`; prints a JSON object. The client is built the way
/// `tests/clients/boto3_scenario.py` builds it: path-style, no retries.
pub const BOTO3_PROGRAM: &str = r#"
import hashlib, json, os, sys
import boto3
from botocore.config import Config

s3 = boto3.session.Session().client(
    "s3",
    endpoint_url=os.environ["VH_ENDPOINT"],
    aws_access_key_id=os.environ["VH_ACCESS_KEY"],
    aws_secret_access_key=os.environ["VH_SECRET_KEY"],
    region_name="us-east-1",
    config=Config(s3={"addressing_style": "path"},
                  retries={"mode": "standard", "total_max_attempts": 1}),
)
op, bucket = sys.argv[1], sys.argv[2]
if op == "list":
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [item["Key"] for item in page.get("Contents", [])]
    result = {"keys": keys}
elif op == "get":
    answer = s3.get_object(Bucket=bucket, Key=sys.argv[3])
    data = answer["Body"].read()
    result = {"md5": hashlib.md5(data).hexdigest(), "length": len(data),
              "etag": answer["ETag"].strip('"')}
elif op == "put":
    with open(sys.argv[4], "rb") as body:
        answer = s3.put_object(Bucket=bucket, Key=sys.argv[3], Body=body.read())
    result = {"etag": answer["ETag"].strip('"')}
elif op == "delete":
    s3.delete_object(Bucket=bucket, Key=sys.argv[3])
    result = {}
else:
    sys.exit("unknown operation " + op)
print(json.dumps(result))
"#;
