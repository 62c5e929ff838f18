//! The one retry engine, for tasks and flows alike ([`Kind`] says what
//! differs): a run's parameters resolved at its start from one view of the
//! defaults, its state transitions, retry decisions (the condition, the
//! budget), delays (scheduled, jittered or server-suggested), hooks and
//! log lines.
//!
//! The engine does no I/O and owns its run, so it can be driven by the
//! async and blocking loops (`drive.rs`) or, one attempt at a time, by the
//! `tower` adapter. Per attempt it pushes one state (two with a delay)
//! and, with no subscriber, formats nothing.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use cfgd_settings::Delays;
use futures_util::future::BoxFuture;

use super::budget::{BudgetSettings, RetryBudget, Seconds};
use super::context::Context;
use super::defaults::with_source;
use super::error::{ConfigError, PyFloat, RunError};
use super::kind::{Consult, Kind, RunKind, describe};
use super::log::{self, Origin};
use super::outcome::Failure;
use super::run::{Policy, Record, RunCore};
use super::state::{State, StateName};

/// What to do after an attempt.
pub(crate) enum Step<T, E> {
    /// Wait this long (zero: not at all), then retry.
    Retry(Duration),
    /// Await the async condition's answer, then call [`Engine::answer`].
    Ask(BoxFuture<'static, bool>, &'static str, Failure<E>),
    /// The run is over.
    Done(Result<T, RunError<E>>),
}

/// One run in progress.
pub(crate) struct Engine<K: Kind> {
    pub(crate) run: K::Run,
    /// When the run draws its retries from the owner's budget (which the
    /// owner keeps: nothing to count per run).
    budget: Option<Budgeted>,
    max_suggested: Duration,
    /// Retries started so far.
    retried: u32,
    /// When the next attempt starts, if already known (a zero-delay retry
    /// starts when it was decided).
    next_start: Option<SystemTime>,
    /// Its metrics' handles.
    metrics: crate::metrics::Run,
}

/// A run drawing from a budget: its settings, and the seconds it counts in.
struct Budgeted {
    settings: BudgetSettings,
    seconds: Seconds,
}

/// A run that could not start: its record (ended `Failed`) and why.
pub(crate) type Invalid<R> = Box<(R, ConfigError)>;

fn no_delays() -> Arc<Delays> {
    static NONE: LazyLock<Arc<Delays>> =
        LazyLock::new(|| Arc::new(Delays::list(Vec::new()).expect("an empty list is valid")));
    NONE.clone()
}

