//! `RetryPolicy`: a tower client retrying through the retry engine — here
//! a real hyper client against a flaky HTTP service on 127.0.0.1:0, with
//! the task's delays, its condition, the budget and `Retry-After`.

#[path = "../examples/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cfgd_sdk::retry::{
    BudgetSettings, ConfigError, FixedDefaults, RetryPolicy, State, SuggestedDelay, Task, TaskRun,
};
use common::{FetchError, FlakyService};
use tower::retry::Retry;
use tower::{Service, ServiceExt, service_fn};

/// A tower service doing one GET with the examples' hyper client.
fn http_get()
-> impl Service<String, Response = String, Error = FetchError, Future = impl Send> + Clone {
    service_fn(|url: String| async move { common::get(&url).await })
}

fn classify(result: &Result<String, FetchError>) -> Result<(), FetchError> {
    match result {
        Ok(_) => Ok(()),
        Err(FetchError::Status {
            status,
            url,
            retry_after,
        }) => Err(FetchError::Status {
            status: *status,
            url: url.clone(),
            retry_after: *retry_after,
        }),
        Err(FetchError::Connect(e)) => Err(FetchError::Connect(e.clone())),
        Err(FetchError::Other(e)) => Err(FetchError::Other(e.clone())),
    }
}

/// The runs the policy's task finished, through its hooks.
fn recorded(task: Task<FetchError>) -> (Task<FetchError>, Arc<Mutex<Vec<TaskRun>>>) {
    let runs = Arc::new(Mutex::new(Vec::new()));
    let (a, b) = (runs.clone(), runs.clone());
    let task = task
        .on_completion(move |_, run: &TaskRun, _: &State<FetchError>| {
            a.lock().unwrap().push(run.clone())
        })
        .on_failure(move |_, run: &TaskRun, _: &State<FetchError>| {
            b.lock().unwrap().push(run.clone())
        });
    (task, runs)
}

#[tokio::test(start_paused = true)]
async fn a_hyper_client_retries_with_the_tasks_delays() {
    let service = FlakyService::start(&[503, 503], "ok").await;
    let (task, runs) = recorded(
        Task::new("tower-delays")
            .retries(3)
            .retry_delay_seconds([1, 10]),
    );
    let policy = RetryPolicy::new(task, classify).unwrap();
    let mut client = Retry::new(policy, http_get());
    let body = client
        .ready()
        .await
        .unwrap()
        .call(service.url().to_owned())
        .await;
    assert_eq!(body.as_deref(), Ok("ok"));
    assert_eq!(service.requests(), 3);
    assert_eq!(
        service.gaps(),
        [Duration::from_secs(1), Duration::from_secs(10)]
    );
    let runs = runs.lock().unwrap();
    assert_eq!(
        runs[0].state_names(),
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
}

#[tokio::test(start_paused = true)]
async fn retry_after_and_the_condition_apply() {
    let service = FlakyService::start_with_retry_after(&[(429, Some(2)), (404, None)], "ok").await;
    let task = Task::new("tower-condition")
        .retries(5)
        .retry_delay_seconds(30)
        .suggested_delay_fn(FetchError::suggested_delay)
        .retry_condition_fn(|_, _, s: &State<FetchError>| {
            s.error().and_then(FetchError::status) != Some(404)
        });
    let mut client = Retry::new(RetryPolicy::new(task, classify).unwrap(), http_get());
    let result = client
        .ready()
        .await
        .unwrap()
        .call(service.url().to_owned())
        .await;
    assert_eq!(
        result.unwrap_err().status(),
        Some(404),
        "404 is not retried"
    );
    assert_eq!(
        service.gaps(),
        [Duration::from_secs(2)],
        "Retry-After: 2, not 30 s"
    );
}

#[tokio::test(start_paused = true)]
async fn the_budget_applies_across_requests() {
    let service = FlakyService::start(&[503; 20], "ok").await;
    let defaults = Arc::new(FixedDefaults {
        retry_budget: Some(BudgetSettings {
            ratio: 0.5,
            floor: 0.0,
            global: false,
        }),
        ..FixedDefaults::default()
    });
    let task = Task::new("tower-budget").retries(10).defaults(defaults);
    let mut client = Retry::new(RetryPolicy::new(task, classify).unwrap(), http_get());
    for _ in 0..4 {
        let _ = client
            .ready()
            .await
            .unwrap()
            .call(service.url().to_owned())
            .await;
    }
    // 4 first attempts × 0.5: two retries in all, not 40.
    assert_eq!(service.requests(), 6);
}

#[test]
fn an_async_condition_is_refused() {
    let task =
        Task::new("t").retry_condition_fn_async(|_, _, _: &State<FetchError>| async { true });
    assert_eq!(
        RetryPolicy::new(task, classify).unwrap_err(),
        ConfigError::AsyncCondition
    );
    let _ = SuggestedDelay::retry_after(Duration::ZERO);
}
