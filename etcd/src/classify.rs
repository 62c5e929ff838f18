//! What a failed try means for the call: never sent (any call may go to the
//! next member), maybe applied (only a read may), a stale token (authenticate
//! again), or a definite answer from etcd.
//!
//! The distinction rests on where the error came from. tonic wraps a failed
//! connection in [`tonic::ConnectError`] and hyper reports a request it
//! dropped unsent, because its connection had closed, as "canceled"; neither
//! carried a byte of the call. etcd answers some errors before it proposes
//! anything (`no leader` under require-leader, `not capable`, a bad token).
//! Everything else that happened after the call left — a reset stream, a
//! closed connection, etcd's own `request timed out` — may have been applied.

use std::error::Error as _;

use tonic::{Code, Status};

/// A failed try, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Surely not processed by etcd: any call may be sent to the next member.
    NotSent(String),
    /// The call left and may have been applied.
    MaybeApplied(String),
    /// The auth token is no longer valid (expired, its user changed, or the
    /// auth store moved on): authenticate again and send the call again.
    StaleToken(String),
    /// etcd answered with an error: the call was not applied.
    Answered(Code, String),
}

/// etcd's answers that come before any proposal is made: `no leader` (the
/// require-leader check, see [`crate::client`]) and `not capable`.
const REFUSED_BEFORE_PROPOSAL: [&str; 2] = ["etcdserver: no leader", "etcdserver: not capable"];

/// etcd's answers that mean "authenticate again".
const STALE_TOKEN: [&str; 2] = [
    "etcdserver: invalid auth token",
    "etcdserver: revision of auth store is old",
];

pub(crate) fn classify(status: &Status) -> Failure {
    if let Some(source) = status.source() {
        // Made on this side: a connection that failed or closed.
        let mut cause = Some(source);
        while let Some(e) = cause {
            if e.downcast_ref::<tonic::ConnectError>().is_some() {
                return Failure::NotSent(format!("cannot connect: {}", chain(e)));
            }
            // tonic's connect timeout (hyper-timeout wraps tokio's Elapsed).
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && io
                    .get_ref()
                    .is_some_and(|inner| inner.is::<tokio::time::error::Elapsed>())
            {
                return Failure::NotSent("cannot connect: timed out".into());
            }
            if e.downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_canceled)
            {
                return Failure::NotSent(format!(
                    "connection closed before the call was sent: {}",
                    chain(e)
                ));
            }
            cause = e.source();
        }
        return Failure::MaybeApplied(format!("connection failed: {}", chain(source)));
    }
    let message = status.message();
    if REFUSED_BEFORE_PROPOSAL.contains(&message) {
        return Failure::NotSent(message.to_owned());
    }
    if STALE_TOKEN.contains(&message) {
        return Failure::StaleToken(message.to_owned());
    }
    match status.code() {
        // etcd's `request timed out` (its proposal may still commit),
        // `server stopped`, `leader changed`, and the transport's own codes.
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            Failure::MaybeApplied(describe(status))
        }
        code => Failure::Answered(code, message.to_owned()),
    }
}

fn describe(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

/// An error and its causes, `: `-separated (hyper and io errors keep the
/// interesting part, "Connection refused", in a source).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_answers_are_sorted_by_what_they_say_about_the_call() {
        let s = |code, msg: &str| classify(&Status::new(code, msg));
        assert_eq!(
            s(Code::Unavailable, "etcdserver: no leader"),
            Failure::NotSent("etcdserver: no leader".into())
        );
        assert!(matches!(
            s(Code::Unavailable, "etcdserver: request timed out"),
            Failure::MaybeApplied(_)
        ));
        assert!(matches!(
            s(
                Code::Unavailable,
                "etcdserver: request timed out, possibly due to previous leader failure"
            ),
            Failure::MaybeApplied(_)
        ));
        assert!(matches!(
            s(Code::Unauthenticated, "etcdserver: invalid auth token"),
            Failure::StaleToken(_)
        ));
        assert_eq!(
            s(
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted"
            ),
            Failure::Answered(
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted".into()
            )
        );
        assert!(matches!(
            s(
                Code::InvalidArgument,
                "etcdserver: too many operations in txn request"
            ),
            Failure::Answered(..)
        ));
    }

    #[tokio::test]
    async fn a_refused_connection_is_never_sent() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect_lazy();
        let status = crate::pb::kv_client::KvClient::new(channel)
            .range(crate::pb::RangeRequest::default())
            .await
            .unwrap_err();
        match classify(&status) {
            Failure::NotSent(why) => assert!(
                why.contains("cannot connect") && why.contains("refused"),
                "{why}"
            ),
            other => panic!("{other:?} for {status:?}"),
        }
    }
}
