//! Test harness for poco: a throwaway devnet with the protocol deployed, funded accounts,
//! registered assets, and helpers to sign and match orders and to move the chain's clock.
//!
//! Every integration test that needs a chain starts a [`TestNet`]: a real anvil (the pinned
//! binary) running the real contracts, never a mock. The same net can be laid on Hardhat's
//! node instead ([`TestNet::start_on`] with [`ChainNode::Hardhat`], see [`hardhat`]), or on
//! any running anvil or Hardhat node ([`TestNet::attach`]), to check poco on a second EVM
//! implementation. [`rpc::CountingProxy`] counts the JSON-RPC requests a client sends it on
//! their way to anvil. It sits at the bottom of the test dependency graph: it uses
//! `poco-primitives`, `poco-contracts` and `poco-chain`, and the services' tests use it.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

use std::path::{Path, PathBuf};

use alloy::{
    primitives::{Address, B256, Bytes, U256, keccak256},
    providers::{Provider, ext::AnvilApi},
    rpc::types::TransactionReceipt,
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
};
use poco_chain::{ChainClient, Devnet, DevnetAccounts, DevnetConfig};
use poco_contracts::{
    Deployment,
    bindings::{AppRegistry, DatasetRegistry, IPoco, IPocoTypes, WorkerpoolRegistry},
};
use poco_primitives::{
    AppOrder, DatasetOrder, Deal, Order, PocoDomain, RequestOrder, Signed, WorkerpoolAuthorization,
    WorkerpoolOrder,
};
use tempfile::TempDir;

pub mod hardhat;
pub mod logs;
pub mod postgres;
pub mod rpc;
pub mod s3;
pub mod storage;

pub use hardhat::{HardhatError, HardhatNode};

/// One RLC in nRLC.
pub const RLC: u64 = 1_000_000_000;

/// The EVM node implementations a [`TestNet`] runs on. Their test-only RPC methods differ:
/// anvil answers `anvil_*` and Hardhat's `hardhat_*` names, Hardhat's node no `anvil_*` one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainNode {
    /// Foundry's anvil (the pinned binary).
    Anvil,
    /// Hardhat's node (EDR), the pinned Hardhat 3.
    Hardhat,
}

impl ChainNode {
    /// The implementation behind a `web3_clientVersion` answer (`anvil/v1.7.1`,
    /// `HardhatNetwork/3.18.0/@nomicfoundation/edr/0.3.8`), if it is one of these.
    pub fn from_client_version(version: &str) -> Option<Self> {
        if version.starts_with("anvil/") {
            Some(Self::Anvil)
        } else if version.starts_with("HardhatNetwork/") {
            Some(Self::Hardhat)
        } else {
            None
        }
    }
}

/// A devnet for one test: the chain node, the deployed protocol and funded accounts. Stops
/// when dropped (with the node it started).
pub struct TestNet {
    devnet: Devnet,
    owner: ChainClient,
    _dir: TempDir,
    node: ChainNode,
    /// Dropped after the devnet: the Hardhat node this net started, if any (boxed: a net is
    /// held across many awaits, and its size weighs on every test's future).
    _hardhat: Option<Box<HardhatNode>>,
}

impl TestNet {
    /// Starts a devnet on anvil with `workers` worker accounts; every account holds 10,000 RLC
    /// in its wallet and 1,000 RLC in its poco account.
    pub async fn start(workers: usize) -> Self {
        init_logs();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = DevnetConfig { workers, ..DevnetConfig::new(dir.path().join("devnet")) };
        // Boxed: the devnet's start is a large future, which every test's future would carry.
        let devnet = Box::pin(Devnet::open_or_create(config)).await.expect("the devnet starts");
        let owner = devnet.client(&devnet.accounts().owner).await.expect("a client");
        Self { devnet, owner, _dir: dir, node: ChainNode::Anvil, _hardhat: None }
    }

