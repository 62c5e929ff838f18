//! The one place an [`OpError`] becomes a gRPC `Status`.
//!
//! A refused request answers with a code that follows gRPC's status-code
//! guide, a message for people, and typed details for programs: the
//! `grpc-status-details-bin` trailer holds a `google.rpc.Status` whose
//! details are a `google.rpc.ErrorInfo` (domain `cfgd.v1`, a reason from
//! `cfgd.v1.ErrorReason`, revisions or the profile as metadata) and, for bad
//! names or values, a `cfgd.v1.Problems` — one `Problem` per setting with
//! its canonical name, the name as given, the source and what was expected.
//! (`google.rpc.BadRequest` was the alternative; its field violations carry
//! only a field path and a description, so the source, the canonical name
//! and the suggestion would have gone back into prose.)
//!
//! Both the message and the details quote at most a short prefix of the
//! caller's input and hold a bounded number of problems, so the trailers
//! stay far below what HTTP/2 clients accept (8 KiB by default in
//! grpc-core, 16 KiB in hyper): an answer that is too large is lost, and
//! the client sees a protocol error instead of the real one.

use std::borrow::Cow;
use std::collections::HashMap;

use cfgd_proto::pb;
use cfgd_settings::SettingsError;
use prost::{Message, Name};
use tonic::{Code, Status};

use super::{Limit, OpError, StoreFailure};

/// The longest prefix of caller input an error quotes, in bytes.
pub(crate) const QUOTE: usize = 64;
/// The longest "what was expected" an error carries, in bytes.
const EXPECTED: usize = 160;
/// The status message's budget, in bytes as sent (percent-encoded).
const MESSAGE_BUDGET: usize = 1024;
/// The problems' budget in the details, in encoded bytes.
const DETAILS_BUDGET: usize = 3072;
/// The error domain of every `google.rpc.ErrorInfo` the daemon sends.
const DOMAIN: &str = "cfgd.v1";

/// At most `max` bytes of `s` (cut at a character boundary), marked with
/// `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let end = (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    Cow::Owned(format!("{}…", &s[..end]))
}

/// How the caller named the settings of its request: `(canonical, given)`
/// in request order, so a problem about a canonical name can say the name
/// the caller typed (an alias, another case).
#[derive(Debug, Default, Clone)]
pub(crate) struct GivenNames(Vec<(String, String)>);

impl GivenNames {
    /// The names of a request, canonical beside given.
    pub(crate) fn new(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The given name of the next problem about `canonical` (each pair is
    /// used once: a batch may name a setting twice).
    fn take(&mut self, canonical: &str) -> Option<String> {
        let i = self.0.iter().position(|(c, _)| c == canonical)?;
        Some(self.0.remove(i).1)
    }

    fn canonical_of(&self, given: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, g)| g == given)
            .map(|(c, _)| c.as_str())
    }
}

impl OpError {
    /// The `Status` for this error, naming settings as the caller gave them
    /// in `given`.
    pub(crate) fn into_status(self, mut given: GivenNames) -> Status {
        let (code, reason, metadata) = self.classify();
        let problems: Vec<pb::Problem> = match &self {
            OpError::Invalid(errors) => errors.iter().map(|e| problem(e, &mut given)).collect(),
            OpError::Settings(e) => vec![problem(e, &mut given)],
            OpError::Limit(l) => vec![limit_problem(l)],
            _ => Vec::new(),
        };
        let message = if problems.is_empty() {
            clip(&self.to_string(), MESSAGE_BUDGET).into_owned()
        } else {
            message_of(&problems)
        };
        let mut details = vec![pack(
            tonic_types::ErrorInfo::TYPE_URL,
            &tonic_types::pb::ErrorInfo {
                reason: reason_name(reason),
                domain: DOMAIN.to_owned(),
                metadata,
            },
        )];
        if !problems.is_empty() {
            details.push(pack(&pb::Problems::type_url(), &bounded(problems)));
        }
        let status = tonic_types::pb::Status {
            code: code as i32,
            message: message.clone(),
            details,
        };
        Status::with_details(code, message, status.encode_to_vec().into())
    }

