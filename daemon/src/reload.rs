//! Hot reload: the config dir's watcher ([`crate::dirwatch`]) says which
//! paths changed; this loop re-reads them off the async threads and hands
//! the result to the writer when values or status changed.
//!
//! It never gives up: a reload the writer could not make durable (a full
//! disk) is retried with backoff until it is, and [`ReloadStatus`] says
//! meanwhile that the files on disk are not in force and why; a re-read that
//! panics keeps the last state. The loop ends when the shutdown token is
//! cancelled or the writer has stopped.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cfgd_settings::ConfigDir;
use cfgd_settings::configdir::is_relevant;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::dirwatch::{self, Batch, DirWatch, sleep_until};
use crate::error::OpError;
use crate::writer::{Op, WriterHandle, now_ms};

/// First wait before a failed reload is tried again; it doubles up to
/// [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(200);
/// Longest wait between attempts of a failed reload.
const RETRY_MAX: Duration = Duration::from_secs(10);
/// A failure that goes on is logged again at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What the reload loop is doing, for status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReloadStatus {
    /// Re-reads of the config dir since start.
    pub(crate) reloads: u64,
    /// When the last re-read finished (ms since the Unix epoch; 0: none).
    pub(crate) last_reload_ms: i64,
    /// Set while the files as last read are not in force.
    pub(crate) failing: Option<Failing>,
}

impl ReloadStatus {
    /// For status.
    pub(crate) fn to_pb(&self) -> cfgd_proto::pb::ReloadStatus {
        let f = self.failing.as_ref();
        cfgd_proto::pb::ReloadStatus {
            reloads: self.reloads,
            last_reload_unix_ms: self.last_reload_ms,
            error: f.map(|f| f.error.clone()).unwrap_or_default(),
            failed_attempts: f.map_or(0, |f| f.attempts),
            failing_since_unix_ms: f.map_or(0, |f| f.since_ms),
            next_attempt_unix_ms: f.map_or(0, |f| f.next_attempt_ms),
        }
    }
}

/// A reload that could not be applied yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failing {
    /// Why the last attempt failed.
    pub(crate) error: String,
    /// Attempts so far.
    pub(crate) attempts: u32,
    /// When the first attempt failed (ms since the Unix epoch).
    pub(crate) since_ms: i64,
    /// When the next attempt is due (ms since the Unix epoch).
    pub(crate) next_attempt_ms: i64,
}

/// Where a re-read config dir goes: the writer, or a test double.
pub(crate) trait Apply: Send + Sync + 'static {
    /// Puts `dir` in force; `detail` says which files changed.
    fn apply(
        &self,
        dir: Arc<ConfigDir>,
        detail: String,
    ) -> impl Future<Output = Result<(), OpError>> + Send;
}

impl Apply for WriterHandle {
    async fn apply(&self, dir: Arc<ConfigDir>, detail: String) -> Result<(), OpError> {
        let answer = self
            .run(Op::Reload {
                dir: dir.clone(),
                detail,
            })
            .await;
        crate::metrics::reload(crate::metrics::reload_outcome(&dir, &answer));
        answer.map(drop)
    }
}

/// How the config dir is watched: [`dirwatch::Options`] for it.
pub(crate) fn watch_options(debounce: Duration, max_wait: Duration) -> dirwatch::Options {
    dirwatch::Options {
        debounce,
        max_wait: max_wait.max(debounce),
        // catalog.d/ sits below the dir.
        recursive: true,
    }
}

/// Starts watching `dir` (which need not exist yet); `state` is the config
/// dir as last loaded. Changes made after this returns are seen.
pub(crate) fn spawn(
    dir: PathBuf,
    options: dirwatch::Options,
    state: ConfigDir,
    sink: impl Apply,
    stop: CancellationToken,
) -> (JoinHandle<()>, watch::Receiver<ReloadStatus>) {
    let filter_dir = dir.clone();
    let watch = DirWatch::spawn(
        dir,
        move |p: &Path| is_relevant(&filter_dir, p),
        options,
        &stop,
    );
    let (tx, rx) = watch::channel(ReloadStatus::default());
    let task = tokio::spawn(
        Loop {
            state: Arc::new(state),
            sink,
            status: tx,
            pending: None,
            retry_at: None,
            last_logged: None,
        }
        .run(watch, stop),
    );
    (task, rx)
}

