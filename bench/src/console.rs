//! What the web console puts on the daemon while someone looks at it: one
//! open event stream (`/api/events`, read as it comes) and a Prometheus
//! scrape of `/metrics` every second — the load whose cost on the gRPC
//! read path the `console` section measures.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// An open console: the event stream and the scraper, until [`close`](Self::close).
#[derive(Debug)]
pub struct Console {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    /// Bytes the event stream delivered.
    pub event_bytes: Arc<AtomicU64>,
    /// `/metrics` answers received.
    pub scrapes: Arc<AtomicU64>,
}

/// What the console did while it was open.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// Bytes of events received.
    pub event_bytes: u64,
    /// Scrapes answered.
    pub scrapes: u64,
}

async fn connect(
    addr: SocketAddr,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot reach the console at {addr}"))?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // Ends when the connection closes (the request side dropped).
    tokio::spawn(conn);
    Ok(send)
}

fn get(addr: SocketAddr, path: &str) -> anyhow::Result<hyper::Request<Empty<Bytes>>> {
    Ok(hyper::Request::builder()
        .uri(path)
        .header("host", addr.to_string())
        .body(Empty::new())?)
}

impl Console {
    /// Opens the event stream (returning once its first event arrived) and
    /// starts scraping `/metrics` every `scrape_every`.
    ///
    /// # Errors
    /// When the console does not answer or the stream does not open.
    pub async fn open(addr: SocketAddr, scrape_every: Duration) -> anyhow::Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let event_bytes = Arc::new(AtomicU64::new(0));
        let scrapes = Arc::new(AtomicU64::new(0));
        let mut send = connect(addr).await?;
        let res = send.send_request(get(addr, "/api/events")?).await?;
        if !res.status().is_success() {
            bail!("the console's event stream answered {}", res.status());
        }
        let mut body = res.into_body();
        let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .context("no event within 10 s")?
            .context("the event stream ended at once")??;
        event_bytes.fetch_add(
            first.data_ref().map_or(0, |d| d.len() as u64),
            Ordering::Relaxed,
        );
        let (bytes, mut stop_events) = (event_bytes.clone(), stopped.clone());
        // Ends when `close` is called or the daemon ends the stream.
        let events = tokio::spawn(async move {
            let _send = send;
            loop {
                tokio::select! {
                    _ = stop_events.changed() => return Ok(()),
                    frame = body.frame() => match frame {
                        Some(Ok(f)) => {
                            bytes.fetch_add(f.data_ref().map_or(0, |d| d.len() as u64), Ordering::Relaxed);
                        }
                        Some(Err(e)) => return Err(e.into()),
                        None => bail!("the daemon ended the event stream"),
                    },
                }
            }
        });
        let (count, mut stop_scrapes) = (scrapes.clone(), stopped);
        // Ends when `close` is called; a scrape that fails ends it with the error.
        let scraper = tokio::spawn(async move {
            let mut send = connect(addr).await?;
            let mut tick = tokio::time::interval(scrape_every);
            loop {
                tokio::select! {
                    _ = stop_scrapes.changed() => return Ok(()),
                    _ = tick.tick() => {
                        let res = send.send_request(get(addr, "/metrics")?).await?;
                        if !res.status().is_success() {
                            bail!("/metrics answered {}", res.status());
                        }
                        res.into_body().collect().await?;
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        Ok(Self {
            stop,
            tasks: vec![events, scraper],
            event_bytes,
            scrapes,
        })
    }

    /// Closes the stream and stops scraping.
    ///
    /// # Errors
    /// When the stream or a scrape failed while open.
    pub async fn close(self) -> anyhow::Result<Seen> {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.await.context("a console task panicked")??;
        }
        Ok(Seen {
            event_bytes: self.event_bytes.load(Ordering::Relaxed),
            scrapes: self.scrapes.load(Ordering::Relaxed),
        })
    }
}
