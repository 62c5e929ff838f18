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

#[tokio::test]
async fn a_watch_held_across_the_kill_of_its_member_delivers_every_event_once() {
    let mut cluster = Cluster::start().await.unwrap();
    let victim = a_follower(&cluster).await;
    let watcher = client_starting_at(&cluster, victim);
    let writer = client_without(&cluster, victim);
    let start = writer
        .put("/w/start", "")
        .await
        .unwrap()
        .header
        .unwrap()
        .revision;
    let mut watch = watcher.watch_prefix("/w/", start + 1);
    assert_eq!(watch.endpoint(), cluster.endpoint(victim));

    let (half_tx, half_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel();
    let writes = tokio::spawn(write(writer, half_tx, go_rx));
    within("half of the puts", LIMIT, half_rx).await.unwrap();
    // Kill while the second half streams in.
    let _ = go_tx.send(());
    cluster.kill(victim).unwrap();

    let acked = writes.await.unwrap();
    let seen = collect(&mut watch, PUTS, LIMIT).await;
    assert_eq!(seen, acked, "every acknowledged put once, in order");
    assert!(watch.moves() >= 1);
    assert_ne!(watch.endpoint(), cluster.endpoint(victim));
}

#[tokio::test]
async fn a_watch_on_a_hung_member_moves_on_with_nothing_lost() {
    let cluster = Cluster::start().await.unwrap();
    let victim = a_follower(&cluster).await;
    let watcher = client_starting_at(&cluster, victim);
    let writer = client_without(&cluster, victim);
    let start = writer
        .put("/w/start", "")
        .await
        .unwrap()
        .header
        .unwrap()
        .revision;
    let mut watch = watcher.watch_prefix("/w/", start + 1);

    let (half_tx, half_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel();
    let writes = tokio::spawn(write(writer, half_tx, go_rx));
    within("half of the puts", LIMIT, half_rx).await.unwrap();
    // The member stops answering but keeps its connections: only the
    // watch's own progress check can notice.
    cluster.hang(victim).unwrap();
    let _ = go_tx.send(());

    let acked = writes.await.unwrap();
    let seen = collect(&mut watch, PUTS, LIMIT).await;
    assert_eq!(seen, acked, "every acknowledged put once, in order");
    assert!(watch.moves() >= 1);
    assert_ne!(watch.endpoint(), cluster.endpoint(victim));
    cluster.resume(victim).unwrap();
}

#[tokio::test]
async fn a_watch_from_a_compacted_revision_reports_the_compact_revision() {
    let cluster = Cluster::start_with(cfgd_etcd::testing::Options {
        members: 1,
        tls: None,
    })
    .await
    .unwrap();
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
