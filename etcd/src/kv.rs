//! Reads and writes of keys: put, get and range (linearizable or
//! serializable), delete, compaction; and the member-level calls (`Status`,
//! `MemberList`).

use crate::client::{Client, Kind, Leader};
use crate::pb::kv_client::KvClient;
use crate::{Error, pb};

/// The end of the range of every key that starts with `prefix` (etcd's
/// `range_end`): `prefix` with its last byte below 0xff incremented, and
/// what follows that byte dropped; `[0]` (every key) when there is none.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A range read: one key or a prefix, linearizable unless asked otherwise.
#[derive(Debug, Clone)]
pub struct Range {
    req: pb::RangeRequest,
}

impl Range {
    /// The key `key` alone.
    pub fn key(key: impl Into<Vec<u8>>) -> Self {
        Self {
            req: pb::RangeRequest {
                key: key.into(),
                ..Default::default()
            },
        }
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        let key = prefix.into();
        let range_end = prefix_end(&key);
        Self {
            req: pb::RangeRequest {
                key,
                range_end,
                ..Default::default()
            },
        }
    }

    /// Every key from `key` (inclusive) up to `range_end` (exclusive).
    pub fn between(key: impl Into<Vec<u8>>, range_end: impl Into<Vec<u8>>) -> Self {
        Self {
            req: pb::RangeRequest {
                key: key.into(),
                range_end: range_end.into(),
                ..Default::default()
            },
        }
    }

    /// Served by the member alone, without a round through the leader: may
    /// be stale, works while the cluster has no leader.
    pub fn serializable(mut self) -> Self {
        self.req.serializable = true;
        self
    }

    /// The store as it was at `revision` (fails with `OutOfRange` once that
    /// revision is compacted).
    pub fn at_revision(mut self, revision: i64) -> Self {
        self.req.revision = revision;
        self
    }

    /// At most `limit` keys (`more` says whether there were others).
    pub fn limit(mut self, limit: i64) -> Self {
        self.req.limit = limit;
        self
    }

    /// Keys and their revisions without values.
    pub fn keys_only(mut self) -> Self {
        self.req.keys_only = true;
        self
    }

    pub(crate) fn into_request(self) -> pb::RangeRequest {
        self.req
    }
}

impl Client {
    /// Reads `range`.
    ///
    /// # Errors
    /// [`Error::Unreachable`] when no member answers before the deadline;
    /// [`Error::Rejected`] for a compacted or future revision.
    pub async fn range(&self, range: Range) -> Result<pb::RangeResponse, Error> {
        let req = range.into_request();
        let leader = if req.serializable {
            Leader::NotRequired
        } else {
            Leader::Required
        };
        self.unary("range", Kind::Idempotent, leader, req, |ch, r| async move {
            KvClient::new(ch).range(r).await
        })
        .await
    }

    /// The current value of `key` (linearizable), if it exists.
    ///
    /// # Errors
    /// As [`Client::range`].
    pub async fn get(&self, key: impl Into<Vec<u8>>) -> Result<Option<pb::KeyValue>, Error> {
        Ok(self.range(Range::key(key)).await?.kvs.into_iter().next())
    }

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// [`Error::OutcomeUnknown`] when the put was sent and then timed out or
    /// lost its connection (it may be applied); [`Error::Unreachable`] when
    /// no member took it; [`Error::Rejected`] when etcd refused it.
    pub async fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Result<pb::PutResponse, Error> {
        self.put_request(pb::PutRequest {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        })
        .await
    }

    /// Sets `key` to `value`, attached to `lease` (deleted with it).
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn put_with_lease(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        lease: i64,
    ) -> Result<pb::PutResponse, Error> {
        self.put_request(pb::PutRequest {
            key: key.into(),
            value: value.into(),
            lease,
            ..Default::default()
        })
        .await
    }

    /// Sends a put as given (`prev_kv`, `ignore_value`, …).
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn put_request(&self, req: pb::PutRequest) -> Result<pb::PutResponse, Error> {
        self.unary(
            "put",
            Kind::Mutating,
            Leader::Required,
            req,
            |ch, r| async move { KvClient::new(ch).put(r).await },
        )
        .await
    }

