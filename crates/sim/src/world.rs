//! A marketplace on a [`Ledger`]: the protocol deployed by [`poco_contracts::deploy_through`]
//! (the contracts a chain runs), accounts funded, apps and pools created, and each step of a
//! deal's life one call, made by the actor whose step it is.

use alloy::{
    primitives::{Address, B256, Bytes, U256, keccak256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolEvent,
};
use poco_contracts::{
    DeployOptions, Deployment,
    bindings::{
        AppRegistry, IPoco,
        IPocoTypes::{AppOrder, DatasetOrder, Deal, RequestOrder, Task, WorkerpoolOrder},
        RLC, WorkerpoolRegistry,
    },
};

use crate::ledger::{CHAIN_ID, Ledger, LedgerError, Outcome, Result};

/// One RLC in nRLC, the unit of every amount.
pub const RLC_UNIT: u64 = 1_000_000_000;

/// A participant with a key of its own (derived from its name: a scenario is reproducible).
#[derive(Clone, Debug)]
pub struct Actor {
    name: String,
    key: PrivateKeySigner,
}

impl Actor {
    /// The actor called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        let seed = keccak256(format!("poco-sim actor {name}"));
        let key =
            PrivateKeySigner::from_bytes(&seed).expect("a hash is a valid key (but for 2^-128)");
        Self { name, key }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its address.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// Its signature of the EIP-712 digest `hash`.
    fn sign_hash(&self, hash: B256) -> Bytes {
        let signature = self.key.sign_hash_sync(&hash).expect("local keys sign");
        Bytes::from(signature.as_bytes().to_vec())
    }

    /// Its (scheduler's) authorization of `worker` for `taskid`, with no enclave.
    fn authorize(&self, worker: Address, taskid: B256) -> Bytes {
        let message =
            keccak256([worker.as_slice(), taskid.as_slice(), Address::ZERO.as_slice()].concat());
        let signature = self.key.sign_message_sync(message.as_slice()).expect("local keys sign");
        Bytes::from(signature.as_bytes().to_vec())
    }
}

/// What a deal is made of: its parties, prices (nRLC per task) and terms.
#[derive(Clone, Debug)]
pub struct DealTerms<'a> {
    /// The app, and its owner (who signs its order).
    pub app: (Address, &'a Actor),
    /// The app's price.
    pub app_price: u64,
    /// The workerpool, and its owner (the scheduler, who signs its order).
    pub pool: (Address, &'a Actor),
    /// The pool's price.
    pub pool_price: u64,
    /// Who buys.
    pub requester: &'a Actor,
    /// The trust asked.
    pub trust: u64,
    /// How many tasks.
    pub volume: u64,
    /// The tag (0 for a plain deal).
    pub tag: B256,
    /// Makes the orders unique.
    pub salt: B256,
}

/// The task id of task `idx` of `deal`.
pub fn task_id(deal: &Deal, idx: u64) -> B256 {
    let dealid =
        keccak256([deal.requestHash.as_slice(), &deal.botFirst.to_be_bytes::<32>()].concat());
    keccak256([dealid.as_slice(), &U256::from(idx).to_be_bytes::<32>()].concat())
}

/// The protocol on a ledger, and the account that deployed it (it holds the token's supply).
#[derive(Debug)]
pub struct World<L> {
    /// The chain.
    pub ledger: L,
    /// Where the protocol is.
    pub deployment: Deployment,
    deployer: Address,
}

impl<L: Ledger> World<L> {
    /// Deploys the protocol on `ledger` (from an account of its own, which owns it and holds the
    /// RLC supply).
    pub fn new(mut ledger: L) -> Result<Self> {
        let deployer = Actor::new("deployer").address();
        let deployment = poco_contracts::deploy_through(
            DeployOptions::devnet(deployer),
            CHAIN_ID,
            |component, code| {
                let outcome = ledger.transact(deployer, None, code)?;
                let created = outcome.created.ok_or_else(|| {
                    LedgerError::Backend(format!("the creation of {component} created nothing"))
                })?;
                Ok::<_, LedgerError>((created, ledger.block()))
            },
        )?;
        let approve = RLC::approveCall { spender: deployment.poco, value: U256::MAX };
        ledger.send(deployer, deployment.token, &approve)?;
        Ok(Self { ledger, deployment, deployer })
    }

    fn poco(&self) -> Address {
        self.deployment.poco
    }

    /// Credits `amount` nRLC to `account`'s poco account, from the supply.
    pub fn fund(&mut self, account: Address, amount: u64) -> Result<Outcome> {
        let call = IPoco::depositForCall { amount: U256::from(amount), target: account };
        self.ledger.send(self.deployer, self.poco(), &call)
    }

    /// What `account` holds in its poco account: free, and frozen.
    pub fn account(&mut self, account: Address) -> Result<(U256, U256)> {
        let free = self.ledger.read(self.poco(), &IPoco::balanceOfCall { account })?;
        let frozen = self.ledger.read(self.poco(), &IPoco::frozenOfCall { account })?;
        Ok((free, frozen))
    }

    /// The burn account's address.
    pub fn burn_account(&mut self) -> Result<Address> {
        self.ledger.read(self.poco(), &IPoco::burnAccountCall {})
    }

    /// Creates an app owned by `owner`.
    pub fn create_app(&mut self, owner: &Actor, name: &str) -> Result<Address> {
        let call = AppRegistry::createAppCall {
            owner: owner.address(),
            name: name.into(),
            appType: "WASM".into(),
            multiaddr: Bytes::from(format!("https://apps.example/{name}.wasm").into_bytes()),
            checksum: keccak256(name),
            mrenclave: Bytes::new(),
        };
        let registry = self.deployment.app_registry;
        let app = self.ledger.read(registry, &call)?;
        self.ledger.send(owner.address(), registry, &call)?;
        Ok(app)
    }

    /// Creates a workerpool owned (and scheduled) by `owner`.
    pub fn create_workerpool(&mut self, owner: &Actor) -> Result<Address> {
        let call = WorkerpoolRegistry::createWorkerpoolCall {
            owner: owner.address(),
            description: format!("{}'s pool", owner.name()),
        };
        let registry = self.deployment.workerpool_registry;
        let pool = self.ledger.read(registry, &call)?;
        self.ledger.send(owner.address(), registry, &call)?;
        Ok(pool)
    }

    /// Signs the orders of `terms` and matches them (sent by the requester): the deal.
    pub fn match_deal(&mut self, terms: &DealTerms<'_>) -> Result<(Deal, Outcome)> {
        let poco = self.poco();
        let (app, app_owner) = terms.app;
        let (pool, scheduler) = terms.pool;
        let mut app_order = AppOrder {
            app,
            appprice: U256::from(terms.app_price),
            volume: U256::from(terms.volume),
            tag: terms.tag,
            datasetrestrict: Address::ZERO,
            workerpoolrestrict: Address::ZERO,
            requesterrestrict: Address::ZERO,
            salt: terms.salt,
            sign: Bytes::new(),
        };
        let hash = self.ledger.read(poco, &IPoco::hashAppOrderCall { order: app_order.clone() })?;
        app_order.sign = app_owner.sign_hash(hash);
        let mut pool_order = WorkerpoolOrder {
            workerpool: pool,
            workerpoolprice: U256::from(terms.pool_price),
            volume: U256::from(terms.volume),
            tag: terms.tag,
            category: U256::ZERO,
            trust: U256::from(terms.trust),
            apprestrict: Address::ZERO,
            datasetrestrict: Address::ZERO,
            requesterrestrict: Address::ZERO,
            salt: terms.salt,
            sign: Bytes::new(),
        };
        let hash = self
            .ledger
            .read(poco, &IPoco::hashWorkerpoolOrderCall { order: pool_order.clone() })?;
        pool_order.sign = scheduler.sign_hash(hash);
        let requester = terms.requester.address();
        let mut request = RequestOrder {
            app,
            appmaxprice: U256::from(terms.app_price),
            dataset: Address::ZERO,
            datasetmaxprice: U256::ZERO,
            workerpool: pool,
            workerpoolmaxprice: U256::from(terms.pool_price),
            requester,
            volume: U256::from(terms.volume),
            tag: terms.tag,
            category: U256::ZERO,
            trust: U256::from(terms.trust),
            beneficiary: requester,
            callback: Address::ZERO,
            params: String::new(),
            salt: terms.salt,
            sign: Bytes::new(),
        };
        let hash =
            self.ledger.read(poco, &IPoco::hashRequestOrderCall { order: request.clone() })?;
        request.sign = terms.requester.sign_hash(hash);
        let call = IPoco::matchOrdersCall {
            appOrder: app_order,
            datasetOrder: DatasetOrder::default(),
            workerpoolOrder: pool_order,
            requestOrder: request,
        };
        let outcome = self.ledger.send(requester, poco, &call)?;
        let deal = outcome
            .logs
            .iter()
            .find_map(|log| IPoco::DealCreated::decode_log(log).ok())
            .map(|event| event.data.deal)
            .ok_or_else(|| LedgerError::Backend("no DealCreated event in the match".into()))?;
        Ok((deal, outcome))
    }

    /// `initialize` of task `idx`, by the scheduler: the task's id.
    pub fn initialize(
        &mut self,
        scheduler: &Actor,
        deal: &Deal,
        idx: u64,
    ) -> Result<(B256, Outcome)> {
        let call = IPoco::initializeCall { deal: deal.clone(), idx: U256::from(idx) };
        let outcome = self.ledger.send(scheduler.address(), self.poco(), &call)?;
        Ok((task_id(deal, idx), outcome))
    }

    /// `contribute` of `digest` to task `idx` by `worker`, authorized by `scheduler`.
    pub fn contribute(
        &mut self,
        scheduler: &Actor,
        worker: &Actor,
        deal: &Deal,
        idx: u64,
        digest: B256,
    ) -> Result<Outcome> {
        let taskid = task_id(deal, idx);
        let call = IPoco::contributeCall {
            deal: deal.clone(),
            idx: U256::from(idx),
            resultHash: keccak256([taskid.as_slice(), digest.as_slice()].concat()),
            resultSeal: keccak256(
                [worker.address().as_slice(), taskid.as_slice(), digest.as_slice()].concat(),
            ),
            enclaveChallenge: Address::ZERO,
            enclaveSign: Bytes::new(),
            authorizationSign: scheduler.authorize(worker.address(), taskid),
        };
        self.ledger.send(worker.address(), self.poco(), &call)
    }

    /// `reveal` of `digest` by `worker`.
    pub fn reveal(&mut self, worker: &Actor, taskid: B256, digest: B256) -> Result<Outcome> {
        let call = IPoco::revealCall { taskid, resultDigest: digest };
        self.ledger.send(worker.address(), self.poco(), &call)
    }

    /// `finalize` of task `idx` by the scheduler, naming its contributors.
    pub fn finalize(
        &mut self,
        scheduler: &Actor,
        deal: &Deal,
        idx: u64,
        digest: B256,
        mut contributors: Vec<Address>,
    ) -> Result<Outcome> {
        contributors.sort();
        let taskid = task_id(deal, idx);
        let call = IPoco::finalizeCall {
            deal: deal.clone(),
            idx: U256::from(idx),
            resultDigest: digest,
            results: Bytes::from(format!("/results/{taskid}").into_bytes()),
            resultsCallback: Bytes::new(),
            contributors,
        };
        self.ledger.send(scheduler.address(), self.poco(), &call)
    }

    /// `contributeAndFinalize` of `digest` by `worker` (trust 1), authorized by `scheduler`.
    pub fn contribute_and_finalize(
        &mut self,
        scheduler: &Actor,
        worker: &Actor,
        deal: &Deal,
        idx: u64,
        digest: B256,
    ) -> Result<Outcome> {
        let taskid = task_id(deal, idx);
        let call = IPoco::contributeAndFinalizeCall {
            deal: deal.clone(),
            idx: U256::from(idx),
            resultDigest: digest,
            results: Bytes::from(format!("/results/{taskid}").into_bytes()),
            resultsCallback: Bytes::new(),
            enclaveChallenge: Address::ZERO,
            enclaveSign: Bytes::new(),
            authorizationSign: scheduler.authorize(worker.address(), taskid),
        };
        self.ledger.send(worker.address(), self.poco(), &call)
    }

    /// `claim` of task `idx` by `by`, naming its contributors.
    pub fn claim(
        &mut self,
        by: &Actor,
        deal: &Deal,
        idx: u64,
        mut contributors: Vec<Address>,
    ) -> Result<Outcome> {
        contributors.sort();
        let call = IPoco::claimCall { deal: deal.clone(), idx: U256::from(idx), contributors };
        self.ledger.send(by.address(), self.poco(), &call)
    }

    /// A task as the contract keeps it.
    pub fn task(&mut self, taskid: B256) -> Result<Task> {
        self.ledger.read(self.poco(), &IPoco::viewTaskCall { taskid })
    }
}
