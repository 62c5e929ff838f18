//! Change fan-out: N watchers on one key, then writes one at a time; for
//! each write, the time from issuing it to the *last* watcher receiving it.
//!
//! Every watcher is its own stream (a cfgd `Watch` filtered on the key, a
//! `cfgd-etcd` watch: one etcd `Watch` stream carrying one watch on the
//! key), and streams share connections, [`Watchers::per_connection`] to
//! each. Arrivals are stamped
//! by the watcher tasks themselves, so the time the writer takes to notice
//! the last one is not counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cfgd_proto::pb as cfgd_pb;
use cfgd_proto::pb::settings_client::SettingsClient;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::stats::Samples;

/// Which server the watchers watch, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum System {
    /// cfgd, one `Watch` stream per watcher.
    Cfgd,
    /// cfgd through the SDK: one `cfgd_sdk::Settings` per watcher (what a
    /// service holds), each on its own connection, watching every setting
    /// and acknowledging what it applied, as services do.
    Sdk,
    /// etcd.
    Etcd,
}

/// How long all watchers together may take to open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the last watcher may take to get one write.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Shared {
    base: Instant,
    ready: AtomicU64,
    failed: AtomicU64,
    opened: Notify,
    arrived: AtomicU64,
    last_ns: AtomicU64,
    target: AtomicU64,
    /// The value the write in flight sets: only events carrying it count
    /// (a late event of an earlier measurement on the same key does not).
    expected: AtomicU64,
    all_arrived: Notify,
}

impl Shared {
    fn ready(&self, total: u64, ok: bool) {
        let counter = if ok { &self.ready } else { &self.failed };
        counter.fetch_add(1, Ordering::AcqRel);
        if self.ready.load(Ordering::Acquire) + self.failed.load(Ordering::Acquire) == total {
            self.opened.notify_one();
        }
    }

    fn arrived(&self, value: Option<u64>) {
        if value != Some(self.expected.load(Ordering::Acquire)) {
            return;
        }
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_ns.fetch_max(now, Ordering::AcqRel);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.target.load(Ordering::Acquire) {
            self.all_arrived.notify_one();
        }
    }
}

/// N open watchers.
#[derive(Debug)]
pub struct Watchers {
    system: System,
    n: usize,
    /// Streams per HTTP/2 connection.
    pub per_connection: usize,
    /// Connections used.
    pub connections: usize,
    /// How long opening all of them took.
    pub open_time: Duration,
    shared: Arc<Shared>,
    tasks: JoinSet<()>,
    /// Tells etcd watchers to cancel their watch and end their stream.
    closing: tokio::sync::watch::Sender<bool>,
    writes: u64,
}

impl Watchers {
    /// Opens `n` watchers at `endpoint`, watcher `i` on the key `key(i)`
    /// (a cfgd setting name or an etcd key), `per_connection` streams to a
    /// connection, and waits until every one is live.
    ///
    /// # Errors
    /// A connection that cannot be made, or watchers that fail or are not
    /// live in time.
    pub async fn open(
        system: System,
        endpoint: &str,
        n: usize,
        per_connection: usize,
        key: &(dyn Fn(usize) -> String + Sync),
    ) -> anyhow::Result<Self> {
        Self::open_spread(system, &[endpoint], n, per_connection, key).await
    }

