//! The event follower against chain reorganisations on a real anvil (the pinned binary, with the
//! protocol deployed): replaced blocks are found, with the first block to apply again; a
//! reorganisation within the confirmation depth is never seen; one deeper than the window of
//! recent blocks asks for a re-sync; a chain that shrinks is noticed before it grows again; a
//! restarted follower checks the chain against the blocks its consumer stored; a chain node
//! killed and started again from an older state is noticed at once; and a consumer
//! that undoes what the fork point says ends up with exactly the new chain's events.

use std::collections::BTreeMap;

use alloy::{
    primitives::{B256, U256},
    providers::{Provider, ext::AnvilApi},
    rpc::types::{Filter, anvil::ReorgOptions},
    sol_types::SolEvent,
};
use poco_chain::{
    BlockRef, ChainClient, Devnet, DevnetConfig, EventBatch, EventFollower, Followed,
    FollowerConfig, ProtocolEvent, Reorg, follower::decode,
};
use poco_contracts::bindings::{
    IPoco::{Deposit, IPocoEvents},
    RLC,
};
use tempfile::TempDir;

/// A devnet of its own for one test.
struct Chain {
    devnet: Devnet,
    owner: ChainClient,
    _dir: TempDir,
}

impl Chain {
    async fn start() -> Self {
        Self::with_config(|_| {}).await
    }

    /// A chain whose node the devnet supervises (restarted from its saved state when it dies).
    async fn supervised() -> Self {
        Self::with_config(|config| config.supervised = true).await
    }

    async fn with_config(adjust: impl FnOnce(&mut DevnetConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config =
            DevnetConfig { workers: 2, ..DevnetConfig::new(dir.path().join("devnet")) };
        adjust(&mut config);
        let devnet = Devnet::open_or_create(config).await.unwrap();
        let owner = devnet.client(&devnet.accounts().owner).await.unwrap();
        let token = RLC::new(devnet.deployment().token, owner.provider().clone());
        owner.send(token.approve(devnet.deployment().poco, U256::MAX)).await.unwrap();
        Self { devnet, owner, _dir: dir }
    }

    async fn head(&self) -> u64 {
        self.owner.block_number().await.unwrap()
    }

    async fn hash(&self, number: u64) -> B256 {
        let block = self.owner.provider().get_block_by_number(number.into()).await.unwrap();
        block.expect("the block exists").header.hash
    }

    async fn mine(&self, blocks: u64) {
        self.owner.provider().anvil_mine(Some(blocks), None).await.unwrap();
    }

    /// Deposits `amount` nRLC for the first worker: one `Deposit` event, in a block of its own.
    async fn deposit(&self, amount: u64) {
        let poco = self.owner.poco(self.devnet.deployment().poco);
        let worker = self.devnet.accounts().workers[0].address();
        self.owner.send(poco.depositFor(U256::from(amount), worker)).await.unwrap();
    }

    /// Replaces the last `depth` blocks with as many empty ones. Their transactions are gone:
    /// the owner's next transaction takes its nonce from the chain again.
    async fn reorg(&self, depth: u64) {
        let options = ReorgOptions { depth, tx_block_pairs: vec![] };
        self.owner.provider().anvil_reorg(options).await.unwrap();
        self.owner.resync_nonces().await;
    }

    fn follower(&self, from: u64, config: FollowerConfig) -> EventFollower {
        EventFollower::protocol(self.owner.clone(), self.devnet.deployment(), from, config)
    }
}

/// A consumer that keeps, for every `Deposit` it applied, its amount by (block, log index),
/// and the tips of the batches it applied: what a service stores with its checkpoint.
#[derive(Debug, Default)]
struct Consumer {
    deposits: BTreeMap<(u64, u64), U256>,
    tips: Vec<BlockRef>,
    checkpoint: u64,
    reorgs: Vec<Reorg>,
}

impl Consumer {
    fn apply(&mut self, chain: &Chain, batch: &EventBatch) {
        assert_eq!(batch.from, self.checkpoint, "ranges follow the checkpoint");
        for log in &batch.logs {
            let Some(event) = decode(chain.devnet.deployment(), log) else { continue };
            if let ProtocolEvent::Poco(data) = &event.event
                && let IPocoEvents::Deposit(deposit) = data.as_ref()
            {
                let previous = self.deposits.insert((event.block, event.log_index), deposit.amount);
                assert!(previous.is_none(), "delivered twice");
            }
        }
        self.tips.push(batch.tip());
        self.checkpoint = batch.next_block();
    }

