//! The devnet's supervised chain node on the pinned anvil: killed with SIGKILL again and again
//! while a client sends transactions and another reads the head, it comes back behind the same
//! endpoint, every transaction that was answered is still on the chain in the block its receipt
//! named, and no reader ever sees the chain go backwards.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::{
    primitives::{B256, U256},
    providers::Provider,
};
use poco_chain::{
    ChainClient, ClientConfig, Devnet, DevnetConfig,
    devnet::{NodeState, NodeStatus},
};
use poco_contracts::bindings::RLC;

/// Sends deposits one after the other until told to stop: the (transaction, block number,
/// block hash) of each receipt, as the client was told.
async fn depositor(devnet: &Devnet, stop: Arc<AtomicBool>) -> Vec<(B256, u64, B256)> {
    // A lost transaction would never get its receipt: fail in seconds, not the default minutes.
    let config = ClientConfig { receipt_timeout: Duration::from_secs(20), ..Default::default() };
    let signer = devnet.accounts().owner.clone();
    let owner = ChainClient::connect(devnet.rpc_url(), Some(signer), config).await.unwrap();
    let poco = owner.poco(devnet.deployment().poco);
    let worker = devnet.accounts().workers[0].address();
    let mut receipts = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let receipt = owner.send(poco.depositFor(U256::from(1), worker)).await.unwrap();
        let block = receipt.block_number.expect("a mined receipt");
        receipts.push((receipt.transaction_hash, block, receipt.block_hash.unwrap()));
    }
    receipts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_writes_survive_kills_and_reads_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = DevnetConfig {
        workers: 1,
        supervised: true,
        ..DevnetConfig::new(dir.path().join("devnet"))
    };
    let devnet = Arc::new(Devnet::open_or_create(config).await.unwrap());
    let chain_dir = devnet.dir().to_owned();
    let endpoint = devnet.rpc_url().to_owned();
    let owner = devnet.client(&devnet.accounts().owner).await.unwrap();
    let token = RLC::new(devnet.deployment().token, owner.provider().clone());
    owner.send(token.approve(devnet.deployment().poco, U256::MAX)).await.unwrap();
    let poco = owner.poco(devnet.deployment().poco);
    let worker = devnet.accounts().workers[0].address();
    let deposited_before = poco.viewAccount(worker).call().await.unwrap().stake;

    let stop = Arc::new(AtomicBool::new(false));
    let writes = tokio::spawn({
        let (devnet, stop) = (devnet.clone(), stop.clone());
        async move { depositor(&devnet, stop).await }
    });
    // A reader of the head: it must never go down.
    let reads = tokio::spawn({
        let (devnet, stop) = (devnet.clone(), stop.clone());
        async move {
            let reader = devnet.client(&devnet.accounts().requester).await.unwrap();
            let (mut highest, mut reads) = (0, 0u64);
            while !stop.load(Ordering::SeqCst) {
                let head = reader.block_number().await.unwrap();
                assert!(head >= highest, "the head went back from {highest} to {head}");
                highest = head;
                reads += 1;
            }
            reads
        }
    });

    // Ten kills at random moments, while transactions flow.
    let mut state = (std::process::id() as u64) << 16 | 1;
    let mut downtimes = Vec::new();
    for round in 1..=10u64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        tokio::time::sleep(Duration::from_millis(50 + state % 400)).await;
        let node = NodeStatus::read(&chain_dir).expect("the node's status");
        assert_eq!(node.state, NodeState::Running);
        let killed =
            std::process::Command::new("kill").args(["-KILL", &node.pid.to_string()]).status();
        assert!(killed.unwrap().success());
        let at = Instant::now();
        loop {
            let now = NodeStatus::read(&chain_dir).unwrap();
            if now.restarts == round && now.state == NodeState::Running {
                assert_eq!(now.endpoint, endpoint, "the same endpoint");
                break;
            }
            assert!(at.elapsed() < Duration::from_secs(60), "not restarted in 60 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        downtimes.push(at.elapsed().as_millis());
    }
    // A few writes after the last restart, then stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let receipts = writes.await.unwrap();
    let reads = reads.await.unwrap();
    eprintln!(
        "{} deposits answered and {reads} heads read across 10 kills; kill to restarted (ms): \
         {downtimes:?}",
        receipts.len()
    );

    // Every answered transaction is where its receipt said, and the balance counts them all.
    for (hash, number, block_hash) in &receipts {
        let receipt = owner.provider().get_transaction_receipt(*hash).await.unwrap();
        let receipt =
            receipt.unwrap_or_else(|| panic!("transaction {hash} was answered, then lost"));
        assert_eq!(receipt.block_number, Some(*number), "{hash}");
        assert_eq!(receipt.block_hash, Some(*block_hash), "{hash}");
    }
    let deposited = poco.viewAccount(worker).call().await.unwrap().stake;
    assert_eq!(deposited - deposited_before, U256::from(receipts.len()));
    assert_eq!(NodeStatus::read(&chain_dir).unwrap().restarts, 10);
}
