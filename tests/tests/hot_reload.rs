//! Config files edited in place, replaced by rename, broken and fixed:
//! watchers see the good changes only, status reports the bad file with its
//! line, and a bad file makes no revision.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cfgd_sdk::WatchEvent;
use cfgd_sdk::client::Origin;
use cfgd_settings::LayerKind;
use cfgd_tests::{RETRIES, TestDaemon, eventually, next_event, quiet, watch_from_now};

async fn expect_retries(
    watch: &mut (impl futures_util::Stream<Item = Result<WatchEvent, cfgd_sdk::Error>> + Unpin),
    n: i64,
) -> u64 {
    let WatchEvent::Change { change, .. } = next_event(watch).await else {
        panic!("expected a change");
    };
    assert_eq!(change.origin, Origin::File);
    assert_eq!(change.changes.len(), 1, "{change:?}");
    let c = &change.changes[0];
    assert_eq!(c.name, RETRIES);
    assert_eq!(c.new.value().unwrap().as_integer(), Some(n));
    assert_eq!(c.new_source.as_ref().unwrap().layer, LayerKind::File);
    change.revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_renames_breakage_and_repair() {
    let daemon = TestDaemon::builder()
        .config_file("app.toml", "[tasks]\ndefault_retries = 1\n")
        .start()
        .await;
    let client = daemon.client().await;
    let start = client.status().await.unwrap();
    let mut watch = watch_from_now(&client).await;

    // Edited in place.
    daemon
        .dirs
        .write_config("app.toml", "[tasks]\ndefault_retries = 2\n");
    let r1 = expect_retries(&mut watch, 2).await;
    assert_eq!(r1, start.revision + 1);

    // Replaced by rename, as editors save.
    daemon
        .dirs
        .replace_config("app.toml", "[tasks]\ndefault_retries = 3\n");
    let r2 = expect_retries(&mut watch, 3).await;
    assert_eq!(r2, r1 + 1);

    // Broken: no event, no revision, status names the file and line.
    daemon
        .dirs
        .write_config("app.toml", "[tasks]\ndefault_retries = 4\nbogus = [\n");
    let path = daemon.config_dir().join("app.toml").display().to_string();
    eventually("status reports the bad file", || {
        let c = client.clone();
        let path = path.clone();
        async move {
            let s = c.status().await.unwrap();
            s.files
                .iter()
                .any(|f| f.path == path && !f.error.is_empty())
        }
    })
    .await;
    let status = client.status().await.unwrap();
    let bad = status.files.iter().find(|f| f.path == path).unwrap();
    assert_eq!(bad.error_line, 3, "{bad:?}");
    assert_eq!(status.revision, r2, "a bad file makes no revision");
    let s = client.get(RETRIES, false).await.unwrap();
    assert_eq!(
        s.value.value().unwrap().as_integer(),
        Some(3),
        "the last good content stays"
    );
    assert!(quiet(&mut watch, Duration::from_millis(200)).await);

    // A wrong type is bad too.
    daemon
        .dirs
        .replace_config("app.toml", "[tasks]\ndefault_retries = \"lots\"\n");
    eventually("status reports the wrong type", || {
        let c = client.clone();
        let path = path.clone();
        async move {
            let s = c.status().await.unwrap();
            s.files
                .iter()
                .any(|f| f.path == path && f.error.contains("expected an integer"))
        }
    })
    .await;

    // Fixed: the change arrives, the error clears.
    daemon
        .dirs
        .write_config("app.toml", "[tasks]\ndefault_retries = 5\n");
    let r3 = expect_retries(&mut watch, 5).await;
    assert_eq!(r3, r2 + 1);
    let status = client.status().await.unwrap();
    assert!(
        status.files.iter().all(|f| f.error.is_empty()),
        "{:?}",
        status.files
    );
    daemon.stop().await;
}

/// The daemon's count of finished config-dir re-reads.
async fn reloads(daemon: &TestDaemon) -> u64 {
    let client = daemon.client().await;
    client.status().await.unwrap().reload.reloads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_changes_nothing_makes_no_revision() {
    let daemon = TestDaemon::builder()
        .config_file("app.toml", "[tasks]\ndefault_retries = 1\n")
        .start()
        .await;
    let client = daemon.client().await;
    let start = client.status().await.unwrap();
    let mut watch = watch_from_now(&client).await;
    // The reload loop's own first re-read (of what changed while it
    // started) counts too: wait for it, so that the count below can only
    // move for the edit.
    eventually("the first re-read is done", || async {
        reloads(&daemon).await >= 1
    })
    .await;
    let before = reloads(&daemon).await;
    // Same value on the same line, different text: re-read, nothing changed.
    // Replaced by rename, so that no re-read sees the file half-written.
    daemon
        .dirs
        .replace_config("app.toml", "[tasks]\ndefault_retries = 1 # unchanged\n");
    eventually("the edit is re-read", || async {
        reloads(&daemon).await > before
    })
    .await;
    // The edit's re-read is finished; the next change below is another
    // batch, so a revision made for the edit would come between.
    assert_eq!(client.status().await.unwrap().revision, start.revision);
    // A later real change is the next revision: none came in between.
    daemon
        .dirs
        .write_config("other.toml", "[flows]\ndefault_retries = 2\n");
    let WatchEvent::Change { change, .. } = next_event(&mut watch).await else {
        panic!()
    };
    assert_eq!(change.revision, start.revision + 1);
    assert_eq!(change.changes.len(), 1, "{change:?}");
    assert_eq!(change.changes[0].name, "PREFECT_FLOWS_DEFAULT_RETRIES");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_edits_faster_than_the_debounce_is_seen_before_it_ends() {
    // A debounce far above the storm's pace, so that a busy machine's
    // scheduling hiccups do not end the storm's batches for it.
    let daemon = TestDaemon::builder()
        .config_file("app.toml", "[tasks]\ndefault_retries = 0\n")
        .configure(|c| {
            c.debounce = Duration::from_millis(250);
            c.debounce_max = Duration::from_millis(500);
        })
        .start()
        .await;
    let client = daemon.client().await;
    let mut watch = watch_from_now(&client).await;
    // An edit every 5 ms for up to 10 s, until the first change is seen.
    let seen = Arc::new(AtomicBool::new(false));
    let storm = {
        let (seen, dirs) = (seen.clone(), daemon.dirs.clone());
        std::thread::spawn(move || {
            for i in 1..=2000 {
                if seen.load(Ordering::Relaxed) {
                    return true;
                }
                dirs.write_config("app.toml", &format!("[tasks]\ndefault_retries = {i}\n"));
                std::thread::sleep(Duration::from_millis(5));
            }
            false
        })
    };
    let WatchEvent::Change { change, .. } = next_event(&mut watch).await else {
        panic!("expected a change")
    };
    seen.store(true, Ordering::Relaxed);
    assert_eq!(change.changes[0].name, RETRIES);
    assert!(
        storm.join().unwrap(),
        "the change came only after the storm ended (the debounce has no maximum wait)"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_catalogue_added_at_runtime_declares_new_settings() {
    let daemon = TestDaemon::builder().start().await;
    let client = daemon.client().await;
    daemon.dirs.write_config(
        "catalog.d/myapp.toml",
        "[[settings]]\nname = \"MYAPP_TIMEOUT_SECONDS\"\npath = \"myapp.timeout_seconds\"\ntype = \"number\"\ndefault = 2.5\n",
    );
    eventually("the new setting is declared", || {
        let c = client.clone();
        async move { c.get("MYAPP_TIMEOUT_SECONDS", false).await.is_ok() }
    })
    .await;
    let s = client.get("MYAPP_TIMEOUT_SECONDS", false).await.unwrap();
    assert_eq!(s.value.value().unwrap().as_number(), Some(2.5));
    daemon.stop().await;
}
