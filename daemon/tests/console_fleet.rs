//! The console's fleet view in a real headless chromium, against the real
//! `cfgd`: a service (an SDK `Settings`, which acks what it applied) is
//! listed under its daemon with its revision, and moves when a set lands;
//! on a real etcd (started by the test; `etcd` must be on the PATH, as
//! `.ci/deps.sh` sees to) two daemons are listed, a shared set moves both,
//! and when etcd is gone the page and `/metrics` say the store is degraded,
//! since when and why. Needs Debian's `chromium` and `chromium-driver`;
//! fails without them.

mod web;

use std::time::Duration;

use cfgd_etcd::testing::Cluster;
use cfgd_sdk::{Options, Settings};
use prometheus_parse::{Scrape, Value};
use web::{Browser, Daemon, set};

const SERVICE: &str = "console-fleet-svc";

/// A gauge's value in one scrape of `/metrics`.
async fn gauge(daemon: &Daemon, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let body = web::get(daemon.http, "/metrics").await.body;
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Gauge(v) | Value::Untyped(v) | Value::Counter(v) => v,
            ref other => panic!("{name} is not a gauge: {other:?}"),
        })
}

/// Whether the page lists `service` at `revision`, applied.
fn service_at(service: &str, revision: u64) -> String {
    format!(
        "!!document.querySelector('#fleet li[data-service=\"{service}\"][data-revision=\"{revision}\"][data-state=\"applied\"]')"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_is_listed_with_its_revision_and_moves_when_a_set_lands() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("config")).unwrap();
    let daemon = Daemon::start(root.path(), web::args(root.path(), None));
    let mut grpc = daemon.client(None).await;
    let first = grpc
        .set(set("PREFECT_TASK_DEFAULT_RETRIES", "1"))
        .await
        .unwrap()
        .into_inner()
        .revision;

    // A service: the SDK's live settings, which ack each revision applied.
    let settings = Settings::connect(Options {
        service: SERVICE.into(),
        ..Options::isolated(&format!("http://{}", daemon.grpc))
    });
    settings.connected().await;

    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("http://{}/", daemon.http))
        .await
        .unwrap();
    browser
        .wait_for(
            "the service is listed at the revision it applied",
            &format!(
                "{} && document.querySelectorAll('#fleet tbody tr').length === 1 && document.querySelector('#fleet tbody tr').dataset.revision === '{first}'",
                service_at(SERVICE, first)
            ),
        )
        .await;
    browser
        .wait_for(
            "the file store is named, not degraded",
            "document.getElementById('fleet-store').dataset.kind === 'file' && !document.querySelector('#fleet-store.degraded') && document.getElementById('fleet-summary').textContent.includes('none lagging')",
        )
        .await;

    // A set from outside: the daemon's row and the service both move.
    let next = grpc
        .set(set("PREFECT_TASK_DEFAULT_RETRIES", "2"))
        .await
        .unwrap()
        .into_inner()
        .revision;
    browser
        .wait_for(
            "the service moves to the new revision",
            &format!(
                "{} && document.querySelector('#fleet tbody tr').dataset.revision === '{next}' && !{}",
                service_at(SERVICE, next),
                service_at(SERVICE, first)
            ),
        )
        .await;

    // The service goes: it stays listed, disconnected, within the grace.
    drop(settings);
    browser
        .wait_for(
            "a service gone is shown as disconnected",
            &format!(
                "(document.querySelector('#fleet li[data-service=\"{SERVICE}\"]') || {{}}).dataset?.state === 'disconnected' || !document.querySelector('#fleet li[data-service=\"{SERVICE}\"]')"
            ),
        )
        .await;
    let errors: Vec<String> = browser.errors().await;
    assert!(errors.is_empty(), "the page's scripts failed: {errors:#?}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_etcd_are_listed_and_a_lost_etcd_shows_as_degraded() {
    let mut cluster = Cluster::start_one()
        .await
        .unwrap_or_else(|e| panic!("{e} (the fleet view's test needs etcd: run .ci/deps.sh)"));
    let members: Vec<String> = cluster
        .endpoints()
        .iter()
        .map(|e| e.trim_start_matches("http://").to_owned())
        .collect();
    let store = format!("etcd://{}", members.join(","));
    let start = |host: &str| {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("config")).unwrap();
        let mut args = web::args(root.path(), None);
        args.extend([
            "--store".into(),
            store.clone(),
            "--host-id".into(),
            host.into(),
        ]);
        (Daemon::start(root.path(), args), root)
    };
    let (a, _root_a) = start("web-a");
    let (b, _root_b) = start("web-b");

    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("http://{}/", a.http))
        .await
        .unwrap();
    browser
        .wait_for(
            "both daemons are listed, the one answering marked",
            "!!document.querySelector('#fleet tr[data-host=\"web-a\"] .tag.me') && !!document.querySelector('#fleet tr[data-host=\"web-b\"]') && !document.querySelector('#fleet tr[data-host=\"web-b\"] .tag.me') && document.getElementById('fleet-summary').textContent.includes('2 host(s) share the profile layer')",
        )
        .await;
    browser
        .wait_for(
            "the etcd store is shown in step",
            "document.getElementById('fleet-store').dataset.kind === 'etcd' && document.getElementById('fleet-store').dataset.state === 'ok' && document.getElementById('fleet-store').textContent.includes('as host web-a')",
        )
        .await;

    // A set on daemon B reaches A; the page of A shows both at it.
    let mut grpc_b = b.client(None).await;
    let shared = grpc_b
        .set(set("PREFECT_TASK_DEFAULT_RETRIES", "4"))
        .await
        .unwrap()
        .into_inner()
        .revision;
    let s = shared >> 24;
    assert!(s > 0, "a shared revision: {shared}");
    browser
        .wait_for(
            "both hosts run the shared revision",
            &format!(
                "['web-a', 'web-b'].every(h => {{ const r = document.querySelector(`#fleet tr[data-host=\"${{h}}\"]`); return !!r && Number(r.dataset.revision) >= {shared} && r.querySelector('td.revision').textContent.startsWith('{s}'); }})"
            ),
        )
        .await;

    // The store gauges of A say the truth: etcd, reachable, writable, in
    // step at the shared revision.
    web::until("A's store gauges", Duration::from_secs(20), || async {
        let ok = gauge(&a, "cfgd_store_info", &[("kind", "etcd")]).await == Some(1.0)
            && gauge(&a, "cfgd_store_reachable", &[]).await == Some(1.0)
            && gauge(&a, "cfgd_store_writable", &[]).await == Some(1.0)
            && gauge(&a, "cfgd_store_degraded_since_seconds", &[]).await == Some(0.0)
            && gauge(&a, "cfgd_store_shared_revision", &[]).await == Some(s as f64)
            && gauge(&a, "cfgd_store_shared_head_revision", &[]).await == Some(s as f64)
            && gauge(&a, "cfgd_store_last_contact_seconds", &[])
                .await
                .is_some_and(|t| t > 0.0);
        ok.then_some(())
    })
    .await;

    // etcd goes: the page says the store is degraded, since when and why,
    // that the fleet cannot be read; the gauges agree.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    cluster.kill(0).expect("kill the etcd member");
    browser
        .wait_for(
            "the page shows the store degraded and the fleet unreadable",
            "!!document.querySelector('#fleet-store.degraded .degraded-since') && document.querySelector('#fleet-store .degraded-since').textContent.includes('shared writes are refused') && !document.getElementById('fleet-error').hidden && document.getElementById('fleet-error').textContent.includes('could not be read')",
        )
        .await;
    web::until(
        "A's store gauges show the degradation",
        Duration::from_secs(30),
        || async {
            let since = gauge(&a, "cfgd_store_degraded_since_seconds", &[])
                .await
                .unwrap_or(0.0);
            let ok = gauge(&a, "cfgd_store_reachable", &[]).await == Some(0.0)
                && gauge(&a, "cfgd_store_writable", &[]).await == Some(0.0)
                && since >= before.floor() - 1.0;
            ok.then_some(())
        },
    )
    .await;
    let errors: Vec<String> = browser
        .errors()
        .await
        .into_iter()
        .filter(|e| !e.contains("the server responded with a status of"))
        .collect();
    assert!(errors.is_empty(), "the page's scripts failed: {errors:#?}");
    browser.close().await;
    drop((a, b));
}
