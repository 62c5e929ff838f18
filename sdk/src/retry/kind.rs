//! What differs between a task run and a flow run, for the one engine
//! (`engine.rs`) that runs both: the run record, where defaults come from,
//! what a retry is called, and the task-only parameters (jitter, the
//! condition, suggested delays, the budget).

use std::fmt;

use cfgd_settings::Delays;

use super::budget::RetryBudget;
use super::context::Context;
use super::defaults::Defaults;
use super::error::ConfigError;
use super::outcome::Failure;
use super::params::{HookList, Params};
use super::run::{Record, RunCore};
use super::state::{State, StateName};
use super::suggested::SuggestedDelay;

/// Which kind of run, for words and state names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunKind {
    Task,
    Flow,
}

impl RunKind {
    /// `Task` / `Flow`, as the log lines start.
    pub(crate) fn title(self) -> &'static str {
        match self {
            RunKind::Task => "Task",
            RunKind::Flow => "Flow",
        }
    }

    /// The state a retry attempt enters: a task's is `Retrying`; a retried
    /// flow is `Running` again, as in Prefect.
    pub(crate) fn retry_state(self) -> StateName {
        match self {
            RunKind::Task => StateName::Retrying,
            RunKind::Flow => StateName::Running,
        }
    }
}

/// What a `retry_condition_fn` said.
pub(crate) enum Consult {
    /// There is none: retry.
    Absent,
    /// It answered.
    Answer(bool),
    /// An async one: its answer, to await.
    Pending(futures_util::future::BoxFuture<'static, bool>, &'static str),
}

/// A kind of run.
pub(crate) trait Kind {
    /// What is run (`Task<E>`, `Flow`); what hooks receive.
    type Owner;
    /// Its run record.
    type Run: Record;
    /// The attempt's error type.
    type Err;
    /// The error type hooks' states carry (`E` for tasks, `()` for flows).
    type HookErr;

    const KIND: RunKind;

    fn params(owner: &Self::Owner) -> &Params<Self::Owner, Self::Run, Self::HookErr>;

    /// A new run record around `core`, inside `context`.
    fn new_run(owner: &Self::Owner, context: &Context, core: RunCore) -> Self::Run;

    /// The defaults for retries and delays of this kind.
    fn default_retries(d: &Defaults<'_>) -> u32;
    fn default_delay<'a>(d: &Defaults<'a>) -> &'a Delays;

    /// The first invalid parameter, shared or kind-specific, if any.
    fn check(owner: &Self::Owner) -> Result<(), ConfigError>;

    /// The jitter factor (set here, else the default); flows have none.
    fn jitter(owner: &Self::Owner, d: &Defaults<'_>) -> Option<f64>;

    /// One jittered delay.
    fn draw_jitter(owner: &Self::Owner, base: f64, factor: f64) -> f64;

    /// The per-name budget (tasks only).
    fn budget(owner: &Self::Owner) -> Option<&RetryBudget>;

    /// The delay the error suggests, if the owner knows how to read one.
    fn suggested(owner: &Self::Owner, error: &Self::Err) -> Option<SuggestedDelay>;

    /// Whether there is a `retry_condition_fn` to ask (the state it would
    /// see is formatted only then).
    fn has_condition(owner: &Self::Owner) -> bool;

    /// Asks the `retry_condition_fn` about `failure` (described by
    /// `state`), handing the failure back.
    fn consult(
        owner: &Self::Owner,
        run: &Self::Run,
        state: State,
        failure: Failure<Self::Err>,
    ) -> (Consult, Failure<Self::Err>);

    /// Calls `hooks` with `state`, lending `error` where the hooks see it;
    /// hands the error back.
    fn fire(
        owner: &Self::Owner,
        run: &Self::Run,
        hooks: &HookList<Self::Owner, Self::Run, Self::HookErr>,
        state: State,
        error: Option<Self::Err>,
    ) -> Option<Self::Err>;

    /// After each attempt, with the context the attempt ran in.
    fn end_attempt(_run: &mut Self::Run, _inner: Option<&Context>) {}

    /// At the end of the run, with the context the run started in.
    fn report(_run: &Self::Run, _outer: &Context) {}

    /// The context an attempt runs in, if it sets one (a flow's).
    fn inner_context(
        _run: &Self::Run,
        _outer: &Context,
        _own: Option<&tokio_util::sync::CancellationToken>,
    ) -> Option<Context> {
        None
    }
}

/// Calls each hook, logging and swallowing a panic.
pub(crate) fn call_hooks<O, R, HE>(
    owner: &O,
    run: &R,
    hooks: &HookList<O, R, HE>,
    state: &State<HE>,
) {
    for hook in hooks {
        if let Err(panic) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (hook.f)(owner, run, state)))
        {
            super::log::hook_panicked(hook.name, &super::log::panic_message(&*panic));
        }
    }
}

/// The message of the state a condition or hook sees for `failure`.
pub(crate) fn describe<E: fmt::Debug>(kind: RunKind, failure: &Failure<E>) -> State {
    let title = kind.title();
    let (name, message) = match failure {
        Failure::Error(e) => (
            StateName::Failed,
            format!("{title} run encountered unexpected exception: {e:?}"),
        ),
        Failure::Message(m) => (StateName::Failed, m.to_string()),
        Failure::Panic(m) => (
            StateName::Crashed,
            format!("Execution was interrupted by a panic: {m}"),
        ),
        Failure::Timeout(t) => (
            StateName::TimedOut,
            format!(
                "{title} run exceeded timeout of {} second(s)",
                super::error::PyFloat(t.seconds)
            ),
        ),
    };
    State::new(name).with_message(message)
}
