//! `SyncService`: keeps remote-backed vaults in step with their upstream buckets. This node has
//! only local vaults, so the service idles; it is supervised all the same so `vh status` shows
//! it and a later remote vault needs no new wiring.

use tokio::sync::oneshot;

use crate::config::Config;
use crate::supervisor::{BoxFuture, Running, Service};

/// The sync service.
pub struct SyncService;

impl Service for SyncService {
    fn name(&self) -> &'static str {
        "SyncService"
    }

    fn enabled(&self, _config: &Config) -> bool {
        true
    }

    fn section(&self, _config: &Config) -> serde_json::Value {
        serde_json::Value::Null
    }

    fn idle(&self) -> bool {
        true
    }

    fn start<'a>(&'a self, _config: &'a Config) -> BoxFuture<'a, anyhow::Result<Running>> {
        Box::pin(async move {
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                let _ = stopped.await;
                Ok(())
            });
            Ok(Running {
                task,
                stop,
                listen: None,
            })
        })
    }
}
