//! One connection: the accept stream that admits it, the IO object that
//! holds its permit and closes it when idle, and the layer that counts its
//! open streams.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};
use tonic::codegen::http;

use super::Connections;
use super::coalesce::Coalesce;
use crate::authority::FixAuthority;

/// How long accepting pauses after an error such as too many open files.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// A listener that can be polled for its next connection.
pub(crate) trait PollAccept: Unpin {
    /// The connection's IO.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection and who it is from.
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Io, String)>>;
}

impl PollAccept for TcpListener {
    type Io = TcpStream;
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, String)>> {
        let (stream, peer) = ready!(TcpListener::poll_accept(self, cx))?;
        // Small request/response pairs: Nagle would add ~40 ms.
        stream.set_nodelay(true)?;
        Poll::Ready(Ok((stream, peer.to_string())))
    }
}

/// A Unix socket listener; on plain HTTP/2 its connections get a valid
/// `:authority` from grpc-core clients ([`FixAuthority`]).
pub(crate) struct UnixAccept {
    pub(crate) listener: UnixListener,
    pub(crate) plain: bool,
}

impl PollAccept for UnixAccept {
    type Io = FixAuthority<UnixStream>;
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Io, String)>> {
        let (stream, _) = ready!(self.listener.poll_accept(cx))?;
        Poll::Ready(Ok((
            FixAuthority::new(stream, self.plain),
            "a local process (unix socket)".to_owned(),
        )))
    }
}

/// The connections a listener accepts, as tonic's server takes them.
/// `ready` runs when it is first polled: the server is accepting.
pub(crate) struct Incoming<L> {
    listener: L,
    connections: Arc<Connections>,
    ready: Option<Box<dyn FnOnce() + Send>>,
    pause: Option<Pin<Box<Sleep>>>,
    errors_logged: Option<Instant>,
}

impl<L> std::fmt::Debug for Incoming<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming").finish_non_exhaustive()
    }
}

impl<L: PollAccept> Incoming<L> {
    pub(crate) fn new(
        listener: L,
        connections: Arc<Connections>,
        ready: impl FnOnce() + Send + 'static,
    ) -> Self {
        Self {
            listener,
            connections,
            ready: Some(Box::new(ready)),
            pause: None,
            errors_logged: None,
        }
    }
}

impl<L: PollAccept> futures_util::Stream for Incoming<L> {
    type Item = io::Result<Conn<L::Io>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(ready) = this.ready.take() {
            ready();
        }
        loop {
            if let Some(pause) = this.pause.as_mut() {
                ready!(pause.as_mut().poll(cx));
                this.pause = None;
            }
            match ready!(this.listener.poll_accept(cx)) {
                Ok((io, peer)) => {
                    let Some(permit) = this.connections.admit(&peer) else {
                        // Closed at once: the client sees it, instead of
                        // waiting in the accept queue.
                        continue;
                    };
                    return Poll::Ready(Some(Ok(Conn::new(
                        io,
                        peer,
                        permit,
                        this.connections.clone(),
                    ))));
                }
                Err(e) => {
                    let now = Instant::now();
                    if this
                        .errors_logged
                        .is_none_or(|at| now - at >= super::REPORT_EVERY)
                    {
                        this.errors_logged = Some(now);
                        tracing::error!(error = %e, "cannot accept a connection; pausing briefly (out of file descriptors? see --max-connections)");
                    }
                    this.pause = Some(Box::pin(tokio::time::sleep(ACCEPT_PAUSE)));
                }
            }
        }
    }
}

/// What a connection shares with the streams on it.
#[derive(Debug)]
pub(crate) struct ConnState {
    peer: String,
    streams: AtomicUsize,
    /// Since when no stream has been open.
    idle_since: Mutex<Instant>,
    /// The connection's reader, woken when the last stream ends so that it
    /// starts the idle timer.
    reader: AtomicWaker,
    max_streams: usize,
    limit_logged: Mutex<Option<Instant>>,
}

/// Request extension: the connection a request arrived on.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo(Arc<ConnState>);

/// An open stream; dropping it (the response is done) ends it.
#[derive(Debug)]
struct StreamGuard(Arc<ConnState>);

impl ConnState {
    fn open_stream(self: &Arc<Self>) -> StreamGuard {
        let n = self.streams.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= self.max_streams {
            let mut logged = self.limit_logged.lock().expect("no panic holds it");
            let now = Instant::now();
            if logged.is_none_or(|at| now - at >= super::REPORT_EVERY) {
                *logged = Some(now);
                tracing::warn!(peer = %self.peer, limit = self.max_streams, "a connection reached its stream limit; its further streams are refused until one ends (--max-streams-per-connection)");
            }
        }
        StreamGuard(self.clone())
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self.0.streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.0.idle_since.lock().expect("no panic holds it") = Instant::now();
            self.0.reader.wake();
        }
    }
}

/// An accepted connection's IO: holds its permit, ends the connection (end
/// of file to the HTTP/2 server) once it has had no stream open for the
/// idle timeout, and writes in batches ([`Coalesce`]).
pub(crate) struct Conn<S> {
    io: Coalesce<S>,
    state: Arc<ConnState>,
    connections: Arc<Connections>,
    idle: Option<Pin<Box<Sleep>>>,
    last_read: Instant,
    closed_idle: bool,
    _permit: OwnedSemaphorePermit,
}

