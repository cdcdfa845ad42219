//! Drives the task lifecycle with real transactions, one step at a time, for the gas benchmark
//! (and the chain of the reads benchmark).

use alloy::{
    primitives::{Address, B256, Bytes, U256, keccak256},
    providers::{Provider, ext::AnvilApi},
    rpc::types::TransactionReceipt,
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolEvent,
};
use eyre::{Result, WrapErr, eyre};
use poco_chain::{ChainClient, ClientConfig, DevnetAccounts};
use poco_contracts::{
    Deployment,
    bindings::{
        AppRegistry, IPoco,
        IPocoTypes::{AppOrder, DatasetOrder, Deal, RequestOrder, WorkerpoolOrder},
        RLC, WorkerpoolRegistry,
    },
};

const RLC_UNIT: u64 = 1_000_000_000;
/// App price per task: 1 RLC.
const APP_PRICE: u64 = RLC_UNIT;
/// Workerpool price per task: 2 RLC.
const WORKERPOOL_PRICE: u64 = 2 * RLC_UNIT;

/// A deployed protocol with an app, a workerpool and funded actors.
pub struct Lifecycle {
    deployment: Deployment,
    owner: ChainClient,
    requester: ChainClient,
    scheduler: ChainClient,
    scheduler_key: PrivateKeySigner,
    requester_key: PrivateKeySigner,
    app_key: PrivateKeySigner,
    app: Address,
    workerpool: Address,
}

impl Lifecycle {
    /// Deploys the protocol on `rpc_url`, funds every account of `accounts` and creates an app
    /// and a workerpool.
    pub async fn deploy(rpc_url: &str, accounts: &DevnetAccounts) -> Result<Self> {
        let config = ClientConfig::default();
        let owner = ChainClient::connect(rpc_url, Some(accounts.owner.clone()), config).await?;
        let deployment = poco_contracts::deploy(
            owner.provider(),
            poco_contracts::DeployOptions::devnet(accounts.owner.address()),
        )
        .await?;
        let token = RLC::new(deployment.token, owner.provider().clone());
        let poco = owner.poco(deployment.poco);
        let deposit = U256::from(10_000 * RLC_UNIT);
        owner.send(token.approve(deployment.poco, U256::MAX)).await?;
        for user in accounts.users() {
            owner.send(poco.depositFor(deposit, user.address())).await?;
        }

        let app_provider = owner.with_wallet(accounts.app_provider.clone());
        let apps = AppRegistry::new(deployment.app_registry, app_provider.provider().clone());
        let create = apps.createApp(
            accounts.app_provider.address(),
            "hash-chain".into(),
            "WASM".into(),
            Bytes::from_static(b"https://apps.example/hash-chain.wasm"),
            B256::repeat_byte(0xaa),
            Bytes::new(),
        );
        let app = create.call().await.wrap_err("predicting the app")?;
        app_provider.send(create).await?;

        let scheduler = owner.with_wallet(accounts.scheduler.clone());
        let pools =
            WorkerpoolRegistry::new(deployment.workerpool_registry, scheduler.provider().clone());
        let create = pools.createWorkerpool(accounts.scheduler.address(), "bench pool".into());
        let workerpool = create.call().await.wrap_err("predicting the workerpool")?;
        scheduler.send(create).await?;

        Ok(Self {
            deployment,
            requester: owner.with_wallet(accounts.requester.clone()),
            owner,
            scheduler,
            scheduler_key: accounts.scheduler.clone(),
            requester_key: accounts.requester.clone(),
            app_key: accounts.app_provider.clone(),
            app,
            workerpool,
        })
    }

    /// The protocol's deployment.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The owner's provider.
    pub(crate) fn provider(&self) -> &alloy::providers::DynProvider {
        self.owner.provider()
    }

    /// Matches fresh orders for `volume` tasks at `trust`; `salt` makes the orders unique.
    pub async fn match_deal(
        &self,
        trust: u64,
        volume: u64,
        salt: u8,
    ) -> Result<(Deal, TransactionReceipt)> {
        self.match_tagged(trust, volume, salt, B256::ZERO).await
    }

    /// Matches fresh orders of a committee deal (tag `committee`, the pool named by the
    /// request) for `volume` tasks at `trust`.
    pub async fn match_committee_deal(
        &self,
        trust: u64,
        volume: u64,
        salt: u8,
    ) -> Result<(Deal, TransactionReceipt)> {
        self.match_tagged(trust, volume, salt, B256::from(U256::from(1u64 << 9))).await
    }

