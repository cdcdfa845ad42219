//! Deployment of the whole protocol: at once ([`deploy()`], for devnets and tests), or step by
//! step from a [`Journal`] ([`resume`]), so that a deployment on a real chain that is
//! interrupted (a killed process, a node that stops answering) continues where it stopped and
//! never deploys a contract twice.
//!
//! A deployment is a fixed list of contract creations ([`Component`]s), each sent by the
//! deployer with a nonce of its own. [`resume`] signs each creation before it sends it and has
//! the journal written (by the caller's `persist`) with the transaction's nonce, hash and signed
//! bytes before the transaction leaves: whatever happens next, a later run finds the
//! transaction by its hash, or else by the deployer's nonce, and adopts its contract instead of
//! sending another.

use alloy::{
    eips::Encodable2718,
    network::{Ethereum, EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::{Address, B256, Bytes, U256},
    providers::{PendingTransactionBuilder, Provider},
    rpc::types::{BlockNumberOrTag, TransactionReceipt, TransactionRequest},
    sol_types::SolConstructor,
};
use serde::{Deserialize, Serialize};

use crate::{
    Error,
    bindings::{
        AppRegistry, DatasetRegistry, RLC, WorkerpoolRegistry, poco_deployable::Poco,
        tasks_deployable::PocoTasks,
    },
};

/// Where the protocol lives on a chain: every address a client needs, and the block to follow
/// events from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Chain id the protocol is deployed on.
    pub chain_id: u64,
    /// The protocol's entry point: escrow, orders, matching and the task lifecycle.
    pub poco: Address,
    /// The RLC token.
    pub token: Address,
    /// Registry of apps.
    pub app_registry: Address,
    /// Registry of datasets.
    pub dataset_registry: Address,
    /// Registry of workerpools.
    pub workerpool_registry: Address,
    /// The task-lifecycle module `Poco` delegates to.
    pub tasks_module: Address,
    /// Block of the deployment: nothing of the protocol happened before it.
    pub block: u64,
}

/// What a deployment is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployOptions {
    /// Owner of `Poco`: the only account that may add categories.
    pub owner: Address,
    /// An existing RLC (ERC-20) token; `None` deploys a new one, its supply to the deployer.
    pub token: Option<Address>,
    /// Blocks between a committee deal's match and the block whose hash seeds its draw. Zero
    /// seeds a draw with the match's own block; on a chain where block producers could be
    /// attackers, a delay longer than the chain's proposer lookahead keeps anyone from choosing
    /// who produces the seeding block (see docs/protocol.md, "Committees").
    pub committee_seed_delay: u64,
}

impl DeployOptions {
    /// A devnet's options: a new token, and draws seeded by the match's own block (a devnet's
    /// blocks come only with transactions, and its one producer is the devnet itself).
    pub const fn devnet(owner: Address) -> Self {
        Self { owner, token: None, committee_seed_delay: 0 }
    }
}

/// One contract a deployment creates, in the order it creates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    /// A new RLC token (skipped when the deployment uses an existing ERC-20).
    Token,
    /// The registry of apps.
    AppRegistry,
    /// The registry of datasets.
    DatasetRegistry,
    /// The registry of workerpools.
    WorkerpoolRegistry,
    /// The task-lifecycle module.
    TasksModule,
    /// The protocol's entry point, which creates the five default categories (XS to XL).
    Poco,
}

impl Component {
    /// Every component, in deployment order.
    pub const ALL: [Self; 6] = [
        Self::Token,
        Self::AppRegistry,
        Self::DatasetRegistry,
        Self::WorkerpoolRegistry,
        Self::TasksModule,
        Self::Poco,
    ];

