//! Watching the config file: on a change the daemon validates the new file and restarts only
//! the services whose section changed; an invalid file is refused with a log line naming the
//! key, and the running config stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use notify::{RecursiveMode, Watcher};

use crate::node::Node;

/// Editors save in several steps; changes closer together than this are read once.
const SETTLE: Duration = Duration::from_millis(300);

/// Watches `path` until the returned watcher is dropped, applying each valid change to `node`.
///
/// # Errors
/// The directory of `path` cannot be watched.
pub fn watch_config(path: &Path, node: Arc<Node>) -> anyhow::Result<notify::RecommendedWatcher> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let file_name = path.file_name().map(ToOwned::to_owned);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let touches_file = event
            .paths
            .iter()
            .any(|p| p.file_name() == file_name.as_deref());
        if touches_file && (event.kind.is_modify() || event.kind.is_create()) {
            let _ = tx.send(());
        }
    })
    .context("create a file watcher")?;
    // The directory, not the file: an atomic save replaces the file with a new inode.
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watch {} for config changes", dir.display()))?;
    let path: PathBuf = path.to_owned();
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(SETTLE).await;
            while rx.try_recv().is_ok() {}
            node.reload_config(&path).await;
        }
    });
    Ok(watcher)
}