    /// Starts a devnet as [`TestNet::start`] does, on a node of `node`'s kind started for it.
    /// Panics, saying to run `npm ci`, when Hardhat is asked for and not installed.
    pub async fn start_on(node: ChainNode, workers: usize) -> Self {
        match node {
            ChainNode::Anvil => Self::start(workers).await,
            ChainNode::Hardhat => {
                let accounts = DevnetAccounts::FIRST_WORKER + workers;
                let hardhat = HardhatNode::start(accounts).unwrap_or_else(|e| panic!("{e}"));
                let mut net = Self::attach(hardhat.endpoint(), workers).await;
                net._hardhat = Some(Box::new(hardhat));
                net
            }
        }
    }

    /// Lays a devnet on the anvil or Hardhat node running at `rpc_url` (started by someone
    /// else, and left running): deploys the protocol and funds the accounts as
    /// [`TestNet::start`] does. The node must hold the development accounts of
    /// [`poco_chain::devnet::DEV_MNEMONIC`] (indices 0 to 4 + `workers`) with ether.
    pub async fn attach(rpc_url: &str, workers: usize) -> Self {
        init_logs();
        let probe = ChainClient::connect(rpc_url, None, poco_chain::ClientConfig::default())
            .await
            .unwrap_or_else(|e| panic!("no chain answers at {rpc_url}: {e}"));
        let version = probe.provider().get_client_version().await.expect("web3_clientVersion");
        let node = ChainNode::from_client_version(&version).unwrap_or_else(|| {
            panic!("{rpc_url} runs {version}: a TestNet runs on anvil or Hardhat's node only")
        });
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = DevnetConfig { workers, ..DevnetConfig::new(dir.path().join("devnet")) };
        let devnet = Devnet::attach(config, rpc_url).await.expect("the protocol deploys");
        let owner = devnet.client(&devnet.accounts().owner).await.expect("a client");
        Self { devnet, owner, _dir: dir, node, _hardhat: None }
    }

    /// The node implementation the net runs on.
    pub fn node(&self) -> ChainNode {
        self.node
    }

    /// The Hardhat node this net started, if it started one.
    pub fn hardhat(&self) -> Option<&HardhatNode> {
        self._hardhat.as_deref()
    }

    /// The devnet.
    pub fn devnet(&self) -> &Devnet {
        &self.devnet
    }

    /// The protocol's addresses.
    pub fn deployment(&self) -> &Deployment {
        self.devnet.deployment()
    }

    /// The funded accounts.
    pub fn accounts(&self) -> &DevnetAccounts {
        self.devnet.accounts()
    }

    /// The EIP-712 domain orders are signed under.
    pub fn domain(&self) -> PocoDomain {
        PocoDomain::new(self.deployment().chain_id, self.deployment().poco)
    }

    /// A client signing with the protocol owner's key.
    pub fn owner(&self) -> &ChainClient {
        &self.owner
    }

    /// A client signing with `signer`.
    pub fn client(&self, signer: &PrivateKeySigner) -> ChainClient {
        self.owner.with_wallet(signer.clone())
    }

    /// The protocol, bound to a client signing with `signer`.
    pub fn poco(
        &self,
        signer: &PrivateKeySigner,
    ) -> (ChainClient, IPoco::IPocoInstance<alloy::providers::DynProvider>) {
        let client = self.client(signer);
        let poco = client.poco(self.deployment().poco);
        (client, poco)
    }

    /// Registers an app owned by `owner` and returns its address.
    pub async fn create_app(
        &self,
        owner: &PrivateKeySigner,
        name: &str,
        checksum: B256,
    ) -> Address {
        self.create_app_at(owner, name, &format!("https://apps.example/{name}.wasm"), checksum)
            .await
    }