    /// The contract's name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Token => "RLC",
            Self::AppRegistry => "AppRegistry",
            Self::DatasetRegistry => "DatasetRegistry",
            Self::WorkerpoolRegistry => "WorkerpoolRegistry",
            Self::TasksModule => "PocoTasks",
            Self::Poco => "Poco",
        }
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Deploys the whole protocol from the provider's default sender: the RLC token (unless
/// `options.token` gives an existing one), the three registries, the task module and `Poco`
/// (owned by `options.owner`, with the five default categories XS to XL).
pub async fn deploy<P: Provider<Ethereum>>(
    provider: &P,
    options: DeployOptions,
) -> Result<Deployment, Error> {
    let chain_id = provider.get_chain_id().await?;
    let mut deployed = Deployed { token: options.token, ..Deployed::default() };
    let mut poco_block = 0;
    for component in components(&options) {
        let code = creation_code(component, &options, &deployed)?;
        let (address, receipt) = created(provider, code, component.name()).await?;
        deployed.set(component, address);
        poco_block = receipt.block_number.unwrap_or_default();
    }
    deployed.deployment(chain_id, poco_block).ok_or(Error::DeploymentFailed { contract: "Poco" })
}

/// Deploys the whole protocol as [`deploy()`] does (the same contracts, in the same order, with
/// the same arguments) on any EVM: `create` creates a contract from its creation code and
/// returns its address and the block it was created in. An in-process EVM (the simulator) uses
/// this to run the very contracts a chain runs.
pub fn deploy_through<E: From<Error>>(
    options: DeployOptions,
    chain_id: u64,
    mut create: impl FnMut(Component, Bytes) -> Result<(Address, u64), E>,
) -> Result<Deployment, E> {
    let mut deployed = Deployed { token: options.token, ..Deployed::default() };
    let mut poco_block = 0;
    for component in components(&options) {
        let code = creation_code(component, &options, &deployed)?;
        let (address, block) = create(component, code)?;
        deployed.set(component, address);
        poco_block = block;
    }
    Ok(deployed
        .deployment(chain_id, poco_block)
        .ok_or(Error::DeploymentFailed { contract: "Poco" })?)
}

/// The components `options` deploy, in order.
fn components(options: &DeployOptions) -> Vec<Component> {
    Component::ALL
        .into_iter()
        .filter(|component| *component != Component::Token || options.token.is_none())
        .collect()
}

/// The addresses deployed so far.
#[derive(Debug, Clone, Copy, Default)]
struct Deployed {
    token: Option<Address>,
    app_registry: Option<Address>,
    dataset_registry: Option<Address>,
    workerpool_registry: Option<Address>,
    tasks_module: Option<Address>,
    poco: Option<Address>,
}

impl Deployed {
    fn set(&mut self, component: Component, address: Address) {
        let slot = match component {
            Component::Token => &mut self.token,
            Component::AppRegistry => &mut self.app_registry,
            Component::DatasetRegistry => &mut self.dataset_registry,
            Component::WorkerpoolRegistry => &mut self.workerpool_registry,
            Component::TasksModule => &mut self.tasks_module,
            Component::Poco => &mut self.poco,
        };
        *slot = Some(address);
    }

    fn deployment(&self, chain_id: u64, block: u64) -> Option<Deployment> {
        Some(Deployment {
            chain_id,
            poco: self.poco?,
            token: self.token?,
            app_registry: self.app_registry?,
            dataset_registry: self.dataset_registry?,
            workerpool_registry: self.workerpool_registry?,
            tasks_module: self.tasks_module?,
            block,
        })
    }
}

/// The creation code (bytecode and constructor arguments) of `component`, given what was
/// deployed before it.
fn creation_code(
    component: Component,
    options: &DeployOptions,
    deployed: &Deployed,
) -> Result<Bytes, Error> {
    let missing = |what: Component| Error::JournalMismatch {
        reason: format!("{component} needs {what}, which is not deployed yet"),
    };
    Ok(match component {
        Component::Token => RLC::BYTECODE.clone(),
        Component::AppRegistry => AppRegistry::BYTECODE.clone(),
        Component::DatasetRegistry => DatasetRegistry::BYTECODE.clone(),
        Component::WorkerpoolRegistry => WorkerpoolRegistry::BYTECODE.clone(),
        Component::TasksModule => {
            let arguments =
                PocoTasks::constructorCall::new((U256::from(options.committee_seed_delay),));
            [PocoTasks::BYTECODE.as_ref(), &arguments.abi_encode()].concat().into()
        }
        Component::Poco => {
            let arguments = Poco::constructorCall::new((
                options.owner,
                deployed.token.ok_or(missing(Component::Token))?,
                deployed.app_registry.ok_or(missing(Component::AppRegistry))?,
                deployed.dataset_registry.ok_or(missing(Component::DatasetRegistry))?,
                deployed.workerpool_registry.ok_or(missing(Component::WorkerpoolRegistry))?,
                deployed.tasks_module.ok_or(missing(Component::TasksModule))?,
            ));
            [Poco::BYTECODE.as_ref(), &arguments.abi_encode()].concat().into()
        }
    })
}

