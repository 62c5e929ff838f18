//! The delay before each retry, observed as paused-clock gaps between
//! attempts and as `AwaitingRetry` scheduled times; and where the retry
//! parameters come from (call site over defaults, defaults read per run).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cfgd_sdk::retry::jitter::lower_clamp_multiple;
use cfgd_sdk::retry::{
    Defaults, FixedDefaults, RetryDefaults, RetryDelay, RunError, StateName, Task, TaskRun,
    exponential_backoff,
};
use cfgd_settings::Delays;
use tokio::time::Instant;

/// Runs an always-failing task; returns its run and the gaps between the
/// starts of consecutive attempts.
async fn observe(task: &Task<String>) -> (TaskRun, Vec<Duration>) {
    let starts = Mutex::new(Vec::new());
    let (run, result) = task
        .run_with_history(|| {
            starts.lock().unwrap().push(Instant::now());
            async { Err::<(), _>("boom".to_owned()) }
        })
        .await;
    assert!(matches!(result, Err(RunError::Failed(_))), "{result:?}");
    let starts = starts.into_inner().unwrap();
    let gaps = starts.windows(2).map(|w| w[1] - w[0]).collect();
    (run, gaps)
}

fn secs(xs: &[f64]) -> Vec<Duration> {
    xs.iter().map(|&s| Duration::from_secs_f64(s)).collect()
}

