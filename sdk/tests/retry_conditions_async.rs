//! An async `retry_condition_fn`: awaited before each retry, on the async
//! engine and in a blocking run; cancellation while it runs cancels the
//! run; a panic in it means no retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cfgd_sdk::retry::{CancellationToken, RunError, State, Task, TaskRun};

#[derive(Debug, Clone, PartialEq)]
struct Status(u16);

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.0)
    }
}

/// Retries a 503, after asking (slowly) whether the service is worth it.
fn retry_503(
    _: &Task<Status>,
    _: &TaskRun,
    state: &State<Status>,
) -> impl Future<Output = bool> + Send + use<> {
    let status = state.error().map(|s| s.0);
    async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        status == Some(503)
    }
}

#[tokio::test(start_paused = true)]
async fn an_async_condition_is_awaited_before_each_retry() {
    let calls = AtomicU32::new(0);
    let task = Task::new("async-cond")
        .retries(5)
        .retry_condition_fn_async(retry_503);
    let start = tokio::time::Instant::now();
    let (run, result) = task
        .run_with_history(|| async {
            match calls.fetch_add(1, Ordering::Relaxed) {
                0 | 1 => Err::<(), _>(Status(503)),
                _ => Err(Status(404)),
            }
        })
        .await;
    assert_eq!(result, Err(RunError::Failed(Status(404))));
    assert_eq!(
        run.state_names(),
        ["Pending", "Running", "Retrying", "Retrying", "Failed"]
    );
    assert_eq!(start.elapsed(), Duration::from_secs(3), "asked three times");
}

#[test]
fn a_blocking_run_polls_it_on_its_own_thread() {
    let asked = Arc::new(AtomicU32::new(0));
    let seen = asked.clone();
    let task = Task::new("async-cond-blocking")
        .retries(3)
        .retry_condition_fn_async(move |_, run: &TaskRun, _: &State<&str>| {
            let retry = run.run_count() < 2;
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::Relaxed);
                retry
            }
        });
    let (run, _) = task.run_blocking_with_history(|| Err::<(), _>("x"));
    assert_eq!(run.run_count(), 2);
    assert_eq!(asked.load(Ordering::Relaxed), 2);
}

#[tokio::test(start_paused = true)]
async fn cancellation_while_it_runs_cancels_the_run() {
    let token = CancellationToken::new();
    let cancel = token.clone();
    let task = Task::new("async-cond-cancel")
        .retries(3)
        .cancellation_token(token)
        .retry_condition_fn_async(|_, _, _: &State<&str>| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            true
        });
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        cancel.cancel();
    });
    let (run, result) = task.run_with_history(|| async { Err::<(), _>("x") }).await;
    assert_eq!(result, Err(RunError::Cancelled));
    assert_eq!(run.state_names(), ["Pending", "Running", "Cancelled"]);
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_it_means_no_retry() {
    let task = Task::new("async-cond-panic")
        .retries(3)
        .retry_condition_fn_async(|_, _, _: &State<&str>| async { panic!("condition bug") });
    let (run, result) = task.run_with_history(|| async { Err::<(), _>("x") }).await;
    assert_eq!(result, Err(RunError::Failed("x")));
    assert_eq!(run.state_names(), ["Pending", "Running", "Failed"]);
}
