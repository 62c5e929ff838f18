//! `/metrics` of the real `cfgd`, read with a Prometheus text parser: a
//! set, a refused set, a reload (good and bad), a resync and the console's
//! own requests move the counters they should, and the gauges read the
//! state (revision, watchers, files in error, the store).

mod web;

use std::time::Duration;

use cfgd_proto::pb;
use prometheus_parse::{Scrape, Value};
use web::{Daemon, set};

/// One scrape.
struct Metrics(Scrape);

impl Metrics {
    async fn scrape(daemon: &Daemon) -> Metrics {
        let answer = web::get(daemon.http, "/metrics").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(
            answer.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4"),
            "{:?}",
            answer.headers
        );
        let lines = answer.body.lines().map(|l| Ok(l.to_owned()));
        Metrics(Scrape::parse(lines).expect("the Prometheus text format"))
    }

    /// A counter's or gauge's value (0 when it has not been recorded yet).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                ref other => panic!("{name} is not a counter or gauge: {other:?}"),
            })
            .sum()
    }

    /// How many observations a histogram holds (its `+Inf` bucket).
    fn observed(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                Value::Histogram(buckets) => buckets
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .map_or(0.0, |b| b.count),
                other => panic!("{name} is not a histogram: {other:?}"),
            })
            .sum()
    }
}

