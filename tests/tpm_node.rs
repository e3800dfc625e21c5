//! A node whose master key is sealed by a real TPM: swtpm on loopback, `keys.provider: tpm`.
//! The node reports the TPM provider, keeps no software key file, and after a restart unseals
//! its key through the TPM again and serves the same bytes.

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use common::{TestNode, random_bytes, wait_for};

/// How long swtpm may take to listen.
const SWTPM_START_TIMEOUT: Duration = Duration::from_secs(10);

/// A swtpm process on loopback with its own state directory; killed when dropped.
struct Swtpm {
    _state: TempDir,
    port: u16,
    child: Child,
}

impl Swtpm {
    /// Starts swtpm on a free pair of ports (the TCTI finds the control channel at port + 1).
    ///
    /// # Panics
    /// When swtpm is not installed, with how to install it, or does not start.
    fn start() -> Self {
        let state = tempfile::tempdir().expect("create the swtpm state directory");
        for _ in 0..5 {
            let port = free_port_pair();
            let mut child = spawn_swtpm(state.path(), port);
            if wait_listening(&mut child, port) {
                return Self {
                    _state: state,
                    port,
                    child,
                };
            }
        }
        panic!("swtpm kept exiting during start-up; see its messages above");
    }

    fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        // An error means swtpm already exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port P such that P and P + 1 were both free a moment ago.
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let port = common::free_port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two adjacent free loopback ports found");
}

fn spawn_swtpm(state_dir: &Path, port: u16) -> Child {
    Command::new("swtpm")
        .arg("socket")
        .arg("--tpm2")
        .arg("--tpmstate")
        .arg(format!("dir={}", state_dir.display()))
        .arg("--server")
        .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
        .arg("--ctrl")
        .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
        .arg("--flags")
        .arg("not-need-init,startup-clear")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run swtpm ({e}); this test needs a real software TPM: install swtpm \
                 and swtpm-tools (apt-get install swtpm swtpm-tools)"
            )
        })
}

/// Waits until swtpm accepts connections; `false` if it exited first (its port was taken).
fn wait_listening(child: &mut Child, port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    wait_for(
        SWTPM_START_TIMEOUT,
        "swtpm to listen",
        || {
            if child.try_wait().expect("poll swtpm").is_some() {
                return Some(false);
            }
            // swtpm serves one client at a time; this probe connection closes at once.
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .ok()
                .map(|_| true)
        },
        || format!("swtpm on {addr}"),
    )
}

#[test]
fn tpm_sealed_node_serves_the_same_bytes_after_a_restart() {
    let swtpm = Swtpm::start();
    let tcti = swtpm.tcti();
    let mut node = TestNode::start_with(|config| {
        config.key_provider = "tpm".to_owned();
        config.tpm_tcti = Some(tcti);
    });

    let status = node.vh_json(&["status"]);
    assert_eq!(status["key_provider"], "tpm", "{status}");
    let keys = node.data_dir().join("keys");
    assert!(
        keys.join("master.sealed").is_file(),
        "no sealed master key in {}",
        keys.display()
    );
    assert!(
        !keys.join("software.kek").exists(),
        "a TPM node wrote a software key file"
    );

    node.create_bucket("sealed");
    let (access_key, secret) = node.create_credential("tpm");
    let data = random_bytes(300 * 1024);
    node.request("PUT", "/sealed/dir/object.bin")
        .creds(&access_key, &secret)
        .body(&data)
        .send()
        .assert_ok("PUT on the TPM node");

    node.restart();
    let status = node.vh_json(&["status"]);
    assert_eq!(status["key_provider"], "tpm", "{status}");
    assert!(
        node.log().contains("unsealed the master key"),
        "{}",
        node.log_report()
    );
    let back = node
        .request("GET", "/sealed/dir/object.bin")
        .creds(&access_key, &secret)
        .send();
    back.assert_ok("GET after the restart");
    common::assert_same_bytes(&back.body, &data, "object on the TPM node after a restart");
}
