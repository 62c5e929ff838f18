//! Driving the engine: the async loop (tokio sleeps, timeouts and
//! cancellation) and the blocking loop (thread sleeps, no runtime), one
//! each for every kind of run, and the entry points of [`Task`] and
//! [`Flow`] on them.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use futures_util::FutureExt;
use tracing::Instrument;

use super::context::{self, Context, Tokens};
use super::engine::{Engine, Invalid, Step};
use super::error::RunError;
use super::flow::{Flow, FlowKind};
use super::kind::{Kind, RunKind};
use super::log::panic_message;
use super::outcome::{Failure, IntoAttempt, TimeoutError};
use super::params::Timeout;
use super::run::{FlowRun, Record, TaskRun};
use super::task::{Task, TaskKind};

type Finished<K, T> = (<K as Kind>::Run, Result<T, RunError<<K as Kind>::Err>>);

/// What one attempt runs with: its timeout and kind. A flow's attempt is
/// also lent the context its tasks see (a task's is lent none), so a task
/// attempt carries nothing it has to drop.
#[derive(Clone, Copy)]
pub(crate) struct Attempt {
    pub(crate) timeout: Option<Timeout>,
    pub(crate) kind: RunKind,
}

/// A run as it starts: its engine (or, when a parameter is invalid, its
/// record ended `Failed`, and why), the tokens it obeys, its span, and the
/// contexts it runs in and sets.
///
/// The loops keep it where [`start`] built it and borrow its parts: it is
/// a few hundred bytes, and each move of it cost about as much as a clock
/// read.
struct Started<K: Kind> {
    engine: Result<Engine<K>, Invalid<K::Run>>,
    tokens: Tokens,
    span: tracing::Span,
    outer: Context,
    inner: Option<Context>,
}

fn start<K: Kind>(owner: &K::Owner) -> Started<K>
where
    K::Err: fmt::Debug + fmt::Display,
{
    let outer = context::current().unwrap_or_default();
    let engine = Engine::<K>::begin(owner, &outer);
    let Ok(started) = &engine else {
        return Started {
            engine,
            tokens: Tokens::default(),
            span: tracing::Span::none(),
            outer,
            inner: None,
        };
    };
    let core = started.run.core();
    let span = match K::KIND {
        RunKind::Task => tracing::info_span!(
            target: "cfgd_sdk::retry", "task_run",
            task_run = %core.name, revision = tracing::field::Empty
        ),
        RunKind::Flow => tracing::info_span!(
            target: "cfgd_sdk::retry", "flow_run",
            flow_run = %core.name, revision = tracing::field::Empty
        ),
    };
    if let Some(revision) = core.policy.settings_revision {
        span.record("revision", revision);
    }
    let own = K::params(owner).cancel.clone();
    let inner = K::inner_context(&started.run, &outer, own.as_ref());
    let tokens = Tokens {
        own,
        ambient: outer.cancel.clone(),
    };
    Started {
        engine,
        tokens,
        span,
        outer,
        inner,
    }
}

impl<K: Kind> Started<K> {
    /// The record of a run that never started, ended `Failed`.
    fn never_started<T>(self) -> Finished<K, T> {
        let Err(invalid) = self.engine else {
            unreachable!("only an invalid run never starts")
        };
        let (run, error) = *invalid;
        (run, Err(RunError::Invalid(error)))
    }
}

/// The record of a run that ran, once it has ended with `result`. A
/// macro, not a method: the run's state is taken apart where it lies
/// (passing it whole copied it).
macro_rules! finished {
    ($started:ident, $result:expr) => {{
        let Ok(Engine { run, .. }) = $started.engine else {
            unreachable!("a run that ran has its engine")
        };
        K::report(&run, &$started.outer);
        (run, $result)
    }};
}

