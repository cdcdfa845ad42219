//! Following the chain: the pool's deals and its tasks' events, applied to the store with the
//! checkpoint in one transaction.

use std::{sync::Arc, time::Duration};

use poco_chain::{EventBatch, EventFollower, ProtocolEvent, follower::decode};
use poco_contracts::bindings::IPoco::IPocoEvents;
use poco_primitives::Deal;
use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::{Result, engine::Engine, store::ChainChange};

/// The store changes a batch of logs brings.
fn changes(engine: &Engine, batch: &EventBatch) -> Vec<ChainChange> {
    let config = &engine.config;
    let mut changes = Vec::new();
    for log in &batch.logs {
        let Some(located) = decode(&config.deployment, log) else { continue };
        let ProtocolEvent::Poco(event) = located.event else { continue };
        changes.push(match *event {
            IPocoEvents::DealCreated(e) if e.workerpool == config.workerpool => {
                ChainChange::Deal { deal: Box::new(Deal::from(e.deal)), params: e.params }
            }
            IPocoEvents::TaskInitialize(e) => ChainChange::Initialized(e.taskid),
            IPocoEvents::TaskContribute(e) => ChainChange::Contributed {
                task_id: e.taskid,
                worker: e.worker,
                result_hash: e.resultHash,
            },
            IPocoEvents::TaskConsensus(e) => {
                ChainChange::Consensus { task_id: e.taskid, result_hash: e.consensus }
            }
            IPocoEvents::TaskReveal(e) => {
                ChainChange::Revealed { task_id: e.taskid, worker: e.worker, digest: e.digest }
            }
            IPocoEvents::TaskReopen(e) => ChainChange::Reopened(e.taskid),
            IPocoEvents::TaskFinalize(e) => ChainChange::Finalized(e.taskid),
            IPocoEvents::TaskClaimed(e) => ChainChange::Claimed(e.taskid),
            _ => continue,
        });
    }
    changes
}

/// Applies every batch up to the chain's confirmed head; returns whether anything was applied.
pub(crate) async fn catch_up(engine: &Engine, follower: &mut EventFollower) -> Result<bool> {
    let mut applied = false;
    while let Some(batch) = follower.poll().await? {
        let changes = changes(engine, &batch);
        engine.store.apply(&changes, batch.next_block()).await?;
        applied |= !changes.is_empty();
        debug!(from = batch.from, to = batch.to, changes = changes.len(), "followed the chain");
    }
    Ok(applied)
}

/// Follows the chain for ever, waking the engine when something changed. RPC failures are
/// retried; a store failure stops the scheduler.
pub(crate) async fn follow(
    engine: Arc<Engine>,
    mut follower: EventFollower,
    wake: Arc<Notify>,
) -> Result<()> {
    let poll = Duration::from_millis(100);
    loop {
        match catch_up(&engine, &mut follower).await {
            Ok(true) => wake.notify_one(),
            Ok(false) => tokio::time::sleep(poll).await,
            Err(crate::Error::Chain(error)) => {
                warn!(%error, "following the chain failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error),
        }
    }
}
