//! The retry budget (a cfgd extension): per task name, retries stay under
//! `ratio` × recent first attempts plus a floor; a refused retry ends the
//! run `Failed` with the error, and the budget refills as first attempts
//! come in. Its settings are read at the start of each run.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use cfgd_sdk::retry::{
    BudgetSettings, Defaults, FixedDefaults, RetryDefaults, RunError, StateName, Task,
};

/// Defaults whose budget a test changes between runs.
struct Switchable(Mutex<FixedDefaults>);

impl RetryDefaults for Switchable {
    fn read(&self, f: &mut dyn FnMut(&Defaults<'_>)) {
        f(&self.0.lock().unwrap().view());
    }
}

fn budget(ratio: f64, floor: f64, global: bool) -> Option<BudgetSettings> {
    Some(BudgetSettings {
        ratio,
        floor,
        global,
    })
}

fn source(retry_budget: Option<BudgetSettings>) -> Arc<Switchable> {
    Arc::new(Switchable(Mutex::new(FixedDefaults {
        retry_budget,
        ..FixedDefaults::default()
    })))
}

/// Runs `task` against a function that fails `failures` times; returns
/// (attempts, final state name).
async fn attempts(task: &Task<&'static str>, failures: u32) -> (u32, StateName) {
    let calls = AtomicU32::new(0);
    let (run, _) = task
        .run_with_history(|| async {
            if calls.fetch_add(1, Ordering::Relaxed) < failures {
                Err("unavailable")
            } else {
                Ok(())
            }
        })
        .await;
    (calls.load(Ordering::Relaxed), run.state().name())
}

#[tokio::test(start_paused = true)]
async fn the_budget_refuses_once_the_ratio_is_spent_and_refills() {
    // Half a retry per first attempt, no floor: a name-unique task.
    let defaults = source(budget(0.5, 0.0, false));
    let task = Task::new("budget-ratio")
        .retries(5)
        .defaults(defaults.clone());

    // 1st run: one first attempt buys half a retry: none allowed.
    assert_eq!(attempts(&task, u32::MAX).await, (1, StateName::Failed));
    // 2nd run: two first attempts, one retry allowed, then refused.
    assert_eq!(attempts(&task, u32::MAX).await, (2, StateName::Failed));
    // Runs that succeed at once refill it: 4 more first attempts, 2 retries.
    for _ in 0..4 {
        assert_eq!(attempts(&task, 0).await, (1, StateName::Completed));
    }
    let (calls, state) = attempts(&task, u32::MAX).await;
    assert_eq!(
        (calls, state),
        (3, StateName::Failed),
        "7 firsts × 0.5 − 1 used = 2.5"
    );

    // The error is what the caller gets back, and the state says why
    // (8 firsts × 0.5 − 3 used: one retry, the second refused).
    let (run, result) = task
        .run_with_history(|| async { Err::<(), _>("down") })
        .await;
    assert_eq!(result, Err(RunError::Failed("down")));
    let message = run.state().message().unwrap();
    assert!(
        message.ends_with(
            "Retry 2/5 refused: the retry budget of task 'budget-ratio' is spent (0.5 retries per first attempt plus 0 per second, over the last 10 s)"
        ),
        "{message}"
    );

    // The settings are read per run: no budget, retries as configured.
    defaults.0.lock().unwrap().retry_budget = None;
    assert_eq!(attempts(&task, u32::MAX).await, (6, StateName::Failed));
}

#[tokio::test(start_paused = true)]
async fn the_floor_allows_retries_whatever_the_ratio() {
    let task = Task::new("budget-floor")
        .retries(30)
        .defaults(source(budget(0.0, 1.0, false)));
    // 1 retry per second over 10 s: 10 retries in all.
    assert_eq!(attempts(&task, u32::MAX).await, (11, StateName::Failed));
    assert_eq!(attempts(&task, 0).await, (1, StateName::Completed));
}

#[tokio::test(start_paused = true)]
async fn budgets_are_per_task_name_unless_global() {
    let defaults = source(budget(1.0, 0.0, false));
    let a = Task::new("budget-name-a")
        .retries(3)
        .defaults(defaults.clone());
    let b = Task::new("budget-name-b")
        .retries(3)
        .defaults(defaults.clone());
    assert_eq!(attempts(&a, u32::MAX).await, (2, StateName::Failed));
    // `b` has its own budget.
    assert_eq!(attempts(&b, u32::MAX).await, (2, StateName::Failed));
    // Clones share it (one name).
    assert_eq!(attempts(&a.clone(), u32::MAX).await, (2, StateName::Failed));

    // With the global budget on, every name also draws from one bucket
    // with the same settings: a floor of one retry per 10 s is one retry
    // per name, and one in all. (No other test in this binary uses it.)
    let global = source(budget(0.0, 0.1, true));
    let c1 = Task::new("budget-global-1")
        .retries(3)
        .defaults(global.clone());
    let c2 = Task::new("budget-global-2").retries(3).defaults(global);
    assert_eq!(attempts(&c1, u32::MAX).await, (2, StateName::Failed));
    let (run, _) = c2.run_with_history(|| async { Err::<(), _>("x") }).await;
    assert_eq!(
        run.run_count(),
        1,
        "c2's own budget allows one; the shared one is spent"
    );
    let message = run.state().message().unwrap();
    assert!(
        message.ends_with(
            "Retry 1/3 refused: the retry budget shared by all tasks is spent (0 retries per first attempt plus 0.1 per second, over the last 10 s)"
        ),
        "{message}"
    );
}
