//! Durable state: the profile layer and the revision log.
//!
//! The log is the write-ahead record: a change is acknowledged once its
//! [`Record`] is on disk. The log starts with a checkpoint ([`Base`]: the
//! whole profile layer and the effective values at one revision) and each
//! record after it carries only what changed (a [`ProfilesDelta`] and the
//! effective values before and after), so recovery replays the records over
//! the checkpoint and never needs `profiles.toml` or any history that
//! compaction removed. Compaction only ever moves the checkpoint forward.
//!
//! `profiles.toml` is a mirror of the profile layer for Prefect and other
//! readers, written after the acknowledgement. It is shared both ways: an
//! edit made to it outside cfgd is found by comparing it with what cfgd
//! last wrote ([`OnDisk::Edited`]) and becomes a revision of its own.
//!
//! [`Store`] is the seam; the embedded [`FileStore`] is the default. With
//! the etcd store ([`etcd::EtcdStore`], `--store etcd://…`) a fleet shares
//! the profile layer: the store then has a [`SharedLayer`] that commits
//! shared changes in one transaction per writer group and can answer "you
//! are behind: here are the changes you missed"; the changes other daemons
//! make reach the writer as [`Remote`] batches; revisions are numbered
//! `S·2²⁴ + L` ([`Numbering::Fleet`]) so a shared change has the same
//! revision on every host; and a start never waits on etcd (the local log
//! is the daemon's own record of everything it applied).
//!
//! # Layout
//! - `file` — [`FileStore`]: `log.jsonl` (checksummed lines), the epoch file,
//!   recovery and repair.
//! - `mirror` — `profiles.toml` and the marker of what cfgd last wrote there.
//! - [`etcd`] — the etcd store: key layout, reads, the write transaction,
//!   `--store` and its options.
//! - [`status`] — [`status::StoreState`]: what status and health say about
//!   the store (degraded since when, and why).

pub mod etcd;
mod file;
mod mirror;
pub mod status;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use cfgd_settings::{ProfilesDelta, ProfilesFile, SettingsError, Source, Value};
use serde::{Deserialize, Serialize};

pub use file::FileStore;

/// What caused a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `Set`.
    Set,
    /// `Unset`.
    Unset,
    /// A config, catalogue or `.env` file changed on disk.
    File,
    /// A profile operation (use, create, delete, rename).
    Profile,
    /// `Rollback`.
    Rollback,
    /// Effective values differed at start-up from those last recorded.
    Startup,
    /// `profiles.toml` was edited outside cfgd (by Prefect or by hand).
    ProfilesFile,
    /// The shared store's profiles, taken in whole (see
    /// [`SharedLayer`]).
    SharedState,
}

impl Origin {
    /// Whether a change of this origin changes the profile layer that a
    /// fleet shares (and so goes to the shared store with the etcd store).
    pub fn is_shared(self) -> bool {
        matches!(
            self,
            Origin::Set | Origin::Unset | Origin::Profile | Origin::Rollback
        )
    }
}

/// How many low bits of a fleet revision count local changes.
pub const SHARED_SHIFT: u32 = 24;

/// The shared sequence number `S` of a fleet revision `S·2²⁴ + L`.
pub fn shared_seq(revision: u64) -> u64 {
    revision >> SHARED_SHIFT
}

/// The revision of shared change `seq` (`L = 0`): the same on every host.
pub fn shared_revision(seq: u64) -> u64 {
    seq << SHARED_SHIFT
}

/// How revisions are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Numbering {
    /// One counter: every change takes the next revision (the file store).
    #[default]
    Dense,
    /// A fleet's `S·2²⁴ + L` (scale-out.md §5): a shared change takes the
    /// next shared revision (`L = 0`), the same on every host; a local one
    /// (hot reload, start-up) counts up `L` from there.
    Fleet,
}

impl Numbering {
    /// The revision after `current` for a change of `origin`.
    pub fn next(self, current: u64, origin: Origin) -> u64 {
        match self {
            Numbering::Fleet if origin.is_shared() => shared_revision(shared_seq(current) + 1),
            _ => current + 1,
        }
    }

    /// Whether `next` may follow `prev` in one log: the next number when
    /// dense; any later one with a fleet's numbering (a daemon that was away
    /// takes a fleet's changes whole, skipping shared revisions).
    pub fn follows(self, prev: u64, next: u64) -> bool {
        match self {
            Numbering::Dense => next == prev + 1,
            Numbering::Fleet => next > prev,
        }
    }
}

/// One effective value with where it came from (`value: None` = unset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Effective {
    /// The value, if any layer gives one.
    pub value: Option<Value>,
    /// The layer it comes from.
    pub source: Source,
}

/// One setting's change inside a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyChange {
    /// Canonical name.
    pub name: String,
    /// Before (`None` when the setting did not exist, e.g. a new catalogue entry).
    pub old: Option<Effective>,
    /// After (`None` when the setting no longer exists).
    pub new: Option<Effective>,
    /// Whether the setting is secret.
    pub secret: bool,
}

