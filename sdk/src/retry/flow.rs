//! [`Flow`]: retries that re-run a whole function. Tasks called inside a
//! flow attempt are new task runs with a fresh retry budget, and see the
//! flow run and its cancellation token through the ambient context.
//!
//! As in Prefect, a flow retry always passes through `AwaitingRetry` (even
//! with no delay), the new attempt is named `Running`, and the delay is cut
//! to whole seconds (`int(retry_delay_seconds)`). There is no jitter,
//! condition or timeout for flows.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use cfgd_settings::Delays;
use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::context::{self, Context, Tokens};
use super::defaults::{RetryDefaults, Snapshot, with_source};
use super::delay::{IntoRetryDelay, RetryDelay};
use super::error::{ConfigError, RunError};
use super::log::{self, Failure, panic_message, short_type_name};
use super::run::FlowRun;
use super::state::{State, StateName};

/// A flow: a name and retry parameters. Each call of [`run`](Flow::run)
/// (or [`run_blocking`](Flow::run_blocking)) is one [`FlowRun`]; a failed
/// attempt (an error or a panic) re-runs the whole function.
///
/// # Default
/// `retries` and `retry_delay_seconds` left unset are read from the
/// defaults source at the start of each run (`PREFECT_FLOWS_DEFAULT_*`); a
/// value set here wins even when it is 0.
#[derive(Clone)]
pub struct Flow {
    name: Cow<'static, str>,
    retries: Option<u32>,
    retry_delay: Option<RetryDelay>,
    defaults: Option<Arc<dyn RetryDefaults>>,
    cancel: Option<CancellationToken>,
}

