//! The scenarios of `examples/`, run as tests: each example's own `run()`
//! (its tasks, its flaky loopback HTTP service, its checks), included from
//! the example's file. Time is paused, so the retry delays pass instantly
//! and exactly while the HTTP traffic is real (`global_defaults`, which
//! has no delays and talks to an in-process daemon, runs on real time).

// Each example includes `examples/common/mod.rs` as its own `common`.
#![allow(clippy::duplicate_mod)]

#[allow(dead_code)]
#[path = "../examples/get_data_task.rs"]
mod get_data_task;

#[allow(dead_code)]
#[path = "../examples/manual_backoff.rs"]
mod manual_backoff;

#[allow(dead_code)]
#[path = "../examples/retry_handler.rs"]
mod retry_handler;

#[allow(dead_code)]
#[path = "../examples/exponential_backoff.rs"]
mod exponential_backoff;

#[allow(dead_code)]
#[path = "../examples/jitter.rs"]
mod jitter;

#[tokio::test(start_paused = true)]
async fn get_data_task_retries_twice_with_a_fixed_delay() {
    get_data_task::run().await;
}

#[tokio::test(start_paused = true)]
async fn manual_backoff_waits_each_listed_delay() {
    manual_backoff::run().await;
}

#[tokio::test(start_paused = true)]
async fn retry_handler_retries_a_503_only() {
    retry_handler::run().await;
}

#[tokio::test(start_paused = true)]
async fn exponential_backoff_doubles_the_delay_until_exhausted() {
    exponential_backoff::run().await;
}

#[tokio::test(start_paused = true)]
async fn jitter_keeps_each_delay_within_its_bounds() {
    jitter::run().await;
}

#[allow(dead_code)]
#[path = "../examples/retry_budget.rs"]
mod retry_budget;

#[tokio::test(start_paused = true)]
async fn a_budget_cuts_a_retry_storm() {
    retry_budget::run().await;
}

#[allow(dead_code)]
#[path = "../examples/global_defaults.rs"]
mod global_defaults;

/// On real time: this scenario has no delays to skip, and a paused clock
/// would jump ahead (firing its 10 s waits) whenever the runtime idles
/// while the daemon's writer thread commits a `cfg set`.
#[tokio::test]
async fn global_defaults_follow_cfg_set() {
    global_defaults::run().await;
}