/// The delays recorded in `AwaitingRetry` states (scheduled − timestamp).
fn scheduled(run: &TaskRun) -> Vec<Duration> {
    run.states()
        .iter()
        .filter(|s| s.name() == StateName::AwaitingRetry)
        .map(|s| {
            s.scheduled_time()
                .unwrap()
                .duration_since(s.timestamp())
                .unwrap()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_scalar_delay_is_used_for_every_retry() {
    let task = Task::new("t").retries(3).retry_delay_seconds(5);
    let (run, gaps) = observe(&task).await;
    assert_eq!(gaps, secs(&[5.0, 5.0, 5.0]));
    assert_eq!(scheduled(&run), gaps);
    assert_eq!(run.run_count(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_short_list_repeats_its_last_delay() {
    let task = Task::new("t").retries(4).retry_delay_seconds([1, 2]);
    let (run, gaps) = observe(&task).await;
    assert_eq!(gaps, secs(&[1.0, 2.0, 2.0, 2.0]));
    assert_eq!(scheduled(&run), gaps);
}

#[tokio::test(start_paused = true)]
async fn a_long_list_is_cut_to_the_retries() {
    let task = Task::new("t")
        .retries(2)
        .retry_delay_seconds(vec![1.5, 2.5, 3.5, 4.5]);
    let (run, gaps) = observe(&task).await;
    assert_eq!(gaps, secs(&[1.5, 2.5]));
    assert_eq!(scheduled(&run), gaps);
}

#[tokio::test(start_paused = true)]
async fn a_function_gets_the_resolved_retry_count() {
    let seen = Arc::new(AtomicU32::new(0));
    let seen2 = seen.clone();
    let task = Task::new("t")
        .retries(3)
        .retry_delay_seconds(RetryDelay::from_fn(move |n| {
            seen2.store(n, Ordering::Relaxed);
            (1..=n).map(|k| f64::from(k) * 0.25).collect()
        }));
    let (_, gaps) = observe(&task).await;
    assert_eq!(gaps, secs(&[0.25, 0.5, 0.75]));
    assert_eq!(seen.load(Ordering::Relaxed), 3);
}

#[tokio::test(start_paused = true)]
async fn exponential_backoff_doubles() {
    let task = Task::new("t")
        .retries(3)
        .retry_delay_seconds(exponential_backoff(10));
    let (run, gaps) = observe(&task).await;
    assert_eq!(gaps, secs(&[10.0, 20.0, 40.0]));
    assert_eq!(scheduled(&run), gaps);
}

#[tokio::test(start_paused = true)]
async fn a_zero_or_empty_delay_retries_at_once_without_awaiting_retry() {
    for task in [
        Task::new("t").retries(2).retry_delay_seconds(0),
        Task::new("t")
            .retries(2)
            .retry_delay_seconds(Vec::<u32>::new()),
    ] {
        let (run, gaps) = observe(&task).await;
        assert_eq!(gaps, [Duration::ZERO, Duration::ZERO]);
        assert_eq!(
            run.state_names(),
            ["Pending", "Running", "Retrying", "Retrying", "Failed"]
        );
    }
    // Per retry: a zero entry in a list is immediate, the next one waits.
    let task = Task::new("t").retries(2).retry_delay_seconds([0, 3]);
    let (run, gaps) = observe(&task).await;
    assert_eq!(gaps, secs(&[0.0, 3.0]));
    assert_eq!(
        run.state_names(),
        [
            "Pending",
            "Running",
            "Retrying",
            "AwaitingRetry",
            "Retrying",
            "Failed"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn jitter_stays_within_prefects_bounds_and_is_reproducible_with_a_seed() {
    let task = || {
        Task::new("t")
            .retries(20)
            .retry_delay_seconds(10)
            .retry_jitter_factor(0.5)
            .jitter_seed(11)
    };
    let (run, first) = observe(&task()).await;
    let (_, second) = observe(&task()).await;
    assert_eq!(first, second, "the same seed gives the same delays");
    assert_eq!(scheduled(&run).len(), 20);
    let lower = 10.0 * lower_clamp_multiple(1.5);
    for d in scheduled(&run) {
        let d = d.as_secs_f64();
        assert!((lower..=15.0).contains(&d), "{d} outside [{lower}, 15]");
    }
    let distinct: std::collections::BTreeSet<_> = scheduled(&run).into_iter().collect();
    assert!(
        distinct.len() > 10,
        "jitter varies the delays: {distinct:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn jitter_is_not_applied_to_a_zero_delay() {
    let task = Task::new("t")
        .retries(2)
        .retry_delay_seconds(0)
        .retry_jitter_factor(2);
    let (run, gaps) = observe(&task).await;
    assert_eq!(gaps, [Duration::ZERO, Duration::ZERO]);
    assert!(scheduled(&run).is_empty());
}

/// A defaults source whose values a test changes between runs.
#[derive(Default)]
struct Live {
    retries: AtomicU32,
    delay: Mutex<Option<Delays>>,
    jitter: Mutex<Option<f64>>,
}

impl RetryDefaults for Live {
    fn read(&self, f: &mut dyn FnMut(&Defaults<'_>)) {
        let delay = self.delay.lock().unwrap().clone();
        let fixed = FixedDefaults {
            task_retries: self.retries.load(Ordering::Relaxed),
            task_retry_delay: delay.unwrap_or_else(|| Delays::scalar(0.0).unwrap()),
            task_retry_jitter_factor: *self.jitter.lock().unwrap(),
            ..FixedDefaults::default()
        };
        f(&fixed.view());
    }
}

fn fixed(retries: u32, delay: f64) -> Arc<dyn RetryDefaults> {
    Arc::new(FixedDefaults {
        task_retries: retries,
        task_retry_delay: Delays::scalar(delay).unwrap(),
        ..FixedDefaults::default()
    })
}

#[tokio::test(start_paused = true)]
async fn call_site_zero_wins_over_defaults() {
    let task = Task::new("t").retries(0).defaults(fixed(3, 7.0));
    let (run, gaps) = observe(&task).await;
    assert!(gaps.is_empty());
    assert_eq!(run.state_names(), ["Pending", "Running", "Failed"]);

    let task = Task::new("t")
        .retry_delay_seconds(0)
        .defaults(fixed(2, 7.0));
    let (_, gaps) = observe(&task).await;
    assert_eq!(
        gaps,
        [Duration::ZERO, Duration::ZERO],
        "retries from defaults, delay 0 from the call site"
    );
}

#[tokio::test(start_paused = true)]
async fn unset_parameters_come_from_the_defaults() {
    let task = Task::new("t").defaults(fixed(2, 7.0));
    let (run, gaps) = observe(&task).await;
    assert_eq!(gaps, secs(&[7.0, 7.0]));
    assert_eq!(run.retries(), 2);
}

#[tokio::test(start_paused = true)]
async fn defaults_are_read_at_the_start_of_each_run() {
    let live = Arc::new(Live::default());
    live.retries.store(1, Ordering::Relaxed);
    let task = Task::new("t")
        .retry_delay_seconds(exponential_backoff(1))
        .defaults(live.clone());
    let (run, first) = observe(&task).await;
    assert_eq!((run.retries(), first), (1, secs(&[1.0])));

    // Same Task, new settings: the next run sees them, and the delay
    // function is evaluated with the new retry count.
    live.retries.store(4, Ordering::Relaxed);
    let (run, second) = observe(&task).await;
    assert_eq!((run.retries(), second), (4, secs(&[1.0, 2.0, 4.0, 8.0])));

    // The delay default too, when the call site leaves it unset.
    let task = Task::new("t").defaults(live.clone());
    *live.delay.lock().unwrap() = Some(Delays::list(vec![3.0, 1.0]).unwrap());
    live.retries.store(2, Ordering::Relaxed);
    let (_, third) = observe(&task).await;
    assert_eq!(third, secs(&[3.0, 1.0]));
}

#[tokio::test(start_paused = true)]
async fn an_invalid_default_fails_the_run_without_calling_the_function() {
    let live = Arc::new(Live::default());
    live.retries.store(1, Ordering::Relaxed);
    *live.jitter.lock().unwrap() = Some(-1.0);
    let task: Task<String> = Task::new("t").defaults(live);
    let calls = AtomicU32::new(0);
    let (run, result) = task
        .run_with_history(|| {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Ok::<_, String>(()) }
        })
        .await;
    assert_eq!(
        result.unwrap_err().to_string(),
        "`retry_jitter_factor` must be >= 0."
    );
    assert_eq!(calls.load(Ordering::Relaxed), 0);
    assert_eq!(run.state_names(), ["Pending", "Failed"]);
    assert_eq!(run.run_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_delay_function_returning_too_many_delays_fails_the_run() {
    let task: Task<String> = Task::new("t")
        .retries(60)
        .retry_delay_seconds(RetryDelay::from_fn(|n| vec![1.0; n as usize]));
    let (run, result) = task.run_with_history(|| async { Ok(()) }).await;
    assert_eq!(
        result.unwrap_err().to_string(),
        "Can not configure more than 50 retry delays per task."
    );
    assert_eq!(
        run.state().message(),
        Some("Invalid retry configuration: Can not configure more than 50 retry delays per task.")
    );
}
