//! A running service's task picks up a `Set` of the default retries on its
//! next run (defaults are read at the start of each run), and a call-site
//! value still wins.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use cfgd_sdk::retry::{RunError, Task};
use cfgd_sdk::{Assign, Options, Settings};
use cfgd_tests::{RETRIES, TestDaemon};

async fn attempts(task: &Task<&'static str>) -> u32 {
    let calls = AtomicU32::new(0);
    let result = task
        .run(|| async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>("always fails")
        })
        .await;
    assert_eq!(result, Err(RunError::Failed("always fails")));
    calls.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_run_uses_the_new_default() {
    let daemon = TestDaemon::builder().start().await;
    let settings = Settings::connect(Options::isolated(&daemon.endpoint));
    settings.connected().await;
    let task = Task::new("flaky").defaults(Arc::new(settings.clone()));
    let pinned = Task::new("pinned")
        .retries(0)
        .defaults(Arc::new(settings.clone()));

    assert_eq!(attempts(&task).await, 1, "default 0 retries: one attempt");

    daemon
        .client()
        .await
        .set(
            &[(
                "PREFECT_TASK_DEFAULT_RETRIES".into(),
                Assign::Raw("3".into()),
            )],
            None,
        )
        .await
        .unwrap();
    cfgd_tests::view_until(&settings, "the SDK sees the new default", |view| {
        view.get(RETRIES)
            .and_then(|c| c.value.as_ref())
            .and_then(cfgd_settings::Value::as_integer)
            == Some(3)
    })
    .await;

    assert_eq!(
        attempts(&task).await,
        4,
        "the same task object now retries 3 times"
    );
    assert_eq!(
        attempts(&pinned).await,
        1,
        "retries = 0 at the call site still wins"
    );
    daemon.stop().await;
}