/// Sends a contract creation from the provider's default sender and waits for it to be mined.
async fn created<P: Provider<Ethereum>>(
    provider: &P,
    code: Bytes,
    name: &'static str,
) -> Result<(Address, TransactionReceipt), Error> {
    let request = TransactionRequest::default().with_deploy_code(code).with_gas_limit(8_000_000);
    let receipt = provider.send_transaction(request).await?.get_receipt().await?;
    if !receipt.status() {
        return Err(Error::DeploymentFailed { contract: name });
    }
    let address = receipt.contract_address.ok_or(Error::DeploymentFailed { contract: name })?;
    Ok((address, receipt))
}

/// What an ERC-20 token answers, checked before a deployment adopts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// The token.
    pub address: Address,
    /// Its symbol.
    pub symbol: String,
    /// Its decimals (the protocol counts in units of 10^-9: a token of 9 decimals reads as
    /// RLC and nRLC).
    pub decimals: u8,
    /// Its total supply, in its smallest unit.
    pub total_supply: U256,
}

/// Checks that `token` is a contract that answers the ERC-20 calls the protocol makes of a
/// token (`decimals`, `symbol`, `totalSupply`, `balanceOf`, `allowance`).
pub async fn check_token<P: Provider<Ethereum>>(
    provider: &P,
    token: Address,
) -> Result<TokenInfo, Error> {
    let not_a_token = |reason: String| Error::NotAToken { token, reason };
    let code = provider.get_code_at(token).await?;
    if code.is_empty() {
        return Err(not_a_token("no contract at this address on this chain".into()));
    }
    let contract = RLC::new(token, provider);
    let answer = |call: &str, e: alloy::contract::Error| {
        not_a_token(format!("it does not answer `{call}` as an ERC-20 does ({e})"))
    };
    let decimals = contract.decimals().call().await.map_err(|e| answer("decimals()", e))?;
    let symbol = contract.symbol().call().await.map_err(|e| answer("symbol()", e))?;
    let total_supply =
        contract.totalSupply().call().await.map_err(|e| answer("totalSupply()", e))?;
    contract.balanceOf(Address::ZERO).call().await.map_err(|e| answer("balanceOf(address)", e))?;
    contract
        .allowance(Address::ZERO, Address::ZERO)
        .call()
        .await
        .map_err(|e| answer("allowance(address,address)", e))?;
    Ok(TokenInfo { address: token, symbol, decimals, total_supply })
}

/// The record of a deployment in progress or done: what it deploys, and each contract creation
/// sent, so that an interrupted deployment continues where it stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Journal {
    /// The chain: a journal is never resumed on another.
    pub chain_id: u64,
    /// The account that sends every creation: a journal is never resumed by another.
    pub deployer: Address,
    /// The owner of `Poco`.
    pub owner: Address,
    /// The existing ERC-20 token used, if the deployment deploys none.
    pub existing_token: Option<Address>,
    /// [`DeployOptions::committee_seed_delay`].
    pub committee_seed_delay: u64,
    /// The creations sent, in order.
    pub steps: Vec<JournalStep>,
}

