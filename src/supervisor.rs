//! The runtime manager: the node's services by name, each started, stopped and restarted on
//! its own, each reporting its state, and a watchdog that brings back a service that dies.
//!
//! A service is anything that can be started from the config into a running task with a stop
//! signal ([`Service`]). The supervisor keeps one [`Slot`] per service with its state, start
//! time, restart count and last error. When a service's task ends without having been asked to
//! stop (it returned an error, panicked, or was aborted), or its health check fails three times
//! in a row, the watchdog logs why and starts it again after a backoff that doubles up to
//! [`MAX_BACKOFF`] and resets once the service has stayed up for [`HEALTHY_AFTER`].

mod slot;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinHandle;
use vh_cli::protocol::ServiceStatus;

use slot::Slot;

use crate::config::Config;

/// The longest wait before a restart.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a restarted service must stay up before its backoff starts over.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// How often health checks run.
const HEALTH_INTERVAL: Duration = Duration::from_secs(10);
/// Failed health checks in a row that count as a dead service.
const HEALTH_FAILURES: u32 = 3;

/// A boxed future, for the object-safe [`Service`] trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A service as it runs: its task, the way to ask it to stop, and where it listens.
pub struct Running {
    /// Ends when the service stops; an `Err` or a panic is a failure.
    pub task: JoinHandle<anyhow::Result<()>>,
    /// Asks the service to stop gracefully.
    pub stop: oneshot::Sender<()>,
    /// The address it listens on, if any.
    pub listen: Option<String>,
}

/// One part of the node that the supervisor runs.
pub trait Service: Send + Sync + 'static {
    /// Its name in logs and `vh status`, e.g. `S3GatewayService`.
    fn name(&self) -> &'static str;

    /// Whether `config` asks for it to run.
    fn enabled(&self, config: &Config) -> bool;

    /// The part of `config` it depends on; a change there restarts it and nothing else.
    fn section(&self, config: &Config) -> serde_json::Value;

    /// Starts it.
    fn start<'a>(&'a self, config: &'a Config) -> BoxFuture<'a, anyhow::Result<Running>>;

    /// Checks that a running instance still serves; the default trusts the task.
    fn check<'a>(&'a self, _listen: Option<&'a str>) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Whether the service, while running, has nothing to do (shown as `idle`).
    fn idle(&self) -> bool {
        false
    }

    /// Counters to show in `vh status`: requests served and errors.
    fn counters(&self) -> (u64, u64) {
        (0, 0)
    }
}

struct Supervised {
    service: Box<dyn Service>,
    slot: Arc<Mutex<Slot>>,
}

/// Every service of the node.
pub struct Supervisor {
    services: Vec<Supervised>,
}

impl Supervisor {
    /// A supervisor over `services`, none started yet.
    pub fn new(services: Vec<Box<dyn Service>>) -> Self {
        let services = services
            .into_iter()
            .map(|service| Supervised {
                slot: Arc::new(Mutex::new(Slot::new(service.name()))),
                service,
            })
            .collect();
        Self { services }
    }

