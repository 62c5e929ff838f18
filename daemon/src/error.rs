//! Operation errors, and the one place they become a gRPC `Status`
//! (`status`): a code that follows gRPC's status-code guide, a message for
//! people, and typed details for programs.

mod status;

use cfgd_settings::SettingsError;

pub(crate) use status::{GivenNames, QUOTE, clip, problems};

use crate::store::StoreError;

/// Why a request was refused. Nothing was changed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpError {
    /// Names or values that are not valid (one entry per problem).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<SettingsError>),
    /// A profile operation that cannot be done.
    #[error(transparent)]
    Settings(SettingsError),
    /// Compare-and-set against a revision that is no longer current.
    #[error(
        "revision mismatch: expected revision {expected}, but the current revision is {actual}; nothing was changed"
    )]
    Conflict {
        /// The revision the caller expected.
        expected: u64,
        /// The daemon's revision.
        actual: u64,
    },
    /// A revision older than the retained history.
    #[error(
        "revision {revision} is no longer in history (the oldest retained revision is {oldest})"
    )]
    Compacted {
        /// The revision asked for.
        revision: u64,
        /// The oldest retained.
        oldest: u64,
    },
    /// A revision the daemon has not reached.
    #[error("revision {revision} does not exist yet (the current revision is {current})")]
    Future {
        /// The revision asked for.
        revision: u64,
        /// The daemon's revision.
        current: u64,
    },
    /// A missing or wrong token.
    #[error("{0}")]
    Unauthenticated(String),
    /// A request over one of the daemon's limits, or not well-formed.
    #[error(transparent)]
    Limit(Limit),
    /// The durable store failed; the change was not made.
    #[error("the change could not be made durable, so it was not made: {message}")]
    Store {
        /// What kind of failure.
        kind: StoreFailure,
        /// The store's error.
        message: String,
    },
    /// The profiles file on disk is invalid; cfgd will not overwrite it.
    #[error(
        "the profiles file is invalid, so cfgd refuses to write it (fix the file; cfgd takes it in once it parses): {0}"
    )]
    ProfilesFileInvalid(String),
    /// The daemon is shutting down.
    #[error("cfgd is shutting down")]
    ShuttingDown,
    /// The shared store (etcd) cannot be reached; the change was not made.
    #[error("the shared store cannot be reached, so the change was not made: {0}")]
    SharedUnavailable(String),
    /// The shared store refused the change itself (such as one too large
    /// for it); the change was not made.
    #[error("the shared store refused the change, so it was not made: {0}")]
    SharedRefused(String),
    /// The change was sent to the shared store but its outcome could not
    /// be learnt: it may still be applied.
    #[error(
        "the change was sent to the shared store, but whether it was applied could not be learnt in time: it may still be applied (cfg history shows it if it was; it was not retried): {0}"
    )]
    OutcomeUnknown(String),
    /// Other daemons kept writing first.
    #[error(
        "other daemons wrote to the shared store first {tries} times in a row; the change was not made (try again)"
    )]
    Contended {
        /// Transactions lost.
        tries: u32,
    },
}

/// A request over one of the daemon's limits, or one that is not
/// well-formed. Names are quoted as a short prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Limit {
    /// A `Set`, `Unset` or `Validate` with nothing in it.
    #[error("the batch is empty: give at least one setting")]
    EmptyBatch,
    /// More assignments or names in one `Set`/`Unset` than allowed.
    #[error("the batch holds {len} settings; the limit is {limit} per request")]
    Batch {
        /// How many were sent.
        len: usize,
        /// The most allowed.
        limit: usize,
    },
    /// More names in one `Get`/`Snapshot`/`Watch` than allowed.
    #[error("the request names {len} settings; the limit is {limit} per request")]
    Names {
        /// How many were sent.
        len: usize,
        /// The most allowed.
        limit: usize,
    },
    /// A setting or profile name that is too long.
    #[error("{what} is {len} bytes long; the limit is {limit} bytes")]
    NameLength {
        /// "a setting name" or "a profile name".
        what: &'static str,
        /// The start of the name as given.
        given: String,
        /// Its length.
        len: usize,
        /// The longest allowed.
        limit: usize,
    },
    /// A value that is too long.
    #[error("the value for {name} is {len} bytes long; the limit is {limit} bytes")]
    ValueLength {
        /// The start of the name as given.
        name: String,
        /// Its length.
        len: usize,
        /// The longest allowed.
        limit: usize,
    },
    /// A request message over the size limit.
    #[error("the request message is {len} bytes; the limit is {limit} bytes")]
    Message {
        /// Its size.
        len: usize,
        /// The largest allowed.
        limit: usize,
    },
    /// A change that would leave more profiles than allowed.
    #[error(
        "too many profiles: this would make {count}; the limit is {limit}; nothing was changed"
    )]
    Profiles {
        /// Profiles after the change.
        count: usize,
        /// The most allowed.
        limit: usize,
    },
    /// A change that would make the profiles hold more bytes than allowed.
    #[error(
        "the profiles would hold {bytes} bytes of names and values; the limit is {limit}; nothing was changed"
    )]
    ProfileBytes {
        /// Bytes after the change.
        bytes: usize,
        /// The most allowed.
        limit: usize,
    },
}

/// Why the durable store refused a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailure {
    /// The disk (or a quota) is full; passes once space is freed.
    NoSpace,
    /// The state dir was deleted or replaced under the daemon; needs a restart.
    StateDirGone,
    /// Another I/O failure.
    Io,
}

impl OpError {
    /// The refusal for a store failure.
    pub fn store(e: &StoreError) -> Self {
        let kind = if e.is_no_space() {
            StoreFailure::NoSpace
        } else if matches!(e, StoreError::StateDirGone { .. }) {
            StoreFailure::StateDirGone
        } else {
            StoreFailure::Io
        };
        OpError::Store {
            kind,
            message: e.to_string(),
        }
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        OpError::store(&e)
    }
}

impl From<Limit> for OpError {
    fn from(l: Limit) -> Self {
        OpError::Limit(l)
    }
}
