//! The SDK's metrics through the `metrics` facade, read back from a real
//! Prometheus recorder (the one the daemon uses) and parsed as Prometheus
//! text: a failed run with retries moves the attempts, outcomes and delays
//! of its task and carries the settings revision it used; a later `cfg
//! set` moves that revision; the live view reports its revision, that it
//! is connected, and, once the daemon is gone, how long since it last
//! heard from it. A real daemon on loopback serves the settings.

use std::sync::Arc;
use std::time::Duration;

use cfgd_sdk::metrics::{
    ATTEMPTS, RETRY_DELAY, RUN_REVISION, RUNS, SETTINGS_CONNECTED, SETTINGS_REVISION, SINCE_CONTACT,
};
use cfgd_sdk::retry::{RunError, Task};
use cfgd_sdk::{Assign, Client, Options, Settings};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use prometheus_parse::{Scrape, Value};

const RETRIES: &str = "PREFECT_TASKS_DEFAULT_RETRIES";
const DELAYS: &str = "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS";
const SERVICE: &str = "metrics-test-service";

/// A daemon in this process on `127.0.0.1:0`, with fresh dirs.
struct Daemon {
    endpoint: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), cfgd::DaemonError>>,
    _dirs: tempfile::TempDir,
}

impl Daemon {
    async fn start() -> Daemon {
        let dirs = tempfile::tempdir().expect("a temp dir");
        std::fs::create_dir(dirs.path().join("config")).unwrap();
        let mut config = cfgd::Config::new(Vec::new());
        config.config_dir = dirs.path().join("config");
        config.state_dir = dirs.path().join("state");
        let listener = cfgd::Listener::bind(&cfgd::ListenAddr::Tcp(([127, 0, 0, 1], 0).into()))
            .await
            .expect("bind");
        let endpoint = format!("http://{}", listener.local_addr());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(cfgd::serve(config, listener, async {
            let _ = rx.await;
        }));
        Daemon {
            endpoint,
            stop: Some(tx),
            task,
            _dirs: dirs,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.task).await.unwrap().expect("stopped cleanly");
    }
}

fn scrape(handle: &PrometheusHandle) -> Scrape {
    Scrape::parse(handle.render().lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text")
}

/// A counter's or gauge's value with these labels (`None`: not recorded).
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .filter(|m| m.metric == name)
        .find(|m| labels.iter().all(|(k, v)| m.labels.get(k) == Some(*v)))
        .map(|m| match m.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            ref other => panic!("{name} is not a counter or gauge: {other:?}"),
        })
}

/// A histogram's (count, sum) with these labels.
fn observed(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> (f64, f64) {
    let of = |suffix: &str| {
        s.samples
            .iter()
            .filter(|m| m.metric == format!("{name}{suffix}"))
            .find(|m| labels.iter().all(|(k, v)| m.labels.get(k) == Some(*v)))
            .map_or(0.0, |m| match m.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                ref other => panic!("{name}{suffix}: {other:?}"),
            })
    };
    let count = s
        .samples
        .iter()
        .filter(|m| m.metric == name)
        .find(|m| labels.iter().all(|(k, v)| m.labels.get(k) == Some(*v)))
        .map(|m| match &m.value {
            Value::Histogram(b) => b
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map_or(0.0, |b| b.count),
            Value::Summary(_) => of("_count"),
            other => panic!("{name} is not a histogram: {other:?}"),
        })
        .unwrap_or(0.0);
    (count, of("_sum"))
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not within 20 s: {what}"));
}

