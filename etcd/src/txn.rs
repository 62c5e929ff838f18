//! Transactions: compares (mod_revision, create_revision, version, value),
//! then the operations of the branch the compares chose — the
//! compare-and-swap shapes of scale-out.md §6.

use crate::client::{Client, Kind, Leader};
use crate::kv::{Range, prefix_end};
use crate::pb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::pb::kv_client::KvClient;
use crate::{Error, pb};

/// How a compare relates the key's field to the given value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
    /// `>`
    Greater,
    /// `<`
    Less,
}

impl From<Cmp> for CompareResult {
    fn from(c: Cmp) -> Self {
        match c {
            Cmp::Equal => CompareResult::Equal,
            Cmp::NotEqual => CompareResult::NotEqual,
            Cmp::Greater => CompareResult::Greater,
            Cmp::Less => CompareResult::Less,
        }
    }
}

/// One compare of a txn's guard.
#[derive(Debug, Clone)]
pub struct Compare(pb::Compare);

impl Compare {
    fn new(key: impl Into<Vec<u8>>, cmp: Cmp, target: CompareTarget, value: TargetUnion) -> Self {
        Self(pb::Compare {
            result: CompareResult::from(cmp).into(),
            target: target.into(),
            key: key.into(),
            target_union: Some(value),
            range_end: Vec::new(),
        })
    }

    /// The revision `key` was last modified at (0: the key does not exist).
    pub fn mod_revision(key: impl Into<Vec<u8>>, cmp: Cmp, revision: i64) -> Self {
        Self::new(
            key,
            cmp,
            CompareTarget::Mod,
            TargetUnion::ModRevision(revision),
        )
    }

    /// The revision `key` was created at (0: the key does not exist).
    pub fn create_revision(key: impl Into<Vec<u8>>, cmp: Cmp, revision: i64) -> Self {
        Self::new(
            key,
            cmp,
            CompareTarget::Create,
            TargetUnion::CreateRevision(revision),
        )
    }

    /// How many times `key` was written since its creation (0: absent).
    pub fn version(key: impl Into<Vec<u8>>, cmp: Cmp, version: i64) -> Self {
        Self::new(
            key,
            cmp,
            CompareTarget::Version,
            TargetUnion::Version(version),
        )
    }

    /// The value of `key`.
    pub fn value(key: impl Into<Vec<u8>>, cmp: Cmp, value: impl Into<Vec<u8>>) -> Self {
        Self::new(
            key,
            cmp,
            CompareTarget::Value,
            TargetUnion::Value(value.into()),
        )
    }

    /// `key` does not exist (its create revision is 0).
    pub fn absent(key: impl Into<Vec<u8>>) -> Self {
        Self::create_revision(key, Cmp::Equal, 0)
    }
}

/// One operation of a txn branch.
#[derive(Debug, Clone)]
pub struct Op(pb::RequestOp);

impl Op {
    fn of(request: pb::request_op::Request) -> Self {
        Self(pb::RequestOp {
            request: Some(request),
        })
    }

    /// Sets `key` to `value`.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self::put_with_lease(key, value, 0)
    }

    /// Sets `key` to `value`, attached to `lease`.
    pub fn put_with_lease(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, lease: i64) -> Self {
        Self::of(pb::request_op::Request::RequestPut(pb::PutRequest {
            key: key.into(),
            value: value.into(),
            lease,
            ..Default::default()
        }))
    }

    /// Deletes `key`.
    pub fn delete(key: impl Into<Vec<u8>>) -> Self {
        Self::of(pb::request_op::Request::RequestDeleteRange(
            pb::DeleteRangeRequest {
                key: key.into(),
                ..Default::default()
            },
        ))
    }

    /// Deletes every key that starts with `prefix`.
    pub fn delete_prefix(prefix: impl Into<Vec<u8>>) -> Self {
        let key = prefix.into();
        let range_end = prefix_end(&key);
        Self::of(pb::request_op::Request::RequestDeleteRange(
            pb::DeleteRangeRequest {
                key,
                range_end,
                ..Default::default()
            },
        ))
    }

    /// Reads `range` at the txn's revision.
    pub fn range(range: Range) -> Self {
        Self::of(pb::request_op::Request::RequestRange(range.into_request()))
    }
}

/// A transaction: if every compare holds, the `and_then` operations run,
/// otherwise the `or_else` ones; all at one revision, all or nothing.
#[derive(Debug, Clone, Default)]
pub struct Txn(pb::TxnRequest);

impl Txn {
    /// An empty txn (no compare: `and_then` always runs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds compares to the guard (all must hold).
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.0.compare.extend(compares.into_iter().map(|c| c.0));
        self
    }

    /// Adds operations to the branch that runs when the guard holds.
    pub fn and_then(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.0.success.extend(ops.into_iter().map(|o| o.0));
        self
    }

    /// Adds operations to the branch that runs when it does not.
    pub fn or_else(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.0.failure.extend(ops.into_iter().map(|o| o.0));
        self
    }

    /// The request as it goes on the wire.
    pub fn into_request(self) -> pb::TxnRequest {
        self.0
    }
}

/// What a txn did.
#[derive(Debug, Clone)]
pub struct TxnResult {
    /// Whether the guard held (`and_then` ran) or not (`or_else` ran).
    pub succeeded: bool,
    /// The store's revision after the txn (its own, when it wrote).
    pub revision: i64,
    /// One answer per operation of the branch that ran, in order.
    pub responses: Vec<pb::response_op::Response>,
}

impl TxnResult {
    /// The keys that the range operations of the branch that ran read, in
    /// order.
    pub fn ranges(&self) -> impl Iterator<Item = &pb::RangeResponse> {
        self.responses.iter().filter_map(|r| match r {
            pb::response_op::Response::ResponseRange(r) => Some(r),
            _ => None,
        })
    }
}

impl Client {
    /// Runs `txn`.
    ///
    /// # Errors
    /// As [`Client::put`]: [`Error::OutcomeUnknown`] when it was sent and
    /// then timed out or lost its connection. A guard that does not hold is
    /// not an error: `succeeded` is false.
    pub async fn txn(&self, txn: Txn) -> Result<TxnResult, Error> {
        let req = txn.into_request();
        let writes = req
            .success
            .iter()
            .chain(&req.failure)
            .any(|op| !matches!(op.request, Some(pb::request_op::Request::RequestRange(_))));
        // A txn of ranges only writes nothing: sending it again is safe.
        let kind = if writes {
            Kind::Mutating
        } else {
            Kind::Idempotent
        };
        let answer = self
            .unary("txn", kind, Leader::Required, req, |ch, r| async move {
                KvClient::new(ch).txn(r).await
            })
            .await?;
        Ok(TxnResult {
            succeeded: answer.succeeded,
            revision: answer.header.map_or(0, |h| h.revision),
            responses: answer
                .responses
                .into_iter()
                .filter_map(|r| r.response)
                .collect(),
        })
    }
}
