//! The control socket: `vh`'s way into the daemon.
//!
//! One JSON request line in, one JSON reply line out. Since the socket can mint credentials and
//! delete vaults, only root, the daemon's own user and members of the daemon's group may use it.
//! The socket file is mode 0660 and belongs to the daemon's group, and every connection is checked
//! again with the peer's credentials (`SO_PEERCRED`): its uid, its gid, and the supplementary
//! groups of its process as `/proc/<pid>/status` lists them.

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
    let owner = Identity::of_this_process().context("read the daemon's uid and gid")?;
    std::os::unix::fs::chown(path, None, Some(owner.gid)).with_context(|| {
        format!(
            "give the control socket {} to the daemon's group (gid {})",
            path.display(),
            owner.gid
        )
    })?;
    Ok(listener)
}

/// Serves control connections until the task is dropped.
pub async fn serve(listener: UnixListener, node: Arc<Node>) {
    let owner = match Identity::of_this_process() {
        Ok(owner) => Some(owner),
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), "only root may use the control socket");
            None
        }
    };
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let node = Arc::clone(&node);
                tokio::spawn(async move {
                    if let Err(err) = serve_connection(stream, owner, &node).await {
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

/// A process's effective uid and gid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Identity {
    uid: u32,
    gid: u32,
}

impl Identity {
    fn of_this_process() -> anyhow::Result<Self> {
        let status =
            std::fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
        let uid = status_ids(&status, "Uid:").and_then(|ids| ids.get(1).copied());
        let gid = status_ids(&status, "Gid:").and_then(|ids| ids.get(1).copied());
        match (uid, gid) {
            (Some(uid), Some(gid)) => Ok(Self { uid, gid }),
            _ => anyhow::bail!("/proc/self/status has no Uid: or Gid: line"),
        }
    }
}

/// The numbers on the `field` line of a `/proc/<pid>/status` file (`Uid:` lists real,
/// effective, saved and file-system ids; `Groups:` the supplementary groups).
fn status_ids(status: &str, field: &str) -> Option<Vec<u32>> {
    let line = status.lines().find_map(|line| line.strip_prefix(field))?;
    Some(
        line.split_whitespace()
            .filter_map(|id| id.parse().ok())
            .collect(),
    )
}

/// Whether the connecting process may administer the node: root, the daemon's user, or a member
/// of the daemon's group (as its primary group or a supplementary one).
fn peer_allowed(stream: &UnixStream, owner: Option<Identity>) -> Result<(), String> {
    let cred = stream
        .peer_cred()
        .map_err(|err| format!("cannot check the caller's credentials: {err}"))?;
    let uid = cred.uid();
    if uid == 0 {
        return Ok(());
    }
    if let Some(owner) = owner {
        let member = cred.gid() == owner.gid
            || cred
                .pid()
                .is_some_and(|pid| supplementary_groups(pid, uid).contains(&owner.gid));
        if uid == owner.uid || member {
            return Ok(());
        }
    }
    tracing::info!(uid, pid = ?cred.pid(), "control connection refused");
    let (group, name) = match owner {
        Some(owner) => {
            let name = group_name(owner.gid);
            let shown = match &name {
                Some(name) => format!("{name} (gid {})", owner.gid),
                None => format!("gid {}", owner.gid),
            };
            (shown, name.unwrap_or_else(|| "GROUP".to_owned()))
        }
        None => ("group".to_owned(), "GROUP".to_owned()),
    };
    Err(format!(
        "permission denied: uid {uid} may not administer this node; run vh with sudo, or join \
         the node's group {group} with `sudo usermod -aG {name} USER` and log in again"
    ))
}

/// The supplementary groups of process `pid`, if it still belongs to `uid` (a process that has
/// exited and whose pid was reused by another user's process yields none).
fn supplementary_groups(pid: i32, uid: u32) -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    let same_user = status_ids(&status, "Uid:").is_some_and(|ids| ids.contains(&uid));
    if !same_user {
        return Vec::new();
    }
    status_ids(&status, "Groups:").unwrap_or_default()
}

/// The name `/etc/group` gives group `gid`.
fn group_name(gid: u32) -> Option<String> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == gid).then(|| name.to_owned())
    })
}

async fn serve_connection(
    stream: UnixStream,
    owner: Option<Identity>,
    node: &Arc<Node>,
) -> anyhow::Result<()> {
    let allowed = peer_allowed(&stream, owner);
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

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tvh\nUmask:\t0022\nUid:\t1000\t1001\t1000\t1000\n\
                          Gid:\t100\t101\t100\t100\nGroups:\t4 24 998 \nVmPeak:\t1 kB\n";

    #[test]
    fn status_lines_give_ids_and_supplementary_groups() {
        assert_eq!(
            status_ids(STATUS, "Uid:"),
            Some(vec![1000, 1001, 1000, 1000])
        );
        assert_eq!(status_ids(STATUS, "Groups:"), Some(vec![4, 24, 998]));
        assert_eq!(status_ids("Groups:\n", "Groups:"), Some(vec![]));
        assert_eq!(status_ids(STATUS, "Missing:"), None);
    }

    #[test]
    fn this_process_has_an_identity() {
        let me = Identity::of_this_process().unwrap();
        let dir = std::fs::metadata("/proc/self").map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid()
        });
        assert_eq!(Some(me.uid), dir.ok());
        if me.gid == 0 {
            assert_eq!(group_name(0).as_deref(), Some("root"));
        }
        assert_eq!(group_name(u32::MAX - 7), None);
    }
}