/// The async attempt loop.
pub(crate) async fn drive<K, T, A, AF>(owner: &K::Owner, attempt: A) -> Finished<K, T>
where
    K: Kind,
    K::Err: fmt::Debug + fmt::Display,
    A: Fn(Attempt, Option<&Context>) -> AF,
    AF: Future<Output = Result<T, Failure<K::Err>>>,
{
    let mut started = start::<K>(owner);
    let Started {
        engine,
        tokens,
        span,
        inner,
        ..
    } = &mut started;
    let Ok(engine) = engine else {
        return started.never_started();
    };
    let span = std::mem::replace(span, tracing::Span::none());
    let watched = tokens.any();
    let this = Attempt {
        timeout: K::params(owner).timeout(),
        kind: K::KIND,
    };
    let result = async {
        loop {
            if tokens.is_cancelled() {
                return engine.cancel();
            }
            engine.start_attempt(owner);
            // The outcome goes straight on to `settle`: wrapping it (in an
            // `Option` for the cancelled case) copied it through memory
            // just after it was written, a stall on every attempt.
            let outcome = if watched {
                tokio::select! {
                    biased;
                    () = tokens.cancelled() => {
                        K::end_attempt(&mut engine.run, inner.as_ref());
                        return engine.cancel();
                    }
                    outcome = attempt(this, inner.as_ref()) => outcome,
                }
            } else {
                attempt(this, inner.as_ref()).await
            };
            K::end_attempt(&mut engine.run, inner.as_ref());
            // A failure that comes with (or from) cancellation is not retried.
            if watched && outcome.is_err() && tokens.is_cancelled() {
                return engine.cancel();
            }
            let mut step = engine.settle(owner, outcome);
            if let Step::Ask(answer, name, failure) = step {
                let answered = tokio::select! {
                    biased;
                    () = tokens.cancelled() => return engine.cancel(),
                    answered = AssertUnwindSafe(answer).catch_unwind() => answered,
                };
                let retry = answered.unwrap_or_else(|panic| {
                    engine.condition_panicked(owner, name, &panic_message(&*panic));
                    false
                });
                step = engine.answer(owner, failure, retry);
            }
            match step {
                Step::Done(result) => return result,
                Step::Ask(..) => unreachable!("answered above"),
                Step::Retry(wait) if wait.is_zero() => {}
                Step::Retry(wait) if watched => {
                    tokio::select! {
                        biased;
                        () = tokens.cancelled() => return engine.cancel(),
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                Step::Retry(wait) => tokio::time::sleep(wait).await,
            }
        }
    }
    .instrument(span)
    .await;
    finished!(started, result)
}

/// The blocking attempt loop (no runtime needed).
pub(crate) fn drive_blocking<K, T>(
    owner: &K::Owner,
    attempt: impl Fn(Attempt, Option<&Context>) -> Result<T, Failure<K::Err>>,
) -> Finished<K, T>
where
    K: Kind,
    K::Err: fmt::Debug + fmt::Display,
{
    let mut started = start::<K>(owner);
    let Started {
        engine,
        tokens,
        span,
        inner,
        ..
    } = &mut started;
    let Ok(engine) = engine else {
        return started.never_started();
    };
    let this = Attempt {
        timeout: K::params(owner).timeout(),
        kind: K::KIND,
    };
    let result = span.in_scope(|| {
        loop {
            if tokens.is_cancelled() {
                return engine.cancel();
            }
            engine.start_attempt(owner);
            let outcome = attempt(this, inner.as_ref());
            K::end_attempt(&mut engine.run, inner.as_ref());
            if outcome.is_err() && tokens.is_cancelled() {
                return engine.cancel();
            }
            let mut step = engine.settle(owner, outcome);
            if let Step::Ask(answer, name, failure) = step {
                let retry =
                    catch_unwind(AssertUnwindSafe(|| block_on(answer))).unwrap_or_else(|panic| {
                        engine.condition_panicked(owner, name, &panic_message(&*panic));
                        false
                    });
                step = engine.answer(owner, failure, retry);
            }
            match step {
                Step::Done(result) => return result,
                Step::Ask(..) => unreachable!("answered above"),
                Step::Retry(wait) => {
                    if !tokens.sleep_blocking(wait) {
                        return engine.cancel();
                    }
                }
            }
        }
    });
    finished!(started, result)
}

/// Polls `fut` to completion on this thread, parking between polls (an
/// async condition in a blocking run): the `block_on` of `std::task::Wake`'s
/// documentation. The future cannot use tokio's timers or I/O here.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::sync::Arc::new(Unpark(std::thread::current())).into();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(output) => return output,
            std::task::Poll::Pending => std::thread::park(),
        }
    }
}

/// One async attempt: panics caught, the timeout applied. (A flow installs
/// its context around it, so a task's attempt future stays small.)
async fn attempt_async<F, Fut, R, T, E>(f: &F, this: Attempt) -> Result<T, Failure<E>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = R>,
    R: IntoAttempt<T, E>,
{
    let Attempt { timeout, kind } = this;
    let fut = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(fut) => AssertUnwindSafe(fut).catch_unwind(),
        Err(panic) => return Err(Failure::Panic(panic_message(&*panic))),
    };
    let caught = match timeout {
        None => Ok(fut.await),
        Some(t) => tokio::time::timeout(t.limit, fut).await.map_err(|_| t),
    };
    match caught {
        Ok(Ok(output)) => output.into_attempt().map_err(Failure::from),
        Ok(Err(panic)) => Err(Failure::Panic(panic_message(&*panic))),
        Err(t) => Err(Failure::Timeout(TimeoutError {
            kind,
            seconds: t.seconds,
        })),
    }
}

/// One async attempt of a flow: [`attempt_async`] inside the flow's
/// context.
fn flow_attempt<'f, F, Fut, R, T, E>(
    f: &'f F,
    this: Attempt,
    context: Option<&Context>,
) -> impl Future<Output = Result<T, Failure<E>>> + use<'f, F, Fut, R, T, E>
where
    F: Fn() -> Fut,
    Fut: Future<Output = R>,
    R: IntoAttempt<T, E>,
{
    let context = context.expect("a flow attempt has its context").clone();
    context::scope(context, attempt_async(f, this))
}

