//! How far a retry delay overshoots: a task with `retries = 1` and a 50 ms
//! delay whose function fails once, timed from the end of the failed
//! attempt to the start of the retry, minus the 50 ms. With the async
//! driver (`Task::run`, a tokio sleep) and the blocking one
//! (`Task::run_blocking`, a thread sleep).
//!
//! The cost of a failed attempt is the SDK's own criterion bench
//! (`sdk/benches/retry.rs`); `bench/run.sh` runs it and the report reads
//! its results ([`crate::suite::criterion`]).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use cfgd_sdk::retry::Task;

use crate::stats::Samples;

/// The scheduled delay.
pub const DELAY: Duration = Duration::from_millis(50);

/// The attempt function: fails the first time (noting when), then returns
/// the time since that failure.
fn attempt(failed_at: &Mutex<Option<Instant>>) -> Result<Duration, &'static str> {
    let mut at = failed_at.lock().unwrap_or_else(|e| e.into_inner());
    match *at {
        None => {
            *at = Some(Instant::now());
            Err("the first attempt fails")
        }
        Some(t) => Ok(t.elapsed()),
    }
}

fn task() -> Task<&'static str> {
    Task::new("bench")
        .retries(1)
        .retry_delay_seconds(DELAY.as_secs_f64())
}

/// `samples` overshoots of the async driver, on the current runtime.
///
/// # Errors
/// When the retry does not succeed (it always should).
pub async fn overshoot_async(samples: usize) -> anyhow::Result<Samples> {
    let task = task();
    let mut s = Samples::new();
    for _ in 0..samples {
        let failed_at = Mutex::new(None);
        let gap = task
            .run(|| async { attempt(&failed_at) })
            .await
            .map_err(|e| anyhow::anyhow!("the retry failed: {e}"))?;
        s.push(gap.saturating_sub(DELAY));
    }
    Ok(s)
}

/// `samples` overshoots of the blocking driver, on a blocking thread.
///
/// # Errors
/// When the retry does not succeed (it always should).
pub async fn overshoot_blocking(samples: usize) -> anyhow::Result<Samples> {
    tokio::task::spawn_blocking(move || {
        let task = task();
        let mut s = Samples::new();
        for _ in 0..samples {
            let failed_at = Mutex::new(None);
            let gap = task
                .run_blocking(|| attempt(&failed_at))
                .map_err(|e| anyhow::anyhow!("the retry failed: {e}"))?;
            s.push(gap.saturating_sub(DELAY));
        }
        Ok(s)
    })
    .await?
}
