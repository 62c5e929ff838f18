//! Reading the shared state: everything after a shared revision in one
//! consistent read (a txn of ranges), the first daemon's start of an empty
//! prefix, and the watch's events turned into shared changes.
//!
//! A read never depends on etcd's MVCC history: records are live keys, so
//! after a compaction (or a daemon that was away) the read simply takes the
//! records it finds, and the whole profiles when the records no longer
//! reach back (scale-out.md §7).

use std::collections::BTreeMap;

use cfgd_etcd::{Client, Compare, Op, Range, Txn, WatchEvent, pb, prefix_end};
use cfgd_settings::ProfilesFile;

use super::keys::{self, Keys};
use crate::store::{Remote, SharedState};

/// The shared state as one read found it.
#[derive(Debug, Clone)]
pub(crate) struct Read {
    /// The records after the revision asked for, and the state.
    pub(crate) remote: Remote,
    /// The fleet's epoch.
    pub(crate) epoch: u64,
    /// The store's revision the read was made at (a watch goes on from the
    /// next one).
    pub(crate) revision: i64,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// etcd could not be asked.
    #[error(transparent)]
    Etcd(#[from] cfgd_etcd::Error),
    /// What etcd holds under the prefix is not cfgd's.
    #[error("the shared store holds something that is not cfgd's: {0}")]
    Format(String),
}

/// Reads the records after `after` and the state (head, active profile,
/// profiles) at one revision. With a `seed`, an empty prefix is first given
/// an epoch and `seed` as the fleet's profiles (the first daemon's own).
///
/// # Errors
/// etcd cannot be reached, holds something that is not cfgd's, or (without
/// a seed) holds nothing.
pub(crate) async fn read(
    client: &Client,
    keys: &Keys,
    after: u64,
    seed: Option<&ProfilesFile>,
) -> Result<Read, ReadError> {
    for _ in 0..3 {
        if let Some(read) = read_once(client, keys, after).await? {
            return Ok(read);
        }
        let Some(seed) = seed else {
            return Err(ReadError::Format(format!(
                "{} holds no cfgd state (was etcd wiped?)",
                keys.data()
            )));
        };
        initialize(client, keys, seed).await?;
    }
    Err(ReadError::Format(format!(
        "{} is missing right after it was written",
        keys.head()
    )))
}

async fn read_once(client: &Client, keys: &Keys, after: u64) -> Result<Option<Read>, ReadError> {
    let log_end = prefix_end(keys.log().as_bytes());
    let txn = Txn::new().and_then([
        Op::range(Range::key(keys.epoch())),
        Op::range(Range::key(keys.head())),
        Op::range(Range::key(keys.active())),
        Op::range(Range::prefix(keys.profiles())),
        Op::range(Range::between(keys.record(after + 1), log_end)),
    ]);
    let answer = client.txn(txn).await?;
    let ranges: Vec<&pb::RangeResponse> = answer.ranges().collect();
    let [epoch, head, active, profiles, log] = ranges[..] else {
        return Err(ReadError::Format(format!(
            "a read of five ranges answered {}",
            ranges.len()
        )));
    };
    let Some(head) = head.kvs.first() else {
        return Ok(None);
    };
    let epoch = match epoch.kvs.first() {
        Some(kv) => keys::decode_number(&keys.epoch(), &kv.value).map_err(ReadError::Format)?,
        None => {
            return Err(ReadError::Format(format!(
                "{} is there but {} is not",
                keys.head(),
                keys.epoch()
            )));
        }
    };
    let seq = keys::decode_number(&keys.head(), &head.value).map_err(ReadError::Format)?;
    let active = active
        .kvs
        .first()
        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned());
    let mut tables = BTreeMap::new();
    let prefix = keys.profiles();
    for kv in &profiles.kvs {
        let key = String::from_utf8_lossy(&kv.key);
        let name = key.strip_prefix(&prefix).unwrap_or(&key).to_owned();
        tables.insert(
            name,
            keys::decode_profile(&key, &kv.value).map_err(ReadError::Format)?,
        );
    }
    let mut records = Vec::with_capacity(log.kvs.len());
    for kv in &log.kvs {
        let key = String::from_utf8_lossy(&kv.key);
        records.push(
            keys::decode_record(&key, &kv.value, kv.mod_revision).map_err(ReadError::Format)?,
        );
    }
    records.retain(|r| r.seq <= seq);
    Ok(Some(Read {
        remote: Remote {
            records,
            state: Some(SharedState {
                seq,
                store_revision: head.mod_revision,
                profiles: keys::profiles_of(active, tables),
            }),
            head: Some((seq, head.mod_revision)),
        },
        epoch,
        revision: answer.revision,
    }))
}

/// Makes an empty prefix the start of a fleet: a new epoch, shared revision
/// 0, and `seed` as its profiles; a no-op when another daemon did first.
async fn initialize(client: &Client, keys: &Keys, seed: &ProfilesFile) -> Result<(), ReadError> {
    let epoch = rand::random::<u64>().max(1);
    let mut ops = vec![
        Op::put(keys.epoch(), epoch.to_string()),
        Op::put(keys.head(), "0"),
    ];
    if let Some(active) = &seed.active {
        ops.push(Op::put(keys.active(), active.clone()));
    }
    for (name, table) in &seed.profiles {
        ops.push(Op::put(keys.profile(name), keys::encode_profile(table)));
    }
    let txn = Txn::new()
        .when([Compare::absent(keys.head()), Compare::absent(keys.epoch())])
        .and_then(ops);
    // A start that ended unknown is found by the read that follows: the
    // head is there (whoever wrote it) or not (then this runs again).
    match client.txn(txn).await {
        Ok(r) if r.succeeded => {
            tracing::info!(epoch, prefix = %keys.data(), "started a new fleet in the shared store with this daemon's profiles");
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) if e.is_outcome_unknown() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What one watch response says.
#[derive(Debug, Default)]
pub(crate) struct Events {
    /// The records and the head it carries.
    pub(crate) remote: Remote,
    /// The fleet's epoch was written or deleted (etcd wiped or restored).
    pub(crate) epoch_changed: bool,
}

/// The shared changes of one watch response.
///
/// # Errors
/// A record that is not cfgd's.
pub(crate) fn events(keys: &Keys, event: &WatchEvent) -> Result<Events, String> {
    let mut out = Events::default();
    let WatchEvent::Events { events, .. } = event else {
        return Ok(out);
    };
    let (log, head, epoch) = (keys.log(), keys.head(), keys.epoch());
    for e in events {
        let Some(kv) = &e.kv else { continue };
        let key = String::from_utf8_lossy(&kv.key);
        let put = e.r#type == pb::event::EventType::Put as i32;
        if key == epoch || (key == head && !put) {
            out.epoch_changed = true;
        } else if !put {
            // Trimmed records, deleted profiles: their changes come with
            // the records.
        } else if key.starts_with(&log) {
            out.remote
                .records
                .push(keys::decode_record(&key, &kv.value, kv.mod_revision)?);
        } else if key == head {
            let seq = keys::decode_number(&key, &kv.value)?;
            out.remote.head = Some((seq, kv.mod_revision));
        }
    }
    out.remote.records.sort_by_key(|r| r.seq);
    Ok(out)
}