    async fn match_tagged(
        &self,
        trust: u64,
        volume: u64,
        salt: u8,
        tag: B256,
    ) -> Result<(Deal, TransactionReceipt)> {
        let poco = self.requester.poco(self.deployment.poco);
        let salt = B256::repeat_byte(salt);
        let mut app_order = AppOrder {
            app: self.app,
            appprice: U256::from(APP_PRICE),
            volume: U256::from(volume),
            tag: B256::ZERO,
            datasetrestrict: Address::ZERO,
            workerpoolrestrict: Address::ZERO,
            requesterrestrict: Address::ZERO,
            salt,
            sign: Bytes::new(),
        };
        app_order.sign = sign(&self.app_key, poco.hashAppOrder(app_order.clone()).call().await?);
        let dataset_order = DatasetOrder::default();
        let mut pool_order = WorkerpoolOrder {
            workerpool: self.workerpool,
            workerpoolprice: U256::from(WORKERPOOL_PRICE),
            volume: U256::from(volume),
            tag,
            category: U256::ZERO,
            trust: U256::from(trust),
            apprestrict: Address::ZERO,
            datasetrestrict: Address::ZERO,
            requesterrestrict: Address::ZERO,
            salt,
            sign: Bytes::new(),
        };
        pool_order.sign =
            sign(&self.scheduler_key, poco.hashWorkerpoolOrder(pool_order.clone()).call().await?);
        let mut request = RequestOrder {
            app: self.app,
            appmaxprice: U256::from(APP_PRICE),
            dataset: Address::ZERO,
            datasetmaxprice: U256::ZERO,
            workerpool: self.workerpool,
            workerpoolmaxprice: U256::from(WORKERPOOL_PRICE),
            requester: self.requester_key.address(),
            volume: U256::from(volume),
            tag,
            category: U256::ZERO,
            trust: U256::from(trust),
            beneficiary: self.requester_key.address(),
            callback: Address::ZERO,
            params: r#"{"iexec_args":"1000"}"#.into(),
            salt,
            sign: Bytes::new(),
        };
        request.sign =
            sign(&self.requester_key, poco.hashRequestOrder(request.clone()).call().await?);
        let receipt = self
            .requester
            .send(poco.matchOrders(app_order, dataset_order, pool_order, request))
            .await?;
        let deal = receipt
            .inner
            .logs()
            .iter()
            .find_map(|log| IPoco::DealCreated::decode_log(&log.inner).ok())
            .map(|event| event.data.deal)
            .ok_or_else(|| eyre!("no DealCreated event in the receipt"))?;
        Ok((deal, receipt))
    }

    /// `joinWorkerpool` of the bench pool by `worker`.
    pub async fn join(&self, worker: &PrivateKeySigner) -> Result<TransactionReceipt> {
        let client = self.owner.with_wallet(worker.clone());
        let poco = client.poco(self.deployment.poco);
        Ok(client.send(poco.joinWorkerpool(self.workerpool)).await?)
    }

    /// The seat holders of a committee task (once its draw can be read).
    pub async fn seats(&self, deal: &Deal, idx: U256) -> Result<Vec<Address>> {
        let poco = self.owner.poco(self.deployment.poco);
        Ok(poco.viewCommittee(deal.clone(), idx).call().await?)
    }

    /// `initialize`, sent by the scheduler.
    pub async fn initialize(&self, deal: &Deal, idx: U256) -> Result<TransactionReceipt> {
        let poco = self.scheduler.poco(self.deployment.poco);
        Ok(self.scheduler.send(poco.initialize(deal.clone(), idx)).await?)
    }

    /// `initializeArray`, sent by the scheduler.
    pub async fn initialize_array(
        &self,
        deal: &Deal,
        indexes: Vec<U256>,
    ) -> Result<TransactionReceipt> {
        let poco = self.scheduler.poco(self.deployment.poco);
        Ok(self.scheduler.send(poco.initializeArray(deal.clone(), indexes)).await?)
    }

