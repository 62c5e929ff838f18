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
//! [`Store`] is the seam for another backend (etcd, for a fleet); the
//! embedded [`FileStore`] is the default.
//!
//! # Layout
//! - `file` — [`FileStore`]: `log.jsonl` (checksummed lines), the epoch file,
//!   recovery and repair.
//! - `mirror` — `profiles.toml` and the marker of what cfgd last wrote there.

mod file;
mod mirror;

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
}
