//! [`Task`]: a named set of retry parameters and hooks, validated when set.
//! Running it is in `engine.rs`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::defaults::RetryDefaults;
use super::delay::{IntoRetryDelay, RetryDelay};
use super::error::ConfigError;
use super::jitter::JitterRng;
use super::run::TaskRun;
use super::state::State;

/// A `retry_condition_fn`: `(task, task_run, state) -> retry?`.
pub type ConditionFn<E> = dyn Fn(&Task<E>, &TaskRun, &State<E>) -> bool + Send + Sync;

/// A hook: `(task, task_run, state)`.
pub type HookFn<E> = dyn Fn(&Task<E>, &TaskRun, &State<E>) + Send + Sync;

/// A callback and its name (its type name), for log lines.
pub(crate) struct Named<F: ?Sized> {
    pub(crate) name: &'static str,
    pub(crate) f: Arc<F>,
}

impl<F: ?Sized> Clone for Named<F> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            f: self.f.clone(),
        }
    }
}

impl<F: ?Sized> fmt::Debug for Named<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// The hooks of a task, by event.
pub(crate) struct Hooks<E> {
    pub(crate) on_running: Vec<Named<HookFn<E>>>,
    pub(crate) on_retry: Vec<Named<HookFn<E>>>,
    pub(crate) on_failure: Vec<Named<HookFn<E>>>,
    pub(crate) on_completion: Vec<Named<HookFn<E>>>,
}

impl<E> Clone for Hooks<E> {
    fn clone(&self) -> Self {
        Self {
            on_running: self.on_running.clone(),
            on_retry: self.on_retry.clone(),
            on_failure: self.on_failure.clone(),
            on_completion: self.on_completion.clone(),
        }
    }
}

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
/// here wins even when it is 0. No timeout, no condition, no hooks, jitter
/// drawn from an OS-seeded generator.
pub struct Task<E> {
    pub(crate) name: Cow<'static, str>,
    pub(crate) retries: Option<u32>,
    pub(crate) retry_delay: Option<RetryDelay>,
    pub(crate) jitter: Option<f64>,
    pub(crate) timeout: Option<(Duration, f64)>,
    pub(crate) condition: Option<Named<ConditionFn<E>>>,
    pub(crate) hooks: Hooks<E>,
    pub(crate) defaults: Option<Arc<dyn RetryDefaults>>,
    pub(crate) rng: JitterRng,
    pub(crate) cancel: Option<CancellationToken>,
}

