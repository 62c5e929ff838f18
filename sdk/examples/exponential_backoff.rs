//! Prefect's exponential backoff: `exponential_backoff(backoff_factor)`
//! gives retry *k* a delay of `backoff_factor * 2^(k-1)`.
//!
//! ```python
//! from prefect.tasks import exponential_backoff
//!
//! @task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=10))
//! def some_task_with_exponential_backoff_retries():
//!     ...
//! ```
//!
//! Here the task fetches from a local service that never recovers (503
//! every time), so the delays 10, 20 and 40 s — scaled down a hundredfold
//! with `backoff_factor = 0.1` — are all used and the run ends `Failed`
//! with the retries exhausted.
//!
//! `cargo run -p cfgd-sdk --example exponential_backoff`

#[path = "common/mod.rs"]
mod common;

use cfgd_sdk::retry::{RunError, exponential_backoff, task};
use common::{FetchError, FlakyService};

#[task(retries = 3, retry_delay_seconds = exponential_backoff(0.1))]
async fn some_task_with_exponential_backoff_retries(url: &str) -> Result<String, FetchError> {
    common::get(url).await
}

/// The scenario, checked: four 503s, retries after 0.1, 0.2 and 0.4 s,
/// then `Failed` with the last 503.
pub(crate) async fn run() {
    println!(
        "exponential_backoff: retries=3, retry_delay_seconds=exponential_backoff(0.1) \
         (Prefect's backoff_factor=10, scaled down 100x)"
    );
    let service = FlakyService::start(&[503; 4], "never").await;

    let (run, result) =
        some_task_with_exponential_backoff_retries_with_history(service.url()).await;

    let delays = common::checked_waits(&run, &service);
    println!("  result: {result:?}");
    println!(
        "  attempts: {}, history: {}",
        run.run_count(),
        common::history(&run)
    );
    common::assert_seconds(&delays, &[0.1, 0.2, 0.4]);
    assert!(
        matches!(&result, Err(RunError::Failed(e)) if e.status() == Some(503)),
        "{result:?}"
    );
    assert_eq!(run.run_count(), 4);
    assert_eq!(run.state_names().last(), Some(&"Failed"));
}

#[tokio::main]
async fn main() {
    common::init_logging();
    run().await;
}
