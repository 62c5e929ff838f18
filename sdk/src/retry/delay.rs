//! `retry_delay_seconds`: a number, a list, or a function of the retry
//! count ([`RetryDelay`]), what a call site may pass ([`IntoRetryDelay`]),
//! [`exponential_backoff`], and the delay before retry *k*.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cfgd_settings::Delays;
use cfgd_settings::value::MAX_DELAYS;

use super::error::ConfigError;

type DelayFn = dyn Fn(u32) -> Vec<f64> + Send + Sync;

/// A task's or flow's `retry_delay_seconds`.
#[derive(Clone)]
pub enum RetryDelay {
    /// A number (every retry waits it) or a list (retry *k* waits
    /// `list[min(k-1, len-1)]`; empty means no delay). Shared, so that a
    /// run takes it without copying.
    Fixed(Arc<Delays>),
    /// A function of the retry count resolved for the run, returning the
    /// delay list; evaluated once at the start of each run.
    Computed {
        /// What the function is (`exponential_backoff(10)`), for `Debug`.
        label: Cow<'static, str>,
        /// The function.
        f: Arc<DelayFn>,
    },
}

impl RetryDelay {
    /// A function of the retry count returning the delay list, evaluated at
    /// the start of each run with the run's resolved `retries`.
    pub fn from_fn(f: impl Fn(u32) -> Vec<f64> + Send + Sync + 'static) -> Self {
        RetryDelay::Computed {
            label: Cow::Borrowed(std::any::type_name_of_val(&f)),
            f: Arc::new(f),
        }
    }

    /// The delays for a run allowing `retries` retries.
    ///
    /// # Errors
    /// When a function returns more than 50 delays or a negative or
    /// non-finite one.
    pub fn resolve(&self, retries: u32) -> Result<Arc<Delays>, ConfigError> {
        match self {
            RetryDelay::Fixed(d) => Ok(d.clone()),
            RetryDelay::Computed { f, .. } => list(f(retries)).map(Arc::new),
        }
    }
}

impl fmt::Debug for RetryDelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryDelay::Fixed(d) => write!(f, "{d}"),
            RetryDelay::Computed { label, .. } => f.write_str(label),
        }
    }
}

/// Prefect's `exponential_backoff`: retry count `n` gives
/// `[factor * 2^r for r in 0..min(n, 50)]`; with more retries than delays
/// the last one repeats.
///
/// ```
/// use cfgd_sdk::retry::exponential_backoff;
///
/// let backoff = exponential_backoff(10);
/// let delays = backoff.resolve(3).unwrap();
/// assert_eq!(delays.seconds(), [10.0, 20.0, 40.0]);
/// ```
pub fn exponential_backoff(backoff_factor: impl Into<f64>) -> RetryDelay {
    let factor = backoff_factor.into();
    RetryDelay::Computed {
        label: Cow::Owned(format!("exponential_backoff({factor})")),
        f: Arc::new(move |retries| {
            (0..retries.min(MAX_DELAYS as u32))
                .map(|r| factor * 2f64.powi(r as i32))
                .collect()
        }),
    }
}

/// What `retry_delay_seconds` accepts: a number of seconds (any integer or
/// float type) or a [`Duration`], an array, `Vec` or slice of them,
/// [`Delays`], a [`RetryDelay`] (such as [`exponential_backoff`]), or a
/// function `Fn(u32) -> Vec<f64>` of the retry count.
pub trait IntoRetryDelay {
    /// The delay.
    ///
    /// # Errors
    /// A negative or non-finite delay, or a list of more than 50.
    fn into_retry_delay(self) -> Result<RetryDelay, ConfigError>;
}

fn scalar(seconds: f64) -> Result<RetryDelay, ConfigError> {
    Delays::scalar(seconds)
        .map(|d| RetryDelay::Fixed(Arc::new(d)))
        .map_err(ConfigError::InvalidDelay)
}

fn list(seconds: Vec<f64>) -> Result<Delays, ConfigError> {
    if seconds.len() > MAX_DELAYS {
        return Err(ConfigError::TooManyDelays);
    }
    Delays::list(seconds).map_err(ConfigError::InvalidDelay)
}

/// A number of seconds; the element type of a delay list.
pub trait Seconds: Copy {
    /// The value in seconds.
    fn seconds(self) -> f64;
}

macro_rules! seconds {
    ($($t:ty),*) => {$(
        impl Seconds for $t {
            #[allow(clippy::cast_lossless, clippy::cast_precision_loss)]
            fn seconds(self) -> f64 {
                self as f64
            }
        }

        impl IntoRetryDelay for $t {
            fn into_retry_delay(self) -> Result<RetryDelay, ConfigError> {
                scalar(self.seconds())
            }
        }
    )*};
}

