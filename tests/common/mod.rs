//! The end-to-end harness: a real `vaulthalla` daemon on loopback with its own data directory,
//! `vh` pointed at its control socket, the AWS CLI isolated from the machine's AWS settings, and
//! a small hand-written SigV4 HTTP client that can send requests no well-behaved client would.
//!
//! Every node gets a fresh temporary directory holding its config, data, control socket, log and
//! AWS CLI home, and the mount point `mnt` when the test asks for the FUSE mount (no node mounts
//! otherwise). On a test failure the node's log is printed and the directory is kept, so what
//! the daemon did can be read afterwards; the panic messages name the directory.

#![allow(
    dead_code,
    reason = "each test crate includes this module and uses a different part of it"
)]

use std::fmt::Write as _;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use time::OffsetDateTime;

/// How long a node may take to answer `vh status` and accept TCP connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to exit after SIGTERM (its S3 shutdown grace is 10 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the FUSE mount may take to answer once the node is ready.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the mount may linger after the node exited cleanly.
const UNMOUNT_GRACE: Duration = Duration::from_secs(5);
/// The pause between two readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// How long the raw client waits for an answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// The region every client here signs for.
pub const REGION: &str = "us-east-1";

/// The `vaulthalla` binary under test.
pub fn vaulthalla_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vaulthalla"))
}

/// The `vh` binary, built next to `vaulthalla` by `cargo build --workspace --bins`.
///
/// # Panics
/// When it is missing, with the command that builds it.
pub fn vh_bin() -> PathBuf {
    let path = vaulthalla_bin().with_file_name("vh");
    assert!(
        path.is_file(),
        "the vh binary is missing at {}; build every binary first: \
         `cargo build --workspace --bins && cargo test --workspace`",
        path.display()
    );
    path
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral loopback port");
    listener.local_addr().expect("local address").port()
}

/// Polls `probe` until it returns `Some`, or panics with `what` and `context()` after `timeout`.
pub fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}\n{}",
            context()
        );
        thread::sleep(POLL_INTERVAL);
    }
}

/// Settings of a node's config file that tests change.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// `keys.provider`: `auto`, `tpm` or `software`.
    pub key_provider: String,
    /// `keys.tpm_tcti`.
    pub tpm_tcti: Option<String>,
    /// Further `s3_gateway` keys, as `(key, YAML value)`.
    pub gateway_extra: Vec<(String, String)>,
    /// The `fuse` section.
    pub fuse: FuseSettings,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            key_provider: "software".to_owned(),
            tpm_tcti: None,
            gateway_extra: Vec::new(),
            fuse: FuseSettings::default(),
        }
    }
}

/// The `fuse` section of a node's config. It is always written, `enabled: false` unless a test
/// asks for the mount, so no node mounts by accident whatever the daemon's default is.
#[derive(Clone, Debug, Default)]
pub struct FuseSettings {
    /// `fuse.enabled`. The mount point is then always `<node directory>/mnt`
    /// ([`TestNode::mount_point`]), and the node counts as started only once it is mounted.
    pub enabled: bool,
    /// `fuse.allow_other`.
    pub allow_other: bool,
    /// `fuse.threads`, or the daemon's default when `None`.
    pub threads: Option<u32>,
    /// `fuse.mount_new_vaults`, or the daemon's default when `None`.
    pub mount_new_vaults: Option<bool>,
}

/// A running `vaulthalla` daemon with its own directory; killed when dropped.
pub struct TestNode {
    dir: Option<TempDir>,
    root: PathBuf,
    port: u16,
    config: NodeConfig,
    child: Option<Child>,
}

impl TestNode {
    /// Starts a node with the software key provider and the S3 gateway on a free port.
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Starts a node with the FUSE mount on [`TestNode::mount_point`], mounting every new vault;
    /// returns once the mount answers.
    pub fn start_with_mount() -> Self {
        Self::start_with(|config| {
            config.fuse.enabled = true;
            config.fuse.mount_new_vaults = Some(true);
        })
    }

    /// Starts a node after `tweak` has adjusted its config. With `fuse.enabled`, returns once the
    /// mount answers.
    pub fn start_with(tweak: impl FnOnce(&mut NodeConfig)) -> Self {
        let mut config = NodeConfig::default();
        tweak(&mut config);
        let dir = tempfile::Builder::new()
            .prefix("vh-e2e-")
            .tempdir()
            .expect("create the node's temporary directory");
        let root = dir.path().to_owned();
        let mut node = Self {
            dir: Some(dir),
            root,
            port: 0,
            config,
            child: None,
        };
        // Another process may take the port between our probe and the node's bind; the node
        // then reports its gateway as failed, and a new port is tried.
        for _ in 0..3 {
            node.port = free_port();
            node.write_config();
            node.spawn();
            if node.wait_ready() {
                node.wait_mounted();
                return node;
            }
            node.stop_child_hard();
        }
        panic!(
            "the S3 gateway could not bind a free port three times in a row\n{}",
            node.log_report()
        );
    }

