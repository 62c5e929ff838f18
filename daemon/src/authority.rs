//! Accepting grpc-core's `:authority` on the Unix socket.
//!
//! grpc-core (Python, C++, Ruby, PHP) sends a Unix socket target's
//! percent-encoded path as the `:authority` of every request
//! (`tmp%2Fcfgd.sock`, since grpc 1.57). h2, under hyper and tonic, parses
//! `:authority` with the `http` crate, which allows `%` only in the
//! userinfo, so it answers each such stream with RST_STREAM(PROTOCOL_ERROR)
//! before any service sees it (hyperium/h2#487, grpc/grpc#38142); nothing
//! in h2, hyper or tonic can relax that check.
//!
//! So a connection accepted on the Unix socket reads through
//! [`FixAuthority`]: it decodes each header block the client sends (HPACK),
//! replaces an `:authority` that is not a valid authority with `localhost`
//! (what grpc-go, tonic's client and Kubernetes send over a Unix socket),
//! and re-encodes the block with literals only, so h2's decoder never
//! depends on the client's dynamic table. Every other frame, and everything
//! the server writes, passes through untouched. A header block is at most
//! [`MAX_BLOCK`] bytes; a malformed one closes the connection, as h2 would.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};
use tonic::codegen::http::uri::Authority;
use tonic::transport::server::Connected;

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: usize = 24;
/// A frame header: length (24 bits), type, flags, stream id.
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The frame size every HTTP/2 peer accepts (SETTINGS_MAX_FRAME_SIZE's
/// initial value), for the blocks this re-encodes.
const MAX_FRAME: usize = 16_384;
/// The largest header block accepted from a client, in bytes.
pub(crate) const MAX_BLOCK: usize = 256 << 10;
/// What an invalid `:authority` becomes.
const LOCALHOST: &[u8] = b"localhost";

/// A server-side connection whose client header blocks get a valid
/// `:authority`.
pub(crate) struct FixAuthority<T> {
    inner: T,
    fix: Option<Box<Rewriter>>,
}

impl<T> std::fmt::Debug for FixAuthority<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixAuthority")
            .field("active", &self.fix.is_some())
            .finish()
    }
}

impl<T> FixAuthority<T> {
    /// `inner`, rewritten when `active` (plain HTTP/2: under TLS the bytes
    /// here are ciphertext, and TLS clients name a host anyway).
    pub(crate) fn new(inner: T, active: bool) -> Self {
        Self {
            inner,
            fix: active.then(Box::default),
        }
    }
}

/// The state of the client-to-server direction.
struct Rewriter {
    preface_left: usize,
    input: Vec<u8>,
    output: Vec<u8>,
    sent: usize,
    block: Option<Block>,
    decoder: loona_hpack::Decoder<'static>,
}

impl Default for Rewriter {
    fn default() -> Self {
        Self {
            preface_left: PREFACE,
            input: Vec::new(),
            output: Vec::new(),
            sent: 0,
            block: None,
            decoder: loona_hpack::Decoder::new(),
        }
    }
}

/// A header block being collected (HEADERS, then CONTINUATION frames).
struct Block {
    stream: [u8; 4],
    flags: u8,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("HTTP/2 from the client: {what}"),
    )
}

impl Rewriter {
    /// Moves every complete frame of `input` to `output`.
    fn process(&mut self) -> io::Result<()> {
        if self.preface_left > 0 {
            let n = self.preface_left.min(self.input.len());
            self.output.extend(self.input.drain(..n));
            self.preface_left -= n;
        }
        let mut at = 0;
        while self.preface_left == 0 && self.input.len() - at >= FRAME_HEADER {
            let head = &self.input[at..at + FRAME_HEADER];
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            if self.input.len() - at < FRAME_HEADER + len {
                break;
            }
            let frame = at..at + FRAME_HEADER + len;
            at = frame.end;
            let (ty, flags) = (self.input[frame.start + 3], self.input[frame.start + 4]);
            let mut stream = [0; 4];
            stream.copy_from_slice(&self.input[frame.start + 5..frame.start + FRAME_HEADER]);
            let payload = frame.start + FRAME_HEADER..frame.end;
            match (ty, self.block.is_some()) {
                (HEADERS, false) => {
                    let block = Self::headers(flags, stream, &self.input[payload])?;
                    self.block = Some(block);
                }
                (CONTINUATION, true) => {
                    let block = self.block.as_mut().expect("collecting a block");
                    if block.stream != stream {
                        return Err(invalid("CONTINUATION on another stream"));
                    }
                    block.fragment.extend_from_slice(&self.input[payload]);
                    block.flags |= flags & END_HEADERS;
                }
                (_, true) => return Err(invalid("a frame inside a header block")),
                _ => self.output.extend_from_slice(&self.input[frame]),
            }
            if self
                .block
                .as_ref()
                .is_some_and(|b| b.fragment.len() > MAX_BLOCK)
            {
                return Err(invalid("a header block over 256 KiB"));
            }
            if self
                .block
                .as_ref()
                .is_some_and(|b| b.flags & END_HEADERS != 0)
            {
                let block = self.block.take().expect("a finished block");
                self.finish(block)?;
            }
        }
        self.input.drain(..at);
        Ok(())
    }

