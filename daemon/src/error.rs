//! Operation errors, and their mapping to gRPC status codes — in this one
//! place.

use cfgd_settings::SettingsError;
use tonic::{Code, Status};

use crate::store::StoreError;

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
    /// A request over one of the daemon's limits.
    #[error("{0}")]
    Limit(String),
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

impl From<OpError> for Status {
    fn from(e: OpError) -> Self {
        let code = match &e {
            OpError::Invalid(_) | OpError::Limit(_) => Code::InvalidArgument,
            OpError::Settings(s) => match s {
                SettingsError::ProfileNotFound(_) => Code::NotFound,
                SettingsError::ProfileExists(_) => Code::AlreadyExists,
                SettingsError::UnknownName { .. }
                | SettingsError::InvalidValue { .. }
                | SettingsError::ProfileName(_) => Code::InvalidArgument,
                _ => Code::FailedPrecondition,
            },
            OpError::Conflict { .. } => Code::Aborted,
            OpError::Compacted { .. } | OpError::Future { .. } => Code::OutOfRange,
            OpError::Unauthenticated(_) => Code::Unauthenticated,
            // Out of space: RESOURCE_EXHAUSTED ("perhaps the entire file
            // system is out of space"); a state dir gone needs an operator;
            // other I/O failures may pass, so the client may retry.
            OpError::Store { kind, .. } => match kind {
                StoreFailure::NoSpace => Code::ResourceExhausted,
                StoreFailure::StateDirGone => Code::FailedPrecondition,
                StoreFailure::Io => Code::Unavailable,
            },
            OpError::ProfilesFileInvalid(_) => Code::FailedPrecondition,
            OpError::ShuttingDown => Code::Unavailable,
        };
        Status::new(code, e.to_string())
    }
}
