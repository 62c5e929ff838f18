//! One member: its endpoint, its channel, and a look at the socket that
//! channel's calls go out on.
//!
//! Why the look: when a member dies between two calls, its end of the
//! connection is closed before the next call is made, but nothing in tonic
//! or hyper has read the close yet, so the call is written to the dead
//! connection and fails like a call that was cut off after it was sent —
//! a write would come back "outcome unknown" although it never left. A
//! non-blocking peek at the socket (a duplicate of the connection's file
//! descriptor, taken when it was made) sees the close that is already
//! there, and the client sends the call to the next member instead.

use std::io;
use std::sync::{Arc, Mutex};

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint, Uri};

type Socket = Arc<Mutex<Option<std::net::TcpStream>>>;

#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) url: String,
    pub(crate) channel: Channel,
    socket: Socket,
}

impl Member {
    /// A member at `endpoint`, connected when first used.
    pub(crate) fn new(url: String, endpoint: &Endpoint) -> Self {
        let socket = Socket::default();
        let slot = socket.clone();
        let connector = tower::service_fn(move |uri: Uri| connect(uri, slot.clone()));
        Self {
            url,
            channel: endpoint.connect_with_connector_lazy(connector),
            socket,
        }
    }

    /// Whether the member has closed the connection that calls go out on
    /// (its end reads as closed or reset): a call made now cannot reach it.
    /// Forgets that connection, so the next call goes out on a new one.
    pub(crate) fn closed_by_peer(&self) -> bool {
        let mut slot = self.socket.lock().unwrap_or_else(|e| e.into_inner());
        let Some(socket) = slot.as_ref() else {
            return false;
        };
        let closed = match socket.peek(&mut [0u8; 1]) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => {
                e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted
            }
        };
        if closed {
            *slot = None;
        }
        closed
    }
}

async fn connect(uri: Uri, slot: Socket) -> io::Result<TokioIo<TcpStream>> {
    let host = uri
        .host()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no host in {uri}")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri
        .port_u16()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no port in {uri}")))?;
    let stream = TcpStream::connect((host.as_str(), port)).await?;
    stream.set_nodelay(true)?;
    // The duplicate shares the socket (and its non-blocking mode) with the
    // connection; it is replaced by the next connection's, and dropped with
    // the member.
    let std = stream.into_std()?;
    let dup = std.try_clone()?;
    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(dup);
    Ok(TokioIo::new(TcpStream::from_std(std)?))
}
