//! The resuming watch: through the kill or the hang of its member every
//! event arrives once, in order; a compacted start revision is reported.

use std::time::Duration;

use cfgd_etcd::WatchEvent;
use cfgd_etcd::testing::Cluster;
use tokio::sync::oneshot;

use crate::{a_follower, client_starting_at, client_without, collect, within};

const PUTS: usize = 200;
const LIMIT: Duration = Duration::from_secs(60);

/// Puts `PUTS` keys under `/w/` through `writer`, telling `half` once half
/// of them are acknowledged; returns each put's revision.
async fn write(
    writer: cfgd_etcd::Client,
    half: oneshot::Sender<()>,
    wait: oneshot::Receiver<()>,
) -> Vec<(String, i64)> {
    let mut acked = Vec::with_capacity(PUTS);
    let mut half = Some(half);
    let mut wait = Some(wait);
    for i in 0..PUTS {
        if i == PUTS / 2 {
            let _ = half.take().unwrap().send(());
            let _ = wait.take().unwrap().await;
        }
        let key = format!("/w/{i:04}");
        let r = writer
            .put(key.clone(), "v")
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
        acked.push((key, r.header.unwrap().revision));
    }
    acked
}

/// What happens to the watch's member halfway through the puts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// SIGKILL: its connections close.
    Kill,
    /// SIGSTOP: it keeps its connections but answers nothing, so only the
    /// watch's own progress check can notice.
    Hang,
}

/// Watches `/w/` on a follower while another client puts `PUTS` keys
/// through the other members, does `fault` to the follower halfway, and
/// checks that every acknowledged put arrives once, in order, on another
/// member.
async fn watch_through(fault: Fault) {
    let mut cluster = Cluster::start().await.unwrap();
    let victim = a_follower(&cluster).await;
    let watcher = client_starting_at(&cluster, victim);
    let writer = client_without(&cluster, victim);
    let start = writer.put("/w/start", "").await.unwrap();
    let mut watch = watcher.watch_prefix("/w/", start.header.unwrap().revision + 1);
    assert_eq!(watch.endpoint(), cluster.endpoint(victim));

    let (half_tx, half_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel();
    let writes = tokio::spawn(write(writer, half_tx, go_rx));
    within("half of the puts", LIMIT, half_rx).await.unwrap();
    match fault {
        // Killed while the second half streams in.
        Fault::Kill => {
            let _ = go_tx.send(());
            cluster.kill(victim).unwrap();
        }
        Fault::Hang => {
            cluster.hang(victim).unwrap();
            let _ = go_tx.send(());
        }
    }

    let acked = writes.await.unwrap();
    let seen = collect(&mut watch, PUTS, LIMIT).await;
    assert_eq!(seen, acked, "every acknowledged put once, in order");
    assert!(watch.moves() >= 1);
    assert_ne!(watch.endpoint(), cluster.endpoint(victim));
    if fault == Fault::Hang {
        cluster.resume(victim).unwrap();
    }
}

#[tokio::test]
async fn a_watch_held_across_the_kill_of_its_member_delivers_every_event_once() {
    watch_through(Fault::Kill).await;
}

#[tokio::test]
async fn a_watch_on_a_hung_member_moves_on_with_nothing_lost() {
    watch_through(Fault::Hang).await;
}

#[tokio::test]
async fn a_watch_from_a_compacted_revision_reports_the_compact_revision() {
    let cluster = Cluster::start_one().await.unwrap();
    let client = cluster.client().unwrap();
    let mut revisions = Vec::new();
    for i in 0..5 {
        revisions.push(
            client
                .put("/c/k", format!("{i}"))
                .await
                .unwrap()
                .header
                .unwrap()
                .revision,
        );
    }
    cluster.compact(revisions[3]).await.unwrap();

    let mut old = client.watch_prefix("/c/", revisions[1]);
    let first = within("the compaction report", LIMIT, old.next()).await;
    assert_eq!(
        first.unwrap().unwrap(),
        WatchEvent::Compacted {
            requested: revisions[1],
            compact_revision: revisions[3]
        }
    );
    assert!(
        within("the end of the watch", LIMIT, old.next())
            .await
            .is_none(),
        "the watch ended"
    );

    // From the compact revision on, history is there.
    let mut kept = client.watch_prefix("/c/", revisions[3]);
    let seen = collect(&mut kept, 2, LIMIT).await;
    let expected: Vec<_> = revisions[3..]
        .iter()
        .map(|&r| ("/c/k".to_owned(), r))
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_quiet_watch_on_a_healthy_member_stays_where_it_is() {
    let cluster = Cluster::start().await.unwrap();
    // Silence is noticed after 200 ms; each time, the progress request is
    // answered and the watch stays.
    let config = cluster
        .config()
        .watch_progress(Duration::from_millis(200), Duration::from_secs(1));
    let client = cfgd_etcd::Client::new(config).unwrap();
    let mut watch = client.watch_prefix("/quiet/", 0);
    within("the watch", LIMIT, watch.created()).await;
    // Real time must pass for silence to be noticed: ten intervals.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        watch.moves(),
        0,
        "a healthy member that answers progress requests is kept"
    );

    let put = client.put("/quiet/k", "v").await.unwrap();
    let seen = collect(&mut watch, 1, LIMIT).await;
    assert_eq!(
        seen,
        [("/quiet/k".to_owned(), put.header.unwrap().revision)]
    );
}
