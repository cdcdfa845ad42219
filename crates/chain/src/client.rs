//! A chain client: any EVM JSON-RPC endpoint (HTTP or WebSocket) with an optional local wallet.

use std::{sync::Arc, time::Duration};

use alloy::{
    contract::{CallBuilder, CallDecoder},
    network::{Ethereum, EthereumWallet, Network, TransactionBuilder},
    primitives::{Address, U256},
    providers::{
        DynProvider, PendingTransactionBuilder, Provider, ProviderBuilder, fillers::NonceManager,
    },
    rpc::{
        client::RpcClient,
        types::{BlockNumberOrTag, TransactionReceipt, TransactionRequest},
    },
    signers::local::PrivateKeySigner,
    transports::{
        TransportResult,
        layers::{RateLimitRetryPolicy, RetryBackoffLayer},
    },
};
use poco_contracts::{Revert, bindings::IPoco::IPocoInstance};
use tracing::{debug, warn};

use crate::{Error, error::is_transient_transport};

/// How a [`ChainClient`] sends transactions and retries requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    /// Blocks to wait on top of the one that includes a transaction before it counts as done
    /// (0: included is enough).
    pub confirmations: u64,
    /// Gas limit = estimate × (100 + margin) / 100 + [`Self::gas_margin_extra`].
    pub gas_margin_percent: u64,
    /// Gas added to every limit, for calls that may do more in the block they land in than in
    /// the one they were estimated on (the first call after a committee's seed block fixes the
    /// seed, about 26,000 gas more). A limit is not a cost: only the gas used is paid.
    pub gas_margin_extra: u64,
    /// Attempts after the first for a request that failed for a transient reason.
    pub max_retries: u32,
    /// Base delay between retries.
    pub retry_backoff: Duration,
    /// How often to poll for receipts and new blocks.
    pub poll_interval: Duration,
    /// Most time a transaction sent is waited for (included, then confirmed) before
    /// [`Error::NotMined`]: a stalled chain or a fee too low to be mined ends the wait with an
    /// error that says so, instead of holding the caller forever.
    pub receipt_timeout: Duration,
}

/// The default [`ClientConfig::receipt_timeout`]: ten minutes.
pub const DEFAULT_RECEIPT_TIMEOUT: Duration = Duration::from_secs(600);

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            confirmations: 0,
            gas_margin_percent: 20,
            gas_margin_extra: 30_000,
            max_retries: 8,
            retry_backoff: Duration::from_millis(250),
            poll_interval: Duration::from_millis(250),
            receipt_timeout: DEFAULT_RECEIPT_TIMEOUT,
        }
    }
}

/// A connection to a chain, and the wallet that signs this client's transactions.
///
/// Concurrent transactions from one client never clash on nonces: nonces are assigned locally,
/// in order, by one nonce manager per client, which reads the node's count again after a
/// transaction that could not be sent. Transient RPC failures are retried with
/// backoff. Gas limits carry a margin over the estimate. A transaction the chain refuses comes
/// back as [`Error::Reverted`] with the decoded reason, whether it failed at estimation or
/// on-chain.
#[derive(Debug, Clone)]
pub struct ChainClient {
    rpc: RpcClient,
    provider: DynProvider,
    sender: Option<Address>,
    nonces: Nonces,
    config: ClientConfig,
}

/// The nonces of one wallet: handed out locally, in order, so that concurrent transactions
/// never take the same one. After a transaction that did not reach the node,
/// [`Nonces::resync`] makes the next one read the node's count again: otherwise the nonce it
/// held would stay a gap that holds every later transaction out of the chain.
#[derive(Clone, Debug, Default)]
struct Nonces {
    next: Arc<tokio::sync::Mutex<Option<u64>>>,
}

impl Nonces {
    async fn resync(&self) {
        *self.next.lock().await = None;
    }
}

