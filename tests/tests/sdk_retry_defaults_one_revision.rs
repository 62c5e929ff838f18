//! A run's retry defaults come from one view of the settings, at one
//! revision, and the run records it: a batched `cfg set` of retries and
//! delays, made while a task runs over and over, never gives a run the
//! retries of one revision and the delay of another, and each run's
//! recorded revision is the write whose values it used.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cfgd_sdk::live::Origin;
use cfgd_sdk::retry::Task;
use cfgd_sdk::{Assign, Options, Settings};
use cfgd_tests::{RETRIES, TestDaemon};

const DELAY: &str = "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS";
/// Batched writes: each sets retries and the delay to the same number.
const WRITES: u32 = 60;
/// Bounds of the reading loop, whatever happens.
const MAX_RUNS: u64 = 20_000_000;
const MAX_TIME: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_set_never_gives_a_run_two_revisions() {
    let daemon = TestDaemon::builder().start().await;
    let settings = Settings::connect(Options::isolated(&daemon.endpoint));
    settings.connected().await;
    let Origin::Daemon {
        revision: first, ..
    } = settings.view().origin()
    else {
        panic!("connected, yet the view is local")
    };

    // A task with no parameters of its own, run as fast as it goes on its
    // own thread: every run reads its defaults from the live settings.
    let task: Task<&str> = Task::new("torn").defaults(Arc::new(settings.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut seen = HashSet::new();
            let mut runs = 0u64;
            while !stop.load(Ordering::Relaxed) && runs < MAX_RUNS && started.elapsed() < MAX_TIME {
                let (run, _) = task.run_blocking_with_history(|| Ok::<_, &str>(()));
                let delay = run.retry_delays().for_retry(1);
                seen.insert((run.settings_revision(), run.retries(), delay.to_bits()));
                runs += 1;
            }
            (seen, runs)
        })
    };

    let client = daemon.client().await;
    let mut written = HashMap::from([(first, 0u32)]);
    for k in 1..=WRITES {
        let batch = [
            (RETRIES.to_owned(), Assign::Raw(k.to_string())),
            (DELAY.to_owned(), Assign::Raw(k.to_string())),
        ];
        let result = client.set(&batch, None).await.expect("the batched set");
        written.insert(result.revision, k);
    }
    let last = *written.keys().max().unwrap();
    cfgd_tests::view_until(
        &settings,
        "the SDK sees the last write",
        |view| matches!(view.origin(), Origin::Daemon { revision, .. } if revision == last),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let (seen, runs) = reader.join().expect("the reading thread");

    let mut revisions = HashSet::new();
    for &(revision, retries, delay) in &seen {
        let delay = f64::from_bits(delay);
        let revision = revision.expect("every run after connecting has a daemon revision");
        let k = written
            .get(&revision)
            .unwrap_or_else(|| panic!("run at revision {revision}, which no write made"));
        assert_eq!(
            (retries, delay),
            (*k, f64::from(*k)),
            "a run at revision {revision} must have that revision's retries and delay"
        );
        revisions.insert(revision);
    }
    // The loop really ran across the writes.
    assert!(runs > u64::from(WRITES), "{runs} runs");
    assert!(
        revisions.len() > 2,
        "runs saw {} revisions of {}",
        revisions.len(),
        written.len()
    );
    daemon.stop().await;
}
