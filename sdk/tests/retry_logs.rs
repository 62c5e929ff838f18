//! The engine's log lines, captured from `tracing`, for the scenarios of
//! Prefect 3.9.1 observed in `prefect-behaviour.md` §1.9: the same words
//! and levels, with the error's `Debug` where Prefect prints `repr`.

use std::io::Write;
use std::sync::{Arc, Mutex};

use cfgd_sdk::retry::{
    BudgetSettings, Fail, FixedDefaults, Flow, RunError, State, SuggestedDelay, Task, TaskRun,
};
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
        self.lines_in("")
    }

    /// [`Capture::lines`] of the lines whose innermost span starts with
    /// `span` (`flow_run{`).
    fn lines_in(&self, span: &str) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter_map(|line| {
                let (level, rest) = line.trim_start().split_once(' ').unwrap();
                let (spans, message) = rest.rsplit_once("}: ").unwrap_or(("", rest));
                let innermost = spans.rsplit(':').next().unwrap_or("");
                innermost
                    .starts_with(span)
                    .then(|| format!("{level} {message}"))
            })
            .collect()
    }

    fn raw(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Prefect's `ValueError('boom')`: its `Debug` is `ValueError("boom")`,
/// its `Display` `boom`, its type name `ValueError`.
#[derive(Debug, Clone, PartialEq)]
struct ValueError(&'static str);

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

fn boom() -> Result<(), ValueError> {
    Err(ValueError("boom"))
}

#[tokio::test(start_paused = true)]
async fn retries_3_with_a_short_delay_list() {
    let capture = Capture::default();
    let _guard = capture.install();
    let task = Task::new("fetch")
        .retries(3)
        .retry_delay_seconds([0.01, 0.02]);
    let _ = task.run(|| async { boom() }).await;
    assert_eq!(
        capture.lines(),
        [
            "INFO Task run failed with exception: ValueError(\"boom\") - Retry 1/3 will start 0.01 second(s) from now",
            "INFO Task run failed with exception: ValueError(\"boom\") - Retry 2/3 will start 0.02 second(s) from now",
            "INFO Task run failed with exception: ValueError(\"boom\") - Retry 3/3 will start 0.02 second(s) from now",
            "ERROR Task run failed with exception: ValueError(\"boom\") - Retries are exhausted",
            "ERROR Finished in state Failed('Task run encountered an exception ValueError: boom')",
        ]
    );
    // Every line is inside the run's span, which carries no revision here
    // (fixed defaults).
    assert!(
        capture
            .raw()
            .lines()
            .all(|l| l.contains("task_run{task_run=fetch-") && !l.contains("revision")),
        "{}",
        capture.raw()
    );
}

#[tokio::test(start_paused = true)]
async fn the_span_carries_the_settings_revision() {
    struct AtRevision(FixedDefaults);
    impl cfgd_sdk::retry::RetryDefaults for AtRevision {
        fn read(&self, f: &mut dyn FnMut(&cfgd_sdk::retry::Defaults<'_>)) {
            f(&cfgd_sdk::retry::Defaults {
                revision: Some(42),
                ..self.0.view()
            });
        }
    }
    let capture = Capture::default();
    let _guard = capture.install();
    let task = Task::new("t").defaults(Arc::new(AtRevision(FixedDefaults::default())));
    let (run, _) = task.run_with_history(|| async { boom() }).await;
    assert_eq!(run.settings_revision(), Some(42));
    assert!(
        capture
            .raw()
            .lines()
            .all(|l| l.contains("task_run{task_run=t-") && l.contains(" revision=42}")),
        "{}",
        capture.raw()
    );
}

#[tokio::test(start_paused = true)]
async fn no_retries_means_no_exhaustion_suffix() {
    let capture = Capture::default();
    let _guard = capture.install();
    let _ = Task::new("t").retries(0).run(|| async { boom() }).await;
    assert_eq!(
        capture.lines(),
        [
            "ERROR Task run failed with exception: ValueError(\"boom\")",
            "ERROR Finished in state Failed('Task run encountered an exception ValueError: boom')",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_of_0_05_seconds_with_one_retry() {
    let capture = Capture::default();
    let _guard = capture.install();
    let task = Task::new("t").retries(1).timeout_seconds(0.05);
    let (run, result) = task
        .run_with_history(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(9)).await;
            Ok::<(), ValueError>(())
        })
        .await;
    assert_eq!(result, Err(RunError::TimedOut { seconds: 0.05 }));
    assert_eq!(
        run.state().to_string(),
        "TimedOut('Task run exceeded timeout of 0.05 second(s)', type=FAILED)"
    );
    assert_eq!(
        capture.lines(),
        [
            "INFO Task run failed with exception: TaskRunTimeoutError('Scope timed out after 0.05 second(s).') - Retry 1/1 will start immediately",
            "ERROR Task run failed with exception: TaskRunTimeoutError('Scope timed out after 0.05 second(s).') - Retries are exhausted",
            "ERROR Task run exceeded timeout of 0.05 second(s)",
            "ERROR Finished in state TimedOut('Task run exceeded timeout of 0.05 second(s)', type=FAILED)",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_returned_failed_state_is_retried() {
    let capture = Capture::default();
    let _guard = capture.install();
    let task = Task::<ValueError>::new("t").retries(2);
    let (run, result) = task
        .run_returning(|| async { Err::<(), _>(Fail::message("returned failed state")) })
        .await;
    assert_eq!(run.run_count(), 3);
    assert_eq!(
        run.state_names(),
        ["Pending", "Running", "Retrying", "Retrying", "Failed"]
    );
    let Err(RunError::State(state)) = result else {
        panic!("a Failed state with no error: {result:?}")
    };
    assert_eq!(state.message(), Some("returned failed state"));
    assert_eq!(state.error(), None);
    assert_eq!(
        capture.lines(),
        [
            "INFO Task run failed with state: Failed(message='returned failed state', type=FAILED, result=None) - Retry 1/2 will start immediately",
            "INFO Task run failed with state: Failed(message='returned failed state', type=FAILED, result=None) - Retry 2/2 will start immediately",
            "ERROR Task run failed with state: Failed(message='returned failed state', type=FAILED, result=None) - Retries are exhausted",
            "ERROR Finished in state Failed('returned failed state')",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_flow_retrying_around_task_retries() {
    let capture = Capture::default();
    let _guard = capture.install();
    let task = Task::new("step").retries(2);
    let flow = Flow::new("golden-13").retries(1);
    let (run, result) = flow
        .run_with_history(|| async { task.run(|| async { boom() }).await })
        .await;
    let name = run.name().to_owned();
    assert_eq!(
        capture.lines_in("flow_run{"),
        [
            format!("INFO Beginning flow run '{name}' for flow 'golden-13'"),
            "ERROR Encountered exception during execution: ValueError(\"boom\")".into(),
            "INFO Received non-final state 'AwaitingRetry' when proposing final state 'Failed' and will attempt to run again...".into(),
            format!("INFO Beginning flow run '{name}' for flow 'golden-13'"),
            "ERROR Encountered exception during execution: ValueError(\"boom\")".into(),
            "INFO Finished in state Failed('Flow run encountered an exception: ValueError: boom')".into(),
        ]
    );
    // The task's own lines are in their task runs' spans, inside the flow's.
    assert_eq!(capture.lines_in("task_run{").len(), 2 * 4);
    assert_eq!(
        result,
        Err(RunError::Failed(RunError::Failed(ValueError("boom"))))
    );
    assert_eq!(run.task_runs().len(), 2, "one task run per flow attempt");
}

#[tokio::test(start_paused = true)]
async fn a_condition_that_returns_false_logs_only_the_final_state() {
    let capture = Capture::default();
    let _guard = capture.install();
    let seen = Arc::new(Mutex::new(None));
    let seen2 = seen.clone();
    let task =
        Task::new("t")
            .retries(3)
            .retry_condition_fn(move |_, _, state: &State<ValueError>| {
                *seen2.lock().unwrap() = state.message().map(str::to_owned);
                false
            });
    let _ = task.run(|| async { boom() }).await;
    assert_eq!(
        capture.lines(),
        ["ERROR Finished in state Failed('Task run encountered an exception ValueError: boom')"]
    );
    assert_eq!(
        seen.lock().unwrap().as_deref(),
        Some("Task run encountered unexpected exception: ValueError(\"boom\")")
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
async fn panics_cancellation_and_jitter() {
    let capture = Capture::default();
    let _guard = capture.install();
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
    let calls = std::sync::atomic::AtomicU32::new(0);
    let task = Task::new("j")
        .retries(1)
        .retry_delay_seconds(0.5)
        .retry_jitter_factor(1)
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
    assert_eq!(
        lines[..3],
        [
            "ERROR Task run failed with exception: panicked: kaboom",
            "ERROR Finished in state Crashed('Execution was interrupted by a panic: kaboom')",
            "INFO Finished in state Cancelled('Task run was cancelled.')",
        ]
    );
    let delay: f64 = lines[3]
        .strip_prefix("INFO Task run failed with exception: \"flaky\" - Retry 1/1 will start ")
        .and_then(|rest| rest.strip_suffix(" second(s) from now"))
        .unwrap_or_else(|| panic!("{}", lines[3]))
        .parse()
        .unwrap();
    assert!(
        delay != 0.5 && (0.2..=1.0).contains(&delay),
        "jittered: {delay}"
    );
    assert_eq!(lines[4], "INFO Finished in state Completed()");
}

#[tokio::test(start_paused = true)]
async fn a_suggested_delay_says_where_it_came_from() {
    let capture = Capture::default();
    let _guard = capture.install();
    let suggested = Arc::new(Mutex::new(vec![36_000, 2]));
    let task = Task::new("t")
        .retries(2)
        .retry_delay_seconds(5)
        .suggested_delay_fn(move |_: &ValueError| {
            let secs = suggested.lock().unwrap().pop()?;
            Some(SuggestedDelay::retry_after(std::time::Duration::from_secs(
                secs,
            )))
        });
    let _ = task.run(|| async { boom() }).await;
    assert_eq!(
        capture.lines()[..2],
        [
            "INFO Task run failed with exception: ValueError(\"boom\") - Retry 1/2 will start 2 second(s) from now, as the server suggested (Retry-After)",
            "INFO Task run failed with exception: ValueError(\"boom\") - Retry 2/2 will start 60 second(s) from now, as the server suggested (Retry-After: 36000 s, clamped to the maximum of 60 s)",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_retry_says_so() {
    let capture = Capture::default();
    let _guard = capture.install();
    let defaults = Arc::new(FixedDefaults {
        retry_budget: Some(BudgetSettings {
            ratio: 0.0,
            floor: 0.0,
            global: false,
        }),
        ..FixedDefaults::default()
    });
    let task = Task::new("logs-refused").retries(3).defaults(defaults);
    let (run, _) = task.run_with_history(|| async { boom() }).await;
    let refusal = "refused: the retry budget of task 'logs-refused' is spent (0 retries per first attempt plus 0 per second, over the last 10 s)";
    assert_eq!(
        capture.lines(),
        [
            format!(
                "ERROR Task run failed with exception: ValueError(\"boom\") - Retry 1/3 {refusal}"
            ),
            // Python's repr quotes with " when the text holds a '.
            format!(
                "ERROR Finished in state Failed(\"Task run encountered an exception ValueError: boom - Retry 1/3 {refusal}\")"
            ),
        ]
    );
    assert_eq!(run.state_names(), ["Pending", "Running", "Failed"]);
}
