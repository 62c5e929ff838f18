//! The engine's log lines, worded as Prefect's, emitted through `tracing`
//! with target `cfgd_sdk::retry` inside a `task_run` or `flow_run` span.
//!
//! With no subscriber interested, an event costs a cached interest check;
//! its message is never formatted.

use std::fmt;

use super::error::PyFloat;
use super::state::{State, StateType};

/// Prints a retry delay as Prefect's log line does: "5 second(s) from now",
/// or "immediately" for zero.
struct When(f64);

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 0.0 {
            write!(f, "{} second(s) from now", self.0)
        } else {
            f.write_str("immediately")
        }
    }
}

/// Why an attempt failed, as the log lines and messages show it.
pub(crate) enum Failure<E> {
    /// The function returned an error.
    Error(E),
    /// The function panicked, with this message.
    Panic(String),
    /// The attempt exceeded this many seconds.
    Timeout(f64),
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(e) => e.fmt(f),
            Failure::Panic(m) => write!(f, "panicked: {m}"),
            Failure::Timeout(s) => write!(f, "timed out after {} second(s)", PyFloat(*s)),
        }
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// The last path segment of `E`'s type name, without generics (`MyError`
/// for `my_crate::MyError`), standing in for Python's exception class name.
pub(crate) fn short_type_name<E>() -> &'static str {
    let full = std::any::type_name::<E>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

/// `Task run failed with exception: <err> - Retry k/N will start …`.
pub(crate) fn task_retry(failure: &dyn fmt::Display, k: u32, of: u32, delay: f64) {
    tracing::info!(
        target: "cfgd_sdk::retry",
        "Task run failed with exception: {failure} - Retry {k}/{of} will start {}",
        When(delay)
    );
}

/// `Task run failed with exception: <err> - Retries are exhausted` (no
/// suffix when the task allows no retries).
pub(crate) fn task_exhausted(failure: &dyn fmt::Display, retries: u32) {
    if retries > 0 {
        tracing::error!(
            target: "cfgd_sdk::retry",
            "Task run failed with exception: {failure} - Retries are exhausted"
        );
    } else {
        tracing::error!(target: "cfgd_sdk::retry", "Task run failed with exception: {failure}");
    }
}

/// A `retry_condition_fn` that panicked.
pub(crate) fn condition_panicked(condition: &str, task: &str, panic: &str) {
    tracing::error!(
        target: "cfgd_sdk::retry",
        "An error was encountered while running `retry_condition_fn` check '{condition}' for task '{task}': {panic}"
    );
}

/// A hook that panicked (it is swallowed).
pub(crate) fn hook_panicked(hook: &str, panic: &str) {
    tracing::error!(
        target: "cfgd_sdk::retry",
        "An error was encountered while running hook '{hook}': {panic}"
    );
}

/// A flow attempt that failed.
pub(crate) fn flow_exception(failure: &dyn fmt::Display) {
    tracing::error!(target: "cfgd_sdk::retry", "Encountered exception during execution: {failure}");
}

/// A flow that will run again.
pub(crate) fn flow_retry() {
    tracing::info!(
        target: "cfgd_sdk::retry",
        "Received non-final state 'AwaitingRetry' when proposing final state 'Failed' and will attempt to run again..."
    );
}

/// `Finished in state Completed()`: INFO, or ERROR for a failure or crash.
pub(crate) fn finished(state: &State) {
    match state.state_type() {
        StateType::Failed | StateType::Crashed => {
            tracing::error!(target: "cfgd_sdk::retry", "Finished in state {state}");
        }
        _ => tracing::info!(target: "cfgd_sdk::retry", "Finished in state {state}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_print_as_prefect_does() {
        assert_eq!(When(5.0).to_string(), "5 second(s) from now");
        assert_eq!(When(0.5).to_string(), "0.5 second(s) from now");
        assert_eq!(When(0.0).to_string(), "immediately");
    }

    #[test]
    fn failures_and_names() {
        assert_eq!(Failure::<&str>::Error("boom").to_string(), "boom");
        assert_eq!(
            Failure::<&str>::Panic("x".into()).to_string(),
            "panicked: x"
        );
        assert_eq!(
            Failure::<&str>::Timeout(1.0).to_string(),
            "timed out after 1.0 second(s)"
        );
        assert_eq!(short_type_name::<std::io::Error>(), "Error");
        assert_eq!(short_type_name::<String>(), "String");
        assert_eq!(short_type_name::<Vec<std::io::Error>>(), "Vec");
        let payload: Box<dyn std::any::Any + Send> = Box::new(String::from("p"));
        assert_eq!(panic_message(&*payload), "p");
        let payload: Box<dyn std::any::Any + Send> = Box::new(7);
        assert_eq!(panic_message(&*payload), "<non-string panic payload>");
    }
}
