//! The parameters a task and a flow share — name, `retries`,
//! `retry_delay_seconds`, `timeout_seconds`, hooks, the defaults source,
//! the cancellation token — and their builder methods, written once
//! ([`shared_builder!`]) for both.
//!
//! Setters never fail mid-chain: a value that is invalid is kept as its
//! error and reported when a run begins (the run ends `Failed` without
//! calling the function) or by `build()`, whichever comes first.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::defaults::RetryDefaults;
use super::delay::RetryDelay;
use super::error::ConfigError;
use super::state::State;

/// A parameter as given: its value, or why it is invalid.
pub(crate) type Checked<T> = Result<T, ConfigError>;

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

/// A hook of owner `O` and run `R`: `(owner, run, state)`.
pub(crate) type Hook<O, R, HE> = dyn Fn(&O, &R, &State<HE>) + Send + Sync;

/// The hooks registered for one event.
pub(crate) type HookList<O, R, HE> = Vec<Named<Hook<O, R, HE>>>;

/// The hooks of a task or flow, by event.
pub(crate) struct Hooks<O, R, HE> {
    pub(crate) on_running: HookList<O, R, HE>,
    pub(crate) on_retry: HookList<O, R, HE>,
    pub(crate) on_failure: HookList<O, R, HE>,
    pub(crate) on_completion: HookList<O, R, HE>,
}

impl<O, R, HE> Clone for Hooks<O, R, HE> {
    fn clone(&self) -> Self {
        Self {
            on_running: self.on_running.clone(),
            on_retry: self.on_retry.clone(),
            on_failure: self.on_failure.clone(),
            on_completion: self.on_completion.clone(),
        }
    }
}

impl<O, R, HE> fmt::Debug for Hooks<O, R, HE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("on_running", &self.on_running)
            .field("on_retry", &self.on_retry)
            .field("on_failure", &self.on_failure)
            .field("on_completion", &self.on_completion)
            .finish()
    }
}

/// A per-attempt timeout: the limit and the seconds as given (for words).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Timeout {
    pub(crate) limit: Duration,
    pub(crate) seconds: f64,
}

impl Timeout {
    /// `None` for 0 (no timeout, as in Prefect).
    pub(crate) fn from_seconds(seconds: f64) -> Checked<Option<Timeout>> {
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(ConfigError::Timeout);
        }
        Ok((seconds > 0.0).then(|| Timeout {
            limit: Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX),
            seconds,
        }))
    }
}

/// The parameters a task and a flow share.
pub(crate) struct Params<O, R, HE> {
    pub(crate) name: Cow<'static, str>,
    pub(crate) retries: Option<u32>,
    pub(crate) retry_delay: Option<Checked<RetryDelay>>,
    pub(crate) timeout: Checked<Option<Timeout>>,
    pub(crate) hooks: Hooks<O, R, HE>,
    pub(crate) defaults: Option<Arc<dyn RetryDefaults>>,
    pub(crate) cancel: Option<CancellationToken>,
    /// Its metrics' handles, once it has run.
    pub(crate) metrics: crate::metrics::Cache,
}

impl<O, R, HE> Params<O, R, HE> {
    pub(crate) fn new(name: Cow<'static, str>) -> Self {
        Self {
            name,
            retries: None,
            retry_delay: None,
            timeout: Ok(None),
            hooks: Hooks {
                on_running: Vec::new(),
                on_retry: Vec::new(),
                on_failure: Vec::new(),
                on_completion: Vec::new(),
            },
            defaults: None,
            cancel: None,
            metrics: crate::metrics::Cache::default(),
        }
    }

    /// The timeout, once checked valid (`None` also when it is not).
    pub(crate) fn timeout(&self) -> Option<Timeout> {
        self.timeout.as_ref().ok().copied().flatten()
    }

    /// The first invalid shared parameter, if any.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if let Some(Err(e)) = &self.retry_delay {
            return Err(e.clone());
        }
        self.timeout.as_ref().map(|_| ()).map_err(Clone::clone)
    }
}

impl<O, R, HE> Clone for Params<O, R, HE> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            retries: self.retries,
            retry_delay: self.retry_delay.clone(),
            timeout: self.timeout.clone(),
            hooks: self.hooks.clone(),
            defaults: self.defaults.clone(),
            cancel: self.cancel.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

pub(crate) fn named<F: ?Sized, H>(hook: H, wrap: impl FnOnce(H) -> Arc<F>) -> Named<F> {
    Named {
        name: std::any::type_name::<H>(),
        f: wrap(hook),
    }
}