    /// Deletes `key`; the answer says how many keys went (0 or 1).
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn delete(&self, key: impl Into<Vec<u8>>) -> Result<pb::DeleteRangeResponse, Error> {
        self.delete_request(pb::DeleteRangeRequest {
            key: key.into(),
            ..Default::default()
        })
        .await
    }

    /// Deletes every key that starts with `prefix`.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn delete_prefix(
        &self,
        prefix: impl Into<Vec<u8>>,
    ) -> Result<pb::DeleteRangeResponse, Error> {
        let key = prefix.into();
        let range_end = prefix_end(&key);
        self.delete_request(pb::DeleteRangeRequest {
            key,
            range_end,
            ..Default::default()
        })
        .await
    }

    async fn delete_request(
        &self,
        req: pb::DeleteRangeRequest,
    ) -> Result<pb::DeleteRangeResponse, Error> {
        self.unary(
            "delete",
            Kind::Mutating,
            Leader::Required,
            req,
            |ch, r| async move { KvClient::new(ch).delete_range(r).await },
        )
        .await
    }

    /// Compacts the history up to `revision`: older revisions can no longer
    /// be read or watched from. `physical` waits until the space is freed.
    ///
    /// # Errors
    /// As [`Client::put`]; [`Error::Rejected`] for a revision already
    /// compacted or in the future.
    pub async fn compact(
        &self,
        revision: i64,
        physical: bool,
    ) -> Result<pb::CompactionResponse, Error> {
        let req = pb::CompactionRequest { revision, physical };
        self.unary(
            "compact",
            Kind::Mutating,
            Leader::Required,
            req,
            |ch, r| async move { KvClient::new(ch).compact(r).await },
        )
        .await
    }

    /// `Status` of the member at `endpoints()[member]` only (its leader, its
    /// raft term and index, its alarms), answered without a leader too.
    ///
    /// # Errors
    /// That member's error, as [`Error::Unreachable`] or
    /// [`Error::Rejected`].
    pub async fn member_status(&self, member: usize) -> Result<pb::StatusResponse, Error> {
        let m = &self.members()[member];
        let timeout = self.config().try_timeout;
        let req = self.request(pb::StatusRequest {}, Leader::NotRequired, None);
        let started = std::time::Instant::now();
        let mut maintenance = pb::maintenance_client::MaintenanceClient::new(m.channel.clone());
        let answer = match tokio::time::timeout(timeout, maintenance.status(req)).await {
            Ok(Ok(r)) => return Ok(r.into_inner()),
            Ok(Err(status)) => match crate::classify::classify(&status) {
                crate::classify::Failure::Answered(code, message) => {
                    return Err(Error::Rejected {
                        op: "status",
                        member: m.url.clone(),
                        code,
                        message,
                    });
                }
                other => format!("{other:?}"),
            },
            Err(_) => format!("no answer within {} ms", timeout.as_millis()),
        };
        Err(Error::Unreachable {
            op: "status",
            attempts: vec![crate::Attempt {
                member: m.url.clone(),
                answer,
                took: started.elapsed(),
            }],
            since: std::time::SystemTime::now(),
        })
    }

    /// The cluster's members, as the current member knows them.
    ///
    /// # Errors
    /// As [`Client::range`].
    pub async fn member_list(&self) -> Result<pb::MemberListResponse, Error> {
        let req = pb::MemberListRequest {
            linearizable: false,
        };
        self.unary(
            "member list",
            Kind::Idempotent,
            Leader::Required,
            req,
            |ch, r| async move {
                pb::cluster_client::ClusterClient::new(ch)
                    .member_list(r)
                    .await
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key_after_the_prefix() {
        assert_eq!(prefix_end(b"/cfgd/v1/"), b"/cfgd/v10");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), [0]);
        assert_eq!(prefix_end(b""), [0]);
    }
}
