//! The retry schedule a task without its own retry parameters gets from the
//! defaults: for each retry, the delay before it and — with a jitter
//! factor — the band Prefect's clamped Poisson interval draws from. The
//! bounds come from the SDK's own jitter math (`cfgd_sdk::retry::jitter`),
//! so the picture is the engine's, not a second implementation of it.
//!
//! Candidate values (typed into the console before they are set) are
//! checked by the service's `Validate`, with its typed problems, and parsed
//! with the one settings parser.

use cfgd_sdk::retry::jitter::lower_clamp_multiple;
use cfgd_settings::{Delays, Value};
use serde_json::{Value as Json, json};

/// `PREFECT_TASKS_DEFAULT_RETRIES`.
pub(super) const RETRIES: &str = "PREFECT_TASKS_DEFAULT_RETRIES";
/// `PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS`.
pub(super) const DELAYS: &str = "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS";
/// `PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR`.
pub(super) const JITTER: &str = "PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR";

/// Rows drawn at most; later retries repeat the last delay.
const MAX_ROWS: u32 = 100;

/// Prefect's `poisson_interval` draws `−ln(max(1 − U, 1e−10))·μ`: never more
/// than `−ln(1e−10)` ≈ 23.03 times the delay, whatever the factor.
fn guard_multiple() -> f64 {
    -(1e-10f64).ln()
}

/// The defaults a schedule is drawn from.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Params {
    /// Retries after the first attempt.
    pub(super) retries: u32,
    /// The delays (retry k waits `list[min(k−1, len−1)]`).
    pub(super) delays: Delays,
    /// The jitter factor, if any.
    pub(super) jitter: Option<f64>,
}

impl Params {
    /// From typed values (absent ones take the catalogue's defaults: no
    /// retries, no delay, no jitter).
    pub(super) fn from_values(
        retries: Option<&Value>,
        delays: Option<&Value>,
        jitter: Option<&Value>,
    ) -> Self {
        Self {
            retries: retries
                .and_then(Value::as_integer)
                .map_or(0, |r| u32::try_from(r.max(0)).unwrap_or(u32::MAX)),
            delays: delays
                .and_then(Value::as_delays)
                .cloned()
                .unwrap_or_else(|| Delays::scalar(0.0).expect("0 is a valid delay")),
            jitter: jitter.and_then(Value::as_number),
        }
    }
}

/// One retry's wait: the delay and the band a jittered delay falls in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Wait {
    /// 1-based.
    pub(super) retry: u32,
    /// The delay before it, in seconds.
    pub(super) delay: f64,
    /// The shortest and longest jittered delay (the delay itself when no
    /// jitter applies).
    pub(super) low: f64,
    pub(super) high: f64,
}

/// The waits before each retry (at most [`MAX_ROWS`]). Jitter applies, as
/// in the engine, only when the factor and the delay are both above 0.
pub(super) fn waits(p: &Params) -> Vec<Wait> {
    (1..=p.retries.min(MAX_ROWS))
        .map(|retry| {
            let delay = p.delays.for_retry(retry);
            let (low, high) = match p.jitter {
                Some(c) if c > 0.0 && delay > 0.0 => {
                    let k = 1.0 + c;
                    (
                        (delay * lower_clamp_multiple(k)).max(0.0),
                        delay * k.min(guard_multiple()),
                    )
                }
                _ => (delay, delay),
            };
            Wait {
                retry,
                delay,
                low,
                high,
            }
        })
        .collect()
}

