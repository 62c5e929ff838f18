//! Closed-loop unary load: `concurrency` callers spread over `connections`
//! HTTP/2 connections, each sending its next request as soon as the last
//! one is answered, for a warm-up and then a bounded measured phase (a
//! duration and a request count, whichever comes first).
//!
//! The calls: cfgd `Get` and `Set` through the generated raw client (no SDK
//! in between, like for like with the others), etcd `Range` and `Put`
//! through `cfgd-etcd` (one client per connection, as the daemon holds one
//! per member), and the echo server's `Echo`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cfgd_proto::pb as cfgd_pb;
use cfgd_proto::pb::settings_client::SettingsClient;
use tonic::transport::Channel;

use crate::pb::echo::EchoRequest;
use crate::pb::echo::echo_client::EchoClient;
use crate::stats::Samples;

/// One kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// cfgd `Get` of [`crate::KEY`].
    CfgdGet,
    /// cfgd `Set` of [`crate::KEY`] to a new value each time (so each one
    /// makes a revision and is fsynced before its answer).
    CfgdSet,
    /// etcd `Range` of [`crate::ETCD_KEY`] (linearizable, etcd's default).
    EtcdRange,
    /// etcd `Put` of [`crate::ETCD_KEY`].
    EtcdPut,
    /// `Echo` answering `reply_bytes` bytes.
    Echo {
        /// Size of the answer's payload.
        reply_bytes: u32,
    },
}

/// How hard and how long to push.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// HTTP/2 connections they share (caller `i` uses connection `i % connections`).
    pub connections: usize,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// The measured phase ends after this long…
    pub duration: Duration,
    /// …or after this many measured requests, whichever comes first.
    pub max_requests: u64,
    /// The server's pid, to measure the CPU it uses in the measured phase.
    pub server_pid: Option<u32>,
}

/// What a measured phase gave.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Latency of each measured request that succeeded.
    pub latencies: Samples,
    /// Measured requests that failed.
    pub errors: u64,
    /// The first error, for the report.
    pub first_error: Option<String>,
    /// From the start of the measured phase to its last answer.
    pub elapsed: Duration,
    /// CPU time the server used in the measured phase, when its pid is known.
    pub server_cpu: Option<Duration>,
}

impl LoadResult {
    /// Server CPU time per successful request, in µs.
    pub fn server_cpu_us(&self) -> f64 {
        match self.server_cpu {
            Some(cpu) if !self.latencies.is_empty() => {
                crate::stats::us(cpu) / self.latencies.len() as f64
            }
            _ => f64::NAN,
        }
    }

    /// Successful requests per second in the measured phase.
    pub fn throughput(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.latencies.len() as f64 / s
        } else {
            f64::NAN
        }
    }
}

/// Writes need values that differ from the current one, across runs and
/// across load generator processes.
static NEXT_VALUE: AtomicU64 = AtomicU64::new(0);

fn next_value() -> u64 {
    if NEXT_VALUE.load(Ordering::Relaxed) == 0 {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() % 1_000_000 * 1_000);
        let _ = NEXT_VALUE.compare_exchange(0, seed.max(1), Ordering::Relaxed, Ordering::Relaxed);
    }
    NEXT_VALUE.fetch_add(1, Ordering::Relaxed)
}

/// One connection the callers share: a raw channel (cfgd, echo) or a
/// `cfgd-etcd` client (etcd).
#[derive(Debug)]
enum Connection {
    Grpc(Channel),
    Etcd(cfgd_etcd::Client),
}

/// A client bound to one call.
#[derive(Debug, Clone)]
enum Caller {
    Cfgd(SettingsClient<Channel>, Call),
    Etcd(cfgd_etcd::Client, Call),
    Echo(EchoClient<Channel>, u32),
}

impl Caller {
    /// A caller of `call` on `connection`.
    fn new(connection: &Connection, call: Call) -> Self {
        match (connection, call) {
            (Connection::Etcd(client), _) => Caller::Etcd(client.clone(), call),
            (Connection::Grpc(channel), Call::Echo { reply_bytes }) => {
                Caller::Echo(EchoClient::new(channel.clone()), reply_bytes)
            }
            (Connection::Grpc(channel), _) => {
                Caller::Cfgd(SettingsClient::new(channel.clone()), call)
            }
        }
    }

