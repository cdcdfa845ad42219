//! The market's configuration: where its data lives, which chain it follows, and its limits.

use std::{path::PathBuf, time::Duration};

use poco_contracts::Deployment;

/// Everything [`crate::serve`] needs. [`MarketConfig::new`] fills in sane defaults around the
/// two things that have none: the chain's RPC endpoint and the protocol's deployment.
#[derive(Debug, Clone)]
pub struct MarketConfig {
    /// Directory of the SQLite database (`market.sqlite`), created if missing.
    pub data_dir: PathBuf,
    /// A `postgres://` URL to use PostgreSQL instead of SQLite (several instances may share
    /// it), or a `sqlite:` URL for a database file elsewhere.
    pub database_url: Option<String>,
    /// Connections of the database pool.
    pub database_connections: u32,
    /// The chain's JSON-RPC endpoint.
    pub rpc_url: String,
    /// Where the protocol lives on that chain.
    pub deployment: Deployment,
    /// Blocks on top of a block before its events change the book.
    pub confirmations: u64,
    /// How often the follower looks for new blocks when caught up.
    pub poll_interval: Duration,
    /// Most blocks read per `eth_getLogs` request.
    pub max_block_range: u64,
    /// Request limits.
    pub limits: Limits,
}

/// Limits that keep one client from hurting the others.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest time a request may take before it is answered with a timeout.
    pub request_timeout: Duration,
    /// Per client IP address: sustained requests per second.
    pub ip_rate_per_second: f64,
    /// Per client IP address: burst size.
    pub ip_burst: f64,
    /// Per signing address (publish, unpublish): sustained requests per second.
    pub address_rate_per_second: f64,
    /// Per signing address: burst size.
    pub address_burst: f64,
    /// Open orders one wallet may have in the book, per order kind.
    pub max_open_orders_per_wallet: u64,
    /// Page size when a query gives none.
    pub default_page_size: u32,
    /// Largest page size a query may ask for.
    pub max_page_size: u32,
    /// Longest validity window of an unpublish authorization.
    pub max_authorization_lifetime: Duration,
    /// WebSocket clients served at once.
    pub max_websocket_clients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            ip_rate_per_second: 50.0,
            ip_burst: 200.0,
            address_rate_per_second: 10.0,
            address_burst: 100.0,
            max_open_orders_per_wallet: 50,
            default_page_size: 20,
            max_page_size: 1_000,
            max_authorization_lifetime: Duration::from_secs(3_600),
            max_websocket_clients: 1_000,
        }
    }
}

impl Limits {
    /// No rate limit and a high order cap: for benchmarks and fuzzing from one address.
    pub fn unlimited() -> Self {
        Self {
            ip_rate_per_second: f64::INFINITY,
            ip_burst: f64::INFINITY,
            address_rate_per_second: f64::INFINITY,
            address_burst: f64::INFINITY,
            max_open_orders_per_wallet: u64::MAX,
            ..Self::default()
        }
    }
}

impl MarketConfig {
    /// The defaults: SQLite under `data_dir`, no confirmation depth, 200 ms polling, 1,000
    /// blocks per log request, default [`Limits`].
    pub fn new(
        data_dir: impl Into<PathBuf>,
        rpc_url: impl Into<String>,
        deployment: Deployment,
    ) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            database_connections: 8,
            rpc_url: rpc_url.into(),
            deployment,
            confirmations: 0,
            poll_interval: Duration::from_millis(200),
            max_block_range: 1_000,
            limits: Limits::default(),
        }
    }

    /// The database URL in effect: the configured one, or the SQLite file under the data
    /// directory.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("market.sqlite").display()),
        }
    }
}
