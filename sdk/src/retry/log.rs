//! The engine's log lines, worded as Prefect's, emitted through `tracing`
//! with target `cfgd_sdk::retry` inside a `task_run` or `flow_run` span
//! (which carries the settings revision the run's defaults came from).
//!
//! The words follow one rule: where Prefect prints `repr(exc)` cfgd prints
//! the error's `Debug` (`"boom"`, `Boom(1)`); where Prefect prints
//! `str(exc)` it prints the error's `Display`, after its type name where
//! Prefect prints the exception's class (`Boom: boom`). A returned Failed
//! state prints as Prefect's `repr` of the state.
//!
//! With no subscriber interested, an event costs a cached interest check;
//! its message is never formatted.

use std::fmt;
use std::time::Duration;

use super::budget::BudgetSettings;
use super::error::PyFloat;
use super::kind::RunKind;
use super::outcome::Failure;
use super::state::{State, StateType, write_py_repr};
use super::suggested::SuggestedDelay;

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

/// `exception: <repr>` or, for a returned Failed state, `state: <repr>`.
pub(crate) struct Repr<'a, E>(pub(crate) &'a Failure<E>);

impl<E: fmt::Debug> fmt::Display for Repr<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Failure::Error(e) => write!(f, "exception: {e:?}"),
            Failure::Message(m) => {
                f.write_str("state: Failed(message=")?;
                write_py_repr(f, m)?;
                f.write_str(", type=FAILED, result=None)")
            }
            Failure::Panic(m) => write!(f, "exception: panicked: {m}"),
            Failure::Timeout(t) => write!(f, "exception: {t:?}"),
        }
    }
}

/// Where a retry's delay came from, for the end of the retry line.
pub(crate) enum Origin {
    /// The task's own delays (or the defaults').
    Scheduled,
    /// The server suggested it; `clamped` when it was over the maximum.
    Suggested {
        suggested: SuggestedDelay,
        clamped: Option<Duration>,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Scheduled => Ok(()),
            Origin::Suggested {
                suggested,
                clamped: None,
            } => write!(f, ", as the server suggested ({})", suggested.source()),
            Origin::Suggested {
                suggested,
                clamped: Some(max),
            } => write!(
                f,
                ", as the server suggested ({}: {} s, clamped to the maximum of {} s)",
                suggested.source(),
                suggested.delay().as_secs_f64(),
                max.as_secs_f64()
            ),
        }
    }
}

/// `Task run failed with exception: <repr> - Retry k/N will start …`.
pub(crate) fn task_retry<E: fmt::Debug>(
    failure: &Failure<E>,
    k: u32,
    of: u32,
    delay: f64,
    origin: &Origin,
) {
    tracing::info!(
        target: "cfgd_sdk::retry",
        "Task run failed with {} - Retry {k}/{of} will start {}{origin}",
        Repr(failure),
        When(delay)
    );
}

/// `Task run failed with exception: <repr> - Retries are exhausted` (no
/// suffix when the task allows no retries).
pub(crate) fn task_exhausted<E: fmt::Debug>(failure: &Failure<E>, retries: u32) {
    if retries > 0 {
        tracing::error!(
            target: "cfgd_sdk::retry",
            "Task run failed with {} - Retries are exhausted",
            Repr(failure)
        );
    } else {
        tracing::error!(target: "cfgd_sdk::retry", "Task run failed with {}", Repr(failure));
    }
}

/// A retry the budget refused (cfgd extension).
pub(crate) fn budget_refused<E: fmt::Debug>(failure: &Failure<E>, k: u32, of: u32, message: &str) {
    tracing::error!(
        target: "cfgd_sdk::retry",
        "Task run failed with {} - Retry {k}/{of} {message}",
        Repr(failure)
    );
}

/// The words of a refused retry: `refused: the retry budget of task 'x' is
/// spent (…)`.
pub(crate) fn refusal(task: &str, settings: &BudgetSettings, global: bool) -> String {
    let whose = if global {
        "the retry budget shared by all tasks".to_owned()
    } else {
        format!("the retry budget of task '{task}'")
    };
    format!(
        "refused: {whose} is spent ({} retries per first attempt plus {} per second, over the last {} s)",
        settings.ratio,
        settings.floor,
        super::budget::WINDOW_SECONDS
    )
}

