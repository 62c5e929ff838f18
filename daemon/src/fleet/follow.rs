//! Following the shared store: read what this daemon has not applied (one
//! consistent read), hand it to the writer, then watch from the next
//! revision and hand each response's changes on as they come.
//!
//! Whenever the watch cannot go on — etcd compacted the revision it had to
//! resume from, a change could not be applied, the watch ended — the task
//! reads again from what the daemon has applied: records are live keys, so
//! no change is lost to compaction and the daemon's own watchers see
//! ordinary changes, never a resync (scale-out.md §7). While no member
//! answers, the store is reported degraded and a read probes every half
//! second until one does.
//!
//! The fleet's epoch is recorded in the state dir (`shared-epoch`) the first
//! time it is read. An etcd that lost cfgd's keys, or holds another fleet's
//! (wiped, restored, another cluster), is not followed: shared writes stay
//! refused and status says why.
//!
//! Ends when the shutdown token is cancelled or the writer is gone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cfgd_etcd::{Client, WatchEvent};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use crate::store::etcd::keys::Keys;
use crate::store::etcd::read;
use crate::store::shared_seq;
use crate::store::status::StoreState;
use crate::writer::{Op, WriterHandle, now_ms};

/// The file in the state dir that records the fleet's epoch.
pub(crate) const EPOCH_FILE: &str = "shared-epoch";

const PROBE: Duration = Duration::from_millis(500);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What the task needs.
#[derive(Debug)]
pub(crate) struct Follow {
    /// The shared store.
    pub(crate) client: Client,
    /// Its keys.
    pub(crate) keys: Keys,
    /// The published view (what the daemon has applied).
    pub(crate) hub: Arc<Hub>,
    /// Where shared changes go.
    pub(crate) writer: WriterHandle,
    /// The store's state, reported here.
    pub(crate) state: StoreState,
    /// The state dir (for [`EPOCH_FILE`]).
    pub(crate) state_dir: PathBuf,
}

/// Starts following.
pub(crate) fn spawn(follow: Follow, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::select! {
            () = stop.cancelled() => {}
            () = follow.run() => {}
        }
    })
}

/// Why one round of reading and watching ended.
enum Again {
    /// Read again at once.
    Now,
    /// Read again after a pause (something failed).
    Later(String),
    /// Stop following (the writer is gone, or the store is another fleet's).
    Stop,
}

impl Follow {
    async fn run(self) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.round().await {
                Again::Now => backoff = FIRST_BACKOFF,
                Again::Later(why) => {
                    tracing::warn!(retry_in = ?backoff, "not in step with the shared store: {why}");
                    self.state.in_step(false, Some(why), now_ms());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Again::Stop => return,
            }
        }
    }

    /// One read, then the watch until it must start over.
    async fn round(&self) -> Again {
        let after = shared_seq(self.hub.view().revision);
        let seed = self.hub.view().profiles.clone();
        let read = match read::read(&self.client, &self.keys, after, Some(&seed)).await {
            Ok(r) => r,
            Err(e) => return Again::Later(format!("cannot read the shared state: {e}")),
        };
        let head = read.remote.head.map_or(0, |(s, _)| s);
        if let Err(why) = check_epoch(&self.state_dir, read.epoch, after, head) {
            tracing::error!("{why}");
            self.state.diverged(why, now_ms());
            return Again::Stop;
        }
        self.state.head(head);
        match self.writer.run(Op::Remote(read.remote)).await {
            Ok(_) => {}
            Err(crate::error::OpError::ShuttingDown) => return Again::Stop,
            Err(e) => return Again::Later(format!("cannot apply the shared changes: {e}")),
        }
        self.state.in_step(true, None, now_ms());
        tracing::debug!(
            shared_revision = head,
            from = read.revision + 1,
            "in step with the shared store; watching"
        );
        self.watch(read.revision + 1).await
    }

    async fn watch(&self, from: i64) -> Again {
        let mut watch = self.client.watch_prefix(self.keys.data(), from);
        let mut probe = tokio::time::interval(PROBE);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = watch.next() => match event {
                    Some(Ok(e @ WatchEvent::Events { .. })) => {
                        let events = match read::events(&self.keys, &e) {
                            Ok(ev) => ev,
                            Err(why) => return Again::Later(why),
                        };
                        if events.epoch_changed {
                            tracing::warn!("the shared store's epoch changed under the watch; reading it again");
                            return Again::Now;
                        }
                        if events.remote.records.is_empty() && events.remote.head.is_none() {
                            continue;
                        }
                        if let Some((seq, _)) = events.remote.head {
                            self.state.head(seq);
                        }
                        match self.writer.run(Op::Remote(events.remote)).await {
                            Ok(_) => {}
                            Err(crate::error::OpError::ShuttingDown) => return Again::Stop,
                            Err(e) => return Again::Later(format!("cannot apply the shared changes: {e}")),
                        }
                    }
                    Some(Ok(WatchEvent::Compacted { requested, compact_revision })) => {
                        tracing::info!(requested, compact_revision, "etcd compacted the watch's revision; reading the shared records again");
                        return Again::Now;
                    }
                    Some(Err(e)) => return Again::Later(format!("the watch ended: {e}")),
                    None => return Again::Later("the watch ended".into()),
                },
                _ = probe.tick() => self.probe().await,
            }
        }
    }

    /// While the client finds no member, asks one (a read of the head);
    /// its answer ends the degradation.
    async fn probe(&self) {
        let Some(since) = self.client.unreachable_since() else {
            return;
        };
        match self.client.get(self.keys.head()).await {
            Ok(_) => self.state.reachable(now_ms()),
            Err(e) => {
                let since_ms = since
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                self.state.unreachable(e.to_string(), since_ms);
            }
        }
    }
}

/// Checks that the shared store is the fleet this daemon's log follows
/// (recording its epoch the first time).
///
/// # Errors
/// Another epoch, or a head behind what the daemon has applied.
fn check_epoch(state_dir: &Path, epoch: u64, applied: u64, head: u64) -> Result<(), String> {
    let path = state_dir.join(EPOCH_FILE);
    let recorded = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok());
    let fix = format!(
        "shared writes are refused; to join the shared store as it is now, start this daemon on a new --state-dir (its local history stays in {})",
        state_dir.display()
    );
    match recorded {
        Some(e) if e != epoch => Err(format!(
            "the shared store holds fleet epoch {epoch}, but this daemon's log ({}) follows epoch {e}: etcd was wiped, restored or replaced; {fix}",
            path.display()
        )),
        _ if head < applied => Err(format!(
            "the shared store is at shared revision {head}, behind the {applied} this daemon has applied: etcd went back (restored from an older backup?); {fix}"
        )),
        Some(_) => Ok(()),
        None => cfgd_settings::fs::write_atomic(&path, format!("{epoch}\n").as_bytes(), 0o600)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_epoch_is_recorded_once_and_another_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        check_epoch(dir.path(), 7, 0, 0).unwrap();
        check_epoch(dir.path(), 7, 3, 5).unwrap();
        let e = check_epoch(dir.path(), 8, 3, 5).unwrap_err();
        assert!(
            e.contains("holds fleet epoch 8") && e.contains("follows epoch 7"),
            "{e}"
        );
        let e = check_epoch(dir.path(), 7, 6, 5).unwrap_err();
        assert!(e.contains("at shared revision 5, behind the 6"), "{e}");
    }
}
