//! A watcher that disconnects and resumes gets exactly what it missed; one
//! resuming from before the retained history gets a resync first; the
//! SDK's resuming watch does all this by itself across a daemon restart.

use cfgd_sdk::client::ResyncReason;
use cfgd_sdk::{Assign, Client, WatchEvent};
use cfgd_tests::{RETRIES, TestDaemon, next_event};

async fn set_n(client: &Client, from: u64, n: u64) {
    for i in from..from + n {
        client
            .set(&[(RETRIES.into(), Assign::Raw(i.to_string()))], None)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_replays_exactly_the_missed_changes_in_order() {
    let daemon = TestDaemon::builder().start().await;
    let client = daemon.client().await;
    set_n(&client, 1, 3).await;
    let (revision, epoch) = {
        let mut watch = Box::pin(client.watch(None, None, &[], false).await.unwrap());
        let WatchEvent::Resync {
            snapshot, epoch, ..
        } = next_event(&mut watch).await
        else {
            panic!("snapshot first");
        };
        (snapshot.revision, epoch)
        // The watch is dropped here: the client disconnects.
    };
    assert_eq!(revision, 3);
    set_n(&client, 100, 50).await;

    let mut watch = Box::pin(
        client
            .watch(Some(revision), Some(epoch), &[], false)
            .await
            .unwrap(),
    );
    for k in 0..50u64 {
        let WatchEvent::Change { change, .. } = next_event(&mut watch).await else {
            panic!("a replayed change, not a resync");
        };
        assert_eq!(change.revision, revision + 1 + k);
        let new = change.changes[0].new.value().unwrap().as_integer().unwrap();
        assert_eq!(new, 100 + k as i64);
    }
    // Then live, with nothing repeated.
    set_n(&client, 1000, 1).await;
    let WatchEvent::Change { change, .. } = next_event(&mut watch).await else {
        panic!("live change");
    };
    assert_eq!(change.revision, revision + 51);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_a_compacted_revision_starts_with_a_resync() {
    let daemon = TestDaemon::builder().history_limit(5).start().await;
    let client = daemon.client().await;
    set_n(&client, 1, 30).await;
    // Compaction runs when the writer is idle; wait until it has.
    cfgd_tests::eventually("history compacted", || {
        let c = client.clone();
        async move { c.status().await.unwrap().oldest_revision > 2 }
    })
    .await;
    let status = client.status().await.unwrap();
    let mut watch = Box::pin(
        client
            .watch(Some(1), Some(status.epoch), &[], false)
            .await
            .unwrap(),
    );
    let WatchEvent::Resync {
        reason, snapshot, ..
    } = next_event(&mut watch).await
    else {
        panic!("a resync first");
    };
    assert_eq!(reason, ResyncReason::Compacted);
    assert_eq!(snapshot.revision, 30);
    let retries = snapshot
        .settings
        .iter()
        .find(|s| s.name == RETRIES)
        .unwrap();
    assert_eq!(retries.value.value().unwrap().as_integer(), Some(30));
    set_n(&client, 31, 1).await;
    assert_eq!(next_event(&mut watch).await.revision(), 31);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_epoch_or_future_revision_gets_a_resync() {
    let daemon = TestDaemon::builder().start().await;
    let client = daemon.client().await;
    set_n(&client, 1, 2).await;
    let status = client.status().await.unwrap();
    let mut watch = Box::pin(
        client
            .watch(Some(1), Some(status.epoch ^ 1), &[], false)
            .await
            .unwrap(),
    );
    let WatchEvent::Resync { reason, .. } = next_event(&mut watch).await else {
        panic!()
    };
    assert_eq!(reason, ResyncReason::Epoch);
    let mut watch = Box::pin(
        client
            .watch(Some(99), Some(status.epoch), &[], false)
            .await
            .unwrap(),
    );
    let WatchEvent::Resync { reason, .. } = next_event(&mut watch).await else {
        panic!()
    };
    assert_eq!(reason, ResyncReason::Future);
    daemon.stop().await;
}

/// The SDK's resuming watch across a daemon restart: it says the stream
/// was lost and reopened, resumes after the last revision it delivered,
/// and delivers every revision once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resuming_watch_follows_a_restart_and_delivers_each_revision_once() {
    use cfgd_sdk::client::{Backoff, Position, Resumed, Resuming};
    use std::time::Duration;

    async fn step(watch: &mut Resuming) -> Resumed {
        tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("the watch says something within 10 s")
            .expect("nothing is refused")
    }
    async fn event(watch: &mut Resuming) -> WatchEvent {
        match step(watch).await {
            Resumed::Event(e) => e,
            other => panic!("an event, not {other:?}"),
        }
    }

    let daemon = TestDaemon::builder().start().await;
    let port = daemon.port();
    let client = Client::connect_lazy(&daemon.endpoint, &Default::default()).unwrap();
    let backoff = Backoff::default()
        .with_min(Duration::from_millis(10))
        .with_max(Duration::from_millis(100))
        .with_seed(1);
    let mut watch = client.watch_resuming(&[], false, backoff);
    assert!(matches!(
        step(&mut watch).await,
        Resumed::Opened { after: None }
    ));
    let WatchEvent::Resync { reason, epoch, .. } = event(&mut watch).await else {
        panic!("a snapshot first");
    };
    assert_eq!(reason, ResyncReason::Initial);
    set_n(&daemon.client().await, 1, 2).await;
    assert_eq!(event(&mut watch).await.revision(), 1);
    assert_eq!(event(&mut watch).await.revision(), 2);

    let dirs = daemon.stop().await;
    let Resumed::Lost { retry_in, .. } = step(&mut watch).await else {
        panic!("the stream is lost when the daemon stops");
    };
    assert!(retry_in >= Duration::from_millis(10), "{retry_in:?}");
    // Changed while down: the restarted daemon records it at start-up.
    dirs.write_config("ops.toml", "[flows]\ndefault_retries = 6\n");
    let daemon = TestDaemon::builder().dirs(dirs).port(port).start().await;
    let after = loop {
        match step(&mut watch).await {
            Resumed::Opened { after } => break after,
            Resumed::Lost { .. } => continue, // attempts before it was back
            Resumed::Event(e) => panic!("no event before the stream reopens: {e:?}"),
        }
    };
    assert_eq!(after, Some(Position { revision: 2, epoch }));
    let replayed = event(&mut watch).await;
    assert_eq!(replayed.revision(), 3, "{replayed:?}");
    set_n(&daemon.client().await, 10, 1).await;
    assert_eq!(event(&mut watch).await.revision(), 4);
    daemon.stop().await;
}
