//! Server-suggested delays (a cfgd extension: Prefect has none). An error
//! can carry the delay its server asked for — HTTP `Retry-After`, gRPC
//! `google.rpc.RetryInfo` — and a task that is told how to find it
//! ([`Task::suggested_delay_fn`](super::Task::suggested_delay_fn)) waits
//! that long instead of its scheduled delay, without jitter, clamped to
//! `PREFECT_TASKS_DEFAULT_RETRY_MAX_SUGGESTED_DELAY_SECONDS`. The retry's
//! log line says where the delay came from.

use std::time::{Duration, SystemTime};

/// A delay a server asked for, and where it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuggestedDelay {
    delay: Duration,
    source: &'static str,
}

/// Reads the delay an error suggests: `Fn(&E) -> Option<SuggestedDelay>`.
pub type SuggestFn<E> = dyn Fn(&E) -> Option<SuggestedDelay> + Send + Sync;

impl SuggestedDelay {
    /// `delay`, as suggested by `source` (named in the retry's log line).
    pub fn new(delay: Duration, source: &'static str) -> Self {
        Self { delay, source }
    }

    /// A delay from an HTTP `Retry-After` header.
    pub fn retry_after(delay: Duration) -> Self {
        Self::new(delay, "Retry-After")
    }

    /// Parses an HTTP `Retry-After` value (RFC 9110 §10.2.3): a number of
    /// seconds, or an HTTP date, which counts from `now` (a date already
    /// past suggests no wait). `None` when it is neither.
    pub fn from_retry_after(value: &str, now: SystemTime) -> Option<Self> {
        let value = value.trim();
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Self::retry_after(Duration::from_secs(seconds)));
        }
        let at = httpdate::parse_http_date(value).ok()?;
        Some(Self::retry_after(
            at.duration_since(now).unwrap_or(Duration::ZERO),
        ))
    }

    /// The `google.rpc.RetryInfo` detail of a gRPC status, if it has one.
    #[cfg(feature = "client")]
    pub fn from_grpc_status(status: &tonic::Status) -> Option<Self> {
        use tonic_types::StatusExt;
        let delay = status.get_details_retry_info()?.retry_delay?;
        Some(Self::new(delay, "gRPC RetryInfo"))
    }

    /// The delay asked for.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Where it came from (`Retry-After`, `gRPC RetryInfo`).
    pub fn source(&self) -> &'static str {
        self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            SuggestedDelay::from_retry_after(" 120 ", now),
            Some(SuggestedDelay::retry_after(Duration::from_secs(120)))
        );
        assert_eq!(
            SuggestedDelay::from_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now)
                .map(|s| s.delay()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            SuggestedDelay::from_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now)
                .map(|s| s.delay()),
            Some(Duration::ZERO),
            "a date in the past: retry now"
        );
        assert_eq!(SuggestedDelay::from_retry_after("soon", now), None);
        assert_eq!(SuggestedDelay::from_retry_after("-5", now), None);
    }

    #[cfg(feature = "client")]
    #[test]
    fn grpc_retry_info_is_read_from_the_status_details() {
        use tonic_types::{ErrorDetails, StatusExt};
        let status = tonic::Status::with_error_details(
            tonic::Code::Unavailable,
            "busy",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(2))),
        );
        assert_eq!(
            SuggestedDelay::from_grpc_status(&status),
            Some(SuggestedDelay::new(
                Duration::from_secs(2),
                "gRPC RetryInfo"
            ))
        );
        assert_eq!(
            SuggestedDelay::from_grpc_status(&tonic::Status::unavailable("x")),
            None
        );
    }
}
