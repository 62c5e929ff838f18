//! What a call ended with when it did not succeed: which members were tried,
//! what each answered, and whether the call may still have been applied.

use std::fmt;
use std::time::{Duration, SystemTime};

/// Why a call to etcd did not succeed.
///
/// The variants separate what a caller must treat differently:
/// [`Error::Unreachable`] and [`Error::Rejected`] mean the call surely had
/// no effect; [`Error::OutcomeUnknown`] means a mutating call may still be
/// applied (etcd can commit a proposal after its client gave up), so the
/// caller must find out (read back) before it reports success or failure,
/// and must not blindly send it again.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No member could take the call before its deadline; none of them
    /// applied it.
    #[error("{op}: no etcd member could take the call (unreachable since {}; {}); the call was not applied", Since(*.since), Attempts(.attempts))]
    Unreachable {
        /// The operation (`put`, `txn`, `range`, …).
        op: &'static str,
        /// Every try, in order.
        attempts: Vec<Attempt>,
        /// Since when no member has answered a call (the first failure after
        /// the last success).
        since: SystemTime,
    },
    /// A mutating call was sent to `member` and then timed out or lost its
    /// connection: it may or may not have been applied, and it was not sent
    /// to another member.
    #[error("{op}: outcome unknown: the call was sent to {member} and then {cause}; it may still be applied ({})", Attempts(.attempts))]
    OutcomeUnknown {
        /// The operation.
        op: &'static str,
        /// The member that holds the call.
        member: String,
        /// What happened after the call was sent.
        cause: String,
        /// Every try, in order (the last is the one on `member`).
        attempts: Vec<Attempt>,
    },
    /// etcd answered the call with an error (a bad request, a compacted
    /// revision, a permission denied, …): it was not applied.
    #[error("{op}: etcd member {member} refused the call: {code:?}: {message}")]
    Rejected {
        /// The operation.
        op: &'static str,
        /// The member that answered.
        member: String,
        /// The gRPC code etcd answered with.
        code: tonic::Code,
        /// etcd's message (`etcdserver: …`).
        message: String,
    },
    /// The configuration cannot be used (a bad endpoint, bad TLS material).
    #[error("etcd client configuration: {0}")]
    Config(String),
}

impl Error {
    /// Whether the call may have been applied ([`Error::OutcomeUnknown`]).
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::OutcomeUnknown { .. })
    }

    /// Whether no member could be reached ([`Error::Unreachable`]).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Unreachable { .. })
    }

    /// The gRPC code etcd answered with, for [`Error::Rejected`].
    pub fn rejected_code(&self) -> Option<tonic::Code> {
        match self {
            Error::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The tries this call made (empty for [`Error::Rejected`] and
    /// [`Error::Config`]).
    pub fn attempts(&self) -> &[Attempt] {
        match self {
            Error::Unreachable { attempts, .. } | Error::OutcomeUnknown { attempts, .. } => {
                attempts
            }
            _ => &[],
        }
    }
}

/// One try of a call on one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The member's endpoint.
    pub member: String,
    /// What it answered, or what went wrong on the way.
    pub answer: String,
    /// How long the try took.
    pub took: Duration,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} after {} ms",
            self.member,
            self.answer,
            self.took.as_millis()
        )
    }
}

struct Attempts<'a>(&'a [Attempt]);

impl fmt::Display for Attempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} tries", self.0.len())?;
        // The members tried, each with its last answer: a call that went
        // round the members for seconds makes many tries of few kinds.
        let mut members: Vec<&Attempt> = Vec::new();
        for a in self.0.iter().rev() {
            if !members.iter().any(|m| m.member == a.member) {
                members.push(a);
            }
        }
        members.reverse();
        for (i, a) in members.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{} answered {}", a.member, a.answer)?;
        }
        Ok(())
    }
}

struct Since(SystemTime);

impl fmt::Display for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ago = SystemTime::now().duration_since(self.0).unwrap_or_default();
        let unix = self
            .0
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        write!(
            f,
            "unix time {}.{:03} s, {} ms ago",
            unix.as_secs(),
            unix.subsec_millis(),
            ago.as_millis()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(member: &str, answer: &str) -> Attempt {
        Attempt {
            member: member.into(),
            answer: answer.into(),
            took: Duration::from_millis(3),
        }
    }

    #[test]
    fn unreachable_names_each_member_with_its_last_answer() {
        let e = Error::Unreachable {
            op: "put",
            attempts: vec![
                attempt("http://a", "connection refused"),
                attempt("http://b", "connection refused"),
                attempt("http://c", "etcdserver: no leader"),
                attempt("http://a", "connection refused (again)"),
            ],
            since: SystemTime::now(),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("put: no etcd member could take the call"),
            "{text}"
        );
        assert!(text.contains("4 tries: http://b answered connection refused; http://c answered etcdserver: no leader; http://a answered connection refused (again)"), "{text}");
        assert!(text.ends_with("the call was not applied"), "{text}");
        assert!(e.is_unreachable() && !e.is_outcome_unknown());
    }

    #[test]
    fn outcome_unknown_says_it_may_still_be_applied() {
        let e = Error::OutcomeUnknown {
            op: "txn",
            member: "http://a".into(),
            cause: "no answer within 1000 ms".into(),
            attempts: vec![attempt("http://a", "no answer within 1000 ms")],
        };
        let text = e.to_string();
        assert!(text.contains("outcome unknown: the call was sent to http://a and then no answer within 1000 ms; it may still be applied"), "{text}");
        assert!(e.is_outcome_unknown());
    }
}
