//! The client: a connection to the chain (and optionally a market), a wallet, and where the
//! protocol is.

use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
    rpc::types::{BlockNumberOrTag, Filter, Log},
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
    /// Most time a transaction of this client is waited for before it fails with
    /// `not mined` ([`crate::DEFAULT_RECEIPT_TIMEOUT`] unless told).
    pub receipt_timeout: std::time::Duration,
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
    /// Most blocks one `eth_getLogs` covers.
    log_range: u64,
}

/// Connects to the chain endpoint `url` and asks it its chain id. An endpoint that cannot be
/// reached is [`Error::ChainDown`], one that answers with an HTTP refusal [`Error::ChainRefused`],
/// each with its cause.
pub async fn connect_chain(
    url: &str,
    wallet: Option<PrivateKeySigner>,
    config: ClientConfig,
) -> Result<(ChainClient, u64)> {
    // The retries keep only the last error's outer message: an endpoint that fails is asked
    // once more, without them, for the whole cause.
    let unusable = async |error: poco_chain::Error| match ChainClient::probe(url).await {
        Err(probed) => Error::chain_unusable(url, &probed),
        Ok(_) => Error::chain_unusable(url, &error),
    };
    let chain = match ChainClient::connect(url, wallet, config).await {
        Ok(chain) => chain,
        Err(error) if error.is_transient() || matches!(error, poco_chain::Error::Rpc(_)) => {
            return Err(unusable(error).await);
        }
        Err(error) => return Err(error.into()),
    };
    match chain.chain_id().await {
        Ok(chain_id) => Ok((chain, chain_id)),
        Err(error) => Err(unusable(error).await),
    }
}

impl Poco {
    /// Connects to the chain of `endpoints` and discovers the protocol's contracts.
    pub async fn connect(endpoints: &Endpoints, wallet: Option<PrivateKeySigner>) -> Result<Self> {
        let config = ClientConfig {
            max_retries: 1,
            confirmations: endpoints.confirmations,
            receipt_timeout: endpoints.receipt_timeout,
            ..ClientConfig::default()
        };
        let (chain, chain_id) = connect_chain(&endpoints.rpc_url, wallet.clone(), config).await?;
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
            log_range: LOG_RANGE,
        })
    }

    /// Reads logs `blocks` at a time (at least one; [`LOG_RANGE`] by default), for an endpoint
    /// that refuses wider `eth_getLogs` ranges.
    pub fn with_log_range(mut self, blocks: u64) -> Self {
        self.log_range = blocks.max(1);
        self
    }

    /// Most blocks one `eth_getLogs` of the client covers.
    pub fn log_range(&self) -> u64 {
        self.log_range
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

    /// Logs of `address` with `topics` (event signature first), from the deployment block to
    /// the head, in ranges of [`Self::log_range`] blocks: one `eth_getLogs` per range. For reads
    /// that must see the whole history (the assets an account ever received, the deals of a
    /// requester without a market); a read that can start from a known block does not use it.
    pub async fn logs(&self, address: Address, topics: &[Option<B256>]) -> Result<Vec<Log>> {
        let head = self.chain.block_number().await?;
        let mut logs = Vec::new();
        let mut from = self.deployment.block;
        while from <= head {
            let to = head.min(from.saturating_add(self.log_range - 1));
            logs.extend(self.logs_in(address, topics, from, to).await?);
            from = to + 1;
        }
        Ok(logs)
    }

    /// The logs of `address` with `topics` in blocks `from..=to`: one `eth_getLogs`.
    pub(crate) async fn logs_in(
        &self,
        address: Address,
        topics: &[Option<B256>],
        from: u64,
        to: u64,
    ) -> Result<Vec<Log>> {
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
        Ok(self.chain.provider().get_logs(&filter).await.map_err(poco_chain::Error::from)?)
    }

    /// The newest log of the protocol contract with `topics` that `pick` accepts, searched
    /// from the head back to the deployment block in ranges of [`Self::log_range`] blocks (one
    /// `eth_getLogs` each, and one `eth_blockNumber`): a recent event costs a request or two,
    /// an old one a request per range between it and the head. `None` when no block of the
    /// deployment has one.
    pub(crate) async fn find_newest<T>(
        &self,
        topics: &[Option<B256>],
        mut pick: impl FnMut(&Log) -> Option<T>,
    ) -> Result<Option<(T, u64)>> {
        let head = self.chain.block_number().await?;
        let floor = self.deployment.block;
        let mut to = head;
        while to >= floor {
            let from = to.saturating_sub(self.log_range - 1).max(floor);
            let logs = self.logs_in(self.deployment.poco, topics, from, to).await?;
            for log in logs.iter().rev() {
                if let Some(found) = pick(log) {
                    return Ok(Some((found, log.block_number.unwrap_or(from))));
                }
            }
            if from == 0 {
                break;
            }
            to = from - 1;
        }
        Ok(None)
    }

    /// Visits the logs of the protocol contract with `topics` from block `from` on, in chain
    /// order and ranges of [`Self::log_range`] blocks, until `visit` says to stop (returns true),
    /// the range reaches `head`, or a range ends at a block whose timestamp is `until` or
    /// later (nothing of what is looked for happens from then on: a deadline has passed).
    /// Costs one `eth_getLogs` per range, and one block header per range that does not end
    /// the search.
    pub(crate) async fn scan_forward(
        &self,
        topics: &[Option<B256>],
        from: u64,
        head: u64,
        until: u64,
        mut visit: impl FnMut(&Log) -> bool,
    ) -> Result<()> {
        let mut from = from.max(self.deployment.block);
        while from <= head {
            let to = head.min(from.saturating_add(self.log_range - 1));
            for log in self.logs_in(self.deployment.poco, topics, from, to).await? {
                if visit(&log) {
                    return Ok(());
                }
            }
            if to == head || self.block_header(Some(to)).await?.timestamp >= until {
                return Ok(());
            }
            from = to + 1;
        }
        Ok(())
    }

    /// The header of block `number` (the latest with `None`): one request.
    pub(crate) async fn block_header(&self, number: Option<u64>) -> Result<Head> {
        let tag = number.map_or(BlockNumberOrTag::Latest, BlockNumberOrTag::Number);
        let block = self
            .chain
            .provider()
            .get_block_by_number(tag)
            .await
            .map_err(poco_chain::Error::from)?
            .ok_or_else(|| Error::Config(format!("the chain has no block {tag}")))?;
        Ok(Head { number: block.header.number, timestamp: block.header.timestamp })
    }
}

/// Most blocks one `eth_getLogs` request of the client covers (a common limit of public
/// endpoints).
pub const LOG_RANGE: u64 = 10_000;

/// A block as the reads need it: its number and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// Its number.
    pub(crate) number: u64,
    /// Its timestamp (unix seconds).
    pub(crate) timestamp: u64,
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