impl<K: Kind> Engine<K>
where
    K::Err: fmt::Debug + fmt::Display,
{
    /// Creates the run in `Pending`, with every default read from one view
    /// of the source. A run whose parameters are invalid is returned ended
    /// `Failed`, with why.
    pub(crate) fn begin(owner: &K::Owner, context: &Context) -> Result<Self, Invalid<K::Run>> {
        let params = K::params(owner);
        let checked = K::check(owner);
        let resolved = with_source(params.defaults.as_ref(), |source| {
            source.with(|d| {
                let retries = params.retries.unwrap_or_else(|| K::default_retries(d));
                let delays = if retries == 0 {
                    Ok(no_delays())
                } else {
                    match &params.retry_delay {
                        Some(Ok(delay)) => delay.resolve(retries),
                        Some(Err(e)) => Err(e.clone()),
                        None => Ok(Arc::new(K::default_delay(d).clone())),
                    }
                };
                let jitter = K::jitter(owner, d);
                (
                    retries,
                    delays,
                    jitter,
                    d.retry_budget,
                    d.max_suggested_delay,
                    d.revision,
                )
            })
        });
        let (retries, delays, jitter, budget, max_suggested, revision) = resolved;
        let checked = checked.and_then(|()| match jitter {
            Some(c) if !c.is_finite() || c < 0.0 => Err(ConfigError::JitterFactor),
            _ => Ok(()),
        });
        let (retry_delay, invalid) = match (checked, delays) {
            (Ok(()), Ok(delays)) => (delays, None),
            (Err(e), _) | (_, Err(e)) => (no_delays(), Some(e)),
        };
        let policy = Policy {
            retries,
            retry_delay,
            retry_jitter_factor: jitter,
            settings_revision: revision,
        };
        let mut run = K::new_run(owner, context, RunCore::new(&params.name, policy));
        let kind = match K::KIND {
            RunKind::Task => "task",
            RunKind::Flow => "flow",
        };
        let metrics = crate::metrics::Run::start(kind, &params.name, revision, &params.metrics);
        if let Some(e) = invalid {
            let state = State::new(StateName::Failed)
                .with_message(format!("Invalid retry configuration: {e}"));
            log::finished(K::KIND, &state);
            metrics.finished(StateName::Failed);
            run.core_mut().history.push(state);
            return Err(Box::new((run, e)));
        }
        let budget = budget.and_then(|settings| {
            let own = K::budget(owner)?;
            let seconds = Seconds::new(run.core().history.current().timestamp());
            let now = seconds.second();
            own.deposit(now);
            if settings.global {
                RetryBudget::global().deposit(now);
            }
            Some(Budgeted { settings, seconds })
        });
        Ok(Self {
            run,
            budget,
            max_suggested,
            retried: 0,
            next_start: None,
            metrics,
        })
    }

    /// Enters `Running` (first attempt) or the kind's retry state.
    pub(crate) fn start_attempt(&mut self, owner: &K::Owner) {
        let name = if self.run.core().history.run_count == 0 {
            StateName::Running
        } else {
            K::KIND.retry_state()
        };
        let at = self.next_start.take().unwrap_or_else(SystemTime::now);
        self.run.core_mut().history.push(State::at(name, at));
        self.metrics.attempt();
        if K::KIND == RunKind::Flow {
            log::flow_beginning(&self.run.core().name, &K::params(owner).name);
        }
        self.fire_current(owner, Event::Running, None);
    }

    /// Stamps the next attempt's state with `at` (when a driver knows
    /// better than the clock at its start).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn starts_at(&mut self, at: SystemTime) {
        self.next_start = Some(at);
    }

    /// Records an attempt's outcome and decides what comes next.
    pub(crate) fn settle<T>(
        &mut self,
        owner: &K::Owner,
        outcome: Result<T, Failure<K::Err>>,
    ) -> Step<T, K::Err> {
        let failure = match outcome {
            Ok(value) => {
                self.finish(State::new(StateName::Completed));
                self.fire_current(owner, Event::Completion, None);
                return Step::Done(Ok(value));
            }
            Err(failure) => failure,
        };
        if K::KIND == RunKind::Flow {
            log::flow_exception(&failure);
        }
        let retries = self.run.core().policy.retries;
        if self.retried >= retries {
            if K::KIND == RunKind::Task {
                log::task_exhausted(&failure, retries);
            }
            return Step::Done(Err(self.fail(owner, failure, None)));
        }
        if !K::has_condition(owner) {
            return self.answer(owner, failure, true);
        }
        let state = describe(K::KIND, &failure);
        match K::consult(owner, &self.run, state, failure) {
            (Consult::Absent, failure) => self.answer(owner, failure, true),
            (Consult::Answer(retry), failure) => self.answer(owner, failure, retry),
            (Consult::Pending(answer, name), failure) => Step::Ask(answer, name, failure),
        }
    }

    /// Goes on after the condition answered `retry` for `failure`.
    pub(crate) fn answer<T>(
        &mut self,
        owner: &K::Owner,
        failure: Failure<K::Err>,
        retry: bool,
    ) -> Step<T, K::Err> {
        if !retry {
            return Step::Done(Err(self.fail(owner, failure, None)));
        }
        let retries = self.run.core().policy.retries;
        let k = self.retried + 1;
        let now = SystemTime::now();
        if let Some(refused) = self.withdraw(owner, now) {
            log::budget_refused(&failure, k, retries, &refused);
            let refusal = format!("Retry {k}/{retries} {refused}");
            return Step::Done(Err(self.fail(owner, failure, Some(refusal))));
        }
        let (delay, origin) = self.delay_for(owner, k, &failure);
        match K::KIND {
            RunKind::Task => log::task_retry(&failure, k, retries, delay, &origin),
            RunKind::Flow => log::flow_retry(),
        }
        self.retried = k;
        self.metrics.delay(delay);
        let wait = if delay > 0.0 {
            Duration::try_from_secs_f64(delay).unwrap_or(Duration::MAX)
        } else {
            Duration::ZERO
        };
        if delay > 0.0 || K::KIND == RunKind::Flow {
            self.run
                .core_mut()
                .history
                .push(State::awaiting_retry(now, wait));
        } else {
            self.next_start = Some(now);
        }
        let hooks = &K::params(owner).hooks.on_retry;
        if !hooks.is_empty() {
            let state = describe(K::KIND, &failure);
            let _ = self.fire_failure(owner, hooks, state, failure);
        }
        Step::Retry(wait)
    }

    /// Draws a retry from the budget; why not, when it refuses.
    #[inline]
    fn withdraw(&mut self, owner: &K::Owner, now: SystemTime) -> Option<String> {
        let Budgeted { settings, seconds } = self.budget.as_mut()?;
        let own = K::budget(owner)?;
        let now = seconds.of(now);
        let name = &K::params(owner).name;
        if !own.try_withdraw(settings, now) {
            return Some(log::refusal(name, settings, false));
        }
        if settings.global && !RetryBudget::global().try_withdraw(settings, now) {
            own.refund(now);
            return Some(log::refusal(name, settings, true));
        }
        None
    }

    /// The delay before retry `k`, and where it came from.
    fn delay_for(&self, owner: &K::Owner, k: u32, failure: &Failure<K::Err>) -> (f64, Origin) {
        if let Failure::Error(e) = failure
            && let Some(suggested) = K::suggested(owner, e)
        {
            let clamped = (suggested.delay() > self.max_suggested).then_some(self.max_suggested);
            let delay = clamped.unwrap_or(suggested.delay()).as_secs_f64();
            return (delay, Origin::Suggested { suggested, clamped });
        }
        let base = self.run.core().policy.retry_delay.for_retry(k);
        let delay = match (K::KIND, self.run.core().policy.retry_jitter_factor) {
            (RunKind::Flow, _) => base.trunc(),
            (RunKind::Task, Some(c)) if c > 0.0 && base > 0.0 => K::draw_jitter(owner, base, c),
            (RunKind::Task, _) => base,
        };
        (delay, Origin::Scheduled)
    }

    /// Ends the run in the final state for `failure`; `refusal` says why a
    /// retry was refused, if one was.
    fn fail(
        &mut self,
        owner: &K::Owner,
        failure: Failure<K::Err>,
        refusal: Option<String>,
    ) -> RunError<K::Err> {
        let title = K::KIND.title();
        let with_refusal = |message: String| match &refusal {
            Some(r) => format!("{message} - {r}"),
            None => message,
        };
        match failure {
            Failure::Error(e) => {
                let message = match K::KIND {
                    RunKind::Task => log::exception("Task run encountered an exception ", &e),
                    RunKind::Flow => log::exception("Flow run encountered an exception: ", &e),
                };
                self.finish(State::new(StateName::Failed).with_message(with_refusal(message)));
                let e = self.fire_current(owner, Event::Failure, Some(e));
                RunError::Failed(e.expect("the error was lent, not taken"))
            }
            Failure::Message(message) => {
                let state =
                    State::new(StateName::Failed).with_message(with_refusal(message.into_owned()));
                self.finish(state.clone());
                self.fire_current(owner, Event::Failure, None);
                RunError::State(state)
            }
            Failure::Panic(message) => {
                let text = format!("Execution was interrupted by a panic: {message}");
                self.finish(State::new(StateName::Crashed).with_message(with_refusal(text)));
                RunError::Crashed { message }
            }
            Failure::Timeout(t) => {
                log::timed_out(K::KIND, t.seconds);
                let text = format!(
                    "{title} run exceeded timeout of {} second(s)",
                    PyFloat(t.seconds)
                );
                self.finish(State::new(StateName::TimedOut).with_message(with_refusal(text)));
                self.fire_current(owner, Event::Failure, None);
                RunError::TimedOut { seconds: t.seconds }
            }
        }
    }

    /// Ends the run `Cancelled`.
    pub(crate) fn cancel<T>(&mut self) -> Result<T, RunError<K::Err>> {
        let message = match K::KIND {
            RunKind::Task => "Task run was cancelled.",
            RunKind::Flow => "Flow run was cancelled.",
        };
        self.finish(State::new(StateName::Cancelled).with_message(message));
        Err(RunError::Cancelled)
    }

    /// Ends the run with an answer the condition never gave (it panicked).
    pub(crate) fn condition_panicked(&self, owner: &K::Owner, name: &str, panic: &str) {
        log::condition_panicked(name, &K::params(owner).name, panic);
    }

    fn finish(&mut self, state: State) {
        log::finished(K::KIND, &state);
        self.metrics.finished(state.name());
        self.run.core_mut().history.push(state);
    }

    /// Calls the hooks of `event` with the run's current state. Inline:
    /// every attempt asks, and usually there are none.
    #[inline]
    fn fire_current(
        &self,
        owner: &K::Owner,
        event: Event,
        error: Option<K::Err>,
    ) -> Option<K::Err> {
        let hooks = &K::params(owner).hooks;
        let hooks = match event {
            Event::Running => &hooks.on_running,
            Event::Completion => &hooks.on_completion,
            Event::Failure => &hooks.on_failure,
        };
        if hooks.is_empty() {
            return error;
        }
        self.fire_hooks(owner, hooks, error)
    }

    #[inline(never)]
    fn fire_hooks(
        &self,
        owner: &K::Owner,
        hooks: &super::params::HookList<K::Owner, K::Run, K::HookErr>,
        error: Option<K::Err>,
    ) -> Option<K::Err> {
        let state = self.run.core().history.current().clone();
        K::fire(owner, &self.run, hooks, state, error)
    }

    fn fire_failure(
        &self,
        owner: &K::Owner,
        hooks: &super::params::HookList<K::Owner, K::Run, K::HookErr>,
        state: State,
        failure: Failure<K::Err>,
    ) -> Failure<K::Err> {
        match failure {
            Failure::Error(e) => Failure::Error(
                K::fire(owner, &self.run, hooks, state, Some(e))
                    .expect("the error was lent, not taken"),
            ),
            other => {
                K::fire(owner, &self.run, hooks, state, None);
                other
            }
        }
    }
}

/// Which hooks to call with the run's current state.
#[derive(Clone, Copy)]
enum Event {
    Running,
    Completion,
    Failure,
}
