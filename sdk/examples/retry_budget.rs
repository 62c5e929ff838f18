//! A retry budget protecting a failing service from a retry storm (a cfgd
//! extension: Prefect has none).
//!
//! Fifty concurrent task runs call a local HTTP service that is down (every
//! request answers 503). Each run allows 3 retries: without a budget the
//! service gets 4 requests per run; with
//! `PREFECT_TASKS_DEFAULT_RETRY_BUDGET_RATIO=0.1` and a floor of 0.5
//! retries per second, the retries of the task's name stay under 10 % of
//! its first attempts plus 5 per 10 s, and the refused runs end `Failed`
//! saying so.
//!
//! `cargo run -p cfgd-sdk --example retry_budget`

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;

use cfgd_sdk::retry::{BudgetSettings, FixedDefaults, Task};
use common::{FetchError, FlakyService};
use futures_util::future::join_all;

/// Concurrent runs of the task.
const RUNS: usize = 50;

/// Runs `RUNS` calls of a task named `name` at once against a service
/// that is down; returns the requests it received.
async fn storm(name: &'static str, budget: Option<BudgetSettings>) -> usize {
    let service = FlakyService::start(&[503; 4 * RUNS], "ok").await;
    let defaults = Arc::new(FixedDefaults {
        retry_budget: budget,
        ..FixedDefaults::default()
    });
    let task: Task<FetchError> = Task::new(name)
        .retries(3)
        .retry_delay_seconds(0.1)
        .defaults(defaults);
    let runs =
        join_all((0..RUNS).map(|_| task.run_with_history(|| common::get(service.url())))).await;
    let refused = runs
        .iter()
        .filter(|(run, _)| run.state().message().is_some_and(|m| m.contains("refused")))
        .count();
    println!(
        "  {name}: {} requests for {RUNS} runs; {refused} runs ended by the budget",
        service.requests()
    );
    service.requests()
}

/// The scenario, checked: the budget cuts the retry storm.
pub(crate) async fn run() {
    println!("{RUNS} concurrent runs, retries=3, against a service answering 503:");
    let without = storm("storm-no-budget", None).await;
    assert_eq!(without, 4 * RUNS, "every run retries 3 times");
    let budget = BudgetSettings {
        ratio: 0.1,
        floor: 0.5,
        global: false,
    };
    let with = storm("storm-budget", Some(budget)).await;
    // 50 first attempts; at most 0.1 × 50 + 0.5 × 10 = 10 retries.
    assert!(with <= RUNS + 10, "{with} requests");
    assert!(with > RUNS, "the floor and ratio still allow some retries");
    println!("  the budget saved the service {} requests", without - with);
}

#[tokio::main]
async fn main() {
    common::init_logging();
    run().await;
}
