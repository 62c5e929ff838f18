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
//!
//! # Counting instructions
//! Wall-clock figures swing with the machine's load; instruction counts do
//! not. `--count <case> <runs>` runs one case a fixed number of times and
//! exits, for `valgrind --tool=callgrind`: the difference between two
//! counts (`runs` and `2 × runs`) divided by `runs` is the cost of one run
//! (divide by 4 for one attempt of the failing cases), with the set-up
//! cancelled out. `--count list` names the cases.
//!
//! ```text
//! cargo bench -p cfgd-sdk --bench retry --no-run   # prints the binary
//! valgrind --tool=callgrind --callgrind-out-file=a.out \
//!     target/release/deps/retry-<hash> --count failed_attempt_zero_delay_budget/async 20000
//! ```

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cfgd_sdk::retry::{BudgetSettings, FixedDefaults, RetryBudget, Task};
use criterion::Criterion;

/// Attempts per run: the first try and three retries.
const ATTEMPTS: u32 = 4;

/// A budget that never refuses: a floor far above any rate reached here.
const GENEROUS: BudgetSettings = BudgetSettings {
    ratio: 10.0,
    floor: 1e12,
    global: false,
};

/// What the cases run: a runtime and the tasks.
struct Fixture {
    rt: tokio::runtime::Runtime,
    failing: Task<&'static str>,
    budgeted: Task<&'static str>,
    once: Task<&'static str>,
    budget_now: u64,
}

impl Fixture {
    fn new() -> Self {
        Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime"),
            failing: Task::new("bench")
                .retries(ATTEMPTS - 1)
                .retry_delay_seconds(0),
            budgeted: Task::new("bench-budget")
                .retries(ATTEMPTS - 1)
                .retry_delay_seconds(0)
                .defaults(Arc::new(FixedDefaults {
                    retry_budget: Some(GENEROUS),
                    ..FixedDefaults::default()
                })),
            once: Task::new("bench").retries(0),
            budget_now: cfgd_sdk::retry::budget::now_seconds(std::time::SystemTime::now()),
        }
    }
}

/// The failing runs: `(name, budgeted, blocking)`.
const FAILING: [(&str, bool, bool); 4] = [
    ("failed_attempt_zero_delay/async", false, false),
    ("failed_attempt_zero_delay/blocking", false, true),
    ("failed_attempt_zero_delay_budget/async", true, false),
    ("failed_attempt_zero_delay_budget/blocking", true, true),
];

/// `runs` runs of a task that fails every attempt.
fn failing_runs(f: &Fixture, budgeted: bool, blocking: bool, runs: u64) {
    let task = if budgeted { &f.budgeted } else { &f.failing };
    if blocking {
        for _ in 0..runs {
            let result = task.run_blocking(|| Err::<(), _>(black_box("boom")));
            black_box(result).unwrap_err();
        }
    } else {
        f.rt.block_on(async {
            for _ in 0..runs {
                let result = task.run(|| async { Err::<(), _>(black_box("boom")) }).await;
                black_box(result).unwrap_err();
            }
        });
    }
}

/// `runs` runs that complete on their first attempt, each its own
/// `block_on`.
fn completed_runs(f: &Fixture, runs: u64) {
    for _ in 0..runs {
        let result =
            f.rt.block_on(f.once.run(|| async { Ok::<_, &str>(black_box(1)) }));
        black_box(result).unwrap();
    }
}

/// `checks` budget checks, each with the deposit a first attempt makes.
fn budget_checks(budget: &RetryBudget, now: u64, checks: u64) {
    for _ in 0..checks {
        budget.deposit(now);
        black_box(budget.try_withdraw(&GENEROUS, now));
    }
}

fn failed_attempts(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("retry");
    for (name, budgeted, blocking) in FAILING {
        group.bench_function(name, |b| {
            b.iter_custom(|runs| {
                let start = Instant::now();
                failing_runs(f, budgeted, blocking, runs);
                start.elapsed() / ATTEMPTS
            });
        });
    }
    // For scale: one run that completes on its first attempt.
    group.bench_function("completed_run/async", |b| {
        b.iter_custom(|runs| {
            let start = Instant::now();
            completed_runs(f, runs);
            start.elapsed()
        });
    });
    group.finish();
}

/// One `try_withdraw` (with the deposit a first attempt makes), timed on
/// each of two threads sharing one budget; reported per check.
fn budget_contended(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("retry_budget");
    let now = f.budget_now;
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
                            budget_checks(&budget, now, iters);
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

/// The cases `--count` knows, by the names criterion reports them under.
fn case_names() -> Vec<String> {
    let mut names: Vec<String> = FAILING.iter().map(|c| format!("retry/{}", c.0)).collect();
    names.push("retry/completed_run/async".to_owned());
    names.push("retry_budget/check/1_threads".to_owned());
    names
}

/// Runs one case `runs` times (the `retry/` prefix may be left off).
fn count(case: &str, runs: u64) -> Result<(), String> {
    let f = Fixture::new();
    let case = case.strip_prefix("retry/").unwrap_or(case);
    if let Some(&(_, budgeted, blocking)) = FAILING.iter().find(|c| c.0 == case) {
        failing_runs(&f, budgeted, blocking, runs);
    } else if case == "completed_run/async" {
        completed_runs(&f, runs);
    } else if case == "retry_budget/check/1_threads" {
        budget_checks(&RetryBudget::new(), f.budget_now, runs);
    } else {
        return Err(format!(
            "--count: no case named '{case}'; expected one of: {}",
            case_names().join(", ")
        ));
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--count") {
        match (args.get(at + 1), args.get(at + 2)) {
            (Some(list), _) if list == "list" => println!("{}", case_names().join("\n")),
            (Some(case), Some(runs)) => {
                let runs: u64 = runs.parse().unwrap_or_else(|_| {
                    panic!("--count {case} <runs>: expected a number of runs, got '{runs}'")
                });
                if let Err(e) = count(case, runs) {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
            }
            _ => {
                eprintln!("usage: --count <case> <runs> | --count list");
                std::process::exit(2);
            }
        }
        return;
    }
    let fixture = Fixture::new();
    let mut c = Criterion::default().configure_from_args();
    failed_attempts(&mut c, &fixture);
    budget_contended(&mut c, &fixture);
    c.final_summary();
}