/// The schedule as the console draws it.
pub(super) fn to_json(p: &Params) -> Json {
    let waits = waits(p);
    let sum = |f: fn(&Wait) -> f64| waits.iter().map(f).sum::<f64>();
    json!({
        "retries": p.retries,
        "delays": p.delays.seconds(),
        "delays_text": p.delays.to_string(),
        "jitter": p.jitter,
        "jittered": p.jitter.is_some_and(|c| c > 0.0),
        "waits": waits.iter().map(|w| json!({
            "retry": w.retry,
            "delay": w.delay,
            "low": w.low,
            "high": w.high,
        })).collect::<Vec<_>>(),
        "shown": waits.len(),
        "total": {"delay": sum(|w| w.delay), "low": sum(|w| w.low), "high": sum(|w| w.high)},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(retries: u32, delays: Vec<f64>, jitter: Option<f64>) -> Params {
        Params {
            retries,
            delays: Delays::list(delays).unwrap(),
            jitter,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn one_ten_a_hundred_with_half_jitter_has_prefects_bands() {
        let w = waits(&params(4, vec![1.0, 10.0, 100.0], Some(0.5)));
        let got: Vec<(f64, f64, f64)> = w.iter().map(|w| (w.delay, w.low, w.high)).collect();
        // lower multiple for k = 1.5 is log2(2^1.5 / (2^1.5 − 1)) = 0.6294;
        // the last delay repeats.
        let want = [
            (1.0, 0.6294, 1.5),
            (10.0, 6.294, 15.0),
            (100.0, 62.94, 150.0),
            (100.0, 62.94, 150.0),
        ];
        assert_eq!(got.len(), want.len());
        for ((d, lo, hi), (wd, wlo, whi)) in got.iter().zip(want) {
            assert!(
                close(*d, wd) && (lo - wlo).abs() < 1e-3 * wd && close(*hi, whi),
                "{got:?}"
            );
        }
    }

    #[test]
    fn no_jitter_for_a_zero_factor_or_a_zero_delay() {
        for p in [
            params(2, vec![0.0, 5.0], Some(0.5)),
            params(2, vec![0.0, 5.0], None),
        ] {
            let w = waits(&p);
            assert_eq!(
                (w[0].low, w[0].high),
                (0.0, 0.0),
                "a zero delay retries at once"
            );
            if p.jitter.is_none() {
                assert_eq!((w[1].low, w[1].high), (5.0, 5.0));
            }
        }
        let w = waits(&params(1, vec![5.0], Some(0.0)));
        assert_eq!((w[0].low, w[0].high), (5.0, 5.0));
    }

    #[test]
    fn a_huge_factor_is_capped_by_prefects_guard() {
        let w = waits(&params(1, vec![2.0], Some(99.0)));
        assert_eq!(w[0].low, 0.0, "k ≥ 50: the lower multiple is 0");
        assert!(close(w[0].high, 2.0 * 23.02585), "{:?}", w[0]);
    }

    #[test]
    fn every_delay_the_engine_draws_falls_in_the_band_shown() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(14);
        for c in [0.1, 0.5, 1.0, 3.0, 30.0] {
            let w = waits(&params(1, vec![10.0], Some(c)))[0];
            let (mut lo, mut hi) = (f64::MAX, 0.0f64);
            for _ in 0..20_000 {
                let d = cfgd_sdk::retry::jitter::clamped_poisson_interval(10.0, c, &mut rng);
                assert!(
                    d >= w.low - 1e-9 && d <= w.high + 1e-9,
                    "c={c}: {d} outside {w:?}"
                );
                (lo, hi) = (lo.min(d), hi.max(d));
            }
            // The band is tight: draws come close to its ends (the top of a
            // wide band is too unlikely to be reached in a few draws).
            assert!(
                lo - w.low < 0.02 * (w.high - w.low),
                "c={c}: lowest {lo}, {w:?}"
            );
            if c <= 3.0 {
                assert!(
                    w.high - hi < 0.1 * (w.high - w.low),
                    "c={c}: highest {hi}, {w:?}"
                );
            }
        }
    }

    #[test]
    fn many_retries_are_drawn_up_to_the_row_limit() {
        let p = params(10_000, vec![1.0], None);
        let j = to_json(&p);
        assert_eq!(j["shown"], MAX_ROWS);
        assert_eq!(j["retries"], 10_000);
    }
}