    /// The node's temporary directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The control socket.
    pub fn socket(&self) -> PathBuf {
        self.root.join("control.sock")
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.yaml")
    }

    /// The daemon's log (stderr of every start, appended).
    pub fn log_path(&self) -> PathBuf {
        self.root.join("node.log")
    }

    /// Where the FUSE mount is (when the node mounts): `<node directory>/mnt`.
    pub fn mount_point(&self) -> PathBuf {
        self.root.join("mnt")
    }

    /// The directory of vault `name` in the mount.
    pub fn vault_path(&self, name: &str) -> PathBuf {
        self.mount_point().join(name)
    }

    /// Whether the kernel has a filesystem mounted on [`TestNode::mount_point`], answering or
    /// not (a mount whose node died stays listed until it is unmounted).
    pub fn is_mounted(&self) -> bool {
        let Ok(root) = fs::canonicalize(&self.root) else {
            return false;
        };
        let mount_point = root.join("mnt");
        let Ok(table) = fs::read_to_string("/proc/self/mountinfo") else {
            return false;
        };
        // Each line: id, parent id, major:minor, root, mount point, ...; the mount point has
        // space, tab, newline and backslash escaped as octal.
        table
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .any(|field| Path::new(&unescape_mountinfo(field)) == mount_point)
    }

    /// The S3 gateway's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the node is running").id()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The node's directory and log, for failure messages.
    pub fn log_report(&self) -> String {
        format!(
            "node directory: {}\n----- node log -----\n{}\n----- end of node log -----",
            self.root.display(),
            self.log()
        )
    }

    fn write_config(&self) {
        let NodeConfig {
            key_provider,
            tpm_tcti,
            gateway_extra,
            fuse,
        } = &self.config;
        let tcti = tpm_tcti
            .as_ref()
            .map_or_else(|| "null".to_owned(), |t| format!("\"{t}\""));
        let mut yaml = format!(
            "data_dir: {data}\ncontrol_socket: {socket}\nkeys:\n  provider: {key_provider}\n  \
             tpm_tcti: {tcti}\nadmin:\n  host: 127.0.0.1\n  port: {admin_port}\n\
             s3_gateway:\n  enabled: true\n  host: 127.0.0.1\n  port: {port}\n",
            data = self.data_dir().display(),
            socket = self.socket().display(),
            port = self.port,
            admin_port = free_port(),
        );
        for (key, value) in gateway_extra {
            writeln!(yaml, "  {key}: {value}").expect("write to a String");
        }
        yaml.push_str(&self.fuse_yaml(fuse));
        fs::write(self.config_path(), yaml).expect("write the node's config file");
    }

    fn fuse_yaml(&self, fuse: &FuseSettings) -> String {
        let FuseSettings {
            enabled,
            allow_other,
            threads,
            mount_new_vaults,
        } = fuse;
        if !enabled {
            return "fuse:\n  enabled: false\n".to_owned();
        }
        fs::create_dir_all(self.mount_point()).expect("create the node's mount point");
        let mut yaml = format!(
            "fuse:\n  enabled: true\n  mount_point: {}\n  allow_other: {allow_other}\n",
            self.mount_point().display()
        );
        if let Some(threads) = threads {
            writeln!(yaml, "  threads: {threads}").expect("write to a String");
        }
        if let Some(mount_new_vaults) = mount_new_vaults {
            writeln!(yaml, "  mount_new_vaults: {mount_new_vaults}").expect("write to a String");
        }
        yaml
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the node's log file");
        let child = Command::new(vaulthalla_bin())
            .arg("--config")
            .arg(self.config_path())
            .env("VH_LOG", "info,s3=debug")
            .env("NO_COLOR", "1")
            .env_remove("VH_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start vaulthalla");
        self.child = Some(child);
    }

