//! Deployment of the whole protocol.

use alloy::{
    network::{Ethereum, TransactionBuilder},
    primitives::{Address, Bytes, U256},
    providers::Provider,
    rpc::types::TransactionReceipt,
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

/// Deploys the whole protocol from the provider's default sender: the RLC token (unless
/// `options.token` gives an existing one), the three registries, the task module and `Poco`
/// (owned by `options.owner`, with the five default categories XS to XL).
pub async fn deploy<P: Provider<Ethereum>>(
    provider: &P,
    options: DeployOptions,
) -> Result<Deployment, Error> {
    let DeployOptions { owner, token, committee_seed_delay } = options;
    let chain_id = provider.get_chain_id().await?;
    let token = match token {
        Some(token) => token,
        None => deployed(provider, RLC::BYTECODE.clone(), "RLC").await?.0,
    };
    let app_registry = deployed(provider, AppRegistry::BYTECODE.clone(), "AppRegistry").await?.0;
    let dataset_registry =
        deployed(provider, DatasetRegistry::BYTECODE.clone(), "DatasetRegistry").await?.0;
    let workerpool_registry =
        deployed(provider, WorkerpoolRegistry::BYTECODE.clone(), "WorkerpoolRegistry").await?.0;
    let tasks_code =
        PocoTasks::deploy_builder(provider, U256::from(committee_seed_delay)).calldata().clone();
    let tasks_module = deployed(provider, tasks_code, "PocoTasks").await?.0;
    let poco_code = Poco::deploy_builder(
        provider,
        owner,
        token,
        app_registry,
        dataset_registry,
        workerpool_registry,
        tasks_module,
    )
    .calldata()
    .clone();
    let (poco, receipt) = deployed(provider, poco_code, "Poco").await?;
    Ok(Deployment {
        chain_id,
        poco,
        token,
        app_registry,
        dataset_registry,
        workerpool_registry,
        tasks_module,
        block: receipt.block_number.unwrap_or_default(),
    })
}

/// Sends a contract creation and waits for it to be mined.
async fn deployed<P: Provider<Ethereum>>(
    provider: &P,
    code: Bytes,
    name: &'static str,
) -> Result<(Address, TransactionReceipt), Error> {
    let request = alloy::rpc::types::TransactionRequest::default()
        .with_deploy_code(code)
        .with_gas_limit(8_000_000);
    let receipt = provider.send_transaction(request).await?.get_receipt().await?;
    if !receipt.status() {
        return Err(Error::DeploymentFailed { contract: name });
    }
    let address = receipt.contract_address.ok_or(Error::DeploymentFailed { contract: name })?;
    Ok((address, receipt))
}
