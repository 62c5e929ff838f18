//! Coalescing a connection's writes: what HTTP/2 writes between two
//! scheduler turns goes to the socket in one system call.
//!
//! The HTTP/2 server writes its queued frames and flushes each time its
//! connection task runs, and each stream's task wakes that connection task
//! as it queues a frame. Tokio runs a task woken by the running one next
//! (its LIFO slot), so when one change wakes the 100 watch streams of a
//! connection, the connection task ran after each and wrote each event in
//! a `writev` of its own: 0.76 `writev` per delivered event with 10,000
//! watchers on 100 connections, and half the daemon's CPU in the kernel's
//! loopback send path (`perf record` of the fan-out bench).
//!
//! [`Coalesce`] keeps what is written in a buffer and, at the first flush
//! of a batch on a connection with more than one stream open, yields once
//! (wakes its task and answers `Pending`) so the tasks already queued — the
//! other streams of that change — queue their frames first; the next flush
//! writes them all. No timer: the wait is one turn of the scheduler. With
//! one stream open the flush writes at once (the yield cost a c=1 read
//! ~20 µs of CPU, the other worker woken to steal, for nothing to batch).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// At most this much is kept before it is written out whether or not a
/// flush came (and a larger single write goes to the socket directly).
const MAX_BUFFERED: usize = 256 * 1024;

/// A buffer of this capacity or more is given back once written out, so an
/// idle connection does not keep the memory of its largest answer.
const KEEP_CAPACITY: usize = 16 * 1024;

/// An IO object whose writes reach `inner` in one batch per scheduler turn.
#[derive(Debug)]
pub(crate) struct Coalesce<S> {
    inner: S,
    out: Vec<u8>,
    /// How much of `out` has reached `inner`.
    written: usize,
    /// The current batch's first flush has yielded already.
    yielded: bool,
}

