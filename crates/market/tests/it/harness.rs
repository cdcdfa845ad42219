//! The test harness: databases (SQLite files, fresh PostgreSQL databases), the real service on
//! port 0 with HTTP and WebSocket clients, and a devnet with registered assets.

use std::time::{Duration, Instant};

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
};
use futures::StreamExt;
use poco_market::{Limits, MarketConfig};
use poco_test_utils::{TestNet, postgres::TestDatabase};
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// How long any wait of a test may last.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// A database for one test.
pub(crate) struct Db {
    pub(crate) url: String,
    postgres: Option<TestDatabase>,
    _dir: Option<TempDir>,
}

/// A SQLite file in a temporary directory.
pub(crate) fn sqlite() -> Db {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("market.sqlite").display());
    Db { url, postgres: None, _dir: Some(dir) }
}

/// A fresh database on the PostgreSQL test server. Panics when the server does not answer: a
/// test asked to run against PostgreSQL must not pass without it.
pub(crate) async fn postgres() -> Db {
    let database = TestDatabase::create("market_test").await;
    Db { url: database.url.clone(), postgres: Some(database), _dir: None }
}

impl Db {
    /// Drops a PostgreSQL test database.
    pub(crate) async fn cleanup(self) {
        if let Some(database) = self.postgres {
            database.drop_database().await;
        }
    }
}

/// A devnet with one app, one dataset and one workerpool registered.
pub(crate) struct World {
    pub(crate) net: TestNet,
    pub(crate) app: Address,
    pub(crate) dataset: Address,
    pub(crate) workerpool: Address,
}

impl World {
    pub(crate) async fn new() -> Self {
        let net = TestNet::start(2).await;
        let accounts = net.accounts().clone();
        let app = net.create_app(&accounts.app_provider, "market-app", B256::ZERO).await;
        let dataset =
            net.create_dataset(&accounts.dataset_provider, "market-data", B256::ZERO).await;
        let workerpool = net.create_workerpool(&accounts.scheduler, "market pool").await;
        Self { net, app, dataset, workerpool }
    }

    /// The latest block.
    pub(crate) async fn head(&self) -> u64 {
        self.net.owner().provider().get_block_number().await.expect("a block number")
    }
}

/// The market service, running in this process.
pub(crate) struct Service {
    pub(crate) base: String,
    pub(crate) ws: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<poco_market::Result<()>>,
    client: reqwest::Client,
}

/// The configuration the tests run the market with.
pub(crate) fn config(net: &TestNet, database_url: &str, limits: Limits) -> MarketConfig {
    let mut config =
        MarketConfig::new(std::env::temp_dir(), net.devnet().rpc_url(), *net.deployment());
    config.database_url = Some(database_url.to_owned());
    config.poll_interval = Duration::from_millis(50);
    config.limits = limits;
    config
}

/// Starts the market on 127.0.0.1, port 0, and waits for it to answer.
pub(crate) async fn start(net: &TestNet, database_url: &str, limits: Limits) -> Service {
    start_with(config(net, database_url, limits)).await
}