    /// Registers a TEE app owned by `owner`, fetched from `url`, with its enclave measurement
    /// (`mrenclave`; empty for an app that runs outside enclaves), and returns its address.
    pub async fn create_tee_app(
        &self,
        owner: &PrivateKeySigner,
        name: &str,
        url: &str,
        checksum: B256,
        mrenclave: Bytes,
    ) -> Address {
        let client = self.client(owner);
        let registry = AppRegistry::new(self.deployment().app_registry, client.provider().clone());
        let call = registry.createApp(
            owner.address(),
            name.into(),
            "WASM".into(),
            Bytes::from(url.as_bytes().to_vec()),
            checksum,
            mrenclave,
        );
        let app = call.call().await.expect("createApp simulates");
        client.send(call).await.expect("createApp succeeds");
        app
    }

    /// Registers a dataset owned by `owner`, fetched from `url`, and returns its address.
    pub async fn create_dataset_at(
        &self,
        owner: &PrivateKeySigner,
        name: &str,
        url: &str,
        checksum: B256,
    ) -> Address {
        let client = self.client(owner);
        let registry =
            DatasetRegistry::new(self.deployment().dataset_registry, client.provider().clone());
        let call = registry.createDataset(
            owner.address(),
            name.into(),
            Bytes::from(url.as_bytes().to_vec()),
            checksum,
        );
        let dataset = call.call().await.expect("createDataset simulates");
        client.send(call).await.expect("createDataset succeeds");
        dataset
    }

    /// Registers an app owned by `owner`, to be fetched from `url`, and returns its address.
    pub async fn create_app_at(
        &self,
        owner: &PrivateKeySigner,
        name: &str,
        url: &str,
        checksum: B256,
    ) -> Address {
        self.create_tee_app(owner, name, url, checksum, Bytes::new()).await
    }

    /// Registers a dataset owned by `owner` and returns its address.
    pub async fn create_dataset(
        &self,
        owner: &PrivateKeySigner,
        name: &str,
        checksum: B256,
    ) -> Address {
        self.create_dataset_at(owner, name, &format!("https://data.example/{name}"), checksum).await
    }

    /// Registers a workerpool owned by `owner` and returns its address.
    pub async fn create_workerpool(&self, owner: &PrivateKeySigner, description: &str) -> Address {
        let client = self.client(owner);
        let registry = WorkerpoolRegistry::new(
            self.deployment().workerpool_registry,
            client.provider().clone(),
        );
        let call = registry.createWorkerpool(owner.address(), description.into());
        let pool = call.call().await.expect("createWorkerpool simulates");
        client.send(call).await.expect("createWorkerpool succeeds");
        pool
    }

    /// Signs `order` with `signer` under this devnet's domain.
    pub fn sign<T: Order>(&self, order: T, signer: &PrivateKeySigner) -> Signed<T> {
        order.sign(signer, &self.domain()).expect("signing works")
    }

    /// The four orders of `spec`, signed by their owners among the devnet's accounts.
    pub fn orders(&self, spec: &OrderSpec) -> MatchOrders {
        let accounts = self.accounts();
        let salt = B256::from(U256::from(spec.salt));
        let app = AppOrder {
            app: spec.app,
            appprice: U256::from(spec.app_price),
            volume: U256::from(spec.volume),
            tag: spec.tag,
            salt,
            ..Default::default()
        };
        let dataset = DatasetOrder {
            dataset: spec.dataset.unwrap_or_default(),
            datasetprice: U256::from(spec.dataset_price),
            volume: U256::from(spec.volume),
            salt,
            ..Default::default()
        };
        let workerpool = WorkerpoolOrder {
            workerpool: spec.workerpool,
            workerpoolprice: U256::from(spec.workerpool_price),
            volume: U256::from(spec.volume),
            tag: spec.tag,
            category: U256::from(spec.category),
            trust: U256::from(spec.trust),
            salt,
            ..Default::default()
        };
        let request = RequestOrder {
            app: spec.app,
            appmaxprice: U256::from(spec.app_price),
            dataset: dataset.dataset,
            datasetmaxprice: U256::from(spec.dataset_price),
            workerpool: spec.workerpool,
            workerpoolmaxprice: U256::from(spec.workerpool_price),
            requester: accounts.requester.address(),
            volume: U256::from(spec.volume),
            tag: spec.tag,
            category: U256::from(spec.category),
            trust: U256::from(spec.trust),
            beneficiary: accounts.requester.address(),
            callback: spec.callback,
            params: spec.params.clone(),
            salt,
        };
        MatchOrders {
            app: self.sign(app, &accounts.app_provider),
            dataset: if spec.dataset.is_some() {
                self.sign(dataset, &accounts.dataset_provider)
            } else {
                Signed::presigned(dataset)
            },
            workerpool: self.sign(workerpool, &accounts.scheduler),
            request: self.sign(request, &accounts.requester),
        }
    }

