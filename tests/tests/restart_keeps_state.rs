//! Values, the active profile, the revision and the epoch survive a restart;
//! the next revision is higher.

use cfgd_sdk::Assign;
use cfgd_settings::LayerKind;
use cfgd_tests::{RETRIES, TestDaemon};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart() {
    let daemon = TestDaemon::builder().start().await;
    let client = daemon.client().await;
    client.create_profile("prod", None).await.unwrap();
    client.use_profile("prod").await.unwrap();
    client
        .set(&[(RETRIES.into(), Assign::Raw("4".into()))], None)
        .await
        .unwrap();
    let before = client.status().await.unwrap();
    let dirs = daemon.stop().await;

    let daemon = TestDaemon::builder().dirs(dirs).start().await;
    let client = daemon.client().await;
    let after = client.status().await.unwrap();
    assert_eq!(after.revision, before.revision);
    assert_eq!(after.epoch, before.epoch);
    assert_eq!(after.active_profile, "prod");
    let s = client.get(RETRIES, false).await.unwrap();
    assert_eq!(s.value.value().unwrap().as_integer(), Some(4));
    assert_eq!(s.source.layer, LayerKind::Profile);
    assert_eq!(s.source.detail.as_deref(), Some("prod"));
    let next = client
        .set(&[(RETRIES.into(), Assign::Raw("5".into()))], None)
        .await
        .unwrap();
    assert_eq!(next.revision, before.revision + 1);
    let history = client.history(0, false).await.unwrap();
    assert_eq!(
        history
            .changes
            .iter()
            .map(|c| c.revision)
            .collect::<Vec<_>>(),
        (1..=next.revision).collect::<Vec<_>>()
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_down_is_recorded_at_start() {
    let daemon = TestDaemon::builder().start().await;
    let client = daemon.client().await;
    client
        .set(&[(RETRIES.into(), Assign::Raw("1".into()))], None)
        .await
        .unwrap();
    let dirs = daemon.stop().await;
    dirs.write_config("10-ops.toml", "[flows]\ndefault_retries = 7\n");

    let daemon = TestDaemon::builder().dirs(dirs).start().await;
    let client = daemon.client().await;
    let history = client.history(0, false).await.unwrap();
    let last = history.changes.last().unwrap();
    assert_eq!(last.revision, 2);
    assert_eq!(last.origin, cfgd_sdk::client::Origin::Startup);
    assert_eq!(last.changes.len(), 1);
    assert_eq!(last.changes[0].name, "PREFECT_FLOWS_DEFAULT_RETRIES");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_state_dir_is_refused() {
    let daemon = TestDaemon::builder().start().await;
    let mut config = cfgd::Config::new(Vec::new());
    config.config_dir = daemon.dirs.config();
    config.state_dir = daemon.dirs.state();
    let listener = cfgd::Listener::bind(&"127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let err = cfgd::serve(config, listener, std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "state dir {} is in use by another cfgd (each daemon needs its own --state-dir)",
            daemon.dirs.state().display()
        )
    );
    daemon.stop().await;
}
