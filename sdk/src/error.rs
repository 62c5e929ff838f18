//! SDK errors; daemon answers map to them in one place
//! ([`Error::from_status`]), from the gRPC code and the typed details the
//! daemon sends in `grpc-status-details-bin` — a `google.rpc.ErrorInfo`
//! whose reason says what happened, and `cfgd.v1.Problems` for bad names
//! and values — never from the message's wording.

use cfgd_proto::pb;
use cfgd_settings::Source;
use prost::{Message, Name};

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
        /// The daemon's message, for people (one line per problem).
        message: String,
        /// What was wrong, field by field, in request order (empty when the
        /// refusal is not about names or values).
        problems: Vec<Problem>,
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
    /// A request message over the daemon's size limit.
    ResourceExhausted,
    /// A token is needed (or was wrong).
    Unauthenticated,
    /// The daemon is shutting down, or its shared store (etcd) cannot be
    /// reached: the change was not made; the same request may pass later.
    Unavailable,
    /// The change was sent to the daemon's shared store but its outcome is
    /// unknown: it may still be applied. Not safe to send again blindly.
    OutcomeUnknown,
    /// Anything else.
    Other,
}

/// One thing wrong with a refused request.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// The setting's canonical name; `None` when the name is unknown.
    pub setting: Option<String>,
    /// The name as the caller gave it (an alias, another case, a typo);
    /// the daemon quotes at most a short prefix.
    pub given_name: String,
    /// Where the refused value came from, when the problem is about one.
    pub source: Option<Source>,
    /// What was expected, and what was given.
    pub expected: String,
    /// For an unknown name, the closest declared one.
    pub suggestion: Option<String>,
    /// The problem in one line, for people.
    pub message: String,
}

/// Kinds of [`Problem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// No setting has this name or alias.
    UnknownName,
    /// A value that does not fit its setting's type or bounds.
    InvalidValue,
    /// Unsetting a name the active profile does not hold.
    NotInProfile,
    /// A name, value or batch over one of the daemon's limits.
    Limit,
    /// A request that is not well-formed (an empty batch, no value).
    BadRequest,
    /// The same setting given twice in one batch (perhaps once by an alias).
    GivenTwice,
    /// A kind this SDK does not know (a newer daemon).
    Other,
}

/// The error domain of the daemon's `google.rpc.ErrorInfo`.
const DOMAIN: &str = "cfgd.v1";

/// What the daemon's details say about a refusal.
#[derive(Debug, Default)]
struct Details {
    reason: Option<pb::ErrorReason>,
    problems: Vec<Problem>,
}

impl Details {
    /// The `google.rpc.Status` in `grpc-status-details-bin`; nothing when
    /// absent or not the daemon's (a proxy's, a transport error).
    fn of(s: &tonic::Status) -> Self {
        let mut out = Details::default();
        let Ok(status) = tonic_types::pb::Status::decode(s.details()) else {
            return out;
        };
        for any in status.details {
            if any.type_url == tonic_types::ErrorInfo::TYPE_URL {
                out.reason = tonic_types::pb::ErrorInfo::decode(any.value.as_slice())
                    .ok()
                    .filter(|i| i.domain == DOMAIN)
                    .and_then(|i| {
                        pb::ErrorReason::from_str_name(&format!("ERROR_REASON_{}", i.reason))
                    });
            } else if any.type_url == pb::Problems::type_url()
                && let Ok(p) = pb::Problems::decode(any.value.as_slice())
            {
                out.problems = p.problems.into_iter().map(Problem::from_pb).collect();
            }
        }
        out
    }
}

