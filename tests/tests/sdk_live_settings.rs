//! The SDK's live settings: reads never wait on the daemon, a daemon that
//! is down at start or restarted under a running service is followed, no
//! change is missed (not even between two waits), a key survives a
//! catalogue change, and the process env is layered like any other layer.
//!
//! Each test awaits the view it expects through `Settings::subscribe`,
//! bounded by 10 s, instead of polling.

use std::sync::Arc;
use std::time::Duration;

use cfgd_sdk::client::Backoff;
use cfgd_sdk::live::{Connection, LiveView};
use cfgd_sdk::{Assign, LayerKind, Options, Settings, Value};
use cfgd_tests::{RETRIES, TestDaemon, free_port};
use futures_util::FutureExt;

fn options(port: u16) -> Options {
    let mut o = Options::isolated(&format!("http://127.0.0.1:{port}"));
    o.backoff = Backoff::default()
        .with_min(Duration::from_millis(10))
        .with_max(Duration::from_millis(100))
        .with_seed(7);
    o
}

/// Waits (10 s at most) for a view that satisfies `check`.
async fn view_where(
    settings: &Settings,
    what: &str,
    check: impl FnMut(&Arc<LiveView>) -> bool,
) -> Arc<LiveView> {
    let mut rx = settings.subscribe();
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(check))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for: {what}"))
        .expect("the settings are alive")
        .clone()
}

async fn retries_become(settings: &Settings, n: i64) {
    view_where(settings, &format!("retries = {n}"), |v| {
        v.get(RETRIES).and_then(|c| c.value.as_ref()) == Some(&Value::Integer(n))
    })
    .await;
}

async fn set(daemon: &TestDaemon, name: &str, value: &str) {
    daemon
        .client()
        .await
        .set(&[(name.into(), Assign::Raw(value.into()))], None)
        .await
        .unwrap();
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
    set(&daemon, RETRIES, "2").await;
    settings.connected().await;
    retries_become(&settings, 2).await;
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
    set(&daemon, RETRIES, "1").await;
    retries_become(&settings, 1).await;
    let revision_before = settings.view().revision().unwrap();

    // Down: reads go on (and do not block), with the last values.
    let dirs = daemon.stop().await;
    let mut connection = settings.subscribe_connection();
    tokio::time::timeout(
        Duration::from_secs(10),
        connection.wait_for(|c| *c == Connection::Disconnected),
    )
    .await
    .expect("the SDK notices within 10 s")
    .unwrap();
    assert_eq!(settings.get_i64(RETRIES), Some(1));
    // A change made while it is down (a config file)...
    dirs.write_config("ops.toml", "[flows]\ndefault_retries = 6\n");

    // ...and back on the same port.
    let daemon = TestDaemon::builder().dirs(dirs).port(port).start().await;
    let view = view_where(&settings, "the change made while down", |v| {
        v.get("PREFECT_FLOWS_DEFAULT_RETRIES")
            .and_then(|c| c.value.as_ref())
            == Some(&Value::Integer(6))
    })
    .await;
    assert!(view.revision().unwrap() > revision_before);
    set(&daemon, RETRIES, "3").await;
    retries_become(&settings, 3).await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_wakes_on_the_watched_key() {
    let daemon = TestDaemon::builder().start().await;
    let settings = Settings::connect(options(daemon.port()));
    settings.connected().await;
    let waiter = settings.clone();
    let waiter = tokio::spawn(async move {
        waiter.changed_key(RETRIES).await;
        waiter.get_i64(RETRIES)
    });
    set(&daemon, "PREFECT_FLOWS_DEFAULT_RETRIES", "1").await;
    set(&daemon, RETRIES, "5").await;
    let seen = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("woken within 10 s")
        .unwrap();
    assert_eq!(seen, Some(5));
    daemon.stop().await;
}

/// The wake-up that `changed()` used to lose: a change that lands while
/// the caller is busy between two waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_between_two_changed_calls_is_seen() {
    let daemon = TestDaemon::builder().start().await;
    let settings = Settings::connect(options(daemon.port()));
    settings.connected().await;
    set(&daemon, RETRIES, "1").await;
    let first = tokio::time::timeout(Duration::from_secs(10), settings.changed())
        .await
        .expect("the first change within 10 s");
    assert!(first.revision().is_some());
    // Wait (not through `changed`) until the view has both changes, so the
    // second one has certainly landed before the next call.
    set(&daemon, RETRIES, "2").await;
    retries_become(&settings, 2).await;
    let second = settings
        .changed()
        .now_or_never()
        .expect("the change made since the last call is reported at once");
    assert_eq!(second.get(RETRIES).unwrap().value, Some(Value::Integer(2)));
    // Reported once: the next call waits for a newer view.
    assert!(settings.changed().now_or_never().is_none());
    // The same holds per key.
    set(&daemon, RETRIES, "3").await;
    retries_become(&settings, 3).await;
    assert!(settings.changed_key(RETRIES).now_or_never().is_some());
    assert!(settings.changed_key(RETRIES).now_or_never().is_none());
    daemon.stop().await;
}

