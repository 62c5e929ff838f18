//! Daemons on one etcd cluster share the profile layer: a change on one
//! reaches every watcher on the others once, at the same revision; racing
//! writers lose nothing and compare-and-set lets one win; a restart or an
//! etcd compaction while a daemon was away costs its watchers nothing (no
//! resync); rollback works from the daemons' own history.

use std::time::Duration;

use cfgd_sdk::client::{Backoff, Origin, Resumed};
use cfgd_sdk::{Assign, Code, Error, WatchEvent};
use cfgd_tests::fleet::{
    changes, cluster, daemon, shared_revision_at_least, store, store_on, watch_from_now, within,
};
use cfgd_tests::{RETRIES, TestDaemon, integer, quiet};

const FLOW_RETRIES: &str = "PREFECT_FLOWS_DEFAULT_RETRIES";

fn set(name: &str, value: i64) -> Vec<(String, Assign)> {
    vec![(name.to_owned(), Assign::Raw(value.to_string()))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_on_one_daemon_reaches_a_watcher_on_another_once_with_the_same_revision() {
    let etcd = cluster().await;
    let a = daemon(store(&etcd, "a")).await;
    let b = daemon(store(&etcd, "b")).await;
    let (ca, cb) = (a.client().await, b.client().await);
    let mut watch = watch_from_now(&cb).await;

    let written = ca.set(&set(RETRIES, 3), None).await.unwrap();
    assert_eq!(written.revision, 1 << 24, "shared revision 1, L = 0");
    let [change] = &changes(&mut watch, 1).await[..] else {
        unreachable!()
    };
    assert_eq!(
        change.revision, written.revision,
        "the same revision on both hosts"
    );
    assert_eq!(change.origin, Origin::Set);
    assert_eq!(change.host, "a", "B's watcher sees who made it");
    assert_eq!(change.changes[0].name, RETRIES);
    assert!(
        quiet(&mut watch, Duration::from_millis(300)).await,
        "delivered once"
    );
    assert_eq!(integer(&cb, RETRIES).await, Some(3));
    let (ha, hb) = (
        ca.history(0, false).await.unwrap(),
        cb.history(0, false).await.unwrap(),
    );
    assert_eq!(
        ha.changes.iter().map(|c| c.revision).collect::<Vec<_>>(),
        hb.changes.iter().map(|c| c.revision).collect::<Vec<_>>()
    );
    // Profiles are shared too.
    cb.create_profile("prod", None).await.unwrap();
    cb.use_profile("prod").await.unwrap();
    let two = changes(&mut watch, 2).await;
    assert_eq!(two[1].detail, "use prod");
    shared_revision_at_least(&ca, 3).await;
    assert_eq!(integer(&ca, RETRIES).await, Some(0), "prod holds no value");
    assert_eq!(ca.status().await.unwrap().active_profile, "prod");
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_two_daemons_lose_no_update() {
    let etcd = cluster().await;
    let a = daemon(store(&etcd, "a")).await;
    let b = daemon(store(&etcd, "b")).await;
    let (ca, cb) = (a.client().await, b.client().await);
    const N: i64 = 25;
    // Both write into the same profile document at once: a writer that had
    // not seen the other's change would overwrite it, unless the
    // transaction refuses it.
    let writer = |client: cfgd_sdk::Client, name: &'static str| {
        tokio::spawn(async move {
            let mut revisions = Vec::new();
            for i in 1..=N {
                revisions.push(client.set(&set(name, i), None).await.unwrap().revision);
            }
            revisions
        })
    };
    let (ra, rb) = (
        writer(ca.clone(), RETRIES),
        writer(cb.clone(), FLOW_RETRIES),
    );
    let (ra, rb) = (ra.await.unwrap(), rb.await.unwrap());
    let mut acknowledged: Vec<u64> = ra.iter().chain(&rb).copied().collect();
    acknowledged.sort_unstable();
    acknowledged.dedup();
    assert_eq!(
        acknowledged.len(),
        2 * N as usize,
        "every write has its own revision"
    );
    let last = acknowledged.last().unwrap() >> 24;
    shared_revision_at_least(&ca, last).await;
    shared_revision_at_least(&cb, last).await;
    for c in [&ca, &cb] {
        assert_eq!(integer(c, RETRIES).await, Some(N));
        assert_eq!(integer(c, FLOW_RETRIES).await, Some(N));
        let history: Vec<u64> = c
            .history(1000, false)
            .await
            .unwrap()
            .changes
            .iter()
            .map(|ch| ch.revision)
            .collect();
        assert_eq!(
            history, acknowledged,
            "each host has every write, once, in one order"
        );
    }
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_set_across_daemons_lets_exactly_one_win() {
    let etcd = cluster().await;
    let a = daemon(store(&etcd, "a")).await;
    let b = daemon(store(&etcd, "b")).await;
    let (ca, cb) = (a.client().await, b.client().await);
    for round in 1..=5_i64 {
        let seen = ca.status().await.unwrap().revision;
        shared_revision_at_least(&cb, seen >> 24).await;
        assert_eq!(cb.status().await.unwrap().revision, seen);
        let (va, vb) = (set(RETRIES, 10 * round), set(RETRIES, 10 * round + 1));
        let (x, y) = tokio::join!(ca.set(&va, Some(seen)), cb.set(&vb, Some(seen)));
        let (won, lost) = match (x, y) {
            (Ok(w), Err(l)) => (w, l),
            (Err(l), Ok(w)) => (w, l),
            other => panic!("round {round}: exactly one must win: {other:?}"),
        };
        assert!(
            matches!(
                lost,
                Error::Rejected {
                    code: Code::Conflict,
                    ..
                }
            ),
            "the loser is told the revision moved: {lost:?}"
        );
        assert_eq!(won.revision, seen + (1 << 24));
        shared_revision_at_least(&ca, won.revision >> 24).await;
        shared_revision_at_least(&cb, won.revision >> 24).await;
        assert_eq!(integer(&ca, RETRIES).await, integer(&cb, RETRIES).await);
    }
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_restarted_mid_stream_resumes_its_watchers_without_loss_or_repeat() {
    let etcd = cluster().await;
    let a = daemon(store(&etcd, "a")).await;
    let b = daemon(store(&etcd, "b")).await;
    let (ca, port, dirs) = (a.client().await, b.port(), b.dirs.clone());
    let cb = b.client().await;
    let mut resuming = cb.watch_resuming(
        &[],
        false,
        Backoff::default()
            .with_min(Duration::from_millis(20))
            .with_max(Duration::from_millis(200)),
    );
    match resuming.next().await {
        Ok(Resumed::Opened { after: None }) => {}
        other => panic!("{other:?}"),
    }
    match resuming.next().await {
        Ok(Resumed::Event(WatchEvent::Resync { snapshot, .. })) => {
            assert_eq!(snapshot.revision, 0, "the state before any write");
        }
        other => panic!("a watch from nothing starts with a snapshot: {other:?}"),
    }
    let mut revisions = Vec::new();
    let mut b = Some(b);
    for i in 1..=20_i64 {
        revisions.push(ca.set(&set(RETRIES, i), None).await.unwrap().revision);
        if i == 8 {
            b.take().unwrap().stop().await;
        }
        if i == 14 {
            b = Some(
                TestDaemon::builder()
                    .dirs(dirs.clone())
                    .port(port)
                    .store(store(&etcd, "b"))
                    .start()
                    .await,
            );
        }
    }
    let mut seen = Vec::new();
    within("every change through B", Duration::from_secs(30), async {
        while seen.len() < revisions.len() {
            match resuming.next().await {
                Ok(Resumed::Event(WatchEvent::Change { change, .. })) => seen.push(change.revision),
                Ok(Resumed::Event(other)) => panic!("a resync after {seen:?}: {other:?}"),
                Ok(Resumed::Opened { .. } | Resumed::Lost { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    assert_eq!(
        seen, revisions,
        "every change once, in order, across B's restart"
    );
    b.unwrap().stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_while_a_daemons_watch_is_down_misses_nothing_and_forces_no_resync() {
    let etcd = cluster().await;
    let a = daemon(store(&etcd, "a")).await;
    // B talks to one follower only, so hanging it takes B's watch down
    // while the others keep the quorum.
    let leader = etcd.leader().await.expect("a leader");
    let follower = (leader + 1) % 3;
    let b = daemon(store_on(vec![etcd.endpoint(follower).to_owned()], "b")).await;
    let (ca, cb) = (a.client().await, b.client().await);
    let mut watch = watch_from_now(&cb).await;
    ca.set(&set(RETRIES, 1), None).await.unwrap();
    changes(&mut watch, 1).await;

    etcd.hang(follower).unwrap();
    let mut written = Vec::new();
    for i in 2..=6 {
        written.push(ca.set(&set(RETRIES, i), None).await.unwrap().revision);
    }
    // Through the other members: the hung one answers nothing.
    let others: Vec<String> = (0..3)
        .filter(|&i| i != follower)
        .map(|i| etcd.endpoint(i).to_owned())
        .collect();
    let client = cfgd_etcd::Client::new(cfgd_etcd::Config::new(others)).unwrap();
    let now = client
        .range(cfgd_etcd::Range::key("/"))
        .await
        .unwrap()
        .header
        .unwrap()
        .revision;
    client.compact(now, true).await.unwrap();
    etcd.resume(follower).unwrap();

    let seen: Vec<u64> = changes(&mut watch, written.len())
        .await
        .iter()
        .map(|c| c.revision)
        .collect();
    assert_eq!(seen, written, "ordinary changes, none missed, no resync");
    assert_eq!(integer(&cb, RETRIES).await, Some(6));

    // History and rollback need no MVCC history: B rolls back (fleet-wide)
    // to a revision etcd has compacted away.
    let target = written[0];
    let rolled = cb.rollback(target, None).await.unwrap();
    assert_eq!(rolled.revision >> 24, (written.last().unwrap() >> 24) + 1);
    shared_revision_at_least(&ca, rolled.revision >> 24).await;
    assert_eq!(integer(&ca, RETRIES).await, Some(2));
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_joins_late_takes_the_fleets_state_and_history_starts_there() {
    let etcd = cluster().await;
    let a = daemon(store(&etcd, "a")).await;
    let ca = a.client().await;
    ca.set(&set(RETRIES, 4), None).await.unwrap();
    ca.create_profile("staging", Some("default")).await.unwrap();
    let b = daemon(store(&etcd, "b")).await;
    let cb = b.client().await;
    assert_eq!(
        integer(&cb, RETRIES).await,
        Some(4),
        "served from its first request"
    );
    let names: Vec<String> = cb
        .profiles()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["default", "staging"]);
    let status = cb.status().await.unwrap();
    assert_eq!(status.revision, ca.status().await.unwrap().revision);
    assert_eq!(status.store.kind, "etcd");
    assert!(
        status.store.degraded_since_ms.is_none(),
        "{:?}",
        status.store
    );
    b.stop().await;
    a.stop().await;
}
