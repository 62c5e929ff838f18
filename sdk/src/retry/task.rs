//! [`Task`]: a named set of retry parameters and hooks. Setters never fail
//! mid-chain; [`Task::build`] or the start of a run reports an invalid one.
//! Running it is the one engine's (`engine.rs`, `drive.rs`).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

use cfgd_settings::Delays;

use super::budget::RetryBudget;
use super::condition::{Condition, ConditionFn};
use super::context::Context;
use super::defaults::Defaults;
use super::error::ConfigError;
use super::jitter::JitterRng;
use super::kind::{self, Consult, Kind, RunKind};
use super::log::{self, panic_message};
use super::outcome::Failure;
use super::params::{Checked, HookList, Named, Params, shared_builder};
use super::run::{RunCore, TaskRun};
use super::state::State;
use super::suggested::{SuggestFn, SuggestedDelay};

/// A hook: `(task, task_run, state)`.
pub type HookFn<E> = dyn Fn(&Task<E>, &TaskRun, &State<E>) + Send + Sync;

/// A task: a name, retry parameters and hooks. Each call of
/// [`run`](Task::run) (or its sync and blocking forms) with the task's
/// function is one [`TaskRun`].
///
/// `E` is the error type of the function; conditions and hooks see it
/// through [`State::error`].
///
/// # Default
/// Every retry parameter left unset is read from the defaults source at
/// the start of each run ([`Task::defaults`], else the process-wide source,
/// see [`set_global_defaults`](super::set_global_defaults)); a value set
/// here wins even when it is 0. No timeout, no condition, no hooks, no
/// suggested delays, jitter drawn from an OS-seeded generator; the retry
/// budget of the task's name when the settings configure one.
pub struct Task<E> {
    pub(crate) params: Params<Task<E>, TaskRun, E>,
    jitter: Option<Checked<f64>>,
    condition: Option<Condition<E>>,
    suggested: Option<Named<SuggestFn<E>>>,
    rng: JitterRng,
    budget: OnceLock<Arc<RetryBudget>>,
}

