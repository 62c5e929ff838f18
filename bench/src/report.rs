//! The report: every figure of every run, the ratios cfgd/baseline taken
//! run by run, the targets and where each stands — rendered as a
//! Markdown table and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::stats::{OverRuns, ratios};

/// The systems a row can hold, in column order. `floor` is the echo server;
/// `single` is one daemon beside a fleet's (the fleet is `cfgd` there).
pub const SYSTEMS: [&str; 4] = ["cfgd", "single", "etcd", "floor"];

/// One figure for each system, run by run.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Stable id, e.g. `read.c1.p50`.
    pub id: String,
    /// The measurement it belongs to (a table of its own).
    pub group: String,
    /// The conditions, e.g. `c=64, 64 connections`.
    pub case: String,
    /// `p50`, `p99`, `throughput`, …
    pub metric: String,
    /// `µs`, `ms`, `req/s`, `MiB`, `ns`, …
    pub unit: String,
    /// Whether smaller is better (latency) or larger (throughput).
    pub lower_is_better: bool,
    /// System → the value of each run (`NaN` for a run that failed).
    pub values: BTreeMap<String, Vec<f64>>,
}

impl Row {
    /// A row with no values yet.
    pub fn new(id: &str, group: &str, case: &str, metric: &str, unit: &str) -> Self {
        Self {
            id: id.into(),
            group: group.into(),
            case: case.into(),
            metric: metric.into(),
            unit: unit.into(),
            lower_is_better: !matches!(metric, "throughput"),
            values: BTreeMap::new(),
        }
    }

    /// Appends one run's value for `system`.
    pub fn push(&mut self, system: &str, value: f64) {
        self.values.entry(system.into()).or_default().push(value);
    }

    /// The median over runs for `system`.
    pub fn median(&self, system: &str) -> Option<f64> {
        self.values
            .get(system)
            .and_then(|v| OverRuns::new(v).median)
    }

    /// `cfgd / baseline` run by run, when both exist.
    pub fn ratio(&self, baseline: &str) -> Option<OverRuns> {
        let a = self.values.get("cfgd")?;
        let b = self.values.get(baseline)?;
        Some(OverRuns::new(&ratios(a, b)))
    }
}

/// Where a target stands.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What the issue asks.
    pub target: String,
    /// The figure it is judged on, as measured (median over runs).
    pub measured: Option<f64>,
    /// How it is shown, e.g. `1.07× floor` or `12.3 MiB`.
    pub shown: String,
    /// `met`, `missed` or `not measured`.
    pub status: String,
}