    /// Waits until `vh status` succeeds and the gateway accepts connections. `false` when the
    /// gateway reported a failure to start (a port taken by someone else).
    fn wait_ready(&mut self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "vaulthalla exited during start-up with {status}\n{}",
                    self.log_report()
                );
            }
            let status = self.vh(&["status", "--json"]);
            if status.status.success()
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                return true;
            }
            let text = String::from_utf8_lossy(&status.stdout);
            if text.contains("\"state\": \"failed\"") {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "vaulthalla did not become ready within {START_TIMEOUT:?} (vh status: {}{})\n{}",
                text,
                String::from_utf8_lossy(&status.stderr),
                self.log_report()
            );
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// With the mount enabled, waits until the mount point holds a filesystem other than its
    /// parent's and answers `stat`.
    fn wait_mounted(&mut self) {
        if !self.config.fuse.enabled {
            return;
        }
        let mount_point = self.mount_point();
        let parent_dev = fs::metadata(&self.root)
            .expect("stat the node's directory")
            .dev();
        let deadline = Instant::now() + MOUNT_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "vaulthalla exited with {status} before its FUSE mount on {} came up; its \
                     log {} says why\n{}",
                    mount_point.display(),
                    self.log_path().display(),
                    self.log_report()
                );
            }
            let answering = fs::metadata(&mount_point).is_ok_and(|m| m.dev() != parent_dev);
            if answering && self.is_mounted() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the FUSE mount on {} did not come up within {MOUNT_TIMEOUT:?} (mounted: {}); \
                 read the node's log {} for why\n{}",
                mount_point.display(),
                self.is_mounted(),
                self.log_path().display(),
                self.log_report()
            );
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits a moment for the mount to go away after the node exited (an unmount helper may
    /// still be at work); `true` when it is gone.
    fn wait_unmounted(&self) -> bool {
        let deadline = Instant::now() + UNMOUNT_GRACE;
        while self.is_mounted() {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL_INTERVAL);
        }
        true
    }

    /// Takes down a mount the node left behind (it died, or did not unmount), lazily so open
    /// files cannot keep it; `true` when the mount point is free afterwards.
    fn clear_stale_mount(&self) -> bool {
        if !self.is_mounted() {
            return true;
        }
        let mount_point = self.mount_point();
        // fusermount3 is how an unprivileged owner unmounts; umount -l is the fallback for a
        // root test run on a machine without fuse3's tools.
        let attempts: [(&str, &[&str]); 2] = [("fusermount3", &["-u", "-z"]), ("umount", &["-l"])];
        for (program, args) in attempts {
            let _ = Command::new(program)
                .args(args)
                .arg(&mount_point)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !self.is_mounted() {
                return true;
            }
        }
        eprintln!(
            "could not unmount the stale mount on {}; unmount it with `fusermount3 -u -z {0}`",
            mount_point.display()
        );
        false
    }

    /// Runs `vh --socket SOCKET args...`.
    pub fn vh(&self, args: &[&str]) -> Output {
        Command::new(vh_bin())
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .env_remove("VH_CONFIG")
            .env_remove("VH_SOCKET")
            .stdin(Stdio::null())
            .output()
            .expect("run vh")
    }

    /// Runs `vh`, asserting success; returns stdout.
    pub fn vh_ok(&self, args: &[&str]) -> String {
        let output = self.vh(args);
        assert!(
            output.status.success(),
            "vh {args:?} failed with {}: {}{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log_report()
        );
        String::from_utf8(output.stdout).expect("vh prints UTF-8")
    }

    /// Runs `vh ... --json`, asserting success; returns the parsed output.
    pub fn vh_json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        let stdout = self.vh_ok(&args);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("vh {args:?} printed invalid JSON ({e}): {stdout}"))
    }

    /// Creates a gateway credential; returns `(access key id, secret)`.
    pub fn create_credential(&self, name: &str) -> (String, String) {
        let created = self.vh_json(&["s3-gateway", "creds", "create", name]);
        let field = |name: &str| {
            created[name]
                .as_str()
                .unwrap_or_else(|| panic!("`creds create` printed no {name}: {created}"))
                .to_owned()
        };
        assert_eq!(field("name"), name, "{created}");
        let access_key = field("access_key_id");
        assert!(access_key.starts_with("VH"), "{created}");
        (access_key, field("secret_access_key"))
    }

    /// Creates a bucket on a new local vault.
    pub fn create_bucket(&self, name: &str) {
        let bucket = self.vh_json(&["s3-gateway", "bucket", "create-local", name]);
        assert_eq!(bucket["name"], name, "{bucket}");
    }

    /// Creates a bucket on a new local vault with `vh s3-gateway bucket create-local NAME
    /// FLAGS...`; returns what `vh` printed about it.
    pub fn create_bucket_with_flags(&self, name: &str, flags: &[&str]) -> serde_json::Value {
        let mut args = vec!["s3-gateway", "bucket", "create-local", name];
        args.extend_from_slice(flags);
        let bucket = self.vh_json(&args);
        assert_eq!(bucket["name"], name, "{bucket}");
        bucket
    }

    /// Stops the node with SIGTERM and waits for it to exit; returns its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the node is running");
        let pid = child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let status = wait_for(
            STOP_TIMEOUT,
            "vaulthalla to exit after SIGTERM",
            || child.try_wait().expect("poll vaulthalla"),
            || self.log_report(),
        );
        let left_mounted = !self.wait_unmounted();
        self.clear_stale_mount();
        assert!(
            status.success(),
            "vaulthalla exited with {status} after SIGTERM\n{}",
            self.log_report()
        );
        assert!(
            !left_mounted,
            "vaulthalla exited after SIGTERM but left its mount on {} behind (now unmounted)\n{}",
            self.mount_point().display(),
            self.log_report()
        );
        status
    }

    /// Starts the node again on the same directory and port (and mount point); with the mount
    /// enabled, returns once it answers.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the node is still running");
        assert!(
            self.clear_stale_mount(),
            "a stale mount on {} is in the way of the restart",
            self.mount_point().display()
        );
        self.spawn();
        assert!(
            self.wait_ready(),
            "the S3 gateway could not listen on its port {} again\n{}",
            self.port,
            self.log_report()
        );
        self.wait_mounted();
    }

    /// Stops the node cleanly (SIGTERM) and starts it again on the same directory and port.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Kills the node with SIGKILL, as a crash would, and takes down the mount it leaves behind
    /// (the kernel answers ENOTCONN on it until then). Files still open on the mount keep
    /// failing; paths under the mount point reach the bare directory until the next start.
    pub fn kill9(&mut self) {
        self.stop_child_hard();
    }

    fn stop_child_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An error means the process is already gone, which is what we want.
            let _ = child.kill();
            let _ = child.wait();
        }
        self.clear_stale_mount();
    }

    /// An AWS CLI runner for this node with its own isolated home (not configured yet).
    pub fn aws(&self) -> Aws {
        Aws::new(&self.root.join("aws-home"), &self.endpoint())
    }

    /// A raw request to this node's gateway.
    pub fn request(&self, method: &str, path_and_query: &str) -> RawRequest {
        RawRequest::new(self.port, method, path_and_query)
    }

    /// Sends one raw request; see [`RawRequest`] for the knobs this shorthand does not offer.
    pub fn raw_request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        creds: Option<(&str, &str)>,
        payload: Payload,
    ) -> RawResponse {
        let mut request = self
            .request(method, path_and_query)
            .body(body)
            .payload(payload);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some((access_key, secret)) = creds {
            request = request.creds(access_key, secret);
        }
        request.send()
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.stop_child_hard();
        if thread::panicking() {
            eprintln!("{}", self.log_report());
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("kept the node directory {} for inspection", kept.display());
            }
        }
    }
}

