//! `cfg profile …` (and its alias `cfg profiles`), with Prefect's messages.

use cfgd_tests::blocking::Daemon;

fn names(d: &Daemon) -> Vec<(String, bool)> {
    d.cfg(&["profile", "ls", "-o", "json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["active"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn ls_marks_the_active_profile() {
    let d = Daemon::start();
    d.cfg(&["profile", "create", "staging"]).ok();
    assert_eq!(
        d.cfg(&["profile", "ls"]).ok(),
        "Available Profiles:\n* default\n  staging\n\n* active profile\n"
    );
    assert_eq!(
        d.cfg(&["profiles", "ls"]).ok(),
        d.cfg(&["profile", "ls"]).ok()
    );
    assert_eq!(
        names(&d),
        [("default".to_owned(), true), ("staging".to_owned(), false)]
    );
}

#[test]
fn create_copies_from_a_profile_and_refuses_taken_or_unknown_names() {
    let d = Daemon::start();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=3"]).ok();
    assert_eq!(
        d.cfg(&["profile", "create", "staging", "--from", "default"])
            .ok(),
        "Created profile with properties:\n    name - 'staging'\n    from name - 'default'\n\n\
         Use created profile for future, subsequent commands:\n    cfg profile use 'staging'\n"
    );
    assert_eq!(
        d.cfg(&["profile", "inspect", "staging"]).ok(),
        "PREFECT_TASKS_DEFAULT_RETRIES='3'\n"
    );
    let before = d.revision();
    assert_eq!(
        d.cfg(&["profile", "create", "staging"]).fails(),
        "Profile 'staging' already exists.\nTo create a new profile, remove the existing profile first:\n\n    cfg profile delete 'staging'\n"
    );
    assert_eq!(
        d.cfg(&["profile", "create", "other", "--from", "nope"])
            .fails(),
        "Profile 'nope' not found.\n"
    );
    assert_eq!(d.revision(), before);
    assert_eq!(names(&d).len(), 2);
}

#[test]
fn use_switches_and_an_unknown_profile_is_not_found() {
    let d = Daemon::start();
    d.cfg(&["profile", "create", "staging"]).ok();
    d.cfg(&["profile", "use", "staging"]).ok();
    d.cfg(&["set", "PREFECT_FLOWS_DEFAULT_RETRIES=2"]).ok();
    let out = d.cfg(&["profile", "use", "default"]);
    assert_eq!(
        out.ok(),
        format!(
            "Connected to cfgd at {} using profile 'default'.\n  PREFECT_FLOWS_DEFAULT_RETRIES='0' (from defaults)\n",
            d.endpoint
        )
    );
    let before = d.revision();
    assert_eq!(
        d.cfg(&["profile", "use", "nope"]).fails(),
        "Profile 'nope' not found.\n"
    );
    assert_eq!(d.revision(), before);
    assert_eq!(
        d.cfg(&["view"]).ok(),
        "PREFECT_PROFILE='default'\n",
        "still on default"
    );
}

#[test]
fn delete_refuses_the_active_or_unknown_profile() {
    let d = Daemon::start();
    d.cfg(&["profile", "create", "staging"]).ok();
    assert_eq!(
        d.cfg(&["profile", "delete", "default"]).fails(),
        "Profile 'default' is the active profile. You must switch profiles before it can be deleted.\n"
    );
    assert_eq!(
        d.cfg(&["profile", "delete", "nope"]).fails(),
        "Profile 'nope' not found.\n"
    );
    assert_eq!(names(&d).len(), 2);
    assert_eq!(
        d.cfg(&["profile", "delete", "staging"]).ok(),
        "Removed profile 'staging'.\n"
    );
    assert_eq!(names(&d), [("default".to_owned(), true)]);
}

#[test]
fn rename_moves_a_profile_and_keeps_it_active() {
    let d = Daemon::start();
    d.cfg(&["profile", "create", "staging"]).ok();
    assert_eq!(
        d.cfg(&["profile", "rename", "default", "prod"]).ok(),
        "Renamed profile 'default' to 'prod'.\n"
    );
    assert_eq!(
        names(&d),
        [("prod".to_owned(), true), ("staging".to_owned(), false)]
    );
    assert_eq!(
        d.cfg(&["profile", "rename", "nope", "x"]).fails(),
        "Profile 'nope' not found.\n"
    );
    assert_eq!(
        d.cfg(&["profile", "rename", "prod", "staging"]).fails(),
        "Profile 'staging' already exists.\n"
    );
    assert_eq!(
        names(&d),
        [("prod".to_owned(), true), ("staging".to_owned(), false)]
    );
}

#[test]
fn inspect_shows_a_profile_masking_secrets() {
    let d = Daemon::start();
    assert_eq!(
        d.cfg(&["profile", "inspect"]).ok(),
        "No name provided, defaulting to 'default'\nProfile 'default' is empty.\n"
    );
    assert_eq!(
        d.cfg(&["profile", "inspect", "-o", "json"]).json(),
        serde_json::json!({})
    );
    d.cfg(&[
        "set",
        "PREFECT_TASKS_DEFAULT_RETRIES=3",
        "PREFECT_API_KEY=s3cret",
    ])
    .ok();
    assert_eq!(
        d.cfg(&["profile", "inspect", "default"]).ok(),
        "PREFECT_API_KEY='********'\nPREFECT_TASKS_DEFAULT_RETRIES='3'\n"
    );
    assert_eq!(
        d.cfg(&["profile", "inspect", "-o", "json", "--show-secrets"])
            .json(),
        serde_json::json!({"PREFECT_API_KEY": "s3cret", "PREFECT_TASKS_DEFAULT_RETRIES": "3"})
    );
    assert_eq!(
        d.cfg(&["profile", "inspect", "nope"]).fails(),
        "Profile 'nope' not found.\n"
    );
}
