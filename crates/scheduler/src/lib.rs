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
//! High availability. On PostgreSQL, several processes may run one pool: the holder of the
//! pool's lease acts, the others stand by and take over when it expires ([`LeaseConfig`]). The
//! active instance acts only while its lease is valid on its monotonic clock with a margin, and
//! its writes are fenced by the lease's token ([`store::Fence`]): an instance that lost the
//! lease (paused, cut off) sends no transaction, hands out no task and writes nothing, and
//! stops. Standbys answer workers with the active instance's URL.
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
mod lease;
mod metrics;
pub mod store;

use std::{future::Future, sync::Arc};

use poco_chain::{BlockRef, ChainClient, ClientConfig, EventFollower, FollowerConfig};
use tokio::{net::TcpListener, sync::Notify};
use tracing::{error, info, warn};

pub use config::{Admission, LeaseConfig, SchedulerConfig};
pub use engine::{DEFAULT_HAND_BACK_PAUSE, IN_FLIGHT_PER_SLOT, MAX_HAND_BACKS};
pub use error::{Error, Result};

use crate::{engine::Engine, lease::Lease, metrics::Metrics};

/// Runs the scheduler until `shutdown` resolves, serving the worker API on `listener`.
///
/// It first catches up with the chain from its checkpoint, then follows it, drives its tasks
/// and answers workers. If following the chain or driving the tasks fails for good, the
/// scheduler stops with that error rather than staying half alive.
///
/// On PostgreSQL, several instances of one pool may run at once ([`LeaseConfig`]): this one
/// serves at once, as a standby (every worker request is answered with the active instance's
/// URL, `/health` says `standby`), until it takes the pool's lease; then it catches up and acts.
/// When it loses the lease, it stops acting and returns [`Error::LeaseLost`].
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
    let lease = Arc::new(if store.is_shared() {
        let holder = format!("{:016x}", rand_id());
        let url = config.instance_url.clone().unwrap_or_default();
        info!(%holder, url = %url, "PostgreSQL: one of possibly several instances of the pool");
        Lease::shared(config.workerpool, holder, url, config.lease)
    } else {
        Lease::single()
    });
    let store = match lease.fence() {
        Some(fence) => store.fenced(fence),
        None => store,
    };
    let client_config =
        ClientConfig { confirmations: config.confirmations, ..ClientConfig::default() };
    let client =
        ChainClient::connect(&config.rpc_url, Some(config.wallet.clone()), client_config).await?;
    let engine = Arc::new(Engine::new(
        store.clone(),
        config.clone(),
        client.clone(),
        Arc::new(Metrics::default()),
        lease.clone(),
    ));

    if !store.is_shared() {
        // The only instance: it serves once it caught up, as it always did.
        let (mut follower, window) = follower(&engine, client).await?;
        chain::catch_up(&engine, &mut follower, window).await?;
        info!(workerpool = %config.workerpool, next_block = follower.next_block(), "scheduler caught up");
        lease.set_ready();
        let server = poco_http::serve("scheduler", listener, api::router(engine.clone()), shutdown);
        return active(engine, follower, window, server).await;
    }

    let server = poco_http::serve("scheduler", listener, api::router(engine.clone()), shutdown);
    let mut server = std::pin::pin!(server);
    tokio::select! {
        served = &mut server => return served.map_err(Error::from),
        acquired = lease::acquire(&lease, &store) => acquired?,
    }
    engine.activated();
    let mut holding = AbortOnDrop(tokio::spawn(lease::hold(lease.clone(), store.clone())));
    let outcome = tokio::select! {
        held = &mut holding.0 => critical("lease", held).and(Err(Error::LeaseLost("gone".into()))),
        outcome = async {
            let (mut follower, window) = follower(&engine, client).await?;
            chain::catch_up(&engine, &mut follower, window).await?;
            info!(
                workerpool = %config.workerpool,
                next_block = follower.next_block(),
                token = lease.token(),
                "scheduler caught up: active"
            );
            lease.set_ready();
            active(engine.clone(), follower, window, &mut server).await
        } => outcome,
    };
    drop(holding);
    match outcome {
        // Whatever failed, an instance whose lease ran out on its own clock (a pause, a cut
        // from the database) stops for that reason, and gives nothing up: the lease may be
        // another's already.
        Err(error) if !matches!(error, Error::LeaseLost(_)) && !lease.is_held() => {
            lease.drop_lease();
            Err(Error::LeaseLost(format!("it ran out while this instance was stalled ({error})")))
        }
        Err(Error::LeaseLost(why)) => Err(Error::LeaseLost(why)),
        outcome => {
            lease::release(&lease, &store).await;
            outcome
        }
    }
}

/// Follows the chain, drives the tasks and serves, until `server` ends or a part fails.
async fn active(
    engine: Arc<Engine>,
    follower: EventFollower,
    window: usize,
    server: impl Future<Output = std::io::Result<()>>,
) -> Result<()> {
    let wake = Arc::new(Notify::new());
    // Aborted when this returns or is dropped: no part of the scheduler outlives it.
    let mut following =
        AbortOnDrop(tokio::spawn(chain::follow(engine.clone(), follower, window, wake.clone())));
    let mut driving = AbortOnDrop(tokio::spawn(drive(engine, wake)));
    tokio::select! {
        served = server => served.map_err(Error::from),
        followed = &mut following.0 => critical("chain follower", followed),
        driven = &mut driving.0 => critical("engine", driven),
    }
}

/// A random id for this process's claim on the pool's lease.
fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
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
    let lease = Arc::new(Lease::single());
    let engine =
        Engine::new(store.clone(), config, client.clone(), Arc::new(Metrics::default()), lease);
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
                // The lease's keeper decides whether it is lost; meanwhile nothing is done.
                error if error.is_standby() => {
                    tracing::debug!(%error, "engine pass skipped: not active")
                }
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