/// One sync attempt: panics caught; a late return counts as a timeout.
fn attempt_sync<F, R, T, E>(
    f: &F,
    this: Attempt,
    context: Option<&Context>,
    now: fn() -> Instant,
) -> Result<T, Failure<E>>
where
    F: Fn() -> R,
    R: IntoAttempt<T, E>,
{
    let started = this.timeout.map(|_| now());
    let call = || catch_unwind(AssertUnwindSafe(f));
    let caught = match context {
        Some(context) => context::scope_blocking(context.clone(), call),
        None => call(),
    };
    if let (Some(t), Some(started)) = (this.timeout, started)
        && now().saturating_duration_since(started) > t.limit
    {
        return Err(Failure::Timeout(TimeoutError {
            kind: this.kind,
            seconds: t.seconds,
        }));
    }
    match caught {
        Ok(output) => output.into_attempt().map_err(Failure::from),
        Err(panic) => Err(Failure::Panic(panic_message(&*panic))),
    }
}

fn tokio_now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl<E: fmt::Debug + fmt::Display> Task<E> {
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
        // Not through `run_with_history`: each layer of future copies the
        // whole run's state once more.
        drive::<TaskKind<E>, _, _, _>(self, |this, _| attempt_async(&f, this))
            .await
            .1
    }

    /// [`Task::run`], also returning the [`TaskRun`] with its states.
    pub async fn run_with_history<F, Fut, T>(&self, f: F) -> (TaskRun, Result<T, RunError<E>>)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        drive::<TaskKind<E>, _, _, _>(self, |this, _| attempt_async(&f, this)).await
    }

    /// [`Task::run_with_history`] for a function that may end an attempt
    /// with a Failed state and no error: it returns `Result<T, Fail<E>>`
    /// ([`Fail::Message`](super::Fail) is Prefect's
    /// `return Failed(message=…)`), or `Result<T, E>`.
    pub async fn run_returning<F, Fut, R, T>(&self, f: F) -> (TaskRun, Result<T, RunError<E>>)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = R>,
        R: IntoAttempt<T, E>,
    {
        drive::<TaskKind<E>, _, _, _>(self, |this, _| attempt_async(&f, this)).await
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
        drive::<TaskKind<E>, _, _, _>(self, |this, context| {
            std::future::ready(attempt_sync(&f, this, context, tokio_now))
        })
        .await
        .1
    }

    /// [`Task::run_sync`], also returning the [`TaskRun`].
    pub async fn run_sync_with_history<F, T>(&self, f: F) -> (TaskRun, Result<T, RunError<E>>)
    where
        F: Fn() -> Result<T, E>,
    {
        drive::<TaskKind<E>, _, _, _>(self, |this, context| {
            std::future::ready(attempt_sync(&f, this, context, tokio_now))
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
        self.run_blocking_returning(f)
    }

    /// [`Task::run_blocking_with_history`] for a function returning
    /// `Result<T, Fail<E>>`, as [`Task::run_returning`].
    pub fn run_blocking_returning<F, R, T>(&self, f: F) -> (TaskRun, Result<T, RunError<E>>)
    where
        F: Fn() -> R,
        R: IntoAttempt<T, E>,
    {
        drive_blocking::<TaskKind<E>, _>(self, |this, context| {
            attempt_sync(&f, this, context, Instant::now)
        })
    }
}

impl Flow {
    /// Runs the async function `f` as one flow run; each attempt runs the
    /// whole function, with tasks inside it belonging to this run.
    ///
    /// # Errors
    /// How the run ended when it did not complete ([`RunError`]).
    pub async fn run<F, Fut, T, E>(&self, f: F) -> Result<T, RunError<E>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Debug + fmt::Display,
    {
        drive::<FlowKind<E>, _, _, _>(self, |this, context| flow_attempt(&f, this, context))
            .await
            .1
    }

    /// [`Flow::run`], also returning the [`FlowRun`] with its states and
    /// task runs.
    pub async fn run_with_history<F, Fut, T, E>(&self, f: F) -> (FlowRun, Result<T, RunError<E>>)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Debug + fmt::Display,
    {
        drive::<FlowKind<E>, _, _, _>(self, |this, context| flow_attempt(&f, this, context)).await
    }

    /// Runs the sync function `f` as one flow run, blocking the current
    /// thread (no runtime needed). Tasks it runs with
    /// [`Task::run_blocking`] belong to it.
    ///
    /// # Errors
    /// As [`Flow::run`].
    pub fn run_blocking<F, T, E>(&self, f: F) -> Result<T, RunError<E>>
    where
        F: Fn() -> Result<T, E>,
        E: fmt::Debug + fmt::Display,
    {
        self.run_blocking_with_history(f).1
    }

    /// [`Flow::run_blocking`], also returning the [`FlowRun`].
    pub fn run_blocking_with_history<F, T, E>(&self, f: F) -> (FlowRun, Result<T, RunError<E>>)
    where
        F: Fn() -> Result<T, E>,
        E: fmt::Debug + fmt::Display,
    {
        drive_blocking::<FlowKind<E>, _>(self, |this, context| {
            attempt_sync(&f, this, context, Instant::now)
        })
    }
}