async fn revision(client: &mut web::Client) -> u64 {
    client
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sets_reloads_and_resyncs_move_their_counters() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("config")).unwrap();
    let daemon = Daemon::start(root.path(), web::args(root.path(), None));
    let mut client = daemon.client(None).await;
    let before = Metrics::scrape(&daemon).await;
    assert_eq!(before.value("cfgd_store_writable", &[]), 1.0);
    assert_eq!(before.value("cfgd_profiles_file_ok", &[]), 1.0);
    // The file store: named, reachable, never degraded, nothing shared.
    assert_eq!(before.value("cfgd_store_info", &[("kind", "file")]), 1.0);
    assert_eq!(before.value("cfgd_store_info", &[("kind", "etcd")]), 0.0);
    assert_eq!(before.value("cfgd_store_reachable", &[]), 1.0);
    assert_eq!(before.value("cfgd_store_degraded_since_seconds", &[]), 0.0);
    assert_eq!(before.value("cfgd_store_shared_revision", &[]), 0.0);
    assert_eq!(before.value("cfgd_store_shared_head_revision", &[]), 0.0);
    assert!(
        before.0.docs.contains_key("cfgd_store_reachable"),
        "described"
    );

    // A set: a request answered OK, a group of one made durable, a revision.
    let written = client
        .set(set("PREFECT_TASK_DEFAULT_RETRIES", "3"))
        .await
        .unwrap()
        .into_inner()
        .revision;
    let refused = client
        .set(set("PREFECT_TASK_DEFAULT_RETRIES", "many"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let m = Metrics::scrape(&daemon).await;
    for name in [
        "cfgd_grpc_requests_total",
        "cfgd_write_group_size",
        "cfgd_revision",
    ] {
        assert!(
            m.0.docs.contains_key(name),
            "{name} has its help text: {:?}",
            m.0.docs
        );
    }
    let ok = [("rpc", "Set"), ("code", "OK")];
    let invalid = [("rpc", "Set"), ("code", "INVALID_ARGUMENT")];
    assert_eq!(
        m.value("cfgd_grpc_requests_total", &ok) - before.value("cfgd_grpc_requests_total", &ok),
        1.0
    );
    assert_eq!(
        m.value("cfgd_grpc_requests_total", &invalid)
            - before.value("cfgd_grpc_requests_total", &invalid),
        1.0
    );
    assert_eq!(
        m.observed("cfgd_grpc_request_duration_seconds", &[("rpc", "Set")])
            - before.observed("cfgd_grpc_request_duration_seconds", &[("rpc", "Set")]),
        2.0,
        "both answers are timed"
    );
    assert_eq!(
        m.observed("cfgd_write_group_size", &[]) - before.observed("cfgd_write_group_size", &[]),
        1.0,
        "the refused set wrote nothing"
    );
    assert_eq!(
        m.observed("cfgd_log_append_duration_seconds", &[])
            - before.observed("cfgd_log_append_duration_seconds", &[]),
        1.0
    );
    assert_eq!(m.value("cfgd_revision", &[]), written as f64);

    // A reload that changes a value, then one of a bad file.
    let values = root.path().join("config/prefect.toml");
    std::fs::write(&values, "[tasks]\ndefault_retries = 5\n").unwrap();
    let reloaded = web::until(
        "the reload makes a revision",
        Duration::from_secs(10),
        || {
            let mut c = client.clone();
            async move { (revision(&mut c).await > written).then_some(()) }
        },
    );
    reloaded.await;
    let m2 = Metrics::scrape(&daemon).await;
    assert_eq!(
        m2.value("cfgd_reloads_total", &[("outcome", "changed")])
            - m.value("cfgd_reloads_total", &[("outcome", "changed")]),
        1.0
    );
    assert_eq!(m2.value("cfgd_revision", &[]), (written + 1) as f64);
    std::fs::write(&values, "[tasks]\ndefault_retries = \"lots\"\n").unwrap();
    web::until("the bad file is reported", Duration::from_secs(10), || {
        let mut c = client.clone();
        async move {
            let s = c.status(pb::StatusRequest {}).await.unwrap().into_inner();
            s.files.iter().any(|f| !f.error.is_empty()).then_some(())
        }
    })
    .await;
    let m3 = Metrics::scrape(&daemon).await;
    assert_eq!(
        m3.value("cfgd_reloads_total", &[("outcome", "invalid")])
            - m2.value("cfgd_reloads_total", &[("outcome", "invalid")]),
        1.0
    );
    assert_eq!(m3.value("cfgd_config_files_in_error", &[]), 1.0);
    let path = std::fs::canonicalize(&values)
        .unwrap()
        .display()
        .to_string();
    assert_eq!(m3.value("cfgd_config_file_error", &[("file", &path)]), 1.0);
    assert_eq!(
        m3.value("cfgd_revision", &[]),
        (written + 1) as f64,
        "a bad file makes no revision"
    );
    std::fs::write(&values, "[tasks]\ndefault_retries = 6\n").unwrap();
    web::until(
        "the fixed file is in force",
        Duration::from_secs(10),
        || {
            let mut c = client.clone();
            async move { (revision(&mut c).await > written + 1).then_some(()) }
        },
    )
    .await;
    let m4 = Metrics::scrape(&daemon).await;
    assert_eq!(m4.value("cfgd_config_files_in_error", &[]), 0.0);
    assert_eq!(
        m4.value("cfgd_config_file_error", &[("file", &path)]),
        0.0,
        "a fixed file goes back to 0"
    );

    // Resyncs by reason: a watch from nothing, one from another epoch.
    let mut initial = client
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = initial.message().await.unwrap().unwrap();
    assert!(matches!(
        first.event,
        Some(pb::watch_response::Event::Resync(_))
    ));
    let mut foreign = client
        .watch(pb::WatchRequest {
            after_revision: Some(1),
            epoch: Some(first.epoch.wrapping_add(1)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(foreign.message().await.unwrap().is_some());
    let m5 = Metrics::scrape(&daemon).await;
    for reason in ["initial", "epoch"] {
        assert_eq!(
            m5.value("cfgd_watch_resyncs_total", &[("reason", reason)])
                - m4.value("cfgd_watch_resyncs_total", &[("reason", reason)]),
            1.0,
            "{reason}"
        );
    }
    assert_eq!(
        m5.value("cfgd_watch_events_total", &[("kind", "resync")])
            - m4.value("cfgd_watch_events_total", &[("kind", "resync")]),
        2.0
    );
    assert_eq!(m5.value("cfgd_watchers", &[]), 2.0);
    assert_eq!(
        m5.observed("cfgd_grpc_request_duration_seconds", &[("rpc", "Watch")]),
        2.0,
        "a watch is timed until it opens"
    );
    drop((initial, foreign));

    // The console's own requests are counted by route.
    let m6 = Metrics::scrape(&daemon).await;
    assert!(
        m6.value(
            "cfgd_http_requests_total",
            &[("route", "/metrics"), ("status", "200")]
        ) >= 5.0,
        "{:?}",
        m6.0.samples
            .iter()
            .filter(|s| s.metric == "cfgd_http_requests_total")
            .collect::<Vec<_>>()
    );
    web::until(
        "the watch streams are counted out",
        Duration::from_secs(10),
        || async {
            (Metrics::scrape(&daemon).await.value("cfgd_watchers", &[]) == 0.0).then_some(())
        },
    )
    .await;
}