impl Problem {
    fn from_pb(p: pb::Problem) -> Self {
        use pb::ProblemKind as K;
        let kind = match K::try_from(p.kind).unwrap_or(K::Unspecified) {
            K::UnknownName => ProblemKind::UnknownName,
            K::InvalidValue => ProblemKind::InvalidValue,
            K::NotInProfile => ProblemKind::NotInProfile,
            K::Limit => ProblemKind::Limit,
            K::BadRequest => ProblemKind::BadRequest,
            K::GivenTwice => ProblemKind::GivenTwice,
            K::Unspecified => ProblemKind::Other,
        };
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        Problem {
            kind,
            setting: non_empty(p.setting),
            given_name: p.given_name,
            source: p.source.map(|s| crate::client::source_from_pb(Some(s))),
            expected: p.expected,
            suggestion: non_empty(p.suggestion),
            message: p.message,
        }
    }
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
        let details = Details::of(&s);
        let code = match s.code() {
            C::InvalidArgument => Code::InvalidArgument,
            C::NotFound => Code::NotFound,
            C::AlreadyExists => Code::AlreadyExists,
            C::FailedPrecondition => Code::FailedPrecondition,
            C::Aborted => Code::Conflict,
            C::OutOfRange => Code::OutOfRange,
            C::ResourceExhausted => Code::ResourceExhausted,
            C::Unauthenticated => Code::Unauthenticated,
            // The daemon says it is shutting down; anything else that is
            // unavailable (refused, reset, timed out) is the transport's.
            C::Unavailable
                if matches!(
                    details.reason,
                    Some(pb::ErrorReason::ShuttingDown | pb::ErrorReason::SharedStoreUnavailable)
                ) =>
            {
                Code::Unavailable
            }
            C::DeadlineExceeded if details.reason == Some(pb::ErrorReason::OutcomeUnknown) => {
                Code::OutcomeUnknown
            }
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
            problems: details.problems,
        }
    }

    /// Whether the daemon could not be reached (as opposed to refusing).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Unreachable { .. })
    }

    /// Whether the same request may succeed later unchanged: the daemon
    /// could not be reached, or it was shutting down (it, or the one that
    /// replaces it, will answer). A refusal of the request itself is not.
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

    /// The problems of a refusal, field by field (empty for other errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            Error::Rejected { problems, .. } => problems,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(
        code: tonic::Code,
        message: &str,
        reason: &str,
        problems: Vec<pb::Problem>,
    ) -> tonic::Status {
        let mut any = vec![prost_types_any(
            tonic_types::ErrorInfo::TYPE_URL,
            &tonic_types::pb::ErrorInfo {
                reason: reason.into(),
                domain: DOMAIN.into(),
                metadata: Default::default(),
            },
        )];
        if !problems.is_empty() {
            any.push(prost_types_any(
                &pb::Problems::type_url(),
                &pb::Problems {
                    problems,
                    omitted: 0,
                },
            ));
        }
        let status = tonic_types::pb::Status {
            code: code as i32,
            message: message.into(),
            details: any,
        };
        tonic::Status::with_details(code, message, status.encode_to_vec().into())
    }

    fn prost_types_any(type_url: &str, m: &impl Message) -> prost_types::Any {
        prost_types::Any {
            type_url: type_url.into(),
            value: m.encode_to_vec(),
        }
    }

    #[test]
    fn shutting_down_is_told_from_unreachable_by_the_reason_not_the_wording() {
        let s = details(
            tonic::Code::Unavailable,
            "wording that changed",
            "SHUTTING_DOWN",
            vec![],
        );
        let e = Error::from_status("http://x", s);
        assert!(
            matches!(
                e,
                Error::Rejected {
                    code: Code::Unavailable,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.is_transient() && !e.is_unreachable());

        // The old test: a message starting with "cfgd" but no reason.
        let e = Error::from_status(
            "http://x",
            tonic::Status::unavailable("cfgd is shutting down"),
        );
        assert!(e.is_unreachable() && e.is_transient(), "{e:?}");

        let e = Error::from_status(
            "http://x",
            details(
                tonic::Code::InvalidArgument,
                "x",
                "INVALID_SETTINGS",
                vec![],
            ),
        );
        assert!(!e.is_transient());
    }

    #[test]
    fn a_shared_store_refusal_and_an_unknown_outcome_are_the_daemons_words_not_the_transports() {
        let e = Error::from_status(
            "http://x",
            details(
                tonic::Code::Unavailable,
                "the shared store cannot be reached",
                "SHARED_STORE_UNAVAILABLE",
                vec![],
            ),
        );
        assert!(
            matches!(
                e,
                Error::Rejected {
                    code: Code::Unavailable,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.is_transient() && !e.is_unreachable());
        let e = Error::from_status(
            "http://x",
            details(
                tonic::Code::DeadlineExceeded,
                "may still be applied",
                "OUTCOME_UNKNOWN",
                vec![],
            ),
        );
        assert!(
            matches!(
                e,
                Error::Rejected {
                    code: Code::OutcomeUnknown,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            !e.is_transient(),
            "an unknown outcome is never retried blindly"
        );
        // A deadline of the transport's own stays "unreachable".
        let e = Error::from_status("http://x", tonic::Status::deadline_exceeded("timeout"));
        assert!(e.is_unreachable(), "{e:?}");
    }

    #[test]
    fn problems_come_from_the_details_field_by_field() {
        let p = pb::Problem {
            kind: pb::ProblemKind::InvalidValue as i32,
            setting: "PREFECT_TASKS_DEFAULT_RETRIES".into(),
            given_name: "prefect_task_default_retries".into(),
            source: Some(pb::Source {
                layer: pb::Layer::Profile as i32,
                detail: "default".into(),
                ..Default::default()
            }),
            expected: "expected an integer, got \"x\"".into(),
            suggestion: String::new(),
            message: "any wording at all".into(),
        };
        let e = Error::from_status(
            "http://x",
            details(
                tonic::Code::InvalidArgument,
                "any wording",
                "INVALID_SETTINGS",
                vec![p],
            ),
        );
        let [problem] = e.problems() else {
            panic!("one problem: {e:?}")
        };
        assert_eq!(problem.kind, ProblemKind::InvalidValue);
        assert_eq!(
            problem.setting.as_deref(),
            Some("PREFECT_TASKS_DEFAULT_RETRIES")
        );
        assert_eq!(problem.given_name, "prefect_task_default_retries");
        assert_eq!(problem.source, Some(Source::profile("default")));
        assert_eq!(problem.expected, "expected an integer, got \"x\"");
        assert_eq!(problem.suggestion, None);
    }

    #[test]
    fn a_status_without_details_is_a_refusal_with_no_problems() {
        let e = Error::from_status("http://x", tonic::Status::invalid_argument("bad"));
        assert!(
            matches!(&e, Error::Rejected { code: Code::InvalidArgument, problems, .. } if problems.is_empty())
        );
    }
}
