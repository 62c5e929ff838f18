//! The lease keeper keeps a lease alive, lets it expire when stopped, and
//! reports a lease that is gone.

use std::time::Duration;

use cfgd_etcd::testing::Cluster;
use cfgd_etcd::{Client, Lease, LeaseKeeper, LeaseLost, WatchEvent};

use crate::within;

const TTL: Duration = Duration::from_secs(2);
const LIMIT: Duration = Duration::from_secs(30);

/// A lease of `ttl` kept alive, with `/l/host` attached to it; and the
/// revision of that put.
async fn leased_key(client: &Client, ttl: Duration) -> (Lease, LeaseKeeper, i64) {
    let lease = client.grant(ttl).await.unwrap();
    let keeper = client.keep_alive(lease);
    let put = client
        .put_with_lease("/l/host", "up", lease.id)
        .await
        .unwrap();
    (lease, keeper, put.header.unwrap().revision)
}

#[tokio::test]
async fn a_kept_lease_outlives_its_ttl_and_expires_once_its_keeper_stops() {
    let cluster = Cluster::start_one().await.unwrap();
    let client = cluster.client().unwrap();
    let (_, keeper, revision) = leased_key(&client, TTL).await;
    let mut watch = client.watch("/l/host", Vec::new(), revision + 1);

    // Real time must pass for etcd's TTL to run out: twice the TTL.
    tokio::time::sleep(2 * TTL).await;
    assert!(
        client.get("/l/host").await.unwrap().is_some(),
        "kept alive past its TTL"
    );
    assert!(keeper.is_lost().is_none());

    drop(keeper);
    let event = within("the key's deletion", LIMIT, watch.next()).await;
    let Some(Ok(WatchEvent::Events { events, .. })) = event else {
        panic!("{event:?}");
    };
    assert_eq!(events[0].r#type(), cfgd_etcd::pb::event::EventType::Delete);
}

#[tokio::test]
async fn the_keeper_reports_a_lease_revoked_behind_its_back() {
    let cluster = Cluster::start_one().await.unwrap();
    let client = cluster.client().unwrap();
    let (lease, mut keeper, _) = leased_key(&client, TTL).await;

    cluster.client().unwrap().revoke(lease.id).await.unwrap();
    let lost = within("the keeper's report", LIMIT, keeper.lost()).await;
    assert_eq!(lost, LeaseLost::Expired { id: lease.id });
    assert!(client.get("/l/host").await.unwrap().is_none());
    // Revoking what is gone is not an error (a retried revoke is safe).
    keeper.revoke().await.unwrap();
}

#[tokio::test]
async fn revoke_on_shutdown_deletes_the_keys_at_once() {
    let cluster = Cluster::start_one().await.unwrap();
    let client = cluster.client().unwrap();
    let (_, keeper, _) = leased_key(&client, Duration::from_secs(60)).await;
    keeper.revoke().await.unwrap();
    assert!(client.get("/l/host").await.unwrap().is_none());
}
