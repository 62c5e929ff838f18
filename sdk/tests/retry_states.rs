//! The state history of one task run for each way an attempt can end, what
//! the caller gets back, and which hooks fire.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cfgd_sdk::retry::{
    CancellationToken, RunError, State, StateName, StateType, Task, TaskRun, with_cancellation,
};

#[derive(Debug, Clone, PartialEq)]
struct Boom(u32);

impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "boom {}", self.0)
    }
}

fn always_failing(calls: &AtomicU32) -> impl Fn() -> std::future::Ready<Result<(), Boom>> + '_ {
    move || std::future::ready(Err(Boom(calls.fetch_add(1, Ordering::Relaxed) + 1)))
}

#[tokio::test(start_paused = true)]
async fn always_failing_with_a_delay() {
    let calls = AtomicU32::new(0);
    let task = Task::new("t").retries(3).retry_delay_seconds(1);
    let (run, result) = task.run_with_history(always_failing(&calls)).await;
    assert_eq!(
        run.state_names(),
        [
            "Pending",
            "Running",
            "AwaitingRetry",
            "Retrying",
            "AwaitingRetry",
            "Retrying",
            "AwaitingRetry",
            "Retrying",
            "Failed"
        ]
    );
    assert_eq!(
        result,
        Err(RunError::Failed(Boom(4))),
        "the last attempt's error"
    );
    assert_eq!(run.run_count(), 4);
    assert_eq!(calls.load(Ordering::Relaxed), 4);
    assert_eq!(
        run.state().message(),
        Some("Task run encountered an exception Boom: boom 4")
    );
    let types: Vec<StateType> = run.states().iter().map(State::state_type).collect();
    assert_eq!(types[2], StateType::Scheduled);
    assert_eq!(types[3], StateType::Running);
    assert_eq!(types[8], StateType::Failed);
}

#[tokio::test(start_paused = true)]
async fn always_failing_without_a_delay() {
    let calls = AtomicU32::new(0);
    let task = Task::new("t").retries(3).retry_delay_seconds(0);
    let (run, _) = task.run_with_history(always_failing(&calls)).await;
    assert_eq!(
        run.state_names(),
        [
            "Pending", "Running", "Retrying", "Retrying", "Retrying", "Failed"
        ]
    );
    assert_eq!(run.run_count(), 4);
}

#[tokio::test(start_paused = true)]
async fn success_on_the_second_try() {
    let calls = AtomicU32::new(0);
    let task = Task::new("t").retries(3).retry_delay_seconds(0);
    let (run, result) = task
        .run_with_history(|| async {
            match calls.fetch_add(1, Ordering::Relaxed) {
                0 => Err(Boom(1)),
                _ => Ok("done"),
            }
        })
        .await;
    assert_eq!(result, Ok("done"));
    assert_eq!(
        run.state_names(),
        ["Pending", "Running", "Retrying", "Completed"]
    );
    assert_eq!(run.state().to_string(), "Completed()");
}

#[tokio::test(start_paused = true)]
async fn a_condition_returning_false_ends_the_run_failed() {
    let calls = AtomicU32::new(0);
    let asked = Arc::new(Mutex::new(Vec::new()));
    let asked2 = asked.clone();
    let task = Task::new("t")
        .retries(5)
        .retry_delay_seconds(0)
        .retry_condition_fn(
            move |task: &Task<Boom>, run: &TaskRun, state: &State<Boom>| {
                asked2.lock().unwrap().push((
                    task.name().to_owned(),
                    run.run_count(),
                    run.state().name(),
                    state.name(),
                    state.error().cloned(),
                ));
                state.error().is_some_and(|e| e.0 < 2)
            },
        );
    let (run, result) = task.run_with_history(always_failing(&calls)).await;
    assert_eq!(
        run.state_names(),
        ["Pending", "Running", "Retrying", "Failed"]
    );
    assert_eq!(result, Err(RunError::Failed(Boom(2))));
    assert_eq!(
        *asked.lock().unwrap(),
        [
            (
                "t".to_owned(),
                1,
                StateName::Running,
                StateName::Failed,
                Some(Boom(1))
            ),
            (
                "t".to_owned(),
                2,
                StateName::Retrying,
                StateName::Failed,
                Some(Boom(2))
            ),
        ],
        "the condition sees the failed attempt's run state and error"
    );
}