#[async_trait::async_trait]
impl NonceManager for Nonces {
    async fn get_next_nonce<P, N>(&self, provider: &P, address: Address) -> TransportResult<u64>
    where
        P: Provider<N>,
        N: Network,
    {
        let mut next = self.next.lock().await;
        let nonce = match *next {
            Some(nonce) => nonce,
            None => provider.get_transaction_count(address).pending().await?,
        };
        *next = Some(nonce + 1);
        Ok(nonce)
    }
}

/// A provider over `client` that fills gas, nonce and chain id, and signs with `signer`.
fn signing_provider(client: RpcClient, signer: PrivateKeySigner, nonces: &Nonces) -> DynProvider {
    ProviderBuilder::default()
        .with_gas_estimation()
        .with_nonce_management(nonces.clone())
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_client(client)
        .erased()
}

impl ChainClient {
    /// Connects to `url` (`http(s)://` or `ws(s)://`), signing with `wallet` if given.
    pub async fn connect(
        url: &str,
        wallet: Option<PrivateKeySigner>,
        config: ClientConfig,
    ) -> Result<Self, Error> {
        let parsed = url::Url::parse(url)
            .map_err(|e| Error::InvalidUrl { url: url.to_owned(), reason: e.to_string() })?;
        if !matches!(parsed.scheme(), "http" | "https" | "ws" | "wss") {
            return Err(Error::InvalidUrl {
                url: url.to_owned(),
                reason: "the scheme must be http, https, ws or wss".into(),
            });
        }
        let policy = RateLimitRetryPolicy::default().or(is_transient_transport);
        let retry = RetryBackoffLayer::new_with_policy(
            config.max_retries,
            config.retry_backoff.as_millis() as u64,
            u64::MAX,
            policy,
        );
        let client = RpcClient::builder()
            .layer(retry)
            .connect(url)
            .await?
            .with_poll_interval(config.poll_interval);
        let sender = wallet.as_ref().map(|signer| signer.address());
        let nonces = Nonces::default();
        let provider = match wallet {
            Some(signer) => signing_provider(client.clone(), signer, &nonces),
            None => ProviderBuilder::new().connect_client(client.clone()).erased(),
        };
        Ok(Self { rpc: client, provider, sender, nonces, config })
    }

    /// Asks `url` its chain id once, without retrying: what an endpoint that fails says, its
    /// causes whole (retries keep only the last error's outer message).
    pub async fn probe(url: &str) -> Result<u64, Error> {
        let client = RpcClient::builder().connect(url).await?;
        let provider = ProviderBuilder::new().connect_client(client);
        Ok(provider.get_chain_id().await?)
    }

    /// The same connection, signing with another wallet (its own nonce manager).
    pub fn with_wallet(&self, signer: PrivateKeySigner) -> Self {
        let sender = Some(signer.address());
        let nonces = Nonces::default();
        let provider = signing_provider(self.rpc.clone(), signer, &nonces);
        Self { rpc: self.rpc.clone(), provider, sender, nonces, config: self.config }
    }

    /// The underlying provider, for reads and for building contract calls.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The address that signs this client's transactions.
    pub fn sender(&self) -> Result<Address, Error> {
        self.sender.ok_or(Error::NoWallet)
    }

    /// This client's configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The protocol at `poco`, bound to this client.
    pub fn poco(&self, poco: Address) -> IPocoInstance<DynProvider> {
        IPocoInstance::new(poco, self.provider.clone())
    }

    /// Makes the next transaction read this wallet's nonce from the node again. A chain
    /// reorganisation may have dropped transactions this client sent: their nonces are free
    /// again, and a nonce counted past them would leave every later transaction waiting.
    pub async fn resync_nonces(&self) {
        self.nonces.resync().await;
    }

    /// The chain id.
    pub async fn chain_id(&self) -> Result<u64, Error> {
        Ok(self.provider.get_chain_id().await?)
    }

    /// The latest block number.
    pub async fn block_number(&self) -> Result<u64, Error> {
        Ok(self.provider.get_block_number().await?)
    }

