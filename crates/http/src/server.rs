//! The accept loop and the connection driver.

use std::{
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{Router, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
};
use tower::Service;
use tracing::{debug, info, warn};

use crate::{ClientSlots, LogGate, Slot, SlotRefusal, client_of};

/// Default of [`ServerLimits::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`ServerLimits::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of [`ServerLimits::max_connections_per_client`].
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 128;
/// Default of [`ServerLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// The limits of a [`Server`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Longest time a client may take to send a request's headers, from the opening of the
    /// connection or the end of the previous response. Protects the server from connections
    /// opened and left silent (or fed a byte at a time) to exhaust its sockets; it is also how
    /// long a keep-alive connection waits for its next request.
    pub header_read_timeout: Duration,
    /// Longest time a connection may go without a byte moving either way (a request body
    /// that stalls, a response nobody reads) before it is dropped.
    pub idle_timeout: Duration,
    /// Connections one client (IPv4 address, IPv6 /64) may hold open at once, WebSocket
    /// streams included. Keeps one host from taking every socket of the server.
    pub max_connections_per_client: usize,
    /// Connections all clients may hold open at once: keeps the server under its file
    /// descriptor limit.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// How often the limits of a [`Server`] acted.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections refused because their client held its share.
    pub refused_per_client: AtomicU64,
    /// Connections refused because every connection slot was taken.
    pub refused_total: AtomicU64,
    /// Connections closed because their request headers did not arrive in time.
    pub header_timeouts: AtomicU64,
    /// Connections closed because nothing moved on them for the idle timeout.
    pub idle_closed: AtomicU64,
}

/// Longest time a connection may take to finish the request in progress once the server is
/// shutting down, before it is dropped.
const CLOSING_GRACE: Duration = Duration::from_secs(30);

/// An HTTP/1.1 server with timeouts and connection caps per client.
pub struct Server {
    name: &'static str,
    limits: ServerLimits,
    stats: Arc<ServerStats>,
    slots: Arc<ClientSlots>,
    gate: Arc<LogGate>,
}

impl Server {
    /// A server with `limits`; `name` (the service's) is in its log lines.
    pub fn new(name: &'static str, limits: ServerLimits) -> Self {
        Self {
            name,
            limits,
            stats: Arc::new(ServerStats::default()),
            slots: ClientSlots::new(limits.max_connections_per_client, limits.max_connections),
            gate: Arc::new(LogGate::default()),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> &Arc<ServerStats> {
        &self.stats
    }

    /// The connections it holds, per client.
    pub fn connections(&self) -> &Arc<ClientSlots> {
        &self.slots
    }

    /// Serves `router` on `listener` until `shutdown` completes, then lets the requests in
    /// progress finish (within 30 s) and returns. Handlers get the peer's
    /// [`ConnectInfo<SocketAddr>`].
    pub async fn serve(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let (stop, stopping) = watch::channel(false);
        let (done, mut all_done) = mpsc::channel::<()>(1);
        let shared = Arc::new(Shared {
            name: self.name,
            limits: self.limits,
            stats: self.stats.clone(),
            gate: self.gate.clone(),
        });
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, most likely: wait for some to close rather
                        // than spin.
                        if shared.gate.allow(IpAddr::from([0, 0, 0, 0])) {
                            warn!(service = self.name, error = %e, "cannot accept connections");
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let client = client_of(peer.ip());
            match self.slots.acquire(client) {
                Ok(slot) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection(
                        stream,
                        peer,
                        slot,
                        shared.clone(),
                        router.clone(),
                        stopping.clone(),
                        done.clone(),
                    ));
                }
                Err(refusal) => shared.refuse(&stream, client, refusal),
            }
        }
        let _ = stop.send(true);
        drop(done);
        let _ = all_done.recv().await;
        info!(service = self.name, "HTTP server stopped");
        Ok(())
    }
}

/// Serves `router` on `listener` with the default [`ServerLimits`] until `shutdown`
/// completes (see [`Server::serve`]).
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    Server::new(name, ServerLimits::default()).serve(listener, router, shutdown).await
}

/// What the connection tasks share.
struct Shared {
    name: &'static str,
    limits: ServerLimits,
    stats: Arc<ServerStats>,
    gate: Arc<LogGate>,
}

impl Shared {
    /// Answers a connection over its cap with a JSON error, without reading it, and closes it.
    fn refuse(&self, stream: &TcpStream, client: IpAddr, refusal: SlotRefusal) {
        let (counter, status, total) = match refusal {
            SlotRefusal::Client { .. } => {
                (&self.stats.refused_per_client, "429 Too Many Requests", false)
            }
            SlotRefusal::Total { .. } => {
                (&self.stats.refused_total, "503 Service Unavailable", true)
            }
        };
        let refused = counter.fetch_add(1, Ordering::Relaxed) + 1;
        if self.gate.allow(client) {
            warn!(
                service = self.name,
                %client,
                %refusal,
                refused,
                all_clients = total,
                "connection refused: too many open connections"
            );
        }
        let body = format!(
            r#"{{"error":"too many open connections: {refusal}","code":"too_many_connections"}}"#
        );
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
            body.len()
        );
        // Never waits: a client that does not read gets nothing.
        let _ = stream.try_write(response.as_bytes());
    }
}

/// Serves one connection until it closes, times out or is idle too long.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    shared: Arc<Shared>,
    router: Router,
    mut stopping: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
) {
    let client = slot.client();
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked { inner: stream, activity: activity.clone(), _slot: slot });
    let service = service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        async move { router.call(request).await }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_read_timeout)
        .keep_alive(true);
    let mut conn = std::pin::pin!(builder.serve_connection(io, service).with_upgrades());
    let idle_timeout = shared.limits.idle_timeout;
    let mut closing: Option<tokio::time::Instant> = None;
    loop {
        let idle_at = tokio::time::Instant::from_std(activity.last() + idle_timeout);
        tokio::select! {
            outcome = conn.as_mut() => {
                if let Err(e) = outcome {
                    if e.is_timeout() {
                        let count = shared.stats.header_timeouts.fetch_add(1, Ordering::Relaxed) + 1;
                        if shared.gate.allow(client) {
                            info!(
                                service = shared.name,
                                %client,
                                timeout_ms = shared.limits.header_read_timeout.as_millis() as u64,
                                header_timeouts = count,
                                "connection closed: request headers not received in time"
                            );
                        }
                    } else {
                        debug!(service = shared.name, %client, error = %e, "connection failed");
                    }
                }
                return;
            }
            () = tokio::time::sleep_until(idle_at), if closing.is_none() => {
                if activity.last().elapsed() >= idle_timeout {
                    let count = shared.stats.idle_closed.fetch_add(1, Ordering::Relaxed) + 1;
                    if shared.gate.allow(client) {
                        info!(
                            service = shared.name,
                            %client,
                            timeout_ms = idle_timeout.as_millis() as u64,
                            idle_closed = count,
                            "connection closed: idle"
                        );
                    }
                    // Nothing moved: there is nothing in progress worth waiting for.
                    return;
                }
            }
            _ = stopping.changed(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(tokio::time::Instant::now() + CLOSING_GRACE);
            }
            () = tokio::time::sleep_until(closing.unwrap_or_else(tokio::time::Instant::now)), if closing.is_some() => {
                return;
            }
        }
    }
}

/// When a byte last moved on a connection.
#[derive(Debug)]
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self { start: Instant::now(), last_ms: AtomicU64::new(0) }
    }

    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A connection's stream: notes its activity, and holds the client's slot until the stream
/// is closed (also when it lives on as a WebSocket after an upgrade).
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
    _slot: Slot,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
