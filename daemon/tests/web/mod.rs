//! For the console's tests: the real `cfgd` binary (the harness's
//! [`Proc`]) with its console on a free loopback port, a small HTTP
//! client, and a headless chromium driven over WebDriver (chromedriver,
//! through fantoccini).

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cfgd_proto::pb;
use cfgd_proto::pb::settings_client::SettingsClient;
use cfgd_tests::proc::Proc;
use http_body_util::BodyExt;
use serde_json::{Value as Json, json};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A gRPC client that sends a token with every call.
pub type Client = SettingsClient<InterceptedService<Channel, Token>>;

/// Puts `authorization: Bearer <token>` on every call, when there is one.
#[derive(Debug, Clone)]
pub struct Token(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Token {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(h) = &self.0 {
            r.metadata_mut().insert("authorization", h.clone());
        }
        Ok(r)
    }
}

/// A running daemon (the harness's [`Proc`]), with its gRPC endpoint and
/// console address.
#[derive(Debug)]
pub struct Daemon {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    proc: Proc,
    args: Vec<String>,
}

/// `--config-dir ROOT/config --state-dir ROOT/state`, and a token if given.
pub fn args(root: &Path, token: Option<&str>) -> Vec<String> {
    let mut a = vec![
        "--config-dir".into(),
        root.join("config").display().to_string(),
        "--state-dir".into(),
        root.join("state").display().to_string(),
    ];
    if let Some(t) = token {
        let file = root.join("token");
        std::fs::write(&file, t).expect("write the token file");
        a.extend(["--token-file".into(), file.display().to_string()]);
    }
    a
}

impl Daemon {
    /// Starts the binary with `args` on free ports.
    pub fn start(root: &Path, args: Vec<String>) -> Daemon {
        Self::start_at(root, args, "127.0.0.1:0", "127.0.0.1:0")
    }

    /// Starts the binary with `args`, gRPC on `grpc` and the console on
    /// `http`, and waits for the two lines that say where it listens.
    pub fn start_at(root: &Path, args: Vec<String>, grpc: &str, http: &str) -> Daemon {
        let os: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        let mut proc = Proc::start_at(root, &os, grpc, |cmd| {
            cmd.env_remove("CFGD_HTTP")
                .env_remove("PREFECT_API_KEY")
                .env("CFGD_LOG", "info")
                .args(["--http", http]);
        });
        let grpc: SocketAddr = proc.listen.parse().expect("an address");
        let http = proc.line("cfgd console on http://");
        let http: SocketAddr = http.trim_end_matches('/').parse().expect("an address");
        Daemon {
            grpc,
            http,
            proc,
            args,
        }
    }

    /// The same daemon again, on the same dirs and ports, once this one has
    /// stopped.
    pub fn restart(root: &Path, stopped: &Daemon) -> Daemon {
        Self::start_at(
            root,
            stopped.args.clone(),
            &stopped.grpc.to_string(),
            &stopped.http.to_string(),
        )
    }

    /// A gRPC client sending `token` (if any).
    pub async fn client(&self, token: Option<&str>) -> Client {
        connect(self.grpc, token).await
    }

    /// SIGTERM, and wait until it has exited (successfully).
    pub fn terminate(&mut self) {
        let status = self.proc.terminate();
        assert!(
            status.success(),
            "cfgd exited with {status}; stderr:\n{}",
            self.stderr()
        );
    }

    /// What it logged so far.
    pub fn stderr(&self) -> String {
        self.proc.stderr()
    }
}

/// A gRPC client of the daemon at `grpc`, sending `token` (if any). The
/// daemon prints where it listens only once it serves, so one attempt is
/// enough.
pub async fn connect(grpc: SocketAddr, token: Option<&str>) -> Client {
    let channel = Channel::from_shared(format!("http://{grpc}"))
        .expect("an endpoint")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cfgd at {grpc} does not answer: {e}"));
    let header = token.map(|t| format!("Bearer {t}").parse().expect("ascii"));
    SettingsClient::with_interceptor(channel, Token(header))
}

/// A one-assignment `Set` in the raw-string form.
pub fn set(name: &str, value: &str) -> pb::SetRequest {
    pb::SetRequest {
        assignments: vec![pb::Assignment {
            name: name.into(),
            value: Some(pb::assignment::Value::Raw(value.into())),
        }],
        ..Default::default()
    }
}

/// An answer: status, headers and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request to the console at `addr`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Json>,
) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the console");
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header("host", addr.to_string());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    let res = send
        .send_request(
            req.body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
                .expect("a request"),
        )
        .await
        .expect("an answer");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// The status of `GET path`, or `None` when the connection fails or is
/// closed without an answer.
pub async fn try_get(addr: SocketAddr, path: &str) -> Option<u16> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .ok()?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .uri(path)
        .header("host", addr.to_string())
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .ok()?;
    let answer = tokio::time::timeout(Duration::from_secs(5), send.send_request(req)).await;
    Some(answer.ok()?.ok()?.status().as_u16())
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, &[], None).await
}

/// `POST path` with a JSON body and perhaps a token.
pub async fn post(addr: SocketAddr, path: &str, token: Option<&str>, body: Json) -> Answer {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    request(addr, "POST", path, &headers, Some(body)).await
}

/// Waits (polling, at most `limit`) until `f` gives `Some`.
pub async fn until<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free loopback port (bound and released; for chromedriver, which
/// cannot report one it picked).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `name` on PATH, or the test fails naming the script that installs it.
pub fn tool(name: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: the console's browser test needs Debian's {package} (run .ci/deps.sh, which installs chromium and chromium-driver)"
            )
        })
}