/// One contract creation of a [`Journal`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JournalStep {
    /// What it creates.
    pub component: Component,
    /// The deployer's nonce it uses: its contract's address follows from it.
    pub nonce: u64,
    /// The signed transaction's hash.
    pub transaction: B256,
    /// The signed transaction, to send again (the same transaction, so never twice) if the
    /// node lost it.
    pub raw: Bytes,
    /// The chain's head when it was signed: its contract cannot be older.
    pub signed_at_block: u64,
    /// The contract created, once the creation is known to be mined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// The block it was mined in, when its receipt was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<u64>,
}

impl Journal {
    /// A journal for a deployment by `deployer` on chain `chain_id`, nothing sent yet.
    pub fn new(chain_id: u64, deployer: Address, options: DeployOptions) -> Self {
        Self {
            chain_id,
            deployer,
            owner: options.owner,
            existing_token: options.token,
            committee_seed_delay: options.committee_seed_delay,
            steps: Vec::new(),
        }
    }

    /// The options this journal deploys with.
    pub fn options(&self) -> DeployOptions {
        DeployOptions {
            owner: self.owner,
            token: self.existing_token,
            committee_seed_delay: self.committee_seed_delay,
        }
    }

    /// The contracts this deployment creates, in order.
    pub fn components(&self) -> Vec<Component> {
        components(&self.options())
    }

    /// The step of `component`, if one was sent.
    pub fn step(&self, component: Component) -> Option<&JournalStep> {
        self.steps.iter().find(|step| step.component == component)
    }

    /// Whether every contract is created.
    pub fn is_complete(&self) -> bool {
        self.components()
            .into_iter()
            .all(|component| self.step(component).is_some_and(|step| step.address.is_some()))
    }

    /// The deployment, once complete. Its block is the earliest of its registries' and
    /// `Poco`'s creations: nothing of the protocol (not even a registry's event) happened
    /// before it.
    pub fn deployment(&self) -> Option<Deployment> {
        let deployed = self.deployed();
        let block = self
            .steps
            .iter()
            .filter(|step| step.address.is_some() && step.component != Component::Token)
            .map(|step| step.block.unwrap_or(step.signed_at_block))
            .min()?;
        self.is_complete().then(|| deployed.deployment(self.chain_id, block)).flatten()
    }

    fn deployed(&self) -> Deployed {
        let mut deployed = Deployed { token: self.existing_token, ..Deployed::default() };
        for step in &self.steps {
            if let Some(address) = step.address {
                deployed.set(step.component, address);
            }
        }
        deployed
    }
}

/// What [`resume`] did in one run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeReport {
    /// Transactions sent by this run (a transaction sent again after the node lost it counts
    /// once more).
    pub sent: Vec<(Component, B256)>,
    /// Creations of an earlier run found on-chain (by their hash or the deployer's nonce) and
    /// adopted, rather than sent again.
    pub adopted: Vec<Component>,
    /// Creations of an earlier run that deployed nothing (reverted, or their nonce taken by
    /// another transaction), planned again with a new nonce.
    pub replanned: Vec<Component>,
}

/// How [`resume`] signs and waits.
#[derive(Debug, Clone)]
pub struct ResumeOptions {
    /// The deployer's wallet (it must be [`Journal::deployer`]).
    pub wallet: EthereumWallet,
    /// Gas limit = estimate × (100 + margin) / 100.
    pub gas_margin_percent: u64,
    /// Longest wait for one creation to be mined.
    pub receipt_timeout: std::time::Duration,
}

