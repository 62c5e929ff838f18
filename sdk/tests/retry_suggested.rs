//! Server-suggested delays (a cfgd extension): a delay read from the
//! error replaces the scheduled one, without jitter, clamped to the
//! maximum setting — here with paused time, so the waits are exact.

use std::sync::Arc;
use std::time::Duration;

use cfgd_sdk::retry::{FixedDefaults, RetryDefaults, StateName, SuggestedDelay, Task, TaskRun};
use tokio::time::Instant;

/// An HTTP-like error carrying its `Retry-After` header value.
#[derive(Debug, Clone)]
struct Throttled {
    retry_after: Option<&'static str>,
}

impl std::fmt::Display for Throttled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("429 Too Many Requests")
    }
}

fn read_retry_after(e: &Throttled) -> Option<SuggestedDelay> {
    SuggestedDelay::from_retry_after(e.retry_after?, std::time::SystemTime::now())
}

/// The waits between attempts, and the run.
async fn waits(
    task: &Task<Throttled>,
    answers: &[Option<&'static str>],
) -> (Vec<Duration>, TaskRun) {
    let starts = std::sync::Mutex::new(Vec::new());
    let (run, _) = task
        .run_with_history(|| {
            let mut starts = starts.lock().unwrap();
            starts.push(Instant::now());
            let retry_after = answers[(starts.len() - 1).min(answers.len() - 1)];
            std::future::ready(Err::<(), _>(Throttled { retry_after }))
        })
        .await;
    let starts = starts.into_inner().unwrap();
    (starts.windows(2).map(|w| w[1] - w[0]).collect(), run)
}

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
async fn a_retry_after_of_2_s_is_honoured_and_one_of_10_h_clamped() {
    let task = Task::new("suggested")
        .retries(3)
        .retry_delay_seconds(5)
        .retry_jitter_factor(1)
        .suggested_delay_fn(read_retry_after);
    let (gaps, run) = waits(&task, &[Some("2"), Some("36000"), None]).await;
    // As suggested and without jitter; then 10 h, clamped to the default
    // maximum of 60 s.
    assert_eq!(gaps[..2], [Duration::from_secs(2), Duration::from_secs(60)]);
    assert_eq!(
        scheduled(&run)[..2],
        [Duration::from_secs(2), Duration::from_secs(60)]
    );
    // No suggestion: the scheduled 5 s, jittered (factor 1: within [2.07, 10]).
    let third = gaps[2].as_secs_f64();
    assert!((2.0..=10.0).contains(&third), "{third}");
}

#[tokio::test(start_paused = true)]
async fn the_maximum_is_a_setting_read_per_run() {
    let defaults: Arc<dyn RetryDefaults> = Arc::new(FixedDefaults {
        max_suggested_delay: Duration::from_secs(30),
        ..FixedDefaults::default()
    });
    let task = Task::new("suggested-max")
        .retries(1)
        .suggested_delay_fn(read_retry_after)
        .defaults(defaults);
    let (gaps, _) = waits(&task, &[Some("36000")]).await;
    assert_eq!(gaps, [Duration::from_secs(30)], "10 h, clamped to 30 s");
}
