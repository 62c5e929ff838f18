//! One writer group as one etcd transaction (scale-out.md §6):
//!
//! ```text
//! compare: mod_revision(meta/head) == M       (the head this daemon applied)
//! success: put/delete profiles/<each profile the group changed>
//!          put/delete active                  (when it changed)
//!          put log/<S+1> … log/<S+k>          (one record per change)
//!          delete log/<S+i-H>                 (trim: keep the last H)
//!          put meta/head = S+k
//! failure: range meta/head, range log/<S+1>…  (what this daemon missed)
//! ```
//!
//! A transaction whose answer was lost may have been applied. It is safe to
//! send again as it is: a second copy fails the compare once the first is
//! in. So it is sent again until an answer comes or the deadline passes:
//! applied, or refused with a record `S+1` that carries this group's id
//! (the first copy went in), or refused with another daemon's (behind).
//! Without an answer by the deadline the outcome is reported unknown.

use std::collections::BTreeSet;
use std::time::Instant;

use cfgd_etcd::{Cmp, Compare, Op, Range, Txn, TxnResult, prefix_end};
use cfgd_settings::ProfilesFile;

use super::keys;
use super::{EtcdStore, Keys};
use crate::store::{CommitError, Record, Remote, SharedRecord, shared_seq};

/// Writes `records` after shared revision `position`; on success, the new
/// position (the last record's `S` and the revision it was written at).
pub(super) fn commit(
    store: &EtcdStore,
    position: (u64, i64),
    records: &[Record],
    profiles: &ProfilesFile,
) -> Result<(u64, i64), CommitError> {
    let (seq, head_revision) = position;
    let id = format!("{:016x}", rand::random::<u64>());
    let shared: Vec<SharedRecord> = records
        .iter()
        .map(|r| SharedRecord {
            seq: shared_seq(r.revision),
            time_ms: r.time_ms,
            origin: r.origin,
            detail: r.detail.clone(),
            host: store.host.clone(),
            txn: id.clone(),
            profiles: r.profiles.clone(),
            store_revision: 0,
        })
        .collect();
    let consecutive = shared
        .iter()
        .enumerate()
        .all(|(i, r)| r.seq == seq + 1 + i as u64);
    if !consecutive {
        return Err(CommitError::Refused {
            transient: false,
            message: format!(
                "the records do not follow shared revision {seq}: {:?}",
                shared.iter().map(|r| r.seq).collect::<Vec<_>>()
            ),
        });
    }
    let last = seq + shared.len() as u64;
    let txn = transaction(&store.keys, store.history, head_revision, &shared, profiles);
    let started = Instant::now();
    let mut unknown: Option<String> = None;
    loop {
        let answer = store.runtime.block_on(store.client.txn(txn.clone()));
        let err = match answer {
            Ok(r) if r.succeeded => return Ok((last, r.revision)),
            Ok(r) => {
                let behind = missed(&store.keys, &r).map_err(|message| CommitError::Refused {
                    transient: false,
                    message,
                })?;
                return match behind.records.first() {
                    // An earlier copy of this very transaction went in.
                    Some(first) if unknown.is_some() && first.txn == id => {
                        let at = behind
                            .records
                            .iter()
                            .find(|r| r.seq == last)
                            .map_or(first.store_revision, |r| r.store_revision);
                        tracing::info!(
                            shared_revision = last,
                            "a shared write whose answer was lost was applied"
                        );
                        Ok((last, at))
                    }
                    _ => Err(CommitError::Behind(behind)),
                };
            }
            Err(e) => e,
        };
        let retry = err.is_outcome_unknown() || (unknown.is_some() && err.is_unreachable());
        if err.is_outcome_unknown() {
            unknown = Some(err.to_string());
        }
        if !retry {
            return Err(match unknown {
                Some(first) => CommitError::Unknown(format!("{first}; then {err}")),
                None => CommitError::Refused {
                    transient: err.is_unreachable(),
                    message: err.to_string(),
                },
            });
        }
        if started.elapsed() >= store.deadline {
            return Err(CommitError::Unknown(
                unknown.unwrap_or_else(|| err.to_string()),
            ));
        }
        tracing::warn!(error = %err, "a shared write's answer was lost; sending it again (a second copy cannot apply twice)");
    }
}

/// The transaction of module docs.
fn transaction(
    keys: &Keys,
    history: u64,
    head_revision: i64,
    records: &[SharedRecord],
    profiles: &ProfilesFile,
) -> Txn {
    let mut touched: BTreeSet<&str> = BTreeSet::new();
    let mut active = false;
    for r in records {
        touched.extend(r.profiles.profile_names());
        active |= r.profiles.active.is_some();
    }
    let mut ops = Vec::with_capacity(touched.len() + 2 * records.len() + 2);
    for name in touched {
        ops.push(match profiles.profiles.get(name) {
            Some(table) => Op::put(keys.profile(name), keys::encode_profile(table)),
            None => Op::delete(keys.profile(name)),
        });
    }
    if active {
        ops.push(match &profiles.active {
            Some(name) => Op::put(keys.active(), name.clone()),
            None => Op::delete(keys.active()),
        });
    }
    for r in records {
        ops.push(Op::put(keys.record(r.seq), keys::encode_record(r)));
        if r.seq > history {
            ops.push(Op::delete(keys.record(r.seq - history)));
        }
    }
    let last = records.last().map_or(0, |r| r.seq);
    ops.push(Op::put(keys.head(), last.to_string()));
    let first = records.first().map_or(0, |r| r.seq);
    Txn::new()
        .when([Compare::mod_revision(
            keys.head(),
            Cmp::Equal,
            head_revision,
        )])
        .and_then(ops)
        .or_else([
            Op::range(Range::key(keys.head())),
            Op::range(Range::between(
                keys.record(first),
                prefix_end(keys.log().as_bytes()),
            )),
        ])
}

/// The failure branch's answer: the head and the records after this
/// daemon's position.
fn missed(keys: &Keys, answer: &TxnResult) -> Result<Remote, String> {
    let mut ranges = answer.ranges();
    let (Some(head), Some(log)) = (ranges.next(), ranges.next()) else {
        return Err("the refused transaction answered without its reads".into());
    };
    let Some(kv) = head.kvs.first() else {
        return Err(format!(
            "{} holds no cfgd state (was etcd wiped?)",
            keys.data()
        ));
    };
    let head = Some((
        keys::decode_number(&keys.head(), &kv.value)?,
        kv.mod_revision,
    ));
    let mut records = Vec::with_capacity(log.kvs.len());
    for kv in &log.kvs {
        let key = String::from_utf8_lossy(&kv.key);
        records.push(keys::decode_record(&key, &kv.value, kv.mod_revision)?);
    }
    Ok(Remote {
        records,
        state: None,
        head,
    })
}
