//! The fleet's guarantees hold while etcd fails: a member killed under a
//! stream of acknowledged sets loses none of them; without a quorum shared
//! writes are refused, saying so, while reads, watches and hot reload go on
//! (status and the `cfgd.v1.SharedStore` health service say degraded) and
//! the daemons catch up when etcd is back; a write whose answer cannot be
//! had is reported as unknown, never as failed, and never applied twice.

use std::time::Duration;

use cfgd_sdk::{Assign, Code, Error};
use cfgd_tests::fleet::{
    changes, cluster, daemon, shared_revision_at_least, store, watch_from_now, within,
};
use cfgd_tests::{RETRIES, TestDaemon, eventually, integer};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn set(value: i64) -> Vec<(String, Assign)> {
    vec![(RETRIES.to_owned(), Assign::Raw(value.to_string()))]
}

/// The `cfgd.v1.SharedStore` health status of `daemon`.
async fn shared_store_health(daemon: &TestDaemon) -> ServingStatus {
    let channel = tonic::transport::Endpoint::from_shared(daemon.endpoint.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let answer = HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "cfgd.v1.SharedStore".into(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(answer.status).unwrap()
}

/// `ca.set(3)`, retried while its error is transient (etcd electing a
/// leader, a member coming back), for at most 30 s. A client's retry, not a
/// wait for a state: there is no event that says the next write will go
/// through.
async fn set_once_it_answers(ca: &cfgd_sdk::Client, what: &str) -> cfgd_sdk::client::WriteResult {
    within(what, Duration::from_secs(30), async {
        loop {
            match ca.set(&set(3), None).await {
                Ok(w) => return w,
                Err(e) if e.is_transient() => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_member_during_a_stream_of_acknowledged_sets_loses_none() {
    let mut etcd = cluster().await;
    let a = daemon(store(&etcd, "a")).await;
    let b = daemon(store(&etcd, "b")).await;
    let (ca, cb) = (a.client().await, b.client().await);
    let mut watch = watch_from_now(&cb).await;
    let mut acknowledged = Vec::new();
    for i in 1..=40 {
        if i == 15 {
            // The leader: writes stall for an election, then go on.
            let leader = etcd.leader().await.expect("a leader");
            etcd.kill(leader).unwrap();
        }
        let r = ca
            .set(&set(i), None)
            .await
            .unwrap_or_else(|e| panic!("set {i}: {e}"));
        acknowledged.push(r.revision);
    }
    let seen: Vec<u64> = changes(&mut watch, acknowledged.len())
        .await
        .iter()
        .map(|c| c.revision)
        .collect();
    assert_eq!(
        seen, acknowledged,
        "every acknowledged set reached B, once, in order"
    );
    assert_eq!(integer(&cb, RETRIES).await, Some(40));
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_shared_writes_are_refused_and_everything_else_goes_on() {
    let mut etcd = cluster().await;
    let a = daemon(store(&etcd, "a")).await;
    let b = daemon(store(&etcd, "b")).await;
    let (ca, cb) = (a.client().await, b.client().await);
    ca.set(&set(1), None).await.unwrap();
    shared_revision_at_least(&cb, 1).await;
    let mut watch = watch_from_now(&cb).await;
    assert_eq!(shared_store_health(&a).await, ServingStatus::Serving);

    let leader = etcd.leader().await.expect("a leader");
    let (x, y) = ((leader + 1) % 3, (leader + 2) % 3);
    etcd.kill(x).unwrap();
    etcd.kill(y).unwrap();
    let refused = ca.set(&set(2), None).await.unwrap_err();
    let Error::Rejected { code, message, .. } = &refused else {
        panic!("the daemon itself answers: {refused:?}")
    };
    assert!(
        matches!(code, Code::Unavailable | Code::OutcomeUnknown),
        "{refused:?}"
    );
    assert!(message.contains("shared store"), "{message}");
    assert!(
        message.contains(etcd.endpoint(leader)),
        "names the members tried: {message}"
    );

    // Reads go on from the last shared state; status and health say why
    // writes are refused.
    assert_eq!(integer(&ca, RETRIES).await, Some(1));
    let store = ca.status().await.unwrap().store;
    assert!(store.degraded_since_ms.is_some(), "{store:?}");
    assert!(store.error.is_some_and(|e| !e.is_empty()));
    assert_eq!(shared_store_health(&a).await, ServingStatus::NotServing);
    eventually("B notices too", || async {
        cb.status().await.unwrap().store.degraded_since_ms.is_some()
    })
    .await;
    // Hot reload is local: it still takes effect, as a local revision.
    b.dirs
        .write_config("prefect.toml", "[flows]\ndefault_retries = 7\n");
    eventually("B reloads its file", || async {
        integer(&cb, "PREFECT_FLOWS_DEFAULT_RETRIES").await == Some(7)
    })
    .await;
    let reload = &changes(&mut watch, 1).await[0];
    assert_eq!(reload.revision, (1 << 24) + 1, "local: L counts up from S");

    // etcd back: the daemons catch up, writes go through, B's watcher sees
    // each change once (the refused write never happened, unless its
    // outcome was unknown: then it shows up once, like any change).
    etcd.restart(x).await.unwrap();
    etcd.restart(y).await.unwrap();
    let written = set_once_it_answers(&ca, "a write once etcd is back").await;
    eventually("A is not degraded", || async {
        ca.status().await.unwrap().store.degraded_since_ms.is_none()
    })
    .await;
    assert_eq!(shared_store_health(&a).await, ServingStatus::Serving);
    let mut after: Vec<u64> = Vec::new();
    while after.last() != Some(&written.revision) {
        after.push(changes(&mut watch, 1).await[0].revision);
    }
    assert!(
        after.len() <= 2,
        "the write (and at most the unknown one): {after:?}"
    );
    assert!(after.windows(2).all(|w| w[0] < w[1]), "{after:?}");
    assert_eq!(integer(&cb, RETRIES).await, Some(3));
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_without_an_answer_is_reported_unknown_and_applied_at_most_once() {
    let etcd = cluster().await;
    let a = daemon(store(&etcd, "a")).await;
    let b = daemon(store(&etcd, "b")).await;
    let (ca, cb) = (a.client().await, b.client().await);
    ca.set(&set(1), None).await.unwrap();
    shared_revision_at_least(&cb, 1).await;

    // Every member holds its connections and answers nothing: the
    // transaction leaves and no answer comes back.
    for i in 0..3 {
        etcd.hang(i).unwrap();
    }
    let unknown = ca.set(&set(2), None).await.unwrap_err();
    let Error::Rejected { code, message, .. } = &unknown else {
        panic!("{unknown:?}")
    };
    assert_eq!(*code, Code::OutcomeUnknown, "{unknown:?}");
    assert!(message.contains("may still be applied"), "{message}");
    for i in 0..3 {
        etcd.resume(i).unwrap();
    }

    // Whatever etcd did with the copies sent to each member, the fleet
    // agrees and the change is there at most once.
    let after = set_once_it_answers(&ca, "a write once etcd answers").await;
    shared_revision_at_least(&cb, after.revision >> 24).await;
    let history = cb.history(0, false).await.unwrap().changes;
    let twos = history
        .iter()
        .filter(|c| {
            c.changes
                .iter()
                .any(|k| k.new.value().and_then(cfgd_settings::Value::as_integer) == Some(2))
        })
        .count();
    assert!(
        twos <= 1,
        "the unknown write applied at most once: {history:?}"
    );
    assert_eq!(
        after.revision >> 24,
        2 + twos as u64,
        "no revision for anything else"
    );
    let ha: Vec<u64> = ca
        .history(0, false)
        .await
        .unwrap()
        .changes
        .iter()
        .map(|c| c.revision)
        .collect();
    let hb: Vec<u64> = history.iter().map(|c| c.revision).collect();
    assert_eq!(ha, hb, "both hosts hold the same shared history");
    b.stop().await;
    a.stop().await;
}
