//! The control socket: `vh`'s way into the daemon.
//!
//! One JSON request line in, one JSON reply line out. Only root and the daemon's own user may
//! connect (checked with the peer's credentials), since the socket can mint credentials.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use vh_cli::protocol::{Envelope, Output, PROTOCOL_VERSION, Reply};

use crate::node::Node;

/// The longest request line accepted.
const MAX_REQUEST_LINE: u64 = 64 * 1024;

/// Binds the control socket at `path`, replacing a stale one.
///
/// # Errors
/// The directory can't be created or the socket can't be bound.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("create the control socket's directory {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another node is already listening on the control socket {}; stop it first",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("remove the stale control socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("bind the control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("restrict the control socket {}", path.display()))?;
    Ok(listener)
}

/// Serves control connections until the task is dropped.
pub async fn serve(listener: UnixListener, node: Arc<Node>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let node = Arc::clone(&node);
                tokio::spawn(async move {
                    if let Err(err) = serve_connection(stream, &node).await {
                        tracing::debug!(error = %format!("{err:#}"), "control connection failed");
                    }
                });
            }
            Err(err) => {
                tracing::warn!(error = %err, "accepting a control connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

fn peer_allowed(stream: &UnixStream) -> Result<(), String> {
    let own_uid = nix_free_uid();
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == 0 || Some(cred.uid()) == own_uid => Ok(()),
        Ok(cred) => Err(format!(
            "permission denied: uid {} may not administer this node; run vh as root or as the node's service user",
            cred.uid()
        )),
        Err(err) => Err(format!("cannot check the caller's credentials: {err}")),
    }
}

/// The daemon's own uid, read from the owner of `/proc/self` (no libc call needed).
fn nix_free_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

async fn serve_connection(stream: UnixStream, node: &Arc<Node>) -> anyhow::Result<()> {
    let allowed = peer_allowed(&stream);
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_REQUEST_LINE))
        .read_line(&mut line)
        .await
        .context("read the request")?;
    let reply = match allowed {
        Err(message) => Reply::Error { message },
        Ok(()) => match serde_json::from_str::<Envelope>(&line) {
            Err(err) => Reply::Error {
                message: format!(
                    "malformed control request ({err}); use a vh of the same version as the node"
                ),
            },
            Ok(envelope) if envelope.version != PROTOCOL_VERSION => Reply::Error {
                message: format!(
                    "vh speaks control protocol {} but the node speaks {PROTOCOL_VERSION}; use the vh installed with the node",
                    envelope.version
                ),
            },
            Ok(envelope) => match node.handle(envelope.request).await {
                Ok(result) => Reply::Ok { result },
                Err(err) => Reply::Error {
                    message: format!("{err:#}"),
                },
            },
        },
    };
    let mut bytes = serde_json::to_vec(&reply).context("encode the reply")?;
    bytes.push(b'\n');
    write.write_all(&bytes).await.context("send the reply")?;
    Ok(())
}

/// Shorthand for a plain confirmation.
pub fn done(message: impl Into<String>) -> Output {
    Output::Done {
        message: message.into(),
    }
}
