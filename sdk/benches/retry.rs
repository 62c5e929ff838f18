//! Retry-engine overhead per attempt: a task that always fails with
//! `retries = 3` and no delay (4 attempts per run), reported per attempt.
//! The function itself does nothing, so the figure is the engine's cost:
//! states, the retry decision, the (disabled) log lines, and a quarter of
//! the per-run work (the run record, resolving defaults).
//!
//! With a retry budget configured (generous enough never to refuse, so
//! every run still makes its four attempts), the same figure includes the
//! budget's deposit and withdrawals. And one budget check alone, with two
//! threads contending for one budget.
//!
//! `cargo bench -p cfgd-sdk --bench retry`

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cfgd_sdk::retry::{BudgetSettings, FixedDefaults, RetryBudget, Task};
use criterion::{Criterion, criterion_group, criterion_main};

/// Attempts per run: the first try and three retries.
const ATTEMPTS: u32 = 4;

fn failed_attempts(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let task: Task<&str> = Task::new("bench")
        .retries(ATTEMPTS - 1)
        .retry_delay_seconds(0);
    let mut group = c.benchmark_group("retry");

    group.bench_function("failed_attempt_zero_delay/async", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            rt.block_on(async {
                for _ in 0..iters {
                    let result = task.run(|| async { Err::<(), _>(black_box("boom")) }).await;
                    black_box(result).unwrap_err();
                }
            });
            per_attempt(start.elapsed())
        });
    });

    group.bench_function("failed_attempt_zero_delay/blocking", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let result = task.run_blocking(|| Err::<(), _>(black_box("boom")));
                black_box(result).unwrap_err();
            }
            per_attempt(start.elapsed())
        });
    });

    let budgeted: Task<&str> = Task::new("bench-budget")
        .retries(ATTEMPTS - 1)
        .retry_delay_seconds(0)
        .defaults(Arc::new(FixedDefaults {
            retry_budget: Some(GENEROUS),
            ..FixedDefaults::default()
        }));
    group.bench_function("failed_attempt_zero_delay_budget/async", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            rt.block_on(async {
                for _ in 0..iters {
                    let result = budgeted
                        .run(|| async { Err::<(), _>(black_box("boom")) })
                        .await;
                    black_box(result).unwrap_err();
                }
            });
            per_attempt(start.elapsed())
        });
    });

    // For scale: one run that completes on its first attempt.
    let once: Task<&str> = Task::new("bench").retries(0);
    group.bench_function("completed_run/async", |b| {
        b.iter(|| rt.block_on(once.run(|| async { Ok::<_, &str>(black_box(1)) })));
    });
    group.finish();
}

/// A budget that never refuses: a floor far above any rate reached here.
const GENEROUS: BudgetSettings = BudgetSettings {
    ratio: 10.0,
    floor: 1e12,
    global: false,
};

fn per_attempt(total: Duration) -> Duration {
    total / ATTEMPTS
}

/// One `try_withdraw` (with the deposit a first attempt makes), timed on
/// each of two threads sharing one budget; reported per check.
fn budget_contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("retry_budget");
    let now = cfgd_sdk::retry::budget::now_seconds(std::time::SystemTime::now());
    for threads in [1usize, 2] {
        group.bench_function(format!("check/{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                let budget = Arc::new(RetryBudget::new());
                let start = Arc::new(Barrier::new(threads));
                let workers: Vec<_> = (0..threads)
                    .map(|_| {
                        let (budget, start) = (budget.clone(), start.clone());
                        std::thread::spawn(move || {
                            start.wait();
                            let begun = Instant::now();
                            for _ in 0..iters {
                                budget.deposit(now);
                                black_box(budget.try_withdraw(&GENEROUS, now));
                            }
                            begun.elapsed()
                        })
                    })
                    .collect();
                let total: Duration = workers
                    .into_iter()
                    .map(|w| w.join().expect("a worker"))
                    .sum();
                total / u32::try_from(threads).expect("two")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, failed_attempts, budget_contended);
criterion_main!(benches);