    /// Sends `matchOrders` from `sender` and returns the deal it created.
    pub async fn match_orders(
        &self,
        sender: &PrivateKeySigner,
        orders: &MatchOrders,
    ) -> Result<(Deal, TransactionReceipt), poco_chain::Error> {
        let (client, poco) = self.poco(sender);
        let receipt = client.send(orders.call(&poco)).await?;
        let deal = deal_of(&receipt).expect("a successful match emits DealCreated");
        Ok((deal, receipt))
    }

    /// Completes task `idx` of a trust-1 `deal` in one transaction: `worker` contributes
    /// `digest` and finalizes it with result location `results` (`contributeAndFinalize`,
    /// authorized by the devnet's scheduler, the deal's workerpool owner).
    pub async fn contribute_and_finalize(
        &self,
        deal: &Deal,
        idx: U256,
        worker: &PrivateKeySigner,
        digest: B256,
        results: &str,
    ) -> Result<TransactionReceipt, poco_chain::Error> {
        let task_id = deal.task_id(idx).expect("a task of the deal");
        let authorization = WorkerpoolAuthorization {
            worker: worker.address(),
            task_id,
            enclave_challenge: Address::ZERO,
        }
        .sign(&self.accounts().scheduler)
        .expect("signing works");
        let (client, poco) = self.poco(worker);
        let call = poco.contributeAndFinalize(
            IPocoTypes::Deal::from(deal),
            idx,
            digest,
            Bytes::from(results.as_bytes().to_vec()),
            Bytes::new(),
            Address::ZERO,
            Bytes::new(),
            authorization,
        );
        client.send(call).await
    }

    /// Moves the chain's clock `seconds` forward and mines a block.
    pub async fn warp(&self, seconds: u64) {
        let provider = self.owner.provider();
        match self.node {
            ChainNode::Anvil => {
                provider.anvil_increase_time(seconds).await.expect("evm_increaseTime");
            }
            // Hardhat answers the new offset as a decimal string, which alloy's typed
            // `anvil_increase_time` does not read.
            ChainNode::Hardhat => {
                let _offset: String = provider
                    .raw_request("evm_increaseTime".into(), (seconds,))
                    .await
                    .expect("evm_increaseTime");
            }
        }
        self.mine(1).await;
    }

    /// Mines `blocks` empty blocks.
    pub async fn mine(&self, blocks: u64) {
        let provider = self.owner.provider();
        match self.node {
            ChainNode::Anvil => provider.anvil_mine(Some(blocks), None).await.expect("anvil_mine"),
            ChainNode::Hardhat => {
                let mined: bool = provider
                    .raw_request("hardhat_mine".into(), (U256::from(blocks),))
                    .await
                    .expect("hardhat_mine");
                assert!(mined, "hardhat_mine answered false");
            }
        }
    }

    /// The latest block's number.
    pub async fn head(&self) -> u64 {
        self.owner.block_number().await.expect("a block number")
    }

