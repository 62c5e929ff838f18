//! SDK read from the live cache (issue 6, item 5): nanoseconds per read of
//! one integer setting through `Settings::get_i64(name)` and through a
//! resolved `Key`, with one thread and with two threads reading the same
//! handle at once (each thread's time per read is reported).
//!
//! The handle is `Settings::local` (built-in defaults): a read is the same
//! atomic load and index whether or not a daemon keeps the view current.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use cfgd_bench::suite::criterion::SDK_GROUP;
use cfgd_sdk::{Options, Settings};
use criterion::{Criterion, criterion_group, criterion_main};

const NAME: &str = cfgd_bench::KEY;

/// Runs `read` `iters` times on each of two threads started together;
/// the slower thread's time.
fn two_threads<R>(iters: u64, read: &(impl Fn() -> R + Sync)) -> Duration {
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        let timed = || {
            start.wait();
            let t = Instant::now();
            for _ in 0..iters {
                black_box(read());
            }
            t.elapsed()
        };
        let a = s.spawn(timed);
        let b = s.spawn(timed);
        a.join().expect("reader").max(b.join().expect("reader"))
    })
}

fn sdk_read(c: &mut Criterion) {
    let settings = Settings::local(&Options::isolated("http://127.0.0.1:9"));
    assert_eq!(settings.get_i64(NAME), Some(0), "the built-in default");
    let key = settings.key(NAME).expect("a built-in setting");
    let by_name = || settings.get_i64(black_box(NAME));
    let by_key = || {
        settings.read_key(black_box(&key), |c| {
            c.and_then(|c| c.value.as_ref())
                .and_then(|v| v.as_integer())
        })
    };
    let mut g = c.benchmark_group(SDK_GROUP);
    g.bench_function("get_i64_1t", |b| b.iter(by_name));
    g.bench_function("get_i64_2t", |b| {
        b.iter_custom(|n| two_threads(n, &by_name))
    });
    g.bench_function("key_1t", |b| b.iter(by_key));
    g.bench_function("key_2t", |b| b.iter_custom(|n| two_threads(n, &by_key)));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(30);
    targets = sdk_read
}
criterion_main!(benches);
