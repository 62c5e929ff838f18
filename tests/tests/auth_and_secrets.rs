//! With a token configured, writes without it are refused and change
//! nothing; a secret never appears in clear without authorisation.

use cfgd_sdk::client::Shown;
use cfgd_sdk::{Assign, Code, Error, WatchEvent};
use cfgd_settings::Value;
use cfgd_tests::{RETRIES, TestDaemon, next_event};

const KEY: &str = "PREFECT_API_KEY";
const SECRET: &str = "pnu_very_secret";

fn refused(e: Error) {
    match e {
        Error::Rejected { code, message, .. } => {
            assert_eq!(code, Code::Unauthenticated);
            assert!(message.contains("requires a token"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_without_the_token_are_refused_and_change_nothing() {
    let daemon = TestDaemon::builder().token("t0ken").start().await;
    let anon = daemon.anonymous_client().await;
    let before = anon.status().await.unwrap();
    refused(
        anon.set(&[(RETRIES.into(), Assign::Raw("2".into()))], None)
            .await
            .unwrap_err(),
    );
    refused(anon.unset(&[RETRIES.into()], None).await.unwrap_err());
    refused(anon.create_profile("x", None).await.unwrap_err());
    refused(anon.use_profile("default").await.unwrap_err());
    refused(anon.rollback(0, None).await.unwrap_err());
    let wrong = cfgd_sdk::Client::connect(&daemon.endpoint, Some("nope"))
        .await
        .unwrap();
    refused(
        wrong
            .set(&[(RETRIES.into(), Assign::Raw("2".into()))], None)
            .await
            .unwrap_err(),
    );
    let after = anon.status().await.unwrap();
    assert_eq!(after.revision, before.revision);
    assert_eq!(anon.profiles().await.unwrap().len(), 1);
    // Reads need no token.
    assert_eq!(
        anon.get(RETRIES, false).await.unwrap().value,
        Shown::Value(Value::Integer(0))
    );
    // With the token it works.
    let ok = daemon.client().await;
    assert_eq!(
        ok.set(&[(RETRIES.into(), Assign::Raw("2".into()))], None)
            .await
            .unwrap()
            .revision,
        1
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_masked_everywhere_unless_revealed_with_the_token() {
    let daemon = TestDaemon::builder().token("t0ken").start().await;
    let anon = daemon.anonymous_client().await;
    let authed = daemon.client().await;
    let mut watch = Box::pin(anon.watch(Some(0), None, &[], false).await.unwrap());

    let w = authed
        .set(&[(KEY.into(), Assign::Raw(SECRET.into()))], None)
        .await
        .unwrap();
    assert_eq!(
        w.applied[0].value,
        Shown::Masked,
        "the write answer masks too"
    );

    let WatchEvent::Change { change, .. } = next_event(&mut watch).await else {
        panic!()
    };
    assert_eq!(change.changes[0].new, Shown::Masked);
    assert!(!format!("{change:?}").contains(SECRET));

    let got = anon.get(KEY, false).await.unwrap();
    assert_eq!(got.value, Shown::Masked);
    let snap = anon.snapshot(&[], false).await.unwrap();
    assert!(!format!("{snap:?}").contains(SECRET));
    let history = anon.history(0, false).await.unwrap();
    assert!(!format!("{history:?}").contains(SECRET));
    let profile = anon.inspect_profile(None, false).await.unwrap();
    assert!(!format!("{profile:?}").contains(SECRET));

    // Asking to reveal without the token is refused, not silently masked.
    refused(anon.get(KEY, true).await.unwrap_err());
    refused(anon.snapshot(&[], true).await.unwrap_err());
    refused(anon.history(0, true).await.unwrap_err());
    // With it, the secret shows.
    assert_eq!(
        authed.get(KEY, true).await.unwrap().value,
        Shown::Value(Value::Secret(SECRET.into()))
    );
    daemon.stop().await;
}