impl<E> Task<E> {
    /// A task named `name` with every parameter unset.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            params: Params::new(name.into()),
            jitter: None,
            condition: None,
            suggested: None,
            rng: JitterRng::default(),
            budget: OnceLock::new(),
        }
    }

    shared_builder!(Task<E>, TaskRun, E, "task");

    /// Jitter for each non-zero delay μ: Prefect's clamped Poisson
    /// interval, within `[μ·log2(2^k/(2^k−1)), μ·k]` for `k = 1 + factor`.
    /// 0 means no jitter. A negative or non-finite factor
    /// (`` `retry_jitter_factor` must be >= 0. ``) is reported by
    /// [`Task::build`] or when a run begins.
    pub fn retry_jitter_factor(mut self, factor: impl Into<f64>) -> Self {
        let factor = factor.into();
        self.jitter = Some(if factor.is_finite() && factor >= 0.0 {
            Ok(factor)
        } else {
            Err(ConfigError::JitterFactor)
        });
        self
    }

    /// Decides whether a failed attempt is retried; consulted only while
    /// retries remain. It gets the task, the run (its state is still the
    /// failed attempt's `Running`/`Retrying`, its `run_count` the attempt
    /// number) and a state describing the failure: `Failed` with
    /// [`State::error`] for a returned error (its message
    /// `Task run encountered unexpected exception: <Debug>`), `Failed`
    /// without one for a returned [`Fail::Message`](super::Fail),
    /// `TimedOut` for a timeout, `Crashed` for a panic. `false` ends the run
    /// `Failed`; a panic in it is logged and means no retry.
    pub fn retry_condition_fn<C>(mut self, condition: C) -> Self
    where
        C: Fn(&Task<E>, &TaskRun, &State<E>) -> bool + Send + Sync + 'static,
    {
        self.condition = Some(Condition::Sync(Named {
            name: std::any::type_name::<C>(),
            f: Arc::new(condition) as Arc<ConditionFn<E>>,
        }));
        self
    }

    /// An async `retry_condition_fn`: as
    /// [`retry_condition_fn`](Task::retry_condition_fn), returning a
    /// future of the answer. It is awaited before the retry (a blocking run
    /// polls it on its own thread); cancellation while it runs ends the run
    /// `Cancelled`. The future may not borrow the arguments: take what it
    /// needs first.
    pub fn retry_condition_fn_async<C, Fut>(mut self, condition: C) -> Self
    where
        C: Fn(&Task<E>, &TaskRun, &State<E>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        let name = std::any::type_name::<C>();
        self.condition = Some(Condition::Async(Named {
            name,
            f: Arc::new(move |t: &Task<E>, r: &TaskRun, s: &State<E>| {
                Box::pin(condition(t, r, s)) as futures_util::future::BoxFuture<'static, bool>
            }),
        }));
        self
    }

    /// Reads the delay a failed attempt's error suggests (a cfgd
    /// extension): when `f` returns one, the retry waits it instead of the
    /// scheduled delay, without jitter, clamped to
    /// `PREFECT_TASKS_DEFAULT_RETRY_MAX_SUGGESTED_DELAY_SECONDS`; the log
    /// line names its source. See [`SuggestedDelay::from_retry_after`] and
    /// [`SuggestedDelay::from_grpc_status`].
    pub fn suggested_delay_fn<F>(mut self, f: F) -> Self
    where
        F: Fn(&E) -> Option<SuggestedDelay> + Send + Sync + 'static,
    {
        self.suggested = Some(Named {
            name: std::any::type_name::<F>(),
            f: Arc::new(f),
        });
        self
    }

    /// Seeds this task's own jitter generator, for reproducible delays.
    /// Clones of the task share the stream.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.rng = JitterRng::seeded(seed);
        self
    }

    /// Draws jitter from the stream of `other` (the `#[task]` macro's way
    /// to keep one stream across calls of a task it builds per call).
    #[doc(hidden)]
    pub fn __share_jitter<F>(mut self, other: &Task<F>) -> Self {
        self.rng = other.rng.clone();
        self
    }

    /// `retry_jitter_factor` as set here (`None` when unset or invalid).
    pub fn configured_retry_jitter_factor(&self) -> Option<f64> {
        self.jitter.as_ref().and_then(|j| j.as_ref().ok().copied())
    }

    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn condition(&self) -> Option<&Condition<E>> {
        self.condition.as_ref()
    }

    /// Every parameter valid, or the first that is not.
    fn check(&self) -> Result<(), ConfigError> {
        self.params.check()?;
        match &self.jitter {
            Some(Err(e)) => Err(e.clone()),
            _ => Ok(()),
        }
    }
}

impl<E> Clone for Task<E> {
    fn clone(&self) -> Self {
        Self {
            params: self.params.clone(),
            jitter: self.jitter.clone(),
            condition: self.condition.clone(),
            suggested: self.suggested.clone(),
            rng: self.rng.clone(),
            budget: self.budget.clone(),
        }
    }
}

impl<E> fmt::Debug for Task<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.params;
        f.debug_struct("Task")
            .field("name", &p.name)
            .field("retries", &p.retries)
            .field("retry_delay_seconds", &p.retry_delay)
            .field("retry_jitter_factor", &self.jitter)
            .field("timeout_seconds", &p.timeout)
            .field("retry_condition_fn", &self.condition)
            .field("suggested_delay_fn", &self.suggested)
            .field("hooks", &p.hooks)
            .field(
                "defaults",
                &p.defaults.as_deref().map(super::defaults::Snapshot),
            )
            .field("cancellation_token", &p.cancel)
            .finish_non_exhaustive()
    }
}

/// The task kind of run, for the engine.
pub(crate) struct TaskKind<E>(PhantomData<fn() -> E>);

impl<E> Kind for TaskKind<E> {
    type Owner = Task<E>;
    type Run = TaskRun;
    type Err = E;
    type HookErr = E;

    const KIND: RunKind = RunKind::Task;

    fn params(owner: &Task<E>) -> &Params<Task<E>, TaskRun, E> {
        &owner.params
    }

    fn new_run(owner: &Task<E>, context: &Context, core: RunCore) -> TaskRun {
        TaskRun::new(owner.params.name.clone(), context.flow_run, core)
    }

    fn default_retries(d: &Defaults<'_>) -> u32 {
        d.task_retries
    }

