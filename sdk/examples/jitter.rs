//! Prefect's exponential backoff with jitter, so that many clients retrying
//! at once spread out: each delay μ becomes a draw from Prefect's clamped
//! Poisson interval, within `[μ·log2(2^k/(2^k−1)), μ·k]` for
//! `k = 1 + retry_jitter_factor`, averaging about μ.
//!
//! ```python
//! @task(
//!     retries=3,
//!     retry_delay_seconds=exponential_backoff(backoff_factor=10),
//!     retry_jitter_factor=1,
//! )
//! def some_task_with_exponential_backoff_retries():
//!     ...
//! ```
//!
//! Here the task fetches from a local service that fails three times with
//! 503; the delays are scaled down a hundredfold (`backoff_factor = 0.1`).
//! The draws differ from run to run; each must fall within its bounds.
//!
//! `cargo run -p cfgd-sdk --example jitter`

#[path = "common/mod.rs"]
mod common;

use cfgd_sdk::retry::jitter::lower_clamp_multiple;
use cfgd_sdk::retry::{exponential_backoff, task};
use common::{FetchError, FlakyService};

const JITTER: f64 = 1.0;

#[task(
    retries = 3,
    retry_delay_seconds = exponential_backoff(0.1),
    retry_jitter_factor = JITTER
)]
async fn some_task_with_exponential_backoff_retries(url: &str) -> Result<String, FetchError> {
    common::get(url).await
}

/// The scenario, checked: three 503s, each retry delay within its bounds.
pub(crate) async fn run() {
    println!(
        "jitter: retries=3, retry_delay_seconds=exponential_backoff(0.1), retry_jitter_factor={JITTER} \
         (Prefect's backoff_factor=10, scaled down 100x)"
    );
    let service = FlakyService::start(&[503; 3], "ok").await;

    let (run, result) =
        some_task_with_exponential_backoff_retries_with_history(service.url()).await;

    let delays = common::checked_waits(&run, &service);
    println!("  result: {result:?}");
    println!(
        "  attempts: {}, history: {}",
        run.run_count(),
        common::history(&run)
    );
    assert_eq!(result.as_deref(), Ok("ok"));
    assert_eq!(delays.len(), 3);
    let k = 1.0 + JITTER;
    for (retry, (delay, base)) in delays.iter().zip([0.1, 0.2, 0.4]).enumerate() {
        let (lower, upper) = (base * lower_clamp_multiple(k), base * k);
        println!(
            "  retry {} jitter: base {base:.3} s drawn as {delay:.3} s, within [{lower:.4}, {upper:.3}] s",
            retry + 1
        );
        assert!(
            (lower..=upper).contains(delay),
            "{delay} outside [{lower}, {upper}]"
        );
    }
}

#[tokio::main]
async fn main() {
    common::init_logging();
    run().await;
}
