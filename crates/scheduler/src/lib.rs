//! The scheduler a workerpool owner runs: it turns the pool's deals into tasks, hands them to
//! workers with signed authorizations, and drives each task through consensus, reveal, upload
//! and finalization, or reopens and claims what cannot finish.
//!
//! It sits beside the market, the worker and the result store in the data flow, on top of
//! `poco-chain` (events, transactions) and `poco-primitives` (ids, authorizations, the
//! credibility maths that decide how many replicas a task needs, the worker protocol). Its
//! state is in SQLite or PostgreSQL ([`store`]); killed at any moment and restarted, it resumes
//! every task from there and from the chain.
//!
//! Replication: for each task, the scheduler hands out exactly as many replicas as the
//! credibility maths say are needed to reach the requested trust, given the scores of the
//! workers already assigned; disagreeing contributions and silent workers make it hand out
//! more; it never gives a task to the same worker twice, unless the worker handed it back. A
//! committee deal's task goes to the members the contract drew for its seats, and to them only.
//!
//! Hand-backs. A worker that cannot keep a task it was given (its disk is full: the task's
//! state cannot be saved) hands it back at once, with the cause, instead of dropping it; the
//! scheduler frees the replica, logs the cause in the task's log and gives the task to the next
//! worker that asks, without waiting for the replica timeout. Only the worker holding the
//! replica can hand it back (the request is signed), only before it reported a result and while
//! the chain shows no contribution of it; the same worker may be given the task again
//! ([`SchedulerConfig::hand_back_pause`] later, at most [`MAX_HAND_BACKS`] times), so a worker
//! whose disk filled up can take it again once it has room. A worker also says in its
//! heartbeats when it is unhealthy (its data folder short of space): it is given no work until
//! it says it is well.
//!
//! Chain reorganisations. The scheduler acts on blocks [`SchedulerConfig::confirmations`]
//! deep, and reads the state it acts on (scores, bonds, committee seats) there too. When the
//! chain replaces blocks it already applied, its follower reports the fork point, and the
//! scheduler brings what it holds of the chain back to the block before it (see
//! [`store::Store::rollback`]) before it applies the new chain:
//! - a deal matched in a replaced block is withdrawn: its tasks and replicas are deleted, a
//!   worker running one is told to abort it, nobody is handed it, and no transaction is sent
//!   for it (a phantom deal costs the pool nothing);
//! - a task a replaced block changed is set back to what the chain said of it before (stage,
//!   consensus, contributions, reveals), from the events recorded with it;
//! - a contribution that was undone leaves its replica pending, held by its worker, as if the
//!   worker had just computed it. The worker's transaction may be mined again on the new chain
//!   (it was signed with the scheduler's authorization and may still be in the network), so
//!   handing the task to another worker at once could get it computed, and paid from the
//!   pool's share, twice. The seat is kept until the contribution comes back or the replica
//!   expires as any silent one does (the worker stops renewing it, or its contribution
//!   deadline passes); the contract never lets one worker contribute twice to a task, and the
//!   scheduler hands a task again to a worker only if the chain showed no contribution of it
//!   when it handed the task back, so no worker is paid twice.
//!
//! The wallet's nonce is read from the chain again after a reorganisation (it may have dropped
//! the scheduler's own transactions, which are sent again as the engine finds their steps
//! undone).
//!
//! Who works for the pool is the operator's rule ([`Admission`]: an allow-list, the workers
//! bonded to the pool on-chain, or, when asked explicitly, anyone). A worker's report changes
//! the scheduler's state only when it comes from the holder of the replica, in the state where
//! that report is expected; a result is accepted only at one of the pool's result stores.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod api;
mod chain;
mod config;
mod engine;
mod error;
mod metrics;
pub mod store;

use std::{future::Future, sync::Arc};

use poco_chain::{BlockRef, ChainClient, ClientConfig, EventFollower, FollowerConfig};
use tokio::{net::TcpListener, sync::Notify};
use tracing::{error, info, warn};

pub use config::{Admission, SchedulerConfig};
pub use engine::{DEFAULT_HAND_BACK_PAUSE, IN_FLIGHT_PER_SLOT, MAX_HAND_BACKS};
pub use error::{Error, Result};

use crate::{engine::Engine, metrics::Metrics};

