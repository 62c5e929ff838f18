//! Prefect's first retries example: a task that fetches data from a
//! brittle service, retried twice with a fixed delay.
//!
//! ```python
//! @task(retries=2, retry_delay_seconds=5)
//! def get_data_task(url: str = "https://api.brittle-service.com/endpoint") -> dict:
//!     response = httpx.get(url)
//!     response.raise_for_status()
//!     return response.json()
//! ```
//!
//! Here the service is local and fails twice with 503 before answering;
//! the delay is scaled down tenfold (0.5 s instead of 5 s).
//!
//! `cargo run -p cfgd-sdk --example get_data_task`

#[path = "common/mod.rs"]
mod common;

use cfgd_sdk::retry::task;
use common::{FetchError, FlakyService};

/// Prefect's 5 seconds, scaled down tenfold.
const DELAY: f64 = 0.5;

#[task(retries = 2, retry_delay_seconds = DELAY)]
async fn get_data_task(url: &str) -> Result<String, FetchError> {
    common::get(url).await
}

/// The scenario, checked: two 503s, two retries 0.5 s apart, then the data.
pub(crate) async fn run() {
    println!(
        "get_data_task: retries=2, retry_delay_seconds={DELAY} (Prefect's 5 s, scaled down 10x)"
    );
    let service = FlakyService::start(&[503, 503], r#"{"data": 42}"#).await;

    let (run, result) = get_data_task_with_history(service.url()).await;

    println!("  result: {result:?}");
    println!(
        "  attempts: {}, history: {}",
        run.run_count(),
        common::history(&run)
    );
    assert_eq!(result.as_deref(), Ok(r#"{"data": 42}"#));
    assert_eq!(run.run_count(), 3);
    assert_eq!(service.requests(), 3);
    assert_eq!(
        run.state_names(),
        [
            "Pending",
            "Running",
            "AwaitingRetry",
            "Retrying",
            "AwaitingRetry",
            "Retrying",
            "Completed"
        ]
    );
    common::assert_seconds(&common::checked_waits(&run, &service), &[DELAY, DELAY]);
}

#[tokio::main]
async fn main() {
    common::init_logging();
    run().await;
}
