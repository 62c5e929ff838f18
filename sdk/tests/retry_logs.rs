//! The engine's log lines, captured from `tracing`: Prefect's wording for a
//! retry, for exhaustion, for a panicking condition, and for flows.

use std::io::Write;
use std::sync::{Arc, Mutex};

use cfgd_sdk::retry::{Flow, RunError, State, Task, TaskRun};
use tracing::subscriber::DefaultGuard;

/// Everything logged while the guard lives, as `(level, message)` lines.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn install(&self) -> DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// `LEVEL message` per line, with the span prefix removed.
    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| {
                let (level, rest) = line.trim_start().split_once(' ').unwrap();
                let message = rest.rsplit_once("}: ").map_or(rest, |(_, m)| m);
                format!("{level} {message}")
            })
            .collect()
    }

    fn raw(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_and_exhaustion() {
    let capture = Capture::default();
    let _guard = capture.install();
    let task = Task::new("fetch")
        .retries(2)
        .retry_delay_seconds([5, 0])
        .unwrap();
    let _ = task
        .run(|| async { Err::<(), _>("connection refused") })
        .await;
    assert_eq!(
        capture.lines(),
        [
            "INFO Task run failed with exception: connection refused - Retry 1/2 will start 5 second(s) from now",
            "INFO Task run failed with exception: connection refused - Retry 2/2 will start immediately",
            "ERROR Task run failed with exception: connection refused - Retries are exhausted",
            "ERROR Finished in state Failed('Task run encountered an exception &str: connection refused')",
        ]
    );
    // Every line is inside the run's span.
    assert!(
        capture
            .raw()
            .lines()
            .all(|l| l.contains("task_run{task_run=fetch-")),
        "{}",
        capture.raw()
    );
}

#[tokio::test(start_paused = true)]
async fn no_retries_means_no_exhaustion_suffix() {
    let capture = Capture::default();
    let _guard = capture.install();
    let _ = Task::new("t")
        .retries(0)
        .run(|| async { Err::<(), _>("boom") })
        .await;
    assert_eq!(
        capture.lines(),
        [
            "ERROR Task run failed with exception: boom",
            "ERROR Finished in state Failed('Task run encountered an exception &str: boom')",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn success_and_jittered_delays() {
    let capture = Capture::default();
    let _guard = capture.install();
    let calls = std::sync::atomic::AtomicU32::new(0);
    let task = Task::new("t")
        .retries(1)
        .retry_delay_seconds(0.5)
        .unwrap()
        .retry_jitter_factor(1)
        .unwrap()
        .jitter_seed(3);
    let result = task
        .run(|| async {
            match calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
                0 => Err("flaky"),
                _ => Ok(()),
            }
        })
        .await;
    assert_eq!(result, Ok(()));
    let lines = capture.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let delay: f64 = lines[0]
        .strip_prefix("INFO Task run failed with exception: flaky - Retry 1/1 will start ")
        .and_then(|rest| rest.strip_suffix(" second(s) from now"))
        .unwrap_or_else(|| panic!("{}", lines[0]))
        .parse()
        .unwrap();
    assert!(
        delay != 0.5 && (0.2..=1.0).contains(&delay),
        "jittered: {delay}"
    );
    assert_eq!(lines[1], "INFO Finished in state Completed()");
}

#[tokio::test(start_paused = true)]
async fn a_condition_that_returns_false_logs_no_exhaustion() {
    let capture = Capture::default();
    let _guard = capture.install();
    let task = Task::new("t")
        .retries(3)
        .retry_condition_fn(|_, _, _| false);
    let _ = task.run(|| async { Err::<(), _>("boom") }).await;
    assert_eq!(
        capture.lines(),
        ["ERROR Finished in state Failed('Task run encountered an exception &str: boom')"]
    );
}

fn buggy_condition(_: &Task<String>, _: &TaskRun, _: &State<String>) -> bool {
    panic!("condition bug")
}

#[tokio::test(start_paused = true)]
async fn a_panicking_condition_is_logged() {
    let capture = Capture::default();
    let _guard = capture.install();
    let task = Task::new("fetch")
        .retries(3)
        .retry_condition_fn(buggy_condition);
    let _ = task.run(|| async { Err::<(), _>("boom".to_owned()) }).await;
    let lines = capture.lines();
    assert_eq!(
        lines[0],
        "ERROR An error was encountered while running `retry_condition_fn` check 'retry_logs::buggy_condition' for task 'fetch': condition bug"
    );
    assert_eq!(lines.len(), 2, "then only the final state: {lines:?}");
}

#[tokio::test(start_paused = true)]
async fn timeouts_panics_and_cancellation() {
    let capture = Capture::default();
    let _guard = capture.install();
    let task = Task::new("t").retries(1).timeout_seconds(2).unwrap();
    let _ = task
        .run(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(9)).await;
            Ok::<(), String>(())
        })
        .await;
    let _: Result<(), RunError<String>> = Task::new("p")
        .retries(0)
        .run(|| async { panic!("kaboom") })
        .await;
    let token = cfgd_sdk::retry::CancellationToken::new();
    token.cancel();
    let _ = Task::<String>::new("c")
        .cancellation_token(token)
        .run(|| async { Ok(()) })
        .await;
    assert_eq!(
        capture.lines(),
        [
            "INFO Task run failed with exception: timed out after 2.0 second(s) - Retry 1/1 will start immediately",
            "ERROR Task run failed with exception: timed out after 2.0 second(s) - Retries are exhausted",
            "ERROR Finished in state TimedOut('Task run exceeded timeout of 2.0 second(s)', type=FAILED)",
            "ERROR Task run failed with exception: panicked: kaboom",
            "ERROR Finished in state Crashed('Execution was interrupted by a panic: kaboom')",
            "INFO Finished in state Cancelled('Task run was cancelled.')",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn flow_lines() {
    let capture = Capture::default();
    let _guard = capture.install();
    let flow = Flow::new("nightly")
        .retries(1)
        .retry_delay_seconds(2)
        .unwrap();
    let _ = flow.run(|| async { Err::<(), _>("db down") }).await;
    assert_eq!(
        capture.lines(),
        [
            "ERROR Encountered exception during execution: db down",
            "INFO Received non-final state 'AwaitingRetry' when proposing final state 'Failed' and will attempt to run again...",
            "ERROR Encountered exception during execution: db down",
            "ERROR Finished in state Failed('Flow run encountered an exception: &str: db down')",
        ]
    );
    assert!(
        capture
            .raw()
            .lines()
            .all(|l| l.contains("flow_run{flow_run=nightly-"))
    );
}
