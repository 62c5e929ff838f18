//! Flow retries: the whole function re-runs, each task call inside is a new
//! task run with a fresh retry budget, and cancellation reaches the tasks.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cfgd_sdk::retry::{
    CancellationToken, FixedDefaults, Flow, RunError, Task, TaskRun, with_cancellation,
};
use cfgd_settings::Delays;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn tasks_get_a_fresh_budget_in_every_flow_attempt() {
    let executions = AtomicU32::new(0);
    let task_runs = Mutex::new(Vec::<TaskRun>::new());
    let task = Task::new("step").retries(2);
    let flow = Flow::new("pipeline").retries(1);
    let (flow_run, result) = flow
        .run_with_history(|| async {
            let (run, result) = task
                .run_with_history(|| async {
                    executions.fetch_add(1, Ordering::Relaxed);
                    Err::<(), _>("always")
                })
                .await;
            task_runs.lock().unwrap().push(run);
            result
        })
        .await;
    // Prefect's TestFlowRetries: task retries=2, flow retries=1 → 6.
    assert_eq!(executions.load(Ordering::Relaxed), 6);
    assert_eq!(result, Err(RunError::Failed(RunError::Failed("always"))));
    assert_eq!(
        flow_run.state_names(),
        ["Pending", "Running", "AwaitingRetry", "Running", "Failed"]
    );
    assert_eq!(flow_run.run_count(), 2);
    let task_runs = task_runs.into_inner().unwrap();
    assert_eq!(task_runs.len(), 2);
    assert_ne!(task_runs[0].id(), task_runs[1].id());
    for run in &task_runs {
        assert_eq!(run.run_count(), 3);
        assert_eq!(run.flow_run_id(), Some(flow_run.id()));
    }
}

#[tokio::test(start_paused = true)]
async fn a_flow_succeeding_on_retry_reruns_everything() {
    let attempts = AtomicU32::new(0);
    let flow = Flow::new("f").retries(3).retry_delay_seconds(4);
    let start = Instant::now();
    let (run, result) = flow
        .run_with_history(|| async {
            match attempts.fetch_add(1, Ordering::Relaxed) {
                0 | 1 => Err("not yet"),
                n => Ok(n),
            }
        })
        .await;
    assert_eq!(result, Ok(2));
    assert_eq!(
        run.state_names(),
        [
            "Pending",
            "Running",
            "AwaitingRetry",
            "Running",
            "AwaitingRetry",
            "Running",
            "Completed"
        ]
    );
    assert_eq!(start.elapsed(), Duration::from_secs(8));
}

#[tokio::test(start_paused = true)]
async fn flow_delays_are_whole_seconds_and_zero_still_awaits_retry() {
    let starts = Mutex::new(Vec::new());
    let flow = Flow::new("f").retries(2).retry_delay_seconds(2.7);
    let _ = flow
        .run(|| {
            starts.lock().unwrap().push(Instant::now());
            async { Err::<(), _>("x") }
        })
        .await;
    let starts = starts.into_inner().unwrap();
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        gaps,
        [Duration::from_secs(2), Duration::from_secs(2)],
        "int(2.7) = 2"
    );

    let (run, _) = Flow::new("f")
        .retries(1)
        .retry_delay_seconds(0.5)
        .run_with_history(|| async { Err::<(), _>("x") })
        .await;
    assert_eq!(
        run.state_names(),
        ["Pending", "Running", "AwaitingRetry", "Running", "Failed"]
    );
}