/// Continues the deployment of `journal` on the chain of `provider`, from where it stopped,
/// until every contract is created; returns what this run did.
///
/// Every contract recorded as created is checked on-chain to be there and to be what the
/// journal says (a registry answers its name, `Poco` names the journal's token, registries,
/// module and owner). `persist` is called with the journal each time it changes, and must
/// write it durably (and atomically) before returning: in particular once a creation is signed
/// and before it is sent. A journal of another chain, or of another deployer than the wallet's,
/// is refused.
pub async fn resume<P, F>(
    provider: &P,
    journal: &mut Journal,
    options: &ResumeOptions,
    mut persist: F,
) -> Result<ResumeReport, Error>
where
    P: Provider<Ethereum>,
    F: FnMut(&Journal) -> std::io::Result<()>,
{
    let mut persist = |journal: &Journal| {
        persist(journal).map_err(|e| Error::Journal(format!("cannot write the journal: {e}")))
    };
    let chain_id = provider.get_chain_id().await?;
    if chain_id != journal.chain_id {
        return Err(Error::JournalMismatch {
            reason: format!(
                "the journal is of chain {}, and the endpoint serves chain {chain_id}",
                journal.chain_id
            ),
        });
    }
    let signer = alloy::network::NetworkWallet::<Ethereum>::default_signer_address(&options.wallet);
    if signer != journal.deployer {
        return Err(Error::JournalMismatch {
            reason: format!(
                "the journal's deployer is {}, and the wallet given is {signer}",
                journal.deployer
            ),
        });
    }
    if let Some(token) = journal.existing_token {
        check_token(provider, token).await?;
    }
    let mut report = ResumeReport::default();
    for component in journal.components() {
        loop {
            let Some(index) = journal.steps.iter().position(|s| s.component == component) else {
                send_new(provider, journal, component, options, &mut report, &mut persist).await?;
                continue;
            };
            let step = journal.steps[index].clone();
            if let Some(address) = step.address {
                check_created(provider, journal, component, address).await?;
                break;
            }
            let sent_here = report.sent.iter().any(|(sent, _)| *sent == component);
            match settle(provider, journal, &step, options).await? {
                Settled::Created { address, block } => {
                    check_created(provider, journal, component, address).await?;
                    let step = &mut journal.steps[index];
                    step.address = Some(address);
                    step.block = block;
                    persist(journal)?;
                    if !sent_here {
                        report.adopted.push(component);
                    }
                    break;
                }
                // A creation of this run that deployed nothing would do the same again.
                Settled::Nothing if sent_here => {
                    return Err(Error::DeploymentFailed { contract: component.name() });
                }
                Settled::Nothing => {
                    journal.steps.remove(index);
                    persist(journal)?;
                    report.replanned.push(component);
                }
                Settled::Unsent if sent_here => {
                    return Err(Error::DeploymentFailed { contract: component.name() });
                }
                Settled::Unsent => {
                    journal.steps.remove(index);
                    persist(journal)?;
                    report.replanned.push(component);
                }
                Settled::Resent => report.sent.push((component, step.transaction)),
                Settled::Waited => {}
            }
        }
    }
    Ok(report)
}

/// What became of a creation recorded without its contract.
enum Settled {
    /// It is mined and created its contract.
    Created { address: Address, block: Option<u64> },
    /// It created nothing, and its nonce is taken: it can be planned again.
    Nothing,
    /// The node did not have it: it was sent again (the same signed transaction), and is
    /// mined now.
    Resent,
    /// It was in the node's pool, and is mined now.
    Waited,
    /// The node refused it when it was sent again: it was never mined, its nonce is free.
    Unsent,
}

