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

use std::{collections::BTreeSet, sync::Arc, sync::atomic::Ordering, time::Duration};

use alloy::primitives::Address;
use futures::future::try_join_all;
use poco_chain::{
    ChainClient, EventBatch, EventFollower, FollowerConfig, ProtocolEvent, follower::decode,
};
use poco_contracts::{Deployment, bindings::IPoco::IPocoEvents};
use poco_primitives::{Deal, OrderKind};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::{
    error::Result,
    market::Market,
    store::{ChainBatch, ChainEvent, LocatedChainEvent},
};

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
        info!(target: "poco_market::follower", from, "following the chain");
        status.checkpoint.store(from, Ordering::Relaxed);
        let mut follower = EventFollower::protocol(client.clone(), &deployment, from, config);
        loop {
            let polled = tokio::select! {
                polled = follower.poll() => polled,
                () = stopped(&mut stop) => return,
            };
            match polled {
                Ok(Some(batch)) => {
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
    for log in &batch.logs {
        let Some(located) = decode(deployment, log) else { continue };
        touched.extend(touched_accounts(&located.event));
        if let Some(event) = convert(deployment, located.event) {
            events.push(LocatedChainEvent {
                event,
                block: located.block,
                transaction: located.transaction,
                log_index: located.log_index,
            });
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
    debug!(target: "poco_market::follower", from = batch.from, to = batch.to, events = events.len(), balances = balances.len(), "applying");
    let count = events.len() as u64;
    let applied = market
        .store()
        .apply_batch(ChainBatch {
            from: batch.from,
            next: batch.next_block(),
            events,
            balances,
            balance_block,
        })
        .await?;
    if applied {
        market.follower_status().events.fetch_add(count, Ordering::Relaxed);
    }
    Ok(applied)
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
            IPocoEvents::CreateCategory(e) => ChainEvent::Category {
                id: u64::try_from(e.catid).ok()?,
                timeref: u64::try_from(e.workClockTimeRef).ok()?,
            },
            _ => return None,
        },
        _ => return None,
    })
}