/// `Task run exceeded timeout of 0.05 second(s)` / `Flow run …`.
pub(crate) fn timed_out(kind: RunKind, seconds: f64) {
    tracing::error!(
        target: "cfgd_sdk::retry",
        "{} run exceeded timeout of {} second(s)",
        kind.title(),
        PyFloat(seconds)
    );
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

/// `Beginning flow run '<run>' for flow '<flow>'`, on each attempt.
pub(crate) fn flow_beginning(run: &str, flow: &str) {
    tracing::info!(
        target: "cfgd_sdk::retry",
        "Beginning flow run '{run}' for flow '{flow}'"
    );
}

/// A flow attempt that failed.
pub(crate) fn flow_exception<E: fmt::Debug>(failure: &Failure<E>) {
    match failure {
        Failure::Message(_) => tracing::error!(
            target: "cfgd_sdk::retry",
            "Flow run failed with {}",
            Repr(failure)
        ),
        _ => {
            let repr = Repr(failure).to_string();
            let repr = repr.strip_prefix("exception: ").unwrap_or(&repr);
            tracing::error!(
                target: "cfgd_sdk::retry",
                "Encountered exception during execution: {repr}"
            );
        }
    }
}

/// A flow that will run again.
pub(crate) fn flow_retry() {
    tracing::info!(
        target: "cfgd_sdk::retry",
        "Received non-final state 'AwaitingRetry' when proposing final state 'Failed' and will attempt to run again..."
    );
}

/// `Finished in state Completed()`. A task logs a failure or crash at
/// ERROR; a flow only a crash (Prefect logs a flow's `Failed` at INFO).
pub(crate) fn finished(kind: RunKind, state: &State) {
    let error = match state.state_type() {
        StateType::Crashed => true,
        StateType::Failed => kind == RunKind::Task,
        _ => false,
    };
    if error {
        tracing::error!(target: "cfgd_sdk::retry", "Finished in state {state}");
    } else {
        tracing::info!(target: "cfgd_sdk::retry", "Finished in state {state}");
    }
}

/// `<words><type name>: <Display>`, the message of a run failed by the
/// error `e` (`Task run encountered an exception Boom: boom`). Written
/// piece by piece: a `format!` of it cost more than the rest of the
/// failed attempt.
pub(crate) fn exception<E: fmt::Display>(words: &str, e: &E) -> String {
    use fmt::Write as _;
    let type_name = short_type_name::<E>();
    let mut message = String::with_capacity(words.len() + type_name.len() + 2 + 32);
    message.push_str(words);
    message.push_str(type_name);
    message.push_str(": ");
    // Writing to a `String` cannot fail; a `Display` that does has
    // nothing more to say.
    let _ = write!(message, "{e}");
    message
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

/// The name that stands for Python's exception class: the last path
/// segment of `E`'s type name without generics (`MyError` for
/// `my_crate::MyError<T>`) — and for a [`RunError`](super::RunError) (a
/// task's error seen by its flow) the name of the task's own error type.
pub(crate) fn short_type_name<E>() -> &'static str {
    type_name_of(std::any::type_name::<E>())
}

fn type_name_of(full: &str) -> &str {
    // Byte scans: type names are short, and a `"::"` searcher cost more to
    // build than the rest of a failed run's message.
    let bytes = full.as_bytes();
    let (base, args) = match bytes.iter().position(|&b| b == b'<') {
        Some(at) => (&full[..at], full[at + 1..].strip_suffix('>')),
        None => (full, None),
    };
    // The last `::`-separated segment: `:` only comes in pairs in a type
    // name, so it starts after the last `:`.
    let short = match base.as_bytes().iter().rposition(|&b| b == b':') {
        Some(at) => &base[at + 1..],
        None => base,
    };
    match args {
        Some(inner) if short == "RunError" && base.starts_with("cfgd_sdk::") => type_name_of(inner),
        _ => short,
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
    fn failures_print_their_debug_where_prefect_prints_repr() {
        assert_eq!(
            Repr(&Failure::<&str>::Error("boom")).to_string(),
            "exception: \"boom\""
        );
        assert_eq!(
            Repr(&Failure::<&str>::Message("it's".into())).to_string(),
            "state: Failed(message=\"it's\", type=FAILED, result=None)"
        );
        let timeout = TimeoutErrorForTest::task(0.05);
        assert_eq!(
            Repr(&Failure::<&str>::Timeout(timeout)).to_string(),
            "exception: TaskRunTimeoutError('Scope timed out after 0.05 second(s).')"
        );
    }

    struct TimeoutErrorForTest;
    impl TimeoutErrorForTest {
        fn task(seconds: f64) -> super::super::outcome::TimeoutError {
            super::super::outcome::TimeoutError {
                kind: RunKind::Task,
                seconds,
            }
        }
    }

    #[test]
    fn exception_messages_name_the_type_then_display_the_error() {
        assert_eq!(
            exception("Task run encountered an exception ", &"boom"),
            format!("Task run encountered an exception {}: boom", "&str")
        );
        let e = "x".parse::<u32>().unwrap_err();
        assert_eq!(
            exception("Flow run encountered an exception: ", &e),
            format!("Flow run encountered an exception: ParseIntError: {e}")
        );
    }

    #[test]
    fn type_names_stand_for_exception_classes() {
        assert_eq!(short_type_name::<std::io::Error>(), "Error");
        assert_eq!(short_type_name::<String>(), "String");
        assert_eq!(short_type_name::<Vec<std::io::Error>>(), "Vec");
        assert_eq!(short_type_name::<&str>(), "&str");
        assert_eq!(short_type_name::<&dyn std::error::Error>(), "Error");
        // As `rsplit("::")` would cut them.
        for full in [
            "a::b::C",
            "C",
            "(a::B, c::D)",
            "[a::B; 2]",
            "fn(a::B) -> c::D",
            "",
        ] {
            let base = full.split_once('<').map_or(full, |(b, _)| b);
            assert_eq!(
                type_name_of(full),
                base.rsplit("::").next().unwrap_or(base),
                "{full}"
            );
        }
        assert_eq!(
            short_type_name::<super::super::RunError<std::num::ParseIntError>>(),
            "ParseIntError"
        );
        assert_eq!(
            short_type_name::<super::super::RunError<super::super::RunError<&str>>>(),
            "&str"
        );
        let payload: Box<dyn std::any::Any + Send> = Box::new(String::from("p"));
        assert_eq!(panic_message(&*payload), "p");
        let payload: Box<dyn std::any::Any + Send> = Box::new(7);
        assert_eq!(panic_message(&*payload), "<non-string panic payload>");
    }
}