/// Finds out what became of `step`: by its receipt, else by the deployer's nonce.
async fn settle<P: Provider<Ethereum>>(
    provider: &P,
    journal: &Journal,
    step: &JournalStep,
    options: &ResumeOptions,
) -> Result<Settled, Error> {
    if let Some(receipt) = provider.get_transaction_receipt(step.transaction).await? {
        return Ok(match receipt.contract_address.filter(|_| receipt.status()) {
            Some(address) => Settled::Created { address, block: receipt.block_number },
            None => Settled::Nothing,
        });
    }
    let mined_nonce = provider.get_transaction_count(journal.deployer).latest().await?;
    if mined_nonce > step.nonce {
        // The nonce is used, by a transaction whose receipt the node does not give: the contract
        // is at the address that nonce gives, or nothing was created.
        let address = journal.deployer.create(step.nonce);
        let code = provider.get_code_at(address).await?;
        return Ok(if code.is_empty() {
            Settled::Nothing
        } else {
            Settled::Created { address, block: None }
        });
    }
    if mined_nonce < step.nonce {
        return Err(Error::JournalMismatch {
            reason: format!(
                "the journal's {} creation uses the deployer's nonce {}, and the chain has only \
                 seen {mined_nonce} of its transactions: was the chain reset?",
                step.component, step.nonce
            ),
        });
    }
    // The nonce is still free: the transaction is in the node's pool, or lost.
    if provider.get_transaction_by_hash(step.transaction).await?.is_none() {
        match provider.send_raw_transaction(&step.raw).await {
            Ok(_) => {}
            // Sent meanwhile (by a pool that had it after all): waiting is what is left.
            Err(e) if is_known_transaction(&e) => {}
            // The node refuses the transaction as it was signed (its fees no longer fit the
            // chain, say): nothing of it exists and its nonce is free, so it is signed anew,
            // with the same nonce. Should the old one be mined after all, the new one cannot
            // be, and the contract is found at the nonce's address.
            Err(e) if e.as_error_resp().is_some() => return Ok(Settled::Unsent),
            Err(e) => return Err(e.into()),
        }
        wait_mined(provider, step.transaction, step.component, options).await?;
        return Ok(Settled::Resent);
    }
    wait_mined(provider, step.transaction, step.component, options).await?;
    Ok(Settled::Waited)
}

/// Whether the node refused a raw transaction because it has it already, or because its nonce
/// is used (by it).
fn is_known_transaction(error: &alloy::transports::TransportError) -> bool {
    let text = error.to_string().to_lowercase();
    text.contains("already known")
        || text.contains("already imported")
        || text.contains("known transaction")
        || text.contains("nonce too low")
}

/// Waits for `hash` to be mined.
async fn wait_mined<P: Provider<Ethereum>>(
    provider: &P,
    hash: B256,
    component: Component,
    options: &ResumeOptions,
) -> Result<TransactionReceipt, Error> {
    PendingTransactionBuilder::new(provider.root().clone(), hash)
        .with_timeout(Some(options.receipt_timeout))
        .get_receipt()
        .await
        .map_err(|e| Error::Journal(format!("the {component} creation {hash} is not mined: {e}")))
}

/// Signs the creation of `component` with the deployer's next nonce, records it, sends it and
/// waits for it.
async fn send_new<P, F>(
    provider: &P,
    journal: &mut Journal,
    component: Component,
    options: &ResumeOptions,
    report: &mut ResumeReport,
    persist: &mut F,
) -> Result<(), Error>
where
    P: Provider<Ethereum>,
    F: FnMut(&Journal) -> Result<(), Error>,
{
    let code = creation_code(component, &journal.options(), &journal.deployed())?;
    let nonce = provider.get_transaction_count(journal.deployer).pending().await?;
    let head = provider.get_block_number().await?;
    let mut request = TransactionRequest::default()
        .with_from(journal.deployer)
        .with_deploy_code(code)
        .with_nonce(nonce)
        .with_chain_id(journal.chain_id);
    let estimate = provider.estimate_gas(request.clone()).await?;
    request.set_gas_limit(estimate.saturating_mul(100 + options.gas_margin_percent) / 100);
    let latest = provider.get_block_by_number(BlockNumberOrTag::Latest).await?;
    if latest.and_then(|block| block.header.base_fee_per_gas).is_some() {
        let fees = provider.estimate_eip1559_fees().await?;
        request.set_max_fee_per_gas(fees.max_fee_per_gas);
        request.set_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
    } else {
        request.set_gas_price(provider.get_gas_price().await?);
    }
    let envelope = request
        .build(&options.wallet)
        .await
        .map_err(|e| Error::Journal(format!("cannot sign the {component} creation: {e}")))?;
    let transaction = *envelope.tx_hash();
    let step = JournalStep {
        component,
        nonce,
        transaction,
        raw: envelope.encoded_2718().into(),
        signed_at_block: head,
        address: None,
        block: None,
    };
    journal.steps.push(step.clone());
    persist(journal)?;
    report.sent.push((component, transaction));
    match provider.send_raw_transaction(&step.raw).await {
        Ok(_) => {}
        Err(e) if is_known_transaction(&e) => {}
        Err(e) => return Err(e.into()),
    }
    wait_mined(provider, transaction, component, options).await?;
    Ok(())
}