/// One revision: what changed, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The revision this record created.
    pub revision: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// What caused it.
    pub origin: Origin,
    /// The file, profile or rollback target it concerns.
    pub detail: String,
    /// The effective values that changed.
    pub changes: Vec<KeyChange>,
    /// What changed in the profile layer (empty when nothing did).
    #[serde(default, skip_serializing_if = "ProfilesDelta::is_empty")]
    pub profiles: ProfilesDelta,
    /// The daemon that made a shared change (etcd store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Record {
    /// The size of the record as logged (what history's byte bound counts).
    pub fn encoded_len(&self) -> usize {
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut c = Count(0);
        serde_json::to_writer(&mut c, self).expect("records serialize");
        c.0
    }
}

/// The checkpoint: the state before the oldest retained record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    /// Random identity of this store; changes only when the store is new
    /// (or repaired).
    pub epoch: u64,
    /// The revision before the first retained record.
    pub revision: u64,
    /// The profiles as of `revision`.
    pub profiles: ProfilesFile,
    /// Effective values as of `revision`.
    pub effective: BTreeMap<String, Effective>,
}

impl Base {
    /// Folds `record` into the checkpoint (it leaves the retained history).
    pub fn absorb(&mut self, record: &Record) {
        self.revision = record.revision;
        self.profiles.apply(&record.profiles);
        apply_changes(&mut self.effective, &record.changes);
    }
}

/// Applies a record's changes to an effective-value map.
pub fn apply_changes(effective: &mut BTreeMap<String, Effective>, changes: &[KeyChange]) {
    for c in changes {
        match &c.new {
            Some(new) => {
                effective.insert(c.name.clone(), new.clone());
            }
            None => {
                effective.remove(&c.name);
            }
        }
    }
}

/// What a store holds at start-up.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The checkpoint before the retained records.
    pub base: Base,
    /// Retained records, oldest first.
    pub records: VecDeque<Record>,
    /// Whether there was no state yet (a new store).
    pub fresh: bool,
}

impl Recovered {
    /// The profile layer after every record: the checkpoint with each
    /// record's delta replayed over it.
    pub fn profiles(&self) -> ProfilesFile {
        let mut p = self.base.profiles.clone();
        for r in &self.records {
            p.apply(&r.profiles);
        }
        p
    }

    /// The effective values the log last recorded.
    pub fn effective(&self) -> BTreeMap<String, Effective> {
        let mut e = self.base.effective.clone();
        for r in &self.records {
            apply_changes(&mut e, &r.changes);
        }
        e
    }

    /// The revision of the last record (or of the checkpoint).
    pub fn revision(&self) -> u64 {
        self.records
            .back()
            .map_or(self.base.revision, |r| r.revision)
    }
}

/// What `profiles.toml` holds compared with what cfgd last wrote there.
#[derive(Debug, Clone, PartialEq)]
pub enum OnDisk {
    /// What cfgd wrote (`current`: and it equals the state it was compared with).
    Ours {
        /// Whether the file already holds the state it was compared with.
        current: bool,
    },
    /// There is no file: it is written from cfgd's state.
    Missing,
    /// Changed outside cfgd: this delta, applied over cfgd's state, takes
    /// the edit in without losing cfgd's own changes.
    Edited(ProfilesDelta),
    /// Not a valid profiles file: cfgd keeps its state and refuses to
    /// overwrite the file until it is fixed.
    Invalid(SettingsError),
}

/// Errors of the durable store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O error, with the file.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A log that cannot be trusted: cfgd refuses to start on it.
    #[error(
        "{path}, line {line}: corrupt revision log: {message}. cfgd does not start on a damaged history; restore the state dir from a backup, or start with --repair-state to keep the records before line {line} and begin a new epoch (the damaged log is kept beside it)"
    )]
    Corrupt {
        /// The log file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The state dir held a store, but its log is gone.
    #[error(
        "the revision log {path} is missing, but the state dir {dir} holds epoch {epoch}: its history and acknowledged writes would be lost. Restore it from a backup, or start with --repair-state to begin a new epoch from the profiles file"
    )]
    LogMissing {
        /// The log file.
        path: String,
        /// The state dir.
        dir: String,
        /// The epoch the state dir recorded.
        epoch: u64,
    },
    /// The state dir or the log was deleted or replaced under the daemon.
    #[error(
        "the state dir {dir} was deleted or replaced while cfgd was running (its revision log is gone): writes are refused, because they could not be made durable; restart cfgd"
    )]
    StateDirGone {
        /// The state dir.
        dir: String,
    },
    /// The profiles file is not valid.
    #[error(transparent)]
    Profiles(#[from] SettingsError),
}

impl StoreError {
    /// Whether the store failed for lack of space (the disk or a quota is
    /// full): such a failure passes once space is freed.
    pub fn is_no_space(&self) -> bool {
        match self {
            StoreError::Io { source, .. } => {
                matches!(
                    source.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                )
            }
            StoreError::Profiles(SettingsError::Io { message, .. }) => {
                message.contains("No space left") || message.contains("quota exceeded")
            }
            _ => false,
        }
    }
}

