//! The cost of one `Set` in the core as the catalogue grows.
//!
//! ```sh
//! cargo bench -p cfgd --features bench-internals --bench write_path            # wall time per Set
//! cargo bench -p cfgd --features bench-internals --bench write_path -- --count 10000 2000
//! daemon/benches/callgrind.sh                                               # instructions per Set
//! ```
//!
//! `--count TOTAL N` runs N sets on a catalogue of TOTAL settings (the
//! built-in ones plus generated `catalog.d` entries, each with a value in a
//! value file, as `bench/`'s footprint section has) and prints nothing:
//! callgrind runs it with N and 2N, and the difference is N sets.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use cfgd::bench_support::WritePath;

/// The setting every `Set` writes.
const NAME: &str = "PREFECT_TASKS_DEFAULT_RETRIES";

/// Catalogue sizes of the wall-time run (the built-in catalogue alone is
/// the smallest there is).
const SIZES: [usize; 3] = [0, 1_000, 10_000];

fn core_with(dir: &Path, total: usize) -> WritePath {
    let builtin = WritePath::new(dir, NAME).settings();
    let extra = total.saturating_sub(builtin);
    if extra > 0 {
        // Files of at most 2,000 entries: each stays under the daemon's
        // default 1 MiB file limit.
        std::fs::create_dir_all(dir.join("catalog.d")).expect("catalog.d");
        let mut values = String::from("[svc]\n");
        for chunk in 0..extra.div_ceil(2_000) {
            let mut catalog = String::with_capacity(2_000 * 120);
            for i in chunk * 2_000..((chunk + 1) * 2_000).min(extra) {
                let _ = write!(
                    catalog,
                    "[[settings]]\nname = \"BENCH_SVC_{i:05}\"\npath = \"svc.k{i:05}\"\ntype = \"integer\"\ndefault = 0\ndescription = \"benchmark setting {i}\"\n\n"
                );
                let _ = writeln!(values, "k{i:05} = {}", i % 100 + 1);
            }
            let file = dir.join(format!("catalog.d/bench{chunk}.toml"));
            std::fs::write(file, catalog).expect("catalogue");
        }
        std::fs::write(dir.join("values.toml"), values).expect("value file");
    }
    let core = WritePath::new(dir, NAME);
    assert_eq!(core.settings(), total.max(builtin), "catalogue size");
    core
}

fn run(core: &mut WritePath, n: u64) {
    for i in 0..n {
        // 1, 2, 1, 2…: every Set changes the value, so each makes a record.
        assert_eq!(core.set(1 + i % 2), 1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    if let Some(at) = args.iter().position(|a| a == "--count") {
        let total: usize = args[at + 1].parse().expect("TOTAL settings");
        let n: u64 = args[at + 2].parse().expect("N sets");
        let mut core = core_with(dir.path(), total);
        run(&mut core, n);
        return;
    }
    println!("{:>10} {:>14}", "settings", "µs per Set");
    for total in SIZES {
        let sub = tempfile::tempdir_in(dir.path()).expect("temp dir");
        let mut core = core_with(sub.path(), total);
        let n = 2_000;
        run(&mut core, 100);
        let start = Instant::now();
        run(&mut core, n);
        let per = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!("{:>10} {per:>14.2}", core.settings());
    }
}