    /// The code (gRPC's status-code guide), the reason and its metadata.
    fn classify(&self) -> (Code, pb::ErrorReason, HashMap<String, String>) {
        use pb::ErrorReason as R;
        let meta = |pairs: &[(&str, String)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect()
        };
        match self {
            OpError::Invalid(errors) => (invalid_code(errors), R::InvalidSettings, meta(&[])),
            OpError::Settings(e) => match e {
                SettingsError::ProfileNotFound(p) => (
                    Code::NotFound,
                    R::ProfileNotFound,
                    meta(&[("profile", p.clone())]),
                ),
                SettingsError::ProfileExists(p) => (
                    Code::AlreadyExists,
                    R::ProfileExists,
                    meta(&[("profile", p.clone())]),
                ),
                SettingsError::ProfileActive(p) => (
                    Code::FailedPrecondition,
                    R::ProfileState,
                    meta(&[("profile", p.clone())]),
                ),
                SettingsError::ProfileName(_) => (Code::InvalidArgument, R::BadRequest, meta(&[])),
                SettingsError::UnknownName { .. }
                | SettingsError::UnknownPrefect { .. }
                | SettingsError::InvalidValue { .. }
                | SettingsError::NotInProfile { .. }
                | SettingsError::GivenTwice { .. } => (
                    invalid_code(std::slice::from_ref(e)),
                    R::InvalidSettings,
                    meta(&[]),
                ),
                // A file the operation depends on is broken: fixed by the
                // operator, not by the caller.
                SettingsError::Syntax { .. } | SettingsError::Catalog { .. } => {
                    (Code::FailedPrecondition, R::ProfileState, meta(&[]))
                }
                SettingsError::Io { .. } => (Code::Internal, R::Store, meta(&[])),
            },
            // The guide: ABORTED when a test-and-set fails and the client
            // should retry the read-modify-write.
            OpError::Conflict { expected, actual } => (
                Code::Aborted,
                R::RevisionConflict,
                meta(&[
                    ("expected_revision", expected.to_string()),
                    ("current_revision", actual.to_string()),
                ]),
            ),
            OpError::Compacted { revision, oldest } => (
                Code::OutOfRange,
                R::RevisionCompacted,
                meta(&[
                    ("revision", revision.to_string()),
                    ("oldest_revision", oldest.to_string()),
                ]),
            ),
            OpError::Future { revision, current } => (
                Code::OutOfRange,
                R::RevisionFuture,
                meta(&[
                    ("revision", revision.to_string()),
                    ("current_revision", current.to_string()),
                ]),
            ),
            OpError::Unauthenticated(_) => (Code::Unauthenticated, R::Unauthenticated, meta(&[])),
            // gRPC's own libraries answer RESOURCE_EXHAUSTED for a message
            // over the size limit. The other limits are properties of the
            // request's content, wrong whatever the daemon's state:
            // INVALID_ARGUMENT (and retry policies never retry it).
            OpError::Limit(Limit::Message { .. }) => (Code::ResourceExhausted, R::Limit, meta(&[])),
            OpError::Limit(Limit::EmptyBatch) => (Code::InvalidArgument, R::BadRequest, meta(&[])),
            OpError::Limit(_) => (Code::InvalidArgument, R::Limit, meta(&[])),
            // Out of space: RESOURCE_EXHAUSTED ("perhaps the entire file
            // system is out of space"); a state dir gone needs an operator;
            // other I/O failures may pass, so the client may retry.
            OpError::Store { kind, .. } => match kind {
                StoreFailure::NoSpace => (Code::ResourceExhausted, R::Store, meta(&[])),
                StoreFailure::StateDirGone => (Code::FailedPrecondition, R::Store, meta(&[])),
                StoreFailure::Io => (Code::Unavailable, R::Store, meta(&[])),
            },
            OpError::ProfilesFileInvalid(_) => {
                (Code::FailedPrecondition, R::ProfilesFileInvalid, meta(&[]))
            }
            OpError::ShuttingDown => (Code::Unavailable, R::ShuttingDown, meta(&[])),
            // Not applied; the same request may pass once etcd is back.
            OpError::SharedUnavailable(_) => {
                (Code::Unavailable, R::SharedStoreUnavailable, meta(&[]))
            }
            OpError::SharedRefused(_) => (Code::FailedPrecondition, R::Store, meta(&[])),
            // The guide's DEADLINE_EXCEEDED: "the operation may have
            // completed successfully" — never UNAVAILABLE, whose clients
            // retry it.
            OpError::OutcomeUnknown(_) => (Code::DeadlineExceeded, R::OutcomeUnknown, meta(&[])),
            OpError::Contended { .. } => (Code::Aborted, R::RevisionConflict, meta(&[])),
        }
    }
}

