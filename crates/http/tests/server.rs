//! The server on real sockets over loopback: timeouts, shares per client, `ConnectInfo`,
//! graceful shutdown.

use std::{
    net::SocketAddr,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::ConnectInfo,
    routing::{get, post},
};
use poco_http::{Server, ServerLimits};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpSocket, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

struct Running {
    address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    stats: std::sync::Arc<poco_http::ServerStats>,
}

async fn start(limits: ServerLimits) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = Router::new()
        .route("/", get(|| async { "hello" }))
        .route("/echo", post(|body: String| async move { body }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                "done"
            }),
        );
    let server = Server::new("test", limits);
    let stats = server.stats().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, router, async move {
        let _ = stopped.await;
    }));
    Running { address, stop, task, stats }
}

/// A connection from `from` (127.0.0.x stands for another host).
async fn connect(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// One GET on a fresh connection from `from`: the whole answer.
async fn get_from(from: &str, to: SocketAddr, path: &str) -> String {
    let mut stream = connect(from, to).await;
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    answer
}

/// Waits until the server closes `stream`; returns how long it took.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 64];
    match tokio::time::timeout(within, stream.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => started.elapsed(),
        Ok(Ok(n)) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(_) => panic!("the connection is still open after {within:?}"),
    }
}

fn limits() -> ServerLimits {
    ServerLimits {
        header_read_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(600),
        max_connections_per_client: 4,
        max_connections: 100,
    }
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let server = start(limits()).await;
    let mut silent = connect("127.0.0.2", server.address).await;
    let took = closed_within(&mut silent, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(300), "closed too early: {took:?}");
    assert_eq!(server.stats.header_timeouts.load(Ordering::Relaxed), 1);
    // Headers sent a few bytes at a time do not keep it open either.
    let mut trickle = connect("127.0.0.2", server.address).await;
    let started = Instant::now();
    for byte in b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: yes" {
        if trickle.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed() + closed_within(&mut trickle, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(3), "a trickled header held the connection {took:?}");
    assert!(get_from("127.0.0.3", server.address, "/").await.contains("hello"));
}

#[tokio::test]
async fn a_stalled_body_is_dropped_after_the_idle_timeout() {
    let server =
        start(ServerLimits { header_read_timeout: Duration::from_secs(30), ..limits() }).await;
    let mut stalled = connect("127.0.0.2", server.address).await;
    stalled
        .write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nabc")
        .await
        .unwrap();
    let took = closed_within(&mut stalled, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(400), "closed too early: {took:?}");
    assert_eq!(server.stats.idle_closed.load(Ordering::Relaxed), 1);
    assert_eq!(server.stats.header_timeouts.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_client_over_its_share_is_refused_while_others_get_through() {
    let server = start(ServerLimits {
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect("127.0.0.2", server.address).await);
    }
    // Let the server accept them all before the next one.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The server answers at once, before any request (sending one could race its close).
    let mut over = connect("127.0.0.2", server.address).await;
    let mut refused = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), over.read_to_string(&mut refused)).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.contains(r#""code":"too_many_connections""#), "{refused}");
    assert_eq!(server.stats.refused_per_client.load(Ordering::Relaxed), 1);
    // Another host is served, and sees its own address.
    let answer = get_from("127.0.0.3", server.address, "/peer").await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("127.0.0.3"), "{answer}");
    // A connection given back is a slot free again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(get_from("127.0.0.2", server.address, "/").await.contains("hello"));
}

#[tokio::test]
async fn shutdown_lets_the_request_in_progress_finish() {
    let server = start(limits()).await;
    let address = server.address;
    let slow = tokio::spawn(async move { get_from("127.0.0.2", address, "/slow").await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.stop.send(()).unwrap();
    let answer = slow.await.unwrap();
    assert!(answer.contains("done"), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), server.task).await.unwrap().unwrap().unwrap();
    assert!(TcpStream::connect(address).await.is_err(), "no longer listening");
}
