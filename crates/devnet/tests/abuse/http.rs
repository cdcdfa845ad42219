//! Connection and request floods against the HTTP services: idle sockets and WebSocket
//! hoarding from one host, signature-broken replays of a seller's orders, silent connections
//! to the scheduler, the result store and the SMS. 127.0.0.2 is the attacker's host,
//! 127.0.0.3 the honest user's.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use alloy::primitives::{B256, U256};
use poco_devnet::cluster::{Cluster, tee::TeeCluster};
use poco_market::{Limits, MarketConfig};
use poco_primitives::AppOrder;
use poco_test_utils::TestNet;
use serde_json::Value;
use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpSocket, TcpStream},
    sync::oneshot,
};

const ATTACKER: &str = "127.0.0.2";
const HONEST: &str = "127.0.0.3";

/// A connection from `from` to `to`.
async fn connect(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.expect("a connection")
}

/// An HTTP client whose connections come from `from`.
fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Reads `stream` until the server closes it; panics if that takes longer than `within`.
async fn wait_closed(stream: &mut TcpStream, within: Duration) {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => panic!("the server kept a silent connection open for {within:?}"),
        }
    }
}

/// The market on 127.0.0.1, running until the returned sender is dropped.
async fn market(net: &TestNet, config: MarketConfig) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(poco_market::serve(config, listener, async move {
        let _ = stopped.await;
    }));
    let head = alloy::providers::Provider::get_block_number(net.owner().provider()).await.unwrap();
    let client = reqwest::Client::new();
    poco_test_utils::wait_until("the market follows the chain", Duration::from_secs(60), || {
        let client = client.clone();
        async move {
            let Ok(response) = client.get(format!("http://{address}/health")).send().await else {
                return false;
            };
            let health: Value = response.json().await.unwrap_or_default();
            health["checkpoint"].as_u64().is_some_and(|checkpoint| checkpoint > head)
        }
    })
    .await;
    (address, stop)
}

fn market_config(net: &TestNet, dir: &tempfile::TempDir) -> MarketConfig {
    let mut config = MarketConfig::new(dir.path(), net.devnet().rpc_url(), *net.deployment());
    config.poll_interval = Duration::from_millis(50);
    config
}