    /// Replaces the last `depth` blocks with as many new ones, as a chain reorganisation would:
    /// the new blocks hold `transactions` (raw and signed, each with the offset of its block
    /// among the new ones, 0 first) and nothing else. The replaced blocks' transactions are
    /// gone unless included again; the owner's client reads its nonce from the chain again.
    pub async fn reorg(&self, depth: u64, transactions: Vec<(Bytes, u64)>) {
        use alloy::rpc::types::anvil::{ReorgOptions, TransactionData};
        let tx_block_pairs =
            transactions.into_iter().map(|(raw, at)| (TransactionData::Raw(raw), at)).collect();
        let options = ReorgOptions { depth, tx_block_pairs };
        self.owner.provider().anvil_reorg(options).await.expect("anvil_reorg");
        self.owner.resync_nonces().await;
    }

    /// A mined transaction, raw and signed as it was sent: to include it again in a
    /// reorganised chain.
    pub async fn raw_transaction(&self, hash: B256) -> Bytes {
        let provider = self.owner.provider();
        let raw = provider.get_raw_transaction_by_hash(hash).await.expect("a raw transaction");
        raw.expect("the transaction is known")
    }

    /// Sets a worker's reputation score (test-only: writes the packed account word).
    pub async fn set_score(&self, worker: Address, score: u64) {
        let slot = account_slot(worker);
        let provider = self.owner.provider();
        let word = provider.get_storage_at(self.deployment().poco, slot).await.expect("storage");
        let mask = (U256::from(1) << 192) - U256::from(1);
        let word = (word & mask) | (U256::from(score) << 192);
        let poco = self.deployment().poco;
        let set = match self.node {
            ChainNode::Anvil => provider
                .anvil_set_storage_at(poco, slot, B256::from(word))
                .await
                .expect("anvil_setStorageAt"),
            ChainNode::Hardhat => provider
                .raw_request("hardhat_setStorageAt".into(), (poco, slot, B256::from(word)))
                .await
                .expect("hardhat_setStorageAt"),
        };
        assert!(set, "the node refused to set the storage slot");
    }

    /// The latest block's timestamp.
    pub async fn now(&self) -> u64 {
        self.owner.block_timestamp().await.expect("a block")
    }
}

/// What a test match looks like; [`TestNet::orders`] turns it into four signed orders, signed
/// by the devnet's app provider, dataset provider, scheduler and requester.
#[derive(Clone, Debug)]
pub struct OrderSpec {
    /// The app sold.
    pub app: Address,
    /// The dataset sold, if any.
    pub dataset: Option<Address>,
    /// The workerpool selling the execution.
    pub workerpool: Address,
    /// App price per task, in nRLC.
    pub app_price: u64,
    /// Dataset price per task, in nRLC.
    pub dataset_price: u64,
    /// Workerpool price per task, in nRLC.
    pub workerpool_price: u64,
    /// Volume of every order.
    pub volume: u64,
    /// Trust asked (and offered).
    pub trust: u64,
    /// Tag asked by the request and carried by the app order and offered by the pool.
    pub tag: B256,
    /// Category.
    pub category: u64,
    /// Request parameters.
    pub params: String,
    /// The result callback contract.
    pub callback: Address,
    /// Makes the orders unique.
    pub salt: u64,
}

impl Default for OrderSpec {
    fn default() -> Self {
        Self {
            app: Address::ZERO,
            dataset: None,
            workerpool: Address::ZERO,
            app_price: RLC,
            dataset_price: 0,
            workerpool_price: 2 * RLC,
            volume: 1,
            trust: 1,
            tag: B256::ZERO,
            category: 0,
            params: String::new(),
            callback: Address::ZERO,
            salt: 0,
        }
    }
}

/// The directory of the example apps (`apps/` at the repository root).
pub fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../apps")
}

