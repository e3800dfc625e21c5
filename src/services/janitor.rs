//! `JanitorService`: housekeeping on a timer. It aborts multipart uploads older than
//! `s3_gateway.multipart.abort_after_days` (deleting their sealed parts) and retries blob
//! deletions that an earlier failure left queued.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use vault::Engine;

use crate::config::Config;
use crate::supervisor::{BoxFuture, Running, Service};

/// The janitor over one engine.
pub struct JanitorService {
    engine: Arc<Engine>,
}

impl JanitorService {
    /// The janitor over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

fn max_upload_age(config: &Config) -> Duration {
    Duration::from_secs(
        config
            .s3_gateway
            .multipart
            .abort_after_days
            .saturating_mul(86_400),
    )
}

impl Service for JanitorService {
    fn name(&self) -> &'static str {
        "JanitorService"
    }

    fn enabled(&self, _config: &Config) -> bool {
        true
    }

    fn section(&self, config: &Config) -> serde_json::Value {
        serde_json::json!({ "abort_after_days": config.s3_gateway.multipart.abort_after_days })
    }

    fn start<'a>(&'a self, config: &'a Config) -> BoxFuture<'a, anyhow::Result<Running>> {
        Box::pin(async move {
            let engine = Arc::clone(&self.engine);
            let age = max_upload_age(config);
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                tokio::select! {
                    () = run(engine, age, JANITOR_INTERVAL) => {}
                    _ = stopped => {}
                }
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

/// How often the janitor runs.
pub const JANITOR_INTERVAL: Duration = Duration::from_secs(3600);

/// One janitor pass: aborts uploads started more than `max_upload_age` ago.
///
/// # Errors
/// A metadata or blob store failure; the next pass retries.
pub fn sweep(engine: &Engine, max_upload_age: Duration) -> Result<usize, vault::VaultError> {
    let age_ms = i64::try_from(max_upload_age.as_millis()).unwrap_or(i64::MAX);
    let aborted = engine.abort_uploads_older_than(vault::meta::now_ms().saturating_sub(age_ms))?;
    engine.collect_garbage()?;
    Ok(aborted)
}

/// Runs [`sweep`] now and then every `interval`, until the task is dropped.
pub async fn run(engine: Arc<Engine>, max_upload_age: Duration, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let engine = Arc::clone(&engine);
        match tokio::task::spawn_blocking(move || sweep(&engine, max_upload_age)).await {
            Ok(Ok(0)) => tracing::debug!("janitor pass: nothing to abort"),
            Ok(Ok(aborted)) => tracing::info!(aborted, "janitor aborted expired multipart uploads"),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "janitor pass failed; it runs again later");
            }
            Err(err) => tracing::warn!(error = %err, "janitor task failed; it runs again later"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vault::meta::ObjectAttrs;
    use vault::{EngineConfig, KeyProviderChoice, ObjectKey};

    #[test]
    fn sweeps_abort_only_uploads_past_their_age() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(&EngineConfig {
            data_dir: dir.path().to_owned(),
            key_provider: KeyProviderChoice::Software,
            tpm_tcti: None,
            part_dir: None,
        })
        .unwrap();
        let vault = engine.create_local_bucket("bkt", true).unwrap().vault;
        let key = ObjectKey::parse("k").unwrap();
        let upload = engine
            .create_upload(vault, &key, ObjectAttrs::default(), None)
            .unwrap();
        let mut writer = engine.begin_part(vault).unwrap();
        writer.write(b"part").unwrap();
        engine.commit_part(&upload, 1, writer, None).unwrap();

        assert_eq!(sweep(&engine, Duration::from_secs(3600)).unwrap(), 0);
        assert!(engine.upload(vault, &upload.upload_id).is_ok());
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(sweep(&engine, Duration::from_millis(10)).unwrap(), 1);
        assert!(engine.upload(vault, &upload.upload_id).is_err());
        assert!(
            engine.blob_store().list().unwrap().is_empty(),
            "the part's blob is deleted"
        );
    }
}
