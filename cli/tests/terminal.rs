//! Behaviour that only shows on a terminal: confirmations, prompts and
//! colour. `cfg` runs under util-linux `script`, which gives it a
//! pseudo-terminal; a machine without `script` fails these tests, naming
//! `.ci/deps.sh`.

use std::io::Write;
use std::process::{Command, Stdio};

use cfgd_tests::blocking::Daemon;
use cfgd_tests::cli::Run;

/// Runs `cfg ARGS` on a pseudo-terminal, typing `input`; `None` when
/// `script` is not installed.
fn on_terminal(d: &Daemon, args: &[&str], input: &str, no_color: bool) -> Option<Run> {
    let available = Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        available,
        "util-linux `script` is not installed (Debian package bsdutils): run .ci/deps.sh"
    );
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = vec![
        quote(env!("CARGO_BIN_EXE_cfg")),
        "--endpoint".to_owned(),
        quote(&d.endpoint),
    ];
    line.extend(args.iter().map(|a| quote(a)));
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line.join(" "), "/dev/null"])
        .env_remove("CFGD_ENDPOINT")
        .env_remove("CFGD_TOKEN")
        .env_remove("CFGD_TOKEN_FILE")
        .env_remove("PREFECT_PROFILE")
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let mut child = cmd.spawn().expect("spawn script");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .expect("type the answer");
    let out = child.wait_with_output().expect("script runs");
    // A terminal ends lines with CR LF; stdout and stderr share it.
    let text = String::from_utf8(out.stdout)
        .expect("utf-8")
        .replace("\r\n", "\n");
    Some(Run {
        code: out.status.code().expect("exit code"),
        stdout: text,
        stderr: String::from_utf8(out.stderr).expect("utf-8"),
    })
}

#[test]
fn unset_asks_first_and_a_no_changes_nothing() {
    let d = Daemon::start();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=3"]).ok();
    let before = d.revision();
    let Some(no) = on_terminal(&d, &["unset", "PREFECT_TASKS_DEFAULT_RETRIES"], "n\n", true) else {
        return;
    };
    assert_eq!(no.code, 1, "{no:?}");
    assert!(
        no.stdout.contains(
            "Are you sure you want to unset the following setting(s): 'PREFECT_TASKS_DEFAULT_RETRIES'? [y/N]: Unset aborted.\n"
        ),
        "{no:?}"
    );
    assert_eq!(d.revision(), before);
    assert_eq!(d.profile().len(), 1);

    let yes = on_terminal(&d, &["unset", "PREFECT_TASKS_DEFAULT_RETRIES"], "y\n", true).unwrap();
    assert_eq!(yes.code, 0, "{yes:?}");
    assert!(
        yes.stdout
            .contains("Unset 'PREFECT_TASKS_DEFAULT_RETRIES'.\nUpdated profile 'default'.\n"),
        "{yes:?}"
    );
    assert!(d.profile().is_empty());
}

#[test]
fn unset_refuses_before_asking_and_yes_skips_the_question() {
    let d = Daemon::start();
    let Some(out) = on_terminal(&d, &["unset", "PREFECT_TASKS_DEFAULT_RETRIES"], "y\n", true)
    else {
        return;
    };
    assert_eq!(out.code, 1);
    assert!(!out.stdout.contains("Are you sure"), "{out:?}");
    assert!(
        out.stdout
            .contains("'PREFECT_TASKS_DEFAULT_RETRIES' is not set in profile 'default'.")
    );

    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=3"]).ok();
    let out = on_terminal(
        &d,
        &["unset", "-y", "PREFECT_TASKS_DEFAULT_RETRIES"],
        "",
        true,
    )
    .unwrap();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("Are you sure"), "{out:?}");
    assert!(d.profile().is_empty());
}