/// A path field of `/proc/self/mountinfo` with its octal escapes (`\040` for a space) decoded.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(value)) => {
                out.push(value);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What one `aws` run produced.
#[derive(Debug)]
pub struct AwsOutput {
    /// The exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl AwsOutput {
    /// Whether the CLI exited with 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// The real AWS CLI, cut off from the machine's AWS configuration: its config and credentials
/// files live in a directory of its own, `HOME` points there, instance metadata is off, no
/// proxy applies, and every inherited `AWS_*` variable is dropped.
#[derive(Clone, Debug)]
pub struct Aws {
    home: PathBuf,
    endpoint: String,
    env_credentials: Option<(String, String)>,
}

impl Aws {
    /// A runner whose files live under `home` (created), talking to `endpoint`.
    pub fn new(home: &Path, endpoint: &str) -> Self {
        fs::create_dir_all(home).expect("create the AWS CLI home");
        Self {
            home: home.to_owned(),
            endpoint: endpoint.to_owned(),
            env_credentials: None,
        }
    }

    /// The CLI's config file.
    pub fn config_file(&self) -> PathBuf {
        self.home.join("aws-config")
    }

    /// The CLI's credentials file.
    pub fn credentials_file(&self) -> PathBuf {
        self.home.join("aws-credentials")
    }

    /// The same runner, but with credentials from the environment, which take precedence
    /// over the files.
    pub fn with_credentials(&self, access_key: &str, secret: &str) -> Self {
        Self {
            env_credentials: Some((access_key.to_owned(), secret.to_owned())),
            ..self.clone()
        }
    }

    /// The documented setup: `aws configure set` for the key, the secret and the region.
    pub fn configure(&self, access_key: &str, secret: &str) {
        self.configure_set("aws_access_key_id", access_key);
        self.configure_set("aws_secret_access_key", secret);
        self.configure_set("default.region", REGION);
    }

    /// `aws configure set NAME VALUE`, into the isolated files.
    pub fn configure_set(&self, name: &str, value: &str) {
        self.expect_ok_raw(&["configure", "set", name, value]);
    }