    async fn call(&mut self) -> Result<(), String> {
        match self {
            Caller::Cfgd(c, Call::CfgdGet) => {
                c.get(cfgd_pb::GetRequest {
                    name: crate::KEY.into(),
                    reveal_secrets: false,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            }
            Caller::Cfgd(c, _) => {
                c.set(set_request(next_value()))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Caller::Etcd(c, Call::EtcdRange) => {
                c.range(cfgd_etcd::Range::key(crate::ETCD_KEY))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Caller::Etcd(c, _) => {
                c.put(crate::ETCD_KEY, next_value().to_string())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Caller::Echo(c, reply_bytes) => {
                c.echo(EchoRequest {
                    name: crate::KEY.into(),
                    reply_bytes: *reply_bytes,
                })
                .await
                .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

/// A cfgd `Set` of [`crate::KEY`] to `value`.
pub fn set_request(value: u64) -> cfgd_pb::SetRequest {
    cfgd_pb::SetRequest {
        assignments: vec![cfgd_pb::Assignment {
            name: crate::KEY.into(),
            value: Some(cfgd_pb::assignment::Value::Raw(value.to_string())),
        }],
        expected_revision: None,
        ..Default::default()
    }
}

/// A fresh value for a write (never the one written before).
pub fn fresh_value() -> u64 {
    next_value()
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// Longest a single call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `call` against `endpoint` under `load`.
///
/// # Errors
/// When a connection cannot be made.
pub async fn run(endpoint: &str, call: Call, load: Load) -> anyhow::Result<LoadResult> {
    let mut connections = Vec::with_capacity(load.connections.max(1));
    for _ in 0..load.connections.max(1) {
        connections.push(match call {
            Call::EtcdRange | Call::EtcdPut => {
                let client = crate::etcd_client(endpoint, CALL_TIMEOUT)?;
                // Connected before the clock starts, like the others.
                client.range(cfgd_etcd::Range::key(crate::ETCD_KEY)).await?;
                Connection::Etcd(client)
            }
            _ => Connection::Grpc(crate::connect(endpoint).await?),
        });
    }
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let measured = Arc::new(AtomicU64::new(0));
    let limit_hit = Arc::new(tokio::sync::Notify::new());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..load.concurrency.max(1) {
        let mut caller = Caller::new(&connections[i % connections.len()], call);
        let (phase, measured, limit_hit) = (phase.clone(), measured.clone(), limit_hit.clone());
        tasks.spawn(async move {
            let mut out = LoadResult::default();
            loop {
                let p = phase.load(Ordering::Acquire);
                if p == STOP {
                    break;
                }
                let t = Instant::now();
                let r = tokio::time::timeout(CALL_TIMEOUT, caller.call()).await;
                if p != MEASURE {
                    continue;
                }
                match r {
                    Ok(Ok(())) => out.latencies.push(t.elapsed()),
                    Ok(Err(e)) => {
                        out.errors += 1;
                        out.first_error.get_or_insert(e);
                    }
                    Err(_) => {
                        out.errors += 1;
                        out.first_error
                            .get_or_insert_with(|| format!("no answer within {CALL_TIMEOUT:?}"));
                    }
                }
                if measured.fetch_add(1, Ordering::Relaxed) + 1 == load.max_requests {
                    phase.store(STOP, Ordering::Release);
                    limit_hit.notify_one();
                }
            }
            out
        });
    }
    tokio::time::sleep(load.warmup).await;
    let start = Instant::now();
    let cpu = crate::procs::CpuMeter::start(load.server_pid);
    phase.store(MEASURE, Ordering::Release);
    tokio::select! {
        () = tokio::time::sleep(load.duration) => {}
        () = limit_hit.notified() => {}
    }
    phase.store(STOP, Ordering::Release);
    let server_cpu = cpu.and_then(crate::procs::CpuMeter::stop);
    let mut total = LoadResult::default();
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("a load task does not panic");
        total.latencies.extend(r.latencies);
        total.errors += r.errors;
        if total.first_error.is_none() {
            total.first_error = r.first_error;
        }
    }
    // The callers still in flight at the stop were measured too.
    total.elapsed = start.elapsed();
    total.server_cpu = server_cpu;
    Ok(total)
}

/// The encoded size of cfgd's answer to a `Get` of [`crate::KEY`], so the
/// echo server can answer with as many bytes.
///
/// # Errors
/// When cfgd cannot be reached.
pub async fn cfgd_get_size(endpoint: &str) -> anyhow::Result<usize> {
    use prost::Message;
    let mut c = SettingsClient::new(crate::connect(endpoint).await?);
    let r = c
        .get(cfgd_pb::GetRequest {
            name: crate::KEY.into(),
            reveal_secrets: false,
            ..Default::default()
        })
        .await?;
    Ok(r.get_ref().encoded_len())
}

/// Puts [`crate::ETCD_KEY`] so `Range` finds a value; returns the encoded
/// size of etcd's answer to a `Range` of it.
///
/// # Errors
/// When etcd cannot be reached.
pub async fn etcd_prepare(endpoint: &str) -> anyhow::Result<usize> {
    use prost::Message;
    let c = crate::etcd_client(endpoint, CALL_TIMEOUT)?;
    c.put(crate::ETCD_KEY, "0").await?;
    let r = c.range(cfgd_etcd::Range::key(crate::ETCD_KEY)).await?;
    Ok(r.encoded_len())
}