/// The compiled module of example app `name` (e.g. `pi`, `testing/loop`).
pub fn app_module(name: &str) -> Vec<u8> {
    let file = Path::new(name).file_name().expect("an app name").to_string_lossy().into_owned();
    let path = apps_dir().join(name).join(format!("{file}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Shows the services' logs in the test output when `RUST_LOG` is set (e.g.
/// `RUST_LOG=poco_scheduler=debug`).
pub fn init_logs() {
    logs::install();
}

/// Polls `condition` until it holds, for at most `within`; panics naming `what` otherwise.
pub async fn wait_until<F, Fut>(what: &str, within: std::time::Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if condition().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out after {within:?} waiting until {what}");
}

/// The four orders of a match, signed.
#[derive(Clone, Debug)]
pub struct MatchOrders {
    /// The app order.
    pub app: Signed<AppOrder>,
    /// The dataset order (a zero `dataset` for a deal without dataset).
    pub dataset: Signed<DatasetOrder>,
    /// The workerpool order.
    pub workerpool: Signed<WorkerpoolOrder>,
    /// The request order.
    pub request: Signed<RequestOrder>,
}

impl MatchOrders {
    /// The `matchOrders` call of these orders.
    pub fn call<'a>(
        &self,
        poco: &'a IPoco::IPocoInstance<alloy::providers::DynProvider>,
    ) -> alloy::contract::CallBuilder<
        &'a alloy::providers::DynProvider,
        std::marker::PhantomData<IPoco::matchOrdersCall>,
    > {
        poco.matchOrders(
            IPocoTypes::AppOrder::from(&self.app),
            IPocoTypes::DatasetOrder::from(&self.dataset),
            IPocoTypes::WorkerpoolOrder::from(&self.workerpool),
            IPocoTypes::RequestOrder::from(&self.request),
        )
    }
}

/// The deal a `matchOrders` receipt created, from its `DealCreated` event.
pub fn deal_of(receipt: &TransactionReceipt) -> Option<Deal> {
    receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| IPoco::DealCreated::decode_log(&log.inner).ok())
        .map(|event| Deal::from(event.data.deal))
}

/// The payout of `deal`'s finalized task `task_id`
/// ([`poco_primitives::payout::task_payout`]), from the contributions of `workers` on the chain
/// of `client` (the protocol at `poco`). Panics if nobody proved the consensus.
pub async fn task_payout_on_chain(
    client: &ChainClient,
    poco: Address,
    deal: &Deal,
    task_id: B256,
    workers: &[Address],
) -> poco_primitives::payout::TaskPayout {
    let contract = client.poco(poco);
    let mut contributions = Vec::new();
    for worker in workers {
        let contribution =
            contract.viewContribution(task_id, *worker).call().await.expect("viewContribution");
        if contribution.status != 0 {
            contributions.push(poco_primitives::payout::Contribution {
                worker: *worker,
                proved: contribution.status == 2,
                weight: contribution.weight,
            });
        }
    }
    poco_primitives::payout::task_payout(
        deal.workerpoolPrice,
        deal.workerStake,
        deal.schedulerRewardRatio,
        &contributions,
    )
    .unwrap_or_else(|| panic!("task {task_id}: nobody proved the consensus"))
}

/// The storage slot of an account word: `accounts` is the first mapping of the ERC-7201
/// namespace `poco.storage.main`.
pub fn account_slot(account: Address) -> U256 {
    const LOCATION: B256 = alloy::primitives::b256!(
        "ead258fb6175f388339f52c25147b390ee515d7673a97ddadff4ce845ca04f00"
    );
    let mut key = [0u8; 64];
    key[12..32].copy_from_slice(account.as_slice());
    key[32..].copy_from_slice(LOCATION.as_slice());
    U256::from_be_bytes(keccak256(key).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_is_told_by_its_client_version() {
        assert_eq!(ChainNode::from_client_version("anvil/v1.7.1"), Some(ChainNode::Anvil));
        assert_eq!(
            ChainNode::from_client_version("HardhatNetwork/3.18.0/@nomicfoundation/edr/0.3.8"),
            Some(ChainNode::Hardhat)
        );
        assert_eq!(ChainNode::from_client_version("Geth/v1.14.0-stable/linux-amd64/go1.22"), None);
    }
}