    fn command(&self) -> Command {
        let mut command = Command::new("aws");
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy().to_ascii_uppercase();
            if text.starts_with("AWS_") || text.starts_with("BOTO") || text.ends_with("_PROXY") {
                command.env_remove(&name);
            }
        }
        command
            .current_dir(&self.home)
            .env("HOME", &self.home)
            .env("AWS_CONFIG_FILE", self.config_file())
            .env("AWS_SHARED_CREDENTIALS_FILE", self.credentials_file())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_RETRY_MODE", "standard")
            .env("AWS_PAGER", "")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .stdin(Stdio::null());
        if let Some((access_key, secret)) = &self.env_credentials {
            command
                .env("AWS_ACCESS_KEY_ID", access_key)
                .env("AWS_SECRET_ACCESS_KEY", secret)
                .env("AWS_DEFAULT_REGION", REGION);
        }
        command
    }

    fn run_raw(&self, args: &[&str]) -> AwsOutput {
        let output = self.command().args(args).output().unwrap_or_else(|e| {
            panic!("cannot run the AWS CLI `aws` ({e}); install it with `pip install awscli`")
        });
        AwsOutput {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn expect_ok_raw(&self, args: &[&str]) -> AwsOutput {
        let output = self.run_raw(args);
        assert!(
            output.success(),
            "aws {args:?} failed with {}:\n{}{}",
            output.status,
            output.stdout,
            output.stderr
        );
        output
    }

    /// Runs `aws --endpoint-url ENDPOINT args...`.
    pub fn run(&self, args: &[&str]) -> AwsOutput {
        let mut full = vec!["--endpoint-url", self.endpoint.as_str()];
        full.extend_from_slice(args);
        self.run_raw(&full)
    }

    /// Runs the CLI, asserting success; returns stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.success(),
            "aws {args:?} failed with {}:\nstdout: {}\nstderr: {}",
            output.status,
            output.stdout,
            output.stderr
        );
        output.stdout
    }

    /// Runs the CLI, asserting failure; returns stderr.
    pub fn run_err(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.success(),
            "aws {args:?} should have failed but printed:\n{}{}",
            output.stdout,
            output.stderr
        );
        output.stderr
    }

    /// Runs the CLI, asserting success, and parses its JSON output (`null` for no output).
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let stdout = self.run_ok(args);
        if stdout.trim().is_empty() {
            return serde_json::Value::Null;
        }
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("aws {args:?} printed invalid JSON ({e}): {stdout}"))
    }
}

/// What `x-amz-content-sha256` says about the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// The body's real SHA-256.
    Signed,
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// This value, whatever the body is.
    Claimed(String),
    /// No header at all.
    Omitted,
}

/// One HTTP/1.1 request, signed with SigV4 when it has credentials, sent on its own connection
/// (`Connection: close`). Each knob breaks one thing on purpose.
#[derive(Clone, Debug)]
pub struct RawRequest {
    port: u16,
    method: String,
    path_and_query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    creds: Option<(String, String)>,
    payload: Payload,
    date: Option<OffsetDateTime>,
    authorization: Option<String>,
    content_length: Option<u64>,
    signed_chunk_size: Option<usize>,
    wire_truncate: Option<usize>,
    close_write: bool,
}

impl RawRequest {
    /// `method path_and_query` to `127.0.0.1:port`; the path is sent as given (already
    /// percent-encoded where needed).
    pub fn new(port: u16, method: &str, path_and_query: &str) -> Self {
        Self {
            port,
            method: method.to_owned(),
            path_and_query: path_and_query.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            creds: None,
            payload: Payload::Signed,
            date: None,
            authorization: None,
            content_length: None,
            signed_chunk_size: None,
            wire_truncate: None,
            close_write: false,
        }
    }

