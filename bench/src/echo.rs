//! The floor: a tonic server whose only work is to answer `Echo` with a
//! payload of the size the caller asks for (the size of cfgd's `Get`
//! answer). Served as tonic serves by default (`tonic::transport::Server`
//! on a multi-threaded tokio runtime, `TCP_NODELAY` on accepted
//! connections), so cfgd minus echo is cfgd's own cost.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::pb::echo::echo_server::{Echo, EchoServer};
use crate::pb::echo::{EchoRequest, EchoResponse};

/// Largest payload the server agrees to send.
const MAX_REPLY: u32 = 1 << 20;

/// The echo service.
#[derive(Debug, Default, Clone, Copy)]
pub struct EchoService;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let n = request.get_ref().reply_bytes.min(MAX_REPLY) as usize;
        Ok(Response::new(EchoResponse {
            payload: vec![b'x'; n],
        }))
    }
}

/// Serves [`EchoService`] on `listener` until `shutdown` completes.
///
/// # Errors
/// A server failure.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(EchoServer::new(EchoService))
        .serve_with_incoming_shutdown(
            // What `Server::serve` does with an address: no Nagle delays.
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_with_the_requested_size() {
        let reply = EchoService
            .echo(Request::new(EchoRequest {
                name: "X".into(),
                reply_bytes: 42,
            }))
            .await
            .unwrap();
        assert_eq!(reply.get_ref().payload.len(), 42);
    }

    #[tokio::test]
    async fn serves_over_loopback_and_stops() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, async {
            let _ = stopped.await;
        }));
        let channel = crate::connect(&format!("http://{addr}")).await.unwrap();
        let mut client = crate::pb::echo::echo_client::EchoClient::new(channel);
        let reply = client
            .echo(EchoRequest {
                name: "X".into(),
                reply_bytes: 7,
            })
            .await
            .unwrap();
        assert_eq!(reply.get_ref().payload, b"xxxxxxx");
        drop(client);
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
