//! An event follower: the protocol's events, block range by block range, from a checkpoint.
//!
//! The follower hands out [`EventBatch`]es: every log of a contiguous block range, in chain
//! order, and only for blocks at least `confirmations` deep. The consumer applies a batch and
//! stores `batch.next_block()` as its checkpoint in the same transaction as its effects; after a
//! restart it creates the follower from that checkpoint. Each event is then applied exactly
//! once, however the consumer is stopped. Ranges are bounded so that no `eth_getLogs` request
//! asks for more than `max_range` blocks, which keeps long catch-ups within RPC limits.

use std::time::Duration;

use alloy::{
    primitives::{Address, B256},
    providers::Provider,
    rpc::types::{Filter, Log},
    sol_types::{SolEvent, SolEventInterface},
};
use poco_contracts::{
    Deployment,
    bindings::{IPoco::IPocoEvents, WorkerpoolRegistry},
};
use tracing::debug;

use crate::{ChainClient, Error};

/// How a follower walks the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerConfig {
    /// Blocks a block must have on top of it before its events are delivered.
    pub confirmations: u64,
    /// Most blocks one `eth_getLogs` request covers.
    pub max_range: u64,
    /// How often to look for new blocks when caught up.
    pub poll_interval: Duration,
}

impl Default for FollowerConfig {
    fn default() -> Self {
        Self { confirmations: 0, max_range: 1_000, poll_interval: Duration::from_millis(200) }
    }
}

/// Every log of a contiguous range of confirmed blocks.
#[derive(Debug, Clone)]
pub struct EventBatch {
    /// First block of the range.
    pub from: u64,
    /// Last block of the range (inclusive).
    pub to: u64,
    /// The logs, in chain order.
    pub logs: Vec<Log>,
}

impl EventBatch {
    /// The checkpoint to store once this batch is applied: the first block not yet seen.
    pub fn next_block(&self) -> u64 {
        self.to + 1
    }
}

/// Follows the logs of some contracts from a checkpoint, in bounded, confirmed ranges.
#[derive(Debug)]
pub struct EventFollower {
    client: ChainClient,
    addresses: Vec<Address>,
    topics: Vec<B256>,
    next_block: u64,
    config: FollowerConfig,
    requests: u64,
}

impl EventFollower {
    /// A follower of every log of `addresses`, starting at block `from`.
    pub fn new(
        client: ChainClient,
        addresses: Vec<Address>,
        from: u64,
        config: FollowerConfig,
    ) -> Self {
        Self { client, addresses, topics: vec![], next_block: from, config, requests: 0 }
    }

    /// A follower of everything the protocol emits that off-chain services track: `Poco`'s
    /// events and the registries' transfers and policy updates.
    pub fn protocol(
        client: ChainClient,
        deployment: &Deployment,
        from: u64,
        config: FollowerConfig,
    ) -> Self {
        let addresses = vec![
            deployment.poco,
            deployment.app_registry,
            deployment.dataset_registry,
            deployment.workerpool_registry,
        ];
        Self::new(client, addresses, from.max(deployment.block), config)
    }

    /// Keeps only logs whose first topic (event signature) is one of `topics`.
    pub fn with_topics(mut self, topics: Vec<B256>) -> Self {
        self.topics = topics;
        self
    }

    /// The first block not delivered yet.
    pub fn next_block(&self) -> u64 {
        self.next_block
    }

    /// How many `eth_getLogs` requests this follower made.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// The newest block deep enough to deliver, if any.
    async fn confirmed_head(&self) -> Result<Option<u64>, Error> {
        let head = self.client.block_number().await?;
        Ok(head.checked_sub(self.config.confirmations))
    }

    /// The next batch, if a confirmed block is waiting; `None` when caught up.
    pub async fn poll(&mut self) -> Result<Option<EventBatch>, Error> {
        let Some(confirmed) = self.confirmed_head().await? else { return Ok(None) };
        if confirmed < self.next_block {
            return Ok(None);
        }
        let from = self.next_block;
        let to = confirmed.min(from.saturating_add(self.config.max_range - 1));
        let mut filter =
            Filter::new().address(self.addresses.clone()).from_block(from).to_block(to);
        if !self.topics.is_empty() {
            filter = filter.event_signature(self.topics.clone());
        }
        let logs = self.client.provider().get_logs(&filter).await?;
        self.requests += 1;
        debug!(from, to, logs = logs.len(), "followed a block range");
        self.next_block = to + 1;
        Ok(Some(EventBatch { from, to, logs }))
    }

    /// The next batch, waiting for new confirmed blocks when caught up.
    pub async fn next_batch(&mut self) -> Result<EventBatch, Error> {
        loop {
            if let Some(batch) = self.poll().await? {
                return Ok(batch);
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }
}

/// A protocol event, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolEvent {
    /// An event of `Poco` (escrow, orders, deals, tasks).
    Poco(Box<IPocoEvents>),
    /// An asset of a registry changed hands (or was created, from the zero address).
    AssetTransfer {
        /// Which registry.
        registry: Address,
        /// The asset (the token id is its address).
        asset: Address,
        /// Previous owner (zero on creation).
        from: Address,
        /// New owner.
        to: Address,
    },
    /// A workerpool's policy changed.
    PolicyUpdate(WorkerpoolRegistry::PolicyUpdate),
}

/// Where a decoded event comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedEvent {
    /// The event.
    pub event: ProtocolEvent,
    /// Its block.
    pub block: u64,
    /// Its transaction.
    pub transaction: B256,
    /// Its index in the block.
    pub log_index: u64,
}

/// Decodes a log of the protocol's contracts; `None` for logs of other contracts or events
/// nobody tracks (approvals).
pub fn decode(deployment: &Deployment, log: &Log) -> Option<LocatedEvent> {
    let address = log.address();
    let event = if address == deployment.poco {
        ProtocolEvent::Poco(Box::new(IPocoEvents::decode_log(&log.inner).ok()?.data))
    } else if [deployment.app_registry, deployment.dataset_registry, deployment.workerpool_registry]
        .contains(&address)
    {
        if let Ok(transfer) = WorkerpoolRegistry::Transfer::decode_log(&log.inner) {
            ProtocolEvent::AssetTransfer {
                registry: address,
                asset: Address::from_word(transfer.tokenId.into()),
                from: transfer.from,
                to: transfer.to,
            }
        } else {
            ProtocolEvent::PolicyUpdate(
                WorkerpoolRegistry::PolicyUpdate::decode_log(&log.inner).ok()?.data,
            )
        }
    } else {
        return None;
    };
    Some(LocatedEvent {
        event,
        block: log.block_number?,
        transaction: log.transaction_hash?,
        log_index: log.log_index?,
    })
}
