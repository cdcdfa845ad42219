//! The poco marketplace: an orderbook service that validates, stores and serves signed orders
//! and keeps them true to the chain.
//!
//! Where it sits: above `poco-primitives` (orders, EIP-712 hashing, the matching rules),
//! `poco-contracts` (bindings) and `poco-chain` (RPC client, event follower); below the SDK and
//! the `poco market run` command, which calls [`serve`]. Sellers (app, dataset and workerpool
//! owners) and buyers (requesters) publish signed orders here; requesters find the cheapest
//! compatible orders ([`Market::best_match`]) and match them on-chain themselves; the market
//! follows the chain and updates the book.
//!
//! The pieces:
//! * [`store`]: the [`Store`] trait and its SQLite and PostgreSQL backends (schema, migrations,
//!   exact integer prices, indexes for the book and best-match queries);
//! * [`market`]: publication (schema, signature: EOA, ERC-1271 or presigned; owner; remaining
//!   volume; stake coverage; open-order cap; idempotence), unpublication signed by the owner,
//!   queries;
//! * [`matching`]: best match, checked with [`poco_primitives::match_orders`] against the
//!   mirror of the chain, and explanations when nothing matches;
//! * `follower` (private): applies the chain's events, checkpointed in
//!   the same transaction as their effects;
//! * [`api`]: the axum HTTP API, its OpenAPI document, the `/ws` event stream, limits,
//!   `/health` and `/metrics`;
//! * [`config`]: [`MarketConfig`] and [`Limits`].

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod api;
pub mod chain;
pub mod config;
pub mod error;
mod follower;
pub mod market;
pub mod matching;
pub mod model;
pub mod store;

use std::{future::Future, sync::Arc};

use poco_chain::{ChainClient, ClientConfig, FollowerConfig};
use poco_primitives::PocoDomain;
use tokio::{net::TcpListener, sync::watch};
use tracing::info;

pub use chain::{ChainReader, RpcChain};
pub use config::{Limits, MarketConfig};
pub use error::{Error, Result};
pub use market::Market;
pub use matching::Wanted;
pub use store::Store;

/// A market ready to serve: the service and its follower, not yet listening.
pub struct Service {
    market: Arc<Market>,
    client: ChainClient,
    config: MarketConfig,
}

impl Service {
    /// Opens the database (migrating it) and connects to the chain.
    pub async fn open(config: MarketConfig) -> Result<Self> {
        let client = ChainClient::connect(&config.rpc_url, None, ClientConfig::default()).await?;
        let chain_id = client.chain_id().await?;
        if chain_id != config.deployment.chain_id {
            return Err(Error::Config(format!(
                "the RPC endpoint serves chain {chain_id}, the deployment is on chain {}",
                config.deployment.chain_id
            )));
        }
        let store =
            store::open(&config.effective_database_url(), config.database_connections).await?;
        let reader =
            Arc::new(RpcChain::new(client.clone(), config.deployment, config.confirmations));
        let domain = PocoDomain::new(config.deployment.chain_id, config.deployment.poco);
        let market = Market::new(store, reader, domain, config.limits);
        Ok(Self { market, client, config })
    }

    /// The market.
    pub fn market(&self) -> &Arc<Market> {
        &self.market
    }

    /// Serves the API on `listener` and follows the chain until `shutdown` completes.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let (stop, stopped) = watch::channel(false);
        let follower_config = FollowerConfig {
            confirmations: self.config.confirmations,
            max_range: self.config.max_block_range.max(1),
            poll_interval: self.config.poll_interval,
            ..FollowerConfig::default()
        };
        let mut follower = TaskGuard(tokio::spawn(follower::run(
            self.market.clone(),
            self.client.clone(),
            self.config.deployment,
            follower_config,
            stopped.clone(),
        )));
        let server = poco_http::Server::new("market", self.config.server);
        let state = api::ApiState::new(self.market.clone(), stopped.clone())
            .with_trusted_proxies(self.config.trusted_proxies.clone())
            .with_public_url(self.config.public_url.clone())
            .with_cors(self.config.cors.clone())
            .with_server_stats(server.stats().clone());
        let app = api::router(state);
        let address = listener.local_addr().map_err(|e| Error::io("listener", e))?;
        info!(
            target: "poco_market",
            %address,
            backend = self.market.store().backend(),
            trusted_proxies = ?self.config.trusted_proxies,
            "serving"
        );
        let mut server_stopped = stopped.clone();
        let server = server.serve(listener, app, async move {
            follower::stopped(&mut server_stopped).await;
        });
        let mut server = TaskGuard(tokio::spawn(server));
        let outcome = tokio::select! {
            () = shutdown => Ok(()),
            joined = &mut follower.0 => Err(Error::Internal(format!("the chain follower stopped: {joined:?}"))),
            joined = &mut server.0 => match joined {
                Ok(Ok(())) => Err(Error::Internal("the HTTP server stopped".into())),
                Ok(Err(e)) => Err(Error::io(address.to_string(), e)),
                Err(e) => Err(Error::Internal(format!("the HTTP server failed: {e}"))),
            },
        };
        let _ = stop.send(true);
        let _ = (&mut follower.0).await;
        let _ = (&mut server.0).await;
        info!(target: "poco_market", "stopped");
        outcome
    }
}

/// A task that is stopped when the future that spawned it is dropped: a killed service leaves
/// nothing running behind it.
struct TaskGuard<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for TaskGuard<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the market of `config` on `listener` until `shutdown` completes: opens (and migrates)
/// the database, connects to the chain, follows it and serves the HTTP API.
pub async fn serve(
    config: MarketConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    Service::open(config).await?.run(listener, shutdown).await
}
