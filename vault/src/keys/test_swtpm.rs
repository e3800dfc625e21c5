//! Test harness that runs a real swtpm on loopback, so the TPM sealer is tested against a TPM
//! and not only against the software stand-in.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long swtpm may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A swtpm process with its own state directory; killed when dropped.
pub(crate) struct Swtpm {
    state: TempDir,
    port: u16,
    child: Child,
}

impl Swtpm {
    /// Starts swtpm on a fresh state directory.
    ///
    /// # Panics
    /// When swtpm is not installed (so the TPM tests fail rather than pass unchecked) or does
    /// not start listening in time.
    pub(crate) fn start() -> Self {
        let state = tempfile::tempdir().expect("create swtpm state directory");
        let (port, child) = spawn(state.path());
        Self { state, port, child }
    }

    /// Stops swtpm and starts it again on the same state directory, as after a reboot.
    pub(crate) fn restart(&mut self) {
        self.stop();
        let (port, child) = spawn(self.state.path());
        self.port = port;
        self.child = child;
    }

    /// The TCTI string that reaches this swtpm.
    pub(crate) fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    fn stop(&mut self) {
        // Errors mean the process already exited, which is the state we want.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port P on loopback such that P and P + 1 were both free a moment ago. The swtpm TCTI
/// always looks for the control channel on the port after the command port.
pub(crate) fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind loopback port");
        let port = first
            .local_addr()
            .expect("local address of bound socket")
            .port();
        let Some(next) = port.checked_add(1) else {
            continue;
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, next)).is_ok() {
            return port;
        }
    }
    panic!("no two adjacent free loopback ports found");
}

fn spawn(state_dir: &Path) -> (u16, Child) {
    // Another test may grab the same free port before swtpm binds it; try again on a new one.
    for _ in 0..5 {
        let port = free_port_pair();
        let mut child = spawn_on(state_dir, port);
        if wait_until_listening(&mut child, port) {
            return (port, child);
        }
    }
    panic!("swtpm kept exiting during start-up; see its messages above");
}

fn spawn_on(state_dir: &Path, port: u16) -> Child {
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
                "cannot run swtpm ({e}); the TPM tests need it: install swtpm and swtpm-tools \
                 (apt-get install swtpm swtpm-tools)"
            )
        })
}

/// Waits for swtpm to accept connections; `false` if it exited first.
fn wait_until_listening(child: &mut Child, port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if child.try_wait().expect("poll swtpm").is_some() {
            return false;
        }
        // swtpm serves one client at a time; this probe connection is closed at once.
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("swtpm did not listen on {addr} within {START_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}