    fn default_delay<'a>(d: &Defaults<'a>) -> &'a Delays {
        d.task_retry_delay
    }

    fn check(owner: &Task<E>) -> Result<(), ConfigError> {
        owner.check()
    }

    fn jitter(owner: &Task<E>, d: &Defaults<'_>) -> Option<f64> {
        match &owner.jitter {
            Some(j) => j.as_ref().ok().copied(),
            None => d.task_retry_jitter_factor,
        }
    }

    fn draw_jitter(owner: &Task<E>, base: f64, factor: f64) -> f64 {
        owner.rng.jitter(base, factor)
    }

    fn budget(owner: &Task<E>) -> Option<&RetryBudget> {
        Some(
            owner
                .budget
                .get_or_init(|| RetryBudget::named(&owner.params.name)),
        )
    }

    fn suggested(owner: &Task<E>, error: &E) -> Option<SuggestedDelay> {
        owner.suggested.as_ref().and_then(|s| (s.f)(error))
    }

    fn has_condition(owner: &Task<E>) -> bool {
        owner.condition.is_some()
    }

    fn consult(
        owner: &Task<E>,
        run: &TaskRun,
        state: State,
        failure: Failure<E>,
    ) -> (Consult, Failure<E>) {
        let Some(condition) = &owner.condition else {
            return (Consult::Absent, failure);
        };
        let name = condition.name();
        let ask = |state: &State<E>| {
            catch_unwind(AssertUnwindSafe(|| match condition {
                Condition::Sync(c) => Consult::Answer((c.f)(owner, run, state)),
                Condition::Async(c) => Consult::Pending((c.f)(owner, run, state), name),
            }))
            .unwrap_or_else(|panic| {
                log::condition_panicked(name, &owner.params.name, &panic_message(&*panic));
                Consult::Answer(false)
            })
        };
        match failure {
            Failure::Error(e) => {
                let lent = state.lend(Some(e));
                let answer = ask(&lent);
                let (_, e) = lent.into_error();
                (
                    answer,
                    Failure::Error(e.expect("the error was lent, not taken")),
                )
            }
            other => (ask(&state.lend(None)), other),
        }
    }

    fn fire(
        owner: &Task<E>,
        run: &TaskRun,
        hooks: &HookList<Task<E>, TaskRun, E>,
        state: State,
        error: Option<E>,
    ) -> Option<E> {
        let lent = state.lend(error);
        kind::call_hooks(owner, run, hooks, &lent);
        lent.into_error().1
    }

    fn report(run: &TaskRun, outer: &Context) {
        if let Some(runs) = &outer.task_runs {
            runs.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(run.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_never_fail_and_build_reports_prefects_messages() {
        let t = Task::<String>::new("t");
        assert_eq!(
            t.clone()
                .retry_jitter_factor(-0.1)
                .build()
                .unwrap_err()
                .to_string(),
            "`retry_jitter_factor` must be >= 0."
        );
        assert_eq!(
            t.clone().retry_jitter_factor(f64::NAN).build().unwrap_err(),
            ConfigError::JitterFactor
        );
        assert_eq!(
            t.clone()
                .retry_delay_seconds(vec![1; 51])
                .build()
                .unwrap_err()
                .to_string(),
            "Can not configure more than 50 retry delays per task."
        );
        assert_eq!(
            t.clone().timeout_seconds(-1).build().unwrap_err(),
            ConfigError::Timeout
        );
        // A later valid value replaces an invalid one.
        assert!(
            t.clone()
                .retry_delay_seconds(-1)
                .retry_delay_seconds(2)
                .build()
                .is_ok()
        );
        let t = t.timeout_seconds(0).retries(0).build().unwrap();
        assert_eq!(t.configured_timeout_seconds(), None);
        assert_eq!(t.configured_retries(), Some(0));
        let t = t.timeout(std::time::Duration::from_millis(1500));
        assert_eq!(t.configured_timeout_seconds(), Some(1.5));
    }

    #[test]
    fn debug_names_hooks_and_condition() {
        fn only_io(_: &Task<String>, _: &TaskRun, _: &State<String>) -> bool {
            true
        }
        let t = Task::new("t")
            .retry_condition_fn(only_io)
            .on_failure(|_, _, _| {});
        let shown = format!("{t:?}");
        assert!(shown.contains("only_io"), "{shown}");
        assert!(shown.contains("{{closure}}"), "{shown}");
    }
}
