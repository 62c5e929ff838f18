//! `retry_condition_fn`: decides whether a failed attempt is retried.
//! Synchronous, or — beyond Prefect, which accepts an awaitable too —
//! async: a function returning a future of `bool`.

use futures_util::future::BoxFuture;

use super::params::Named;
use super::run::TaskRun;
use super::state::State;
use super::task::Task;

/// A `retry_condition_fn`: `(task, task_run, state) -> retry?`.
pub type ConditionFn<E> = dyn Fn(&Task<E>, &TaskRun, &State<E>) -> bool + Send + Sync;

/// An async `retry_condition_fn`: `(task, task_run, state) -> future of
/// retry?`. The future is `'static`: take from the arguments what it needs
/// before it starts (`let code = state.error().map(Code::of);`).
pub type AsyncConditionFn<E> =
    dyn Fn(&Task<E>, &TaskRun, &State<E>) -> BoxFuture<'static, bool> + Send + Sync;

/// A task's condition, sync or async.
pub(crate) enum Condition<E> {
    Sync(Named<ConditionFn<E>>),
    Async(Named<AsyncConditionFn<E>>),
}

impl<E> Clone for Condition<E> {
    fn clone(&self) -> Self {
        match self {
            Condition::Sync(c) => Condition::Sync(c.clone()),
            Condition::Async(c) => Condition::Async(c.clone()),
        }
    }
}

impl<E> std::fmt::Debug for Condition<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Condition::Sync(c) => c.fmt(f),
            Condition::Async(c) => write!(f, "async {c:?}"),
        }
    }
}

impl<E> Condition<E> {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Condition::Sync(c) => c.name,
            Condition::Async(c) => c.name,
        }
    }
}
