//! One service's bookkeeping: state, start time, restarts, last error, and the running task.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vh_cli::protocol::ServiceStatus;

use super::{HEALTHY_AFTER, MAX_BACKOFF, Running};

/// How long a stopping service gets to finish before its task is aborted.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// What a service is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceState {
    /// Serving.
    Running,
    /// Running, with nothing to do yet.
    Idle,
    /// Not running, because the config disables it.
    Disabled,
    /// Stopped on request.
    Stopped,
    /// Failed; the watchdog will try again.
    Restarting,
    /// Failed to start.
    Failed,
}

impl ServiceState {
    /// The name `vh status` shows.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Idle => "idle",
            Self::Disabled => "disabled",
            Self::Stopped => "stopped",
            Self::Restarting => "restarting",
            Self::Failed => "failed",
        }
    }
}

/// The supervisor's record of one service.
pub(super) struct Slot {
    name: &'static str,
    state: ServiceState,
    pub(super) enabled: bool,
    pub(super) listen: Option<String>,
    started_at: Option<SystemTime>,
    started: Option<Instant>,
    pub(super) restarts: u32,
    error: Option<String>,
    running: Option<Running>,
    /// Bumped whenever the instance is replaced, so stale watchdogs stand down.
    generation: u64,
    backoff: Duration,
    last_check: Option<Instant>,
}

impl Slot {
    pub(super) fn new(name: &'static str) -> Self {
        Self {
            name,
            state: ServiceState::Stopped,
            enabled: false,
            listen: None,
            started_at: None,
            started: None,
            restarts: 0,
            error: None,
            running: None,
            generation: 0,
            backoff: Duration::ZERO,
            last_check: None,
        }
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    pub(super) fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    pub(super) fn set_running(&mut self, running: Running, idle: bool) {
        self.state = if idle {
            ServiceState::Idle
        } else {
            ServiceState::Running
        };
        self.listen.clone_from(&running.listen);
        self.started_at = Some(SystemTime::now());
        self.started = Some(Instant::now());
        self.error = None;
        self.running = Some(running);
        self.last_check = Some(Instant::now());
    }

    pub(super) fn set_disabled(&mut self) {
        self.state = ServiceState::Disabled;
        self.listen = None;
        self.error = None;
        self.backoff = Duration::ZERO;
    }

    pub(super) fn set_failed(&mut self, error: String) {
        self.state = ServiceState::Failed;
        self.listen = None;
        self.error = Some(error);
    }

    /// Records a failure and returns how long to wait before the next start.
    pub(super) fn set_restarting(&mut self, error: String) -> Duration {
        // Only a run that started and stayed up resets the backoff; forgetting the start here
        // keeps failed starts that follow from counting as one.
        let stayed_up = self
            .started
            .take()
            .is_some_and(|at| at.elapsed() >= HEALTHY_AFTER);
        self.backoff = if stayed_up || self.backoff.is_zero() {
            Duration::from_millis(500)
        } else {
            (self.backoff * 2).min(MAX_BACKOFF)
        };
        self.state = ServiceState::Restarting;
        self.error = Some(error);
        self.running = None;
        self.backoff
    }

    /// Whether a health check is due, and if so, marks it done.
    pub(super) fn health_due(&mut self, interval: Duration) -> bool {
        let due = self.last_check.is_none_or(|at| at.elapsed() >= interval);
        if due {
            self.last_check = Some(Instant::now());
        }
        due
    }

    /// The outcome of the instance's task if it has ended.
    pub(super) async fn take_finished(&mut self) -> Option<String> {
        let finished = self.running.as_ref().is_some_and(|r| r.task.is_finished());
        if !finished {
            return None;
        }
        let running = self.running.take().expect("checked above");
        let outcome = match running.task.await {
            Ok(Ok(())) => "its task ended on its own".to_owned(),
            Ok(Err(err)) => format!("{err:#}"),
            Err(err) if err.is_cancelled() => "its task was aborted".to_owned(),
            Err(_) => "its task panicked".to_owned(),
        };
        Some(outcome)
    }

    /// Asks the running instance to stop and waits for it (aborting it after a grace period).
    pub(super) async fn stop(&mut self) {
        let Some(Running { task, stop, .. }) = self.running.take() else {
            return;
        };
        let _ = stop.send(());
        let abort = task.abort_handle();
        if tokio::time::timeout(STOP_GRACE, task).await.is_err() {
            tracing::warn!(
                service = self.name,
                "service did not stop in time and was aborted"
            );
            abort.abort();
        }
        self.state = ServiceState::Stopped;
        self.listen = None;
    }

    /// Aborts the running task; `None` when nothing runs.
    pub(super) fn abort(&self) -> Option<()> {
        self.running.as_ref().map(|running| running.task.abort())
    }

    pub(super) fn status(&self, requests: u64, errors: u64) -> ServiceStatus {
        ServiceStatus {
            name: self.name.to_owned(),
            state: self.state.as_str().to_owned(),
            enabled: self.enabled,
            listen: self.listen.clone(),
            started_at: self
                .started_at
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
            restarts: self.restarts,
            error: self.error.clone(),
            requests,
            errors,
        }
    }
}
