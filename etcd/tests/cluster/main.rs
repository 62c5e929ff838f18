//! `cfgd-etcd` against a real etcd cluster (Debian's `etcd-server`; run
//! `.ci/deps.sh` first): each test starts its own members on loopback, so
//! it can kill, hang and restart them. One module per behaviour.

mod failover;
mod lease;
mod outcome;
mod secure;
mod txn;
mod watch;

use std::future::Future;
use std::time::Duration;

use cfgd_etcd::testing::Cluster;
use cfgd_etcd::{Client, Config, WatchEvent};

/// Awaits `f`, failing the test when it takes longer than `limit`.
pub(crate) async fn within<T>(what: &str, limit: Duration, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {limit:?}"))
}

/// A follower of `cluster`, so that killing or hanging it leaves the
/// leader (and every write) alone.
pub(crate) async fn a_follower(cluster: &Cluster) -> usize {
    let leader = within("a leader", Duration::from_secs(10), async {
        loop {
            if let Some(l) = cluster.leader().await {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    (leader + 1) % cluster.endpoints().len()
}

/// A client whose current member is `first`, then the others in order.
pub(crate) fn client_starting_at(cluster: &Cluster, first: usize) -> Client {
    let mut endpoints = cluster.endpoints();
    endpoints.rotate_left(first);
    Client::new(Config::new(endpoints)).unwrap()
}

/// A client of every member but `excluded`.
pub(crate) fn client_without(cluster: &Cluster, excluded: usize) -> Client {
    let endpoints: Vec<String> = (0..cluster.endpoints().len())
        .filter(|&i| i != excluded)
        .map(|i| cluster.endpoint(i).to_owned())
        .collect();
    Client::new(Config::new(endpoints)).unwrap()
}

/// The revision of every event `watch` delivers until it has delivered
/// `count`, each event's (key, revision).
pub(crate) async fn collect(
    watch: &mut cfgd_etcd::Watch,
    count: usize,
    limit: Duration,
) -> Vec<(String, i64)> {
    let mut seen = Vec::new();
    within(&format!("{count} watch events"), limit, async {
        while seen.len() < count {
            match watch.next().await {
                Some(Ok(WatchEvent::Events { events, .. })) => {
                    for e in events {
                        let kv = e.kv.expect("an event has its key");
                        seen.push((String::from_utf8(kv.key).unwrap(), kv.mod_revision));
                    }
                }
                other => panic!("watch delivered {other:?} after {} events", seen.len()),
            }
        }
    })
    .await;
    seen
}
