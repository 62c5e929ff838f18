//! Sticky failover: a dead member costs no write; without quorum, writes
//! are refused naming every member tried, and work again once quorum is back.

use cfgd_etcd::testing::Cluster;

use crate::{a_follower, client_starting_at};

const BEFORE: usize = 40;
const AFTER: usize = 120;

#[tokio::test]
async fn puts_keep_succeeding_with_the_current_member_killed() {
    let mut cluster = Cluster::start().await.unwrap();
    let victim = a_follower(&cluster).await;
    let client = client_starting_at(&cluster, victim);
    for i in 0..BEFORE {
        client.put(format!("/f/{i:04}"), "v").await.unwrap();
    }
    assert_eq!(client.current_endpoint(), cluster.endpoint(victim));

    cluster.kill(victim).unwrap();
    let mut failed = Vec::new();
    for i in BEFORE..BEFORE + AFTER {
        if let Err(e) = client.put(format!("/f/{i:04}"), "v").await {
            failed.push(e.to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {AFTER} puts failed: {failed:#?}",
        failed.len()
    );
    assert_ne!(
        client.current_endpoint(),
        cluster.endpoint(victim),
        "the client moved on"
    );

    // Each put landed once.
    let all = client.range(cfgd_etcd::Range::prefix("/f/")).await.unwrap();
    assert_eq!(all.kvs.len(), BEFORE + AFTER);
    assert!(
        all.kvs.iter().all(|kv| kv.version == 1),
        "a put was applied twice"
    );
}

#[tokio::test]
async fn without_quorum_puts_are_refused_naming_the_members_then_work_after_a_restart() {
    let mut cluster = Cluster::start().await.unwrap();
    let client = cluster.client().unwrap();
    client.put("/q/before", "1").await.unwrap();
    let survivor = 2;
    cluster.kill(0).unwrap();
    cluster.kill(1).unwrap();
    cluster.wait_leader_lost(survivor).await.unwrap();

    let err = client.put("/q/during", "2").await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    let text = err.to_string();
    for endpoint in cluster.endpoints() {
        assert!(
            text.contains(&endpoint),
            "{endpoint} is not named in: {text}"
        );
    }
    assert!(
        text.contains("etcdserver: no leader"),
        "the survivor's answer: {text}"
    );
    assert!(
        text.contains("cannot connect"),
        "the dead members' answer: {text}"
    );
    assert!(text.contains("the call was not applied"), "{text}");
    assert!(client.unreachable_since().is_some());

    // Reads that need no leader still answer.
    let stale = client
        .range(cfgd_etcd::Range::key("/q/before").serializable())
        .await
        .unwrap();
    assert_eq!(stale.kvs[0].value, b"1");

    cluster.restart(1).await.unwrap();
    client.put("/q/after", "3").await.unwrap();
    assert!(client.unreachable_since().is_none());
    assert!(
        client.get("/q/during").await.unwrap().is_none(),
        "the refused put was not applied"
    );
}
