//! Running a [`Task`]: the attempt loop shared by the async, sync and
//! blocking entry points, with Prefect's state transitions, retry
//! decisions, delays, hooks and log lines.
//!
//! The loop's bookkeeping ([`Engine`]) does no I/O; the drivers below add
//! the clock, the sleeps, timeouts and cancellation. Per attempt it pushes
//! one state (two with a delay) and, with no subscriber, formats nothing.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use cfgd_settings::Delays;
use futures_util::FutureExt;
use tracing::Instrument;

use super::context::{self, Tokens};
use super::defaults::with_source;
use super::error::{ConfigError, PyFloat, RunError};
use super::log::{self, Failure, panic_message, short_type_name};
use super::run::TaskRun;
use super::state::{State, StateName};
use super::task::{HookFn, Named, Task};

/// What to do after an attempt.
enum Next<T, E> {
    /// Wait this long (zero: not at all), then retry.
    Retry(Duration),
    /// The run is over.
    Done(Result<T, RunError<E>>),
}

/// One task run in progress.
struct Engine<'t, E> {
    task: &'t Task<E>,
    run: TaskRun,
    delays: Cow<'t, Delays>,
    jitter: Option<f64>,
    /// Retries started so far.
    retried: u32,
}

type Finished<T, E> = (TaskRun, Result<T, RunError<E>>);

/// A run that could not start: its record (ended `Failed`) and why. Boxed:
/// this path is cold and the record is large.
type Invalid = (TaskRun, ConfigError);

impl<'t, E: fmt::Display> Engine<'t, E> {
    /// Creates the run in `Pending` with the parameters resolved now.
    fn begin(task: &'t Task<E>, flow_run: Option<super::run::RunId>) -> Result<Self, Box<Invalid>> {
        let resolved = with_source(task.defaults.as_ref(), |source| {
            let retries = task.retries.unwrap_or_else(|| source.task_retries());
            let delays = if retries == 0 {
                Ok(Cow::Owned(
                    Delays::list(Vec::new()).expect("an empty list is valid"),
                ))
            } else {
                match &task.retry_delay {
                    Some(delay) => delay.resolve(retries),
                    None => Ok(Cow::Owned(source.task_retry_delay())),
                }
            };
            let jitter = task.jitter.or_else(|| source.task_retry_jitter_factor());
            (retries, delays, jitter)
        });
        let (retries, delays, jitter) = resolved;
        let mut run = TaskRun::new(task.name.clone(), flow_run, retries);
        let checked = delays.and_then(|d| match jitter {
            Some(c) if !c.is_finite() || c < 0.0 => Err(ConfigError::JitterFactor),
            _ => Ok(d),
        });
        match checked {
            Ok(delays) => Ok(Self {
                task,
                run,
                delays,
                jitter,
                retried: 0,
            }),
            Err(e) => {
                let state = State::new(StateName::Failed)
                    .with_message(format!("Invalid retry configuration: {e}"));
                log::finished(&state);
                run.history.push(state);
                Err(Box::new((run, e)))
            }
        }
    }

    /// Enters `Running` (first attempt) or `Retrying`.
    fn start_attempt(&mut self) {
        let name = if self.run.run_count() == 0 {
            StateName::Running
        } else {
            StateName::Retrying
        };
        self.run.history.push(State::new(name));
        self.fire(&self.task.hooks.on_running, None);
    }

