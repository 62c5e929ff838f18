//! The etcd store: a fleet's daemons share the profile layer, its
//! revisions and its history through etcd (scale-out.md), each keeping its
//! own log of what it applied.
//!
//! [`EtcdStore`] wraps the local [`FileStore`]: the local log still holds
//! every record of this daemon (its hot reloads and start-up differences,
//! and every shared change with this host's effective values), so reads,
//! watches, history and a start without etcd work from it. etcd holds the
//! shared half ([`SharedLayer`]): the profiles, the active profile, the
//! shared revision `S` and the shared records. A writer group becomes one
//! transaction that compares the head's mod revision with the one this
//! daemon last applied, so two daemons racing on one revision cannot both
//! win; the loser gets the records it missed in the same round trip.
//!
//! `profiles.toml` is an output in this mode: it is rewritten from the
//! shared state, and an edit to it is reported and overwritten, never
//! taken as a change (the truth is shared; one host's file is not).
//!
//! # Layout
//! - `config` — [`StoreConfig`] (`--store`) and [`EtcdConfig`].
//! - `keys` — the key layout and the values' encoding.
//! - `read` — reading the shared state at one revision, the first
//!   daemon's start of a fleet, and watch events as shared changes.
//! - `commit` — the write transaction and how an unknown outcome is
//!   resolved.

mod commit;
pub(crate) mod config;
pub(crate) mod keys;
pub(crate) mod read;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use cfgd_etcd::Client;
use cfgd_settings::ProfilesFile;

pub use config::{EtcdConfig, StoreConfig};
use keys::Keys;

use super::status::StoreState;
use super::{
    Base, CommitError, Effective, FileStore, OnDisk, Record, Recovered, Remote, SharedLayer, Store,
    StoreError,
};

/// The etcd store (see the module docs).
#[derive(Debug)]
pub struct EtcdStore {
    local: FileStore,
    client: Client,
    keys: Keys,
    runtime: tokio::runtime::Handle,
    host: String,
    history: u64,
    /// The last shared revision applied and the store revision it was
    /// written at: what the next write compares. `None` until the shared
    /// state was first read.
    position: Option<(u64, i64)>,
    state: StoreState,
    /// How long an unknown outcome may take to resolve.
    deadline: Duration,
}

impl EtcdStore {
    /// The shared half over `client` beside the local log `local`. Calls
    /// into etcd run on `runtime` (the writer's thread blocks on them).
    pub(crate) fn new(
        local: FileStore,
        client: Client,
        config: &EtcdConfig,
        state: StoreState,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            local,
            client,
            keys: Keys::new(&config.prefix),
            runtime,
            host: config.host.clone(),
            history: config.history.max(1),
            position: None,
            state,
            deadline: config.deadline,
        }
    }
}

impl Store for EtcdStore {
    fn recover(
        &mut self,
        initial: &dyn Fn(&ProfilesFile) -> BTreeMap<String, Effective>,
    ) -> Result<Recovered, StoreError> {
        // Only the local log: a start never waits on etcd (the daemon
        // serves its last shared state and catches up once etcd answers).
        self.local.recover(initial)
    }

    fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        self.local.append(records)
    }

    fn compact(&mut self, base: &Base, records: &VecDeque<Arc<Record>>) -> Result<(), StoreError> {
        self.local.compact(base, records)
    }

    fn read_profiles(&mut self, state: &ProfilesFile) -> OnDisk {
        match self.local.read_profiles(state) {
            OnDisk::Edited(_) => {
                tracing::warn!(file = %self.local.profiles_path(), "the profiles file was edited, but with the etcd store it only mirrors the shared profiles: the edit is overwritten (change them with cfg set / cfg profile)");
                OnDisk::Ours { current: false }
            }
            OnDisk::Invalid(e) => {
                tracing::warn!(file = %self.local.profiles_path(), error = %e, "the profiles file is invalid; with the etcd store it only mirrors the shared profiles: rewriting it");
                OnDisk::Ours { current: false }
            }
            other => other,
        }
    }

    fn write_profiles(&mut self, state: &ProfilesFile) -> Result<(), StoreError> {
        self.local.write_profiles(state)
    }

    fn profiles_path(&self) -> String {
        self.local.profiles_path()
    }

    fn log_path(&self) -> String {
        self.local.log_path()
    }

    fn shared(&mut self) -> Option<&mut dyn SharedLayer> {
        Some(self)
    }
}

impl SharedLayer for EtcdStore {
    fn host(&self) -> &str {
        &self.host
    }

    fn commit(&mut self, records: &[Record], profiles: &ProfilesFile) -> Result<(), CommitError> {
        if let Some(why) = self.state.get().diverged {
            return Err(CommitError::Refused {
                transient: false,
                message: why,
            });
        }
        let Some(position) = self.position else {
            return Err(CommitError::Refused {
                transient: true,
                message: format!(
                    "this daemon has not read the shared state yet ({})",
                    self.state
                        .get()
                        .error
                        .unwrap_or_else(|| "etcd has not answered".into())
                ),
            });
        };
        let result = commit::commit(self, position, records, profiles);
        let now = crate::writer::now_ms();
        match &result {
            Ok(p) => {
                self.position = Some(*p);
                self.state.applied(p.0);
                self.state.reachable(now);
            }
            Err(CommitError::Behind(r)) => {
                if let Some((seq, _)) = r.head {
                    self.state.head(seq);
                }
                self.state.reachable(now);
            }
            Err(CommitError::Refused {
                transient: true,
                message,
            })
            | Err(CommitError::Unknown(message)) => {
                self.state.unreachable(message.clone(), now);
            }
            Err(CommitError::Refused { .. }) => self.state.reachable(now),
        }
        result.map(drop)
    }

    fn applied(&mut self, seq: u64, store_revision: i64) {
        self.position = Some((seq, store_revision));
        self.state.applied(seq);
    }

    fn since(&mut self, seq: u64) -> Result<Remote, String> {
        let read = self
            .runtime
            .block_on(read::read(&self.client, &self.keys, seq, None))
            .map_err(|e| e.to_string())?;
        Ok(read.remote)
    }
}
