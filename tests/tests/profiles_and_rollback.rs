//! Profile operations and rollback, through the daemon.

use cfgd_sdk::{Assign, Code, Error};
use cfgd_tests::{RETRIES, TestDaemon};

fn rejected(e: Error) -> (Code, String) {
    match e {
        Error::Rejected { code, message, .. } => (code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_switch_values_and_follow_prefect_rules() {
    let daemon = TestDaemon::builder().start().await;
    let c = daemon.client().await;
    c.set(&[(RETRIES.into(), Assign::Raw("1".into()))], None)
        .await
        .unwrap();
    c.create_profile("dev", Some("default")).await.unwrap();
    c.create_profile("empty", None).await.unwrap();
    let w = c.use_profile("empty").await.unwrap();
    assert!(w.changed);
    assert_eq!(cfgd_tests::integer(&c, RETRIES).await, Some(0));
    c.use_profile("dev").await.unwrap();
    assert_eq!(cfgd_tests::integer(&c, RETRIES).await, Some(1));
    assert_eq!(
        rejected(c.create_profile("dev", None).await.unwrap_err()),
        (Code::AlreadyExists, "Profile 'dev' already exists.".into())
    );
    assert_eq!(
        rejected(c.use_profile("nope").await.unwrap_err()),
        (Code::NotFound, "Profile 'nope' not found.".into())
    );
    assert_eq!(
        rejected(c.delete_profile("dev").await.unwrap_err()).1,
        "Profile 'dev' is the active profile. You must switch profiles before it can be deleted."
    );
    c.rename_profile("dev", "staging").await.unwrap();
    let list = c.profiles().await.unwrap();
    let names: Vec<(&str, bool)> = list.iter().map(|p| (p.name.as_str(), p.active)).collect();
    assert_eq!(
        names,
        [("default", false), ("empty", false), ("staging", true)]
    );
    c.delete_profile("empty").await.unwrap();
    assert_eq!(c.profiles().await.unwrap().len(), 2);
    let inspected = c.inspect_profile(Some("staging"), false).await.unwrap();
    assert_eq!(inspected.entries.len(), 1);
    assert_eq!(inspected.entries[0].0, RETRIES);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_the_profile_and_writes_a_new_revision() {
    let daemon = TestDaemon::builder().start().await;
    let c = daemon.client().await;
    c.set(&[(RETRIES.into(), Assign::Raw("1".into()))], None)
        .await
        .unwrap();
    c.set(&[(RETRIES.into(), Assign::Raw("2".into()))], None)
        .await
        .unwrap();
    c.set(
        &[(
            "PREFECT_FLOWS_DEFAULT_RETRIES".into(),
            Assign::Raw("3".into()),
        )],
        None,
    )
    .await
    .unwrap();
    let w = c.rollback(1, None).await.unwrap();
    assert_eq!(w.revision, 4);
    assert_eq!(cfgd_tests::integer(&c, RETRIES).await, Some(1));
    assert_eq!(
        cfgd_tests::integer(&c, "PREFECT_FLOWS_DEFAULT_RETRIES").await,
        Some(0)
    );
    let last = c.history(1, false).await.unwrap().changes.pop().unwrap();
    assert_eq!(last.origin, cfgd_sdk::client::Origin::Rollback);
    assert_eq!(last.detail, "1");
    let (code, msg) = rejected(c.rollback(99, None).await.unwrap_err());
    assert_eq!(code, Code::OutOfRange);
    assert_eq!(
        msg,
        "revision 99 does not exist yet (the current revision is 4)"
    );
    // Back to the start.
    c.rollback(0, None).await.unwrap();
    assert!(
        c.inspect_profile(None, false)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    daemon.stop().await;
}