impl<E> Task<E> {
    /// A task named `name` with every parameter unset.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            retries: None,
            retry_delay: None,
            jitter: None,
            timeout: None,
            condition: None,
            hooks: Hooks {
                on_running: Vec::new(),
                on_retry: Vec::new(),
                on_failure: Vec::new(),
                on_completion: Vec::new(),
            },
            defaults: None,
            rng: JitterRng::default(),
            cancel: None,
        }
    }

    /// How many times a failed attempt is retried (`retries + 1` attempts
    /// at most). 0 means none, and wins over any default.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// The delay before each retry: a number of seconds, a list (retry *k*
    /// waits `list[min(k-1, len-1)]`), or a function of the retry count
    /// such as [`exponential_backoff`](super::exponential_backoff). A zero
    /// delay retries immediately.
    ///
    /// # Errors
    /// A negative or non-finite delay, or more than 50 delays
    /// (`Can not configure more than 50 retry delays per task.`).
    pub fn retry_delay_seconds(mut self, delay: impl IntoRetryDelay) -> Result<Self, ConfigError> {
        self.retry_delay = Some(delay.into_retry_delay()?);
        Ok(self)
    }

    /// Jitter for each non-zero delay μ: Prefect's clamped Poisson
    /// interval, within `[μ·log2(2^k/(2^k−1)), μ·k]` for `k = 1 + factor`.
    /// 0 means no jitter.
    ///
    /// # Errors
    /// A negative or non-finite factor (`` `retry_jitter_factor` must be >= 0. ``).
    pub fn retry_jitter_factor(mut self, factor: impl Into<f64>) -> Result<Self, ConfigError> {
        let factor = factor.into();
        if !factor.is_finite() || factor < 0.0 {
            return Err(ConfigError::JitterFactor);
        }
        self.jitter = Some(factor);
        Ok(self)
    }

    /// Decides whether a failed attempt is retried; consulted only while
    /// retries remain. It gets the task, the run (its state is still the
    /// failed attempt's `Running`/`Retrying`, its `run_count` the attempt
    /// number) and a state describing the failure: `Failed` with
    /// [`State::error`] for a returned error, `TimedOut` for a timeout,
    /// `Crashed` for a panic. `false` ends the run `Failed`; a panic in it
    /// is logged and means no retry.
    pub fn retry_condition_fn<C>(mut self, condition: C) -> Self
    where
        C: Fn(&Task<E>, &TaskRun, &State<E>) -> bool + Send + Sync + 'static,
    {
        self.condition = Some(Named {
            name: std::any::type_name::<C>(),
            f: Arc::new(condition),
        });
        self
    }

    /// A per-attempt timeout in seconds; 0 means none. An async attempt is
    /// cancelled at its next `.await`; a sync one cannot be interrupted and
    /// counts as timed out when it returns late. A timed-out attempt is
    /// retried like a failure; the final state is `Failed` named `TimedOut`.
    ///
    /// # Errors
    /// A negative or non-finite number.
    pub fn timeout_seconds(mut self, seconds: impl Into<f64>) -> Result<Self, ConfigError> {
        let seconds = seconds.into();
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(ConfigError::Timeout);
        }
        self.timeout = (seconds > 0.0).then(|| {
            let d = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX);
            (d, seconds)
        });
        Ok(self)
    }

    /// Adds a hook called on every entry into `Running` or `Retrying`.
    pub fn on_running<H>(mut self, hook: H) -> Self
    where
        H: Fn(&Task<E>, &TaskRun, &State<E>) + Send + Sync + 'static,
    {
        self.hooks.on_running.push(named(hook));
        self
    }

    /// Adds a hook called when a retry is decided, after the run entered
    /// `AwaitingRetry` (when there is a delay). Its state is the failure
    /// being retried, as a condition sees it.
    pub fn on_retry<H>(mut self, hook: H) -> Self
    where
        H: Fn(&Task<E>, &TaskRun, &State<E>) + Send + Sync + 'static,
    {
        self.hooks.on_retry.push(named(hook));
        self
    }

    /// Adds a hook called once on a final `Failed` (including `TimedOut`)
    /// state, never on a retried attempt nor on `Crashed`. For `Failed` the
    /// state lends the error.
    pub fn on_failure<H>(mut self, hook: H) -> Self
    where
        H: Fn(&Task<E>, &TaskRun, &State<E>) + Send + Sync + 'static,
    {
        self.hooks.on_failure.push(named(hook));
        self
    }

    /// Adds a hook called on `Completed`.
    pub fn on_completion<H>(mut self, hook: H) -> Self
    where
        H: Fn(&Task<E>, &TaskRun, &State<E>) + Send + Sync + 'static,
    {
        self.hooks.on_completion.push(named(hook));
        self
    }

    /// Seeds this task's own jitter generator, for reproducible delays.
    /// Clones of the task share the stream.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.rng = JitterRng::seeded(seed);
        self
    }

    /// Reads defaults from `source` instead of the process-wide source.
    pub fn defaults(mut self, source: Arc<dyn RetryDefaults>) -> Self {
        self.defaults = Some(source);
        self
    }

    /// Cancels every run of this task when `token` is cancelled (besides
    /// the token of an enclosing flow or
    /// [`with_cancellation`](super::with_cancellation) scope).
    pub fn cancellation_token(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `retries` as set here (`None`: from the defaults at each run).
    pub fn configured_retries(&self) -> Option<u32> {
        self.retries
    }

    /// `retry_delay_seconds` as set here.
    pub fn configured_retry_delay(&self) -> Option<&RetryDelay> {
        self.retry_delay.as_ref()
    }

    /// `retry_jitter_factor` as set here.
    pub fn configured_retry_jitter_factor(&self) -> Option<f64> {
        self.jitter
    }

    /// `timeout_seconds` (`None`: no timeout).
    pub fn configured_timeout_seconds(&self) -> Option<f64> {
        self.timeout.map(|(_, s)| s)
    }
}

fn named<E, H>(hook: H) -> Named<HookFn<E>>
where
    H: Fn(&Task<E>, &TaskRun, &State<E>) + Send + Sync + 'static,
{
    Named {
        name: std::any::type_name::<H>(),
        f: Arc::new(hook),
    }
}

impl<E> Clone for Task<E> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            retries: self.retries,
            retry_delay: self.retry_delay.clone(),
            jitter: self.jitter,
            timeout: self.timeout,
            condition: self.condition.clone(),
            hooks: self.hooks.clone(),
            defaults: self.defaults.clone(),
            rng: self.rng.clone(),
            cancel: self.cancel.clone(),
        }
    }
}

impl<E> fmt::Debug for Task<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("retries", &self.retries)
            .field("retry_delay_seconds", &self.retry_delay)
            .field("retry_jitter_factor", &self.jitter)
            .field("timeout_seconds", &self.configured_timeout_seconds())
            .field("retry_condition_fn", &self.condition)
            .field("on_running", &self.hooks.on_running)
            .field("on_retry", &self.hooks.on_retry)
            .field("on_failure", &self.hooks.on_failure)
            .field("on_completion", &self.hooks.on_completion)
            .field(
                "defaults",
                &self.defaults.as_deref().map(super::defaults::Snapshot),
            )
            .field("cancellation_token", &self.cancel)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_validate_like_prefect() {
        let t = Task::<String>::new("t");
        assert_eq!(
            t.clone().retry_jitter_factor(-0.1).unwrap_err().to_string(),
            "`retry_jitter_factor` must be >= 0."
        );
        assert_eq!(
            t.clone().retry_jitter_factor(f64::NAN).unwrap_err(),
            ConfigError::JitterFactor
        );
        assert_eq!(
            t.clone()
                .retry_delay_seconds(vec![1; 51])
                .unwrap_err()
                .to_string(),
            "Can not configure more than 50 retry delays per task."
        );
        assert_eq!(
            t.clone().timeout_seconds(-1).unwrap_err(),
            ConfigError::Timeout
        );
        let t = t.timeout_seconds(0).unwrap().retries(0);
        assert_eq!(t.configured_timeout_seconds(), None);
        assert_eq!(t.configured_retries(), Some(0));
        let t = t.timeout_seconds(1.5).unwrap();
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
