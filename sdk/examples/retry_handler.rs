//! Prefect's custom retry handler: retry on any HTTP status except 401 and
//! 404, never on a connection error, on anything else yes.
//!
//! ```python
//! def retry_handler(task, task_run, state) -> bool:
//!     try:
//!         state.result()
//!     except httpx.HTTPStatusError as exc:
//!         return exc.response.status_code not in [401, 404]
//!     except httpx.ConnectError:
//!         return False
//!     except:
//!         return True
//!
//! @task(retries=1, retry_condition_fn=retry_handler)
//! def my_api_call_task(url):
//!     response = httpx.get(url)
//!     response.raise_for_status()
//!     return response.json()
//! ```
//!
//! The handler reads the typed error of the failed attempt
//! (`state.error()`) instead of re-raising it. Four cases, each against
//! its own local service: a 503 (retried, then 200), a 401 and a 404 (not
//! retried), and a refused connection to a closed loopback port (not
//! retried).
//!
//! `cargo run -p cfgd-sdk --example retry_handler`

#[path = "common/mod.rs"]
mod common;

use cfgd_sdk::retry::{RunError, State, Task, TaskRun, task};
use common::{FetchError, FlakyService};

/// Whether a failed attempt is retried.
fn retry_handler(_task: &Task<FetchError>, _run: &TaskRun, state: &State<FetchError>) -> bool {
    match state.error() {
        // Retry on any HTTP status code that is not 401 or 404.
        Some(FetchError::Status { status, .. }) => ![401, 404].contains(&status.as_u16()),
        // Do not retry.
        Some(FetchError::Connect(_)) => false,
        // For anything else, retry.
        _ => true,
    }
}

#[task(retries = 1, retry_condition_fn = retry_handler)]
async fn my_api_call_task(url: &str) -> Result<String, FetchError> {
    common::get(url).await
}

/// One case: the URL called, what comes back, and the history.
async fn case(what: &str, url: &str, history: &[&str]) -> Result<String, RunError<FetchError>> {
    println!("{what}:");
    let (run, result) = my_api_call_task_with_history(url).await;
    match &result {
        Ok(body) => println!("  -> completed: {body:?}"),
        Err(e) => println!("  -> {e}"),
    }
    println!(
        "  attempts: {}, history: {}",
        run.run_count(),
        common::history(&run)
    );
    assert_eq!(run.state_names(), history, "{what}");
    result
}

/// The scenario, checked: only the 503 is retried.
pub(crate) async fn run() {
    println!("retry_handler: retries=1, retry_condition_fn=retry_handler (no delay)");

    let service = FlakyService::start(&[503], "ok").await;
    let result = case(
        "a 503 is retried",
        service.url(),
        &["Pending", "Running", "Retrying", "Completed"],
    )
    .await;
    assert_eq!(result.as_deref(), Ok("ok"));
    assert_eq!(service.requests(), 2);

    for code in [401, 404] {
        let service = FlakyService::start(&[code], "ok").await;
        let result = case(
            &format!("a {code} is not retried"),
            service.url(),
            &["Pending", "Running", "Failed"],
        )
        .await;
        let error = result.expect_err("the task fails");
        assert_eq!(error.error().and_then(FetchError::status), Some(code));
        assert_eq!(service.requests(), 1);
    }

    let result = case(
        "a refused connection is not retried",
        &common::closed_port_url(),
        &["Pending", "Running", "Failed"],
    )
    .await;
    assert!(
        matches!(result, Err(RunError::Failed(FetchError::Connect(_)))),
        "{result:?}"
    );
}

#[tokio::main]
async fn main() {
    common::init_logging();
    run().await;
}
