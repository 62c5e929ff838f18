//! What Prefect's flows have and cfgd's gained: hooks (`on_failure`,
//! `on_completion`, which never fire on a retried attempt), a per-attempt
//! `timeout_seconds` (or a `Duration`), and the task runs a flow run
//! started.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cfgd_sdk::retry::{Flow, FlowRun, RunError, State, StateName, Task};

type Seen = Arc<Mutex<Vec<(String, StateName, u32)>>>;

fn recorder(
    seen: &Seen,
    event: &'static str,
) -> impl Fn(&Flow, &FlowRun, &State) + Send + Sync + 'static {
    let seen = seen.clone();
    move |flow: &Flow, run: &FlowRun, state: &State| {
        assert_eq!(flow.name(), "hooked");
        seen.lock()
            .unwrap()
            .push((event.to_owned(), state.name(), run.run_count()));
    }
}

#[tokio::test(start_paused = true)]
async fn hooks_fire_once_on_the_final_state() {
    let seen: Seen = Arc::default();
    let flow = Flow::new("hooked")
        .retries(2)
        .on_failure(recorder(&seen, "failure"))
        .on_completion(recorder(&seen, "completion"));
    let _ = flow.run(|| async { Err::<(), _>("down") }).await;
    let calls = AtomicU32::new(0);
    let _ = flow
        .run(|| async {
            match calls.fetch_add(1, Ordering::Relaxed) {
                0 => Err("once"),
                _ => Ok(()),
            }
        })
        .await;
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("failure".to_owned(), StateName::Failed, 3),
            ("completion".to_owned(), StateName::Completed, 2),
        ],
        "not on the retried attempts"
    );
}

#[tokio::test(start_paused = true)]
async fn a_flow_attempt_times_out_and_is_retried() {
    let seen: Seen = Arc::default();
    let flow = Flow::new("hooked")
        .retries(1)
        .timeout(Duration::from_millis(1500))
        .on_failure(recorder(&seen, "failure"));
    let start = tokio::time::Instant::now();
    let (run, result) = flow
        .run_with_history(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<(), String>(())
        })
        .await;
    assert_eq!(result, Err(RunError::TimedOut { seconds: 1.5 }));
    assert_eq!(
        run.state_names(),
        ["Pending", "Running", "AwaitingRetry", "Running", "TimedOut"]
    );
    assert_eq!(
        run.state().to_string(),
        "TimedOut('Flow run exceeded timeout of 1.5 second(s)', type=FAILED)"
    );
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(3),
        "two attempts of 1.5 s"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [("failure".to_owned(), StateName::TimedOut, 2)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_flow_run_keeps_its_task_runs() {
    let fetch = Task::new("fetch").retries(1);
    let store = Task::new("store");
    let flow = Flow::new("pipeline").retries(1);
    let attempt = AtomicU32::new(0);
    let (run, result) = flow
        .run_with_history(|| async {
            let first = attempt.fetch_add(1, Ordering::Relaxed) == 0;
            fetch
                .run(|| async { if first { Err("no") } else { Ok(1) } })
                .await?;
            store.run(|| async { Ok::<_, &str>(2) }).await
        })
        .await;
    assert_eq!(result, Ok(2));
    let tasks: Vec<(&str, Vec<&str>)> = run
        .task_runs()
        .iter()
        .map(|t| (t.task_name(), t.state_names()))
        .collect();
    assert_eq!(
        tasks,
        [
            ("fetch", vec!["Pending", "Running", "Retrying", "Failed"]),
            ("fetch", vec!["Pending", "Running", "Completed"]),
            ("store", vec!["Pending", "Running", "Completed"]),
        ]
    );
    assert!(
        run.task_runs()
            .iter()
            .all(|t| t.flow_run_id() == Some(run.id()))
    );
}

#[test]
fn a_blocking_flow_keeps_its_task_runs_and_times_out_late_attempts() {
    let flow = Flow::new("blocking").timeout_seconds(0.001);
    let task = Task::new("inner");
    let (run, result) = flow.run_blocking_with_history(|| {
        task.run_blocking(|| Ok::<_, &str>(()))?;
        std::thread::sleep(Duration::from_millis(20));
        Ok::<_, RunError<&str>>(())
    });
    assert_eq!(result, Err(RunError::TimedOut { seconds: 0.001 }));
    assert_eq!(run.task_runs().len(), 1);
}
