//! Run states: Prefect's state types, the named variants the retry engine
//! uses (`AwaitingRetry`, `Retrying`, `TimedOut`), and how a state prints.

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

/// The type of a state (Prefect's `StateType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateType {
    /// Waiting for a scheduled time (`AwaitingRetry`).
    Scheduled,
    /// Created, not started.
    Pending,
    /// Executing (`Running`, `Retrying`).
    Running,
    /// Finished with a value.
    Completed,
    /// Finished with an error (`Failed`, `TimedOut`).
    Failed,
    /// Stopped by its cancellation token.
    Cancelled,
    /// Finished by a panic.
    Crashed,
}

impl StateType {
    /// The upper-case name Prefect prints (`FAILED`).
    pub const fn as_str(self) -> &'static str {
        match self {
            StateType::Scheduled => "SCHEDULED",
            StateType::Pending => "PENDING",
            StateType::Running => "RUNNING",
            StateType::Completed => "COMPLETED",
            StateType::Failed => "FAILED",
            StateType::Cancelled => "CANCELLED",
            StateType::Crashed => "CRASHED",
        }
    }

    /// Whether a run in a state of this type has ended.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            StateType::Completed | StateType::Failed | StateType::Cancelled | StateType::Crashed
        )
    }
}

impl fmt::Display for StateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of a state; each name has one [`StateType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateName {
    /// Type `Pending`: the run exists, no attempt has started.
    Pending,
    /// Type `Running`: the first attempt.
    Running,
    /// Type `Scheduled`: waiting for the delay before a retry.
    AwaitingRetry,
    /// Type `Running`: a retry attempt (tasks only; a retried flow is
    /// `Running` again, as in Prefect).
    Retrying,
    /// Type `Completed`.
    Completed,
    /// Type `Failed`: the function returned an error.
    Failed,
    /// Type `Failed`: the attempt exceeded `timeout_seconds`.
    TimedOut,
    /// Type `Cancelled`.
    Cancelled,
    /// Type `Crashed`: the function panicked.
    Crashed,
}

impl StateName {
    /// The name as Prefect spells it (`AwaitingRetry`).
    pub const fn as_str(self) -> &'static str {
        match self {
            StateName::Pending => "Pending",
            StateName::Running => "Running",
            StateName::AwaitingRetry => "AwaitingRetry",
            StateName::Retrying => "Retrying",
            StateName::Completed => "Completed",
            StateName::Failed => "Failed",
            StateName::TimedOut => "TimedOut",
            StateName::Cancelled => "Cancelled",
            StateName::Crashed => "Crashed",
        }
    }

    /// The state type this name belongs to.
    pub const fn state_type(self) -> StateType {
        match self {
            StateName::Pending => StateType::Pending,
            StateName::Running | StateName::Retrying => StateType::Running,
            StateName::AwaitingRetry => StateType::Scheduled,
            StateName::Completed => StateType::Completed,
            StateName::Failed | StateName::TimedOut => StateType::Failed,
            StateName::Cancelled => StateType::Cancelled,
            StateName::Crashed => StateType::Crashed,
        }
    }
}

impl fmt::Display for StateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One state of a task or flow run.
///
/// The states a run keeps in its history are `State<()>`: they hold no
/// error. The state handed to a `retry_condition_fn` or a hook is a
/// `State<E>` that lends the attempt's error through [`State::error`].
///
/// It prints as Prefect's `State.__str__` does: `Completed()`,
/// `Failed('Task run encountered an exception Boom: boom')`,
/// `TimedOut('…', type=FAILED)`.
#[derive(Debug, Clone, PartialEq)]
pub struct State<E = ()> {
    name: StateName,
    message: Option<Cow<'static, str>>,
    timestamp: SystemTime,
    scheduled_time: Option<SystemTime>,
    error: Option<E>,
}

impl<E> State<E> {
    /// A state named `name`, stamped now, without message or error.
    pub fn new(name: StateName) -> Self {
        Self {
            name,
            message: None,
            timestamp: SystemTime::now(),
            scheduled_time: None,
            error: None,
        }
    }

    /// A state named `name` entered at `timestamp`.
    #[inline]
    pub(crate) fn at(name: StateName, timestamp: SystemTime) -> Self {
        Self {
            name,
            message: None,
            timestamp,
            scheduled_time: None,
            error: None,
        }
    }

    /// This state with a message.
    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// This state holding `error` (see [`State::error`]).
    pub fn with_error<F>(self, error: F) -> State<F> {
        State {
            name: self.name,
            message: self.message,
            timestamp: self.timestamp,
            scheduled_time: self.scheduled_time,
            error: Some(error),
        }
    }

    /// An `AwaitingRetry` state entered at `now`, scheduled `delay` later.
    pub(crate) fn awaiting_retry(now: SystemTime, delay: std::time::Duration) -> Self {
        let mut state = Self::at(StateName::AwaitingRetry, now);
        state.scheduled_time = Some(
            state
                .timestamp
                .checked_add(delay)
                .unwrap_or(state.timestamp),
        );
        state
    }

    /// The name (`AwaitingRetry`).
    pub fn name(&self) -> StateName {
        self.name
    }

    /// The type (`Scheduled` for `AwaitingRetry`).
    pub fn state_type(&self) -> StateType {
        self.name.state_type()
    }

    /// The message, if any.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// When the run entered this state (wall clock).
    pub fn timestamp(&self) -> SystemTime {
        self.timestamp
    }

    /// For `AwaitingRetry`: when the retry starts (the timestamp plus the
    /// delay, exactly).
    pub fn scheduled_time(&self) -> Option<SystemTime> {
        self.scheduled_time
    }

    /// The error the failed attempt returned, when this state describes
    /// one (`Failed` handed to a condition or hook); `None` for a timeout,
    /// a panic, and every state in a run's history.
    pub fn error(&self) -> Option<&E> {
        self.error.as_ref()
    }

    /// Whether the state is final (Completed, Failed, Cancelled, Crashed).
    pub fn is_final(&self) -> bool {
        self.state_type().is_final()
    }

    /// Takes the error back out, leaving the rest of the state.
    pub(crate) fn into_error(self) -> (State, Option<E>) {
        let State {
            name,
            message,
            timestamp,
            scheduled_time,
            error,
        } = self;
        let state = State {
            name,
            message,
            timestamp,
            scheduled_time,
            error: None,
        };
        (state, error)
    }
}

impl State {
    /// The same state, lending `error` (for a hook or condition).
    pub(crate) fn lend<E>(&self, error: Option<E>) -> State<E> {
        State {
            name: self.name,
            message: self.message.clone(),
            timestamp: self.timestamp,
            scheduled_time: self.scheduled_time,
            error,
        }
    }
}

impl<E> fmt::Display for State<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        let mut sep = "";
        if let Some(message) = self.message.as_deref().filter(|m| !m.is_empty()) {
            write_py_repr(f, message)?;
            sep = ", ";
        }
        let ty = self.state_type();
        if !ty.as_str().eq_ignore_ascii_case(self.name.as_str()) {
            write!(f, "{sep}type={ty}")?;
        }
        f.write_str(")")
    }
}

/// Writes `s` as Python's `repr` of a `str` would: single quotes unless the
/// text holds a single quote and no double quote.
pub(crate) fn write_py_repr(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    write!(f, "{quote}")?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c == quote => write!(f, "\\{c}")?,
            c => write!(f, "{c}")?,
        }
    }
    write!(f, "{quote}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn names_map_to_prefect_types() {
        assert_eq!(StateName::AwaitingRetry.state_type(), StateType::Scheduled);
        assert_eq!(StateName::Retrying.state_type(), StateType::Running);
        assert_eq!(StateName::TimedOut.state_type(), StateType::Failed);
        assert!(StateType::Crashed.is_final());
        assert!(!StateType::Scheduled.is_final());
    }

    #[test]
    fn display_follows_prefect_state_str() {
        assert_eq!(
            State::<()>::new(StateName::Completed).to_string(),
            "Completed()"
        );
        assert_eq!(
            State::<()>::new(StateName::Failed)
                .with_message("boom")
                .to_string(),
            "Failed('boom')"
        );
        assert_eq!(
            State::<()>::new(StateName::TimedOut)
                .with_message("Task run exceeded timeout of 1.0 second(s)")
                .to_string(),
            "TimedOut('Task run exceeded timeout of 1.0 second(s)', type=FAILED)"
        );
        assert_eq!(
            State::<()>::new(StateName::Retrying).to_string(),
            "Retrying(type=RUNNING)"
        );
        assert_eq!(
            State::<()>::new(StateName::Failed)
                .with_message("it's")
                .to_string(),
            "Failed(\"it's\")"
        );
        assert_eq!(
            State::<()>::new(StateName::Failed)
                .with_message("a'b\"c")
                .to_string(),
            "Failed('a\\'b\"c')"
        );
    }

    #[test]
    fn awaiting_retry_is_scheduled_exactly_delay_later() {
        let s = State::<()>::awaiting_retry(SystemTime::now(), Duration::from_millis(2500));
        let gap = s.scheduled_time().unwrap().duration_since(s.timestamp());
        assert_eq!(gap.unwrap(), Duration::from_millis(2500));
    }

    #[test]
    fn an_error_is_lent_and_taken_back() {
        let s = State::<()>::new(StateName::Failed).with_error("e");
        assert_eq!(s.error(), Some(&"e"));
        let (plain, err) = s.into_error();
        assert_eq!(plain.error(), None);
        assert_eq!(err, Some("e"));
    }
}