impl Target {
    /// Judges `measured` against `limit`: met when at most `limit` (or at
    /// least, with `at_least`).
    pub fn judge(
        target: &str,
        measured: Option<f64>,
        limit: f64,
        at_least: bool,
        unit: &str,
    ) -> Self {
        let status = match measured {
            None => "not measured",
            Some(m) if (at_least && m >= limit) || (!at_least && m <= limit) => "met",
            Some(_) => "missed",
        };
        Self {
            target: target.into(),
            measured,
            shown: measured.map_or_else(|| "—".into(), |m| format!("{}{unit}", num(m))),
            status: status.into(),
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Machine, versions, counts: everything a reader needs to compare.
    pub conditions: BTreeMap<String, Json>,
    /// Every figure.
    pub rows: Vec<Row>,
    /// The targets.
    pub targets: Vec<Target>,
    /// Measurements that could not be made, and why.
    pub notes: Vec<String>,
}

impl Report {
    /// The row `id`, created with the given labels when new.
    pub fn row(&mut self, id: &str, group: &str, case: &str, metric: &str, unit: &str) -> &mut Row {
        if let Some(i) = self.rows.iter().position(|r| r.id == id) {
            return &mut self.rows[i];
        }
        self.rows.push(Row::new(id, group, case, metric, unit));
        self.rows.last_mut().expect("just pushed")
    }

    /// The row `id`, if recorded.
    pub fn get(&self, id: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.id == id)
    }

    /// The report as JSON: every run's value, and median/min/max of each
    /// figure and ratio.
    pub fn to_json(&self) -> Json {
        let rows: Vec<Json> = self
            .rows
            .iter()
            .map(|r| {
                let mut o = json!({
                    "id": r.id, "group": r.group, "case": r.case, "metric": r.metric,
                    "unit": r.unit, "lower_is_better": r.lower_is_better,
                });
                for (system, runs) in &r.values {
                    o[system] = json!(OverRuns::new(runs));
                }
                for base in ["etcd", "floor"] {
                    if let Some(ratio) = r.ratio(base) {
                        o[format!("cfgd/{base}")] = json!(ratio);
                    }
                }
                o
            })
            .collect();
        json!({
            "conditions": self.conditions,
            "rows": rows,
            "targets": self.targets,
            "notes": self.notes,
        })
    }

    /// The report as Markdown: conditions, one table per measurement with
    /// `median (min–max)` over runs, then the targets.
    pub fn to_markdown(&self) -> String {
        let mut md = String::from("# cfgd benchmarks\n\n");
        for (k, v) in &self.conditions {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            let _ = writeln!(md, "- {k}: {v}");
        }
        md.push_str(
            "\nEach cell: median over runs (min–max). Ratios are cfgd/baseline, taken within each run.\n",
        );
        let mut groups: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !groups.contains(&r.group.as_str()) {
                groups.push(&r.group);
            }
        }
        for g in groups {
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.group == g).collect();
            let systems: Vec<&str> = SYSTEMS
                .into_iter()
                .filter(|s| rows.iter().any(|r| r.values.contains_key(*s)))
                .collect();
            let bases: Vec<&str> = ["single", "etcd", "floor"]
                .into_iter()
                .filter(|b| systems.contains(b))
                .collect();
            let _ = write!(md, "\n## {g}\n\n| case | metric |");
            for s in &systems {
                let _ = write!(md, " {s} |");
            }
            for b in &bases {
                let _ = write!(md, " cfgd/{b} |");
            }
            md.push_str("\n|---|---|");
            md.push_str(&"---:|".repeat(systems.len() + bases.len()));
            md.push('\n');
            for r in rows {
                let _ = write!(md, "| {} | {} ({}) |", r.case, r.metric, r.unit);
                for s in &systems {
                    let cell = r.values.get(*s).map(|v| cell(&OverRuns::new(v), ""));
                    let _ = write!(md, " {} |", cell.unwrap_or_else(|| "—".into()));
                }
                for b in &bases {
                    let cell = r.ratio(b).map(|o| cell(&o, "×"));
                    let _ = write!(md, " {} |", cell.unwrap_or_else(|| "—".into()));
                }
                md.push('\n');
            }
        }
        if !self.targets.is_empty() {
            md.push_str("\n## Targets (issues 6, 13, 14)\n\n| target | measured (median) | status |\n|---|---:|---|\n");
            for t in &self.targets {
                let _ = writeln!(md, "| {} | {} | {} |", t.target, t.shown, t.status);
            }
        }
        if !self.notes.is_empty() {
            md.push_str("\n## Notes\n\n");
            for n in &self.notes {
                let _ = writeln!(md, "- {n}");
            }
        }
        md
    }
}

fn cell(o: &OverRuns, suffix: &str) -> String {
    match (o.median, o.min, o.max) {
        (Some(m), Some(lo), Some(hi)) => {
            format!("{}{suffix} ({}–{})", num(m), num(lo), num(hi))
        }
        _ => "failed".into(),
    }
}

/// A number with about three significant digits.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut r = Report::default();
        let row = r.row("read.c1.p50", "Read", "c=1", "p50", "µs");
        for (c, e, f) in [
            (160.0, 300.0, 150.0),
            (170.0, 280.0, 150.0),
            (150.0, 310.0, 140.0),
        ] {
            row.push("cfgd", c);
            row.push("etcd", e);
            row.push("floor", f);
        }
        r
    }

    #[test]
    fn ratios_are_medians_of_run_by_run_ratios() {
        let r = report();
        let row = r.get("read.c1.p50").unwrap();
        assert_eq!(row.median("cfgd"), Some(160.0));
        let floor = row.ratio("floor").unwrap();
        // 160/150 = 1.067, 170/150 = 1.133, 150/140 = 1.071: the median
        // is that of the ratios (150/140), not the ratio of the medians.
        assert!((floor.median.unwrap() - 150.0 / 140.0).abs() < 1e-12);
        assert!(row.ratio("nobody").is_none());
    }

    #[test]
    fn markdown_has_a_column_per_system_and_ratio() {
        let md = report().to_markdown();
        assert!(md.contains("| case | metric | cfgd | etcd | floor | cfgd/etcd | cfgd/floor |"));
        assert!(md.contains("| c=1 | p50 (µs) | 160 (150–170) | 300 (280–310) | 150 (140–150) |"));
    }

    #[test]
    fn json_has_runs_and_summaries() {
        let j = report().to_json();
        let row = &j["rows"][0];
        assert_eq!(row["cfgd"]["runs"], json!([160.0, 170.0, 150.0]));
        assert_eq!(row["etcd"]["median"], json!(300.0));
        assert!(row["cfgd/etcd"]["median"].is_number());
    }

    #[test]
    fn targets_are_judged_either_way() {
        assert_eq!(
            Target::judge("t", Some(1.1), 1.15, false, "×").status,
            "met"
        );
        assert_eq!(
            Target::judge("t", Some(2.0), 2.5, true, "×").status,
            "missed"
        );
        assert_eq!(
            Target::judge("t", None, 1.0, true, "").status,
            "not measured"
        );
    }
}
