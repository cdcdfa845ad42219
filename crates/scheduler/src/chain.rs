//! Following the chain: the pool's deals and its tasks' events, applied to the store with the
//! checkpoint in one transaction, and the repair of what a chain reorganisation replaced
//! ([`Engine::repair`]) before the new chain is applied from its fork point.

use std::{sync::Arc, time::Duration};

use poco_chain::{EventBatch, EventFollower, Followed, ProtocolEvent, follower::decode};
use poco_contracts::bindings::IPoco::IPocoEvents;
use poco_primitives::Deal;
use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::{
    Result,
    engine::Engine,
    store::{ChainChange, LocatedChange},
};

/// The store changes a batch of logs brings, where they happened.
fn changes(engine: &Engine, batch: &EventBatch) -> Vec<LocatedChange> {
    let config = &engine.config;
    let mut changes = Vec::new();
    for log in &batch.logs {
        let Some(located) = decode(&config.deployment, log) else { continue };
        let ProtocolEvent::Poco(event) = located.event else { continue };
        let change = match *event {
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
        };
        changes.push(LocatedChange { block: located.block, log_index: located.log_index, change });
    }
    changes
}

/// Applies every batch up to the chain's confirmed head, repairing reorganisations on the way,
/// and records the batches' last blocks among the `window` most recent; returns whether
/// anything changed.
pub(crate) async fn catch_up(
    engine: &Engine,
    follower: &mut EventFollower,
    window: usize,
) -> Result<bool> {
    let mut applied = false;
    loop {
        let checkpoint = follower.next_block();
        let Some(followed) = follower.poll().await? else { return Ok(applied) };
        match followed {
            Followed::Batch(batch) => {
                let changes = changes(engine, &batch);
                let tip = Some((batch.hash, window));
                engine.store.apply(&changes, batch.next_block(), tip).await?;
                applied |= !changes.is_empty();
                debug!(
                    from = batch.from,
                    to = batch.to,
                    changes = changes.len(),
                    "followed the chain"
                );
            }
            Followed::Reorg(reorg) => {
                engine.repair(&reorg, checkpoint).await?;
                applied = true;
            }
        }
    }
}

/// Follows the chain for ever, waking the engine when something changed. RPC failures are
/// retried; a store failure stops the scheduler.
pub(crate) async fn follow(
    engine: Arc<Engine>,
    mut follower: EventFollower,
    window: usize,
    wake: Arc<Notify>,
) -> Result<()> {
    let poll = Duration::from_millis(100);
    loop {
        match catch_up(&engine, &mut follower, window).await {
            Ok(true) => wake.notify_one(),
            Ok(false) => tokio::time::sleep(poll).await,
            Err(crate::Error::Chain(error)) => {
                warn!(%error, "following the chain failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            // The lease's keeper decides whether it is lost; meanwhile nothing is applied.
            Err(error) if error.is_standby() => {
                debug!(%error, "not following the chain: not active");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error),
        }
    }
}