/// Checks that `address` holds `component` as the journal deployed it.
async fn check_created<P: Provider<Ethereum>>(
    provider: &P,
    journal: &Journal,
    component: Component,
    address: Address,
) -> Result<(), Error> {
    let wrong = |why: String| Error::JournalMismatch {
        reason: format!("the journal's {component} at {address}: {why}"),
    };
    if provider.get_code_at(address).await?.is_empty() {
        return Err(wrong("no contract there on this chain (was the chain reset?)".into()));
    }
    let answers = |call: &str, e: alloy::contract::Error| wrong(format!("`{call}` fails: {e}"));
    let registry_name = match component {
        Component::Token => {
            let decimals = RLC::new(address, provider)
                .decimals()
                .call()
                .await
                .map_err(|e| answers("decimals()", e))?;
            return if decimals == 9 { Ok(()) } else { Err(wrong("not an RLC token".into())) };
        }
        Component::TasksModule => {
            let delay = PocoTasks::new(address, provider)
                .committeeSeedDelay()
                .call()
                .await
                .map_err(|e| answers("committeeSeedDelay()", e))?;
            return if delay == U256::from(journal.committee_seed_delay) {
                Ok(())
            } else {
                Err(wrong(format!("its committee seed delay is {delay}")))
            };
        }
        Component::Poco => return check_poco(provider, journal, address).await,
        Component::AppRegistry => AppRegistry::new(address, provider)
            .name()
            .call()
            .await
            .map_err(|e| answers("name()", e))?,
        Component::DatasetRegistry => DatasetRegistry::new(address, provider)
            .name()
            .call()
            .await
            .map_err(|e| answers("name()", e))?,
        Component::WorkerpoolRegistry => WorkerpoolRegistry::new(address, provider)
            .name()
            .call()
            .await
            .map_err(|e| answers("name()", e))?,
    };
    let expected = match component {
        Component::AppRegistry => "poco apps",
        Component::DatasetRegistry => "poco datasets",
        _ => "poco workerpools",
    };
    if registry_name == expected {
        Ok(())
    } else {
        Err(wrong(format!("it is named {registry_name:?}, not {expected:?}")))
    }
}

/// Checks that the `Poco` at `address` is wired to the journal's contracts and owner.
async fn check_poco<P: Provider<Ethereum>>(
    provider: &P,
    journal: &Journal,
    address: Address,
) -> Result<(), Error> {
    let poco = Poco::new(address, provider);
    let deployed = journal.deployed();
    let fails = |call: &str, e: alloy::contract::Error| Error::JournalMismatch {
        reason: format!("the journal's Poco at {address}: `{call}` fails: {e}"),
    };
    let wired = [
        ("token", poco.token().call().await.map_err(|e| fails("token()", e))?, deployed.token),
        (
            "app registry",
            poco.appregistry().call().await.map_err(|e| fails("appregistry()", e))?,
            deployed.app_registry,
        ),
        (
            "dataset registry",
            poco.datasetregistry().call().await.map_err(|e| fails("datasetregistry()", e))?,
            deployed.dataset_registry,
        ),
        (
            "workerpool registry",
            poco.workerpoolregistry().call().await.map_err(|e| fails("workerpoolregistry()", e))?,
            deployed.workerpool_registry,
        ),
        (
            "task module",
            poco.tasksModule().call().await.map_err(|e| fails("tasksModule()", e))?,
            deployed.tasks_module,
        ),
        ("owner", poco.owner().call().await.map_err(|e| fails("owner()", e))?, Some(journal.owner)),
    ];
    for (what, actual, expected) in wired {
        if Some(actual) != expected {
            return Err(Error::JournalMismatch {
                reason: format!(
                    "the journal's Poco at {address} names {actual} as its {what}, not the \
                     journal's"
                ),
            });
        }
    }
    Ok(())
}
