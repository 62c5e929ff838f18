//! Retry jitter: Prefect's `clamped_poisson_interval`
//! (`prefect/utilities/math.py`), formula for formula, and the random
//! source a task draws from.
//!
//! For a delay μ and a clamping factor c, with k = 1 + c, the jittered delay
//! is an exponential with mean μ truncated to
//! [μ·log2(2^k/(2^k−1)), μ·k] (the lower multiple is 0 for k ≥ 50), drawn by
//! inverse CDF. Its mean stays within 1.4 % of μ.

use std::sync::{Arc, LazyLock, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `exponential_cdf(x, μ) = 1 − exp(−x/μ)`.
fn exponential_cdf(x: f64, average: f64) -> f64 {
    1.0 - (-x / average).exp()
}

/// Prefect's `lower_clamp_multiple(k)`: `log2(max(2^k / (2^k − 1), 1e−10))`
/// for k < 50, else 0.
pub fn lower_clamp_multiple(k: f64) -> f64 {
    if k >= 50.0 {
        0.0
    } else {
        let p = 2f64.powf(k);
        (p / (p - 1.0)).max(1e-10).log2()
    }
}

/// Prefect's `poisson_interval(μ, lower, upper)`:
/// `−ln(max(1 − U, 1e−10))·μ` with U uniform on `[lower, upper)`.
pub fn poisson_interval<R: Rng + ?Sized>(average: f64, lower: f64, upper: f64, rng: &mut R) -> f64 {
    // Python's random.uniform(a, b) is a + (b - a) * random().
    let u = lower + (upper - lower) * rng.random::<f64>();
    -(1.0 - u).max(1e-10).ln() * average
}

/// Prefect's `clamped_poisson_interval(μ, c)`: a delay near `average`,
/// never above `average·(1 + c)` nor below
/// `average·lower_clamp_multiple(1 + c)`.
///
/// The engine calls it only when `average > 0` and `clamping_factor > 0`
/// (Prefect rejects a factor of 0 here; the engine skips jitter instead).
pub fn clamped_poisson_interval<R: Rng + ?Sized>(
    average: f64,
    clamping_factor: f64,
    rng: &mut R,
) -> f64 {
    let k = 1.0 + clamping_factor;
    let upper = average * k;
    let lower = (average * lower_clamp_multiple(k)).max(0.0);
    poisson_interval(
        average,
        exponential_cdf(lower, average),
        exponential_cdf(upper, average),
        rng,
    )
}

/// Where a task's jitter comes from: its own seeded stream, or the process
/// stream seeded from the operating system.
#[derive(Debug, Clone, Default)]
pub(crate) enum JitterRng {
    /// The process-wide generator, seeded from OS entropy on first use.
    #[default]
    Process,
    /// A task's own stream, seeded with `jitter_seed`; clones share it.
    Seeded(Arc<Mutex<StdRng>>),
}

impl JitterRng {
    pub(crate) fn seeded(seed: u64) -> Self {
        JitterRng::Seeded(Arc::new(Mutex::new(StdRng::seed_from_u64(seed))))
    }

    /// One jittered delay (the lock is taken only here, when jitter
    /// applies).
    pub(crate) fn jitter(&self, average: f64, clamping_factor: f64) -> f64 {
        static PROCESS: LazyLock<Mutex<StdRng>> =
            LazyLock::new(|| Mutex::new(StdRng::from_os_rng()));
        let rng = match self {
            JitterRng::Process => &*PROCESS,
            JitterRng::Seeded(rng) => rng,
        };
        // A panic while holding this lock cannot leave the generator in a
        // state that matters, so a poisoned lock is used as is.
        let mut rng = rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        clamped_poisson_interval(average, clamping_factor, &mut *rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The mean of the truncated exponential on [a·μ, b·μ], over μ.
    fn analytic_mean(a: f64, b: f64) -> f64 {
        1.0 + (a * (-a).exp() - b * (-b).exp()) / ((-a).exp() - (-b).exp())
    }

    #[test]
    fn lower_multiples_match_the_reference_table() {
        for (c, lower) in [
            (0.1, 0.9065),
            (0.3, 0.7518),
            (0.5, 0.6294),
            (1.0, 0.4150),
            (2.0, 0.1926),
            (10.0, 0.0007),
        ] {
            let got = lower_clamp_multiple(1.0 + c);
            assert!((got - lower).abs() < 5e-5, "c={c}: {got} vs {lower}");
        }
        assert_eq!(lower_clamp_multiple(50.0), 0.0);
        assert!(lower_clamp_multiple(49.9) > 0.0);
    }

    #[test]
    fn extreme_draws_land_on_the_bounds() {
        // U = 0 gives the lower bound; U → 1 approaches the upper bound.
        struct Fixed(u64);
        impl rand::RngCore for Fixed {
            fn next_u32(&mut self) -> u32 {
                self.0 as u32
            }
            fn next_u64(&mut self) -> u64 {
                self.0
            }
            fn fill_bytes(&mut self, dst: &mut [u8]) {
                dst.fill(0);
            }
        }
        let low = clamped_poisson_interval(10.0, 0.5, &mut Fixed(0));
        assert!(
            (low - 10.0 * lower_clamp_multiple(1.5)).abs() < 1e-9,
            "{low}"
        );
        let high = clamped_poisson_interval(10.0, 0.5, &mut Fixed(u64::MAX));
        assert!((high - 15.0).abs() < 1e-9 && high <= 15.0, "{high}");
        // The 1e-10 guard caps a huge factor at about 23.03·μ.
        let capped = clamped_poisson_interval(1.0, 100.0, &mut Fixed(u64::MAX));
        assert!((capped - 1e-10f64.ln().abs()).abs() < 1e-6, "{capped}");
    }

    #[test]
    fn means_stay_within_two_percent_with_a_fixed_seed() {
        for c in [0.1, 0.5, 1.0, 2.0, 10.0] {
            let mut rng = StdRng::seed_from_u64(7);
            let mu = 10.0;
            let n = 100_000;
            let sum: f64 = (0..n)
                .map(|_| clamped_poisson_interval(mu, c, &mut rng))
                .sum();
            let mean = sum / f64::from(n) / mu;
            assert!((mean - 1.0).abs() < 0.02, "c={c}: mean/μ = {mean}");
            // And close to the truncated distribution's own mean.
            let expected = analytic_mean(lower_clamp_multiple(1.0 + c), 1.0 + c);
            assert!(
                (mean - expected).abs() < 0.01,
                "c={c}: {mean} vs {expected}"
            );
        }
    }

    #[test]
    fn a_seeded_stream_is_reproducible() {
        let a = JitterRng::seeded(42);
        let b = JitterRng::seeded(42);
        let xs: Vec<f64> = (0..5).map(|_| a.jitter(10.0, 0.5)).collect();
        let ys: Vec<f64> = (0..5).map(|_| b.jitter(10.0, 0.5)).collect();
        assert_eq!(xs, ys);
        assert!(xs.windows(2).any(|w| w[0] != w[1]));
        let p = JitterRng::Process.jitter(10.0, 0.5);
        assert!((10.0 * lower_clamp_multiple(1.5)..=15.0).contains(&p));
    }

    proptest! {
        #[test]
        fn every_sample_is_within_its_bounds(
            mu in 1e-3f64..1e5,
            c in 0.01f64..60.0,
            seed in any::<u64>(),
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let lower = mu * lower_clamp_multiple(1.0 + c);
            let upper = mu * (1.0 + c);
            for _ in 0..64 {
                let x = clamped_poisson_interval(mu, c, &mut rng);
                prop_assert!(x >= lower && x <= upper, "{x} not in [{lower}, {upper}]");
            }
        }
    }
}