/// chromedriver on a free port, and a headless chromium session on it
/// that records the network (Chrome's performance log).
pub struct Browser {
    pub client: fantoccini::Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts chromedriver and a session.
    pub async fn start() -> Browser {
        let chromium = tool("chromium", "chromium");
        let chromedriver = tool("chromedriver", "chromium-driver");
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let profile = tempfile::tempdir().expect("a profile dir");
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1400,1900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
            "goog:loggingPrefs": {"performance": "ALL", "browser": "ALL"},
        });
        let caps: fantoccini::wd::Capabilities = caps.as_object().expect("an object").clone();
        let url = format!("http://127.0.0.1:{port}");
        let client = until("chromedriver answers", Duration::from_secs(30), || async {
            fantoccini::ClientBuilder::new(
                    hyper_util::client::legacy::connect::HttpConnector::new(),
                )
                .capabilities(caps.clone())
                .connect(&url)
                .await
                .ok()
        })
        .await;
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// The value of a JavaScript expression in the page.
    pub async fn eval(&self, expr: &str) -> Json {
        self.client
            .execute(&format!("return ({expr});"), Vec::new())
            .await
            .unwrap_or_else(|e| panic!("cannot evaluate {expr}: {e}"))
    }

    /// Waits until a JavaScript expression is `true` (exactly: a string or
    /// an element does not count, so a slip of precedence cannot pass).
    pub async fn wait_for(&self, what: &str, expr: &str) {
        until(what, Duration::from_secs(20), || async {
            (self.eval(&format!("({expr}) === true")).await == Json::Bool(true)).then_some(())
        })
        .await;
    }

    /// Sets an input's value as typing would (and fires its events).
    pub async fn type_into(&self, id: &str, text: &str) {
        self.client
            .execute(
                "const e = document.getElementById(arguments[0]); e.value = arguments[1]; e.dispatchEvent(new Event('input', {bubbles: true}));",
                vec![json!(id), json!(text)],
            )
            .await
            .expect("type into an input");
    }

    /// Clicks the element with this id.
    pub async fn click(&self, id: &str) {
        self.client
            .find(fantoccini::Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("no #{id}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click #{id}: {e}"));
    }

    /// Everything the page received over the network so far: each response
    /// body (as Chrome kept it) and each server-sent event's data, with
    /// their URLs.
    pub async fn received(&self) -> Vec<(String, String)> {
        let log = self
            .client
            .issue_cmd(Log("performance"))
            .await
            .expect("the performance log");
        let mut out = Vec::new();
        let mut urls = std::collections::HashMap::new();
        for entry in log.as_array().into_iter().flatten() {
            let Some(message) = entry["message"].as_str() else {
                continue;
            };
            let m: Json = serde_json::from_str(message).unwrap_or_default();
            let (method, params) = (&m["message"]["method"], &m["message"]["params"]);
            match method.as_str() {
                Some("Network.responseReceived") => {
                    urls.insert(
                        params["requestId"].as_str().unwrap_or_default().to_owned(),
                        params["response"]["url"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
                Some("Network.eventSourceMessageReceived") => {
                    out.push((
                        format!("event {}", params["eventName"].as_str().unwrap_or_default()),
                        params["data"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
                _ => {}
            }
        }
        for (id, url) in urls {
            // A stream still open has no body to give (its events are above).
            if let Ok(body) = self
                .client
                .issue_cmd(Cdp {
                    cmd: "Network.getResponseBody",
                    params: json!({"requestId": id}),
                })
                .await
            {
                out.push((url, body["body"].as_str().unwrap_or_default().to_owned()));
            }
        }
        out
    }

    /// What the page's scripts reported as errors (uncaught exceptions,
    /// failed loads) since the last call.
    pub async fn errors(&self) -> Vec<String> {
        let log = self
            .client
            .issue_cmd(Log("browser"))
            .await
            .expect("the browser log");
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Ends the session and chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// chromedriver's `se/log`: one of Chrome's logs, drained.
#[derive(Debug)]
struct Log(&'static str);

impl fantoccini::wd::WebDriverCompatibleCommand for Log {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (hyper::Method, Option<String>) {
        (
            hyper::Method::POST,
            Some(json!({"type": self.0}).to_string()),
        )
    }
}

/// A Chrome DevTools command through chromedriver.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Json,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (hyper::Method, Option<String>) {
        (
            hyper::Method::POST,
            Some(json!({"cmd": self.cmd, "params": self.params}).to_string()),
        )
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// An open `GET /api/events` stream.
pub struct Events {
    body: hyper::body::Incoming,
    buffer: String,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    /// Opens the console's event stream with these request headers.
    pub async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Events {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("HTTP handshake");
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .uri(path)
            .header("host", addr.to_string())
            .header("accept", "text/event-stream");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = send
            .send_request(
                req.body(http_body_util::Empty::<hyper::body::Bytes>::new())
                    .expect("a request"),
            )
            .await
            .expect("an answer");
        assert_eq!(res.status(), 200, "the event stream opens");
        Events {
            body: res.into_body(),
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut e = Event {
                    event: "message".into(),
                    id: None,
                    data: String::new(),
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        e.event = v.trim().to_owned();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("id:") {
                        e.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if !e.data.is_empty() {
                            e.data.push('\n');
                        }
                        e.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        any = true;
                    }
                }
                if any {
                    return Some(e);
                }
                continue;
            }
            let frame = self.body.frame().await?.ok()?;
            if let Some(data) = frame.data_ref() {
                self.buffer.push_str(&String::from_utf8_lossy(data));
            }
        }
    }

    /// The next event named `name`, skipping others.
    pub async fn next_named(&mut self, name: &str) -> Option<Event> {
        loop {
            let e = self.next().await?;
            if e.event == name {
                return Some(e);
            }
        }
    }
}
