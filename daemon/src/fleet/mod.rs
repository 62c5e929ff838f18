//! The fleet: which hosts (daemons) and services run which revision, and,
//! with the etcd store, the tasks that keep this daemon in the fleet.
//!
//! Each daemon knows its own services from their SDKs' acks
//! ([`Services`]); with the etcd store it also registers itself under a
//! lease (`registry`), so that every daemon can answer for the whole fleet
//! with one read, and follows the shared store (`follow`). With the file
//! store the same view covers this daemon alone.
//!
//! # Layout
//! - `services` — [`Services`]: acks and open streams per instance.
//! - `follow` — the task that reads the shared store and watches it,
//!   handing shared changes to the writer.
//! - `registry` — the task that keeps this daemon's leased fleet entry.
//! - `health` — the `cfgd.v1.SharedStore` health service name.
//! - `start` — opening the store `--store` names; starting the tasks.

pub(crate) mod follow;
pub(crate) mod health;
pub(crate) mod registry;
pub(crate) mod services;
pub(crate) mod start;

use std::sync::Arc;

use cfgd_etcd::{Client, Op, Range, Txn};
use serde::{Deserialize, Serialize};

pub(crate) use services::{Instance, Services};

use crate::hub::{FileRole, Hub};
use crate::store::etcd::keys::{self, Keys};
use crate::store::status::StoreState;
use crate::store::{shared_revision, shared_seq};

/// One daemon's fleet entry (the JSON value of its leased key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HostEntry {
    /// Its `--host-id`.
    pub(crate) host: String,
    /// Where it listens.
    pub(crate) listen: String,
    /// Its version.
    pub(crate) version: String,
    /// Its epoch.
    pub(crate) epoch: u64,
    /// The revision it has applied.
    pub(crate) revision: u64,
    /// Since when its store is degraded.
    #[serde(default)]
    pub(crate) degraded_since_ms: Option<i64>,
    /// Problems with its profile layer (shared values its catalogue refuses).
    #[serde(default)]
    pub(crate) problems: Vec<String>,
    /// Its services.
    #[serde(default)]
    pub(crate) services: Vec<Instance>,
    /// When it wrote the entry.
    #[serde(default)]
    pub(crate) reported_ms: i64,
}

/// The fleet as one daemon sees it.
#[derive(Debug, Clone)]
pub(crate) struct FleetView {
    /// Every live host, sorted, and whether it is this daemon.
    pub(crate) hosts: Vec<(HostEntry, bool)>,
    /// Whether the profile layer is shared.
    pub(crate) shared: bool,
    /// The newest shared revision (as a wire revision); this daemon's with
    /// the file store.
    pub(crate) head: u64,
    /// Why the fleet could not be read (then only this daemon is listed).
    pub(crate) error: Option<String>,
}

/// What the service and the fleet tasks share.
#[derive(Debug)]
pub(crate) struct Fleet {
    /// This daemon's id.
    pub(crate) host: String,
    /// Where it listens.
    pub(crate) listen: String,
    /// Its services.
    pub(crate) services: Arc<Services>,
    /// The store's state.
    pub(crate) state: StoreState,
    hub: Arc<Hub>,
    shared: Option<(Client, Keys)>,
}

impl Fleet {
    /// The fleet of a daemon: `shared` with the etcd store.
    pub(crate) fn new(
        host: String,
        listen: String,
        hub: Arc<Hub>,
        state: StoreState,
        shared: Option<(Client, Keys)>,
    ) -> Self {
        Self {
            host,
            listen,
            services: Arc::default(),
            state,
            hub,
            shared,
        }
    }

    /// Since when no etcd member answers, as the etcd client knows it;
    /// `None` while one does, and with the file store.
    pub(crate) fn unreachable_since(&self) -> Option<std::time::SystemTime> {
        self.shared.as_ref()?.0.unreachable_since()
    }

    /// This daemon's entry as of now.
    pub(crate) fn entry(&self, now_ms: i64) -> HostEntry {
        let view = self.hub.view();
        let problems = view
            .files
            .iter()
            .filter(|f| f.kind == FileRole::Profiles)
            .filter_map(|f| f.error.as_ref())
            .flat_map(|e| e.lines().map(str::to_owned))
            .collect();
        HostEntry {
            host: self.host.clone(),
            listen: self.listen.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            epoch: view.epoch,
            revision: view.revision,
            degraded_since_ms: self.state.get().degraded_since_ms,
            problems,
            services: self.services.list(),
            reported_ms: now_ms,
        }
    }

    /// Every live host, this one as it is now.
    pub(crate) async fn view(&self) -> FleetView {
        let me = self.entry(crate::writer::now_ms());
        let Some((client, keys)) = &self.shared else {
            return FleetView {
                head: me.revision,
                hosts: vec![(me, true)],
                shared: false,
                error: None,
            };
        };
        let txn = Txn::new().and_then([
            Op::range(Range::prefix(keys.hosts())),
            Op::range(Range::key(keys.head())),
        ]);
        let answer = match client.txn(txn).await {
            Ok(a) => a,
            Err(e) => {
                return FleetView {
                    head: shared_revision(self.state.get().head.max(shared_seq(me.revision))),
                    hosts: vec![(me, true)],
                    shared: true,
                    error: Some(format!("the fleet could not be read: {e}")),
                };
            }
        };
        let mut ranges = answer.ranges();
        let (hosts, head) = (ranges.next(), ranges.next());
        let mut list: Vec<(HostEntry, bool)> = Vec::new();
        for kv in hosts.map(|r| r.kvs.as_slice()).unwrap_or_default() {
            match serde_json::from_slice::<HostEntry>(&kv.value) {
                Ok(h) if h.host == self.host => {}
                Ok(h) => list.push((h, false)),
                Err(e) => {
                    tracing::warn!(key = %String::from_utf8_lossy(&kv.key), error = %e, "a fleet entry that is not cfgd's; left out")
                }
            }
        }
        let head = head
            .and_then(|r| r.kvs.first())
            .and_then(|kv| keys::decode_number(&keys.head(), &kv.value).ok())
            .unwrap_or(0);
        list.push((me, true));
        list.sort_by(|a, b| a.0.host.cmp(&b.0.host));
        FleetView {
            hosts: list,
            shared: true,
            head: shared_revision(head),
            error: None,
        }
    }
}