    fn find(&self, name: &str) -> anyhow::Result<&Supervised> {
        self.services
            .iter()
            .find(|s| s.service.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                anyhow::anyhow!("no service named {name}; see `vh status` for the names")
            })
    }

    /// Starts every service `config` enables; failures are recorded, not returned, so one
    /// broken service does not keep the others down.
    pub async fn start_all(self: &Arc<Self>, config: &Config) {
        for index in 0..self.services.len() {
            self.apply(index, config).await;
        }
    }

    /// Restarts the services whose config section differs between `old` and `new` (and only
    /// those); returns their names.
    pub async fn reconfigure(self: &Arc<Self>, old: &Config, new: &Config) -> Vec<&'static str> {
        let mut restarted = Vec::new();
        for (index, supervised) in self.services.iter().enumerate() {
            let service = &supervised.service;
            if service.section(old) != service.section(new) {
                self.apply(index, new).await;
                restarted.push(service.name());
            }
        }
        restarted
    }

    /// Restarts the service `name` with `config` (or stops it, if `config` disables it).
    ///
    /// # Errors
    /// No such service.
    pub async fn restart(
        self: &Arc<Self>,
        name: &str,
        config: &Config,
    ) -> anyhow::Result<ServiceStatus> {
        let index = self.index_of(name)?;
        self.apply(index, config).await;
        Ok(self.status_of(index).await)
    }

    fn index_of(&self, name: &str) -> anyhow::Result<usize> {
        let target = self.find(name)?.service.name();
        Ok(self
            .services
            .iter()
            .position(|s| s.service.name() == target)
            .expect("found above"))
    }

    /// Stops, then starts when enabled; the watchdog takes over from there.
    async fn apply(self: &Arc<Self>, index: usize, config: &Config) {
        let supervised = &self.services[index];
        let mut slot = supervised.slot.lock().await;
        slot.stop().await;
        slot.enabled = supervised.service.enabled(config);
        if !slot.enabled {
            slot.set_disabled();
            return;
        }
        let generation = slot.next_generation();
        match supervised.service.start(config).await {
            Ok(running) => {
                slot.set_running(running, supervised.service.idle());
                drop(slot);
                self.watch(index, generation, config.clone());
            }
            Err(err) => {
                tracing::error!(service = supervised.service.name(), error = %format!("{err:#}"), "service failed to start");
                slot.set_failed(format!("{err:#}"));
                drop(slot);
                self.retry_later(index, generation, config.clone(), Duration::from_secs(1));
            }
        }
    }

    /// The watchdog of one started instance: waits for it to end or fail its health checks,
    /// then restarts it unless it was asked to stop or replaced meanwhile.
    fn watch(self: &Arc<Self>, index: usize, generation: u64, config: Config) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let supervised = &this.services[index];
            let name = supervised.service.name();
            let reason = this.wait_for_failure(index, generation).await;
            let Some(reason) = reason else { return };
            let backoff = {
                let mut slot = supervised.slot.lock().await;
                if slot.generation() != generation {
                    return;
                }
                slot.set_restarting(reason.clone())
            };
            tracing::error!(service = name, reason = %reason, backoff_ms = backoff.as_millis(), "service died; the watchdog restarts it");
            this.retry_later(index, generation, config, backoff);
        });
    }

    /// Resolves with the failure of the instance, or `None` when it was stopped or replaced.
    async fn wait_for_failure(&self, index: usize, generation: u64) -> Option<String> {
        let supervised = &self.services[index];
        let mut failures = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (finished, listen, due) = {
                let mut slot = supervised.slot.lock().await;
                if slot.generation() != generation {
                    return None;
                }
                if let Some(outcome) = slot.take_finished().await {
                    return Some(outcome);
                }
                (false, slot.listen.clone(), slot.health_due(HEALTH_INTERVAL))
            };
            debug_assert!(!finished);
            if !due {
                continue;
            }
            match supervised.service.check(listen.as_deref()).await {
                Ok(()) => failures = 0,
                Err(err) => {
                    failures += 1;
                    tracing::warn!(service = supervised.service.name(), failures, error = %format!("{err:#}"), "health check failed");
                    if failures >= HEALTH_FAILURES {
                        return Some(format!("failed {failures} health checks in a row: {err:#}"));
                    }
                }
            }
        }
    }

    fn retry_later(
        self: &Arc<Self>,
        index: usize,
        generation: u64,
        config: Config,
        backoff: Duration,
    ) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(backoff).await;
            let supervised = &this.services[index];
            {
                let slot = supervised.slot.lock().await;
                if slot.generation() != generation || !slot.enabled {
                    return;
                }
            }
            this.restart_after_failure(index, config).await;
        });
    }

    async fn restart_after_failure(self: &Arc<Self>, index: usize, config: Config) {
        let supervised = &self.services[index];
        let mut slot = supervised.slot.lock().await;
        slot.stop().await;
        let generation = slot.next_generation();
        slot.restarts += 1;
        match supervised.service.start(&config).await {
            Ok(running) => {
                tracing::info!(
                    service = supervised.service.name(),
                    restarts = slot.restarts,
                    "service restarted"
                );
                slot.set_running(running, supervised.service.idle());
                drop(slot);
                self.watch(index, generation, config);
            }
            Err(err) => {
                let message = format!("{err:#}");
                let backoff = slot.set_restarting(message.clone());
                tracing::error!(service = supervised.service.name(), error = %message, backoff_ms = backoff.as_millis(), "service failed to restart");
                drop(slot);
                self.retry_later(index, generation, config, backoff);
            }
        }
    }

    /// Stops the service `name` until it is started again; the watchdog leaves it alone.
    ///
    /// # Errors
    /// No such service.
    pub async fn stop(&self, name: &str) -> anyhow::Result<ServiceStatus> {
        let index = self.index_of(name)?;
        {
            let mut slot = self.services[index].slot.lock().await;
            slot.next_generation();
            slot.stop().await;
        }
        Ok(self.status_of(index).await)
    }

    /// Stops every service.
    pub async fn stop_all(&self) {
        for supervised in &self.services {
            let mut slot = supervised.slot.lock().await;
            slot.next_generation();
            slot.stop().await;
        }
    }

    /// Aborts a service's task as if it had crashed, so the watchdog can be seen at work.
    ///
    /// # Errors
    /// No such service, or it is not running.
    pub async fn kill(&self, name: &str) -> anyhow::Result<()> {
        let supervised = self.find(name)?;
        let slot = supervised.slot.lock().await;
        slot.abort()
            .ok_or_else(|| anyhow::anyhow!("{} is not running", supervised.service.name()))
    }

    async fn status_of(&self, index: usize) -> ServiceStatus {
        let supervised = &self.services[index];
        let (requests, errors) = supervised.service.counters();
        supervised.slot.lock().await.status(requests, errors)
    }

    /// Every service's state, in a fixed order.
    pub async fn status(&self) -> Vec<ServiceStatus> {
        let mut all = Vec::with_capacity(self.services.len());
        for index in 0..self.services.len() {
            all.push(self.status_of(index).await);
        }
        all
    }
}