async fn set(client: &Client, pairs: &[(&str, &str)]) -> u64 {
    let batch: Vec<(String, Assign)> = pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), Assign::Raw((*v).to_owned())))
        .collect();
    client.set(&batch, None).await.expect("set").revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_retry_moves_its_metrics_and_carries_the_revision_it_used() {
    // The recorder a service would install (as the daemon does for its
    // own /metrics); the SDK only records.
    let handle = PrometheusBuilder::new()
        .set_buckets(&[0.01, 0.1, 1.0])
        .unwrap()
        .install_recorder()
        .expect("the only recorder of this test process");
    let daemon = Daemon::start().await;
    let client = Client::connect(&daemon.endpoint, None).await.unwrap();
    let revision = set(&client, &[(RETRIES, "2"), (DELAYS, "0.01,0.02")]).await;

    let settings = Settings::connect(Options {
        service: SERVICE.into(),
        ..Options::isolated(&daemon.endpoint)
    });
    until("the live view has the set", || {
        settings.view().revision() == Some(revision)
    })
    .await;
    let service = [("service", SERVICE)];
    let s = scrape(&handle);
    assert_eq!(
        value(&s, SETTINGS_REVISION, &service),
        Some(revision as f64)
    );
    assert_eq!(value(&s, SETTINGS_CONNECTED, &service), Some(1.0));
    assert_eq!(value(&s, SINCE_CONTACT, &service), Some(0.0));
    assert!(
        s.docs.contains_key(SINCE_CONTACT),
        "described: {:?}",
        s.docs
    );

    // A task with no parameters of its own fails every attempt: 2 retries
    // of the live defaults, after 0.01 s and 0.02 s.
    let task: Task<&str> = Task::new("flaky").defaults(Arc::new(settings.clone()));
    let result = task.run(|| async { Err::<(), _>("boom") }).await;
    assert_eq!(result, Err(RunError::Failed("boom")));
    let flaky = [("kind", "task"), ("name", "flaky")];
    let s = scrape(&handle);
    assert_eq!(value(&s, ATTEMPTS, &flaky), Some(3.0), "three attempts");
    assert_eq!(
        value(&s, RUNS, &[("name", "flaky"), ("state", "Failed")]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, RUNS, &[("name", "flaky"), ("state", "Completed")]),
        None
    );
    let (count, sum) = observed(&s, RETRY_DELAY, &flaky);
    assert_eq!(count, 2.0, "two delays before two retries");
    assert!((sum - 0.03).abs() < 1e-9, "0.01 + 0.02 s, not {sum}");
    assert_eq!(
        value(&s, RUN_REVISION, &flaky),
        Some(revision as f64),
        "the run carries the revision whose defaults it used"
    );

    // A `cfg set` reaches the next run, and the metric follows it.
    let next = set(&client, &[(RETRIES, "0")]).await;
    until("the live view has the second set", || {
        settings.view().revision() == Some(next)
    })
    .await;
    let result = task.run(|| async { Ok::<_, &str>(7) }).await;
    assert_eq!(result, Ok(7));
    let s = scrape(&handle);
    assert_eq!(value(&s, RUN_REVISION, &flaky), Some(next as f64));
    assert_eq!(value(&s, ATTEMPTS, &flaky), Some(4.0));
    assert_eq!(
        value(&s, RUNS, &[("name", "flaky"), ("state", "Completed")]),
        Some(1.0)
    );
    assert_eq!(
        observed(&s, RETRY_DELAY, &flaky).0,
        2.0,
        "no retry, no delay"
    );
    assert_eq!(value(&s, SETTINGS_REVISION, &service), Some(next as f64));

    // An explicit task is counted under its own name; an invalid one ends
    // Failed without an attempt.
    let invalid: Task<&str> = Task::new("invalid").retries(1).retry_jitter_factor(-1.0);
    assert!(matches!(
        invalid.run(|| async { Ok::<_, &str>(()) }).await,
        Err(RunError::Invalid(_))
    ));
    let s = scrape(&handle);
    assert_eq!(
        value(&s, RUNS, &[("name", "invalid"), ("state", "Failed")]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, ATTEMPTS, &[("name", "invalid")]).unwrap_or(0.0),
        0.0
    );

    // The daemon goes: the live view says so, and counts the time since it
    // last heard from it.
    daemon.stop().await;
    until("the live view notices", || {
        value(&scrape(&handle), SETTINGS_CONNECTED, &service) == Some(0.0)
    })
    .await;
    until("the time since contact grows", || {
        value(&scrape(&handle), SINCE_CONTACT, &service).is_some_and(|s| s >= 1.0)
    })
    .await;
    assert_eq!(
        value(&scrape(&handle), SETTINGS_REVISION, &service),
        Some(next as f64),
        "the view keeps its last revision"
    );
}