    /// `contribute` of `digest` by `worker`, with the scheduler's authorization.
    pub async fn contribute(
        &self,
        deal: &Deal,
        idx: U256,
        worker: &PrivateKeySigner,
        digest: B256,
    ) -> Result<TransactionReceipt> {
        let client = self.owner.with_wallet(worker.clone());
        let poco = client.poco(self.deployment.poco);
        let taskid = task_id(deal, idx);
        let result_hash = keccak256([taskid.as_slice(), digest.as_slice()].concat());
        let seal =
            keccak256([worker.address().as_slice(), taskid.as_slice(), digest.as_slice()].concat());
        let authorization = self.authorize(worker.address(), taskid);
        let call = poco.contribute(
            deal.clone(),
            idx,
            result_hash,
            seal,
            Address::ZERO,
            Bytes::new(),
            authorization,
        );
        Ok(client.send(call).await?)
    }

    /// `reveal` of `digest` by `worker`.
    pub async fn reveal(
        &self,
        deal: &Deal,
        idx: U256,
        worker: &PrivateKeySigner,
        digest: B256,
    ) -> Result<TransactionReceipt> {
        let client = self.owner.with_wallet(worker.clone());
        let poco = client.poco(self.deployment.poco);
        Ok(client.send(poco.reveal(task_id(deal, idx), digest)).await?)
    }

    /// `finalize` by the scheduler with the task's contributors.
    pub async fn finalize(
        &self,
        deal: &Deal,
        idx: U256,
        digest: B256,
        mut contributors: Vec<Address>,
    ) -> Result<TransactionReceipt> {
        contributors.sort();
        let poco = self.scheduler.poco(self.deployment.poco);
        let results = Bytes::from(format!("/results/{}", task_id(deal, idx)).into_bytes());
        let call = poco.finalize(deal.clone(), idx, digest, results, Bytes::new(), contributors);
        Ok(self.scheduler.send(call).await?)
    }

    /// `contributeAndFinalize` by `worker`.
    pub async fn contribute_and_finalize(
        &self,
        deal: &Deal,
        idx: U256,
        worker: &PrivateKeySigner,
    ) -> Result<TransactionReceipt> {
        let client = self.owner.with_wallet(worker.clone());
        let poco = client.poco(self.deployment.poco);
        let taskid = task_id(deal, idx);
        let results = Bytes::from(format!("/results/{taskid}").into_bytes());
        let call = poco.contributeAndFinalize(
            deal.clone(),
            idx,
            B256::repeat_byte(0x42),
            results,
            Bytes::new(),
            Address::ZERO,
            Bytes::new(),
            self.authorize(worker.address(), taskid),
        );
        Ok(client.send(call).await?)
    }

    /// `claim`, sent by the requester.
    pub async fn claim(
        &self,
        deal: &Deal,
        idx: U256,
        mut contributors: Vec<Address>,
    ) -> Result<TransactionReceipt> {
        contributors.sort();
        let poco = self.requester.poco(self.deployment.poco);
        Ok(self.requester.send(poco.claim(deal.clone(), idx, contributors)).await?)
    }

    /// Moves the chain's clock forward and mines a block.
    pub async fn warp(&self, seconds: u64) -> Result<()> {
        self.owner.provider().anvil_increase_time(seconds).await?;
        self.owner.provider().anvil_mine(Some(1), None).await?;
        Ok(())
    }

    /// The conditions of the run: node, hardfork, machine.
    pub async fn conditions(&self) -> Result<String> {
        let version: String =
            self.owner.provider().raw_request("web3_clientVersion".into(), ()).await?;
        let cpu = crate::cpu_model();
        Ok(format!(
            "node: {version}, hardfork prague, automine; machine: {cpu}; prices: app 1 RLC, \
             workerpool 2 RLC, no dataset; every order fresh; every actor already holds an \
             account; workers fresh (score 0)"
        ))
    }

    fn authorize(&self, worker: Address, taskid: B256) -> Bytes {
        let message =
            keccak256([worker.as_slice(), taskid.as_slice(), Address::ZERO.as_slice()].concat());
        let signature =
            self.scheduler_key.sign_message_sync(message.as_slice()).expect("signing works");
        Bytes::from(signature.as_bytes().to_vec())
    }
}

fn sign(signer: &PrivateKeySigner, digest: B256) -> Bytes {
    let signature = signer.sign_hash_sync(&digest).expect("signing works");
    Bytes::from(signature.as_bytes().to_vec())
}

/// keccak256(requestHash ‖ botFirst), then keccak256(dealid ‖ idx).
fn task_id(deal: &Deal, idx: U256) -> B256 {
    let dealid =
        keccak256([deal.requestHash.as_slice(), &deal.botFirst.to_be_bytes::<32>()].concat());
    keccak256([dealid.as_slice(), &idx.to_be_bytes::<32>()].concat())
}
