//! An event follower: the protocol's events, block range by block range, from a checkpoint,
//! on the chain its consumer applied.
//!
//! The follower hands out [`EventBatch`]es: every log of a contiguous block range, in chain
//! order, and only for blocks at least `confirmations` deep. The consumer applies a batch and
//! stores `batch.next_block()` as its checkpoint, and the batch's [`EventBatch::tip`] (the
//! number and hash of its last block) among its recent blocks, in the same transaction as its
//! effects; after a restart it creates the follower from that checkpoint and those blocks
//! ([`EventFollower::with_applied`]). Each event is then applied exactly once, however the
//! consumer is stopped. Ranges are bounded so that no `eth_getLogs` request asks for more than
//! `max_range` blocks, which keeps long catch-ups within RPC limits.
//!
//! # Reorganisations
//!
//! A chain may replace blocks its consumer already applied (a reorganisation deeper than the
//! confirmation depth). Before a range is delivered, the follower checks that the chain still
//! holds the last block it delivered: the parent of the range's first block must be that
//! block. When it is not, the follower looks through the recent blocks it delivered (a window of
//! [`FollowerConfig::window`] batch ends, newest first by bisection) for the newest one the
//! chain still holds, and reports a [`Reorg`] instead of a batch: its
//! [`fork_point`](Reorg::fork_point) is the first block to apply again, and the consumer must
//! bring every effect of that block and later ones back to the state after
//! [`common`](Reorg::common), then keep polling (the follower resumes at the fork point). When
//! no block of the window is on the chain any more, the reorganisation is deeper than the
//! window: [`Reorg::common`] is `None`, and the consumer re-syncs from the follower's first
//! block (the deployment's block for [`EventFollower::protocol`]).
//!
//! The order of the reads makes a reorganisation that happens while a range is read visible at
//! the latest on the next poll: the hash of the range's last block is read first, its parent
//! checked next, its logs last, and the next range's parent check compares that hash again. A
//! replacement at the same height is seen once the chain grows past it (the next block); a chain
//! whose confirmed head falls below the last block delivered is checked at once.

use std::{collections::VecDeque, time::Duration};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256},
    providers::Provider,
    rpc::types::{Filter, Log},
    sol_types::{SolEvent, SolEventInterface},
};
use poco_contracts::{
    Deployment,
    bindings::{IPoco::IPocoEvents, WorkerpoolRegistry},
};
use tracing::{debug, warn};

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
    /// How many of the last delivered batches' ends (number and hash) the follower, and its
    /// consumer, keep to find where a reorganisation forked. A reorganisation that replaced all
    /// of them is reported as deeper than the window.
    pub window: usize,
}

impl Default for FollowerConfig {
    fn default() -> Self {
        Self {
            confirmations: 0,
            max_range: 1_000,
            poll_interval: Duration::from_millis(200),
            window: 256,
        }
    }
}

/// A block, by number and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRef {
    /// Its number.
    pub number: u64,
    /// Its hash.
    pub hash: B256,
}

/// Every log of a contiguous range of confirmed blocks.
#[derive(Debug, Clone)]
pub struct EventBatch {
    /// First block of the range.
    pub from: u64,
    /// Last block of the range (inclusive).
    pub to: u64,
    /// The hash of block `to`, as it was when the range was read.
    pub hash: B256,
    /// The logs, in chain order.
    pub logs: Vec<Log>,
}

impl EventBatch {
    /// The checkpoint to store once this batch is applied: the first block not yet seen.
    pub fn next_block(&self) -> u64 {
        self.to + 1
    }

    /// The last block of the range: the consumer stores it with its checkpoint, among the
    /// recent blocks it hands to [`EventFollower::with_applied`] after a restart.
    pub fn tip(&self) -> BlockRef {
        BlockRef { number: self.to, hash: self.hash }
    }
}