#[tokio::test(start_paused = true)]
async fn flow_defaults_are_read_per_run_and_call_site_zero_wins() {
    let defaults = Arc::new(FixedDefaults {
        flow_retries: 2,
        flow_retry_delay: Delays::list(vec![1.0, 5.0]).unwrap(),
        ..FixedDefaults::default()
    });
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let (run, _) = Flow::new("f")
        .defaults(defaults.clone())
        .run_with_history(|| async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>("x")
        })
        .await;
    assert_eq!((run.retries(), calls.load(Ordering::Relaxed)), (2, 3));
    assert_eq!(start.elapsed(), Duration::from_secs(6));

    let (run, _) = Flow::new("f")
        .retries(0)
        .defaults(defaults)
        .run_with_history(|| async { Err::<(), _>("x") })
        .await;
    assert_eq!(run.state_names(), ["Pending", "Running", "Failed"]);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_flow_crashes_after_its_retries() {
    let (run, result) = Flow::new("f")
        .retries(1)
        .run_with_history(|| async {
            panic!("flow bug");
            #[allow(unreachable_code)]
            Ok::<(), String>(())
        })
        .await;
    assert_eq!(
        run.state_names(),
        ["Pending", "Running", "AwaitingRetry", "Running", "Crashed"]
    );
    assert_eq!(
        result,
        Err(RunError::Crashed {
            message: "flow bug".into()
        })
    );
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_flow_cancels_its_tasks() {
    let token = CancellationToken::new();
    let task_run = Mutex::new(None);
    let flow = Flow::new("f").retries(3).cancellation_token(token.clone());
    let (run, result) = flow
        .run_with_history(|| async {
            let task = Task::new("t").retries(5).retry_delay_seconds(10);
            let (run, result) = task
                .run_with_history(|| async {
                    token.cancel();
                    Err::<(), _>("x")
                })
                .await;
            *task_run.lock().unwrap() = Some(run);
            result
        })
        .await;
    assert_eq!(result, Err(RunError::Cancelled));
    assert_eq!(run.state_names(), ["Pending", "Running", "Cancelled"]);
    // The task obeyed the flow's token: its failure was not retried.
    let task_run = task_run.into_inner().unwrap().expect("the task ran");
    assert_eq!(task_run.state_names(), ["Pending", "Running", "Cancelled"]);
}

#[tokio::test(start_paused = true)]
async fn an_ambient_token_reaches_tasks_inside_a_flow() {
    let token = CancellationToken::new();
    let inner = token.child_token();
    let seen = Mutex::new(Vec::new());
    let flow = Flow::new("f");
    let result = with_cancellation(inner, async {
        flow.run(|| async {
            let task = Task::new("t").retries(3).retry_delay_seconds(10);
            let (run, result) = task
                .run_with_history(|| async {
                    token.cancel();
                    Err::<(), _>("x")
                })
                .await;
            seen.lock().unwrap().push(run.state_names());
            result
        })
        .await
    })
    .await;
    assert_eq!(result, Err(RunError::Cancelled));
    assert_eq!(
        seen.into_inner().unwrap(),
        [["Pending", "Running", "Cancelled"]],
        "the task obeyed the ambient token through the flow"
    );
}

#[test]
fn a_blocking_flow_with_blocking_tasks() {
    let executions = AtomicU32::new(0);
    let flow_ids = Mutex::new(Vec::new());
    let task = Task::new("step").retries(1);
    let (run, result) = Flow::new("f").retries(2).run_blocking_with_history(|| {
        let (task_run, result) = task.run_blocking_with_history(|| {
            match executions.fetch_add(1, Ordering::Relaxed) {
                // Attempts 1-2 fail (task budget used), 3-4 (flow retry):
                // the third fails, the fourth succeeds.
                0..=2 => Err("x"),
                _ => Ok(9),
            }
        });
        flow_ids.lock().unwrap().push(task_run.flow_run_id());
        result
    });
    assert_eq!(result, Ok(9));
    assert_eq!(executions.load(Ordering::Relaxed), 4);
    assert_eq!(
        run.state_names(),
        [
            "Pending",
            "Running",
            "AwaitingRetry",
            "Running",
            "Completed"
        ]
    );
    assert_eq!(*flow_ids.lock().unwrap(), [Some(run.id()), Some(run.id())]);
}
