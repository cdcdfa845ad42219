//! The client: a connection to the chain (and optionally a market), a wallet, and where the
//! protocol is.

use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log},
    signers::local::PrivateKeySigner,
};
use poco_chain::{ChainClient, ClientConfig};
use poco_contracts::{
    Deployment,
    bindings::{IPoco::IPocoInstance, RLC},
};
use poco_primitives::PocoDomain;

use crate::{Error, Result, market::MarketClient};

/// Where to reach the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The chain's JSON-RPC endpoint.
    pub rpc_url: String,
    /// The market, if one is used.
    pub market_url: Option<String>,
    /// The protocol's address on that chain (the rest is discovered from it).
    pub poco: Address,
    /// The block the protocol was deployed at (events are searched from there).
    pub from_block: u64,
    /// Blocks a transaction of this client waits for on top of the one that includes it
    /// before it counts as done: the depth the network's services act at, so that what a
    /// command did is what the market and the schedulers see when it returns (0 on a devnet).
    pub confirmations: u64,
}

/// A poco client: reads the chain, and with a wallet, acts on it.
#[derive(Debug, Clone)]
pub struct Poco {
    chain: ChainClient,
    deployment: Deployment,
    wallet: Option<PrivateKeySigner>,
    market: Option<MarketClient>,
    rpc_url: String,
    /// What the client fetches on others' behalf (result locations) and checks a run's URLs
    /// against.
    fetcher: poco_fetch::Fetcher,
}

impl Poco {
    /// Connects to the chain of `endpoints` and discovers the protocol's contracts.
    pub async fn connect(endpoints: &Endpoints, wallet: Option<PrivateKeySigner>) -> Result<Self> {
        let down = || Error::ChainDown { url: endpoints.rpc_url.clone() };
        let config = ClientConfig {
            max_retries: 1,
            confirmations: endpoints.confirmations,
            ..ClientConfig::default()
        };
        let chain = ChainClient::connect(&endpoints.rpc_url, wallet.clone(), config)
            .await
            .map_err(|e| {
                if e.is_transient() || matches!(e, poco_chain::Error::Rpc(_)) {
                    down()
                } else {
                    e.into()
                }
            })?;
        let chain_id = chain.chain_id().await.map_err(|_| down())?;
        let deployment =
            discover(chain.provider(), endpoints.poco, chain_id, endpoints.from_block).await?;
        let market = endpoints.market_url.as_deref().map(MarketClient::new);
        Ok(Self {
            chain,
            deployment,
            wallet,
            market,
            rpc_url: endpoints.rpc_url.clone(),
            fetcher: poco_fetch::Fetcher::new(poco_fetch::FetchPolicy::default()),
        })
    }

    /// Sets the fetch policy the client opens result locations under and checks runs
    /// against (the default: public `http(s)` addresses only).
    pub fn with_fetch_policy(mut self, policy: poco_fetch::FetchPolicy) -> Self {
        self.fetcher = poco_fetch::Fetcher::new(policy);
        self
    }

    /// The fetcher of the client's policy.
    pub fn fetcher(&self) -> &poco_fetch::Fetcher {
        &self.fetcher
    }

    /// The chain client.
    pub fn chain(&self) -> &ChainClient {
        &self.chain
    }

    /// The protocol's addresses.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The chain's RPC URL.
    pub fn rpc_url(&self) -> &str {
        &self.rpc_url
    }

    /// The EIP-712 domain orders are signed under.
    pub fn domain(&self) -> PocoDomain {
        PocoDomain::new(self.deployment.chain_id, self.deployment.poco)
    }

    /// The protocol contract.
    pub fn poco(&self) -> IPocoInstance<DynProvider> {
        self.chain.poco(self.deployment.poco)
    }

    /// The RLC token.
    pub fn token(&self) -> RLC::RLCInstance<DynProvider> {
        RLC::new(self.deployment.token, self.chain.provider().clone())
    }

    /// The wallet, if any.
    pub fn wallet(&self) -> Result<&PrivateKeySigner> {
        self.wallet.as_ref().ok_or(Error::NoWallet)
    }

    /// The wallet's address.
    pub fn address(&self) -> Result<Address> {
        Ok(self.wallet()?.address())
    }

    /// The market client.
    pub fn market(&self) -> Result<&MarketClient> {
        self.market
            .as_ref()
            .ok_or_else(|| Error::Config("no market configured: pass --market.url".into()))
    }

    /// Logs of the protocol's contract with `topics` (event signature first), from the
    /// deployment block to the head, in bounded ranges.
    pub async fn logs(&self, address: Address, topics: &[Option<B256>]) -> Result<Vec<Log>> {
        let head = self.chain.block_number().await?;
        let mut logs = Vec::new();
        let mut from = self.deployment.block;
        while from <= head {
            let to = head.min(from + 10_000);
            let mut filter = Filter::new().address(address).from_block(from).to_block(to);
            for (position, topic) in topics.iter().enumerate() {
                if let Some(topic) = topic {
                    filter = match position {
                        0 => filter.event_signature(*topic),
                        1 => filter.topic1(*topic),
                        2 => filter.topic2(*topic),
                        _ => filter.topic3(*topic),
                    };
                }
            }
            logs.extend(
                self.chain.provider().get_logs(&filter).await.map_err(poco_chain::Error::from)?,
            );
            from = to + 1;
        }
        Ok(logs)
    }
}

/// The whole deployment, read from the protocol contract at `poco`.
pub async fn discover(
    provider: &DynProvider,
    poco: Address,
    chain_id: u64,
    block: u64,
) -> Result<Deployment> {
    let code = provider.get_code_at(poco).await.map_err(poco_chain::Error::from)?;
    if code.is_empty() {
        return Err(Error::Config(format!(
            "no poco contract at {poco} on chain {chain_id}: check --poco.address"
        )));
    }
    let contract = IPocoInstance::new(poco, provider.clone());
    let read = |e: alloy::contract::Error| Error::Chain(e.into());
    Ok(Deployment {
        chain_id,
        poco,
        token: contract.token().call().await.map_err(read)?,
        app_registry: contract.appregistry().call().await.map_err(read)?,
        dataset_registry: contract.datasetregistry().call().await.map_err(read)?,
        workerpool_registry: contract.workerpoolregistry().call().await.map_err(read)?,
        tasks_module: Address::ZERO,
        block,
    })
}

/// A U256 as an [`poco_primitives::Amount`].
pub(crate) fn amount(value: U256) -> poco_primitives::Amount {
    poco_primitives::Amount::from_nrlc(value)
}