#[tokio::test(start_paused = true)]
async fn the_condition_is_not_consulted_once_retries_are_exhausted() {
    let asked = Arc::new(AtomicU32::new(0));
    let asked2 = asked.clone();
    let calls = AtomicU32::new(0);
    let task = Task::new("t")
        .retries(2)
        .retry_condition_fn(move |_, _, _| {
            asked2.fetch_add(1, Ordering::Relaxed);
            true
        });
    let (run, _) = task.run_with_history(always_failing(&calls)).await;
    assert_eq!(run.run_count(), 3);
    assert_eq!(asked.load(Ordering::Relaxed), 2);

    let task = Task::new("t")
        .retries(0)
        .retry_condition_fn(|_, _, _| panic!("never called"));
    let (run, _) = task.run_with_history(always_failing(&calls)).await;
    assert_eq!(run.state_names(), ["Pending", "Running", "Failed"]);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_condition_means_no_retry() {
    let calls = AtomicU32::new(0);
    let task = Task::new("t").retries(3).retry_condition_fn(
        |_: &Task<Boom>, _: &TaskRun, _: &State<Boom>| -> bool { panic!("condition bug") },
    );
    let (run, result) = task.run_with_history(always_failing(&calls)).await;
    assert_eq!(run.state_names(), ["Pending", "Running", "Failed"]);
    assert_eq!(result, Err(RunError::Failed(Boom(1))));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_is_retried_then_crashes() {
    let calls = AtomicU32::new(0);
    let task = Task::new("t").retries(2).retry_delay_seconds(1);
    let (run, result) = task
        .run_with_history(|| async {
            calls.fetch_add(1, Ordering::Relaxed);
            if calls.load(Ordering::Relaxed) > 0 {
                panic!("task bug");
            }
            Ok::<(), Boom>(())
        })
        .await;
    assert_eq!(
        run.state_names(),
        [
            "Pending",
            "Running",
            "AwaitingRetry",
            "Retrying",
            "AwaitingRetry",
            "Retrying",
            "Crashed"
        ]
    );
    assert_eq!(
        result,
        Err(RunError::Crashed {
            message: "task bug".into()
        })
    );
    assert_eq!(calls.load(Ordering::Relaxed), 3);
}

#[tokio::test(start_paused = true)]
async fn a_panic_then_success_completes() {
    let calls = AtomicU32::new(0);
    let task = Task::new("t").retries(1);
    let result = task
        .run(|| {
            // A panic while creating the future is caught too.
            assert!(
                calls.fetch_add(1, Ordering::Relaxed) > 0,
                "first call panics"
            );
            async { Ok::<_, Boom>(7) }
        })
        .await;
    assert_eq!(result, Ok(7));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_retried_then_times_out() {
    let calls = AtomicU32::new(0);
    let task = Task::new("t")
        .retries(1)
        .timeout_seconds(1.5)
        .retry_delay_seconds(2);
    let start = tokio::time::Instant::now();
    let (run, result) = task
        .run_with_history(|| async {
            calls.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<(), Boom>(())
        })
        .await;
    assert_eq!(
        run.state_names(),
        [
            "Pending",
            "Running",
            "AwaitingRetry",
            "Retrying",
            "TimedOut"
        ]
    );
    assert_eq!(run.state().state_type(), StateType::Failed);
    assert_eq!(
        run.state().to_string(),
        "TimedOut('Task run exceeded timeout of 1.5 second(s)', type=FAILED)"
    );
    assert_eq!(result, Err(RunError::TimedOut { seconds: 1.5 }));
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    // Two timed-out attempts and one delay, on the paused clock.
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_reaches_the_condition_as_timed_out() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let task = Task::new("t")
        .retries(1)
        .timeout_seconds(1)
        .retry_condition_fn(move |_: &Task<Boom>, _: &TaskRun, s: &State<Boom>| {
            seen2.lock().unwrap().push((s.name(), s.error().is_none()));
            false
        });
    let result = task
        .run(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .await;
    assert_eq!(result, Err(RunError::TimedOut { seconds: 1.0 }));
    assert_eq!(*seen.lock().unwrap(), [(StateName::TimedOut, true)]);
}

#[tokio::test(start_paused = true)]
async fn cancellation_during_an_attempt_is_never_retried() {
    let token = CancellationToken::new();
    let calls = AtomicU32::new(0);
    let task = Task::new("t")
        .retries(5)
        .retry_delay_seconds(0)
        .cancellation_token(token.clone());
    let (run, result) = task
        .run_with_history(|| async {
            calls.fetch_add(1, Ordering::Relaxed);
            token.cancel();
            tokio::time::sleep(Duration::from_secs(60)).await;
            Err::<(), _>(Boom(0))
        })
        .await;
    assert_eq!(run.state_names(), ["Pending", "Running", "Cancelled"]);
    assert_eq!(result, Err(RunError::Cancelled));
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn cancellation_while_awaiting_a_retry() {
    let token = CancellationToken::new();
    let calls = AtomicU32::new(0);
    let task = Task::new("t").retries(5).retry_delay_seconds(100);
    let canceller = {
        let token = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(50)).await;
            token.cancel();
        })
    };
    let (run, result) =
        with_cancellation(token, task.run_with_history(always_failing(&calls))).await;
    canceller.await.unwrap();
    assert_eq!(
        run.state_names(),
        ["Pending", "Running", "AwaitingRetry", "Cancelled"]
    );
    assert_eq!(result, Err(RunError::Cancelled));
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn an_already_cancelled_token_starts_no_attempt() {
    let token = CancellationToken::new();
    token.cancel();
    let calls = AtomicU32::new(0);
    let task = Task::new("t").cancellation_token(token);
    let (run, result) = task.run_with_history(always_failing(&calls)).await;
    assert_eq!(run.state_names(), ["Pending", "Cancelled"]);
    assert_eq!(result, Err(RunError::Cancelled));
    assert_eq!(calls.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn each_call_is_a_new_run() {
    let calls = AtomicU32::new(0);
    let task = Task::new("t").retries(1);
    let (a, _) = task.run_with_history(always_failing(&calls)).await;
    let (b, _) = task.run_with_history(always_failing(&calls)).await;
    assert_ne!(a.id(), b.id());
    assert_eq!((a.run_count(), b.run_count()), (2, 2));
    assert_eq!(a.task_name(), "t");
    assert!(a.name().starts_with("t-"));
    assert_eq!(a.flow_run_id(), None);
}

#[tokio::test(start_paused = true)]
async fn hooks_fire_as_in_prefect() {
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = |tag: &'static str| {
        let events = events.clone();
        move |_: &Task<Boom>, run: &TaskRun, state: &State<Boom>| {
            events.lock().unwrap().push(format!(
                "{tag}:{}:{}:{}",
                run.state().name(),
                state.name(),
                state.error().map_or(String::new(), ToString::to_string)
            ));
        }
    };
    let calls = AtomicU32::new(0);
    let task = Task::new("t")
        .retries(1)
        .retry_delay_seconds(1)
        .on_running(log("running"))
        .on_retry(log("retry"))
        .on_failure(log("failure"))
        .on_failure(|_, _, _| panic!("a hook that panics is swallowed"))
        .on_completion(log("completion"));
    let _ = task.run_with_history(always_failing(&calls)).await;
    assert_eq!(
        *events.lock().unwrap(),
        [
            "running:Running:Running:",
            "retry:AwaitingRetry:Failed:boom 1",
            "running:Retrying:Retrying:",
            "failure:Failed:Failed:boom 2",
        ]
    );
    events.lock().unwrap().clear();
    let ok = task.run(|| async { Ok(()) }).await;
    assert_eq!(ok, Ok(()));
    assert_eq!(
        *events.lock().unwrap(),
        [
            "running:Running:Running:",
            "completion:Completed:Completed:"
        ]
    );
    // A crash is not a failure: no on_failure.
    events.lock().unwrap().clear();
    let crashed: Result<(), _> = task.retries(0).run(|| async { panic!("x") }).await;
    assert!(matches!(crashed, Err(RunError::Crashed { .. })));
    assert_eq!(*events.lock().unwrap(), ["running:Running:Running:"]);
}

#[tokio::test(start_paused = true)]
async fn sync_functions_on_the_async_engine() {
    let calls = AtomicU32::new(0);
    let task = Task::new("t").retries(2).retry_delay_seconds(3);
    let start = tokio::time::Instant::now();
    let (run, result) = task
        .run_sync_with_history(|| match calls.fetch_add(1, Ordering::Relaxed) {
            0 | 1 => Err(Boom(1)),
            _ => Ok(5),
        })
        .await;
    assert_eq!(result, Ok(5));
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
    assert_eq!(start.elapsed(), Duration::from_secs(6));
}

#[test]
fn blocking_runs_need_no_runtime() {
    let calls = AtomicU32::new(0);
    let task = Task::new("t").retries(3).retry_delay_seconds(0);
    let (run, result) =
        task.run_blocking_with_history(|| match calls.fetch_add(1, Ordering::Relaxed) {
            0 => Err(Boom(1)),
            1 => panic!("sync panic"),
            _ => Ok("ok"),
        });
    assert_eq!(result, Ok("ok"));
    assert_eq!(
        run.state_names(),
        ["Pending", "Running", "Retrying", "Retrying", "Completed"]
    );
}

#[test]
fn a_late_sync_attempt_counts_as_timed_out() {
    let task = Task::new("t").retries(1).timeout_seconds(0.001);
    let (run, result) = task.run_blocking_with_history(|| {
        // Sleeping never returns early, so this attempt is always late.
        std::thread::sleep(Duration::from_millis(20));
        Ok::<_, Boom>(())
    });
    assert_eq!(result, Err(RunError::TimedOut { seconds: 0.001 }));
    assert_eq!(
        run.state_names(),
        ["Pending", "Running", "Retrying", "TimedOut"]
    );
}

#[test]
fn a_blocking_run_is_cancelled_during_its_delay() {
    let token = CancellationToken::new();
    let task = Task::new("t")
        .retries(1)
        .retry_delay_seconds(3600)
        .cancellation_token(token.clone());
    let (run, result) = task.run_blocking_with_history(|| {
        token.cancel();
        Err::<(), _>(Boom(1))
    });
    // Cancelled after a failed attempt: not retried, no hour-long sleep.
    assert_eq!(result, Err(RunError::Cancelled));
    assert_eq!(run.state_names(), ["Pending", "Running", "Cancelled"]);

    let token = CancellationToken::new();
    let canceller = {
        let token = token.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            token.cancel();
        })
    };
    let task = task.cancellation_token(token);
    let (run, result) = task.run_blocking_with_history(|| Err::<(), _>(Boom(1)));
    canceller.join().unwrap();
    assert_eq!(result, Err(RunError::Cancelled));
    assert_eq!(
        run.state_names(),
        ["Pending", "Running", "AwaitingRetry", "Cancelled"]
    );
}

#[tokio::test(start_paused = true)]
async fn runs_can_be_spawned_and_tasks_shared() {
    fn shareable<T: Send + Sync + Clone + 'static>(_: &T) {}
    let task = Task::new("t")
        .retries(1)
        .retry_delay_seconds(1)
        .on_retry(|_, _, _| {})
        .retry_condition_fn(|_, _, state: &State<Boom>| state.error().is_some());
    shareable(&task);
    let spawned = tokio::spawn({
        let task = task.clone();
        async move { task.run(|| async { Err::<(), _>(Boom(1)) }).await }
    });
    assert_eq!(spawned.await.unwrap(), Err(RunError::Failed(Boom(1))));
    let flow = cfgd_sdk::retry::Flow::new("f").retries(1);
    shareable(&flow);
    let spawned = tokio::spawn(async move {
        flow.run(|| {
            let task = task.clone();
            async move { task.run(|| async { Ok::<_, Boom>(2) }).await }
        })
        .await
    });
    assert_eq!(spawned.await.unwrap(), Ok(2));
}
