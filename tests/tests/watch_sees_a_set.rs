//! A `Set` reaches a watcher as exactly one event with the right revision,
//! old and new value and source.

use cfgd_sdk::client::{Origin, ResyncReason, Shown};
use cfgd_sdk::{Assign, WatchEvent};
use cfgd_settings::{LayerKind, Value};
use cfgd_tests::{RETRIES, TestDaemon, next_event, nothing_before_a_marker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_is_one_event_with_revision_old_new_and_source() {
    let daemon = TestDaemon::builder().start().await;
    let client = daemon.client().await;
    let mut watch = Box::pin(client.watch(None, None, &[], false).await.unwrap());
    let WatchEvent::Resync {
        reason,
        snapshot,
        epoch,
    } = next_event(&mut watch).await
    else {
        panic!("a watch without a revision starts with a snapshot");
    };
    assert_eq!(reason, ResyncReason::Initial);
    assert_eq!(snapshot.revision, 0);

    let written = client
        .set(
            &[(
                "PREFECT_TASK_DEFAULT_RETRIES".into(),
                Assign::Raw("3".into()),
            )],
            None,
        )
        .await
        .unwrap();
    assert_eq!(written.revision, 1);
    assert!(written.changed);
    assert_eq!(written.applied[0].name, RETRIES);
    assert_eq!(
        written.applied[0].given_name,
        "PREFECT_TASK_DEFAULT_RETRIES"
    );

    let WatchEvent::Change { change, epoch: e } = next_event(&mut watch).await else {
        panic!("expected a change");
    };
    assert_eq!(e, epoch);
    assert_eq!(change.revision, 1);
    assert_eq!(change.origin, Origin::Set);
    assert_eq!(change.changes.len(), 1);
    let c = &change.changes[0];
    assert_eq!(c.name, RETRIES);
    assert_eq!(c.old, Shown::Value(Value::Integer(0)));
    assert_eq!(c.old_source.as_ref().unwrap().layer, LayerKind::Defaults);
    assert_eq!(c.new, Shown::Value(Value::Integer(3)));
    let source = c.new_source.as_ref().unwrap();
    assert_eq!(source.layer, LayerKind::Profile);
    assert_eq!(source.detail.as_deref(), Some("default"));
    // Exactly one: the same value again is no change and no event.
    let again = client
        .set(&[(RETRIES.into(), Assign::Raw("3".into()))], None)
        .await
        .unwrap();
    assert_eq!(again.revision, 1);
    assert!(!again.changed);
    assert!(
        nothing_before_a_marker(&client, &mut watch).await,
        "the same value again made an event"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_watch_sees_only_its_names() {
    let daemon = TestDaemon::builder().start().await;
    let client = daemon.client().await;
    let names = vec!["PREFECT_FLOW_DEFAULT_RETRIES".to_owned()];
    let mut watch = Box::pin(client.watch(Some(0), None, &names, false).await.unwrap());
    client
        .set(&[(RETRIES.into(), Assign::Raw("1".into()))], None)
        .await
        .unwrap();
    client
        .set(
            &[(
                "PREFECT_FLOWS_DEFAULT_RETRIES".into(),
                Assign::Raw("2".into()),
            )],
            None,
        )
        .await
        .unwrap();
    let WatchEvent::Change { change, .. } = next_event(&mut watch).await else {
        panic!("expected a change");
    };
    assert_eq!(change.revision, 2);
    assert_eq!(change.changes.len(), 1);
    assert_eq!(change.changes[0].name, "PREFECT_FLOWS_DEFAULT_RETRIES");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sets_each_get_their_own_revision() {
    let daemon = TestDaemon::builder().start().await;
    let client = daemon.client().await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            c.set(&[(RETRIES.into(), Assign::Raw((i + 1).to_string()))], None)
                .await
                .unwrap()
                .revision
        }));
    }
    let mut revisions = Vec::new();
    for t in tasks {
        revisions.push(t.await.unwrap());
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=32).collect::<Vec<u64>>());
    let history = client.history(100, false).await.unwrap();
    assert_eq!(history.changes.len(), 32);
    daemon.stop().await;
}