impl From<OpError> for Status {
    fn from(e: OpError) -> Self {
        e.into_status(GivenNames::default())
    }
}

/// The problems of a batch, field by field, naming settings as given (for
/// `Validate`, whose answer lists every one in its body).
pub(crate) fn problems(errors: &[SettingsError], mut given: GivenNames) -> Vec<pb::Problem> {
    errors.iter().map(|e| problem(e, &mut given)).collect()
}

/// INVALID_ARGUMENT when any name or value is wrong in itself;
/// FAILED_PRECONDITION when the only problem is the profile's state (an
/// unset of names it does not hold).
fn invalid_code(errors: &[SettingsError]) -> Code {
    if errors
        .iter()
        .all(|e| matches!(e, SettingsError::NotInProfile { .. }))
    {
        Code::FailedPrecondition
    } else {
        Code::InvalidArgument
    }
}

/// `ERROR_REASON_INVALID_SETTINGS` → `INVALID_SETTINGS`.
fn reason_name(r: pb::ErrorReason) -> String {
    r.as_str_name()
        .trim_start_matches("ERROR_REASON_")
        .to_owned()
}

fn pack(type_url: &str, m: &impl Message) -> prost_types::Any {
    prost_types::Any {
        type_url: type_url.to_owned(),
        value: m.encode_to_vec(),
    }
}

/// One problem, its text quoting at most a short prefix of the input.
fn problem(e: &SettingsError, given: &mut GivenNames) -> pb::Problem {
    use pb::ProblemKind as K;
    let q = |s: &str| clip(s, QUOTE).into_owned();
    let (kind, setting, given_name, source, expected, suggestion, shown) = match e {
        SettingsError::UnknownName {
            name,
            suggestion,
            at,
        } => (
            K::UnknownName,
            String::new(),
            q(name),
            at.as_ref().map(crate::service::convert::source),
            String::new(),
            suggestion.clone().unwrap_or_default(),
            SettingsError::UnknownName {
                name: q(name),
                suggestion: suggestion.clone(),
                at: at.clone(),
            },
        ),
        SettingsError::UnknownPrefect {
            name,
            suggestion,
            at,
        } => (
            K::UnknownName,
            String::new(),
            q(name),
            Some(crate::service::convert::source(at)),
            String::new(),
            suggestion.clone().unwrap_or_default(),
            SettingsError::UnknownPrefect {
                name: q(name),
                suggestion: suggestion.clone(),
                at: at.clone(),
            },
        ),
        SettingsError::InvalidValue { name, at, expected } => {
            let expected = clip(expected, EXPECTED).into_owned();
            (
                K::InvalidValue,
                name.clone(),
                q(&given.take(name).unwrap_or_else(|| name.clone())),
                Some(crate::service::convert::source(at)),
                expected.clone(),
                String::new(),
                SettingsError::InvalidValue {
                    name: name.clone(),
                    at: at.clone(),
                    expected,
                },
            )
        }
        SettingsError::NotInProfile { name, profile } => (
            K::NotInProfile,
            given.canonical_of(name).unwrap_or(name).to_owned(),
            q(name),
            Some(crate::service::convert::source(
                &cfgd_settings::Source::profile(profile),
            )),
            format!("a value in profile '{profile}'"),
            String::new(),
            e.clone(),
        ),
        SettingsError::GivenTwice {
            name,
            first,
            second,
        } => (
            K::GivenTwice,
            name.clone(),
            q(second),
            None,
            format!("{name} once (already given as '{}')", q(first)),
            String::new(),
            SettingsError::GivenTwice {
                name: name.clone(),
                first: q(first),
                second: q(second),
            },
        ),
        other => (
            K::BadRequest,
            String::new(),
            String::new(),
            None,
            String::new(),
            String::new(),
            other.clone(),
        ),
    };
    pb::Problem {
        kind: kind as i32,
        setting,
        given_name,
        source,
        expected,
        suggestion,
        message: clip(&shown.to_string(), MESSAGE_BUDGET / 2).into_owned(),
    }
}

