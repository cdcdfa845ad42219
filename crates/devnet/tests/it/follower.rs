//! The event follower on a real chain: exactly-once delivery across restarts, bounded ranges
//! over thousands of blocks, and the confirmation depth.

use std::collections::BTreeMap;

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use poco_chain::{
    ChainClient, EventBatch, EventFollower, Followed, FollowerConfig, ProtocolEvent,
    follower::decode,
};
use poco_contracts::bindings::IPoco::IPocoEvents;
use poco_test_utils::{RLC, TestNet};

use crate::runtime;

/// A consumer whose effects and checkpoint are committed together, as a service's database
/// transaction would: deposits seen, keyed by (block, log index), and the next block to read.
#[derive(Default, Clone)]
struct Store {
    deposits: BTreeMap<(u64, u64), (Address, U256)>,
    checkpoint: u64,
}

impl Store {
    /// Applies a batch to a copy and returns it: committing is replacing the store.
    fn apply(&self, net: &TestNet, batch: &EventBatch) -> Self {
        let mut next = self.clone();
        for log in &batch.logs {
            let Some(event) = decode(net.deployment(), log) else { continue };
            if let ProtocolEvent::Poco(event_data) = &event.event
                && let IPocoEvents::Deposit(deposit) = event_data.as_ref()
            {
                let key = (event.block, event.log_index);
                let previous = next.deposits.insert(key, (deposit.account, deposit.amount));
                assert!(previous.is_none(), "event {key:?} delivered twice");
            }
        }
        next.checkpoint = batch.next_block();
        next
    }
}

async fn deposit(net: &TestNet, count: usize) {
    let (client, poco) = net.poco(&net.accounts().owner);
    let token =
        poco_contracts::bindings::RLC::new(net.deployment().token, client.provider().clone());
    client.send(token.approve(net.deployment().poco, U256::MAX)).await.unwrap();
    for i in 0..count {
        let target = net.accounts().workers[i % net.accounts().workers.len()].address();
        client.send(poco.depositFor(U256::from(RLC + i as u64), target)).await.unwrap();
    }
}

async fn all_deposits(net: &TestNet) -> usize {
    let filter = Filter::new()
        .address(net.deployment().poco)
        .event_signature(poco_contracts::bindings::IPoco::Deposit::SIGNATURE_HASH)
        .from_block(0);
    net.owner().provider().get_logs(&filter).await.unwrap().len()
}

/// The next batch; these chains never reorganise.
async fn next_batch(follower: &mut EventFollower) -> Option<EventBatch> {
    match follower.poll().await.unwrap()? {
        Followed::Batch(batch) => Some(batch),
        Followed::Reorg(reorg) => panic!("no reorganisation here: {reorg:?}"),
    }
}

fn start_follower(
    client: &ChainClient,
    net: &TestNet,
    from: u64,
    config: FollowerConfig,
) -> EventFollower {
    EventFollower::protocol(client.clone(), net.deployment(), from, config)
}

#[test]
fn events_produced_while_stopped_are_delivered_exactly_once_after_restart() {
    runtime().block_on(async {
        let net = TestNet::start(3).await;
        let client = net.owner().clone();
        let config = FollowerConfig { max_range: 7, ..FollowerConfig::default() };
        let mut store = Store { checkpoint: net.deployment().block, ..Store::default() };

        deposit(&net, 5).await;
        let mut follower = start_follower(&client, &net, store.checkpoint, config);
        while let Some(batch) = next_batch(&mut follower).await {
            store = store.apply(&net, &batch);
        }
        drop(follower);

        // Stopped: more events happen.
        deposit(&net, 6).await;

        // Restarted from the stored checkpoint; the first batch is applied but the process
        // "crashes" before committing it, so it comes again after the next restart.
        let mut follower = start_follower(&client, &net, store.checkpoint, config);
        let batch = next_batch(&mut follower).await.expect("new blocks wait");
        let _lost = store.apply(&net, &batch);
        drop(follower);
        let mut follower = start_follower(&client, &net, store.checkpoint, config);
        while let Some(batch) = next_batch(&mut follower).await {
            store = store.apply(&net, &batch);
        }

        let on_chain = all_deposits(&net).await;
        assert_eq!(store.deposits.len(), on_chain, "every deposit, none twice");
        assert!(on_chain >= 11 + 7, "the devnet's own deposits and the test's");
        assert_eq!(store.checkpoint, client.block_number().await.unwrap() + 1);
    });
}

#[test]
fn thousands_of_blocks_are_followed_in_bounded_requests() {
    runtime().block_on(async {
        let net = TestNet::start(3).await;
        let client = net.owner().clone();
        deposit(&net, 3).await;
        net.mine(2_500).await;
        deposit(&net, 3).await;
        net.mine(1_500).await;
        deposit(&net, 3).await;

        let config = FollowerConfig { max_range: 500, ..FollowerConfig::default() };
        let mut store = Store { checkpoint: net.deployment().block, ..Store::default() };
        let mut follower = start_follower(&client, &net, store.checkpoint, config);
        let mut widest = 0;
        while let Some(batch) = next_batch(&mut follower).await {
            widest = widest.max(batch.to - batch.from + 1);
            store = store.apply(&net, &batch);
        }
        let head = client.block_number().await.unwrap();
        assert!(head > 4_000);
        assert!(widest <= 500, "a request covered {widest} blocks");
        assert!(follower.requests() >= head.div_ceil(500), "{} requests", follower.requests());
        assert_eq!(store.deposits.len(), all_deposits(&net).await);
    });
}

#[test]
fn events_wait_for_the_confirmation_depth() {
    runtime().block_on(async {
        let net = TestNet::start(1).await;
        let client = net.owner().clone();
        let start = client.block_number().await.unwrap() + 1;
        let config = FollowerConfig { confirmations: 3, ..FollowerConfig::default() };
        let mut follower = start_follower(&client, &net, start, config);
        assert!(next_batch(&mut follower).await.is_none(), "nothing new yet");

        deposit(&net, 1).await; // two transactions: approve, deposit
        let mut delivered = Store { checkpoint: start, ..Store::default() };
        while let Some(batch) = next_batch(&mut follower).await {
            delivered = delivered.apply(&net, &batch);
        }
        assert!(delivered.deposits.is_empty(), "the deposit is not 3 blocks deep yet");

        net.mine(3).await;
        while let Some(batch) = next_batch(&mut follower).await {
            delivered = delivered.apply(&net, &batch);
        }
        assert_eq!(delivered.deposits.len(), 1);
        let head = client.block_number().await.unwrap();
        assert_eq!(follower.next_block(), head - 3 + 1, "stops 3 blocks below the head");
    });
}
