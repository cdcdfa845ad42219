//! Test harness for poco: a throwaway devnet with the protocol deployed, funded accounts,
//! registered assets, and helpers to sign and match orders and to move the chain's clock.
//!
//! Every integration test that needs a chain starts a [`TestNet`]: a real anvil (the pinned
//! binary) running the real contracts, never a mock. [`rpc::CountingProxy`] counts the
//! JSON-RPC requests a client sends it on their way to anvil. It sits at the bottom of the test
//! dependency graph: it uses `poco-primitives`, `poco-contracts` and `poco-chain`, and the
//! services' tests use it.

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

pub mod logs;
pub mod postgres;
pub mod rpc;
pub mod storage;

/// One RLC in nRLC.
pub const RLC: u64 = 1_000_000_000;

/// A devnet for one test: anvil, the deployed protocol and funded accounts. Stops when dropped.
pub struct TestNet {
    devnet: Devnet,
    owner: ChainClient,
    _dir: TempDir,
}

impl TestNet {
    /// Starts a devnet with `workers` worker accounts; every account holds 10,000 RLC in its
    /// wallet and 1,000 RLC in its poco account.
    pub async fn start(workers: usize) -> Self {
        init_logs();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = DevnetConfig { workers, ..DevnetConfig::new(dir.path().join("devnet")) };
        let devnet = Devnet::open_or_create(config).await.expect("the devnet starts");
        let owner = devnet.client(&devnet.accounts().owner).await.expect("a client");
        Self { devnet, owner, _dir: dir }
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
        self.owner.provider().anvil_increase_time(seconds).await.expect("evm_increaseTime");
        self.owner.provider().anvil_mine(Some(1), None).await.expect("anvil_mine");
    }

    /// Mines `blocks` empty blocks.
    pub async fn mine(&self, blocks: u64) {
        self.owner.provider().anvil_mine(Some(blocks), None).await.expect("anvil_mine");
    }

    /// Sets a worker's reputation score (test-only: writes the packed account word).
    pub async fn set_score(&self, worker: Address, score: u64) {
        let slot = account_slot(worker);
        let provider = self.owner.provider();
        let word = provider.get_storage_at(self.deployment().poco, slot).await.expect("storage");
        let mask = (U256::from(1) << 192) - U256::from(1);
        let word = (word & mask) | (U256::from(score) << 192);
        provider
            .anvil_set_storage_at(self.deployment().poco, slot, B256::from(word))
            .await
            .expect("anvil_setStorageAt");
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