impl Flow {
    /// A flow named `name` with every parameter unset.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            retries: None,
            retry_delay: None,
            defaults: None,
            cancel: None,
        }
    }

    /// How many times a failed flow is re-run.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// The delay before each re-run, cut to whole seconds. A number, as in
    /// Prefect; a list or function is accepted too (cfgd extension, since
    /// the defaults setting may be a list).
    ///
    /// # Errors
    /// A negative or non-finite delay, or more than 50 delays.
    pub fn retry_delay_seconds(mut self, delay: impl IntoRetryDelay) -> Result<Self, ConfigError> {
        self.retry_delay = Some(delay.into_retry_delay()?);
        Ok(self)
    }

    /// Reads defaults from `source` instead of the process-wide source.
    pub fn defaults(mut self, source: Arc<dyn RetryDefaults>) -> Self {
        self.defaults = Some(source);
        self
    }

    /// Cancels every run of this flow, and the task runs inside it, when
    /// `token` is cancelled.
    pub fn cancellation_token(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the async function `f` as one flow run.
    ///
    /// # Errors
    /// How the run ended when it did not complete ([`RunError`]).
    pub async fn run<F, Fut, T, E>(&self, f: F) -> Result<T, RunError<E>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        self.run_with_history(f).await.1
    }

    /// [`Flow::run`], also returning the [`FlowRun`] with its states.
    pub async fn run_with_history<F, Fut, T, E>(&self, f: F) -> (FlowRun, Result<T, RunError<E>>)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        let (mut engine, tokens) = match FlowEngine::begin(self) {
            Ok(started) => started,
            Err(invalid) => {
                let (run, error) = *invalid;
                return (run, Err(RunError::Invalid(error)));
            }
        };
        let span = tracing::info_span!(target: "cfgd_sdk::retry", "flow_run", flow_run = %engine.run.name());
        let inner = engine.context(&tokens);
        async move {
            loop {
                if tokens.is_cancelled() {
                    return engine.cancel();
                }
                engine.start_attempt();
                let attempt = async {
                    let fut = match catch_unwind(AssertUnwindSafe(&f)) {
                        Ok(fut) => fut,
                        Err(panic) => return Err(Failure::Panic(panic_message(&*panic))),
                    };
                    match context::scope(inner.clone(), AssertUnwindSafe(fut).catch_unwind()).await
                    {
                        Ok(Ok(value)) => Ok(value),
                        Ok(Err(e)) => Err(Failure::Error(e)),
                        Err(panic) => Err(Failure::Panic(panic_message(&*panic))),
                    }
                };
                let outcome = tokio::select! {
                    biased;
                    () = tokens.cancelled() => return engine.cancel(),
                    outcome = attempt => outcome,
                };
                // A failure that comes with (or from) cancellation is not
                // retried.
                if outcome.is_err() && tokens.is_cancelled() {
                    return engine.cancel();
                }
                match engine.settle(outcome) {
                    Ok(result) => return (engine.run, result),
                    Err(wait) if wait.is_zero() => {}
                    Err(wait) => {
                        tokio::select! {
                            biased;
                            () = tokens.cancelled() => return engine.cancel(),
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Runs the sync function `f` as one flow run, blocking the current
    /// thread (no runtime needed). Tasks it runs with
    /// [`Task::run_blocking`](super::Task::run_blocking) belong to it.
    ///
    /// # Errors
    /// As [`Flow::run`].
    pub fn run_blocking<F, T, E>(&self, f: F) -> Result<T, RunError<E>>
    where
        F: Fn() -> Result<T, E>,
        E: fmt::Display,
    {
        self.run_blocking_with_history(f).1
    }

    /// [`Flow::run_blocking`], also returning the [`FlowRun`].
    pub fn run_blocking_with_history<F, T, E>(&self, f: F) -> (FlowRun, Result<T, RunError<E>>)
    where
        F: Fn() -> Result<T, E>,
        E: fmt::Display,
    {
        let (mut engine, tokens) = match FlowEngine::begin(self) {
            Ok(started) => started,
            Err(invalid) => {
                let (run, error) = *invalid;
                return (run, Err(RunError::Invalid(error)));
            }
        };
        let span = tracing::info_span!(target: "cfgd_sdk::retry", "flow_run", flow_run = %engine.run.name());
        let _entered = span.enter();
        let inner = engine.context(&tokens);
        loop {
            if tokens.is_cancelled() {
                return engine.cancel();
            }
            engine.start_attempt();
            let caught =
                context::scope_blocking(inner.clone(), || catch_unwind(AssertUnwindSafe(&f)));
            let outcome = match caught {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => Err(Failure::Error(e)),
                Err(panic) => Err(Failure::Panic(panic_message(&*panic))),
            };
            if outcome.is_err() && tokens.is_cancelled() {
                return engine.cancel();
            }
            match engine.settle(outcome) {
                Ok(result) => return (engine.run, result),
                Err(wait) => {
                    if !tokens.sleep_blocking(wait) {
                        return engine.cancel();
                    }
                }
            }
        }
    }
}

impl fmt::Debug for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flow")
            .field("name", &self.name)
            .field("retries", &self.retries)
            .field("retry_delay_seconds", &self.retry_delay)
            .field("defaults", &self.defaults.as_deref().map(Snapshot))
            .field("cancellation_token", &self.cancel)
            .finish()
    }
}

/// One flow run in progress.
struct FlowEngine<'f> {
    run: FlowRun,
    delays: Cow<'f, Delays>,
    retried: u32,
}

type Finished<T, E> = (FlowRun, Result<T, RunError<E>>);

impl<'f> FlowEngine<'f> {
    /// Creates the run in `Pending`; also returns the tokens it obeys.
    /// A run that cannot start is returned ended `Failed`, with why.
    fn begin(flow: &'f Flow) -> Result<(Self, Tokens), Box<(FlowRun, ConfigError)>> {
        let ctx = context::current().unwrap_or_default();
        let (retries, delays) = with_source(flow.defaults.as_ref(), |source| {
            let retries = flow.retries.unwrap_or_else(|| source.flow_retries());
            let delays = match &flow.retry_delay {
                Some(delay) => delay.resolve(retries),
                None => Ok(Cow::Owned(source.flow_retry_delay())),
            };
            (retries, delays)
        });
        let mut run = FlowRun::new(flow.name.clone(), retries);
        match delays {
            Ok(delays) => Ok((
                Self {
                    run,
                    delays,
                    retried: 0,
                },
                Tokens {
                    own: flow.cancel.clone(),
                    ambient: ctx.cancel,
                },
            )),
            Err(e) => {
                let state = State::new(StateName::Failed)
                    .with_message(format!("Invalid retry configuration: {e}"));
                log::finished(&state);
                run.history.push(state);
                Err(Box::new((run, e)))
            }
        }
    }

    /// The context the flow's attempts run in: the run, and the token its
    /// tasks obey (the flow's own, else the ambient one).
    fn context(&self, tokens: &Tokens) -> Context {
        Context {
            flow_run: Some(self.run.id()),
            cancel: tokens.own.clone().or_else(|| tokens.ambient.clone()),
        }
    }

    fn start_attempt(&mut self) {
        self.run.history.push(State::new(StateName::Running));
    }

    /// The run's result, or the wait before the next attempt.
    fn settle<T, E: fmt::Display>(
        &mut self,
        outcome: Result<T, Failure<E>>,
    ) -> Result<Result<T, RunError<E>>, Duration> {
        let failure = match outcome {
            Ok(value) => {
                self.finish(State::new(StateName::Completed));
                return Ok(Ok(value));
            }
            Err(failure) => failure,
        };
        log::flow_exception(&failure);
        if self.retried < self.run.retries() {
            self.retried += 1;
            let delay = self.delays.for_retry(self.retried).trunc();
            let wait = Duration::try_from_secs_f64(delay).unwrap_or(Duration::MAX);
            self.run.history.push(State::awaiting_retry(wait));
            log::flow_retry();
            return Err(wait);
        }
        let (state, error) = match failure {
            Failure::Error(e) => {
                let message = format!(
                    "Flow run encountered an exception: {}: {e}",
                    short_type_name::<E>()
                );
                (
                    State::new(StateName::Failed).with_message(message),
                    RunError::Failed(e),
                )
            }
            Failure::Panic(message) => (
                State::new(StateName::Crashed)
                    .with_message(format!("Execution was interrupted by a panic: {message}")),
                RunError::Crashed { message },
            ),
            // Flows have no timeout; the variant is shared with tasks.
            Failure::Timeout(_) => unreachable!("a flow attempt never times out"),
        };
        self.finish(state);
        Ok(Err(error))
    }

    fn cancel<T, E>(mut self) -> Finished<T, E> {
        self.finish(State::new(StateName::Cancelled).with_message("Flow run was cancelled."));
        (self.run, Err(RunError::Cancelled))
    }

    fn finish(&mut self, state: State) {
        log::finished(&state);
        self.run.history.push(state);
    }
}
