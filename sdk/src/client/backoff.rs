//! [`Backoff`]: the waits between a watch's reconnections, from `backon`'s
//! exponential schedule.

use std::time::Duration;

use backon::BackoffBuilder;

/// How long to wait before each reconnection of one outage: doubling from
/// `min` up to `max`, and with jitter each wait is drawn from
/// `[d, 2d)` for that step's `d`, so a fleet that lost the daemon at once
/// does not come back in step. The schedule starts again at `min` once a
/// stream opens.
///
/// # Default
/// 50 ms doubling to 5 s, with jitter from a random seed.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use cfgd_sdk::client::Backoff;
///
/// let b = Backoff::default()
///     .with_min(Duration::from_millis(100))
///     .with_max(Duration::from_millis(400))
///     .without_jitter();
/// let waits: Vec<u128> = b.schedule(0).take(5).map(|d| d.as_millis()).collect();
/// assert_eq!(waits, [100, 200, 400, 400, 400]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    jitter: bool,
    seed: Option<u64>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            min: Duration::from_millis(50),
            max: Duration::from_secs(5),
            jitter: true,
            seed: None,
        }
    }
}

impl Backoff {
    /// The first wait of an outage.
    pub const fn with_min(mut self, min: Duration) -> Self {
        self.min = min;
        self
    }

    /// The longest step (with jitter a wait can reach twice this).
    pub const fn with_max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// Waits exactly the doubling schedule (for tests that spell it out).
    pub const fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// Draws the jitter from this seed instead of a random one, so the
    /// waits repeat from run to run.
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The first wait of an outage.
    pub fn min(&self) -> Duration {
        self.min
    }

    /// The longest step.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The waits of the `outage`-th outage (0 first), endless. With a seed,
    /// each outage draws its own jitter, the same on every run.
    pub fn schedule(&self, outage: u64) -> impl Iterator<Item = Duration> + Send + use<> {
        let mut b = backon::ExponentialBuilder::new()
            .with_min_delay(self.min)
            .with_max_delay(self.max.max(self.min))
            .without_max_times();
        if self.jitter {
            b = b.with_jitter();
        }
        if let Some(seed) = self.seed {
            b = b.with_jitter_seed(seed.wrapping_add(outage));
        }
        b.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_repeats_its_waits_and_each_outage_draws_its_own() {
        let b = Backoff::default().with_seed(42);
        let waits = |outage| b.schedule(outage).take(8).collect::<Vec<_>>();
        assert_eq!(waits(3), waits(3));
        assert_ne!(waits(3), waits(4));
    }

    proptest::proptest! {
        /// Jitter stretches each step by less than itself: never shorter
        /// than the plain schedule, never twice as long.
        #[test]
        fn a_jittered_wait_stays_within_its_step_and_twice_it(seed: u64, outage in 0u64..1000) {
            let plain = Backoff::default().without_jitter();
            let jittered = Backoff::default().with_seed(seed);
            for (w, d) in jittered.schedule(outage).zip(plain.schedule(0)).take(12) {
                proptest::prop_assert!(w >= d && w < d * 2, "{w:?} for step {d:?}");
            }
        }
    }
}
