//! Retry-engine overhead per attempt: a task that always fails with
//! `retries = 3` and no delay (4 attempts per run), reported per attempt.
//! The function itself does nothing, so the figure is the engine's cost:
//! states, the retry decision, the (disabled) log lines, and a quarter of
//! the per-run work (the run record, resolving defaults).
//!
//! `cargo bench -p cfgd-sdk --bench retry`

use std::hint::black_box;
use std::time::{Duration, Instant};

use cfgd_sdk::retry::Task;
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

    // For scale: one run that completes on its first attempt.
    let once: Task<&str> = Task::new("bench").retries(0);
    group.bench_function("completed_run/async", |b| {
        b.iter(|| rt.block_on(once.run(|| async { Ok::<_, &str>(black_box(1)) })));
    });
    group.finish();
}

fn per_attempt(total: Duration) -> Duration {
    total / ATTEMPTS
}

criterion_group!(benches, failed_attempts);
criterion_main!(benches);
