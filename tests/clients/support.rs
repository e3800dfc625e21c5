//! What every client scenario shares: the objects it writes (two small ones, one of 100 MiB and
//! a tree of 2,500 keys), a check list that keeps going after a failed check so one run reports
//! everything a client got wrong, and a runner for client programs cut off from the machine's
//! own S3 settings.

#![allow(
    dead_code,
    reason = "tests/rust_sdk.rs includes this module too and uses only part of it"
)]

use std::fmt::Debug;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::common::{Payload, TestNode, random_bytes};

/// The size of the large object: past every client's multipart threshold.
pub const BIG_SIZE: usize = 100 << 20;
/// The content of the small object.
pub const SMALL_BODY: &[u8] = b"hello from the vaulthalla client matrix\n";
/// The key of the small object.
pub const SMALL_KEY: &str = "small/hello.txt";
/// The key of the empty object.
pub const EMPTY_KEY: &str = "small/empty.bin";
/// The key of the large object.
pub const BIG_KEY: &str = "big/big.bin";
/// The key of the object carrying user metadata and a content type.
pub const META_KEY: &str = "meta/doc.md";
/// Where the metadata object is copied to, server side.
pub const COPY_KEY: &str = "copy/doc.md";
/// The content of the metadata object.
pub const META_BODY: &[u8] = b"# A document with metadata\n";
/// The content type the metadata object is stored with.
pub const META_CONTENT_TYPE: &str = "text/markdown";
/// The user metadata of the metadata object, names in lower case as S3 returns them.
pub const META_PAIRS: [(&str, &str); 2] = [("color", "blue"), ("shape", "round")];
/// The prefix under which the 2,500-key tree lives.
pub const TREE_PREFIX: &str = "tree/";
/// Directories and files per directory of the tree: `tree/d{0..49}/f{0..49}`.
pub const TREE_FANOUT: usize = 50;
/// The tree directory whose listing is checked key by key.
pub const TREE_LISTED_DIR: &str = "tree/d7/";

/// Ranges read from the large object, `(first, last)` inclusive: the first byte, across the
/// gateway's 64 KiB segment boundary, across the 5 and 8 MiB part boundaries of the clients'
/// multipart uploads, and the last 100 bytes.
pub const BIG_RANGES: [(u64, u64); 5] = [
    (0, 0),
    (65_530, 65_545),
    (5_242_870, 5_242_889),
    (8_388_000, 8_389_000),
    (BIG_SIZE as u64 - 100, BIG_SIZE as u64 - 1),
];

/// Every key of the tree, in S3 order (by UTF-8 bytes: `d1/` sorts before `d10/`).
pub fn tree_keys() -> Vec<String> {
    let mut keys: Vec<String> = (0..TREE_FANOUT)
        .flat_map(|d| (0..TREE_FANOUT).map(move |f| format!("{TREE_PREFIX}d{d}/f{f}")))
        .collect();
    keys.sort();
    keys
}

/// The common prefixes at the top of the tree, in S3 order.
pub fn tree_dirs() -> Vec<String> {
    let mut dirs: Vec<String> = (0..TREE_FANOUT)
        .map(|d| format!("{TREE_PREFIX}d{d}/"))
        .collect();
    dirs.sort();
    dirs
}

/// The keys directly under [`TREE_LISTED_DIR`], in S3 order.
pub fn listed_dir_keys() -> Vec<String> {
    tree_keys()
        .into_iter()
        .filter(|key| key.starts_with(TREE_LISTED_DIR))
        .collect()
}

/// Writes the tree under `root` (`root/d0/f0` ... `root/d49/f49`); each file holds its own key,
/// so a file that lands under the wrong name shows up in a byte comparison.
pub fn write_tree(root: &Path) {
    for key in tree_keys() {
        let relative = key
            .strip_prefix(TREE_PREFIX)
            .expect("tree keys have the prefix");
        let file = root.join(relative);
        fs::create_dir_all(file.parent().expect("tree files are in directories"))
            .expect("create a tree directory");
        fs::write(&file, key.as_bytes()).expect("write a tree file");
    }
}

/// Local files a client uploads and downloads, in a directory of the node's own.
pub struct Workspace {
    /// The directory.
    pub dir: PathBuf,
    /// The large file, [`BIG_SIZE`] random bytes.
    pub big: PathBuf,
    /// The SHA-256 of the large file.
    pub big_sha256: String,
    /// The first bytes of the large file, for checking ranged reads.
    big_ranges: Vec<Vec<u8>>,
}

