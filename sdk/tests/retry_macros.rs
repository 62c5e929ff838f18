//! `#[task(...)]` and `#[flow(...)]`: the generated functions keep their
//! signatures, return `Result<T, RunError<E>>`, retry as configured, and
//! have a `_with_history` companion returning the run.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cfgd_sdk::retry::{
    CancellationToken, RunError, State, StateName, Task, TaskRun, exponential_backoff, flow, task,
    with_cancellation,
};
use tokio::time::Instant;

static FLAKY_CALLS: AtomicU32 = AtomicU32::new(0);

/// Fails twice, then returns the length of `url`.
#[task(retries = 2, retry_delay_seconds = 5)]
async fn flaky(url: &str) -> Result<usize, String> {
    if FLAKY_CALLS.fetch_add(1, Ordering::Relaxed) < 2 {
        return Err(format!("{url} unreachable"));
    }
    Ok(url.len())
}

#[tokio::test(start_paused = true)]
async fn an_async_task_retries_with_its_delay() {
    let start = Instant::now();
    let (run, result) = flaky_with_history("http://x").await;
    assert_eq!(result, Ok(8));
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!(run.task_name(), "flaky");
    assert_eq!(
        run.state_names(),
        [
            "Pending",
            "Running",
            "AwaitingRetry",
            "Retrying",
            "AwaitingRetry",
            "Retrying",
            "Completed"
        ]
    );
    // The plain function: one more call succeeds at once.
    assert_eq!(flaky("abc").await, Ok(3));
}

static LIST_STARTS: Mutex<Vec<Instant>> = Mutex::new(Vec::new());

#[task(retries = 4, retry_delay_seconds = [1, 10, 100], name = "listed")]
async fn listed() -> Result<(), std::io::Error> {
    LIST_STARTS.lock().unwrap().push(Instant::now());
    Err(std::io::Error::other("nope"))
}

#[tokio::test(start_paused = true)]
async fn a_list_of_delays_and_a_name() {
    let (run, result) = listed_with_history().await;
    assert_eq!(run.task_name(), "listed");
    assert_eq!(result.unwrap_err().to_string(), "nope");
    let starts = LIST_STARTS.lock().unwrap().clone();
    let gaps: Vec<u64> = starts.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert_eq!(gaps, [1, 10, 100, 100]);
}

#[task(retries = 3, retry_delay_seconds = exponential_backoff(10), retry_jitter_factor = 0.5, jitter_seed = 1)]
async fn backoff(calls: &AtomicU32) -> Result<(), String> {
    calls.fetch_add(1, Ordering::Relaxed);
    Err("down".into())
}

#[tokio::test(start_paused = true)]
async fn exponential_backoff_with_jitter() {
    let calls = AtomicU32::new(0);
    let (run, _) = backoff_with_history(&calls).await;
    assert_eq!(calls.load(Ordering::Relaxed), 4);
    let delays: Vec<f64> = run
        .states()
        .iter()
        .filter(|s| s.name() == StateName::AwaitingRetry)
        .map(|s| {
            s.scheduled_time()
                .unwrap()
                .duration_since(s.timestamp())
                .unwrap()
                .as_secs_f64()
        })
        .collect();
    assert_eq!(delays.len(), 3);
    for (d, base) in delays.iter().zip([10.0, 20.0, 40.0]) {
        let lower = base * cfgd_sdk::retry::jitter::lower_clamp_multiple(1.5);
        assert!((lower..=base * 1.5).contains(d), "{d} for {base}");
    }
}

fn only_transient(_: &Task<String>, _: &TaskRun, state: &State<String>) -> bool {
    state.error().is_some_and(|e| e.starts_with("transient"))
}

#[task(retries = 5, retry_condition_fn = only_transient)]
async fn conditional(calls: &AtomicU32) -> Result<(), String> {
    match calls.fetch_add(1, Ordering::Relaxed) {
        0 => Err("transient glitch".into()),
        _ => Err("fatal".into()),
    }
}

#[tokio::test(start_paused = true)]
async fn a_condition_path() {
    let calls = AtomicU32::new(0);
    let (run, result) = conditional_with_history(&calls).await;
    assert_eq!(result, Err(RunError::Failed("fatal".into())));
    assert_eq!(
        run.state_names(),
        ["Pending", "Running", "Retrying", "Failed"]
    );
}