impl<S> Conn<S> {
    fn new(
        io: S,
        peer: String,
        permit: OwnedSemaphorePermit,
        connections: Arc<Connections>,
    ) -> Self {
        let now = Instant::now();
        let max_streams = connections.limits().max_streams_per_connection as usize;
        tracing::debug!(%peer, "connection accepted");
        Self {
            io: Coalesce::new(io),
            state: Arc::new(ConnState {
                peer,
                streams: AtomicUsize::new(0),
                idle_since: Mutex::new(now),
                reader: AtomicWaker::new(),
                max_streams: max_streams.max(1),
                limit_logged: Mutex::new(None),
            }),
            connections,
            idle: None,
            last_read: now,
            closed_idle: false,
            _permit: permit,
        }
    }

    /// Whether the idle timeout has passed with no stream open; arms the
    /// timer (registered with `cx`) otherwise.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(timeout) = self.connections.limits().idle_timeout else {
            return false;
        };
        self.state.reader.register(cx.waker());
        if self.state.streams.load(Ordering::Acquire) > 0 {
            self.idle = None;
            return false;
        }
        let deadline = *self.state.idle_since.lock().expect("no panic holds it") + timeout;
        let sleep = self
            .idle
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        sleep.as_mut().poll(cx).is_ready() && self.state.streams.load(Ordering::Acquire) == 0
    }
}

impl<S> Drop for Conn<S> {
    fn drop(&mut self) {
        self.connections.closed(self.closed_idle);
        let limits = self.connections.limits();
        let silent = self.last_read.elapsed();
        if !self.closed_idle && silent >= limits.keepalive_interval + limits.keepalive_timeout {
            tracing::info!(peer = %self.state.peer, silent_secs = silent.as_secs(), "closed a connection that answered no keep-alive ping (a dead or half-open peer)");
        } else {
            tracing::debug!(peer = %self.state.peer, "connection closed");
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closed_idle {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.last_read = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending if this.idle_expired(cx) => {
                let timeout = this.connections.limits().idle_timeout.unwrap_or_default();
                tracing::info!(peer = %this.state.peer, idle_secs = timeout.as_secs(), "closing a connection with no stream open for the idle timeout (--idle-timeout-secs)");
                this.closed_idle = true;
                // End of file: the HTTP/2 server closes the connection.
                Poll::Ready(Ok(()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let others_may_write = this.state.streams.load(Ordering::Acquire) > 1;
        this.io.poll_flush_batch(cx, others_may_write)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<S> tonic::transport::server::Connected for Conn<S> {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        ConnInfo(self.state.clone())
    }
}

/// Counts each request's stream against its connection, from the call
/// until its response body is done (a watch counts for as long as it
/// streams).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CountStreamsLayer;

impl<S> tower::Layer<S> for CountStreamsLayer {
    type Service = CountStreams<S>;
    fn layer(&self, inner: S) -> CountStreams<S> {
        CountStreams(inner)
    }
}

/// See [`CountStreamsLayer`].
#[derive(Debug, Clone)]
pub(crate) struct CountStreams<S>(S);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for CountStreams<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let guard = request
            .extensions()
            .get::<ConnInfo>()
            .map(|c| c.0.open_stream());
        let response = self.0.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(match guard {
                Some(guard) => response.map(|body| tonic::body::Body::new(Guarded { body, guard })),
                None => response,
            })
        })
    }
}

/// A response body that ends its stream's count when dropped.
struct Guarded {
    body: tonic::body::Body,
    #[allow(dead_code)] // Held for its drop.
    guard: StreamGuard,
}

impl http_body::Body for Guarded {
    type Data = tonic::codegen::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::config::ConnectionLimits;

    #[tokio::test]
    async fn a_connection_waits_a_turn_to_batch_only_with_other_streams_open() {
        let connections = Connections::new(ConnectionLimits::default());
        let permit = connections.admit("test").expect("a permit");
        let (io, mut peer) = tokio::io::duplex(1 << 16);
        let mut conn = Conn::new(io, "test".to_owned(), permit, connections);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut got = [0u8; 8];

        // One stream: nobody to wait for, the flush writes at once.
        conn.state.streams.store(1, Ordering::Release);
        assert!(Pin::new(&mut conn).poll_write(&mut cx, b"a").is_ready());
        assert!(Pin::new(&mut conn).poll_flush(&mut cx).is_ready());
        assert_eq!(peer.read(&mut got).await.unwrap(), 1);

        // Two: the first flush gives the other stream's task a turn.
        conn.state.streams.store(2, Ordering::Release);
        assert!(Pin::new(&mut conn).poll_write(&mut cx, b"b").is_ready());
        assert!(Pin::new(&mut conn).poll_flush(&mut cx).is_pending());
        assert!(Pin::new(&mut conn).poll_write(&mut cx, b"c").is_ready());
        assert!(Pin::new(&mut conn).poll_flush(&mut cx).is_ready());
        assert_eq!(peer.read(&mut got).await.unwrap(), 2);
        assert_eq!(&got[..2], b"bc");
    }
}