const B_FIRST: &str = "[[settings]]\nname = \"MYAPP_B\"\ntype = \"integer\"\ndefault = 2\n";
const A_SECOND: &str = "[[settings]]\nname = \"MYAPP_A\"\ntype = \"integer\"\ndefault = 1\n";

/// `catalog.d/a.toml` added under a running service sorts before `b.toml`,
/// so every index from `b.toml` moves: a key must follow its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_made_before_a_catalogue_change_reads_the_same_setting_after_it() {
    let daemon = TestDaemon::builder()
        .config_file("catalog.d/b.toml", B_FIRST)
        .start()
        .await;
    let settings = Settings::connect(options(daemon.port()));
    let before = view_where(&settings, "the daemon's catalogue", |v| {
        v.get("MYAPP_B").is_some()
    })
    .await;
    let key = settings.key("MYAPP_B").expect("declared");
    let read = |s: &Settings| s.read_key(&key, |c| c.and_then(|c| c.value.clone()));
    assert_eq!(read(&settings), Some(Value::Integer(2)));

    daemon.dirs.write_config("catalog.d/a.toml", A_SECOND);
    let after = view_where(&settings, "the grown catalogue", |v| {
        v.get("MYAPP_A").is_some()
    })
    .await;
    assert_ne!(after.catalog_generation(), before.catalog_generation());
    assert_eq!(
        after.catalog().index_of("MYAPP_A"),
        before.catalog().index_of("MYAPP_B"),
        "the new setting took the key's old index"
    );
    assert_eq!(read(&settings), Some(Value::Integer(2)), "still MYAPP_B");
    // A key made now reads the same.
    let fresh = settings.key("MYAPP_B").unwrap();
    assert_eq!(fresh, key);
    assert_eq!(
        settings.read_key(&fresh, |c| c.and_then(|c| c.value.clone())),
        Some(Value::Integer(2))
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_env_sits_above_the_daemon_and_says_what_it_shadows() {
    let daemon = TestDaemon::builder().start().await;
    let mut o = options(daemon.port());
    o.use_process_env = true;
    o.env = vec![
        // An alias and the canonical name: the canonical one wins, as in
        // every other layer, whatever the order.
        (RETRIES.into(), "7".into()),
        ("PREFECT_TASK_DEFAULT_RETRIES".into(), "8".into()),
        // A bad value is skipped, not fatal.
        ("PREFECT_FLOWS_DEFAULT_RETRIES".into(), "many".into()),
    ];
    let settings = Settings::connect(o);
    settings.connected().await;
    set(&daemon, RETRIES, "2").await;
    set(&daemon, "PREFECT_FLOWS_DEFAULT_RETRIES", "4").await;
    let view = view_where(&settings, "the daemon's changes", |v| {
        v.revision() == Some(2)
    })
    .await;
    let r = view.get(RETRIES).unwrap();
    assert_eq!(r.value, Some(Value::Integer(7)));
    assert_eq!(r.source.layer, LayerKind::ProcessEnv);
    assert_eq!(r.source.detail.as_deref(), Some(RETRIES));
    // It shadows the daemon's value, with the daemon's source.
    assert_eq!(r.shadowed.len(), 1, "{:?}", r.shadowed);
    assert_eq!(r.shadowed[0].value, Value::Integer(2));
    assert_eq!(r.shadowed[0].source.to_string(), "profile 'default'");
    let f = view.get("PREFECT_FLOWS_DEFAULT_RETRIES").unwrap();
    assert_eq!(f.value, Some(Value::Integer(4)));
    assert_eq!(f.source.layer, LayerKind::Profile);
    assert!(f.shadowed.is_empty());
    daemon.stop().await;
}
