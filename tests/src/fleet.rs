//! A fleet for tests: a real 3-member etcd cluster on loopback
//! (`cfgd_etcd::testing::Cluster`, started by the test itself; `etcd` must
//! be on the PATH, which `.ci/deps.sh` sees to — a missing etcd fails the
//! test, saying so) and daemons on it with the etcd store.

use std::time::Duration;

use cfgd::store::etcd::{EtcdConfig, StoreConfig};
use cfgd_etcd::testing::Cluster;
use cfgd_sdk::client::Change;
use cfgd_sdk::{Client, WatchEvent};
use futures_util::{Stream, StreamExt};

use crate::TestDaemon;

/// Starts a 3-member cluster.
///
/// # Panics
/// When etcd is missing (run `.ci/deps.sh`) or does not start.
pub async fn cluster() -> Cluster {
    Cluster::start()
        .await
        .unwrap_or_else(|e| panic!("{e} (the fleet tests need etcd: run .ci/deps.sh)"))
}

/// The etcd store on `endpoints`, as host `host`, reporting to the fleet
/// registry every 50 ms (the default, 1 s, only makes tests slower).
pub fn store_on(endpoints: Vec<String>, host: &str) -> StoreConfig {
    let mut e = EtcdConfig::new(endpoints);
    e.host = host.to_owned();
    e.report_interval = Duration::from_millis(50);
    StoreConfig::Etcd(Box::new(e))
}

/// The etcd store on every member of `cluster`, as host `host`.
pub fn store(cluster: &Cluster, host: &str) -> StoreConfig {
    store_on(cluster.endpoints(), host)
}

/// Starts a daemon with fresh dirs on `store`.
pub async fn daemon(store: StoreConfig) -> TestDaemon {
    TestDaemon::builder().store(store).start().await
}

/// Waits up to `limit` for `f`.
///
/// # Panics
/// When it takes longer (a bound for a busy machine, not a timing
/// assertion).
pub async fn within<T>(what: &str, limit: Duration, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {limit:?}"))
}

/// The changes of a watch until `count` have come, failing on a resync or
/// after 20 s.
///
/// # Panics
/// On a resync, a stream error or the time running out.
pub async fn changes<S>(stream: &mut S, count: usize) -> Vec<Change>
where
    S: Stream<Item = Result<WatchEvent, cfgd_sdk::Error>> + Unpin,
{
    let mut out = Vec::new();
    within(
        &format!("{count} changes"),
        Duration::from_secs(20),
        async {
            while out.len() < count {
                match stream.next().await {
                    Some(Ok(WatchEvent::Change { change, .. })) => out.push(change),
                    other => panic!("after {} changes the watch gave {other:?}", out.len()),
                }
            }
        },
    )
    .await;
    out
}

/// Opens a watch of every setting from `client`'s current state (its first
/// event, the initial snapshot, is consumed).
///
/// # Panics
/// When the daemon does not answer.
pub async fn watch_from_now(
    client: &Client,
) -> impl Stream<Item = Result<WatchEvent, cfgd_sdk::Error>> + Unpin + use<> {
    let mut stream = Box::pin(client.watch(None, None, &[], false).await.expect("watch"));
    match stream.next().await {
        Some(Ok(WatchEvent::Resync { .. })) => {}
        other => panic!("a watch opened without a revision starts with a snapshot, not {other:?}"),
    }
    stream
}

/// Waits until `client`'s daemon serves shared revision `seq` (its
/// published revision is at least `seq·2²⁴`): awaits its watch stream's
/// events, from the revision it serves now.
///
/// # Panics
/// When it does not within 20 s, or the watch fails.
pub async fn shared_revision_at_least(client: &Client, seq: u64) {
    within(
        &format!("shared revision {seq}"),
        Duration::from_secs(20),
        async {
            let now = client.status().await.expect("status");
            if now.revision >> 24 >= seq {
                return;
            }
            let mut watch = Box::pin(
                client
                    .watch(Some(now.revision), Some(now.epoch), &[], false)
                    .await
                    .expect("watch"),
            );
            loop {
                match watch.next().await {
                    Some(Ok(event)) if event.revision() >> 24 >= seq => return,
                    Some(Ok(_)) => {}
                    other => panic!("waiting for shared revision {seq} the watch gave {other:?}"),
                }
            }
        },
    )
    .await;
}