fn limit_problem(l: &Limit) -> pb::Problem {
    let (kind, given_name, expected) = match l {
        Limit::EmptyBatch => (pb::ProblemKind::BadRequest, String::new(), String::new()),
        Limit::Batch { limit, .. } | Limit::Names { limit, .. } => (
            pb::ProblemKind::Limit,
            String::new(),
            format!("at most {limit} per request"),
        ),
        Limit::NameLength { given, limit, .. } => (
            pb::ProblemKind::Limit,
            given.clone(),
            format!("at most {limit} bytes"),
        ),
        Limit::ValueLength { name, limit, .. } => (
            pb::ProblemKind::Limit,
            name.clone(),
            format!("at most {limit} bytes"),
        ),
        Limit::Message { limit, .. } | Limit::ProfileBytes { limit, .. } => (
            pb::ProblemKind::Limit,
            String::new(),
            format!("at most {limit} bytes"),
        ),
        Limit::Profiles { limit, .. } => (
            pb::ProblemKind::Limit,
            String::new(),
            format!("at most {limit} profiles"),
        ),
    };
    pb::Problem {
        kind: kind as i32,
        given_name,
        expected,
        message: l.to_string(),
        ..Default::default()
    }
}

/// Bytes `s` takes in `grpc-message` (percent-encoded outside printable
/// ASCII).
fn sent_len(s: &str) -> usize {
    s.bytes()
        .map(|b| {
            if (0x20..0x7f).contains(&b) && b != b'%' {
                1
            } else {
                3
            }
        })
        .sum()
}

/// The problems one per line, as many as fit the budget.
fn message_of(problems: &[pb::Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        let line = if out.is_empty() {
            p.message.clone()
        } else {
            format!("\n{}", p.message)
        };
        let more = problems.len() - i;
        let tail = format!("\n… and {more} more problem(s)");
        if sent_len(&out) + sent_len(&line) + sent_len(&tail) > MESSAGE_BUDGET && !out.is_empty() {
            out.push_str(&tail);
            return out;
        }
        out.push_str(&line);
    }
    out
}

/// The first problems that fit the details budget; the rest are counted.
fn bounded(problems: Vec<pb::Problem>) -> pb::Problems {
    let total = problems.len();
    let mut used = 0;
    let kept: Vec<pb::Problem> = problems
        .into_iter()
        .enumerate()
        .take_while(|(i, p)| {
            used += p.encoded_len() + 3;
            *i == 0 || used <= DETAILS_BUDGET
        })
        .map(|(_, p)| p)
        .collect();
    pb::Problems {
        omitted: (total - kept.len()) as u32,
        problems: kept,
    }
}

#[cfg(test)]
mod tests;