    /// Adds a header (signed when the request is).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The body.
    pub fn body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }

    /// Signs with these credentials; without, the request is anonymous.
    pub fn creds(mut self, access_key: &str, secret: &str) -> Self {
        self.creds = Some((access_key.to_owned(), secret.to_owned()));
        self
    }

    /// What `x-amz-content-sha256` claims.
    pub fn payload(mut self, payload: Payload) -> Self {
        self.payload = payload;
        self
    }

    /// Dates and signs the request at `date` instead of now.
    pub fn date(mut self, date: OffsetDateTime) -> Self {
        self.date = Some(date);
        self
    }

    /// Sends this `Authorization` header verbatim instead of a computed one.
    pub fn authorization(mut self, value: &str) -> Self {
        self.authorization = Some(value.to_owned());
        self
    }

    /// Declares this `Content-Length`, sends the body as it is, then closes the write half, so
    /// a body shorter than declared reaches the server as a connection that ends early.
    pub fn declared_length(mut self, len: u64) -> Self {
        self.content_length = Some(len);
        self.close_write = true;
        self
    }

    /// Sends the body `aws-chunked` with signed chunks of `chunk_size` bytes
    /// (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`).
    pub fn signed_chunks(mut self, chunk_size: usize) -> Self {
        self.signed_chunk_size = Some(chunk_size);
        self
    }

    /// Cuts the encoded body to its first `len` bytes, with `Content-Length` saying `len`: the
    /// HTTP message is complete, what it carries is not.
    pub fn truncate_wire_body(mut self, len: usize) -> Self {
        self.wire_truncate = Some(len);
        self
    }

    /// Sends the request and reads the whole answer.
    ///
    /// # Panics
    /// When the connection fails or closes without an HTTP status line: the gateway must
    /// answer every request, even a broken one.
    pub fn send(self) -> RawResponse {
        let (head, body) = self.encode();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("connect to the gateway at {addr}: {e}"));
        stream
            .set_read_timeout(Some(RESPONSE_TIMEOUT))
            .expect("set a read timeout");
        // The server may answer (and stop reading) before the body is sent; the answer is
        // what matters, so a failed write is not an error here.
        let written = stream
            .write_all(&head)
            .and_then(|()| stream.write_all(&body))
            .and_then(|()| stream.flush());
        if self.close_write || written.is_err() {
            let _ = stream.shutdown(Shutdown::Write);
        }
        let mut raw = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!(
                        "{} {}: no complete answer within {RESPONSE_TIMEOUT:?} ({} bytes so far)",
                        self.method,
                        self.path_and_query,
                        raw.len()
                    )
                }
                // A reset after the answer arrived still leaves the answer readable above.
                Err(_) => break,
            }
        }
        RawResponse::parse(&raw, self.method == "HEAD").unwrap_or_else(|problem| {
            panic!(
                "{} {}: the gateway did not answer with an HTTP response ({problem}); \
                 received {:?} (write result: {written:?})",
                self.method,
                self.path_and_query,
                String::from_utf8_lossy(&raw)
            )
        })
    }

    /// The request head and body bytes as they go on the wire.
    fn encode(&self) -> (Vec<u8>, Vec<u8>) {
        let host = format!("127.0.0.1:{}", self.port);
        let now = self.date.unwrap_or_else(OffsetDateTime::now_utc);
        let amz_date = amz_date(now);
        let mut headers: Vec<(String, String)> = vec![("host".to_owned(), host.clone())];
        if self.creds.is_some() {
            headers.push(("x-amz-date".to_owned(), amz_date.clone()));
        }
        let payload_value = match (&self.payload, self.signed_chunk_size) {
            (_, Some(_)) => Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_owned()),
            (Payload::Signed, None) => Some(hex::encode(Sha256::digest(&self.body))),
            (Payload::Unsigned, None) => Some("UNSIGNED-PAYLOAD".to_owned()),
            (Payload::Claimed(value), None) => Some(value.clone()),
            (Payload::Omitted, None) => None,
        };
        if let Some(value) = &payload_value {
            headers.push(("x-amz-content-sha256".to_owned(), value.clone()));
        }
        if self.signed_chunk_size.is_some() {
            headers.push(("content-encoding".to_owned(), "aws-chunked".to_owned()));
            headers.push((
                "x-amz-decoded-content-length".to_owned(),
                self.body.len().to_string(),
            ));
        }
        for (name, value) in &self.headers {
            headers.push((name.to_ascii_lowercase(), value.clone()));
        }

        let scope = format!("{}/{REGION}/s3/aws4_request", &amz_date[..8]);
        let mut seed_signature = None;
        let authorization = match (&self.authorization, &self.creds) {
            (Some(value), _) => Some(value.clone()),
            (None, None) => None,
            (None, Some((access_key, secret))) => {
                let (signed_names, canonical) = canonical_request(
                    &self.method,
                    &self.path_and_query,
                    &headers,
                    payload_value.as_deref().unwrap_or("UNSIGNED-PAYLOAD"),
                );
                let key = signing_key(secret, &amz_date[..8]);
                let string_to_sign = format!(
                    "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
                    hex::encode(Sha256::digest(canonical.as_bytes()))
                );
                let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
                seed_signature = Some((key, signature.clone()));
                Some(format!(
                    "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, \
                     SignedHeaders={signed_names}, Signature={signature}"
                ))
            }
        };

        let mut body = match (self.signed_chunk_size, &seed_signature) {
            (Some(size), Some((key, seed))) => {
                encode_signed_chunks(&self.body, size, key, seed, &amz_date, &scope)
            }
            (Some(_), None) => panic!("signed chunks need credentials"),
            (None, _) => self.body.clone(),
        };
        if let Some(len) = self.wire_truncate {
            body.truncate(len);
        }
        let content_length = self.content_length.unwrap_or(body.len() as u64);

        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path_and_query);
        for (name, value) in &headers {
            write!(head, "{name}: {value}\r\n").expect("write to a String");
        }
        if let Some(value) = authorization {
            write!(head, "authorization: {value}\r\n").expect("write to a String");
        }
        let bodiless = matches!(self.method.as_str(), "GET" | "HEAD" | "DELETE");
        if !(bodiless && body.is_empty() && self.content_length.is_none()) {
            write!(head, "content-length: {content_length}\r\n").expect("write to a String");
        }
        head.push_str("connection: close\r\n\r\n");
        (head.into_bytes(), body)
    }
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
pub fn amz_date(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// SigV4 URI encoding: everything but `A-Z a-z 0-9 - . _ ~` as `%XX`.
fn uri_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            write!(out, "%{b:02X}").expect("write to a String");
        }
    }
    out
}

