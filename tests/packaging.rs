//! The config file the packages install as `/etc/vaulthalla/config.yaml`
//! (`packaging/config.yaml`): as shipped it starts a node on the built-in defaults, it lists every
//! key with its default, and `vh s3-gateway enable` can edit it in place.
//!
//! The parser is the daemon's own `src/config.rs`, compiled into this test, so "every key with
//! its default" is checked against `Config::default()` itself rather than against a copy of it.

#[allow(
    dead_code,
    reason = "only the parser and the defaults of the daemon's config module are used here"
)]
#[path = "../src/config.rs"]
mod config;

mod common;

use std::fs;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{free_port, vaulthalla_bin, vh_bin, wait_for};
use config::Config;

/// How long the node may take to answer on its control socket or to exit after SIGTERM.
const TIMEOUT: Duration = Duration::from_secs(30);

fn shipped_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/config.yaml");
    fs::read_to_string(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

/// The key of a commented-out setting line (`  #key: value`), if `line` is one. Explanations are
/// comments with a space after the `#`, so they never match.
fn commented_key(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix('#')?;
    let (key, _) = rest.split_once(':')?;
    let mut bytes = key.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
    (first_ok && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
        .then_some(key)
}

/// The file with every setting uncommented, as an operator deleting each `#` would leave it.
fn uncomment_all(text: &str) -> String {
    text.lines()
        .map(|line| match commented_key(line) {
            Some(_) => line.replacen('#', "", 1),
            None => line.to_owned(),
        })
        .map(|line| line + "\n")
        .collect()
}

/// Uncomments the setting at `path` (`section.key`, or `key` at the top level) and gives it
/// `value`, as an operator would; the setting must be listed exactly once.
fn set(text: &str, path: &str, value: &str) -> String {
    // The section lines (`name:`) enclosing the current line, with their indentation.
    let mut sections: Vec<(usize, &str)> = Vec::new();
    let mut found = 0;
    let mut out = String::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let content = line.trim_start();
        if !content.is_empty() && !content.starts_with('#') {
            sections.retain(|(level, _)| *level < indent);
            if let Some(name) = content.strip_suffix(':') {
                sections.push((indent, name));
            }
        }
        if let Some(key) = commented_key(line) {
            let mut full: Vec<&str> = sections
                .iter()
                .filter(|(level, _)| *level < indent)
                .map(|(_, name)| *name)
                .collect();
            full.push(key);
            if full.join(".") == path {
                found += 1;
                out.push_str(&format!("{}{key}: {value}\n", &line[..indent]));
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    assert_eq!(
        found, 1,
        "`{path}` should be listed once in the shipped config"
    );
    out
}

#[test]
fn shipped_config_is_the_defaults_with_every_key_listed() {
    let shipped = shipped_config();
    assert_eq!(
        Config::parse(&shipped).expect("the shipped config parses"),
        Config::default(),
        "as shipped, everything commented out, the file must mean the built-in defaults"
    );

    let uncommented = uncomment_all(&shipped);
    assert_eq!(
        Config::parse(&uncommented).expect("the uncommented config parses"),
        Config::default(),
        "every listed value must be the built-in default:\n{uncommented}"
    );
    // Key for key: nothing missing, nothing extra, each value the default.
    let listed: serde_norway::Value =
        serde_norway::from_str(&uncommented).expect("the uncommented config is YAML");
    let defaults = serde_norway::to_value(Config::default()).expect("serialize the defaults");
    assert_eq!(
        listed, defaults,
        "the uncommented file must list every key of the config, each with its default"
    );
}

/// A daemon started by a test; killed if the test fails before stopping it.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(config: &Path, log: &Path) -> Self {
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the node log");
        let child = Command::new(vaulthalla_bin())
            .arg("--config")
            .arg(config)
            .env_remove("VH_CONFIG")
            .env_remove("VH_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn vaulthalla");
        Self {
            child,
            log: log.to_owned(),
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit must be clean.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "send SIGTERM to {pid}");
        let log = self.log.clone();
        let read_log = move || fs::read_to_string(&log).unwrap_or_default();
        let child = &mut self.child;
        let status = wait_for(
            TIMEOUT,
            "vaulthalla to exit after SIGTERM",
            || child.try_wait().expect("poll vaulthalla"),
            &read_log,
        );
        assert!(
            status.success(),
            "vaulthalla exited with {status}\n{}",
            read_log()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `vh --config CONFIG ARGS…`: `vh` finds the socket through the config file, as it does on an
/// installed node.
fn vh(config: &Path, args: &[&str]) -> Output {
    Command::new(vh_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("VH_CONFIG")
        .env_remove("VH_SOCKET")
        .output()
        .expect("run vh")
}

fn gateway_state(config: &Path) -> Option<String> {
    let out = vh(config, &["s3-gateway", "status", "--json"]);
    if !out.status.success() {
        return None;
    }
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    status["state"].as_str().map(str::to_owned)
}

#[test]
fn shipped_config_runs_a_node_and_survives_gateway_enable() {
    let dir = tempfile::Builder::new()
        .prefix("vh-packaging-")
        .tempdir()
        .expect("create a temporary directory");
    let config_path = dir.path().join("config.yaml");
    let log = dir.path().join("node.log");
    let port = free_port();
    let admin_port = free_port();

    // The shipped file with only what a test node must change: its own paths, no real TPM, and
    // loopback listeners on free ports.
    let mut text = shipped_config();
    for (key, value) in [
        ("data_dir", dir.path().join("data").display().to_string()),
        (
            "control_socket",
            dir.path().join("control.sock").display().to_string(),
        ),
        ("keys.provider", "software".to_owned()),
        ("s3_gateway.host", "127.0.0.1".to_owned()),
        ("s3_gateway.port", port.to_string()),
        ("admin.port", admin_port.to_string()),
        (
            "fuse.mount_point",
            dir.path().join("mnt").display().to_string(),
        ),
    ] {
        text = set(&text, key, &value);
    }
    fs::write(&config_path, &text).expect("write the config");

    let node = Daemon::start(&config_path, &log);
    let state = wait_for(
        TIMEOUT,
        "the node to answer `vh status`",
        || gateway_state(&config_path),
        || node.log(),
    );
    assert_eq!(state, "disabled", "the gateway is off by default");

    let out = vh(&config_path, &["s3-gateway", "enable"]);
    assert!(
        out.status.success(),
        "vh s3-gateway enable: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        node.log()
    );
    let edited = fs::read_to_string(&config_path).expect("read the edited config");
    let expected = text.replacen("s3_gateway:\n", "s3_gateway:\n  enabled: true\n", 1);
    assert_eq!(
        edited, expected,
        "enable must add `enabled: true` to the s3_gateway section and change nothing else"
    );
    let parsed = Config::parse(&edited).expect("the edited config parses");
    assert!(parsed.s3_gateway.enabled);
    assert_eq!(parsed.s3_gateway.port, port);
    node.stop();

    // The edited file starts the node again, gateway and all.
    let node = Daemon::start(&config_path, &log);
    let state = wait_for(
        TIMEOUT,
        "the restarted node to run its gateway",
        || gateway_state(&config_path).filter(|state| state == "running"),
        || node.log(),
    );
    assert_eq!(state, "running");
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok(),
        "the gateway accepts connections on 127.0.0.1:{port}\n{}",
        node.log()
    );
    node.stop();
}