    /// The timestamp of the latest block.
    pub async fn block_timestamp(&self) -> Result<u64, Error> {
        let block = self.provider.get_block_by_number(BlockNumberOrTag::Latest).await?;
        Ok(block.map(|b| b.header.timestamp).unwrap_or_default())
    }

    /// Sends a contract call as a transaction and waits for it at the configured confirmation
    /// depth. The gas limit is estimated with a margin; a refusal, at estimation or on-chain,
    /// returns [`Error::Reverted`].
    pub async fn send<P, D>(&self, call: CallBuilder<P, D>) -> Result<TransactionReceipt, Error>
    where
        P: Provider<Ethereum>,
        D: CallDecoder,
    {
        self.sender()?;
        let estimate = call.estimate_gas().await?;
        let gas = (estimate.saturating_mul(100 + self.config.gas_margin_percent) / 100)
            .saturating_add(self.config.gas_margin_extra);
        let call = call.gas(gas);
        let receipt = self.included(call.send().await).await?;
        if receipt.status() {
            return Ok(receipt);
        }
        warn!(hash = %receipt.transaction_hash, "transaction reverted on-chain");
        Err(Error::Reverted(self.replay_revert(call, &receipt).await))
    }

    /// Sends `wei` of the chain's currency to `to` and waits for it as [`Self::send`] does.
    /// A recipient contract that refuses it fails at estimation, before anything is sent.
    pub async fn send_value(&self, to: Address, wei: U256) -> Result<TransactionReceipt, Error> {
        let from = self.sender()?;
        let request = TransactionRequest::default().with_from(from).with_to(to).with_value(wei);
        let gas = self.provider.estimate_gas(request.clone()).await?;
        let sent = self.provider.send_transaction(request.with_gas_limit(gas)).await;
        let receipt = self.included(sent).await?;
        if receipt.status() {
            return Ok(receipt);
        }
        Err(Error::Reverted(Revert::Reason(format!(
            "transfer reverted on-chain in transaction {}",
            receipt.transaction_hash
        ))))
    }

    /// The receipt of a transaction just sent, once it is at the configured confirmation
    /// depth (whatever its status), or [`Error::NotMined`] after
    /// [`ClientConfig::receipt_timeout`].
    async fn included<E: Into<Error>>(
        &self,
        sent: Result<PendingTransactionBuilder<Ethereum>, E>,
    ) -> Result<TransactionReceipt, Error> {
        let pending = match sent {
            Ok(pending) => pending,
            Err(error) => {
                // The nonce it took may never reach the node.
                self.nonces.resync().await;
                return Err(error.into());
            }
        };
        let hash = *pending.tx_hash();
        debug!(%hash, "transaction sent");
        let confirmations = self.config.confirmations;
        // Boxed: the wait is large, and every future sending a transaction would carry it.
        let receipt =
            Box::pin(pending.with_required_confirmations(confirmations + 1).get_receipt());
        let waited = self.config.receipt_timeout;
        match tokio::time::timeout(waited, receipt).await {
            Ok(receipt) => Ok(receipt?),
            Err(_) => Err(Error::NotMined { hash, waited, confirmations }),
        }
    }

    /// Why a mined transaction reverted: the call replayed on the state before its block.
    async fn replay_revert<P, D>(
        &self,
        call: CallBuilder<P, D>,
        receipt: &TransactionReceipt,
    ) -> Revert
    where
        P: Provider<Ethereum>,
        D: CallDecoder,
    {
        let before = receipt.block_number.unwrap_or_default().saturating_sub(1);
        match call.block(before.into()).call_raw().await {
            Err(error) => Revert::from_contract_error(&error)
                .unwrap_or_else(|| Revert::Reason(format!("reverted on-chain ({error})"))),
            Ok(_) => Revert::Reason(format!(
                "reverted on-chain in transaction {} (out of gas or state changed)",
                receipt.transaction_hash
            )),
        }
    }
}