    fn headers(flags: u8, stream: [u8; 4], payload: &[u8]) -> io::Result<Block> {
        let mut start = 0;
        let mut end = payload.len();
        if flags & PADDED != 0 {
            let pad = usize::from(
                *payload
                    .first()
                    .ok_or_else(|| invalid("empty padded HEADERS"))?,
            );
            start = 1;
            end = end
                .checked_sub(pad)
                .filter(|&e| e >= start)
                .ok_or_else(|| invalid("padding longer than HEADERS"))?;
        }
        let priority = if flags & PRIORITY != 0 {
            let p: [u8; 5] = payload
                .get(start..start + 5)
                .and_then(|p| p.try_into().ok())
                .ok_or_else(|| invalid("short priority in HEADERS"))?;
            start += 5;
            Some(p)
        } else {
            None
        };
        let fragment = payload
            .get(start..end)
            .ok_or_else(|| invalid("short HEADERS"))?
            .to_vec();
        Ok(Block {
            stream,
            flags,
            priority,
            fragment,
        })
    }

    /// Decodes `block`, fixes its `:authority` and writes it out again as
    /// HEADERS (+ CONTINUATION) frames.
    fn finish(&mut self, block: Block) -> io::Result<()> {
        let headers = self
            .decoder
            .decode(&block.fragment)
            .map_err(|e| invalid(&format!("a header block that does not decode: {e}")))?;
        let mut encoded = Vec::with_capacity(block.fragment.len() + 64);
        for (name, value) in &headers {
            let value: &[u8] =
                if name == b":authority" && Authority::try_from(value.as_slice()).is_err() {
                    LOCALHOST
                } else {
                    value
                };
            // Literal header field without indexing, new name (RFC 7541 §6.2.2).
            encoded.push(0);
            string(&mut encoded, name);
            string(&mut encoded, value);
        }
        let mut prefix = Vec::new();
        if let Some(p) = block.priority {
            prefix.extend_from_slice(&p);
        }
        let first = (MAX_FRAME - prefix.len()).min(encoded.len());
        let (head, mut rest) = encoded.split_at(first);
        prefix.extend_from_slice(head);
        let flags =
            block.flags & (END_STREAM | PRIORITY) | if rest.is_empty() { END_HEADERS } else { 0 };
        self.frame(HEADERS, flags, block.stream, &prefix);
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(MAX_FRAME.min(rest.len()));
            rest = tail;
            let flags = if rest.is_empty() { END_HEADERS } else { 0 };
            self.frame(CONTINUATION, flags, block.stream, chunk);
        }
        Ok(())
    }

    fn frame(&mut self, ty: u8, flags: u8, stream: [u8; 4], payload: &[u8]) {
        let len = payload.len();
        self.output
            .extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags]);
        self.output.extend_from_slice(&stream);
        self.output.extend_from_slice(payload);
    }
}

/// An HPACK string literal, not Huffman-coded (RFC 7541 §5.2).
fn string(out: &mut Vec<u8>, s: &[u8]) {
    loona_hpack::encoder::encode_integer_into(s.len(), 7, 0, out)
        .expect("writing to a Vec cannot fail");
    out.extend_from_slice(s);
}

impl<T: AsyncRead + Unpin> AsyncRead for FixAuthority<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(fix) = this.fix.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        loop {
            if fix.sent < fix.output.len() {
                let n = buf.remaining().min(fix.output.len() - fix.sent);
                buf.put_slice(&fix.output[fix.sent..fix.sent + n]);
                fix.sent += n;
                if fix.sent == fix.output.len() {
                    fix.output.clear();
                    fix.sent = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                // End of stream: what is left is an incomplete frame; h2
                // sees the same truncation it would have seen.
                fix.output.append(&mut fix.input);
                if fix.output.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            fix.input.extend_from_slice(read.filled());
            fix.process()?;
        }
    }
}

crate::forward::forward_async_write!(FixAuthority, inner);

impl<T: Connected> Connected for FixAuthority<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests;