    /// Records an attempt's outcome and decides what comes next.
    fn settle<T>(&mut self, outcome: Result<T, Failure<E>>) -> Next<T, E> {
        let failure = match outcome {
            Ok(value) => {
                self.finish(State::new(StateName::Completed));
                self.fire(&self.task.hooks.on_completion, None);
                return Next::Done(Ok(value));
            }
            Err(failure) => failure,
        };
        let retries = self.run.retries();
        if self.retried >= retries {
            log::task_exhausted(&failure, retries);
            return Next::Done(Err(self.fail(failure)));
        }
        let (retry, failure) = match &self.task.condition {
            None => (true, failure),
            Some(condition) => self.consult(condition, failure),
        };
        if !retry {
            return Next::Done(Err(self.fail(failure)));
        }
        let k = self.retried + 1;
        let base = self.delays.for_retry(k);
        let delay = match self.jitter {
            Some(c) if c > 0.0 && base > 0.0 => self.task.rng.jitter(base, c),
            _ => base,
        };
        log::task_retry(&failure, k, retries, delay);
        self.retried = k;
        let wait = if delay > 0.0 {
            let wait = Duration::try_from_secs_f64(delay).unwrap_or(Duration::MAX);
            self.run.history.push(State::awaiting_retry(wait));
            wait
        } else {
            Duration::ZERO
        };
        if !self.task.hooks.on_retry.is_empty() {
            with_failure_state(failure, |state| {
                fire(self.task, &self.run, &self.task.hooks.on_retry, state);
            });
        }
        Next::Retry(wait)
    }

    /// Asks the `retry_condition_fn`; a panic in it means no retry.
    fn consult(
        &self,
        condition: &Named<super::task::ConditionFn<E>>,
        failure: Failure<E>,
    ) -> (bool, Failure<E>) {
        with_failure_state(failure, |state| {
            match catch_unwind(AssertUnwindSafe(|| {
                (condition.f)(self.task, &self.run, state)
            })) {
                Ok(retry) => retry,
                Err(panic) => {
                    log::condition_panicked(
                        condition.name,
                        &self.task.name,
                        &panic_message(&*panic),
                    );
                    false
                }
            }
        })
    }

    /// Ends the run in the final state for `failure`.
    fn fail(&mut self, failure: Failure<E>) -> RunError<E> {
        match failure {
            Failure::Error(e) => {
                let message = format!(
                    "Task run encountered an exception {}: {e}",
                    short_type_name::<E>()
                );
                self.finish(State::new(StateName::Failed).with_message(message));
                if self.task.hooks.on_failure.is_empty() {
                    return RunError::Failed(e);
                }
                let state = self.run.state().lend(Some(e));
                fire(self.task, &self.run, &self.task.hooks.on_failure, &state);
                let (_, e) = state.into_error();
                RunError::Failed(e.expect("the error was lent, not taken"))
            }
            Failure::Panic(message) => {
                let text = format!("Execution was interrupted by a panic: {message}");
                self.finish(State::new(StateName::Crashed).with_message(text));
                RunError::Crashed { message }
            }
            Failure::Timeout(seconds) => {
                let text = format!(
                    "Task run exceeded timeout of {} second(s)",
                    PyFloat(seconds)
                );
                self.finish(State::new(StateName::TimedOut).with_message(text));
                self.fire(&self.task.hooks.on_failure, None);
                RunError::TimedOut { seconds }
            }
        }
    }

    /// Ends the run `Cancelled`.
    fn cancel<T>(mut self) -> Finished<T, E> {
        self.finish(State::new(StateName::Cancelled).with_message("Task run was cancelled."));
        (self.run, Err(RunError::Cancelled))
    }

    fn finish(&mut self, state: State) {
        log::finished(&state);
        self.run.history.push(state);
    }

    /// Calls `hooks` with the current state (holding `error`).
    fn fire(&self, hooks: &[Named<HookFn<E>>], error: Option<E>) {
        if !hooks.is_empty() {
            fire(self.task, &self.run, hooks, &self.run.state().lend(error));
        }
    }
}

fn fire<E>(task: &Task<E>, run: &TaskRun, hooks: &[Named<HookFn<E>>], state: &State<E>) {
    for hook in hooks {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (hook.f)(task, run, state))) {
            log::hook_panicked(hook.name, &panic_message(&*panic));
        }
    }
}

