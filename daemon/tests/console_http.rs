//! The console's HTTP edge, in-process on loopback: the same auth and
//! masking as gRPC, the daemon's typed refusals, a guard against other
//! sites' pages, bounded requests and connections, an event stream that
//! resumes from its last id, and a shutdown that ends it.

mod web;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;
use web::{Events, get, post, request, set};

const TOKEN: &str = "http-token";

struct Running {
    grpc: SocketAddr,
    http: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), cfgd::DaemonError>>,
    dir: tempfile::TempDir,
}

async fn start(token: Option<&str>, limits: cfgd::HttpLimits, max_message: usize) -> Running {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    let mut config = cfgd::Config::new(Vec::new());
    config.config_dir = dir.path().join("config");
    config.state_dir = dir.path().join("state");
    config.token = token.map(str::to_owned);
    config.limits.max_message_bytes = max_message;
    let http = cfgd::HttpListener::bind(([127, 0, 0, 1], 0).into())
        .await
        .unwrap()
        .with_limits(limits);
    let http_addr = http.local_addr();
    config.http = Some(http);
    let listener = cfgd::Listener::bind(&"127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let grpc: SocketAddr = listener.local_addr().parse().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(cfgd::serve(config, listener, async {
        let _ = rx.await;
    }));
    web::connect(grpc, token).await;
    Running {
        grpc,
        http: http_addr,
        stop: Some(tx),
        task,
        dir,
    }
}

async fn start_default(token: Option<&str>) -> Running {
    start(token, cfgd::HttpLimits::default(), 4 << 20).await
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the daemon stops")
            .unwrap()
            .expect("it stops cleanly");
    }
}

