//! [`Flow`]: retries that re-run a whole function, on the same engine as
//! tasks. Tasks called inside a flow attempt are new task runs with a fresh
//! retry budget; they see the flow run and its cancellation token through
//! the ambient context, and the flow run keeps them
//! ([`FlowRun::task_runs`]).
//!
//! As in Prefect, a flow retry always passes through `AwaitingRetry` (even
//! with no delay), the new attempt is named `Running`, and the delay is cut
//! to whole seconds (`int(retry_delay_seconds)`). There is no jitter,
//! condition, budget or suggested delay for flows; there are hooks and a
//! per-attempt timeout, as Prefect's flows have.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use cfgd_settings::Delays;
use tokio_util::sync::CancellationToken;

use super::budget::RetryBudget;
use super::context::Context;
use super::defaults::{Defaults, Snapshot};
use super::error::ConfigError;
use super::kind::{self, Consult, Kind, RunKind};
use super::outcome::Failure;
use super::params::{HookList, Params, shared_builder};
use super::run::{FlowRun, RunCore};
use super::state::State;
use super::suggested::SuggestedDelay;

/// A flow: a name, retry parameters and hooks. Each call of
/// [`run`](Flow::run) (or [`run_blocking`](Flow::run_blocking)) is one
/// [`FlowRun`]; a failed attempt (an error, a panic or a timeout) re-runs
/// the whole function.
///
/// # Default
/// `retries` and `retry_delay_seconds` left unset are read from the
/// defaults source at the start of each run (`PREFECT_FLOWS_DEFAULT_*`); a
/// value set here wins even when it is 0. No timeout, no hooks.
#[derive(Clone)]
pub struct Flow {
    pub(crate) params: Params<Flow, FlowRun, ()>,
}

impl Flow {
    /// A flow named `name` with every parameter unset.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            params: Params::new(name.into()),
        }
    }

    shared_builder!(Flow, FlowRun, (), "flow");

    fn check(&self) -> Result<(), ConfigError> {
        self.params.check()
    }
}

impl fmt::Debug for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.params;
        f.debug_struct("Flow")
            .field("name", &p.name)
            .field("retries", &p.retries)
            .field("retry_delay_seconds", &p.retry_delay)
            .field("timeout_seconds", &p.timeout)
            .field("hooks", &p.hooks)
            .field("defaults", &p.defaults.as_deref().map(Snapshot))
            .field("cancellation_token", &p.cancel)
            .finish()
    }
}

/// The flow kind of run, with the attempt's error type `E`.
pub(crate) struct FlowKind<E>(PhantomData<fn() -> E>);

impl<E> Kind for FlowKind<E> {
    type Owner = Flow;
    type Run = FlowRun;
    type Err = E;
    type HookErr = ();

    const KIND: RunKind = RunKind::Flow;

    fn params(owner: &Flow) -> &Params<Flow, FlowRun, ()> {
        &owner.params
    }

    fn new_run(owner: &Flow, _context: &Context, core: RunCore) -> FlowRun {
        FlowRun::new(owner.params.name.clone(), core)
    }

    fn default_retries(d: &Defaults<'_>) -> u32 {
        d.flow_retries
    }

    fn default_delay<'a>(d: &Defaults<'a>) -> &'a Delays {
        d.flow_retry_delay
    }

    fn check(owner: &Flow) -> Result<(), ConfigError> {
        owner.check()
    }

    fn jitter(_: &Flow, _: &Defaults<'_>) -> Option<f64> {
        None
    }

    fn draw_jitter(_: &Flow, base: f64, _: f64) -> f64 {
        base
    }

    fn budget(_: &Flow) -> Option<&RetryBudget> {
        None
    }

    fn suggested(_: &Flow, _: &E) -> Option<SuggestedDelay> {
        None
    }

    fn has_condition(_: &Flow) -> bool {
        false
    }

    fn consult(_: &Flow, _: &FlowRun, _: State, failure: Failure<E>) -> (Consult, Failure<E>) {
        (Consult::Absent, failure)
    }

    fn fire(
        owner: &Flow,
        run: &FlowRun,
        hooks: &HookList<Flow, FlowRun, ()>,
        state: State,
        error: Option<E>,
    ) -> Option<E> {
        kind::call_hooks(owner, run, hooks, &state);
        error
    }

    fn inner_context(
        run: &FlowRun,
        outer: &Context,
        own: Option<&CancellationToken>,
    ) -> Option<Context> {
        Some(Context {
            flow_run: Some(run.id()),
            cancel: own.cloned().or_else(|| outer.cancel.clone()),
            task_runs: Some(Arc::new(Mutex::new(Vec::new()))),
        })
    }

    fn end_attempt(run: &mut FlowRun, inner: Option<&Context>) {
        if let Some(runs) = inner.and_then(|c| c.task_runs.as_ref()) {
            let mut runs = runs.lock().unwrap_or_else(|e| e.into_inner());
            run.task_runs.append(&mut runs);
        }
    }
}