/// Calls `f` with the state a condition or hook sees for `failure`, then
/// hands the failure back.
fn with_failure_state<E: fmt::Display, R>(
    failure: Failure<E>,
    f: impl FnOnce(&State<E>) -> R,
) -> (R, Failure<E>) {
    let (name, message) = match &failure {
        Failure::Error(e) => (
            StateName::Failed,
            format!("Task run encountered unexpected exception: {e}"),
        ),
        Failure::Panic(m) => (
            StateName::Crashed,
            format!("Execution was interrupted by a panic: {m}"),
        ),
        Failure::Timeout(s) => (
            StateName::TimedOut,
            format!("Task run exceeded timeout of {} second(s)", PyFloat(*s)),
        ),
    };
    let state = State::<E>::new(name).with_message(message);
    match failure {
        Failure::Error(e) => {
            let state = state.with_error(e);
            let r = f(&state);
            let (_, e) = state.into_error();
            (r, Failure::Error(e.expect("the error was lent, not taken")))
        }
        other => (f(&state), other),
    }
}

/// Starts a run: its engine, its tokens and its span.
fn start<E: fmt::Display>(
    task: &Task<E>,
) -> Result<(Engine<'_, E>, Tokens, tracing::Span), Box<Invalid>> {
    let ctx = context::current().unwrap_or_default();
    let engine = Engine::begin(task, ctx.flow_run)?;
    let span =
        tracing::info_span!(target: "cfgd_sdk::retry", "task_run", task_run = %engine.run.name());
    let tokens = Tokens {
        own: task.cancel.clone(),
        ambient: ctx.cancel,
    };
    Ok((engine, tokens, span))
}

fn never_started<T, E>((run, error): Invalid) -> Finished<T, E> {
    (run, Err(RunError::Invalid(error)))
}

/// The async attempt loop.
async fn drive<T, E, A, AF>(task: &Task<E>, attempt: A) -> Finished<T, E>
where
    E: fmt::Display,
    A: Fn() -> AF,
    AF: Future<Output = Result<T, Failure<E>>>,
{
    let (mut engine, tokens, span) = match start(task) {
        Ok(started) => started,
        Err(invalid) => return never_started(*invalid),
    };
    let watched = tokens.any();
    async move {
        loop {
            if tokens.is_cancelled() {
                return engine.cancel();
            }
            engine.start_attempt();
            let outcome = if watched {
                tokio::select! {
                    biased;
                    () = tokens.cancelled() => return engine.cancel(),
                    outcome = attempt() => outcome,
                }
            } else {
                attempt().await
            };
            // A failure that comes with (or from) cancellation is not retried.
            if watched && outcome.is_err() && tokens.is_cancelled() {
                return engine.cancel();
            }
            match engine.settle(outcome) {
                Next::Done(result) => return (engine.run, result),
                Next::Retry(wait) if wait.is_zero() => {}
                Next::Retry(wait) if watched => {
                    tokio::select! {
                        biased;
                        () = tokens.cancelled() => return engine.cancel(),
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                Next::Retry(wait) => tokio::time::sleep(wait).await,
            }
        }
    }
    .instrument(span)
    .await
}

/// The blocking attempt loop (no runtime needed).
fn drive_blocking<T, E: fmt::Display>(
    task: &Task<E>,
    attempt: impl Fn() -> Result<T, Failure<E>>,
) -> Finished<T, E> {
    let (mut engine, tokens, span) = match start(task) {
        Ok(started) => started,
        Err(invalid) => return never_started(*invalid),
    };
    let _entered = span.enter();
    loop {
        if tokens.is_cancelled() {
            return engine.cancel();
        }
        engine.start_attempt();
        let outcome = attempt();
        if outcome.is_err() && tokens.is_cancelled() {
            return engine.cancel();
        }
        match engine.settle(outcome) {
            Next::Done(result) => return (engine.run, result),
            Next::Retry(wait) => {
                if !tokens.sleep_blocking(wait) {
                    return engine.cancel();
                }
            }
        }
    }
}

/// One async attempt: panics caught, the timeout applied.
async fn attempt_async<F, Fut, T, E>(
    f: &F,
    timeout: Option<(Duration, f64)>,
) -> Result<T, Failure<E>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let fut = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(fut) => AssertUnwindSafe(fut).catch_unwind(),
        Err(panic) => return Err(Failure::Panic(panic_message(&*panic))),
    };
    let caught = match timeout {
        None => fut.await,
        Some((limit, seconds)) => match tokio::time::timeout(limit, fut).await {
            Ok(caught) => caught,
            Err(_) => return Err(Failure::Timeout(seconds)),
        },
    };
    match caught {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Failure::Error(e)),
        Err(panic) => Err(Failure::Panic(panic_message(&*panic))),
    }
}