#[test]
fn delete_asks_first_and_a_no_keeps_the_profile() {
    let d = Daemon::start();
    d.cfg(&["profile", "create", "staging"]).ok();
    let Some(no) = on_terminal(&d, &["profile", "delete", "staging"], "\n", true) else {
        return;
    };
    assert_eq!(no.code, 1, "{no:?}");
    assert!(
        no.stdout.contains("Are you sure you want to delete profile with name 'staging'? [y/N]: Deletion aborted.\n"),
        "{no:?}"
    );
    assert!(d.cfg(&["profile", "ls"]).ok().contains("  staging\n"));
    let yes = on_terminal(&d, &["profile", "delete", "staging"], "yes\n", true).unwrap();
    assert_eq!(yes.code, 0, "{yes:?}");
    assert!(yes.stdout.contains("Removed profile 'staging'.\n"));
    assert!(!d.cfg(&["profile", "ls"]).ok().contains("staging"));
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    let d = Daemon::builder()
        .env("PREFECT_TASK_DEFAULT_RETRIES", "5")
        .start_blocking();
    let Some(out) = on_terminal(&d, &["set", "PREFECT_TASKS_DEFAULT_RETRIES=3"], "", false) else {
        return;
    };
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("\x1b[32mSet 'PREFECT_TASKS_DEFAULT_RETRIES' to '3'.\x1b[0m"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("\x1b[33mPREFECT_TASKS_DEFAULT_RETRIES is overridden by env"),
        "{out:?}"
    );
    let err = on_terminal(&d, &["set", "=NOPE"], "", false).unwrap();
    assert!(
        err.stdout
            .contains("\x1b[31mFailed to parse argument '=NOPE'."),
        "{err:?}"
    );
    let plain = on_terminal(&d, &["set", "PREFECT_TASKS_DEFAULT_RETRIES=3"], "", true).unwrap();
    assert_eq!(plain.code, 0);
    assert!(!plain.stdout.contains('\x1b'), "{plain:?}");
}

#[test]
fn rollback_asks_first_and_yes_skips_the_question() {
    let d = Daemon::start();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=3"]).ok();
    let at = d.revision();
    d.cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=4"]).ok();
    let before = d.revision();
    let rev = at.to_string();
    let no = on_terminal(&d, &["rollback", &rev], "n\n", true).unwrap();
    assert_eq!(no.code, 1, "{no:?}");
    assert!(
        no.stdout.contains(&format!(
            "Are you sure you want to restore the profiles as they were at revision {at}? [y/N]: Rollback aborted.\n"
        )),
        "{no:?}"
    );
    assert_eq!(d.revision(), before);
    let yes = on_terminal(&d, &["rollback", "-y", &rev], "", true).unwrap();
    assert_eq!(yes.code, 0, "{yes:?}");
    assert!(!yes.stdout.contains("Are you sure"), "{yes:?}");
    assert_eq!(d.effective("PREFECT_TASKS_DEFAULT_RETRIES").0, "3");
}

#[test]
fn a_secret_is_asked_for_without_echo() {
    use std::io::Read;
    let d = Daemon::start();
    // Type only once the prompt is up: a terminal echoes what arrives
    // before the echo is turned off.
    let line = format!(
        "'{}' --endpoint '{}' set PREFECT_API_KEY",
        env!("CARGO_BIN_EXE_cfg"),
        d.endpoint
    );
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("CFGD_TOKEN")
        .env_remove("CFGD_TOKEN_FILE")
        .env_remove("PREFECT_PROFILE")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` (Debian bsdutils): run .ci/deps.sh");
    let mut stdout = child.stdout.take().expect("piped");
    let mut seen = Vec::new();
    let prompt = b"Value for PREFECT_API_KEY (not echoed): ";
    let mut byte = [0u8; 1];
    while !seen.ends_with(prompt) {
        let n = stdout.read(&mut byte).expect("read the terminal");
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
        seen.push(byte[0]);
    }
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(b"pnu_typed\n").expect("type the secret");
    drop(stdin);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read the rest");
    let status = child.wait().expect("script ends");
    assert!(status.success(), "{rest}");
    assert!(
        !rest.contains("pnu_typed"),
        "the value was echoed: {rest:?}"
    );
    assert!(
        rest.contains("Set 'PREFECT_API_KEY' to '********'."),
        "{rest:?}"
    );
    assert_eq!(
        d.profile(),
        [("PREFECT_API_KEY".to_owned(), "pnu_typed".to_owned())]
    );
}
