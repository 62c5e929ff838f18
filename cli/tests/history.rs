//! `cfg history` and `cfg rollback`.

use cfgd_tests::blocking::Daemon;

#[test]
fn history_lists_changes_oldest_first_and_n_limits_it() {
    let d = Daemon::start();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=1"]).ok();
    let first = d.revision();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=2"]).ok();
    d.cfg(&["unset", "PREFECT_TASKS_DEFAULT_RETRIES"]).ok();
    let last = d.revision();
    let text = d.cfg(&["history"]).ok().to_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(
        lines[0].starts_with(&format!("Revision {first} at ")),
        "{text}"
    );
    assert!(lines[0].ends_with(" UTC: set"), "{text}");
    assert_eq!(
        lines[1],
        "  PREFECT_TASKS_DEFAULT_RETRIES: '0' -> '1' (from profile 'default')"
    );
    assert_eq!(
        lines[3],
        "  PREFECT_TASKS_DEFAULT_RETRIES: '1' -> '2' (from profile 'default')"
    );
    assert!(lines[4].starts_with(&format!("Revision {last} at ")) && lines[4].ends_with(": unset"));
    assert_eq!(
        lines[5],
        "  PREFECT_TASKS_DEFAULT_RETRIES: '2' -> '0' (from defaults)"
    );
    let one = d.cfg(&["history", "-n", "1"]).ok().to_owned();
    assert_eq!(one.lines().count(), 2);
    assert!(one.starts_with(&format!("Revision {last} ")));

    let doc = d.cfg(&["history", "-o", "json"]).json();
    assert_eq!(doc["revision"], last);
    let changes = doc["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[2]["origin"], "unset");
    assert_eq!(changes[2]["changes"][0]["old"], "2");
    assert_eq!(changes[2]["changes"][0]["new"], "0");
}

#[test]
fn history_of_a_fresh_daemon_says_so_and_masks_secrets() {
    let d = Daemon::start();
    let out = d.cfg(&["history"]);
    assert!(out.ok().starts_with("No changes recorded"), "{out:?}");
    d.cfg(&["set", "PREFECT_API_KEY=s3cret"]).ok();
    let text = d.cfg(&["history"]).ok().to_owned();
    assert!(
        text.contains("PREFECT_API_KEY: 'None' -> '********'"),
        "{text}"
    );
    assert!(!text.contains("s3cret"));
    let shown = d.cfg(&["history", "--show-secrets"]).ok().to_owned();
    assert!(shown.contains("'s3cret'"), "{shown}");
}

#[test]
fn rollback_restores_an_earlier_revision_as_a_new_one() {
    let d = Daemon::start();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=1"]).ok();
    let target = d.revision();
    d.cfg(&[
        "set",
        "PREFECT_TASKS_DEFAULT_RETRIES=2",
        "PREFECT_FLOWS_DEFAULT_RETRIES=3",
    ])
    .ok();
    let out = d.cfg(&["rollback", &target.to_string()]);
    let now = d.revision();
    assert!(now > target + 1);
    assert_eq!(
        out.ok(),
        format!(
            "Rolled back to revision {target}; now at revision {now}.\n\
             \x20 PREFECT_FLOWS_DEFAULT_RETRIES='0' (from defaults)\n\
             \x20 PREFECT_TASKS_DEFAULT_RETRIES='1' (from profile 'default')\n\
             Updated profile 'default'.\n"
        )
    );
    assert_eq!(
        d.profile(),
        [("PREFECT_TASKS_DEFAULT_RETRIES".to_owned(), "1".to_owned())]
    );
    // Rolling back to where we are changes nothing.
    let again = d.cfg(&["rollback", &now.to_string()]);
    assert!(again.ok().starts_with("Nothing to roll back"), "{again:?}");
    assert_eq!(d.revision(), now);
}

#[test]
fn rollback_to_a_revision_that_does_not_exist_fails_and_changes_nothing() {
    let d = Daemon::start();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=1"]).ok();
    let before = d.revision();
    let err = d.cfg(&["rollback", "999"]).fails().to_owned();
    assert!(err.contains("revision 999"), "{err}");
    assert_eq!(d.revision(), before);
    let doc = d
        .cfg(&["rollback", "-o", "json", &before.to_string()])
        .json();
    assert_eq!(doc["rolled_back_to"], before);
    assert_eq!(doc["changed"], false);
}