seconds!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64);

impl Seconds for Duration {
    fn seconds(self) -> f64 {
        self.as_secs_f64()
    }
}

impl IntoRetryDelay for Duration {
    fn into_retry_delay(self) -> Result<RetryDelay, ConfigError> {
        scalar(self.seconds())
    }
}

impl<T: Seconds, const N: usize> IntoRetryDelay for [T; N] {
    fn into_retry_delay(self) -> Result<RetryDelay, ConfigError> {
        self.as_slice().into_retry_delay()
    }
}

impl<T: Seconds> IntoRetryDelay for &[T] {
    fn into_retry_delay(self) -> Result<RetryDelay, ConfigError> {
        list(self.iter().map(|s| s.seconds()).collect()).map(|d| RetryDelay::Fixed(Arc::new(d)))
    }
}

impl<T: Seconds> IntoRetryDelay for Vec<T> {
    fn into_retry_delay(self) -> Result<RetryDelay, ConfigError> {
        self.as_slice().into_retry_delay()
    }
}

impl IntoRetryDelay for Delays {
    fn into_retry_delay(self) -> Result<RetryDelay, ConfigError> {
        if self.seconds().len() > MAX_DELAYS {
            return Err(ConfigError::TooManyDelays);
        }
        Ok(RetryDelay::Fixed(Arc::new(self)))
    }
}

impl IntoRetryDelay for RetryDelay {
    fn into_retry_delay(self) -> Result<RetryDelay, ConfigError> {
        match self {
            RetryDelay::Fixed(d) if d.seconds().len() > MAX_DELAYS => {
                Err(ConfigError::TooManyDelays)
            }
            delay => Ok(delay),
        }
    }
}

impl<F> IntoRetryDelay for F
where
    F: Fn(u32) -> Vec<f64> + Send + Sync + 'static,
{
    fn into_retry_delay(self) -> Result<RetryDelay, ConfigError> {
        Ok(RetryDelay::from_fn(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(delay: impl IntoRetryDelay, retries: u32) -> Vec<f64> {
        let d = delay.into_retry_delay().unwrap();
        let d = d.resolve(retries).unwrap();
        (1..=retries).map(|k| d.for_retry(k)).collect()
    }

    #[test]
    fn schedules_follow_prefect() {
        assert_eq!(schedule(1, 3), [1.0, 1.0, 1.0]);
        assert_eq!(schedule([1, 2, 3], 3), [1.0, 2.0, 3.0]);
        assert_eq!(schedule([1, 2], 3), [1.0, 2.0, 2.0]);
        assert_eq!(schedule(vec![5.0, 6.0, 7.0, 8.0], 2), [5.0, 6.0]);
        assert_eq!(schedule(exponential_backoff(10), 3), [10.0, 20.0, 40.0]);
        assert_eq!(schedule(|n: u32| vec![f64::from(n); 1], 2), [2.0, 2.0]);
        assert_eq!(schedule(Vec::<f64>::new(), 2), [0.0, 0.0]);
        assert_eq!(schedule(Duration::from_millis(250), 2), [0.25, 0.25]);
        assert_eq!(
            schedule([Duration::from_secs(1), Duration::from_millis(1500)], 3),
            [1.0, 1.5, 1.5]
        );
    }

    #[test]
    fn exponential_backoff_caps_at_fifty_delays() {
        let d = exponential_backoff(1).resolve(80).unwrap();
        assert_eq!(d.seconds().len(), 50);
        assert_eq!(d.for_retry(80), 2f64.powi(49));
        assert!(
            exponential_backoff(1)
                .resolve(0)
                .unwrap()
                .seconds()
                .is_empty()
        );
    }

    #[test]
    fn validation_uses_prefects_messages() {
        let err = vec![1; 51].into_retry_delay().unwrap_err();
        assert_eq!(
            err.to_string(),
            "Can not configure more than 50 retry delays per task."
        );
        assert!(vec![1; 50].into_retry_delay().is_ok());
        assert_eq!(
            (-1).into_retry_delay().unwrap_err().to_string(),
            "Invalid `retry_delay_seconds`: every delay must be >= 0, got -1"
        );
        let too_many = RetryDelay::from_fn(|_| vec![1.0; 51]);
        assert_eq!(too_many.resolve(1).unwrap_err(), ConfigError::TooManyDelays);
    }

    #[test]
    fn debug_names_the_form() {
        assert_eq!(
            format!("{:?}", exponential_backoff(10)),
            "exponential_backoff(10)"
        );
        assert_eq!(
            format!("{:?}", [1, 10].into_retry_delay().unwrap()),
            "[1, 10]"
        );
    }
}