/// One shared change as the fleet sees it: what every daemon applies to
/// its profile layer, in `seq` order. Effective values are not in it:
/// each host computes its own (its files and environment differ).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedRecord {
    /// The shared sequence number `S`.
    pub seq: u64,
    /// Milliseconds since the Unix epoch, on the writing host.
    pub time_ms: i64,
    /// What caused it.
    pub origin: Origin,
    /// The profile or rollback target it concerns.
    pub detail: String,
    /// The daemon that wrote it.
    pub host: String,
    /// The writer group's random id, by which a writer whose transaction
    /// ended unknown recognises its own change (scale-out.md §6.4).
    pub txn: String,
    /// What changed in the profile layer.
    pub profiles: ProfilesDelta,
    /// The shared store's revision of the write (not stored: read with it).
    #[serde(skip)]
    pub store_revision: i64,
}

/// The whole shared profile layer at one shared revision.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedState {
    /// The shared sequence number `S` it is at.
    pub seq: u64,
    /// The shared store's revision of `seq`'s write.
    pub store_revision: i64,
    /// Every profile and the active one.
    pub profiles: ProfilesFile,
}

/// Shared changes for the writer to apply, in order: records (some may be
/// applied already; those are skipped), then, when given, the state they
/// lead to (taken in whole when the records do not reach it, or do not
/// give the same profiles).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Remote {
    /// Shared records, in `seq` order.
    pub records: Vec<SharedRecord>,
    /// The state after them.
    pub state: Option<SharedState>,
    /// The shared store's head (`S` and the revision it was written at)
    /// as read with them.
    pub head: Option<(u64, i64)>,
}

/// Why a shared commit did not happen.
#[derive(Debug, Clone)]
pub enum CommitError {
    /// Another daemon wrote first: these are the changes this daemon had
    /// not applied. Nothing of the group was written; apply them, then
    /// apply the group again.
    Behind(Remote),
    /// Surely not written (no member could take it, or etcd refused it).
    Refused {
        /// Whether trying again later may work (unreachable) or not (etcd
        /// refused the request itself, such as one that is too large).
        transient: bool,
        /// What was tried and what it answered.
        message: String,
    },
    /// Sent, but whether it was written could not be learnt in time: it may
    /// still be applied (and is then seen like any other shared change).
    Unknown(String),
}

/// The shared half of a store whose profile layer a fleet shares (etcd).
///
/// Methods are blocking; the writer calls them.
pub trait SharedLayer: Send {
    /// This daemon's id in the fleet.
    fn host(&self) -> &str;

    /// Writes `records` (the shared ones of a writer group, revisions
    /// `S+1…S+k` after the last shared revision applied) and the profiles
    /// they lead to, all or nothing, only if no other daemon wrote since.
    ///
    /// # Errors
    /// [`CommitError`]: behind, refused or unknown.
    fn commit(&mut self, records: &[Record], profiles: &ProfilesFile) -> Result<(), CommitError>;

    /// The writer has applied (and logged) shared revision `seq`, written
    /// at `store_revision`: the next commit builds on it.
    fn applied(&mut self, seq: u64, store_revision: i64);

    /// Reads the shared changes after `seq` (to fill a gap in what the
    /// watch delivered).
    ///
    /// # Errors
    /// The shared store cannot be read.
    fn since(&mut self, seq: u64) -> Result<Remote, String>;
}

/// A durable home for the profile layer and the revision log.
///
/// Methods are blocking; the daemon calls them from its single writer.
pub trait Store: Send + 'static {
    /// Reads the state (creating a new store when there is none).
    /// `initial` gives the effective values of a new store at revision 0,
    /// given its profiles (those found in the profiles file).
    ///
    /// # Errors
    /// Unreadable or corrupt state: the daemon must not start on it.
    fn recover(
        &mut self,
        initial: &dyn Fn(&ProfilesFile) -> BTreeMap<String, Effective>,
    ) -> Result<Recovered, StoreError>;

    /// Appends records durably: one fsync for the whole batch.
    ///
    /// # Errors
    /// Any I/O error, or a state dir gone; then none of `records` is durable.
    fn append(&mut self, records: &[Record]) -> Result<(), StoreError>;

    /// Rewrites the log as the checkpoint `base` plus `records` (history
    /// compaction).
    ///
    /// # Errors
    /// Any I/O error; the old log then stays in place.
    fn compact(&mut self, base: &Base, records: &VecDeque<Arc<Record>>) -> Result<(), StoreError>;

    /// Compares the profiles file with `state` and with what cfgd last
    /// wrote there.
    fn read_profiles(&mut self, state: &ProfilesFile) -> OnDisk;

    /// Writes `state` to the profiles file (after the log made it durable).
    ///
    /// # Errors
    /// Any I/O error.
    fn write_profiles(&mut self, state: &ProfilesFile) -> Result<(), StoreError>;

    /// Where the profiles file lives.
    fn profiles_path(&self) -> String;

    /// Where the revision log lives.
    fn log_path(&self) -> String;

    /// The shared half, when a fleet shares the profile layer; the log then
    /// keeps this daemon's records (its local changes and every shared one,
    /// with this host's effective values).
    fn shared(&mut self) -> Option<&mut dyn SharedLayer> {
        None
    }
}