fn assignment(name: &str, value: &str) -> serde_json::Value {
    json!({"assignments": [{"name": name, "value": value}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_another_site_can_neither_write_nor_read_through_the_console() {
    let d = start_default(None).await;
    let named_otherwise = request(
        d.http,
        "GET",
        "/api/status",
        &[("host", "evil.example:7980")],
        None,
    )
    .await;
    assert_eq!(
        named_otherwise.status, 421,
        "a DNS-rebinding page names its own host: {}",
        named_otherwise.body
    );
    let origin = format!("http://{}", d.http);
    for headers in [
        vec![("origin", "http://evil.example")],
        vec![
            ("origin", origin.as_str()),
            ("sec-fetch-site", "cross-site"),
        ],
    ] {
        let foreign = request(
            d.http,
            "POST",
            "/api/set",
            &headers,
            Some(assignment("PREFECT_TASK_DEFAULT_RETRIES", "9")),
        )
        .await;
        assert_eq!(foreign.status, 403, "{}", foreign.body);
        assert_eq!(foreign.json()["error"]["reason"], "CROSS_ORIGIN");
    }
    let snapshot = get(d.http, "/api/snapshot?names=PREFECT_TASKS_DEFAULT_RETRIES")
        .await
        .json();
    assert_eq!(
        snapshot["settings"][0]["value"]["text"], "0",
        "nothing was written"
    );
    let own = request(
        d.http,
        "POST",
        "/api/set",
        &[
            ("origin", origin.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
        Some(assignment("PREFECT_TASK_DEFAULT_RETRIES", "9")),
    )
    .await;
    assert_eq!(
        own.status, 200,
        "the console's own page writes: {}",
        own.body
    );
    let page = get(d.http, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>cfgd console</title>"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers["cache-control"], "no-store");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_reveals_need_the_token_and_refusals_are_the_daemons() {
    let d = start_default(Some(TOKEN)).await;
    let refused = post(
        d.http,
        "/api/set",
        None,
        assignment("PREFECT_API_KEY", "pnu_http_hush"),
    )
    .await;
    assert_eq!(refused.status, 401);
    let e = refused.json()["error"].clone();
    assert_eq!(e["reason"], "UNAUTHENTICATED");
    assert_eq!(
        e["message"],
        "cfgd requires a token to set: no token was given (pass --token or set CFGD_TOKEN)"
    );
    let wrong = post(
        d.http,
        "/api/set",
        Some("nope"),
        assignment("PREFECT_API_KEY", "x"),
    )
    .await;
    assert!(
        wrong.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not the daemon's")
    );

    let written = post(
        d.http,
        "/api/set",
        Some(TOKEN),
        assignment("PREFECT_API_KEY", "pnu_http_hush"),
    )
    .await;
    assert_eq!(written.status, 200, "{}", written.body);
    assert!(
        !written.body.contains("pnu_http_hush"),
        "the write's answer masks the secret"
    );
    for path in ["/api/snapshot", "/api/history", "/api/profiles/default"] {
        let body = get(d.http, path).await.body;
        assert!(!body.contains("pnu_http_hush"), "{path}: {body}");
        assert!(body.contains("********"), "{path} shows it masked: {body}");
    }
    let reveal = get(d.http, "/api/snapshot?reveal=1").await;
    assert_eq!(
        reveal.status, 401,
        "revealing needs the token: {}",
        reveal.body
    );
    let auth = format!("Bearer {TOKEN}");
    let revealed = request(
        d.http,
        "GET",
        "/api/snapshot?reveal=1",
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert!(
        revealed.body.contains("pnu_http_hush"),
        "an authorised reveal: {}",
        revealed.body
    );

    // All or nothing, with every problem typed and named as given.
    let batch = json!({"assignments": [
        {"name": "PREFECT_TASK_DEFAULT_RETRIES", "value": "many"},
        {"name": "PREFECT_TASK_DEFAULT_RETRYS", "value": "1"},
        {"name": "PREFECT_FLOWS_DEFAULT_RETRIES", "value": 2},
    ]});
    let invalid = post(d.http, "/api/set", Some(TOKEN), batch).await;
    assert_eq!(invalid.status, 400, "{}", invalid.body);
    let e = invalid.json()["error"].clone();
    assert_eq!(e["code"], "INVALID_ARGUMENT");
    assert_eq!(e["reason"], "INVALID_SETTINGS");
    let problems = e["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["kind"] == "invalid_value"
            && p["given_name"] == "PREFECT_TASK_DEFAULT_RETRIES"
            && p["setting"] == "PREFECT_TASKS_DEFAULT_RETRIES"
            && p["source"]["label"] == "profile 'default'"),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == "unknown_name"
                && p["suggestion"] == "PREFECT_TASK_DEFAULT_RETRIES"),
        "{problems:?}"
    );
    let flows = get(d.http, "/api/snapshot?names=PREFECT_FLOWS_DEFAULT_RETRIES")
        .await
        .json();
    assert_eq!(
        flows["settings"][0]["value"]["text"], "0",
        "nothing of the batch was written"
    );

    // Profiles and rollback need the token too.
    for (method, path, body) in [
        ("POST", "/api/profiles", Some(json!({"name": "staging"}))),
        ("POST", "/api/profiles/default/use", None),
        ("DELETE", "/api/profiles/staging", None),
        ("POST", "/api/rollback", Some(json!({"revision": 0}))),
        (
            "POST",
            "/api/unset",
            Some(json!({"names": ["PREFECT_API_KEY"]})),
        ),
    ] {
        let r = request(d.http, method, path, &[], body).await;
        assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
    }
    let bad_json = request(
        d.http,
        "POST",
        "/api/set",
        &[("authorization", &auth)],
        Some(json!({"nope": 1})),
    )
    .await;
    assert_eq!(bad_json.status, 400);
    assert_eq!(bad_json.json()["error"]["reason"], "BAD_REQUEST");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_size_limit_is_refused() {
    let d = start(None, cfgd::HttpLimits::default(), 2048).await;
    let big = "9".repeat(4096);
    let r = post(
        d.http,
        "/api/set",
        None,
        assignment("PREFECT_TASK_DEFAULT_RETRIES", &big),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.json()["error"]["reason"], "LIMIT");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_resumes_after_its_last_id_and_resyncs_when_it_cannot() {
    let d = start_default(None).await;
    let mut client = web::connect(d.grpc, None).await;
    let mut revisions = Vec::new();
    for v in ["1", "2", "3"] {
        let r = client
            .set(set("PREFECT_TASK_DEFAULT_RETRIES", v))
            .await
            .unwrap()
            .into_inner();
        revisions.push((r.epoch, r.revision));
    }
    let (epoch, first) = revisions[0];

    let mut fresh = Events::open(d.http, "/api/events", &[]).await;
    let status = fresh.next().await.unwrap();
    assert_eq!(status.event, "status", "the daemon's status comes first");
    let snap = fresh.next().await.unwrap();
    assert_eq!(snap.event, "snapshot");
    assert_eq!(
        snap.id.as_deref(),
        Some(format!("{epoch}:{}", revisions[2].1).as_str())
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&snap.data).unwrap()["reason"],
        "initial"
    );

    let last = format!("{epoch}:{first}");
    for (path, headers) in [
        ("/api/events", vec![("last-event-id", last.as_str())]),
        (&*format!("/api/events?after={last}"), vec![]),
    ] {
        let mut resumed = Events::open(d.http, path, &headers).await;
        let mut got = Vec::new();
        while got.len() < 2 {
            let e = resumed.next().await.unwrap();
            assert_ne!(e.event, "snapshot", "{path}: resumed, not resynced");
            if e.event == "change" {
                got.push(e.id.unwrap());
            }
        }
        assert_eq!(
            got,
            [
                format!("{epoch}:{}", revisions[1].1),
                format!("{epoch}:{}", revisions[2].1)
            ],
            "{path}: exactly the missed revisions, in order"
        );
    }
    let other_epoch = format!("{}:{first}", epoch.wrapping_add(1));
    let mut resynced = Events::open(
        d.http,
        "/api/events",
        &[("last-event-id", other_epoch.as_str())],
    )
    .await;
    let snap = resynced.next_named("snapshot").await.unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&snap.data).unwrap()["reason"],
        "epoch"
    );

    // A bad file makes no revision, and the stream still says so.
    std::fs::write(
        d.dir.path().join("config/bad.toml"),
        "[tasks]\ndefault_retries = \"x\"\n",
    )
    .unwrap();
    loop {
        let e = fresh.next_named("status").await.unwrap();
        let s: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        if let Some(f) = s["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| !f["error"].is_null())
        {
            assert!(f["path"].as_str().unwrap().ends_with("bad.toml"), "{f}");
            assert_eq!(f["line"], 2);
            break;
        }
    }
    d.stop().await;
}

/// Whether the server closed `stream` (EOF or a reset), waiting at most 10 s.
async fn closed(stream: &mut tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped() {
    let limits = cfgd::HttpLimits {
        max_connections: 1,
        ..Default::default()
    };
    let d = start(None, limits, 4 << 20).await;
    // An open event stream holds the only connection ...
    let events = Events::open(d.http, "/api/events", &[]).await;
    let mut second = tokio::net::TcpStream::connect(d.http).await.unwrap();
    assert!(
        closed(&mut second).await,
        "a connection beyond the cap is closed"
    );
    // ... and once it is gone, a new one is served.
    drop(events);
    web::until(
        "a connection is served again",
        Duration::from_secs(10),
        || async { (web::try_get(d.http, "/api/status").await == Some(200)).then_some(()) },
    )
    .await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_but_an_open_event_stream_is_not() {
    let limits = cfgd::HttpLimits {
        idle_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let d = start(None, limits, 4 << 20).await;
    let mut events = Events::open(d.http, "/api/events", &[]).await;
    assert_eq!(
        events.next_named("snapshot").await.unwrap().event,
        "snapshot"
    );
    let mut idle = tokio::net::TcpStream::connect(d.http).await.unwrap();
    assert!(
        closed(&mut idle).await,
        "a connection that sends nothing is closed"
    );
    // The idle timeout has passed for the stream too; it is still open.
    let mut client = web::connect(d.grpc, None).await;
    let r = client
        .set(set("PREFECT_TASK_DEFAULT_RETRIES", "4"))
        .await
        .unwrap()
        .into_inner();
    let change = events
        .next_named("change")
        .await
        .expect("the stream is still open");
    assert_eq!(change.id, Some(format!("{}:{}", r.epoch, r.revision)));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_event_streams_and_closes_the_listener() {
    let d = start_default(None).await;
    let mut events = Events::open(d.http, "/api/events", &[]).await;
    events.next_named("snapshot").await.unwrap();
    let http = d.http;
    let stopping = tokio::spawn(d.stop());
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while events.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ends on shutdown");
    stopping.await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(http).await.is_err(),
        "nothing listens once the daemon has stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_preview_refuses_what_a_set_would_refuse() {
    let d = start_default(None).await;
    let bad = get(d.http, "/api/retry-schedule?delays=1,x").await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let p = &bad.json()["error"]["problems"][0];
    assert_eq!(p["kind"], "invalid_value");
    assert_eq!(p["setting"], "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS");
    // Absent candidates are the values in force.
    let mut client = web::connect(d.grpc, None).await;
    client
        .set(set("PREFECT_TASK_DEFAULT_RETRIES", "2"))
        .await
        .unwrap();
    client
        .set(set(
            "PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS",
            "[1, 10, 100]",
        ))
        .await
        .unwrap();
    let s = get(d.http, "/api/retry-schedule?jitter=0.5").await.json();
    assert_eq!(s["retries"], 2);
    assert_eq!(s["delays_text"], "[1, 10, 100]");
    assert_eq!(s["waits"][1]["delay"], 10.0);
    assert_eq!(s["waits"][1]["high"], 15.0);
    let none = get(d.http, "/api/retry-schedule?jitter=").await.json();
    assert_eq!(none["jittered"], false);
    assert_eq!(none["waits"][1]["low"], 10.0);
    d.stop().await;
}
