//! The chain follower: keeps the book and the mirror true to the chain.
//!
//! One instance at a time follows (the store grants leadership: always for SQLite, by a
//! PostgreSQL advisory lock otherwise). It reads the protocol's events from the stored
//! checkpoint with [`EventFollower::protocol`], confirmed blocks only, and applies each batch
//! with the new checkpoint in one transaction ([`Store::apply_batch`]): after a crash or a
//! restart it resumes from the checkpoint, and nothing is lost or applied twice.
//!
//! What changes the book:
//! - `OrdersMatched` lowers the orders' remaining volume (and fills them at zero);
//! - `Closed*Order` cancels;
//! - a registry `Transfer` kills the previous owner's orders for that asset;
//! - any event that touches an account's free balance (deposit, withdrawal, the locks of a
//!   match, a contribution's stake, rewards) has its balance read again at the confirmed
//!   head, and its workerpool and request orders that the balance no longer covers die;
//! - `DealCreated` indexes the deal;
//! - `MemberJoined`, `MemberLeft` and `MemberExpelled` count a workerpool's active members,
//!   so that the best match never proposes a pool too small for a committee deal.
//!
//! Every batch is stored with the hash of its last block. When the follower reports that a
//! chain reorganisation replaced blocks the market applied ([`poco_chain::Reorg`]), the market
//! reads again, at the hash of the newest block the chain still holds, what the replaced
//! blocks changed (consumed volumes with `viewConsumed`, registry owners and policies, member
//! counts, balances), rolls the store back to that block ([`Store::rollback`]: deals of the
//! replaced blocks removed with a `deal_removed` event each, orders decided again), and follows
//! the new chain from the fork point. A reorganisation deeper than the stored blocks re-syncs
//! the mirror from the deployment's block. Each repair is logged (a warning with the fork
//! point) and counted (`poco_market_follower_reorgs_total`, `..._undone_blocks_total`,
//! `..._last_fork_point`).
//!
//! Who would gain from a reorganisation the market did not repair:
//! - a requester (or any seller) whose match was undone, if the market kept the order as
//!   filled: the order would be lost from the book although the chain can still match it. The
//!   rollback puts it back, open with the volume the chain says is left;
//! - a buyer shown a phantom deal, or a seller whose volume the book shows as consumed by one:
//!   deals of replaced blocks are removed, and volumes are the chain's;
//! - a requester whose deposit was undone, if the market kept its request as covered: balances
//!   read since the fork point are read again, and uncovered orders die as a publication would
//!   be refused.
//!
//! Reads the market acts on are made at the confirmed head (balances, owners, presignatures,
//! contract signatures), never at the latest block, which a reorganisation within the
//! confirmation depth may still replace.

use std::{collections::BTreeSet, sync::Arc, sync::atomic::Ordering, time::Duration};

use alloy::{
    eips::BlockId,
    primitives::{Address, B256, U256},
    providers::DynProvider,
};
use futures::{StreamExt as _, TryStreamExt as _, future::try_join_all, stream};
use poco_chain::{
    BlockRef, ChainClient, EventBatch, EventFollower, Followed, FollowerConfig, ProtocolEvent,
    Reorg, follower::decode,
};
use poco_contracts::{
    Deployment,
    bindings::{AppRegistry, DatasetRegistry, IPoco::IPocoEvents, WorkerpoolRegistry},
};
use poco_primitives::{Deal, OrderKind};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::{
    error::{Error, Result},
    market::Market,
    model::TaskEventKind,
    store::{AssetEntry, ChainBatch, ChainEvent, LocatedChainEvent, Rollback},
};

/// How many chain reads a repair makes at once.
const REPAIR_READS: usize = 8;

