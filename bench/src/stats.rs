//! Numbers in, summaries out: exact percentiles of one run's samples, and
//! the median/min/max of one figure over several runs.
//!
//! Sample counts here are modest (at most a few hundred thousand latencies
//! per run), so percentiles are computed exactly by sorting rather than
//! with a histogram.

use std::time::Duration;

use serde::Serialize;

/// One run's latency samples, in nanoseconds.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    ns: Vec<u64>,
    sorted: bool,
}

impl Samples {
    /// No samples yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample.
    pub fn push(&mut self, d: Duration) {
        self.ns
            .push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: Samples) {
        self.ns.extend(other.ns);
        self.sorted = false;
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.ns.len()
    }

    /// No samples.
    pub fn is_empty(&self) -> bool {
        self.ns.is_empty()
    }

    /// The `q`-quantile (`0.5` for the median, `0.99` for p99), by the
    /// nearest-rank method: the smallest sample with at least `q` of all
    /// samples at or below it. `None` when there are no samples.
    pub fn quantile(&mut self, q: f64) -> Option<Duration> {
        if self.ns.is_empty() {
            return None;
        }
        if !self.sorted {
            self.ns.sort_unstable();
            self.sorted = true;
        }
        let n = self.ns.len();
        // Nearest rank: ceil(q * n), 1-based.
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
        Some(Duration::from_nanos(self.ns[rank - 1]))
    }

    /// The median, in microseconds (`NaN` when empty).
    pub fn p50_us(&mut self) -> f64 {
        self.quantile(0.5).map_or(f64::NAN, us)
    }

    /// The 99th percentile, in microseconds (`NaN` when empty).
    pub fn p99_us(&mut self) -> f64 {
        self.quantile(0.99).map_or(f64::NAN, us)
    }
}

/// A duration in microseconds.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One figure over several runs: each run's value and their median, min
/// and max. Runs that produced no value (`NaN`) are kept in `runs` as
/// `null` and left out of the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverRuns {
    /// The value of each run, in run order.
    pub runs: Vec<Option<f64>>,
    /// The median over the runs that have a value (the mean of the two
    /// middle ones for an even count).
    pub median: Option<f64>,
    /// The smallest value.
    pub min: Option<f64>,
    /// The largest value.
    pub max: Option<f64>,
}

impl OverRuns {
    /// Summarises `runs`.
    pub fn new(runs: &[f64]) -> Self {
        let mut ok: Vec<f64> = runs.iter().copied().filter(|v| v.is_finite()).collect();
        ok.sort_by(f64::total_cmp);
        let median = match ok.len() {
            0 => None,
            n if n % 2 == 1 => Some(ok[n / 2]),
            n => Some((ok[n / 2 - 1] + ok[n / 2]) / 2.0),
        };
        Self {
            runs: runs.iter().map(|v| v.is_finite().then_some(*v)).collect(),
            median,
            min: ok.first().copied(),
            max: ok.last().copied(),
        }
    }
}

/// `a / b` run by run (`NaN` where either is missing or `b` is zero).
pub fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            if x.is_finite() && y.is_finite() && *y != 0.0 {
                x / y
            } else {
                f64::NAN
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values_us: &[u64]) -> Samples {
        let mut s = Samples::new();
        for v in values_us {
            s.push(Duration::from_micros(*v));
        }
        s
    }

    #[test]
    fn nearest_rank_quantiles() {
        let mut s = samples(&[5, 1, 4, 2, 3, 10, 9, 8, 7, 6]);
        assert_eq!(s.quantile(0.5), Some(Duration::from_micros(5)));
        assert_eq!(s.quantile(0.9), Some(Duration::from_micros(9)));
        assert_eq!(s.quantile(0.99), Some(Duration::from_micros(10)));
        assert_eq!(s.quantile(0.0), Some(Duration::from_micros(1)));
        assert_eq!(s.p50_us(), 5.0);
    }

    #[test]
    fn p99_of_a_hundred_samples_is_the_ninety_ninth() {
        let mut s = samples(&(1..=100).rev().collect::<Vec<_>>());
        assert_eq!(s.p99_us(), 99.0);
    }

    #[test]
    fn no_samples_no_quantile() {
        let mut s = Samples::new();
        assert_eq!(s.quantile(0.5), None);
        assert!(s.p99_us().is_nan());
    }

    #[test]
    fn summary_over_runs_skips_missing_runs() {
        let o = OverRuns::new(&[3.0, f64::NAN, 1.0, 2.0]);
        assert_eq!(o.runs, vec![Some(3.0), None, Some(1.0), Some(2.0)]);
        assert_eq!((o.median, o.min, o.max), (Some(2.0), Some(1.0), Some(3.0)));
        assert_eq!(OverRuns::new(&[1.0, 4.0]).median, Some(2.5));
        assert_eq!(OverRuns::new(&[]).median, None);
    }

    #[test]
    fn ratios_are_taken_run_by_run() {
        let r = ratios(&[2.0, 3.0, 1.0], &[1.0, 0.0, f64::NAN]);
        assert_eq!(r[0], 2.0);
        assert!(r[1].is_nan() && r[2].is_nan());
    }
}
