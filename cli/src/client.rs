//! Finding the daemon's control socket and exchanging one request with it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use vh_cli::protocol::{Envelope, Output, PROTOCOL_VERSION, Reply, Request};
use vh_cli::{DEFAULT_CONFIG_PATH, DEFAULT_CONTROL_SOCKET, dev};

/// How long `vh` waits for the daemon to answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// The socket to use: `--socket`, else `--dev`'s, else the config file's `control_socket`,
/// else the default.
pub fn socket_path(socket: Option<PathBuf>, config: Option<PathBuf>, dev_mode: bool) -> PathBuf {
    if let Some(socket) = socket {
        return socket;
    }
    if dev_mode {
        return PathBuf::from(dev::CONTROL_SOCKET);
    }
    let config = config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    control_socket_from_config(&config).unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET))
}

#[derive(serde::Deserialize)]
struct SocketOnly {
    control_socket: Option<PathBuf>,
}

fn control_socket_from_config(path: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(path).ok()?;
    let parsed: SocketOnly = serde_norway::from_str(&text).ok()?;
    parsed.control_socket
}

/// Sends `request` and returns the daemon's output.
pub fn call(socket: &Path, request: Request) -> anyhow::Result<Output> {
    let mut stream = UnixStream::connect(socket).map_err(|err| {
        let hint = match err.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                "is the node running? Start it with `vaulthalla` (or `systemctl start vaulthalla`), \
                 or point vh at its socket with --socket, --config or --dev"
            }
            std::io::ErrorKind::PermissionDenied => {
                "run vh with sudo, or as a member of the node's service group (e.g. \
                 `sudo usermod -aG vaulthalla $USER`, then log in again)"
            }
            _ => "check that the node is running and the socket path is right",
        };
        anyhow!("cannot reach the node's control socket at {}: {err}; {hint}", socket.display())
    })?;
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .context("set a timeout on the control socket")?;
    let envelope = Envelope {
        version: PROTOCOL_VERSION,
        request,
    };
    let mut line = serde_json::to_vec(&envelope).context("encode the request")?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .context("send the request to the node")?;

    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .context("read the node's reply")?;
    if reply.is_empty() {
        bail!("the node closed the control connection without answering; see its log");
    }
    match serde_json::from_str::<Reply>(&reply).context("decode the node's reply")? {
        Reply::Ok { result } => Ok(result),
        Reply::Error { message } => Err(anyhow!(message)),
    }
}