/// The builder methods a task and a flow share, for `$owner` (with its
/// run type `$run` and the error type `$herr` its hooks' states carry).
macro_rules! shared_builder {
    ($owner:ty, $run:ty, $herr:ty, $what:literal) => {
        /// How many times a failed attempt is retried (`retries + 1`
        /// attempts at most). 0 means none, and wins over any default.
        pub fn retries(mut self, retries: u32) -> Self {
            self.params.retries = Some(retries);
            self
        }

        /// The delay before each retry, in seconds: a number, a list
        /// (retry *k* waits `list[min(k-1, len-1)]`), or a function of the
        /// retry count such as
        /// [`exponential_backoff`](crate::retry::exponential_backoff); a
        /// [`Duration`](std::time::Duration) or a list of them works too.
        /// A zero delay retries immediately.
        ///
        /// Never fails here: a negative or non-finite delay, or more than
        /// 50 delays (`Can not configure more than 50 retry delays per
        /// task.`), is reported by `build()` or when a run begins.
        pub fn retry_delay_seconds(mut self, delay: impl $crate::retry::IntoRetryDelay) -> Self {
            self.params.retry_delay = Some(delay.into_retry_delay());
            self
        }

        /// [`retry_delay_seconds`](Self::retry_delay_seconds), by the name
        /// that suits a [`Duration`](std::time::Duration):
        /// `retry_delay(Duration::from_millis(250))`.
        pub fn retry_delay(self, delay: impl $crate::retry::IntoRetryDelay) -> Self {
            self.retry_delay_seconds(delay)
        }

        /// A per-attempt timeout in seconds; 0 means none. An async attempt
        /// is cancelled at its next `.await`; a sync one cannot be
        /// interrupted and counts as timed out when it returns late. A
        /// timed-out attempt is retried like a failure; the final state is
        /// `Failed` named `TimedOut`. A negative or non-finite number is
        /// reported by `build()` or when a run begins.
        pub fn timeout_seconds(mut self, seconds: impl Into<f64>) -> Self {
            self.params.timeout = $crate::retry::params::Timeout::from_seconds(seconds.into());
            self
        }

        /// [`timeout_seconds`](Self::timeout_seconds) as a
        /// [`Duration`](std::time::Duration).
        pub fn timeout(self, timeout: std::time::Duration) -> Self {
            self.timeout_seconds(timeout.as_secs_f64())
        }

        /// Adds a hook called on every entry into a running state.
        pub fn on_running<H>(mut self, hook: H) -> Self
        where
            H: Fn(&$owner, &$run, &$crate::retry::State<$herr>) + Send + Sync + 'static,
        {
            let hook = $crate::retry::params::named(hook, |h| std::sync::Arc::new(h) as _);
            self.params.hooks.on_running.push(hook);
            self
        }

        /// Adds a hook called when a retry is decided, after the run
        /// entered `AwaitingRetry` (when it does). Its state is the failure
        /// being retried, as a condition sees it.
        pub fn on_retry<H>(mut self, hook: H) -> Self
        where
            H: Fn(&$owner, &$run, &$crate::retry::State<$herr>) + Send + Sync + 'static,
        {
            let hook = $crate::retry::params::named(hook, |h| std::sync::Arc::new(h) as _);
            self.params.hooks.on_retry.push(hook);
            self
        }

        /// Adds a hook called once on a final `Failed` (including
        /// `TimedOut`) state, never on a retried attempt nor on `Crashed`.
        pub fn on_failure<H>(mut self, hook: H) -> Self
        where
            H: Fn(&$owner, &$run, &$crate::retry::State<$herr>) + Send + Sync + 'static,
        {
            let hook = $crate::retry::params::named(hook, |h| std::sync::Arc::new(h) as _);
            self.params.hooks.on_failure.push(hook);
            self
        }

        /// Adds a hook called on `Completed`.
        pub fn on_completion<H>(mut self, hook: H) -> Self
        where
            H: Fn(&$owner, &$run, &$crate::retry::State<$herr>) + Send + Sync + 'static,
        {
            let hook = $crate::retry::params::named(hook, |h| std::sync::Arc::new(h) as _);
            self.params.hooks.on_completion.push(hook);
            self
        }

        /// Reads defaults from `source` instead of the process-wide source.
        pub fn defaults(mut self, source: std::sync::Arc<dyn $crate::retry::RetryDefaults>) -> Self {
            self.params.defaults = Some(source);
            self
        }

        /// Cancels every run when `token` is cancelled (besides the token
        /// of an enclosing flow or
        /// [`with_cancellation`](crate::retry::with_cancellation) scope).
        pub fn cancellation_token(mut self, token: $crate::retry::CancellationToken) -> Self {
            self.params.cancel = Some(token);
            self
        }

        #[doc = concat!("Checks every parameter now, as a run does when it begins: the ", $what, " itself, or the first invalid parameter.")]
        ///
        /// # Errors
        /// The first invalid parameter, with Prefect's message where
        /// Prefect has one.
        pub fn build(self) -> Result<Self, $crate::retry::ConfigError> {
            self.check()?;
            Ok(self)
        }

        /// The name.
        pub fn name(&self) -> &str {
            &self.params.name
        }

        /// `retries` as set here (`None`: from the defaults at each run).
        pub fn configured_retries(&self) -> Option<u32> {
            self.params.retries
        }

        /// `retry_delay_seconds` as set here (`None` when unset or
        /// invalid).
        pub fn configured_retry_delay(&self) -> Option<&$crate::retry::RetryDelay> {
            self.params.retry_delay.as_ref().and_then(|d| d.as_ref().ok())
        }

        /// `timeout_seconds` (`None`: no timeout, or an invalid one).
        pub fn configured_timeout_seconds(&self) -> Option<f64> {
            self.params.timeout.as_ref().ok().copied().flatten().map(|t| t.seconds)
        }
    };
}

pub(crate) use shared_builder;
