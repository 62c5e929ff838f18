//! The engine's errors: [`ConfigError`] for invalid retry parameters
//! (Prefect's messages), [`RunError`] for how a run ended when it did not
//! complete.

use std::fmt;

use super::state::State;

/// An invalid retry parameter, from a call site or from the defaults.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A delay list (given, or returned by a delay function) longer than
    /// [`MAX_DELAYS`](cfgd_settings::value::MAX_DELAYS).
    #[error("Can not configure more than 50 retry delays per task.")]
    TooManyDelays,
    /// A negative or non-finite delay.
    #[error("Invalid `retry_delay_seconds`: {0}")]
    InvalidDelay(String),
    /// A negative or non-finite jitter factor.
    #[error("`retry_jitter_factor` must be >= 0.")]
    JitterFactor,
    /// A negative or non-finite timeout.
    #[error("`timeout_seconds` must be >= 0.")]
    Timeout,
    /// An async `retry_condition_fn` where the answer is needed at once
    /// (a `tower` retry policy).
    #[error("a tower retry policy needs a synchronous `retry_condition_fn`: it decides at once")]
    AsyncCondition,
}

/// Why a task or flow run did not complete.
///
/// For [`RunError::Failed`] it displays and debugs as the underlying error,
/// as Prefect re-raises the task's own exception: `?` into `anyhow::Error`
/// keeps the original message, and a flow whose task failed logs the
/// task's error.
#[derive(Clone, PartialEq)]
pub enum RunError<E> {
    /// The last attempt returned this error (final state `Failed`).
    Failed(E),
    /// The last attempt returned a Failed state with a message and no
    /// error ([`Fail::Message`](super::Fail), Prefect's
    /// `return Failed(message=…)`); this is the run's final state.
    State(State),
    /// The last attempt panicked (final state `Crashed`).
    Crashed {
        /// The panic's message (`"<non-string panic payload>"` when it had
        /// none).
        message: String,
    },
    /// The last attempt exceeded the timeout (final state `Failed` named
    /// `TimedOut`).
    TimedOut {
        /// The per-attempt timeout, in seconds.
        seconds: f64,
    },
    /// The run's cancellation token fired (final state `Cancelled`); never
    /// retried.
    Cancelled,
    /// The retry parameters resolved for this run are invalid (a delay
    /// function returned more than 50 delays, or a defaults source gave an
    /// invalid value); the function was not called.
    Invalid(ConfigError),
}

impl<E> RunError<E> {
    /// The error the function returned, for [`RunError::Failed`].
    pub fn error(&self) -> Option<&E> {
        match self {
            RunError::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The error the function returned, for [`RunError::Failed`].
    pub fn into_error(self) -> Option<E> {
        match self {
            RunError::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Converts the error of [`RunError::Failed`].
    pub fn map_err<F>(self, f: impl FnOnce(E) -> F) -> RunError<F> {
        match self {
            RunError::Failed(e) => RunError::Failed(f(e)),
            RunError::State(s) => RunError::State(s),
            RunError::Crashed { message } => RunError::Crashed { message },
            RunError::TimedOut { seconds } => RunError::TimedOut { seconds },
            RunError::Cancelled => RunError::Cancelled,
            RunError::Invalid(c) => RunError::Invalid(c),
        }
    }
}

impl<E: fmt::Display> fmt::Display for RunError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Failed(e) => e.fmt(f),
            RunError::State(s) => f.write_str(s.message().unwrap_or("Failed")),
            RunError::Crashed { message } => write!(f, "panicked: {message}"),
            RunError::TimedOut { seconds } => {
                write!(f, "exceeded timeout of {} second(s)", PyFloat(*seconds))
            }
            RunError::Cancelled => f.write_str("cancelled"),
            RunError::Invalid(c) => c.fmt(f),
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for RunError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Failed(e) => e.fmt(f),
            RunError::State(s) => f.debug_tuple("State").field(s).finish(),
            RunError::Crashed { message } => {
                f.debug_struct("Crashed").field("message", message).finish()
            }
            RunError::TimedOut { seconds } => write!(
                f,
                "TaskRunTimeoutError('Scope timed out after {} second(s).')",
                PyFloat(*seconds)
            ),
            RunError::Cancelled => f.write_str("Cancelled"),
            RunError::Invalid(c) => f.debug_tuple("Invalid").field(c).finish(),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for RunError<E> {}

/// Prints a float as Python's `str(float)` does (`1.0`, `2.5`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PyFloat(pub(crate) f64);

impl fmt::Display for PyFloat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_finite() && self.0.fract() == 0.0 && self.0.abs() < 1e16 {
            write!(f, "{:.1}", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_prefects() {
        assert_eq!(
            ConfigError::TooManyDelays.to_string(),
            "Can not configure more than 50 retry delays per task."
        );
        assert_eq!(
            ConfigError::JitterFactor.to_string(),
            "`retry_jitter_factor` must be >= 0."
        );
    }

    #[test]
    fn run_error_displays_the_cause() {
        assert_eq!(RunError::Failed("boom").to_string(), "boom");
        assert_eq!(
            RunError::<&str>::TimedOut { seconds: 1.0 }.to_string(),
            "exceeded timeout of 1.0 second(s)"
        );
        assert_eq!(
            RunError::<&str>::Crashed {
                message: "x".into()
            }
            .to_string(),
            "panicked: x"
        );
        assert_eq!(RunError::Failed(3).map_err(|n| n * 2).into_error(), Some(6));
        assert_eq!(format!("{:?}", RunError::Failed("boom")), "\"boom\"");
    }

    #[test]
    fn py_float_keeps_a_decimal_point() {
        assert_eq!(PyFloat(1.0).to_string(), "1.0");
        assert_eq!(PyFloat(0.25).to_string(), "0.25");
    }
}