/// Runs the scheduler until `shutdown` resolves, serving the worker API on `listener`.
///
/// It first catches up with the chain from its checkpoint, then follows it, drives its tasks
/// and answers workers. If following the chain or driving the tasks fails for good, the
/// scheduler stops with that error rather than staying half alive.
pub async fn run(
    config: SchedulerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let config = Arc::new(config.validated()?);
    match &config.admission {
        Admission::Open => {
            warn!("admission is OPEN: any stranger with a wallet can register and be handed tasks")
        }
        Admission::AllowList(workers) if workers.is_empty() => {
            warn!("admission: the allow-list is empty, no worker can work for the pool");
        }
        Admission::AllowList(workers) => {
            info!(workers = workers.len(), "admission: the allow-listed workers only");
        }
        Admission::Bonded => info!(
            cache_secs = config.bond_cache.as_secs_f64(),
            "admission: workers holding a bond in the pool only"
        ),
    }
    let store = store::Store::open(&config.database_url).await?;
    let client_config =
        ClientConfig { confirmations: config.confirmations, ..ClientConfig::default() };
    let client =
        ChainClient::connect(&config.rpc_url, Some(config.wallet.clone()), client_config).await?;
    let engine =
        Arc::new(Engine::new(store, config.clone(), client.clone(), Arc::new(Metrics::default())));

    let (mut follower, window) = follower(&engine, client).await?;
    chain::catch_up(&engine, &mut follower, window).await?;
    info!(workerpool = %config.workerpool, next_block = follower.next_block(), "scheduler caught up");

    let wake = Arc::new(Notify::new());
    // Aborted when `run` returns or is dropped: no part of the scheduler outlives it.
    let mut following =
        AbortOnDrop(tokio::spawn(chain::follow(engine.clone(), follower, window, wake.clone())));
    let mut driving = AbortOnDrop(tokio::spawn(drive(engine.clone(), wake)));
    let server = poco_http::serve("scheduler", listener, api::router(engine), shutdown);
    tokio::select! {
        served = server => served.map_err(Error::from),
        followed = &mut following.0 => critical("chain follower", followed),
        driven = &mut driving.0 => critical("engine", driven),
    }
}

/// The follower of the engine's chain, from the store's checkpoint and recent blocks, and the
/// number of recent blocks kept.
async fn follower(engine: &Engine, client: ChainClient) -> Result<(EventFollower, usize)> {
    let config = &engine.config;
    let start = engine.store.checkpoint().await?.unwrap_or(config.deployment.block);
    let recent = engine.store.recent_blocks().await?;
    let follower_config =
        FollowerConfig { confirmations: config.confirmations, ..FollowerConfig::default() };
    let follower = EventFollower::protocol(client, &config.deployment, start, follower_config)
        .with_applied(recent.into_iter().map(|(number, hash)| BlockRef { number, hash }));
    Ok((follower, follower_config.window))
}

/// Opens the store of `config` and applies the chain to it up to the confirmed head, repairing
/// reorganisations on the way, as [`run`] does before it serves; nothing is sent to the chain
/// and nobody is served. It shows what the scheduler's database holds of the chain (a fresh
/// database: what it derives from the chain alone).
pub async fn sync(config: SchedulerConfig) -> Result<store::Store> {
    let config = Arc::new(config.validated()?);
    let store = store::Store::open(&config.database_url).await?;
    let client_config =
        ClientConfig { confirmations: config.confirmations, ..ClientConfig::default() };
    let client = ChainClient::connect(&config.rpc_url, None, client_config).await?;
    let engine = Engine::new(store.clone(), config, client.clone(), Arc::new(Metrics::default()));
    let (mut follower, window) = follower(&engine, client).await?;
    chain::catch_up(&engine, &mut follower, window).await?;
    Ok(store)
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The engine loop: a pass every tick, or at once when the chain brought news.
async fn drive(engine: Arc<Engine>, wake: Arc<Notify>) -> Result<()> {
    loop {
        if let Err(error) = engine.tick().await {
            match error {
                Error::Chain(error) => tracing::warn!(%error, "engine pass failed; retrying"),
                other => return Err(other),
            }
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(engine.config.tick) => {}
        }
    }
}

fn critical(name: &str, outcome: Result<Result<()>, tokio::task::JoinError>) -> Result<()> {
    let error = match outcome {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(error)) => error,
        Err(join) => Error::Corrupt(format!("{name} panicked: {join}")),
    };
    error!(%error, "{name} stopped; stopping the scheduler");
    Err(error)
}