impl<S> Coalesce<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            out: Vec::new(),
            written: 0,
            yielded: false,
        }
    }

    #[cfg(test)]
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncWrite + Unpin> Coalesce<S> {
    /// Writes everything buffered to `inner`.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.written = 0;
        if self.out.capacity() >= KEEP_CAPACITY {
            self.out = Vec::new();
        } else {
            self.out.clear();
        }
        Poll::Ready(Ok(()))
    }

    /// Flushes; when `others_may_write` (more than one stream is open on
    /// the connection), the batch's first flush yields first, so that what
    /// the tasks queued behind this one write goes in the same system call.
    /// A connection with one stream has nobody to wait for: its flush
    /// writes at once, and a lone request costs no extra turn.
    pub(crate) fn poll_flush_batch(
        &mut self,
        cx: &mut Context<'_>,
        others_may_write: bool,
    ) -> Poll<io::Result<()>> {
        if self.written < self.out.len() {
            if others_may_write && !self.yielded {
                self.yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            ready!(self.drain(cx))?;
        }
        self.yielded = false;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    /// Makes room for `len` more bytes: writes the buffer out first when
    /// they would not fit. `Ready(false)` means the write is too large to
    /// buffer and should go to `inner` as it is.
    fn room_for(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<bool>> {
        if self.out.len() + len > MAX_BUFFERED {
            ready!(self.drain(cx))?;
        }
        Poll::Ready(Ok(len <= MAX_BUFFERED))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesce<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesce<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let len = bufs.iter().map(|b| b.len()).sum();
        if !ready!(this.room_for(cx, len))? {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        this.out.reserve(len);
        for b in bufs {
            this.out.extend_from_slice(b);
        }
        Poll::Ready(Ok(len))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_batch(cx, true)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    /// A writer that records each write it is given, taking at most
    /// `per_write` bytes of each, or none while `full`.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
        per_write: Option<usize>,
        full: bool,
        flushes: usize,
        shut: bool,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            if this.full {
                return Poll::Pending;
            }
            let n = this.per_write.map_or(buf.len(), |p| p.min(buf.len()));
            this.writes.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().flushes += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().shut = true;
            Poll::Ready(Ok(()))
        }
    }

    /// Counts its wakes.
    #[derive(Default)]
    struct Wakes(AtomicUsize);
    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn write(c: &mut Coalesce<Recorder>, cx: &mut Context<'_>, bytes: &[u8]) {
        assert!(matches!(
            Pin::new(c).poll_write(cx, bytes),
            Poll::Ready(Ok(n)) if n == bytes.len()
        ));
    }

    #[test]
    fn frames_written_between_two_turns_reach_the_socket_in_one_write() {
        let wakes = Arc::new(Wakes::default());
        let waker = std::task::Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut c = Coalesce::new(Recorder::default());

        // The connection task's first turn: one stream's frame, then a flush
        // that yields (and wakes the task to come back).
        write(&mut c, &mut cx, b"one ");
        assert!(Pin::new(&mut c).poll_flush(&mut cx).is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(
            c.get_ref().writes.is_empty(),
            "nothing written before the yield"
        );

        // Its next turn: the frames the other streams queued meanwhile, then
        // the flush that writes them all at once.
        let slices = [IoSlice::new(b"two "), IoSlice::new(b"three")];
        assert!(matches!(
            Pin::new(&mut c).poll_write_vectored(&mut cx, &slices),
            Poll::Ready(Ok(9))
        ));
        assert!(Pin::new(&mut c).poll_flush(&mut cx).is_ready());
        assert_eq!(c.get_ref().writes, vec![b"one two three".to_vec()]);
        assert_eq!(c.get_ref().flushes, 1);

        // A new batch yields again.
        write(&mut c, &mut cx, b"four");
        assert!(Pin::new(&mut c).poll_flush(&mut cx).is_pending());
        assert!(Pin::new(&mut c).poll_flush(&mut cx).is_ready());
        assert_eq!(c.get_ref().writes.len(), 2);
        assert_eq!(c.get_ref().writes[1], b"four");

        // A flush with nothing buffered goes straight through.
        assert!(Pin::new(&mut c).poll_flush(&mut cx).is_ready());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn with_nobody_else_to_wait_for_a_flush_writes_at_once() {
        let wakes = Arc::new(Wakes::default());
        let waker = std::task::Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut c = Coalesce::new(Recorder::default());
        write(&mut c, &mut cx, b"alone");
        assert!(c.poll_flush_batch(&mut cx, false).is_ready());
        assert_eq!(c.get_ref().writes, vec![b"alone".to_vec()]);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "no extra turn");
    }

    #[test]
    fn a_socket_that_takes_part_or_nothing_gets_everything_in_order() {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut c = Coalesce::new(Recorder {
            per_write: Some(3),
            full: true,
            ..Recorder::default()
        });
        write(&mut c, &mut cx, b"abcdefgh");
        assert!(Pin::new(&mut c).poll_flush(&mut cx).is_pending());
        // Full socket: still pending, nothing lost.
        assert!(Pin::new(&mut c).poll_flush(&mut cx).is_pending());
        c.inner.full = false;
        assert!(Pin::new(&mut c).poll_flush(&mut cx).is_ready());
        assert_eq!(c.get_ref().writes.concat(), b"abcdefgh");
        assert_eq!(c.get_ref().writes.len(), 3);
    }

    #[test]
    fn more_than_the_buffer_holds_is_written_out_without_a_flush() {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut c = Coalesce::new(Recorder::default());
        let block = vec![7u8; MAX_BUFFERED / 2 + 1];
        write(&mut c, &mut cx, &block);
        assert!(c.get_ref().writes.is_empty());
        write(&mut c, &mut cx, &block);
        assert_eq!(
            c.get_ref().writes.len(),
            1,
            "the first block went out to make room"
        );
        // One write larger than the buffer goes to the socket as it is,
        // after what was buffered before it.
        let large = vec![9u8; MAX_BUFFERED + 1];
        write(&mut c, &mut cx, &large);
        assert_eq!(c.get_ref().writes.len(), 3);
        assert_eq!(c.get_ref().writes[2], large);
    }

    #[tokio::test]
    async fn shutdown_writes_what_is_buffered_first() {
        let mut c = Coalesce::new(Recorder::default());
        poll_fn(|cx| Pin::new(&mut c).poll_write(cx, b"last words"))
            .await
            .unwrap();
        poll_fn(|cx| Pin::new(&mut c).poll_shutdown(cx))
            .await
            .unwrap();
        assert_eq!(c.get_ref().writes, vec![b"last words".to_vec()]);
        assert!(c.get_ref().shut);
    }

    #[tokio::test]
    async fn an_awaited_flush_completes_on_its_own_second_turn() {
        // What a task sees: flush() resolves without anyone else waking it.
        let mut c = Coalesce::new(Recorder::default());
        poll_fn(|cx| Pin::new(&mut c).poll_write(cx, b"x"))
            .await
            .unwrap();
        poll_fn(|cx| Pin::new(&mut c).poll_flush(cx)).await.unwrap();
        assert_eq!(c.get_ref().writes, vec![b"x".to_vec()]);
    }
}