/// A WebSocket to the market's `/ws` from `from`: the handshake's status.
async fn websocket(
    from: &str,
    market: SocketAddr,
) -> Result<tokio_tungstenite::WebSocketStream<TcpStream>, u16> {
    let stream = connect(from, market).await;
    match tokio_tungstenite::client_async(format!("ws://{market}/ws"), stream).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("WebSocket handshake failed: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_cannot_hold_every_connection_or_websocket_of_the_market() {
    let net = TestNet::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = market_config(&net, &dir);
    config.server.header_read_timeout = Duration::from_secs(2);
    config.server.max_connections_per_client = 20;
    config.limits.max_websocket_clients_per_client = 2;
    let (market, _stop) = market(&net, config).await;

    // The attacker takes its share of WebSocket streams, and no more.
    let mut held_streams = Vec::new();
    for _ in 0..2 {
        held_streams.push(websocket(ATTACKER, market).await.expect("the attacker's share"));
    }
    assert_eq!(
        websocket(ATTACKER, market).await.err(),
        Some(429),
        "a third WebSocket from the same host is refused"
    );

    // Then opens idle connections, far past its share, and sends nothing on them.
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(connect(ATTACKER, market).await);
    }

    // During the attack, the honest user is answered and gets a stream.
    let honest = client_from(HONEST);
    let health = honest.get(format!("http://{market}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let mut stream = websocket(HONEST, market).await.expect("the honest user's WebSocket");
    stream.close(None).await.ok();

    let metrics = honest.get(format!("http://{market}/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let refused = metrics
        .lines()
        .find_map(|line| line.strip_prefix("poco_market_connections_refused_total "))
        .and_then(|value| value.parse::<u64>().ok())
        .expect("the refusals are counted");
    assert!(refused >= 280 - 2, "{refused} connections refused");

    // The silent connections are closed after the header timeout (the refused ones at once).
    let started = Instant::now();
    for stream in &mut idle {
        wait_closed(stream, Duration::from_secs(10)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // Its share freed, the attacker's host is served again like anyone.
    let answer = client_from(ATTACKER).get(format!("http://{market}/health")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    drop(held_streams);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_with_a_broken_signature_do_not_lock_the_seller_out() {
    let net = TestNet::start(1).await;
    let seller = net.accounts().app_provider.clone();
    let app = net.create_app(&seller, "abuse-app", B256::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = market_config(&net, &dir);
    config.limits = Limits {
        address_rate_per_second: 0.05,
        address_burst: 4.0,
        ip_rate_per_second: 1_000.0,
        ip_burst: 1_000.0,
        ..Limits::default()
    };
    let (market, _stop) = market(&net, config).await;
    let url = format!("http://{market}/apporders");
    let order = |salt: u8| {
        let order = AppOrder {
            app,
            appprice: U256::from(1),
            volume: U256::from(1),
            salt: B256::repeat_byte(salt),
            ..Default::default()
        };
        serde_json::to_value(net.sign(order, &seller)).unwrap()
    };
    let honest = client_from(HONEST);
    let published = honest.post(&url).json(&order(1)).send().await.unwrap();
    assert_eq!(published.status(), 201, "{}", published.text().await.unwrap());

    // The public order, its signature broken, replayed by a stranger.
    let mut replay = order(1);
    let sign = replay["sign"].as_str().unwrap().to_owned();
    let flipped = if sign.ends_with('1') { "2" } else { "1" };
    replay["sign"] = Value::String(format!("{}{flipped}", &sign[..sign.len() - 1]));
    let flood = {
        let url = url.clone();
        tokio::spawn(async move {
            let attacker = client_from(ATTACKER);
            let mut statuses = Vec::new();
            for _ in 0..40 {
                let answer = attacker.post(&url).json(&replay).send().await.unwrap();
                statuses.push(answer.status().as_u16());
            }
            statuses
        })
    };
    // During the flood the seller keeps publishing.
    for salt in 2..=3 {
        let answer = honest.post(&url).json(&order(salt)).send().await.unwrap();
        let status = answer.status();
        assert_eq!(status, 201, "the seller's own order: {}", answer.text().await.unwrap());
    }
    let statuses = flood.await.unwrap();
    assert!(statuses.iter().all(|s| *s == 422 || *s == 429), "{statuses:?}");
    assert!(statuses.contains(&429), "the stranger's refused writes are limited: {statuses:?}");
    // And after it.
    let answer = honest.post(&url).json(&order(4)).send().await.unwrap();
    assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
}

/// Opens a connection from the attacker's host to `url` and sends nothing: the service must
/// close it after its header-read timeout (10 s by default), while answering others.
async fn silent_connection_is_closed(url: &str, health: &str) {
    let address: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let mut silent = connect(ATTACKER, address).await;
    let answer = client_from(HONEST).get(format!("{url}{health}")).send().await.unwrap();
    assert!(answer.status().as_u16() < 500, "the honest user is answered");
    let started = Instant::now();
    wait_closed(&mut silent, Duration::from_secs(20)).await;
    assert!(started.elapsed() >= Duration::from_secs(5), "closed too early");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_closes_a_silent_connection() {
    let cluster = Box::pin(Cluster::start(0, "pi")).await;
    silent_connection_is_closed(&cluster.scheduler_url(), "/health").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_result_store_closes_a_silent_connection() {
    let cluster = Box::pin(Cluster::start(0, "pi")).await;
    silent_connection_is_closed(&cluster.results_url, "/health").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sms_closes_a_silent_connection() {
    let tee = Box::pin(TeeCluster::start(0, "confidential")).await;
    silent_connection_is_closed(&tee.sms_url, "/health").await;
}
