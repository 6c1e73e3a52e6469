//! Graceful shutdown: Kubernetes sends SIGTERM, waits `terminationGracePeriodSeconds`, then sends
//! SIGKILL. Everything a binary spawns goes through one [`TaskTracker`] so the drain knows what is
//! still running and can say what the grace period cut off.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A cancellation token plus the tracker of the tasks that must finish before exit. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Shutdown {
    /// A fresh, not yet cancelled shutdown.
    pub fn new() -> Self {
        Self::default()
    }

    /// The token tasks select on to learn that shutdown has begun.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// The tracker of in-flight tasks.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Spawns a task the drain waits for.
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(fut)
    }

    /// Starts the shutdown: every holder of the token sees it cancelled.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Whether shutdown has begun.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when shutdown has begun.
    pub async fn cancelled(&self) {
        self.token.cancelled().await;
    }

    /// Closes the tracker and waits up to `grace` for the tracked tasks. Returns `true` when all of
    /// them finished; otherwise logs how many the grace period cut off and returns `false`.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            return true;
        }
        tracing::warn!(
            grace_period = ?grace,
            unfinished_tasks = self.tracker.len(),
            "grace period expired: abandoning tasks that did not finish"
        );
        false
    }
}

/// The SIGTERM and SIGINT handlers. They are installed by [`Signals::install`], before the admin
/// server reports ready and before the binary's task runs: a handler that is installed only when
/// first awaited leaves a window in which the default disposition kills the process undrained.
pub struct Signals {
    handlers: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    /// Installs the handlers now. Must be called inside the tokio runtime.
    pub fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(t), Ok(i)) => Self {
                handlers: Some((t, i)),
            },
            (Err(e), _) | (_, Err(e)) => {
                // Without signal handlers the process can still be killed; it just cannot drain.
                tracing::error!(error = %e, "cannot install signal handlers; graceful drain disabled");
                Self { handlers: None }
            }
        }
    }

    /// Waits for SIGTERM or SIGINT and returns the signal's name.
    pub async fn recv(&mut self) -> &'static str {
        let Some((term, int)) = self.handlers.as_mut() else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_tasks_that_finish_in_time() {
        let sd = Shutdown::new();
        let token = sd.token();
        sd.spawn(async move {
            token.cancelled().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        });
        sd.cancel();
        assert!(sd.drain(Duration::from_secs(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn drain_gives_up_after_grace() {
        let sd = Shutdown::new();
        sd.spawn(async { tokio::time::sleep(Duration::from_secs(3600)).await });
        sd.cancel();
        let start = tokio::time::Instant::now();
        assert!(!sd.drain(Duration::from_secs(2)).await);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