impl Workspace {
    /// Creates `NODE_DIR/work` with the small, empty, metadata and large files; the tree is
    /// written only by the clients that upload it from disk ([`Workspace::tree`]).
    pub fn new(node: &TestNode) -> Self {
        let dir = node.root().join("work");
        fs::create_dir_all(&dir).expect("create the work directory");
        fs::write(dir.join("hello.txt"), SMALL_BODY).expect("write the small file");
        fs::write(dir.join("empty.bin"), b"").expect("write the empty file");
        fs::write(dir.join("doc.md"), META_BODY).expect("write the metadata file");
        let big_data = random_bytes(BIG_SIZE);
        let big = dir.join("big.bin");
        fs::write(&big, &big_data).expect("write the large file");
        let big_ranges = BIG_RANGES
            .iter()
            .map(|&(first, last)| big_data[first as usize..=last as usize].to_vec())
            .collect();
        Self {
            big_sha256: sha256_hex(&big_data),
            dir,
            big,
            big_ranges,
        }
    }

    /// A path in the work directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The work directory's path as a `&str`, joined with `name`.
    pub fn arg(&self, name: &str) -> String {
        path_arg(&self.path(name))
    }

    /// The bytes the `index`th entry of [`BIG_RANGES`] must read back.
    pub fn big_range(&self, index: usize) -> &[u8] {
        &self.big_ranges[index]
    }

    /// Writes the tree to `work/NAME` and returns that directory.
    pub fn tree(&self, name: &str) -> PathBuf {
        let root = self.path(name);
        write_tree(&root);
        root
    }
}

/// A path as a command-line argument.
pub fn path_arg(path: &Path) -> String {
    path.to_str().expect("temporary paths are UTF-8").to_owned()
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Lower-case hex SHA-256 of a file, read in pieces; `None` when it cannot be read.
pub fn sha256_file(path: &Path) -> Option<String> {
    let mut file = fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            return Some(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// A node with one gateway credential; returns `(node, access key, secret)`.
pub fn node_with_credential(client: &str) -> (TestNode, String, String) {
    let node = TestNode::start();
    let (access_key, secret) = node.create_credential(client);
    (node, access_key, secret)
}

/// Fetches a presigned URL on `node` with a bare GET (no headers of its own, as a browser
/// would); returns the status and the body as text (the objects fetched so are text, and an
/// error body reads better so).
pub fn fetch_presigned(node: &TestNode, url: &str) -> Result<(u16, String), String> {
    let path = presigned_path(node, url)?;
    let response = node.request("GET", &path).payload(Payload::Omitted).send();
    Ok((response.status, response.text()))
}

/// [`SMALL_BODY`] as text.
pub fn small_text() -> String {
    String::from_utf8_lossy(SMALL_BODY).into_owned()
}

/// The path and query of a presigned URL, which must point at `node`.
pub fn presigned_path(node: &TestNode, url: &str) -> Result<String, String> {
    url.trim()
        .strip_prefix(&node.endpoint())
        .map(str::to_owned)
        .ok_or_else(|| format!("presigned URL {url:?} is not on {}", node.endpoint()))
}

/// The checks of one client's scenario. A failed check is recorded and the scenario goes on,
/// so one run lists everything the client got wrong; [`Checks::finish`] fails the test.
pub struct Checks {
    client: String,
    passed: usize,
    failures: Vec<String>,
}

impl Checks {
    /// An empty check list for `client`.
    pub fn new(client: &str) -> Self {
        Self {
            client: client.to_owned(),
            passed: 0,
            failures: Vec::new(),
        }
    }

    /// Records `what` as passed when `ok`, else as failed with `detail`. Returns `ok`.
    pub fn check(&mut self, what: &str, ok: bool, detail: impl FnOnce() -> String) -> bool {
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(format!("{what}: {}", detail()));
        }
        ok
    }

    /// Records whether `actual` equals `expected`.
    pub fn eq<T: PartialEq + Debug>(&mut self, what: &str, actual: T, expected: T) {
        let ok = actual == expected;
        self.check(what, ok, move || {
            format!("expected {expected:?}, the client reported {actual:?}")
        });
    }

    /// Records a failure.
    pub fn fail(&mut self, what: &str, detail: impl Into<String>) {
        self.failures.push(format!("{what}: {}", detail.into()));
    }

    /// Records whether a command succeeded; returns its stdout when it did.
    pub fn ran(&mut self, what: &str, run: &Run) -> Option<String> {
        self.check(what, run.success, || run.describe())
            .then(|| run.stdout.clone())
    }

    /// Records whether a command failed, as the scenario expects, with `needle` in its output
    /// (stderr or stdout: the error code or message the client prints).
    pub fn refused(&mut self, what: &str, run: &Run, needle: &str) -> bool {
        let ok = !run.success && (run.stderr.contains(needle) || run.stdout.contains(needle));
        self.check(what, ok, || {
            format!(
                "expected a failure mentioning {needle:?}; {}",
                run.describe()
            )
        })
    }

    /// Fails the test with every failed check, if there is one.
    ///
    /// # Panics
    /// When a check failed.
    pub fn finish(self) {
        eprintln!("{}: {} checks passed", self.client, self.passed);
        assert!(
            self.failures.is_empty(),
            "{}: {} of {} checks failed:\n- {}",
            self.client,
            self.failures.len(),
            self.failures.len() + self.passed,
            self.failures.join("\n- ")
        );
    }
}

/// What one client command did.
#[derive(Debug)]
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    /// Whether it exited with 0.
    pub success: bool,
    /// Its exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// Standard output, as text (invalid UTF-8 replaced).
    pub stdout: String,
    /// Standard output, as bytes.
    pub stdout_bytes: Vec<u8>,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Runs `command` and waits for it.
    ///
    /// # Panics
    /// When the program cannot be started.
    pub fn from_command(command: &mut Command) -> Self {
        let line = format!("{command:?}");
        let output = command
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {line}: {e}"));
        Self {
            command: line,
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stdout_bytes: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The command, its exit code and its output, cut to a readable length.
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited with {:?}\nstdout: {}\nstderr: {}",
            self.command,
            self.code,
            clip(&self.stdout),
            clip(&self.stderr)
        )
    }

    /// The non-empty lines of stdout, trimmed.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect()
    }
}