/// Follows the chain for `market` until `shutdown` turns true.
pub(crate) async fn run(
    market: Arc<Market>,
    client: ChainClient,
    deployment: Deployment,
    config: FollowerConfig,
    shutdown: watch::Receiver<bool>,
) {
    let mut stop = shutdown.clone();
    let status = market.follower_status().clone();
    let store = market.store().clone();
    let pause = |seconds: f64| pause(shutdown.clone(), seconds);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let _leadership = match store.lead().await {
            Ok(Some(leadership)) => leadership,
            Ok(None) => {
                status.leader.store(false, Ordering::Relaxed);
                if let Ok(Some(checkpoint)) = store.checkpoint().await {
                    status.checkpoint.store(checkpoint, Ordering::Relaxed);
                }
                if pause(config.poll_interval.as_secs_f64() * 10.0).await {
                    return;
                }
                continue;
            }
            Err(error) => {
                warn!(target: "poco_market::follower", %error, "could not try to lead");
                if pause(1.0).await {
                    return;
                }
                continue;
            }
        };
        status.leader.store(true, Ordering::Relaxed);
        let from = match store.checkpoint().await {
            Ok(checkpoint) => checkpoint.unwrap_or(deployment.block),
            Err(error) => {
                warn!(target: "poco_market::follower", %error, "could not read the checkpoint");
                if pause(1.0).await {
                    return;
                }
                continue;
            }
        };
        let recent = match store.recent_blocks().await {
            Ok(recent) => recent,
            Err(error) => {
                warn!(target: "poco_market::follower", %error, "could not read the recent blocks");
                if pause(1.0).await {
                    return;
                }
                continue;
            }
        };
        info!(target: "poco_market::follower", from, "following the chain");
        status.checkpoint.store(from, Ordering::Relaxed);
        let mut follower = EventFollower::protocol(client.clone(), &deployment, from, config)
            .with_applied(recent.into_iter().map(|(number, hash)| BlockRef { number, hash }));
        loop {
            let checkpoint = follower.next_block();
            let polled = tokio::select! {
                polled = follower.poll() => polled,
                () = stopped(&mut stop) => return,
            };
            match polled {
                Ok(Some(Followed::Reorg(reorg))) => {
                    warn!(
                        target: "poco_market::follower",
                        fork_point = reorg.fork_point,
                        common = ?reorg.common.map(|block| block.number),
                        replaced = reorg.replaced.number,
                        undone_blocks = checkpoint.saturating_sub(reorg.fork_point),
                        "chain reorganisation: undoing the replaced blocks, then following the \
                         new chain from the fork point"
                    );
                    match repair(&market, &deployment, &client, config, reorg, checkpoint).await {
                        Ok(true) => {
                            market.forget_mirror_hints();
                            status.checkpoint.store(reorg.fork_point, Ordering::Relaxed);
                            status.reorgs.fetch_add(1, Ordering::Relaxed);
                            status.last_fork_point.store(reorg.fork_point, Ordering::Relaxed);
                            status.undone_blocks.fetch_add(
                                checkpoint.saturating_sub(reorg.fork_point),
                                Ordering::Relaxed,
                            );
                        }
                        Ok(false) => {
                            info!(target: "poco_market::follower", "checkpoint moved elsewhere; resuming from it");
                            break;
                        }
                        Err(error) => {
                            warn!(target: "poco_market::follower", %error, "could not repair after a reorganisation; retrying");
                            if pause(1.0).await {
                                return;
                            }
                            break;
                        }
                    }
                }
                Ok(Some(Followed::Batch(batch))) => {
                    match apply(&market, &deployment, &client, config, batch).await {
                        Ok(true) => {
                            status.checkpoint.store(follower.next_block(), Ordering::Relaxed);
                            status.batches.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(false) => {
                            info!(target: "poco_market::follower", "checkpoint moved elsewhere; resuming from it");
                            break;
                        }
                        Err(error) => {
                            warn!(target: "poco_market::follower", %error, "could not apply a batch; retrying");
                            if pause(1.0).await {
                                return;
                            }
                            break;
                        }
                    }
                }
                Ok(None) => {
                    if let Ok(head) = client.block_number().await {
                        let confirmed = head.saturating_sub(config.confirmations);
                        status.confirmed_head.store(confirmed, Ordering::Relaxed);
                    }
                    if pause(config.poll_interval.as_secs_f64()).await {
                        return;
                    }
                }
                Err(error) => {
                    warn!(target: "poco_market::follower", %error, "could not read the chain; retrying");
                    if pause(1.0).await {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

/// Waits `seconds`; true if asked to stop meanwhile.
async fn pause(mut shutdown: watch::Receiver<bool>, seconds: f64) -> bool {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs_f64(seconds)) => false,
        () = stopped(&mut shutdown) => true,
    }
}

/// Completes when `shutdown` turns true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Decodes, reads the touched balances and applies one batch.
async fn apply(
    market: &Market,
    deployment: &Deployment,
    client: &ChainClient,
    config: FollowerConfig,
    batch: EventBatch,
) -> Result<bool> {
    let mut events = Vec::new();
    let mut touched = BTreeSet::new();
    let mut scored = BTreeSet::new();
    for log in &batch.logs {
        let Some(located) = decode(deployment, log) else { continue };
        touched.extend(touched_accounts(&located.event));
        scored.extend(proved_worker(&located.event));
        let (block, transaction, log_index) =
            (located.block, located.transaction, located.log_index);
        let history = account_history(&located.event);
        for event in convert(deployment, located.event).into_iter().chain(history) {
            events.push(LocatedChainEvent { event, block, transaction, log_index });
        }
    }
    let watched = if touched.is_empty() {
        vec![]
    } else {
        market.store().watched_accounts(touched.into_iter().collect()).await?
    };
    let head = client.block_number().await?;
    let balance_block = head.saturating_sub(config.confirmations).max(batch.to);
    market.follower_status().confirmed_head.store(balance_block, Ordering::Relaxed);
    let balances = try_join_all(watched.iter().map(|account| async move {
        Ok::<_, crate::error::Error>((
            *account,
            market.chain().balance(*account, balance_block).await?,
        ))
    }))
    .await?;
    // The scores the batch's outcomes changed, as the chain holds them after it.
    let poco = &client.poco(deployment.poco);
    let scores = try_join_all(scored.into_iter().map(|worker| async move {
        let score = poco
            .viewScore(worker)
            .block(BlockId::number(batch.to))
            .call()
            .await
            .map_err(contract)?;
        Ok::<_, Error>((worker, u64::try_from(score).unwrap_or(u64::MAX)))
    }))
    .await?;
    for (worker, score) in scores {
        events.push(LocatedChainEvent {
            event: ChainEvent::Score { worker, score },
            block: batch.to,
            transaction: B256::ZERO,
            log_index: u64::MAX,
        });
    }
    debug!(target: "poco_market::follower", from = batch.from, to = batch.to, events = events.len(), balances = balances.len(), "applying");
    let count = events.len() as u64;
    let chain_batch =
        ChainBatch { from: batch.from, next: batch.next_block(), events, balances, balance_block };
    let applied = market.store().apply_followed(chain_batch, batch.hash, config.window).await?;
    if applied {
        market.follower_status().events.fetch_add(count, Ordering::Relaxed);
    }
    Ok(applied)
}

/// Rolls the store back to the state of the newest block the chain still holds (or, past the
/// window, to nothing), reading from the chain at that block's hash what the replaced blocks
/// changed. Returns false when the store's checkpoint is not `checkpoint` any more.
async fn repair(
    market: &Market,
    deployment: &Deployment,
    client: &ChainClient,
    config: FollowerConfig,
    reorg: Reorg,
    checkpoint: u64,
) -> Result<bool> {
    let store = market.store();
    let (at, balance_block) = match reorg.common {
        Some(common) => (BlockId::hash(common.hash), common.number),
        None => {
            let head = client.block_number().await?;
            let confirmed = head.saturating_sub(config.confirmations);
            (BlockId::number(confirmed), confirmed)
        }
    };
    let targets = store.rollback_targets(reorg.common.map(|_| reorg.fork_point)).await?;
    let reader = ChainAt { client, deployment, at };
    let consumed = read_all(targets.consumed, |hash| reader.consumed(hash)).await?;
    let assets = read_all(targets.assets, |target| reader.asset(target)).await?;
    let balances = read_all(targets.accounts, |account| reader.balance(account)).await?;
    let rollback = Rollback {
        checkpoint,
        fork_point: reorg.fork_point,
        common: reorg.common.map(|block| block.number),
        consumed,
        assets,
        balances,
        balance_block,
    };
    debug!(
        target: "poco_market::follower",
        consumed = rollback.consumed.len(),
        assets = rollback.assets.len(),
        balances = rollback.balances.len(),
        "read what the replaced blocks changed"
    );
    store.rollback(rollback).await
}

/// Reads `read(item)` for every item, a few at a time.
async fn read_all<T, R, F, Fut>(items: Vec<T>, read: F) -> Result<Vec<R>>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<R>>,
{
    stream::iter(items.into_iter().map(read)).buffered(REPAIR_READS).try_collect().await
}

/// The chain's state at one block, as a repair reads it.
struct ChainAt<'a> {
    client: &'a ChainClient,
    deployment: &'a Deployment,
    at: BlockId,
}

// By value: it is a `map_err` adapter.
#[allow(clippy::needless_pass_by_value)]
fn contract(error: alloy::contract::Error) -> Error {
    Error::Contract(error.to_string())
}

impl ChainAt<'_> {
    fn provider(&self) -> DynProvider {
        self.client.provider().clone()
    }

    async fn consumed(&self, hash: B256) -> Result<(B256, U256)> {
        let poco = self.client.poco(self.deployment.poco);
        let consumed = poco.viewConsumed(hash).block(self.at).call().await.map_err(contract)?;
        Ok((hash, consumed))
    }

    async fn balance(&self, account: Address) -> Result<(Address, U256)> {
        let poco = self.client.poco(self.deployment.poco);
        let balance = poco.balanceOf(account).block(self.at).call().await.map_err(contract)?;
        Ok((account, balance))
    }

    /// The registry entry of `asset` (`None`: not registered).
    async fn asset(
        &self,
        (asset, kind): (Address, OrderKind),
    ) -> Result<(Address, Option<AssetEntry>)> {
        let deployment = self.deployment;
        let (owner, worker_stake_ratio, scheduler_reward_ratio, active_members) = match kind {
            OrderKind::App => {
                let registry = AppRegistry::new(deployment.app_registry, self.provider());
                let owner =
                    registry.ownerOrZero(asset).block(self.at).call().await.map_err(contract)?;
                (owner, 0, 0, 0)
            }
            OrderKind::Dataset => {
                let registry = DatasetRegistry::new(deployment.dataset_registry, self.provider());
                let owner =
                    registry.ownerOrZero(asset).block(self.at).call().await.map_err(contract)?;
                (owner, 0, 0, 0)
            }
            OrderKind::Workerpool | OrderKind::Request => {
                let registry =
                    WorkerpoolRegistry::new(deployment.workerpool_registry, self.provider());
                let entry =
                    registry.ownerAndPolicy(asset).block(self.at).call().await.map_err(contract)?;
                let poco = self.client.poco(deployment.poco);
                let members =
                    poco.countMembers(asset).block(self.at).call().await.map_err(contract)?;
                let ratio = |value: U256| u8::try_from(value).unwrap_or(u8::MAX);
                (
                    entry.owner,
                    ratio(entry.workerStakeRatio),
                    ratio(entry.schedulerRewardRatio),
                    u64::try_from(members).unwrap_or(u64::MAX),
                )
            }
        };
        let entry = (!owner.is_zero()).then_some(AssetEntry {
            kind,
            owner,
            worker_stake_ratio,
            scheduler_reward_ratio,
            active_members,
        });
        Ok((asset, entry))
    }
}

/// The accounts whose free balance an event may change.
fn touched_accounts(event: &ProtocolEvent) -> Vec<Address> {
    let ProtocolEvent::Poco(event) = event else { return vec![] };
    match &**event {
        IPocoEvents::Deposit(e) => vec![e.account],
        IPocoEvents::Withdraw(e) => vec![e.account],
        IPocoEvents::DealCreated(e) => vec![e.deal.sponsor, e.deal.scheduler, e.deal.requester],
        IPocoEvents::DealSponsored(e) => vec![e.sponsor],
        IPocoEvents::TaskContribute(e) => vec![e.worker],
        IPocoEvents::AccurateContribution(e) => vec![e.worker],
        IPocoEvents::FaultyContribution(e) => vec![e.worker],
        _ => vec![],
    }
}

/// The store's view of a protocol event; `None` for events that do not change the book.
/// The worker an event proved right or wrong: its score may have changed.
fn proved_worker(event: &ProtocolEvent) -> Option<Address> {
    let ProtocolEvent::Poco(event) = event else { return None };
    match &**event {
        IPocoEvents::AccurateContribution(e) => Some(e.worker),
        IPocoEvents::FaultyContribution(e) => Some(e.worker),
        _ => None,
    }
}

/// The account movement an event records, beside what it changes in the book.
fn account_history(event: &ProtocolEvent) -> Option<ChainEvent> {
    use crate::model::AccountEventKind as Kind;
    let ProtocolEvent::Poco(event) = event else { return None };
    let (account, kind, workerpool, amount) = match &**event {
        IPocoEvents::Deposit(e) => (e.account, Kind::Deposit, None, Some(e.amount)),
        IPocoEvents::Withdraw(e) => (e.account, Kind::Withdraw, None, Some(e.amount)),
        IPocoEvents::MemberJoined(e) => (e.worker, Kind::MemberJoined, Some(e.workerpool), None),
        IPocoEvents::MemberLeft(e) => (e.worker, Kind::MemberLeft, Some(e.workerpool), None),
        IPocoEvents::MemberExpelled(e) => {
            (e.worker, Kind::MemberExpelled, Some(e.workerpool), Some(e.penalty))
        }
        IPocoEvents::BondReleased(e) => {
            (e.worker, Kind::BondReleased, Some(e.workerpool), Some(e.amount))
        }
        _ => return None,
    };
    Some(ChainEvent::Account { account, kind, workerpool, amount })
}

/// A task's lifecycle event.
fn task(
    task_id: B256,
    kind: TaskEventKind,
    account: Option<Address>,
    word: Option<B256>,
    results: Option<alloy::primitives::Bytes>,
) -> ChainEvent {
    ChainEvent::Task { task_id, kind, account, word, results }
}

fn convert(deployment: &Deployment, event: ProtocolEvent) -> Option<ChainEvent> {
    Some(match event {
        ProtocolEvent::AssetTransfer { registry, asset, from, to } => {
            let kind = if registry == deployment.app_registry {
                OrderKind::App
            } else if registry == deployment.dataset_registry {
                OrderKind::Dataset
            } else {
                OrderKind::Workerpool
            };
            ChainEvent::AssetTransfer { kind, asset, from, to }
        }
        ProtocolEvent::PolicyUpdate(update) => ChainEvent::PolicyUpdate {
            workerpool: update.workerpool,
            worker_stake_ratio: u8::try_from(update.newWorkerStakeRatioPolicy).ok()?,
            scheduler_reward_ratio: u8::try_from(update.newSchedulerRewardRatioPolicy).ok()?,
        },
        ProtocolEvent::Poco(event) => match *event {
            IPocoEvents::OrdersMatched(e) => ChainEvent::OrdersMatched {
                deal_id: e.dealid,
                app_hash: e.appHash,
                dataset_hash: e.datasetHash,
                workerpool_hash: e.workerpoolHash,
                request_hash: e.requestHash,
                volume: e.volume,
            },
            IPocoEvents::DealCreated(e) => ChainEvent::DealCreated {
                deal_id: e.dealid,
                deal: Box::new(Deal::from(e.deal)),
                params: e.params,
            },
            IPocoEvents::ClosedAppOrder(e) => ChainEvent::Closed { hash: e.appHash },
            IPocoEvents::ClosedDatasetOrder(e) => ChainEvent::Closed { hash: e.datasetHash },
            IPocoEvents::ClosedWorkerpoolOrder(e) => ChainEvent::Closed { hash: e.workerpoolHash },
            IPocoEvents::ClosedRequestOrder(e) => ChainEvent::Closed { hash: e.requestHash },
            IPocoEvents::MemberJoined(e) => {
                ChainEvent::Membership { workerpool: e.workerpool, joined: true }
            }
            IPocoEvents::MemberLeft(e) => {
                ChainEvent::Membership { workerpool: e.workerpool, joined: false }
            }
            IPocoEvents::MemberExpelled(e) => {
                ChainEvent::Membership { workerpool: e.workerpool, joined: false }
            }
            IPocoEvents::TaskInitialize(e) => {
                task(e.taskid, TaskEventKind::Initialize, Some(e.workerpool), None, None)
            }
            IPocoEvents::TaskContribute(e) => {
                task(e.taskid, TaskEventKind::Contribute, Some(e.worker), Some(e.resultHash), None)
            }
            IPocoEvents::TaskConsensus(e) => {
                task(e.taskid, TaskEventKind::Consensus, None, Some(e.consensus), None)
            }
            IPocoEvents::TaskReveal(e) => {
                task(e.taskid, TaskEventKind::Reveal, Some(e.worker), Some(e.digest), None)
            }
            IPocoEvents::TaskReopen(e) => task(e.taskid, TaskEventKind::Reopen, None, None, None),
            IPocoEvents::TaskFinalize(e) => {
                task(e.taskid, TaskEventKind::Finalize, None, None, Some(e.results))
            }
            IPocoEvents::TaskClaimed(e) => task(e.taskid, TaskEventKind::Claimed, None, None, None),
            IPocoEvents::AccurateContribution(e) => task(
                e.taskid,
                TaskEventKind::Accurate,
                Some(e.worker),
                Some(B256::from(e.reward)),
                None,
            ),
            IPocoEvents::FaultyContribution(e) => {
                task(e.taskid, TaskEventKind::Faulty, Some(e.worker), None, None)
            }
            IPocoEvents::SilentSeat(e) => {
                task(e.taskid, TaskEventKind::SilentSeat, Some(e.worker), None, None)
            }
            IPocoEvents::CreateCategory(e) => ChainEvent::Category {
                id: u64::try_from(e.catid).ok()?,
                timeref: u64::try_from(e.workClockTimeRef).ok()?,
            },
            _ => return None,
        },
        _ => return None,
    })
}
