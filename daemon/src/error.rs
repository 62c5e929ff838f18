//! Operation errors, and their mapping to gRPC status codes — in this one
//! place.

use cfgd_settings::SettingsError;
use tonic::{Code, Status};

use crate::store::StoreError;

/// Why a request was refused. Nothing was changed.
#[derive(Debug, thiserror::Error)]
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
    #[error("the change could not be made durable: {0}")]
    Store(String),
    /// The daemon is shutting down.
    #[error("cfgd is shutting down")]
    ShuttingDown,
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        OpError::Store(e.to_string())
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
            OpError::Store(_) => Code::Internal,
            OpError::ShuttingDown => Code::Unavailable,
        };
        Status::new(code, e.to_string())
    }
}
