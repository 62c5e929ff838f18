//! Durable state: the profile layer and the revision log.
//!
//! The log is the write-ahead record: a change is acknowledged once its
//! [`Record`] is on disk. Each record that changed the profiles carries the
//! whole profiles state after it, so the profiles file itself can be
//! rewritten after the acknowledgement and repaired on start-up.
//!
//! [`Store`] is the seam for another backend (etcd, for a fleet); the
//! embedded [`FileStore`] is the default.

mod file;

use std::collections::{BTreeMap, VecDeque};

use cfgd_settings::{ProfilesFile, Source, Value};
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
}

/// One effective value with where it came from (`value: None` = unset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effective {
    /// The value, if any layer gives one.
    pub value: Option<Value>,
    /// The layer it comes from.
    pub source: Source,
}

/// One setting's change inside a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The whole profiles state after this record, when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<ProfilesFile>,
}

/// The state before the oldest retained record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Base {
    /// Random identity of this store; changes only when the store is new.
    pub epoch: u64,
    /// The revision before the first retained record.
    pub revision: u64,
    /// The profiles as of `revision`.
    pub profiles: ProfilesFile,
    /// Effective values as of `revision`.
    pub effective: BTreeMap<String, Effective>,
}

impl Base {
    /// Folds `record` into the base (it leaves the retained history).
    pub fn absorb(&mut self, record: &Record) {
        self.revision = record.revision;
        if let Some(p) = &record.profiles {
            self.profiles = p.clone();
        }
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
    /// The base before the retained records.
    pub base: Base,
    /// Retained records, oldest first.
    pub records: VecDeque<Record>,
    /// The profiles in force (repaired from the log if the file was stale).
    pub profiles: ProfilesFile,
    /// Whether there was no state yet (a new store).
    pub fresh: bool,
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
    /// A log that cannot be read back.
    #[error("{path}, line {line}: corrupt revision log: {message}")]
    Corrupt {
        /// The log file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The profiles file is not valid.
    #[error(transparent)]
    Profiles(#[from] cfgd_settings::SettingsError),
}

/// A durable home for the profile layer and the revision log.
///
/// Methods are blocking; the daemon calls them from its single writer.
pub trait Store: Send + 'static {
    /// Reads the state (creating a new store when there is none).
    /// `initial` gives the base for a new store: the profiles and effective
    /// values at revision 0.
    ///
    /// # Errors
    /// Unreadable or corrupt state.
    fn recover(
        &mut self,
        initial: &dyn Fn(&ProfilesFile) -> BTreeMap<String, Effective>,
    ) -> Result<Recovered, StoreError>;

    /// Appends records durably: one fsync for the whole batch.
    ///
    /// # Errors
    /// Any I/O error; then none of `records` may be considered durable.
    fn append(&mut self, records: &[Record]) -> Result<(), StoreError>;

    /// Rewrites the log as `base` plus `records` (history compaction).
    ///
    /// # Errors
    /// Any I/O error; the old log then stays in place.
    fn compact(&mut self, base: &Base, records: &VecDeque<Record>) -> Result<(), StoreError>;

    /// Writes the profiles file (after the log made the change durable).
    ///
    /// # Errors
    /// Any I/O error.
    fn write_profiles(&mut self, profiles: &ProfilesFile) -> Result<(), StoreError>;

    /// Where the profiles file lives (for status).
    fn profiles_path(&self) -> String;
}