/// One sync attempt: panics caught; a late return counts as a timeout.
fn attempt_sync<F, T, E>(
    f: &F,
    timeout: Option<(Duration, f64)>,
    now: fn() -> Instant,
) -> Result<T, Failure<E>>
where
    F: Fn() -> Result<T, E>,
{
    let started = timeout.map(|_| now());
    let caught = catch_unwind(AssertUnwindSafe(f));
    if let (Some((limit, seconds)), Some(started)) = (timeout, started)
        && now().saturating_duration_since(started) > limit
    {
        return Err(Failure::Timeout(seconds));
    }
    match caught {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Failure::Error(e)),
        Err(panic) => Err(Failure::Panic(panic_message(&*panic))),
    }
}

fn tokio_now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl<E: fmt::Display> Task<E> {
    /// Runs the async function `f` as one task run: `f()` is called for
    /// each attempt, retried as configured; delays are `tokio` sleeps.
    ///
    /// # Errors
    /// How the run ended when it did not complete ([`RunError`]).
    pub async fn run<F, Fut, T>(&self, f: F) -> Result<T, RunError<E>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_with_history(f).await.1
    }

    /// [`Task::run`], also returning the [`TaskRun`] with its states.
    pub async fn run_with_history<F, Fut, T>(&self, f: F) -> (TaskRun, Result<T, RunError<E>>)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let timeout = self.timeout;
        drive(self, || attempt_async(&f, timeout)).await
    }

    /// Runs the sync function `f` on the async engine: each attempt is a
    /// plain call on the current thread; delays are `tokio` sleeps. A
    /// timeout cannot interrupt the call: it fails the attempt when the
    /// call returns late.
    ///
    /// # Errors
    /// As [`Task::run`].
    pub async fn run_sync<F, T>(&self, f: F) -> Result<T, RunError<E>>
    where
        F: Fn() -> Result<T, E>,
    {
        self.run_sync_with_history(f).await.1
    }

    /// [`Task::run_sync`], also returning the [`TaskRun`].
    pub async fn run_sync_with_history<F, T>(&self, f: F) -> (TaskRun, Result<T, RunError<E>>)
    where
        F: Fn() -> Result<T, E>,
    {
        let timeout = self.timeout;
        drive(self, || {
            std::future::ready(attempt_sync(&f, timeout, tokio_now))
        })
        .await
    }

    /// Runs the sync function `f` blocking the current thread, with no
    /// runtime needed: delays are thread sleeps (cut short by
    /// cancellation). Timeouts behave as in [`Task::run_sync`].
    ///
    /// # Errors
    /// As [`Task::run`].
    pub fn run_blocking<F, T>(&self, f: F) -> Result<T, RunError<E>>
    where
        F: Fn() -> Result<T, E>,
    {
        self.run_blocking_with_history(f).1
    }

    /// [`Task::run_blocking`], also returning the [`TaskRun`].
    pub fn run_blocking_with_history<F, T>(&self, f: F) -> (TaskRun, Result<T, RunError<E>>)
    where
        F: Fn() -> Result<T, E>,
    {
        let timeout = self.timeout;
        drive_blocking(self, || attempt_sync(&f, timeout, Instant::now))
    }
}
