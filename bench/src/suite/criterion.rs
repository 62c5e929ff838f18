//! The criterion benches' side of the report: this crate's `sdk_read` and
//! the SDK's own `retry` bench. `bench/run.sh` runs both once per run with
//! `CRITERION_HOME` set to that run's directory; this module names the
//! benches and reads back each run's medians.

use std::path::{Path, PathBuf};

use crate::report::Report;

/// The SDK read bench group.
pub const SDK_GROUP: &str = "sdk_read";
/// SDK read benches: id, what is read, threads.
pub const SDK_BENCHES: [(&str, &str, usize); 4] = [
    ("get_i64_1t", "Settings::get_i64(name)", 1),
    ("get_i64_2t", "Settings::get_i64(name)", 2),
    ("key_1t", "Settings::read_key(Key)", 1),
    ("key_2t", "Settings::read_key(Key)", 2),
];
/// The SDK's retry bench (`sdk/benches/retry.rs`, `cargo bench -p cfgd-sdk
/// --bench retry`), whose figures the report quotes rather than duplicate.
pub const RETRY_GROUP: &str = "retry";
/// Its benches (each reports time per failed attempt): criterion id, row
/// id, driver.
pub const RETRY_BENCHES: [(&str, &str, &str); 2] = [
    (
        "failed_attempt_zero_delay/async",
        "async",
        "run (async, current-thread runtime)",
    ),
    (
        "failed_attempt_zero_delay/blocking",
        "blocking",
        "run_blocking",
    ),
];

/// criterion's median estimate for `group/id` in `dir`, in ns. (criterion
/// turns a `/` inside an id into `_` in its directory name.)
fn median_ns(dir: &Path, group: &str, id: &str) -> Option<f64> {
    let path = dir
        .join(group)
        .join(id.replace('/', "_"))
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// Adds each run's criterion figures to `report`.
pub fn collect(dirs: &[PathBuf], report: &mut Report) {
    if dirs.is_empty() {
        report
            .notes
            .push("the criterion benches (SDK read, retry engine) were not run".into());
        return;
    }
    for dir in dirs {
        for (id, what, threads) in SDK_BENCHES {
            let v = median_ns(dir, SDK_GROUP, id).unwrap_or(f64::NAN);
            let case = format!(
                "{what}, {threads} thread{}",
                if threads > 1 { "s" } else { "" }
            );
            report
                .row(
                    &format!("sdk.{id}"),
                    "SDK read from the live cache (criterion)",
                    &case,
                    "per read",
                    "ns",
                )
                .push("cfgd", v);
        }
        for (id, row, driver) in RETRY_BENCHES {
            let v = median_ns(dir, RETRY_GROUP, id).map_or(f64::NAN, |ns| ns / 1000.0);
            report
                .row(
                    &format!("retry.failed_attempt.{row}"),
                    "Retry engine (criterion)",
                    &format!("retries=3 always failing, zero delay, {driver}"),
                    "per failed attempt",
                    "µs",
                )
                .push("cfgd", v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_median_of_each_run() {
        let dir = tempfile::tempdir().unwrap();
        let est = dir.path().join("sdk_read/get_i64_1t/new");
        std::fs::create_dir_all(&est).unwrap();
        std::fs::write(
            est.join("estimates.json"),
            r#"{"median":{"point_estimate":12.5,"standard_error":0.1}}"#,
        )
        .unwrap();
        let retry = dir.path().join("retry/failed_attempt_zero_delay_async/new");
        std::fs::create_dir_all(&retry).unwrap();
        std::fs::write(
            retry.join("estimates.json"),
            r#"{"median":{"point_estimate":250.0}}"#,
        )
        .unwrap();
        let mut report = Report::default();
        collect(&[dir.path().to_owned()], &mut report);
        assert_eq!(
            report.get("sdk.get_i64_1t").unwrap().median("cfgd"),
            Some(12.5)
        );
        assert_eq!(report.get("sdk.key_2t").unwrap().median("cfgd"), None);
        assert_eq!(
            report
                .get("retry.failed_attempt.async")
                .unwrap()
                .median("cfgd"),
            Some(0.25),
            "in µs"
        );
    }
}
