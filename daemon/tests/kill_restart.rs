//! The real `cfgd` process: SIGTERM ends watch streams and exits 0 with no
//! secret in its log; the default relative config dir is hot-reloaded.
//! (SIGKILL under concurrent writers is `fault_injection.rs`'s crash loop.)

use std::process::Command;
use std::time::Duration;

use cfgd_proto::pb;
use cfgd_tests::proc::{self, Proc, set_request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_and_secrets_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    let mut proc = Proc::start_with(dir.path(), &proc::dirs_args(dir.path()), |cmd| {
        cmd.env("CFGD_LOG", "debug");
    });
    let mut client = proc.client().await;
    let mut watch = client
        .watch(pb::WatchRequest {
            after_revision: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    client
        .set(set_request("PREFECT_API_KEY", "pnu_hush"))
        .await
        .unwrap();
    assert!(watch.message().await.unwrap().is_some());
    // SIGTERM: the open watch stream ends and the process exits 0.
    Command::new("kill")
        .args(["-TERM", &proc.child.id().to_string()])
        .status()
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), watch.message()).await;
    // Ended by the daemon (an OK end of stream), not cut off by the process
    // going away (an error): that would hold whatever shutdown did.
    assert!(
        matches!(ended, Ok(Ok(None))),
        "the stream ends on shutdown: {ended:?}"
    );
    let status = proc.child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let log = proc.stderr();
    assert!(
        log.contains("setting changed"),
        "the change is logged: {log}"
    );
    assert!(!log.contains("pnu_hush"), "a secret reached the log: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_config_dir_is_hot_reloaded() {
    // The default invocation: `cfgd` in a checkout, config dir `config`.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    let args = ["--config-dir", "config", "--state-dir", ".cfgd"].map(Into::into);
    let proc = Proc::start_with(dir.path(), &args, |cmd| {
        cmd.current_dir(dir.path());
    });
    let mut client = proc.client().await;
    let mut watch = client
        .watch(pb::WatchRequest {
            after_revision: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    std::fs::write(
        dir.path().join("config/prefect.toml"),
        "[tasks]\ndefault_retries = 5\n",
    )
    .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the file change arrives")
        .unwrap()
        .unwrap();
    let Some(pb::watch_response::Event::Change(change)) = event.event else {
        panic!("{event:?}")
    };
    assert_eq!(change.changes[0].name, "PREFECT_TASKS_DEFAULT_RETRIES");
    proc.kill();
}
