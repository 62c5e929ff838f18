//! The task/flow retry engine, with Prefect's semantics.
//!
//! A [`Task`] is a name plus retry parameters — `retries`,
//! `retry_delay_seconds` (a number, a list, or a function of the retry count
//! such as [`exponential_backoff`]; [`Duration`](std::time::Duration)s
//! work wherever seconds do), `retry_jitter_factor`, `retry_condition_fn`
//! (sync or async), `timeout_seconds` — and hooks. Each [`Task::run`] of a
//! function is one [`TaskRun`]: the function is called once per attempt,
//! and every retry adds states to that same run:
//! `Pending, Running, (AwaitingRetry, Retrying)*, <final>`, with no
//! `AwaitingRetry` when the delay is zero.
//!
//! An attempt that returns `Ok` completes the run. One that returns `Err`
//! (or [`Fail::Message`], Prefect's `return Failed(message=…)`), panics, or
//! exceeds the timeout is retried while retries remain (and the condition,
//! if any, agrees); the final state is then `Failed`, `Crashed` or
//! `Failed`/`TimedOut`, which [`RunError`] mirrors. A cancelled run ends
//! `Cancelled` and is never retried. A [`Flow`] re-runs a whole function,
//! with hooks and a timeout too; each task call inside it is a new run with
//! a fresh retry count, kept by the [`FlowRun`]. Tasks and flows run on one
//! engine; builder setters never fail mid-chain (`build()`, or the start of
//! a run, reports an invalid parameter).
//!
//! Parameters a task or flow leaves unset come from the settings *at the
//! start of each run* ([`RetryDefaults`], [`set_global_defaults`]) — unlike
//! Prefect, which reads them once when the task is defined — so a
//! `cfg set` reaches the next run of a running service. A run reads them
//! all from one view, and records its revision
//! ([`TaskRun::settings_revision`]). A value set at the call site wins,
//! even 0.
//!
//! Beyond Prefect, each configurable through settings: a retry budget per
//! task name ([`budget`]), server-suggested delays ([`suggested`]), and a
//! `tower::retry::Policy` adapter (`tower` feature, [`tower`](mod@tower)).
//!
//! # Words
//! Log lines are Prefect's, through `tracing` with target
//! `cfgd_sdk::retry` in a span carrying the run's name and settings
//! revision. Where Prefect prints `repr(exc)`, cfgd prints the error's
//! `Debug`: `Task run failed with exception: "boom" - Retry 1/2 will start
//! 5 second(s) from now`; where Prefect prints `str(exc)`, the error's
//! `Display` after its type name: `Finished in state Failed('Task run
//! encountered an exception &str: boom')`. A timeout is Prefect's
//! `TaskRunTimeoutError('Scope timed out after 0.05 second(s).')`. The
//! `#[task]` and `#[flow]` attribute macros ([`macro@task`],
//! [`macro@flow`]) build all this from a function definition.
//!
//! # Layout
//! - [`task`](mod@task) — [`Task`] and its task-only parameters.
//! - [`flow`](mod@flow) — [`Flow`], retries of a whole function.
//! - `params` — what tasks and flows share, and their shared setters.
//! - `kind` — what differs between a task run and a flow run.
//! - `engine` — the one engine: states, decisions, delays, hooks.
//! - `drive` — the async and blocking loops, and the entry points.
//! - [`condition`] — `retry_condition_fn`, sync and async.
//! - [`outcome`] — [`Fail`], what an attempt may return.
//! - [`budget`] — [`RetryBudget`], the retry budget.
//! - [`suggested`] — [`SuggestedDelay`], server-suggested delays.
//! - [`delay`] — [`RetryDelay`], [`IntoRetryDelay`], [`exponential_backoff`].
//! - [`jitter`] — Prefect's `clamped_poisson_interval`.
//! - [`state`] — [`State`], [`StateName`], [`StateType`].
//! - [`run`] — [`TaskRun`], [`FlowRun`], [`RunId`].
//! - [`defaults`] — [`RetryDefaults`], [`Defaults`], the global source, the
//!   env fallback.
//! - [`context`] — the ambient flow run and [`with_cancellation`].
//! - [`error`] — [`ConfigError`], [`RunError`].
//! - [`tower`](mod@tower) — [`RetryPolicy`], a `tower::retry::Policy`.
//! - `log` — the log lines.
//!
//! # Example
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use cfgd_sdk::retry::{RunError, Task};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let calls = AtomicU32::new(0);
//! let task = Task::new("fetch").retries(2).retry_delay_seconds([1, 10]);
//!
//! let (run, result) = task
//!     .run_with_history(|| async {
//!         match calls.fetch_add(1, Ordering::Relaxed) {
//!             0 => Err("connection refused"),
//!             _ => Ok(42),
//!         }
//!     })
//!     .await;
//!
//! assert_eq!(result, Ok(42));
//! assert_eq!(run.run_count(), 2);
//! assert_eq!(
//!     run.state_names(),
//!     ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
//! );
//!
//! // With no retries left the error comes back, wrapped.
//! let failed = Task::new("once").retries(0).run(|| async { Err::<(), _>("boom") }).await;
//! assert_eq!(failed, Err(RunError::Failed("boom")));
//! # Ok(())
//! # }
//! ```
//!
//! # Macros
//! The function keeps its name and parameters and returns
//! `Result<T, RunError<E>>`; `<name>_with_history` also returns the run.
//! ```
//! use cfgd_sdk::retry::{RunError, exponential_backoff, task};
//!
//! #[task(retries = 3, retry_delay_seconds = exponential_backoff(10))]
//! async fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
//!     text.trim().parse()
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! assert_eq!(parse(" 7 ").await, Ok(7));
//! let (run, result) = parse_with_history("seven").await;
//! assert!(matches!(result, Err(RunError::Failed(_))));
//! assert_eq!(run.run_count(), 4); // after waiting 10, 20 and 40 seconds
//! # }
//! ```

