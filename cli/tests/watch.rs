//! `cfg watch`: each change as it happens, and resuming when the stream
//! drops. Lines are read as they come, each with a bounded wait.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;

use cfgd_tests::blocking::Daemon;
use cfgd_tests::cli::{PATIENCE, Spawned};

#[test]
fn watch_prints_each_change_with_revision_origin_and_source() {
    let d = Daemon::start();
    let w = Spawned::new(d.command().args(["watch"]));
    let header = w.stdout_until(|l| l.starts_with("Watching "));
    assert_eq!(
        header,
        [format!(
            "Watching all settings from revision {} (profile 'default'); press Ctrl-C to stop.",
            d.revision()
        )]
    );
    d.cfg(&["set", "PREFECT_TASK_DEFAULT_RETRIES=3"]).ok();
    let revision = d.revision();
    let lines = w.stdout_until(|l| l.starts_with("  "));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("Revision {revision} at ")),
        "{lines:?}"
    );
    assert!(lines[0].ends_with(" UTC: set"), "{lines:?}");
    assert_eq!(
        lines[1],
        "  PREFECT_TASKS_DEFAULT_RETRIES: '0' -> '3' (from profile 'default')"
    );
    d.cfg(&["profile", "create", "staging"]).ok();
    d.cfg(&["profile", "use", "staging"]).ok();
    let lines = w.stdout_until(|l| l.starts_with("  "));
    // Creating a profile is a revision that changes no effective value.
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].ends_with(": profile create staging"), "{lines:?}");
    assert!(lines[1].ends_with(": profile use staging"), "{lines:?}");
    assert_eq!(
        lines[2],
        "  PREFECT_TASKS_DEFAULT_RETRIES: '3' -> '0' (from defaults)"
    );
}

#[test]
fn watch_filters_by_name_and_masks_secrets() {
    let d = Daemon::start();
    let w = Spawned::new(d.command().args([
        "watch",
        "PREFECT_API_KEY",
        "PREFECT_FLOW_DEFAULT_RETRIES",
    ]));
    w.stdout_until(|l| {
        l.starts_with("Watching PREFECT_API_KEY, PREFECT_FLOW_DEFAULT_RETRIES from")
    });
    // Not watched: must not appear before the next watched change.
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=3"]).ok();
    d.cfg(&["set", "PREFECT_API_KEY=s3cret"]).ok();
    let lines = w.stdout_until(|l| l.starts_with("  "));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[1],
        "  PREFECT_API_KEY: 'None' -> '********' (from profile 'default')"
    );
}

#[test]
fn watch_json_prints_one_document_per_line() {
    let d = Daemon::start();
    let w = Spawned::new(d.command().args(["watch", "-o", "json"]));
    let first = w.stdout_until(|_| true);
    let resync: serde_json::Value = serde_json::from_str(&first[0]).unwrap();
    assert_eq!(resync["type"], "resync");
    assert_eq!(resync["reason"], "initial");
    assert_eq!(resync["profile"], "default");
    assert_eq!(resync["settings"].as_array().unwrap().len(), 227 + 5);
    assert!(resync["epoch"].is_string(), "a u64 epoch is a JSON string");
    assert_eq!(resync["settings"][0]["source"]["layer"], "defaults");
    d.cfg(&["set", "PREFECT_FLOWS_DEFAULT_RETRIES=2"]).ok();
    let next = w.stdout_until(|_| true);
    let change: serde_json::Value = serde_json::from_str(&next[0]).unwrap();
    assert_eq!(change["type"], "change");
    assert_eq!(change["origin"], "set");
    assert_eq!(change["revision"], d.revision());
    assert_eq!(
        change["changes"][0]["name"],
        "PREFECT_FLOWS_DEFAULT_RETRIES"
    );
    assert_eq!(change["changes"][0]["new"], "2");
    assert_eq!(
        change["changes"][0]["new_source"],
        serde_json::json!({"layer": "profile", "profile": "default", "text": "profile 'default'"})
    );
}

#[test]
fn watch_resumes_after_the_daemon_restarts_and_misses_nothing() {
    let mut d = Daemon::start();
    let w = Spawned::new(d.command().args(["watch"]));
    w.stdout_until(|l| l.starts_with("Watching "));
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=1"]).ok();
    w.stdout_until(|l| l.contains("'0' -> '1'"));
    let resumed_from = d.revision();

    d.stop();
    w.stderr_until(|l| l.starts_with("Lost the watch on cfgd at "));
    d.restart();
    // Whether this lands before or after the watcher reconnects, it is
    // printed exactly once: replayed from history or streamed live.
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=2"]).ok();
    let lines = w.stdout_until(|l| l.contains("'1' -> '2'"));
    assert_eq!(
        lines,
        [
            lines[0].clone(),
            "  PREFECT_TASKS_DEFAULT_RETRIES: '1' -> '2' (from profile 'default')".to_owned()
        ]
    );
    assert!(lines[0].starts_with(&format!("Revision {} at ", d.revision())));
    // One line for the outage, however many attempts it took, then one
    // for the reconnection.
    let reconnected = format!(
        "Reconnected to cfgd at {}; resuming after revision {resumed_from}.",
        d.endpoint
    );
    assert_eq!(w.stderr_until(|l| l == reconnected), [reconnected]);
}

#[test]
fn watch_of_an_unknown_name_fails_at_once() {
    let d = Daemon::start();
    let out = d.cfg(&["watch", "PREFECT_NOPE"]);
    let err = out.fails();
    assert!(
        err.starts_with("Unknown setting name 'PREFECT_NOPE'."),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn watch_ends_quietly_when_its_reader_goes_away() {
    let d = Daemon::start();
    let mut child = d
        .command()
        .args(["watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cfg watch");
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let (read_tx, read_rx) = mpsc::channel();
    // Reads the header, then closes the pipe (as `cfg watch | head -1` does).
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = read_tx.send(first);
    });
    let first = read_rx.recv_timeout(PATIENCE).expect("the watch header");
    assert!(first.starts_with("Watching "), "{first}");
    let pid = child.id();
    let (exit_tx, exit_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = exit_tx.send(child.wait_with_output());
    });
    // The next change makes cfg write into the closed pipe.
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=1"]).ok();
    let Ok(exited) = exit_rx.recv_timeout(PATIENCE) else {
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
        panic!("cfg watch kept running after its reader went away");
    };
    let exited = exited.expect("wait for cfg watch");
    assert_eq!(exited.status.code(), Some(0));
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut { stderr }, &mut err);
    assert_eq!(err, "", "no complaint about the closed pipe");
}
