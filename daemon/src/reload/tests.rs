use std::sync::Mutex;

use cfgd_settings::{Layer, Value};
use tokio::sync::mpsc;

use super::*;

/// A writer that refuses the first `failures` reloads as a full disk would,
/// then takes them, and reports each one it takes.
struct Flaky {
    failures: Mutex<u32>,
    taken: mpsc::UnboundedSender<Arc<ConfigDir>>,
}

impl Apply for Flaky {
    async fn apply(&self, dir: Arc<ConfigDir>, _detail: String) -> Result<(), OpError> {
        {
            let mut left = self.failures.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Err(OpError::Store {
                    kind: crate::error::StoreFailure::NoSpace,
                    message: "No space left on device (os error 28)".into(),
                });
            }
        }
        let _ = self.taken.send(dir);
        Ok(())
    }
}

/// The writer after shutdown.
struct Gone;

impl Apply for Gone {
    async fn apply(&self, _dir: Arc<ConfigDir>, _detail: String) -> Result<(), OpError> {
        Err(OpError::ShuttingDown)
    }
}

fn retries(cd: &ConfigDir) -> Option<i64> {
    let defaults = Layer::defaults(cd.catalog());
    let mut layers = cfgd_settings::Layers::new().with(&defaults);
    layers.extend(cd.layers());
    cfgd_settings::resolve(cd.catalog(), &layers)
        .get("PREFECT_TASKS_DEFAULT_RETRIES")
        .and_then(|r| r.value.as_ref().and_then(Value::as_integer))
}

/// Replaces `a.toml` by rename (a new inode: a re-read finds it without a
/// watcher's word).
fn replace(dir: &Path, retries: i64) {
    let tmp = dir.join(".a.toml.tmp");
    std::fs::write(&tmp, format!("[tasks]\ndefault_retries = {retries}\n")).unwrap();
    std::fs::rename(&tmp, dir.join("a.toml")).unwrap();
}

const OPTIONS: dirwatch::Options = dirwatch::Options {
    debounce: Duration::from_millis(20),
    max_wait: Duration::from_millis(100),
    recursive: true,
};

/// A running loop on a dir whose `a.toml` said `before` when it was loaded
/// and says `after` by the time the loop starts, with a writer that fails
/// `failures` times first.
struct Running {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    task: JoinHandle<()>,
    status: watch::Receiver<ReloadStatus>,
    taken: mpsc::UnboundedReceiver<Arc<ConfigDir>>,
    stop: CancellationToken,
}

fn start(before: i64, after: i64, failures: u32) -> Running {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    replace(&dir, before);
    let state = ConfigDir::load(&dir);
    replace(&dir, after);
    let (tx, taken) = mpsc::unbounded_channel();
    let sink = Flaky {
        failures: Mutex::new(failures),
        taken: tx,
    };
    let stop = CancellationToken::new();
    let (task, status) = spawn(dir.clone(), OPTIONS, state, sink, stop.clone());
    Running {
        _tmp: tmp,
        dir,
        task,
        status,
        taken,
        stop,
    }
}

#[tokio::test(start_paused = true)]
async fn a_reload_that_cannot_be_made_durable_is_retried_until_it_is() {
    let Running {
        dir,
        task,
        mut status,
        taken: mut rx,
        stop,
        _tmp,
    } = start(1, 2, 3);

    let failing = status
        .wait_for(|s| s.failing.is_some())
        .await
        .unwrap()
        .failing
        .clone()
        .unwrap();
    assert_eq!(
        failing.error,
        "the change could not be made durable, so it was not made: No space left on device (os error 28)"
    );
    assert_eq!(failing.attempts, 1);
    assert!(failing.next_attempt_ms > failing.since_ms);
    let third = status
        .wait_for(|s| s.failing.as_ref().is_some_and(|f| f.attempts == 3))
        .await
        .unwrap()
        .failing
        .clone()
        .unwrap();
    assert_eq!(
        third.since_ms, failing.since_ms,
        "one failure, still going on"
    );

    // The fourth attempt is taken, with no further change on disk.
    let applied = rx.recv().await.unwrap();
    assert_eq!(retries(&applied), Some(2));
    status.wait_for(|s| s.failing.is_none()).await.unwrap();
    assert!(rx.try_recv().is_err(), "applied once");

    // And the loop is still alive: the next change goes through too.
    replace(&dir, 3);
    let applied = rx.recv().await.unwrap();
    assert_eq!(retries(&applied), Some(3));
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_re_read_that_changes_nothing_is_not_handed_over() {
    let Running {
        task,
        mut status,
        taken: mut rx,
        stop,
        _tmp,
        dir: _,
    } = start(1, 1, 0);
    status.wait_for(|s| s.reloads >= 1).await.unwrap();
    assert!(
        rx.try_recv().is_err(),
        "same content: nothing for the writer"
    );
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_loop_ends_when_the_writer_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    replace(&dir, 1);
    let state = ConfigDir::load(&dir);
    replace(&dir, 2);
    let (task, _status) = spawn(dir, OPTIONS, state, Gone, CancellationToken::new());
    task.await.unwrap();
}
