//! The store's state as status and health report it: which store, and for
//! the etcd store whether it is reachable (and since when not), the shared
//! revision applied and the newest seen.
//!
//! Every part that talks to etcd reports here (the writer's commits, the
//! task that follows the shared store, the fleet registry); the last word
//! wins, so a member that answers again clears the degradation whoever
//! noticed it. A [`StoreState`] is cheap to clone; clones share one state.

use std::sync::Arc;

use tokio::sync::watch;

/// What status shows about the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStatus {
    /// `file` or `etcd`.
    pub kind: &'static str,
    /// The etcd members.
    pub endpoints: Vec<String>,
    /// Since when (ms since the Unix epoch) shared writes are refused.
    pub degraded_since_ms: Option<i64>,
    /// Why: what was tried and what it answered.
    pub error: Option<String>,
    /// The last time a member answered.
    pub last_contact_ms: Option<i64>,
    /// Whether the daemon has read the shared state since it started (or
    /// since its watch had to start over).
    pub in_step: bool,
    /// The shared revision applied.
    pub applied: u64,
    /// The newest shared revision seen.
    pub head: u64,
    /// This daemon's id in the fleet.
    pub host: String,
    /// Set when the shared store is no longer the one this daemon's log
    /// follows (etcd wiped or restored): shared writes stay refused.
    pub diverged: Option<String>,
}

impl StoreStatus {
    /// Whether shared writes are refused for now.
    pub fn degraded(&self) -> bool {
        self.degraded_since_ms.is_some()
    }
}

/// The shared, observable [`StoreStatus`].
#[derive(Debug, Clone)]
pub struct StoreState {
    tx: Arc<watch::Sender<StoreStatus>>,
}

impl StoreState {
    /// The file store's (never degraded).
    pub fn file() -> Self {
        Self::with(StoreStatus {
            kind: "file",
            ..Default::default()
        })
    }

    /// The etcd store's, degraded until the shared state is first read.
    pub fn etcd(endpoints: Vec<String>, host: String, now_ms: i64) -> Self {
        Self::with(StoreStatus {
            kind: "etcd",
            endpoints,
            degraded_since_ms: Some(now_ms),
            error: Some("the shared store has not been read yet".into()),
            host,
            ..Default::default()
        })
    }

    fn with(status: StoreStatus) -> Self {
        Self {
            tx: Arc::new(watch::channel(status).0),
        }
    }

    /// The state now.
    pub fn get(&self) -> StoreStatus {
        self.tx.borrow().clone()
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<StoreStatus> {
        self.tx.subscribe()
    }

    /// A member answered.
    pub fn reachable(&self, now_ms: i64) {
        self.tx.send_if_modified(|s| {
            let was = s.clone();
            s.last_contact_ms = Some(now_ms);
            if s.in_step && s.diverged.is_none() {
                s.degraded_since_ms = None;
                s.error = None;
            }
            // Only a change of state wakes the health reporter.
            was.degraded_since_ms != s.degraded_since_ms
        });
    }

    /// No member could take a call: shared writes are refused from now.
    pub fn unreachable(&self, why: String, now_ms: i64) {
        self.tx.send_if_modified(|s| {
            let changed = s.degraded_since_ms.is_none() || s.error.as_ref() != Some(&why);
            s.degraded_since_ms.get_or_insert(now_ms);
            s.error = Some(why);
            changed
        });
    }

    /// The daemon has (or no longer has) the shared state in step.
    pub fn in_step(&self, in_step: bool, why: Option<String>, now_ms: i64) {
        self.tx.send_if_modified(|s| {
            let was = s.clone();
            s.in_step = in_step;
            if in_step {
                s.last_contact_ms = Some(now_ms);
            }
            if in_step && s.diverged.is_none() {
                s.degraded_since_ms = None;
                s.error = None;
            } else if !in_step {
                s.degraded_since_ms.get_or_insert(now_ms);
                s.error = why;
            }
            was != *s
        });
    }

    /// The shared store is not the one this daemon's log follows.
    pub fn diverged(&self, why: String, now_ms: i64) {
        self.tx.send_if_modified(|s| {
            s.degraded_since_ms.get_or_insert(now_ms);
            s.error = Some(why.clone());
            s.diverged = Some(why);
            true
        });
    }

    /// Shared revision `seq` is applied.
    pub fn applied(&self, seq: u64) {
        self.tx.send_if_modified(|s| {
            s.applied = seq;
            s.head = s.head.max(seq);
            false
        });
    }

    /// The shared store's newest revision is (at least) `seq`.
    pub fn head(&self, seq: u64) {
        self.tx.send_if_modified(|s| {
            s.head = s.head.max(seq);
            false
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_from_the_first_failure_until_a_member_answers_in_step() {
        let s = StoreState::etcd(vec!["a:1".into()], "h".into(), 5);
        assert!(
            s.get().degraded(),
            "degraded until the shared state is read"
        );
        s.in_step(true, None, 10);
        assert!(!s.get().degraded());
        s.unreachable("a:1 answered connection refused".into(), 20);
        s.unreachable("a:1 answered no leader".into(), 30);
        let st = s.get();
        assert_eq!(st.degraded_since_ms, Some(20), "since the first failure");
        assert_eq!(st.error.as_deref(), Some("a:1 answered no leader"));
        s.reachable(40);
        assert!(!s.get().degraded());
        assert_eq!(s.get().last_contact_ms, Some(40));
        s.in_step(false, Some("the watch ended".into()), 50);
        s.reachable(60);
        assert!(
            s.get().degraded(),
            "an answer does not undo a shared state out of step"
        );
    }
}