pub(crate) async fn start_with(config: MarketConfig) -> Service {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(poco_market::serve(config, listener, async move {
        let _ = stopped.await;
    }));
    let service = Service {
        base: format!("http://{address}"),
        ws: format!("ws://{address}/ws"),
        stop: Some(stop),
        task,
        client: reqwest::Client::new(),
    };
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(response) = service.client.get(format!("{}/health", service.base)).send().await
            && response.status() == StatusCode::OK
        {
            return service;
        }
        assert!(Instant::now() < deadline, "the market did not come up");
        assert!(!service.task.is_finished(), "the market stopped at start-up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Service {
    /// GET `path`, as JSON.
    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.get(format!("{}{path}", self.base)).send().await.expect("GET");
        let status = response.status();
        let text = response.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// POST raw bytes to `path`.
    pub(crate) async fn post_bytes(&self, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST");
        let status = response.status();
        let text = response.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// POST JSON to `path`.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.post_bytes(path, serde_json::to_vec(body).unwrap()).await
    }

    /// Publishes a signed order; returns the status and the answer.
    pub(crate) async fn publish<T: serde::Serialize>(
        &self,
        kind: &str,
        order: &T,
    ) -> (StatusCode, Value) {
        self.post(&format!("/{kind}orders"), &serde_json::to_value(order).unwrap()).await
    }

    /// Waits until the follower has applied every block up to the chain's head.
    pub(crate) async fn synced(&self, world: &World) {
        let head = world.head().await;
        self.wait_for(&format!("the follower to pass block {head}"), || async {
            let (_, health) = self.get("/health").await;
            health["checkpoint"].as_u64().is_some_and(|checkpoint| checkpoint > head)
        })
        .await;
    }

    /// Polls `check` until it holds, at most [`WAIT`].
    pub(crate) async fn wait_for<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + WAIT;
        while !check().await {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The order `hash` of `kind`.
    pub(crate) async fn order(&self, kind: &str, hash: B256) -> Value {
        let (status, order) = self.get(&format!("/{kind}orders/{hash}")).await;
        assert_eq!(status, StatusCode::OK, "{order}");
        order
    }

    /// Waits until order `hash` has `field` equal to `value`.
    pub(crate) async fn wait_order(
        &self,
        kind: &str,
        hash: B256,
        field: &str,
        value: &str,
    ) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let last = self.order(kind, hash).await;
            if last[field] == value {
                return last;
            }
            assert!(
                Instant::now() < deadline,
                "order {hash}: {field} never became {value}: {last}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Every order of the book, all kinds, all statuses reachable by listing (open ones).
    pub(crate) async fn book(&self) -> Vec<Value> {
        let mut all = vec![];
        for kind in ["app", "dataset", "workerpool", "request"] {
            let filters = match kind {
                "app" => "dataset=any&workerpool=any&requester=any",
                "dataset" => "app=any&workerpool=any&requester=any",
                "workerpool" => "app=any&dataset=any&requester=any",
                _ => "workerpool=any",
            };
            let (status, page) = self.get(&format!("/{kind}orders?{filters}&limit=1000")).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            all.extend(page["orders"].as_array().unwrap().iter().cloned());
        }
        all
    }

    /// A WebSocket client on `/ws?{query}`.
    pub(crate) async fn events(&self, query: &str) -> Events {
        let url = format!("{}?{query}", self.ws);
        let (stream, _) = tokio_tungstenite::connect_async(url).await.expect("a WebSocket");
        Events { stream }
    }

    /// Stops the service gracefully.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let outcome = tokio::time::timeout(WAIT, &mut self.task).await.expect("stops in time");
        outcome.expect("no panic").expect("a clean stop");
    }

    /// Kills the service where it stands, as a crash would.
    pub(crate) async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A WebSocket client of the market's events.
pub(crate) struct Events {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Events {
    /// The next event, within [`WAIT`].
    pub(crate) async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("an event in time")
                .expect("the stream is open")
                .expect("a message");
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                return serde_json::from_str(&text).expect("JSON events");
            }
        }
    }

    /// Reads events until one satisfies `wanted`; returns it and those before it.
    pub(crate) async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let mut seen = vec![];
        loop {
            let event = self.next().await;
            if wanted(&event) {
                return (event, seen);
            }
            seen.push(event);
        }
    }

    /// Waits for `event` about order `hash`.
    pub(crate) async fn order_event(&mut self, event: &str, hash: B256) -> Value {
        let hash = hash.to_string();
        self.until(|e| {
            e["type"] == "order" && e["event"] == event && e["order"]["orderHash"] == hash.as_str()
        })
        .await
        .0
    }
}

/// `amount` RLC in nRLC.
pub(crate) fn rlc(amount: f64) -> U256 {
    U256::from((amount * 1e9) as u64)
}

/// A hash out of a JSON string.
pub(crate) fn hash(value: &Value) -> B256 {
    value.as_str().expect("a hash string").parse().expect("a hash")
}