    /// Undoes every effect of the fork point and later blocks, as a service's rollback does.
    fn undo(&mut self, reorg: Reorg) {
        self.deposits.retain(|(block, _), _| *block < reorg.fork_point);
        self.tips.retain(|tip| tip.number < reorg.fork_point);
        self.checkpoint = reorg.fork_point;
        self.reorgs.push(reorg);
    }

    /// Polls until caught up, applying batches and undoing reorganisations.
    async fn catch_up(&mut self, chain: &Chain, follower: &mut EventFollower) {
        for _ in 0..1_000 {
            match follower.poll().await.unwrap() {
                None => return,
                Some(Followed::Batch(batch)) => self.apply(chain, &batch),
                Some(Followed::Reorg(reorg)) => self.undo(reorg),
            }
        }
        panic!("the follower never caught up");
    }

    /// Follows block by block from the current checkpoint up to `blocks` new blocks, one
    /// batch per block, as a service caught up with the head does.
    async fn follow_each(&mut self, chain: &Chain, follower: &mut EventFollower, blocks: u64) {
        for _ in 0..blocks {
            chain.mine(1).await;
            self.catch_up(chain, follower).await;
        }
    }
}

/// Every `Deposit` of the chain as it is now, by (block, log index), from `from` on.
async fn deposits_on_chain(chain: &Chain, from: u64) -> BTreeMap<(u64, u64), U256> {
    let filter = Filter::new()
        .address(chain.devnet.deployment().poco)
        .event_signature(Deposit::SIGNATURE_HASH)
        .from_block(from);
    let logs = chain.owner.provider().get_logs(&filter).await.unwrap();
    logs.iter()
        .map(|log| {
            let deposit = decode(chain.devnet.deployment(), log).unwrap();
            let ProtocolEvent::Poco(data) = deposit.event else { unreachable!() };
            let IPocoEvents::Deposit(deposit_event) = *data else { unreachable!() };
            ((log.block_number.unwrap(), log.log_index.unwrap()), deposit_event.amount)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_blocks_are_reported_with_the_first_block_to_apply_again() {
    let chain = Chain::start().await;
    let start = chain.head().await + 1;
    let mut follower = chain.follower(start, FollowerConfig::default());
    let mut consumer = Consumer { checkpoint: start, ..Consumer::default() };
    for amount in 1..=4 {
        chain.deposit(amount).await;
        consumer.catch_up(&chain, &mut follower).await;
    }
    consumer.follow_each(&chain, &mut follower, 3).await;
    let head = chain.head().await;
    assert_eq!(consumer.checkpoint, head + 1);
    assert_eq!(consumer.deposits.len(), 4);
    let before = chain.hash(head - 5).await;

    // The last five blocks (the last two deposits among them) are replaced by empty blocks; the
    // chain is as high as before, so the follower sees it with the next block.
    chain.reorg(5).await;
    assert_eq!(chain.hash(head - 5).await, before, "the block under the fork is kept");
    chain.mine(1).await;
    let Some(Followed::Reorg(reorg)) = follower.poll().await.unwrap() else {
        panic!("the reorganisation is reported")
    };
    assert_eq!(reorg.fork_point, head - 4, "the first replaced block");
    assert_eq!(reorg.common, Some(BlockRef { number: head - 5, hash: before }));
    assert!(!reorg.is_beyond_window());
    assert_eq!(reorg.replaced.number, head - 4);
    assert_eq!(follower.next_block(), head - 4, "the follower resumes at the fork point");
    consumer.undo(reorg);

    // Applied again from there, the consumer holds what the new chain holds, and no more.
    chain.deposit(100).await;
    consumer.catch_up(&chain, &mut follower).await;
    assert_eq!(consumer.deposits, deposits_on_chain(&chain, start).await);
    assert_eq!(consumer.deposits.len(), 3, "two deposits gone, one new");
    assert!(consumer.deposits.values().any(|amount| *amount == U256::from(100)));
    assert_eq!(consumer.checkpoint, chain.head().await + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorganisation_within_the_confirmation_depth_is_never_seen() {
    let chain = Chain::start().await;
    let start = chain.head().await + 1;
    let config = FollowerConfig { confirmations: 3, ..FollowerConfig::default() };
    let mut follower = chain.follower(start, config);
    let mut consumer = Consumer { checkpoint: start, ..Consumer::default() };
    chain.deposit(1).await;
    consumer.follow_each(&chain, &mut follower, 4).await;
    chain.deposit(2).await;
    consumer.catch_up(&chain, &mut follower).await;
    assert_eq!(consumer.deposits.len(), 1, "the second deposit is not 3 blocks deep yet");

    // The last three blocks, the second deposit's among them, are replaced: the follower had
    // not delivered any of them.
    chain.reorg(3).await;
    consumer.follow_each(&chain, &mut follower, 5).await;
    assert!(consumer.reorgs.is_empty(), "{:?}", consumer.reorgs);
    assert_eq!(consumer.deposits, deposits_on_chain(&chain, start).await);
    assert_eq!(consumer.deposits.len(), 1);
    for tip in &consumer.tips {
        assert_eq!(chain.hash(tip.number).await, tip.hash, "every block delivered is on the chain");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorganisation_deeper_than_the_window_asks_for_a_resync() {
    let chain = Chain::start().await;
    let deployed = chain.devnet.deployment().block;
    let start = chain.head().await + 1;
    let config = FollowerConfig { window: 3, ..FollowerConfig::default() };
    let mut follower = chain.follower(start, config);
    let mut consumer = Consumer { checkpoint: start, ..Consumer::default() };
    consumer.follow_each(&chain, &mut follower, 6).await;
    assert_eq!(follower.applied().count(), 3, "the window keeps the last three batches");

    chain.reorg(4).await;
    chain.mine(1).await;
    let Some(Followed::Reorg(reorg)) = follower.poll().await.unwrap() else {
        panic!("the reorganisation is reported")
    };
    assert!(reorg.is_beyond_window());
    assert_eq!(reorg.common, None);
    assert_eq!(reorg.fork_point, deployed, "a re-sync from the deployment's block");
    assert_eq!(follower.next_block(), deployed);
    assert_eq!(follower.applied().count(), 0);

    // Re-synced from there, the consumer holds the chain's events.
    let mut consumer = Consumer { checkpoint: deployed, ..Consumer::default() };
    consumer.catch_up(&chain, &mut follower).await;
    assert_eq!(consumer.deposits, deposits_on_chain(&chain, deployed).await);
    assert!(consumer.reorgs.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_that_lost_delivered_blocks_is_noticed_before_it_grows_again() {
    let chain = Chain::start().await;
    let start = chain.head().await + 1;
    let mut follower = chain.follower(start, FollowerConfig::default());
    let mut consumer = Consumer { checkpoint: start, ..Consumer::default() };
    consumer.follow_each(&chain, &mut follower, 4).await;
    chain.deposit(7).await;
    consumer.catch_up(&chain, &mut follower).await;
    let head = chain.head().await;

    // Two blocks are dropped and none mined: the head is below what the consumer applied.
    chain.owner.provider().anvil_rollback(Some(2)).await.unwrap();
    assert_eq!(chain.head().await, head - 2);
    let Some(Followed::Reorg(reorg)) = follower.poll().await.unwrap() else {
        panic!("the lost blocks are reported")
    };
    assert_eq!(reorg.fork_point, head - 1);
    assert_eq!(reorg.common.map(|c| c.number), Some(head - 2));
    consumer.undo(reorg);
    assert!(follower.poll().await.unwrap().is_none(), "nothing to deliver until it grows");
    consumer.follow_each(&chain, &mut follower, 3).await;
    assert_eq!(consumer.deposits, deposits_on_chain(&chain, start).await);
    assert_eq!(consumer.reorgs.len(), 1);
}

/// A chain node killed and started again from an older state (as a node whose last saves were
/// lost): the chain went backwards without a reorganisation's new blocks, and the follower
/// reports it at once, then delivers the new chain's events exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_from_an_older_state_is_noticed() {
    let chain = Chain::supervised().await;
    let dir = chain.devnet.dir().to_owned();
    let start = chain.head().await + 1;
    let mut follower = chain.follower(start, FollowerConfig::default());
    let mut consumer = Consumer { checkpoint: start, ..Consumer::default() };
    chain.deposit(5).await;
    consumer.catch_up(&chain, &mut follower).await;
    // Every answered write is saved: this copy is the chain at `older`.
    let older = chain.head().await;
    std::fs::copy(dir.join("state.gz"), dir.join("older.gz")).unwrap();
    chain.deposit(6).await;
    chain.deposit(7).await;
    consumer.catch_up(&chain, &mut follower).await;
    assert_eq!(consumer.deposits.len(), 3);

    // The saved state is the older one, and anvil is killed: the devnet starts it from there.
    std::fs::rename(dir.join("older.gz"), dir.join("state.gz")).unwrap();
    std::fs::remove_file(dir.join("state.previous.gz")).unwrap();
    let node = poco_chain::devnet::NodeStatus::read(&dir).expect("the node's status");
    let killed =
        std::process::Command::new("kill").args(["-KILL", &node.pid.to_string()]).status().unwrap();
    assert!(killed.success());
    let mut restarted = false;
    for _ in 0..300 {
        let now = poco_chain::devnet::NodeStatus::read(&dir).unwrap();
        if now.restarts == 1 && now.state == poco_chain::devnet::NodeState::Running {
            assert_ne!(now.pid, node.pid);
            assert_eq!(now.endpoint, node.endpoint, "the same endpoint");
            restarted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(restarted, "the devnet restarted its chain node");
    assert_eq!(chain.head().await, older, "the chain went back to the older state");

    let Some(Followed::Reorg(reorg)) = follower.poll().await.unwrap() else {
        panic!("the lost blocks are reported")
    };
    assert_eq!(reorg.fork_point, older + 1);
    assert_eq!(reorg.common.map(|c| c.number), Some(older));
    consumer.undo(reorg);
    assert_eq!(consumer.deposits.len(), 1, "only what the older state holds");
    chain.owner.resync_nonces().await;
    chain.deposit(8).await;
    consumer.catch_up(&chain, &mut follower).await;
    assert_eq!(consumer.deposits, deposits_on_chain(&chain, start).await);
    assert_eq!(consumer.reorgs.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_checks_the_chain_against_the_stored_blocks() {
    let chain = Chain::start().await;
    let start = chain.head().await + 1;
    let mut follower = chain.follower(start, FollowerConfig::default());
    let mut consumer = Consumer { checkpoint: start, ..Consumer::default() };
    for amount in 1..=3 {
        chain.deposit(amount).await;
        consumer.catch_up(&chain, &mut follower).await;
    }
    consumer.follow_each(&chain, &mut follower, 2).await;
    drop(follower);
    let head = chain.head().await;

    // While the consumer is stopped, the chain replaces its last three blocks and grows.
    chain.reorg(3).await;
    chain.mine(2).await;

    // Restarted from the stored checkpoint alone, a follower could not know.
    let mut blind = chain.follower(consumer.checkpoint, FollowerConfig::default());
    let mut blind_consumer = Consumer { checkpoint: consumer.checkpoint, ..Consumer::default() };
    blind_consumer.catch_up(&chain, &mut blind).await;
    assert!(blind_consumer.reorgs.is_empty(), "without the stored blocks nothing is checked");

    // With the stored blocks, it finds the fork.
    let mut follower = chain
        .follower(consumer.checkpoint, FollowerConfig::default())
        .with_applied(consumer.tips.iter().copied());
    let Some(Followed::Reorg(reorg)) = follower.poll().await.unwrap() else {
        panic!("the reorganisation is reported")
    };
    assert_eq!(reorg.fork_point, head - 2);
    consumer.undo(reorg);
    consumer.catch_up(&chain, &mut follower).await;
    assert_eq!(consumer.deposits, deposits_on_chain(&chain, start).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fork_is_found_by_bisection_in_few_requests() {
    let chain = Chain::start().await;
    let start = chain.head().await + 1;
    let mut follower = chain.follower(start, FollowerConfig::default());
    let mut consumer = Consumer { checkpoint: start, ..Consumer::default() };
    consumer.follow_each(&chain, &mut follower, 64).await;
    assert_eq!(follower.applied().count(), 64);
    let head = chain.head().await;

    chain.reorg(40).await;
    chain.mine(1).await;
    let before = follower.requests();
    let Some(Followed::Reorg(reorg)) = follower.poll().await.unwrap() else {
        panic!("the reorganisation is reported")
    };
    assert_eq!(reorg.fork_point, head - 39);
    // The head, the range's last block, the oldest stored block, then a bisection of 64.
    let spent = follower.requests() - before;
    assert!(spent <= 3 + 7, "{spent} requests to find the fork");
}