/// The chain no longer holds blocks the consumer applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reorg {
    /// The first block to apply again. Every effect of this block and later ones must be
    /// undone; the follower resumes here.
    pub fork_point: u64,
    /// The newest applied block the chain still holds: the consumer's state must become what
    /// it was once this block was applied (chain reads for that state are made at its hash).
    /// `None` when no block of the window is on the chain any more: the reorganisation is
    /// deeper than the window, and the consumer re-syncs from `fork_point`, the follower's
    /// first block.
    pub common: Option<BlockRef>,
    /// The oldest applied block found replaced (its hash as applied).
    pub replaced: BlockRef,
}

impl Reorg {
    /// Whether the reorganisation is deeper than the window of recent blocks.
    pub fn is_beyond_window(&self) -> bool {
        self.common.is_none()
    }
}

/// What a poll found.
#[derive(Debug, Clone)]
#[must_use]
pub enum Followed {
    /// The next range of confirmed blocks, on the chain the consumer applied.
    Batch(EventBatch),
    /// A reorganisation replaced applied blocks: undo them before polling again.
    Reorg(Reorg),
}

/// Follows the logs of some contracts from a checkpoint, in bounded, confirmed ranges, and
/// checks that the chain it continues is the chain it delivered.
#[derive(Debug)]
pub struct EventFollower {
    client: ChainClient,
    addresses: Vec<Address>,
    topics: Vec<B256>,
    /// The first block this follower may deliver: where a re-sync starts.
    start: u64,
    next_block: u64,
    config: FollowerConfig,
    /// The ends of the last batches delivered (or applied before this follower was made),
    /// oldest first, all below `next_block`.
    applied: VecDeque<BlockRef>,
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
        Self {
            client,
            addresses,
            topics: vec![],
            start: from,
            next_block: from,
            config,
            applied: VecDeque::new(),
            requests: 0,
        }
    }

    /// A follower of everything the protocol emits that off-chain services track: `Poco`'s
    /// events and the registries' transfers and policy updates. A re-sync starts at the
    /// deployment's block.
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
        let mut follower = Self::new(client, addresses, from.max(deployment.block), config);
        follower.start = deployment.block;
        follower
    }

    /// Keeps only logs whose first topic (event signature) is one of `topics`.
    pub fn with_topics(mut self, topics: Vec<B256>) -> Self {
        self.topics = topics;
        self
    }

    /// The recent blocks the consumer applied (the tips of the batches it stored, any order),
    /// against which the chain is checked. Blocks at or past the checkpoint are ignored, and
    /// only the newest [`FollowerConfig::window`] kept. Without them, the first range is
    /// delivered unchecked.
    pub fn with_applied(mut self, blocks: impl IntoIterator<Item = BlockRef>) -> Self {
        let mut blocks: Vec<BlockRef> =
            blocks.into_iter().filter(|block| block.number < self.next_block).collect();
        blocks.sort_unstable();
        blocks.dedup_by_key(|block| block.number);
        self.applied = blocks.into();
        self.trim();
        self
    }

    /// The first block not delivered yet.
    pub fn next_block(&self) -> u64 {
        self.next_block
    }

    /// The recent blocks this follower checks the chain against, oldest first.
    pub fn applied(&self) -> impl Iterator<Item = &BlockRef> {
        self.applied.iter()
    }

    /// How many RPC requests this follower made (head, block and log reads).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// The newest block deep enough to deliver, if any.
    async fn confirmed_head(&mut self) -> Result<Option<u64>, Error> {
        self.requests += 1;
        let head = self.client.block_number().await?;
        Ok(head.checked_sub(self.config.confirmations))
    }

    /// Block `number` as the chain has it now; `None` if it has no such block.
    async fn block(&mut self, number: u64) -> Result<Option<(B256, B256)>, Error> {
        self.requests += 1;
        let block =
            self.client.provider().get_block_by_number(BlockNumberOrTag::Number(number)).await?;
        Ok(block.map(|block| (block.header.hash, block.header.parent_hash)))
    }

    /// Whether the chain still holds `block`.
    async fn holds(&mut self, block: BlockRef) -> Result<bool, Error> {
        Ok(self.block(block.number).await?.is_some_and(|(hash, _)| hash == block.hash))
    }

    /// Drops the oldest applied blocks beyond the window.
    fn trim(&mut self) {
        while self.applied.len() > self.config.window.max(1) {
            self.applied.pop_front();
        }
    }

    /// The next batch or reorganisation, if a confirmed block is waiting; `None` when caught
    /// up.
    pub async fn poll(&mut self) -> Result<Option<Followed>, Error> {
        let Some(confirmed) = self.confirmed_head().await? else { return Ok(None) };
        if confirmed < self.next_block {
            // Caught up. A confirmed head below the last block delivered means the chain lost
            // blocks: check at once that it still holds that one.
            if let Some(&last) = self.applied.back()
                && confirmed < last.number
                && !self.holds(last).await?
            {
                return Ok(Some(Followed::Reorg(self.locate_fork().await?)));
            }
            return Ok(None);
        }
        let from = self.next_block;
        let to = confirmed.min(from.saturating_add(self.config.max_range.max(1) - 1));
        // The range's last block first: a reorganisation after this read changes it, which the
        // next poll sees.
        let Some((hash, parent)) = self.block(to).await? else {
            // The chain shrank since its head was read.
            return Ok(None);
        };
        if let Some(&last) = self.applied.back() {
            let continues = if to == from && last.number + 1 == from {
                parent == last.hash
            } else {
                self.holds(last).await?
            };
            if !continues {
                return Ok(Some(Followed::Reorg(self.locate_fork().await?)));
            }
        }
        let mut filter =
            Filter::new().address(self.addresses.clone()).from_block(from).to_block(to);
        if !self.topics.is_empty() {
            filter = filter.event_signature(self.topics.clone());
        }
        self.requests += 1;
        let logs = self.client.provider().get_logs(&filter).await?;
        if logs.iter().any(|log| log.block_number == Some(to) && log.block_hash != Some(hash)) {
            debug!(from, to, "the range changed while it was read; reading it again");
            return Ok(None);
        }
        debug!(from, to, logs = logs.len(), "followed a block range");
        self.next_block = to + 1;
        self.applied.push_back(BlockRef { number: to, hash });
        self.trim();
        Ok(Some(Followed::Batch(EventBatch { from, to, hash, logs })))
    }

    /// The reorganisation that replaced the newest applied block: the newest applied block the
    /// chain still holds, found by bisection (a block held means every older one is). The
    /// follower then resumes at the fork point.
    async fn locate_fork(&mut self) -> Result<Reorg, Error> {
        let blocks: Vec<BlockRef> = self.applied.iter().copied().collect();
        let oldest = blocks[0];
        if !self.holds(oldest).await? {
            warn!(
                replaced = oldest.number,
                window = blocks.len(),
                restart = self.start,
                "reorganisation deeper than the window of recent blocks"
            );
            self.applied.clear();
            self.next_block = self.start;
            return Ok(Reorg { fork_point: self.start, common: None, replaced: oldest });
        }
        // blocks[held] is on the chain, blocks[gone] is not.
        let (mut held, mut gone) = (0, blocks.len() - 1);
        while gone - held > 1 {
            let middle = held + (gone - held) / 2;
            if self.holds(blocks[middle]).await? {
                held = middle;
            } else {
                gone = middle;
            }
        }
        let common = blocks[held];
        let reorg =
            Reorg { fork_point: common.number + 1, common: Some(common), replaced: blocks[gone] };
        warn!(
            fork_point = reorg.fork_point,
            common = common.number,
            replaced = reorg.replaced.number,
            "chain reorganisation: applied blocks were replaced"
        );
        self.applied.truncate(held + 1);
        self.next_block = reorg.fork_point;
        Ok(reorg)
    }

    /// The next batch or reorganisation, waiting for new confirmed blocks when caught up.
    pub async fn follow(&mut self) -> Result<Followed, Error> {
        loop {
            if let Some(followed) = self.poll().await? {
                return Ok(followed);
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
