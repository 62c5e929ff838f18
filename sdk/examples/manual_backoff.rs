//! Prefect's custom retry behaviour with a list of delays: retry *k* waits
//! the *k*-th entry (the last one repeats when there are more retries).
//!
//! ```python
//! @task(retries=3, retry_delay_seconds=[1, 10, 100])
//! def some_task_with_manual_backoff_retries():
//!     ...
//! ```
//!
//! Here the task fetches from a local service that fails three times with
//! 503; the delays are scaled down a hundredfold (`[0.01, 0.1, 1]` s).
//!
//! `cargo run -p cfgd-sdk --example manual_backoff`

#[path = "common/mod.rs"]
mod common;

use cfgd_sdk::retry::task;
use common::{FetchError, FlakyService};

#[task(retries = 3, retry_delay_seconds = [0.01, 0.1, 1.0])]
async fn some_task_with_manual_backoff_retries(url: &str) -> Result<String, FetchError> {
    common::get(url).await
}

/// The scenario, checked: three 503s, retries after 0.01, 0.1 and 1 s.
pub(crate) async fn run() {
    println!(
        "manual_backoff: retries=3, retry_delay_seconds=[0.01, 0.1, 1] \
         (Prefect's [1, 10, 100] s, scaled down 100x)"
    );
    let service = FlakyService::start(&[503, 503, 503], "ok").await;

    let (run, result) = some_task_with_manual_backoff_retries_with_history(service.url()).await;

    let delays = common::checked_waits(&run, &service);
    println!("  result: {result:?}");
    println!(
        "  attempts: {}, history: {}",
        run.run_count(),
        common::history(&run)
    );
    common::assert_seconds(&delays, &[0.01, 0.1, 1.0]);
    assert_eq!(result.as_deref(), Ok("ok"));
    assert_eq!(run.run_count(), 4);
    assert_eq!(run.state_names().last(), Some(&"Completed"));
}

#[tokio::main]
async fn main() {
    common::init_logging();
    run().await;
}