    /// [`Watchers::open`] over several servers: connection `c` goes to
    /// `endpoints[c % len]`, so the watchers spread evenly (a fleet of
    /// daemons, or the members of an etcd cluster).
    ///
    /// # Errors
    /// As [`Watchers::open`].
    pub async fn open_spread(
        system: System,
        endpoints: &[&str],
        n: usize,
        per_connection: usize,
        key: &(dyn Fn(usize) -> String + Sync),
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!endpoints.is_empty(), "no endpoint to watch");
        let started = Instant::now();
        let shared = Arc::new(Shared {
            base: Instant::now(),
            ready: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            opened: Notify::new(),
            arrived: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            expected: AtomicU64::new(u64::MAX),
            all_arrived: Notify::new(),
        });
        let mut tasks = JoinSet::new();
        let (closing, closed) = tokio::sync::watch::channel(false);
        // Fewer streams per connection when spread, so every server gets
        // some (N = 100 over three daemons: 34, 33, 33). A `Settings`
        // makes its own connection.
        let per_connection = match system {
            System::Sdk => 1,
            _ => per_connection.min(n.div_ceil(endpoints.len())).max(1),
        };
        let connections = n.div_ceil(per_connection);
        for c in 0..connections {
            let endpoint = endpoints[c % endpoints.len()];
            let watchers = c * per_connection..n.min((c + 1) * per_connection);
            match system {
                System::Cfgd => {
                    let channel = crate::connect(endpoint).await?;
                    for i in watchers {
                        tasks.spawn(cfgd_watcher(
                            channel.clone(),
                            shared.clone(),
                            key(i),
                            n as u64,
                        ));
                    }
                }
                System::Sdk => {
                    for i in watchers {
                        let options = cfgd_sdk::Options {
                            service: format!("bench-{i}"),
                            ..cfgd_sdk::Options::isolated(endpoint)
                        };
                        let settings = cfgd_sdk::Settings::connect(options);
                        tasks.spawn(sdk_watcher(settings, shared.clone(), key(i), n as u64));
                    }
                }
                System::Etcd => {
                    let client = crate::etcd_client(endpoint, ARRIVAL_TIMEOUT)?;
                    for i in watchers {
                        let (sh, k) = (shared.clone(), key(i));
                        tasks.spawn(etcd_watcher(
                            client.clone(),
                            sh,
                            k,
                            n as u64,
                            closed.clone(),
                        ));
                    }
                }
            }
        }
        tokio::time::timeout(OPEN_TIMEOUT, shared.opened.notified())
            .await
            .with_context(|| {
                format!("{n} {system:?} watchers did not open within {OPEN_TIMEOUT:?}")
            })?;
        let failed = shared.failed.load(Ordering::Acquire);
        if failed > 0 {
            bail!("{failed} of {n} {system:?} watchers failed to open");
        }
        Ok(Self {
            system,
            n,
            per_connection,
            connections,
            open_time: started.elapsed(),
            shared,
            tasks,
            closing,
            writes: 0,
        })
    }

    /// Makes `writes` writes through `writer`, one at a time with `pause`
    /// between them, and returns for each the time from issuing it to the
    /// last watcher receiving it, and the CPU time the server (`server_pid`)
    /// used meanwhile.
    ///
    /// # Errors
    /// A write that fails, or watchers that do not all receive it in time.
    pub async fn measure(
        &mut self,
        writer: &mut Writer,
        writes: usize,
        pause: Duration,
        server_pid: Option<u32>,
    ) -> anyhow::Result<(Samples, Option<Duration>)> {
        let mut last = Samples::new();
        let cpu = crate::procs::CpuMeter::start(server_pid);
        for _ in 0..writes {
            self.writes += 1;
            self.shared.last_ns.store(0, Ordering::Release);
            self.shared
                .target
                .store(self.writes * self.n as u64, Ordering::Release);
            let value = crate::unary::fresh_value();
            self.shared.expected.store(value, Ordering::Release);
            let issued = self.shared.base.elapsed();
            writer.write(value).await?;
            tokio::time::timeout(ARRIVAL_TIMEOUT, self.shared.all_arrived.notified())
                .await
                .with_context(|| {
                    let got = self.shared.arrived.load(Ordering::Acquire)
                        - (self.writes - 1) * self.n as u64;
                    format!(
                        "only {got} of {} {:?} watchers got a write within {ARRIVAL_TIMEOUT:?}",
                        self.n, self.system
                    )
                })?;
            let last_ns = self.shared.last_ns.load(Ordering::Acquire);
            last.push(Duration::from_nanos(last_ns).saturating_sub(issued));
            tokio::time::sleep(pause).await;
        }
        Ok((last, cpu.and_then(crate::procs::CpuMeter::stop)))
    }

    /// Closes every stream. An etcd watcher cancels its watch and ends its
    /// side of the stream first, as etcd's own client does (etcd 3.4 may
    /// keep the watchers of a stream that is only reset, and every later
    /// write to their key then pays for them); a cfgd watch is dropped.
    pub async fn close(mut self) {
        let _ = self.closing.send(true);
        if self.system == System::Etcd {
            let all_done = async { while self.tasks.join_next().await.is_some() {} };
            let _ = tokio::time::timeout(Duration::from_secs(10), all_done).await;
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn cfgd_watcher(channel: Channel, shared: Arc<Shared>, key: String, total: u64) {
    let mut client = SettingsClient::new(channel);
    let request = cfgd_pb::WatchRequest {
        names: vec![key],
        ..Default::default()
    };
    let mut stream = match client.watch(request).await {
        Ok(r) => r.into_inner(),
        Err(_) => return shared.ready(total, false),
    };
    // The first event is the initial resync: the watch is live.
    match stream.message().await {
        Ok(Some(_)) => shared.ready(total, true),
        _ => return shared.ready(total, false),
    }
    while let Ok(Some(event)) = stream.message().await {
        if let Some(cfgd_pb::watch_response::Event::Change(change)) = event.event {
            let value = change.changes.iter().find_map(|k| {
                match k.new_value.as_ref().and_then(|v| v.kind.as_ref()) {
                    Some(cfgd_pb::value::Kind::Integer(n)) => u64::try_from(*n).ok(),
                    _ => None,
                }
            });
            shared.arrived(value);
        }
    }
}

async fn sdk_watcher(settings: cfgd_sdk::Settings, shared: Arc<Shared>, key: String, total: u64) {
    // Live once it holds the daemon's values (not its local view).
    let live = async {
        while settings.view().revision().is_none() {
            settings.changed().await;
        }
    };
    if tokio::time::timeout(OPEN_TIMEOUT, live).await.is_err() {
        return shared.ready(total, false);
    }
    shared.ready(total, true);
    loop {
        let view = settings.changed_key(&key).await;
        let value = match view.get(&key).and_then(|c| c.value.as_ref()) {
            Some(cfgd_sdk::Value::Integer(n)) => u64::try_from(*n).ok(),
            _ => None,
        };
        shared.arrived(value);
    }
}

async fn etcd_watcher(
    client: cfgd_etcd::Client,
    shared: Arc<Shared>,
    key: String,
    total: u64,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    // Dropping the watch (on closing) cancels it on etcd, then ends its
    // stream, as etcd's own client does.
    let mut watch = client.watch(key.into_bytes(), Vec::new(), 0);
    tokio::select! {
        () = watch.created() => shared.ready(total, true),
        () = tokio::time::sleep(OPEN_TIMEOUT) => return shared.ready(total, false),
    }
    loop {
        let item = tokio::select! {
            _ = closing.wait_for(|c| *c) => return,
            item = watch.next() => item,
        };
        let Some(Ok(cfgd_etcd::WatchEvent::Events { events, .. })) = item else {
            return;
        };
        for event in &events {
            let value = event
                .kv
                .as_ref()
                .and_then(|kv| std::str::from_utf8(&kv.value).ok())
                .and_then(|v| v.parse().ok());
            shared.arrived(value);
        }
    }
}

/// Makes the writes the watchers wait for.
#[derive(Debug)]
pub enum Writer {
    /// cfgd `Set`.
    Cfgd(SettingsClient<Channel>),
    /// etcd `Put`, through `cfgd-etcd`.
    Etcd(cfgd_etcd::Client),
}

impl Writer {
    /// A writer for `system` at `endpoint`, on its own connection.
    ///
    /// # Errors
    /// When the connection cannot be made.
    pub async fn connect(system: System, endpoint: &str) -> anyhow::Result<Self> {
        Ok(match system {
            System::Cfgd | System::Sdk => {
                Writer::Cfgd(SettingsClient::new(crate::connect(endpoint).await?))
            }
            System::Etcd => Writer::Etcd(crate::etcd_client(endpoint, ARRIVAL_TIMEOUT)?),
        })
    }

    async fn write(&mut self, value: u64) -> anyhow::Result<()> {
        match self {
            Writer::Cfgd(c) => {
                c.set(crate::unary::set_request(value)).await?;
            }
            Writer::Etcd(c) => {
                c.put(crate::ETCD_KEY, value.to_string()).await?;
            }
        }
        Ok(())
    }
}

/// Waits until cfgd counts no open watch stream (after [`Watchers::close`]),
/// so the next measurement starts clean. Gives up after `limit`.
///
/// # Errors
/// When cfgd cannot be reached.
pub async fn cfgd_wait_no_watchers(endpoint: &str, limit: Duration) -> anyhow::Result<u64> {
    let mut c = SettingsClient::new(crate::connect(endpoint).await?);
    let deadline = Instant::now() + limit;
    loop {
        let n = c
            .status(cfgd_pb::StatusRequest {})
            .await?
            .get_ref()
            .watchers;
        if n == 0 || Instant::now() > deadline {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// etcd's count of open watchers (`etcd_debugging_mvcc_watcher_total` on
/// its `/metrics`), or `None` when it cannot be read.
pub async fn etcd_watcher_count(endpoint: &str) -> Option<u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = endpoint.strip_prefix("http://")?.trim_end_matches('/');
    let mut conn = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    conn.write_all(request.as_bytes()).await.ok()?;
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_string(&mut body))
        .await
        .ok()?
        .ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix("etcd_debugging_mvcc_watcher_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Waits until etcd counts no watcher (after [`Watchers::close`]); what
/// it still counts after `limit`.
pub async fn etcd_wait_no_watchers(endpoint: &str, limit: Duration) -> Option<u64> {
    let deadline = Instant::now() + limit;
    loop {
        let n = etcd_watcher_count(endpoint).await?;
        if n == 0 || Instant::now() > deadline {
            return Some(n);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