pub mod budget;
pub mod condition;
pub mod context;
pub mod defaults;
pub mod delay;
mod drive;
mod engine;
pub mod error;
pub mod flow;
pub mod jitter;
mod kind;
mod log;
pub mod outcome;
mod params;
pub mod run;
pub mod state;
pub mod suggested;
pub mod task;
#[cfg(feature = "tower")]
pub mod tower;

pub use budget::{BudgetSettings, RetryBudget};
pub use cfgd_macros::{flow, task};
pub use condition::{AsyncConditionFn, ConditionFn};
pub use context::with_cancellation;
pub use defaults::{
    Defaults, FixedDefaults, RetryDefaults, clear_global_defaults, global_defaults,
    set_global_defaults,
};
pub use delay::{IntoRetryDelay, RetryDelay, Seconds, exponential_backoff};
pub use error::{ConfigError, RunError};
pub use flow::Flow;
pub use outcome::{Fail, IntoAttempt};
pub use run::{FlowRun, RunId, TaskRun};
pub use state::{State, StateName, StateType};
pub use suggested::{SuggestFn, SuggestedDelay};
pub use task::{HookFn, Task};
pub use tokio_util::sync::CancellationToken;
#[cfg(feature = "tower")]
pub use tower::RetryPolicy;

/// Support for the code the `#[task]` and `#[flow]` macros generate; not a
/// stable API.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;

    use super::RunError;

    /// The result type of a function returning `Result<T, E>`, with its
    /// error wrapped in [`RunError`].
    pub trait TaskOutput {
        /// The success type.
        type Ok;
        /// The error type.
        type Err;
        /// `Result<Self::Ok, RunError<Self::Err>>`.
        type Retried;
    }

    impl<T, E> TaskOutput for Result<T, E> {
        type Ok = T;
        type Err = E;
        type Retried = Result<T, RunError<E>>;
    }

    /// Fixes an async body's output type, so `?` inside it infers.
    pub fn async_body<R, F: Future<Output = R>>(body: F) -> F {
        body
    }

    /// Unwraps a parameter given in `#[task(...)]` / `#[flow(...)]`: an
    /// invalid one is a bug in the definition, reported like Prefect's
    /// error at decoration time.
    #[track_caller]
    pub fn valid<T>(item: &str, value: Result<T, super::ConfigError>) -> T {
        use super::ConfigError;
        match value {
            Ok(v) => v,
            Err(e) => {
                let what = match e {
                    ConfigError::TooManyDelays | ConfigError::InvalidDelay(_) => {
                        "retry_delay_seconds"
                    }
                    ConfigError::JitterFactor => "retry_jitter_factor",
                    ConfigError::Timeout => "timeout_seconds",
                    ConfigError::AsyncCondition => "retry_condition_fn",
                };
                panic!("invalid `{what}` in #[{item}]: {e}")
            }
        }
    }
}
