//! The SDK's live settings: reads never wait on the daemon, a daemon that
//! is down at start or restarted under a running service is followed, and
//! no change is missed.

use cfgd_sdk::live::Connection;
use cfgd_sdk::{Assign, Options, Settings};
use cfgd_settings::LayerKind;
use cfgd_tests::{RETRIES, TestDaemon, free_port};

fn options(port: u16) -> Options {
    let mut o = Options::isolated(&format!("http://127.0.0.1:{port}"));
    o.backoff_min = std::time::Duration::from_millis(10);
    o.backoff_max = std::time::Duration::from_millis(100);
    o
}

async fn wait_for_retries(settings: &Settings, n: i64) {
    cfgd_tests::eventually(&format!("retries = {n}"), || async {
        settings.get_i64(RETRIES) == Some(n)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_down_at_start_gives_local_values_then_live_ones() {
    let port = free_port();
    let settings = Settings::connect(options(port));
    // Nothing listens: the read answers at once, from the defaults.
    assert_eq!(settings.get_i64(RETRIES), Some(0));
    assert_eq!(
        settings.get(RETRIES).unwrap().source.layer,
        LayerKind::Defaults
    );
    assert_eq!(settings.connection(), Connection::Disconnected);

    let daemon = TestDaemon::builder().port(port).start().await;
    daemon
        .client()
        .await
        .set(&[(RETRIES.into(), Assign::Raw("2".into()))], None)
        .await
        .unwrap();
    settings.connected().await;
    wait_for_retries(&settings, 2).await;
    assert_eq!(
        settings.get(RETRIES).unwrap().source.layer,
        LayerKind::Profile
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_is_followed_and_nothing_is_missed() {
    let daemon = TestDaemon::builder().start().await;
    let port = daemon.port();
    let settings = Settings::connect(options(port));
    settings.connected().await;
    let client = daemon.client().await;
    client
        .set(&[(RETRIES.into(), Assign::Raw("1".into()))], None)
        .await
        .unwrap();
    wait_for_retries(&settings, 1).await;
    let revision_before = settings.view().revision().unwrap();

    // Down: reads go on (and do not block), with the last values.
    let dirs = daemon.stop().await;
    cfgd_tests::eventually("the SDK notices", || async {
        settings.connection() == Connection::Disconnected
    })
    .await;
    assert_eq!(settings.get_i64(RETRIES), Some(1));
    // A change made while it is down (a config file)...
    dirs.write_config("ops.toml", "[flows]\ndefault_retries = 6\n");

    // ...and back on the same port.
    let daemon = TestDaemon::builder().dirs(dirs).port(port).start().await;
    cfgd_tests::eventually("the change made while down arrives", || async {
        settings.get_i64("PREFECT_FLOWS_DEFAULT_RETRIES") == Some(6)
    })
    .await;
    assert!(settings.view().revision().unwrap() > revision_before);
    let client = daemon.client().await;
    client
        .set(&[(RETRIES.into(), Assign::Raw("3".into()))], None)
        .await
        .unwrap();
    wait_for_retries(&settings, 3).await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_wakes_on_the_watched_key() {
    let daemon = TestDaemon::builder().start().await;
    let settings = Settings::connect(options(daemon.port()));
    settings.connected().await;
    // Poll once so the waiter has subscribed before anything changes.
    let mut waiter = Box::pin(async {
        settings.changed_key(RETRIES).await;
        settings.get_i64(RETRIES)
    });
    assert!(futures_util::FutureExt::now_or_never(&mut waiter).is_none());
    let client = daemon.client().await;
    client
        .set(
            &[(
                "PREFECT_FLOWS_DEFAULT_RETRIES".into(),
                Assign::Raw("1".into()),
            )],
            None,
        )
        .await
        .unwrap();
    client
        .set(&[(RETRIES.into(), Assign::Raw("5".into()))], None)
        .await
        .unwrap();
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
        .await
        .expect("woken");
    assert_eq!(seen, Some(5));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_env_sits_above_the_daemon() {
    let daemon = TestDaemon::builder().start().await;
    let mut o = options(daemon.port());
    o.use_process_env = true;
    o.env = vec![("PREFECT_TASK_DEFAULT_RETRIES".into(), "7".into())];
    let settings = Settings::connect(o);
    settings.connected().await;
    daemon
        .client()
        .await
        .set(&[(RETRIES.into(), Assign::Raw("2".into()))], None)
        .await
        .unwrap();
    cfgd_tests::eventually("the daemon's change arrived", || async {
        settings.view().revision() == Some(1)
    })
    .await;
    let r = settings.get(RETRIES).unwrap();
    assert_eq!(r.value.unwrap().as_integer(), Some(7));
    assert_eq!(r.source.layer, LayerKind::ProcessEnv);
    daemon.stop().await;
}
