//! Reaching the daemon (address, token), the output-format check, help and
//! completions.

use cfgd_tests::blocking::Daemon;
use cfgd_tests::cli::{cfg_at, dead_endpoint, run};

#[test]
fn an_unreachable_daemon_is_one_line_naming_the_address_and_how_to_start_cfgd() {
    let endpoint = dead_endpoint();
    for args in [
        &["set", "PREFECT_TASKS_DEFAULT_RETRIES=1"][..],
        &["view"],
        &["status"],
        &["watch"],
        &["profile", "ls"],
    ] {
        let out = run(cfg_at(&endpoint).args(args));
        let err = out.fails();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("cannot reach cfgd at {endpoint} (")),
            "{args:?}: {err}"
        );
        assert!(err.contains("Start it with `cfgd`"), "{err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
    }
}

#[test]
fn the_endpoint_comes_from_cfgd_endpoint_too() {
    let d = Daemon::start();
    let out = run(std::process::Command::new(env!("CARGO_BIN_EXE_cfg"))
        .env("CFGD_ENDPOINT", &d.endpoint)
        .env_remove("CFGD_TOKEN")
        .env("NO_COLOR", "1")
        .args(["view"]));
    assert_eq!(out.ok(), "PREFECT_PROFILE='default'\n");
}

#[test]
fn writes_need_the_token_when_the_daemon_has_one() {
    let d = Daemon::builder().token("t0k3n").start_blocking();
    let before = d.revision();
    let err = d
        .cfg(&["set", "PREFECT_TASKS_DEFAULT_RETRIES=2"])
        .fails()
        .to_owned();
    assert!(err.contains("requires a token"), "{err}");
    assert_eq!(err.lines().count(), 1);
    assert_eq!(d.revision(), before);
    assert!(d.profile().is_empty());
    let wrong = d.cfg(&["--token", "nope", "profile", "create", "x"]);
    assert!(wrong.fails().contains("not the daemon's"));
    assert_eq!(
        d.cfg(&["--token", "t0k3n", "set", "PREFECT_TASKS_DEFAULT_RETRIES=2"])
            .ok(),
        "Set 'PREFECT_TASKS_DEFAULT_RETRIES' to '2'.\nUpdated profile 'default'.\n"
    );
    let via_env = run(d
        .command()
        .env("CFGD_TOKEN", "t0k3n")
        .args(["unset", "PREFECT_TASKS_DEFAULT_RETRIES"]));
    via_env.ok();
    assert!(d.profile().is_empty());
}

#[test]
fn only_json_is_an_output_format() {
    let d = Daemon::start();
    for args in [
        &["view", "-o", "yaml"][..],
        &["-o", "table", "profile", "ls"],
        &["set", "--output", "text", "PREFECT_TASKS_DEFAULT_RETRIES=1"],
    ] {
        assert_eq!(
            d.cfg(args).fails(),
            "Only 'json' output format is supported.\n",
            "{args:?}"
        );
    }
    assert!(d.profile().is_empty());
}

#[test]
fn every_command_has_help_with_an_example() {
    let endpoint = dead_endpoint();
    for cmd in [
        &[][..],
        &["set"],
        &["unset"],
        &["get"],
        &["view"],
        &["validate"],
        &["watch"],
        &["history"],
        &["rollback"],
        &["status"],
        &["profile"],
        &["profile", "ls"],
        &["profile", "create"],
        &["profile", "use"],
        &["profile", "delete"],
        &["profile", "rename"],
        &["profile", "inspect"],
        &["completions"],
    ] {
        let out = run(cfg_at(&endpoint).args(cmd).arg("--help"));
        assert!(
            out.ok().contains("Examples:\n  cfg"),
            "{cmd:?}: {}",
            out.stdout
        );
    }
}

#[test]
fn completions_are_scripts_for_each_shell() {
    let endpoint = dead_endpoint();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef cfg"),
        ("fish", "complete -c cfg"),
    ] {
        let out = run(cfg_at(&endpoint).args(["completions", shell]));
        assert!(out.ok().contains(marker), "{shell}: {}", out.stdout);
        assert!(out.stdout.contains("rollback"), "{shell}");
    }
}

#[test]
fn no_colour_when_not_a_terminal_even_without_no_color() {
    let d = Daemon::start();
    let out = run(d.command().env_remove("NO_COLOR").args([
        "set",
        "PREFECT_TASKS_DEFAULT_RETRIES=1",
        "PREFECT_NOPE=1",
    ]));
    assert!(!out.stderr.contains('\x1b'), "{out:?}");
    let out = run(d
        .command()
        .env_remove("NO_COLOR")
        .args(["set", "PREFECT_TASKS_DEFAULT_RETRIES=1"]));
    assert!(!out.ok().contains('\x1b'));
}
