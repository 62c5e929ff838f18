//! SDK errors; daemon answers map to them in one place ([`Error::from_status`]).

/// What went wrong talking to the daemon.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Nothing answered at the endpoint.
    #[error(
        "cannot reach cfgd at {endpoint} ({reason}). Start it with `cfgd` (from a checkout: `cargo run --release --bin cfgd`), or point --endpoint / CFGD_ENDPOINT at a running daemon."
    )]
    Unreachable {
        /// The endpoint tried.
        endpoint: String,
        /// The transport's reason.
        reason: String,
    },
    /// The endpoint is not a valid URL.
    #[error(
        "invalid endpoint {endpoint:?}: {reason} (expected a URL such as http://127.0.0.1:7979)"
    )]
    Endpoint {
        /// The endpoint given.
        endpoint: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The token cannot be sent as a header.
    #[error("the token contains characters that cannot be sent in a header")]
    Token,
    /// The daemon refused the request; nothing was changed.
    #[error("{message}")]
    Rejected {
        /// The kind of refusal.
        code: Code,
        /// The daemon's message (one line per problem).
        message: String,
    },
    /// The daemon answered something this SDK does not understand.
    #[error("unexpected answer from cfgd: {0}")]
    Protocol(String),
}

/// Kinds of refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Invalid names, values or limits.
    InvalidArgument,
    /// No such profile.
    NotFound,
    /// The profile exists already.
    AlreadyExists,
    /// The operation does not apply in the current state.
    FailedPrecondition,
    /// Compare-and-set failed: the revision moved.
    Conflict,
    /// A revision outside the retained history.
    OutOfRange,
    /// A token is needed (or was wrong).
    Unauthenticated,
    /// The daemon is shutting down or unavailable.
    Unavailable,
    /// Anything else.
    Other,
}

impl Error {
    pub(crate) fn unreachable(endpoint: &str, e: &dyn std::error::Error) -> Self {
        let mut reason = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        Error::Unreachable {
            endpoint: endpoint.to_owned(),
            reason,
        }
    }

    /// Maps a gRPC status from the daemon.
    pub fn from_status(endpoint: &str, s: tonic::Status) -> Self {
        use tonic::Code as C;
        let code = match s.code() {
            C::InvalidArgument => Code::InvalidArgument,
            C::NotFound => Code::NotFound,
            C::AlreadyExists => Code::AlreadyExists,
            C::FailedPrecondition => Code::FailedPrecondition,
            C::Aborted => Code::Conflict,
            C::OutOfRange => Code::OutOfRange,
            C::Unauthenticated => Code::Unauthenticated,
            C::Unavailable if s.message().starts_with("cfgd") => Code::Unavailable,
            C::Unavailable | C::Unknown | C::Cancelled | C::DeadlineExceeded => {
                let reason = match std::error::Error::source(&s) {
                    Some(src) => format!("{}: {src}", s.message()),
                    None => s.message().to_owned(),
                };
                return Error::Unreachable {
                    endpoint: endpoint.to_owned(),
                    reason,
                };
            }
            _ => Code::Other,
        };
        Error::Rejected {
            code,
            message: s.message().to_owned(),
        }
    }

    /// Whether the daemon could not be reached (as opposed to refusing).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Unreachable { .. })
    }

    /// Whether trying again later can succeed: the daemon could not be
    /// reached, the call timed out or was cut off (`Unavailable`,
    /// `DeadlineExceeded`, `Cancelled`, transport errors), or the daemon is
    /// shutting down. A refusal — a bad name, a missing token — is not.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. }
                | Error::Rejected {
                    code: Code::Unavailable,
                    ..
                }
        )
    }
}