struct Loop<S> {
    /// The config dir as last read.
    state: Arc<ConfigDir>,
    sink: S,
    status: watch::Sender<ReloadStatus>,
    /// Read but not yet in force, with the paths that changed.
    pending: Option<BTreeSet<PathBuf>>,
    /// When the next attempt of a failed reload is due.
    retry_at: Option<Instant>,
    last_logged: Option<Instant>,
}

impl<S: Apply> Loop<S> {
    async fn run(mut self, mut watch: DirWatch, stop: CancellationToken) {
        // Files changed between the first load and the watcher's start are
        // found by their identity on disk.
        self.reread(Batch::default()).await;
        loop {
            // A failed reload waits for its retry, even if files changed.
            if self.retry_at.is_none() && !self.apply().await {
                return;
            }
            let retry_at = self.retry_at;
            tokio::select! {
                () = stop.cancelled() => return,
                batch = watch.next() => match batch {
                    Some(batch) => self.reread(batch).await,
                    None => return,
                },
                () = sleep_until(retry_at) => self.retry_at = None,
            }
        }
    }

    /// Re-reads what `batch` names, off the async threads.
    async fn reread(&mut self, batch: Batch) {
        let mut next = ConfigDir::clone(&self.state);
        let (paths, rescan) = (batch.paths.clone(), batch.rescan);
        let reread = tokio::task::spawn_blocking(move || {
            let outcome = if batch.rescan {
                next.reload_all()
            } else {
                next.reload(&batch.paths)
            };
            (next, outcome)
        })
        .await;
        let (next, outcome) = match reread {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "re-reading the config dir panicked; keeping its last state");
                return;
            }
        };
        self.status.send_modify(|s| {
            s.reloads += 1;
            s.last_reload_ms = now_ms();
        });
        if !outcome.changed() {
            tracing::debug!(files = %detail(&paths), "config dir re-read; nothing changed");
            crate::memory::release_freed();
            return;
        }
        if outcome.status_changed {
            for f in next.files() {
                if let Some(error) = f.error_text() {
                    tracing::error!(file = %f.path.display(), %error, "config file not applied; keeping its last good content");
                }
            }
        }
        self.state = Arc::new(next);
        let mut changed = if rescan {
            BTreeSet::from([self.state.dir().to_owned()])
        } else {
            paths
        };
        if let Some(earlier) = self.pending.take() {
            changed.extend(earlier);
        }
        self.pending = Some(changed);
    }

    /// Hands the pending state to the writer; `false` when the writer is
    /// gone (shutdown).
    async fn apply(&mut self) -> bool {
        let Some(paths) = self.pending.take() else {
            return true;
        };
        match self.sink.apply(self.state.clone(), detail(&paths)).await {
            Ok(()) => {
                // The old state is gone; what parsing the new one freed
                // goes back to the system.
                crate::memory::release_freed();
                if let Some(f) = self.status.borrow().failing.as_ref() {
                    tracing::info!(
                        attempts = f.attempts + 1,
                        "the config files are in force again"
                    );
                }
                self.status.send_modify(|s| s.failing = None);
                self.last_logged = None;
                true
            }
            Err(OpError::ShuttingDown) => false,
            Err(e) => {
                self.pending = Some(paths);
                let attempts = self
                    .status
                    .borrow()
                    .failing
                    .as_ref()
                    .map_or(1, |f| f.attempts + 1);
                let wait = RETRY_FIRST
                    .saturating_mul(1 << (attempts - 1).min(16))
                    .min(RETRY_MAX);
                self.retry_at = Some(Instant::now() + wait);
                let error = e.to_string();
                let now = now_ms();
                self.status.send_modify(|s| {
                    let since_ms = s.failing.as_ref().map_or(now, |f| f.since_ms);
                    s.failing = Some(Failing {
                        error: error.clone(),
                        attempts,
                        since_ms,
                        next_attempt_ms: now.saturating_add(wait.as_millis() as i64),
                    });
                });
                if self.last_logged.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    self.last_logged = Some(Instant::now());
                    tracing::error!(%error, attempts, retry_in = ?wait, "the config files changed but cannot be put in force; retrying (cfg status shows it)");
                }
                true
            }
        }
    }
}

fn detail(paths: &BTreeSet<PathBuf>) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests;
