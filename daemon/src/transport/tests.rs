//! Real sockets on 127.0.0.1:0 in paused time, against tonic-health (its
//! `Watch` is a long-lived server stream, as cfgd's watch is).

use std::net::SocketAddr;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::server::HealthReporter;

use super::conn::Incoming;
use super::*;

struct Server {
    addr: SocketAddr,
    connections: Arc<Connections>,
    health: HealthReporter,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(limits: ConnectionLimits) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Connections::new(limits);
    let (health, service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = server(&connections, None).unwrap().add_service(service);
    let incoming = Incoming::new(listener, connections.clone(), || {});
    tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Server {
        addr,
        connections,
        health,
        _stop: stop,
    }
}

const LIMITS: ConnectionLimits = ConnectionLimits {
    max_connections: 512,
    max_streams_per_connection: 256,
    idle_timeout: Some(Duration::from_secs(60)),
    keepalive_interval: Duration::from_secs(30),
    keepalive_timeout: Duration::from_secs(20),
};

async fn client(addr: SocketAddr) -> HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

fn watch_request() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}

/// Waits (in paused time) until `check` holds, failing after a virtual hour.
async fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the server closes `stream` (end of file or reset) within a
/// virtual hour.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(3600), read)
        .await
        .is_ok()
}

#[tokio::test(start_paused = true)]
async fn a_connection_with_no_stream_is_closed_after_the_idle_timeout() {
    let server = serve(LIMITS).await;
    // Connected, but never a byte: a client that went quiet, or never spoke.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_by_server(&mut silent).await);
    until("the close is counted", || {
        let s = server.connections.to_pb();
        s.closed_idle == 1 && s.open == 0
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_connection_with_an_open_watch_is_not_idle() {
    let server = serve(LIMITS).await;
    let mut health = client(server.addr).await;
    let mut watch = health.watch(watch_request()).await.unwrap().into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );
    // Five idle timeouts with the watch open and nothing on it but pings.
    tokio::time::sleep(LIMITS.idle_timeout.unwrap() * 5).await;
    server
        .health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::NotServing as i32,
        "the watch still streams"
    );
    assert_eq!(server.connections.to_pb().closed_idle, 0);
    // Once the watch ends, the connection is idle and goes.
    drop(watch);
    until("the idle connection is closed", || {
        server.connections.to_pb().closed_idle == 1
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn beyond_the_connection_cap_new_connections_are_closed() {
    let limits = ConnectionLimits {
        max_connections: 2,
        idle_timeout: None,
        ..LIMITS
    };
    let server = serve(limits).await;
    let first = TcpStream::connect(server.addr).await.unwrap();
    let _second = TcpStream::connect(server.addr).await.unwrap();
    until("both are admitted", || server.connections.to_pb().open == 2).await;
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_by_server(&mut third).await, "refused at the cap");
    assert_eq!(server.connections.to_pb().refused, 1);
    assert_eq!(server.connections.to_pb().limit, 2);
    // One closes: a permit is free again and a real client gets in.
    drop(first);
    until("the closed one is gone", || {
        server.connections.to_pb().open == 1
    })
    .await;
    let mut health = client(server.addr).await;
    health.check(watch_request()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn streams_beyond_the_per_connection_cap_wait_for_a_free_one() {
    let limits = ConnectionLimits {
        max_streams_per_connection: 2,
        ..LIMITS
    };
    let server = serve(limits).await;
    let health = client(server.addr).await;
    let mut a = health
        .clone()
        .watch(watch_request())
        .await
        .unwrap()
        .into_inner();
    let _b = health
        .clone()
        .watch(watch_request())
        .await
        .unwrap()
        .into_inner();
    a.message().await.unwrap().unwrap();
    // The server advertised two streams; a third waits for one of them.
    let mut third = health.clone();
    let waiting = tokio::spawn(async move { third.check(watch_request()).await.map(drop) });
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!waiting.is_finished(), "a third stream was let in");
    drop(a);
    waiting.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_answers_no_ping_is_dropped_even_with_a_stream_open() {
    let server = serve(LIMITS).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut send, connection) = h2::client::handshake(tcp).await.unwrap();
    let mut connection = Box::pin(connection);
    let request = tonic::codegen::http::Request::post(format!(
        "http://{}/grpc.health.v1.Health/Watch",
        server.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let (response, mut body) = send.send_request(request, false).unwrap();
    // An empty HealthCheckRequest: no compression, length 0.
    body.send_data(vec![0u8; 5].into(), true).unwrap();
    // Drive the connection until the watch is open, then stop: from here
    // the peer reads nothing and answers no ping, as a half-open one.
    let response = tokio::select! {
        r = response => r.unwrap(),
        r = &mut connection => panic!("connection ended: {r:?}"),
    };
    assert_eq!(response.status(), 200);
    until("the silent peer is dropped", || {
        server.connections.to_pb().open == 0
    })
    .await;
    assert_eq!(
        server.connections.to_pb().closed_idle,
        0,
        "not for idleness: a stream was open"
    );
    drop(connection);
}