#[task(retries = 1, timeout_seconds = 1.5)]
async fn slow() -> Result<(), String> {
    tokio::time::sleep(Duration::from_secs(10)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_timeout() {
    let (run, result) = slow_with_history().await;
    assert_eq!(result, Err(RunError::TimedOut { seconds: 1.5 }));
    assert_eq!(
        run.state_names(),
        ["Pending", "Running", "Retrying", "TimedOut"]
    );
}

#[task(retries = 1)]
fn sync_parse(text: String, mut tries: Vec<u8>) -> Result<u32, std::num::ParseIntError> {
    // Each attempt gets its own clone of every parameter.
    tries.push(1);
    assert_eq!(tries.len(), 1);
    text.trim().parse()
}

#[test]
fn a_sync_task_stays_blocking_and_clones_its_parameters() {
    assert_eq!(sync_parse(" 42 ".into(), Vec::new()), Ok(42));
    let (run, result) = sync_parse_with_history("x".into(), Vec::new());
    assert!(matches!(result, Err(RunError::Failed(_))));
    assert_eq!(
        run.state_names(),
        ["Pending", "Running", "Retrying", "Failed"]
    );
}

type AppResult<T> = Result<T, String>;

#[task(retries = 0)]
async fn aliased((a, b): (u32, u32)) -> AppResult<u32> {
    Ok(a + b)
}

#[tokio::test]
async fn aliases_of_result_and_patterns() {
    assert_eq!(aliased((2, 3)).await, Ok(5));
}

#[derive(Debug)]
struct Client {
    calls: AtomicU32,
}

impl Client {
    #[task(retries = 2)]
    async fn get(&self, path: &str) -> Result<String, String> {
        if self.calls.fetch_add(1, Ordering::Relaxed) == 0 {
            return Err("first".into());
        }
        Ok(format!("GET {path}"))
    }

    #[task]
    fn generic<T: std::str::FromStr>(&self, text: &str) -> Result<T, String> {
        text.parse().map_err(|_| format!("bad {text}"))
    }
}

#[tokio::test]
async fn methods_and_generics() {
    let client = Client {
        calls: AtomicU32::new(0),
    };
    assert_eq!(client.get("/x").await, Ok("GET /x".into()));
    assert_eq!(client.generic::<u8>("7"), Ok(7));
    assert_eq!(
        client.generic::<u8>("x"),
        Err(RunError::Failed("bad x".into()))
    );
}

#[task]
async fn needs_question_mark(text: &str) -> Result<i64, std::num::ParseIntError> {
    let n: i64 = text.parse()?;
    Ok(n * 2)
}

#[tokio::test]
async fn question_mark_in_the_body() {
    assert_eq!(needs_question_mark("21").await, Ok(42));
    assert!(needs_question_mark("x").await.is_err());
}

static EVENTS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

fn on_run(_: &Task<String>, _: &TaskRun, _: &State<String>) {
    EVENTS.lock().unwrap().push("running");
}
fn on_fail(_: &Task<String>, _: &TaskRun, _: &State<String>) {
    EVENTS.lock().unwrap().push("failure");
}

#[task(retries = 1, on_running = on_run, on_failure = [on_fail, on_fail])]
async fn hooked() -> Result<(), String> {
    Err("x".into())
}

#[tokio::test]
async fn hooks() {
    let _ = hooked().await;
    assert_eq!(
        *EVENTS.lock().unwrap(),
        ["running", "running", "failure", "failure"]
    );
}

static STEP_CALLS: AtomicU32 = AtomicU32::new(0);

#[task(retries = 2)]
async fn step() -> Result<(), String> {
    STEP_CALLS.fetch_add(1, Ordering::Relaxed);
    Err("step failed".into())
}

#[flow(retries = 1, retry_delay_seconds = 2)]
async fn pipeline() -> Result<(), RunError<String>> {
    step().await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_flow_reruns_its_tasks_with_fresh_budgets() {
    let start = Instant::now();
    let (run, result) = pipeline_with_history().await;
    assert_eq!(STEP_CALLS.load(Ordering::Relaxed), 6);
    assert_eq!(
        result,
        Err(RunError::Failed(RunError::Failed("step failed".into())))
    );
    assert_eq!(run.flow_name(), "pipeline");
    assert_eq!(
        run.state_names(),
        ["Pending", "Running", "AwaitingRetry", "Running", "Failed"]
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[flow(name = "sync-flow", retries = 2)]
fn sync_flow(calls: &AtomicU32) -> Result<u32, String> {
    match calls.fetch_add(1, Ordering::Relaxed) {
        0 => Err("once".into()),
        n => Ok(n),
    }
}

#[test]
fn a_blocking_flow() {
    let calls = AtomicU32::new(0);
    let (run, result) = sync_flow_with_history(&calls);
    assert_eq!(result, Ok(1));
    assert_eq!(run.flow_name(), "sync-flow");
}

#[task(retries = 3, retry_delay_seconds = 60)]
async fn cancellable(token: &CancellationToken) -> Result<(), String> {
    token.cancel();
    Err("x".into())
}

#[tokio::test(start_paused = true)]
async fn generated_tasks_obey_an_ambient_token() {
    let token = CancellationToken::new();
    let (run, result) = with_cancellation(token.clone(), cancellable_with_history(&token)).await;
    assert_eq!(result, Err(RunError::Cancelled));
    assert_eq!(run.state_names(), ["Pending", "Running", "Cancelled"]);
}

#[test]
#[should_panic(
    expected = "invalid `retry_jitter_factor` in #[task]: `retry_jitter_factor` must be >= 0."
)]
fn a_non_literal_invalid_value_panics_with_prefects_message() {
    const NEGATIVE: f64 = -1.0;
    #[task(retry_jitter_factor = NEGATIVE)]
    fn bad() -> Result<(), String> {
        Ok(())
    }
    let _ = bad();
}

static SEEDED_CALLS: AtomicU32 = AtomicU32::new(0);

#[task(
    retries = 1,
    retry_delay_seconds = 10,
    retry_jitter_factor = 1,
    jitter_seed = 5
)]
async fn seeded() -> Result<(), String> {
    match SEEDED_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2 {
        0 => Err("first attempt".into()),
        _ => Ok(()),
    }
}

/// The task is built once: its seeded jitter stream goes on across calls
/// instead of restarting (which drew the same delay every call).
#[tokio::test(start_paused = true)]
async fn a_seeded_task_draws_new_delays_on_each_call() {
    let mut delays = Vec::new();
    for _ in 0..3 {
        let (run, result) = seeded_with_history().await;
        assert_eq!(result, Ok(()));
        let s = &run.states()[2];
        assert_eq!(s.name(), StateName::AwaitingRetry);
        delays.push(
            s.scheduled_time()
                .unwrap()
                .duration_since(s.timestamp())
                .unwrap(),
        );
    }
    assert!(
        delays[0] != delays[1] && delays[1] != delays[2],
        "{delays:?}"
    );
}

/// A user's own function named `exponential_backoff` is the one used.
mod own_backoff {
    use cfgd_sdk::retry::{StateName, task};

    fn exponential_backoff(_factor: u32) -> [u32; 1] {
        [7]
    }

    #[task(retries = 1, retry_delay_seconds = exponential_backoff(10))]
    async fn uses_mine() -> Result<(), String> {
        Err("x".into())
    }

    #[tokio::test(start_paused = true)]
    async fn names_resolve_as_written() {
        let (run, _) = uses_mine_with_history().await;
        let s = &run.states()[2];
        assert_eq!(s.name(), StateName::AwaitingRetry);
        let waited = s
            .scheduled_time()
            .unwrap()
            .duration_since(s.timestamp())
            .unwrap();
        assert_eq!(
            waited,
            std::time::Duration::from_secs(7),
            "not the SDK's 10 s"
        );
    }
}

#[task(retries = 2)]
async fn returns_a_failed_state() -> Result<(), cfgd_sdk::retry::Fail<String>> {
    Err(cfgd_sdk::retry::Fail::message("returned failed state"))
}

#[tokio::test(start_paused = true)]
async fn a_task_may_return_a_failed_state() {
    let (run, result) = returns_a_failed_state_with_history().await;
    assert_eq!(run.run_count(), 3);
    assert!(
        matches!(result, Err(RunError::State(ref s)) if s.message() == Some("returned failed state"))
    );
}

#[flow(retries = 1, timeout = std::time::Duration::from_secs(1), on_failure = flow_failed)]
async fn timed_flow() -> Result<(), String> {
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    Ok(())
}

static FLOW_FAILURES: AtomicU32 = AtomicU32::new(0);

fn flow_failed(_: &cfgd_sdk::retry::Flow, _: &cfgd_sdk::retry::FlowRun, _: &State) {
    FLOW_FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

#[tokio::test(start_paused = true)]
async fn a_flow_macro_takes_a_duration_timeout_and_hooks() {
    let (run, result) = timed_flow_with_history().await;
    assert_eq!(result, Err(RunError::TimedOut { seconds: 1.0 }));
    assert_eq!(run.run_count(), 2);
    assert_eq!(FLOW_FAILURES.load(std::sync::atomic::Ordering::Relaxed), 1);
}
