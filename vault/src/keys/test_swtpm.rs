//! Test harness that runs a real swtpm on loopback, so the TPM sealer is tested against a TPM
//! and not only against the software stand-in.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
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

/// First port of the range handed to swtpm. The range ends below the kernel's default
/// ephemeral range (32768 and up), so no socket that asks for any free port is given one of
/// these while a test is between checking a port and swtpm binding it.
const PORT_RANGE_START: u32 = 20_000;

/// Number of ports in that range.
const PORT_RANGE_LEN: u32 = 12_000;

/// Offset of the next port pair within the range, shared by the tests of this process so that
/// no two of them pick the same pair.
static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

/// A port P on loopback such that P and P + 1 were both free a moment ago and were not handed
/// out before in this process. The swtpm TCTI always looks for the control channel on the port
/// after the command port.
pub(crate) fn free_port_pair() -> u16 {
    // Concurrent test processes start at different places in the range.
    let start = (std::process::id() % (PORT_RANGE_LEN / 2)) * 2;
    for _ in 0..PORT_RANGE_LEN / 2 {
        let offset = NEXT_PORT.fetch_add(2, Ordering::Relaxed);
        let port = PORT_RANGE_START + (start + offset) % PORT_RANGE_LEN;
        let port = u16::try_from(port).expect("the range ends below 32768");
        let free = |p: u16| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok();
        if free(port) && free(port + 1) {
            return port;
        }
    }
    panic!("no two adjacent free loopback ports found");
}

fn spawn(state_dir: &Path) -> (u16, Child) {
    // Another program may take the port before swtpm binds it; try again on a new one.
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
            // If swtpm failed to bind, whatever answered is not ours; it exits at once then.
            thread::sleep(Duration::from_millis(20));
            return child.try_wait().expect("poll swtpm").is_none();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("swtpm did not listen on {addr} within {START_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}