/// The first and last 2,000 characters of a long text.
fn clip(text: &str) -> String {
    const KEEP: usize = 2_000;
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 2 * KEEP {
        return text.to_owned();
    }
    let head: String = chars[..KEEP].iter().collect();
    let tail: String = chars[chars.len() - KEEP..].iter().collect();
    format!(
        "{head}\n[... {} characters ...]\n{tail}",
        chars.len() - 2 * KEEP
    )
}

/// A client program run with a home directory of its own: no `AWS_*`, `BOTO*`, `RCLONE_*`,
/// `S3CMD*`, `MINIO_*`, `PYTHON*`, `*_CA_BUNDLE` or proxy variable is inherited, instance
/// metadata is off, and `HOME` and the working directory are the given directory.
#[derive(Clone, Debug)]
pub struct Tool {
    program: String,
    home: PathBuf,
    envs: Vec<(String, String)>,
}

impl Tool {
    /// `program`, with `home` (created) as its home and working directory.
    pub fn new(program: &str, home: &Path) -> Self {
        fs::create_dir_all(home).expect("create the client's home directory");
        Self {
            program: program.to_owned(),
            home: home.to_owned(),
            envs: Vec::new(),
        }
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Sets an environment variable for every run.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.envs.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The command, ready for arguments.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy().to_ascii_uppercase();
            let inherited_setting = ["AWS_", "BOTO", "RCLONE_", "S3CMD", "MINIO_", "PYTHON"]
                .iter()
                .any(|prefix| text.starts_with(prefix))
                || text.ends_with("_PROXY")
                || text.ends_with("_CA_BUNDLE");
            if inherited_setting {
                command.env_remove(&name);
            }
        }
        command
            .current_dir(&self.home)
            .env("HOME", &self.home)
            .env("AWS_CONFIG_FILE", self.home.join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.home.join("aws-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .stdin(Stdio::null());
        for (name, value) in &self.envs {
            command.env(name, value);
        }
        command
    }

    /// Runs the program with `args` and waits for it.
    pub fn run(&self, args: &[&str]) -> Run {
        let output = self.command().args(args).output().unwrap_or_else(|e| {
            panic!(
                "cannot run `{}` ({e}); .ci/run installs every client the suite drives",
                self.program
            )
        });
        Run {
            command: format!("{} {}", self.program, args.join(" ")),
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stdout_bytes: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}
