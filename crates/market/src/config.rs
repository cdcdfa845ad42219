//! The market's configuration: where its data lives, which chain it follows, and its limits.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use poco_contracts::Deployment;
use poco_http::ServerLimits;

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
    /// Limits of the HTTP server: header-read and idle timeouts, open connections per
    /// client and in all.
    pub server: ServerLimits,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` header names the client (for
    /// rate limits and shares). Empty by default: the client is the socket's peer, and such
    /// headers are ignored, since anyone can write them.
    pub trusted_proxies: Vec<IpAddr>,
    /// The URL clients reach the market at (its public name, behind a proxy), named in its
    /// OpenAPI document; `None` names none.
    pub public_url: Option<String>,
    /// The origins of the web pages that may call the API from a browser (none by default).
    pub cors: crate::api::CorsOrigins,
}

/// Limits that keep one client from hurting the others.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest time a request may take before it is answered with a timeout.
    pub request_timeout: Duration,
    /// Per client (IPv4 address, IPv6 /64): sustained requests per second.
    pub ip_rate_per_second: f64,
    /// Per client: burst size.
    pub ip_burst: f64,
    /// Per order owner (publish, unpublish): sustained requests per second. Charged once the
    /// order's signature is verified, so that nobody can spend an owner's budget by replaying
    /// the owner's orders with a broken signature; refused writes are charged to the client
    /// that sent them, at the same rate.
    pub address_rate_per_second: f64,
    /// Per order owner (and per client, for refused writes): burst size.
    pub address_burst: f64,
    /// Open orders one wallet may have in the book, per order kind.
    pub max_open_orders_per_wallet: u64,
    /// Page size when a query gives none.
    pub default_page_size: u32,
    /// Largest page size a query may ask for.
    pub max_page_size: u32,
    /// Longest validity window of an unpublish authorization.
    pub max_authorization_lifetime: Duration,
    /// WebSocket streams served at once, all clients together.
    pub max_websocket_clients: usize,
    /// WebSocket streams one client (IPv4 address, IPv6 /64) may hold: keeps one host from
    /// taking every stream.
    pub max_websocket_clients_per_client: usize,
    /// A WebSocket stream from which nothing came (not even the answer to the market's
    /// pings, sent at a third of it) for this long is closed: dead or abandoned clients give
    /// their slot back.
    pub websocket_idle_timeout: Duration,
    /// A WebSocket client that does not take an event within this long is dropped: the
    /// market does not buffer a queue for a client that does not read.
    pub websocket_unread_timeout: Duration,
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
            max_websocket_clients_per_client: 16,
            websocket_idle_timeout: Duration::from_secs(60),
            websocket_unread_timeout: Duration::from_secs(10),
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
    /// blocks per log request, default [`Limits`] and [`ServerLimits`], no trusted proxy.
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
            server: ServerLimits::default(),
            trusted_proxies: Vec::new(),
            public_url: None,
            cors: crate::api::CorsOrigins::default(),
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
