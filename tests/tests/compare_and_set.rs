//! Compare-and-set with a stale revision is refused and changes nothing;
//! a batch with one bad assignment changes nothing at all.

use cfgd_sdk::{Assign, Code, Error};
use cfgd_tests::{RETRIES, TestDaemon};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_expected_revision_is_refused() {
    let daemon = TestDaemon::builder().start().await;
    let client = daemon.client().await;
    let first = client
        .set(&[(RETRIES.into(), Assign::Raw("1".into()))], Some(0))
        .await
        .unwrap();
    assert_eq!(first.revision, 1);
    let err = client
        .set(&[(RETRIES.into(), Assign::Raw("9".into()))], Some(0))
        .await
        .unwrap_err();
    let Error::Rejected { code, message, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(code, Code::Conflict);
    assert_eq!(
        message,
        "revision mismatch: expected revision 0, but the current revision is 1; nothing was changed"
    );
    let s = client.get(RETRIES, false).await.unwrap();
    assert_eq!(s.value.value().unwrap().as_integer(), Some(1));
    assert_eq!(client.status().await.unwrap().revision, 1);
    let ok = client
        .set(&[(RETRIES.into(), Assign::Raw("9".into()))], Some(1))
        .await
        .unwrap();
    assert_eq!(ok.revision, 2);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_a_bad_value_changes_nothing_and_names_every_problem() {
    let daemon = TestDaemon::builder().start().await;
    let client = daemon.client().await;
    let err = client
        .set(
            &[
                (RETRIES.into(), Assign::Raw("2".into())),
                (
                    "PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS".into(),
                    Assign::Raw("[1, -5]".into()),
                ),
                (
                    "PREFECT_FLOW_DEFAULT_RETRYS".into(),
                    Assign::Raw("1".into()),
                ),
            ],
            None,
        )
        .await
        .unwrap_err();
    let Error::Rejected { code, message, .. } = err else {
        panic!()
    };
    assert_eq!(code, Code::InvalidArgument);
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(
        lines,
        [
            "Invalid value for PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS from profile 'default': every delay must be >= 0, got -5",
            "Unknown setting name 'PREFECT_FLOW_DEFAULT_RETRYS'. Did you mean 'PREFECT_FLOW_DEFAULT_RETRIES'?",
        ]
    );
    assert_eq!(client.status().await.unwrap().revision, 0);
    assert!(
        client
            .inspect_profile(None, false)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_enforced_with_clear_errors() {
    let daemon = TestDaemon::builder().start().await;
    let client = daemon.client().await;
    let long = "X".repeat(300);
    let err = client
        .set(&[(long, Assign::Raw("1".into()))], None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "a setting name is 300 bytes long; the limit is 256 bytes"
    );
    let big = "1,".repeat(40_000);
    let err = client
        .set(
            &[(
                "PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS".into(),
                Assign::Raw(big),
            )],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("the limit is 65536 bytes"),
        "{err}"
    );
    let err = client.set(&[], None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the batch is empty: give at least one setting"
    );
    daemon.stop().await;
}
