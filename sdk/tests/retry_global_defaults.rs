//! The process-wide defaults: the built-in catalogue under the process
//! environment when nothing is installed, the installed source when one
//! is, read at the start of every run.
//!
//! The environment is given to a child copy of this test binary, so no
//! test changes its own environment.

use std::process::Command;
use std::sync::Arc;

use cfgd_sdk::retry::{
    FixedDefaults, Flow, Task, clear_global_defaults, global_defaults, set_global_defaults,
};
use cfgd_settings::Delays;

const CHILD: &str = "CFGD_RETRY_GLOBAL_DEFAULTS_CHILD";
const TEST: &str = "global_defaults_follow_the_environment_and_the_installed_source";

fn task_attempts() -> u32 {
    let task: Task<&str> = Task::new("t");
    task.run_blocking_with_history(|| Err::<(), _>("x"))
        .0
        .run_count()
}

fn flow_attempts() -> u32 {
    Flow::new("f")
        .run_blocking_with_history(|| Err::<(), _>("x"))
        .0
        .run_count()
}

#[test]
fn global_defaults_follow_the_environment_and_the_installed_source() {
    if std::env::var_os(CHILD).is_none() {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--test-threads=1"])
            .env(CHILD, "1")
            .env("PREFECT_TASK_DEFAULT_RETRIES", "2")
            .env("PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS", "0")
            .env("PREFECT_FLOWS_DEFAULT_RETRIES", "1")
            .env_remove("PREFECT_TASKS_DEFAULT_RETRIES")
            .env_remove("PREFECT_FLOW_DEFAULT_RETRIES")
            .env_remove("PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS")
            .env_remove("PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "the child run failed:\n{stdout}\n{stderr}"
        );
        assert!(
            stdout.contains("1 passed"),
            "the child ran this test: {stdout}"
        );
        return;
    }

    // Nothing installed: the catalogue under this process's environment.
    assert_eq!(global_defaults().with(|d| d.task_retries), 2);
    assert_eq!(task_attempts(), 3);
    assert_eq!(flow_attempts(), 2);

    // An installed source wins, from the next run on.
    set_global_defaults(Arc::new(FixedDefaults {
        task_retries: 1,
        flow_retries: 0,
        flow_retry_delay: Delays::scalar(0.0).unwrap(),
        ..FixedDefaults::default()
    }));
    assert_eq!(task_attempts(), 2);
    assert_eq!(flow_attempts(), 1);

    // A task's own source wins over the global one.
    let own: Task<&str> = Task::new("t").defaults(Arc::new(FixedDefaults {
        task_retries: 4,
        ..FixedDefaults::default()
    }));
    assert_eq!(
        own.run_blocking_with_history(|| Err::<(), _>("x"))
            .0
            .run_count(),
        5
    );

    clear_global_defaults();
    assert_eq!(task_attempts(), 3);
}