/// Percent-decoding, leaving malformed escapes as they are.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(value)) => {
                out.push(value);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The signed header list and the canonical request, as AWS SDKs build them.
fn canonical_request(
    method: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    payload_hash: &str,
) -> (String, String) {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let uri: Vec<String> = path
        .split('/')
        .map(|segment| uri_encode(&percent_decode(segment)))
        .collect();
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .map(|(name, value)| {
            (
                uri_encode(&percent_decode(&name.replace('+', " "))),
                uri_encode(&percent_decode(&value.replace('+', " "))),
            )
        })
        .collect();
    pairs.sort();
    let query: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();

    let mut sorted: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| {
            let value = v.split_whitespace().collect::<Vec<_>>().join(" ");
            (n.to_ascii_lowercase(), value)
        })
        .collect();
    sorted.sort();
    let names: Vec<&str> = sorted.iter().map(|(n, _)| n.as_str()).collect();
    let signed_names = names.join(";");
    let mut canonical = format!("{method}\n{}\n{}\n", uri.join("/"), query.join("&"));
    for (name, value) in &sorted {
        writeln!(canonical, "{name}:{value}").expect("write to a String");
    }
    write!(canonical, "\n{signed_names}\n{payload_hash}").expect("write to a String");
    (signed_names, canonical)
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The SigV4 signing key for `date` (`YYYYMMDD`) in [`REGION`] for S3.
fn signing_key(secret: &str, date: &str) -> [u8; 32] {
    let date_key = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let region_key = hmac_sha256(&date_key, REGION.as_bytes());
    let service_key = hmac_sha256(&region_key, b"s3");
    hmac_sha256(&service_key, b"aws4_request")
}

/// An `aws-chunked` body with a signature on every chunk, chained from `seed`, ending with the
/// signed zero-length chunk (`0;chunk-signature=...\r\n\r\n`).
fn encode_signed_chunks(
    data: &[u8],
    chunk_size: usize,
    key: &[u8; 32],
    seed: &str,
    amz_date: &str,
    scope: &str,
) -> Vec<u8> {
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let mut out = Vec::new();
    let mut previous = seed.to_owned();
    let chunks = data
        .chunks(chunk_size.max(1))
        .chain(std::iter::once(&[][..]));
    for chunk in chunks {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{EMPTY_SHA256}\n{}",
            hex::encode(Sha256::digest(chunk))
        );
        let signature = hex::encode(hmac_sha256(key, string_to_sign.as_bytes()));
        out.extend_from_slice(
            format!("{:x};chunk-signature={signature}\r\n", chunk.len()).as_bytes(),
        );
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
        previous = signature;
    }
    out
}

