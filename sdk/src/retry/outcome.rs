//! What an attempt ends with: a value, an error, or — the analogue of
//! Prefect's `return Failed(message=…)` — a Failed state with a message and
//! no error ([`Fail::Message`]); plus the engine's own view of a failed
//! attempt (a panic, a timeout).

use std::borrow::Cow;
use std::fmt;

use super::error::PyFloat;
use super::kind::RunKind;

/// How a task or flow function fails an attempt, when it needs more than
/// its error type: `Err(Fail::message("…"))` is Prefect's
/// `return Failed(message="…")` — the attempt fails with that message and
/// no error value, and is retried like any failure.
///
/// A function returning `Result<T, Fail<E>>` runs on a `Task<E>` with
/// [`Task::run_returning`](super::Task::run_returning) (or
/// `run_blocking_returning`, or as a `#[task]`); `?` turns an `E` into
/// [`Fail::Error`].
#[derive(Debug, Clone, PartialEq)]
pub enum Fail<E> {
    /// The attempt failed with this error (Prefect: it raised).
    Error(E),
    /// The attempt returned a Failed state with this message and no error.
    Message(Cow<'static, str>),
}

impl<E> Fail<E> {
    /// A Failed state with `message` and no error.
    pub fn message(message: impl Into<Cow<'static, str>>) -> Self {
        Fail::Message(message.into())
    }
}

impl<E> From<E> for Fail<E> {
    fn from(error: E) -> Self {
        Fail::Error(error)
    }
}

/// What a task or flow function may return: `Result<T, E>` or
/// `Result<T, Fail<E>>`.
pub trait IntoAttempt<T, E> {
    /// The attempt's outcome.
    ///
    /// # Errors
    /// How the attempt failed.
    fn into_attempt(self) -> Result<T, Fail<E>>;
}

impl<T, E> IntoAttempt<T, E> for Result<T, E> {
    #[inline]
    fn into_attempt(self) -> Result<T, Fail<E>> {
        self.map_err(Fail::Error)
    }
}

impl<T, E> IntoAttempt<T, E> for Result<T, Fail<E>> {
    #[inline]
    fn into_attempt(self) -> Result<T, Fail<E>> {
        self
    }
}

/// Why an attempt failed, as the engine sees it.
pub(crate) enum Failure<E> {
    /// The function returned an error.
    Error(E),
    /// The function returned a Failed state with this message.
    Message(Cow<'static, str>),
    /// The function panicked, with this message.
    Panic(String),
    /// The attempt exceeded its timeout.
    Timeout(TimeoutError),
}

impl<E> From<Fail<E>> for Failure<E> {
    #[inline]
    fn from(fail: Fail<E>) -> Self {
        match fail {
            Fail::Error(e) => Failure::Error(e),
            Fail::Message(m) => Failure::Message(m),
        }
    }
}

/// A per-attempt timeout, as Prefect's `TaskRunTimeoutError` /
/// `FlowRunTimeoutError` print.
#[derive(Clone, Copy, PartialEq)]
pub(crate) struct TimeoutError {
    pub(crate) kind: RunKind,
    pub(crate) seconds: f64,
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Scope timed out after {} second(s).",
            PyFloat(self.seconds)
        )
    }
}

/// Prefect's `repr` of the error, word for word.
impl fmt::Debug for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = match self.kind {
            RunKind::Task => "TaskRunTimeoutError",
            RunKind::Flow => "FlowRunTimeoutError",
        };
        write!(f, "{class}('{self}')")
    }
}