/// A `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` PUT of `data` in signed chunks of `chunk_size` bytes
/// whose seed signature (the `Authorization` header) is valid, but whose chunk number
/// `bad_chunk` (0 is the first; the final empty chunk counts too) carries a wrong signature:
/// the chain breaks in the middle of the body, after earlier chunks have passed.
///
/// # Panics
/// When `data` in chunks of `chunk_size` has no chunk number `bad_chunk`.
pub fn signed_chunks_with_bad_signature(
    port: u16,
    path: &str,
    data: &[u8],
    chunk_size: usize,
    (access_key, secret): (&str, &str),
    bad_chunk: usize,
) -> RawRequest {
    const STREAMING: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
    let amz_date = amz_date(OffsetDateTime::now_utc());
    let scope = format!("{}/{REGION}/s3/aws4_request", &amz_date[..8]);
    // The headers RawRequest::encode sends, in its order: host, the payload claim, then ours.
    let extra = [
        ("content-encoding", "aws-chunked".to_owned()),
        ("x-amz-decoded-content-length", data.len().to_string()),
        ("x-amz-date", amz_date.clone()),
    ];
    let mut headers = vec![
        ("host".to_owned(), format!("127.0.0.1:{port}")),
        ("x-amz-content-sha256".to_owned(), STREAMING.to_owned()),
    ];
    headers.extend(extra.iter().map(|(n, v)| ((*n).to_owned(), v.clone())));
    let (signed_names, canonical) = canonical_request("PUT", path, &headers, STREAMING);
    let key = signing_key(secret, &amz_date[..8]);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let seed = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    let mut body = encode_signed_chunks(data, chunk_size, &key, &seed, &amz_date, &scope);

    let marker = b"chunk-signature=";
    let at = body
        .windows(marker.len())
        .enumerate()
        .filter(|(_, w)| *w == marker)
        .nth(bad_chunk)
        .map(|(i, _)| i + marker.len())
        .unwrap_or_else(|| panic!("the body has no chunk number {bad_chunk}"));
    // Flip the first hex digit of that signature: still well-formed, no longer right.
    body[at] = if body[at] == b'0' { b'1' } else { b'0' };

    let mut request = RawRequest::new(port, "PUT", path)
        .payload(Payload::Claimed(STREAMING.to_owned()))
        .authorization(&format!(
            "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed_names}, \
             Signature={seed}"
        ))
        .body(&body);
    for (name, value) in &extra {
        request = request.header(name, value);
    }
    request
}

/// An HTTP answer, fully read.
#[derive(Clone, Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl RawResponse {
    fn parse(raw: &[u8], is_head: bool) -> Result<Self, String> {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no end of headers")?;
        let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().ok_or("no status line")?;
        let mut words = status_line.split(' ');
        let version = words.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(format!("bad status line {status_line:?}"));
        }
        let status = words
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let rest = &raw[end + 4..];
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if chunked {
            dechunk(rest)?
        } else {
            rest.to_vec()
        };
        let response = Self {
            status,
            headers,
            body,
        };
        if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().map_err(|_| "bad content-length")?;
            if !chunked && !is_head && response.body.len() != len {
                return Err(format!(
                    "body of {} bytes, content-length {len}",
                    response.body.len()
                ));
            }
        }
        Ok(response)
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The text of the first `<tag>` element of the body.
    pub fn xml_value(&self, tag: &str) -> Option<String> {
        xml_values(&self.text(), tag).into_iter().next()
    }

    /// The S3 error code of the body.
    pub fn code(&self) -> Option<String> {
        self.xml_value("Code")
    }

    /// Asserts an S3 error answer: `status`, `<Code>code</Code>`, a `<RequestId>` equal to the
    /// `x-amz-request-id` header. `what` names the case for the failure message.
    pub fn assert_error(&self, status: u16, code: &str, what: &str) {
        assert_eq!(
            (self.status, self.code().as_deref()),
            (status, Some(code)),
            "{what}: expected {status} {code}, got {} with body {}",
            self.status,
            self.text()
        );
        let header_id = self.header("x-amz-request-id");
        assert!(
            header_id.is_some_and(|id| !id.is_empty()),
            "{what}: no x-amz-request-id header in {:?}",
            self.headers
        );
        assert_eq!(
            self.xml_value("RequestId").as_deref(),
            header_id,
            "{what}: the body's RequestId differs from the header: {}",
            self.text()
        );
    }

    /// Asserts a 2xx answer.
    pub fn assert_ok(&self, what: &str) {
        assert!(
            (200..300).contains(&self.status),
            "{what}: expected success, got {} with body {}",
            self.status,
            self.text()
        );
    }
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunked body without a size line")?;
        let line = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let data = rest.get(..size).ok_or("chunked body cut short")?;
        out.extend_from_slice(data);
        rest = rest.get(size + 2..).ok_or("chunked body cut short")?;
    }
}

/// The text of every `<tag>...</tag>` in `xml`, in order, with the five XML entities decoded.
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut values = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else {
            break;
        };
        values.push(
            after[..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    values
}

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// Asserts two byte strings are equal without printing megabytes on failure.
pub fn assert_same_bytes(actual: &[u8], expected: &[u8], what: &str) {
    if actual == expected {
        return;
    }
    let first_difference = actual
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(actual.len().min(expected.len()));
    panic!(
        "{what}: {} bytes read back, {} expected; first difference at byte {first_difference}",
        actual.len(),
        expected.len()
    );
}
