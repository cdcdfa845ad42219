//! What the market reads from the chain, behind a trait so that the HTTP layer can be tested
//! without a node.
//!
//! Reads happen only where the mirror cannot answer: a balance not cached yet (or too low to
//! accept an order: it may have grown), a presignature, an ERC-1271 signature, and an asset
//! the follower has not reached yet. [`RpcChain`] makes them all at the confirmed head, as deep
//! as the follower's events: a presignature or a deposit in a block a reorganisation may still
//! replace does not count yet.

use alloy::{
    eips::BlockId,
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
};
use futures::future::BoxFuture;
use futures::try_join;
use poco_api::market::{AccountFunds, AssetRecord, AssetView, text_or_hex};
use poco_chain::ChainClient;
use poco_contracts::{
    Deployment,
    bindings::{AppRegistry, DatasetRegistry, IPoco, WorkerpoolRegistry},
};
use poco_primitives::OrderKind;

use crate::error::{Error, Result};

/// A future of a chain read.
pub type ChainFuture<'a, T> = BoxFuture<'a, Result<T>>;

/// The chain reads of the market.
pub trait ChainReader: Send + Sync + 'static {
    /// The newest block at the configured confirmation depth.
    fn confirmed_head(&self) -> ChainFuture<'_, u64>;
    /// The newest block, not yet confirmed.
    fn head(&self) -> ChainFuture<'_, u64>;
    /// The owner of `asset` in the registry of `kind` at the confirmed head (zero: not
    /// registered).
    fn owner(&self, kind: OrderKind, asset: Address) -> ChainFuture<'_, Address>;
    /// The free balance of `account` at `block`.
    fn balance(&self, account: Address, block: u64) -> ChainFuture<'_, U256>;
    /// Who presigned the order `hash` at the confirmed head (zero: nobody).
    fn presigner(&self, hash: B256) -> ChainFuture<'_, Address>;
    /// Whether `account` has code (a contract wallet) at the confirmed head.
    fn is_contract(&self, account: Address) -> ChainFuture<'_, bool>;
    /// `Poco.verifySignature(signer, hash, sign)` at the confirmed head: ECDSA, then ERC-1271.
    fn verify_signature(&self, signer: Address, hash: B256, sign: Bytes) -> ChainFuture<'_, bool>;
    /// The free and frozen balances of `account` at the confirmed head.
    fn funds(&self, account: Address) -> ChainFuture<'_, AccountFunds>;
    /// What `address` is in the registries at the confirmed head (`None`: in none).
    fn registered(&self, address: Address) -> ChainFuture<'_, Option<AssetView>>;
}

/// [`ChainReader`] over JSON-RPC.
#[derive(Debug, Clone)]
pub struct RpcChain {
    client: ChainClient,
    deployment: Deployment,
    confirmations: u64,
}

impl RpcChain {
    /// Reads through `client` the protocol of `deployment`, `confirmations` blocks deep.
    pub fn new(client: ChainClient, deployment: Deployment, confirmations: u64) -> Self {
        Self { client, deployment, confirmations }
    }

    fn poco(&self) -> IPoco::IPocoInstance<alloy::providers::DynProvider> {
        self.client.poco(self.deployment.poco)
    }

    /// The confirmed head, as a block to read at.
    async fn confirmed(&self) -> Result<BlockId> {
        Ok(BlockId::number(self.confirmed_head().await?))
    }
}

// By value: it is a `map_err` adapter.
#[allow(clippy::needless_pass_by_value)]
fn contract(error: alloy::contract::Error) -> Error {
    Error::Contract(error.to_string())
}

impl ChainReader for RpcChain {
    fn confirmed_head(&self) -> ChainFuture<'_, u64> {
        Box::pin(async move {
            let head = self.client.block_number().await?;
            Ok(head.saturating_sub(self.confirmations))
        })
    }

    fn head(&self) -> ChainFuture<'_, u64> {
        Box::pin(async move { Ok(self.client.block_number().await?) })
    }

    fn owner(&self, kind: OrderKind, asset: Address) -> ChainFuture<'_, Address> {
        Box::pin(async move {
            let provider = self.client.provider().clone();
            let deployment = &self.deployment;
            let at = self.confirmed().await?;
            let owner = match kind {
                OrderKind::App => AppRegistry::new(deployment.app_registry, provider)
                    .ownerOrZero(asset)
                    .block(at)
                    .call()
                    .await
                    .map_err(contract)?,
                OrderKind::Dataset => DatasetRegistry::new(deployment.dataset_registry, provider)
                    .ownerOrZero(asset)
                    .block(at)
                    .call()
                    .await
                    .map_err(contract)?,
                OrderKind::Workerpool => {
                    WorkerpoolRegistry::new(deployment.workerpool_registry, provider)
                        .ownerOrZero(asset)
                        .block(at)
                        .call()
                        .await
                        .map_err(contract)?
                }
                OrderKind::Request => Address::ZERO,
            };
            Ok(owner)
        })
    }

    fn balance(&self, account: Address, block: u64) -> ChainFuture<'_, U256> {
        Box::pin(async move {
            self.poco()
                .balanceOf(account)
                .block(BlockId::number(block))
                .call()
                .await
                .map_err(contract)
        })
    }

    fn presigner(&self, hash: B256) -> ChainFuture<'_, Address> {
        Box::pin(async move {
            let at = self.confirmed().await?;
            self.poco().viewPresigned(hash).block(at).call().await.map_err(contract)
        })
    }

    fn is_contract(&self, account: Address) -> ChainFuture<'_, bool> {
        Box::pin(async move {
            let at = self.confirmed().await?;
            let code = self
                .client
                .provider()
                .get_code_at(account)
                .block_id(at)
                .await
                .map_err(|e| Error::Contract(e.to_string()))?;
            Ok(!code.is_empty())
        })
    }

    fn verify_signature(&self, signer: Address, hash: B256, sign: Bytes) -> ChainFuture<'_, bool> {
        Box::pin(async move {
            let at = self.confirmed().await?;
            self.poco().verifySignature(signer, hash, sign).block(at).call().await.map_err(contract)
        })
    }

    fn funds(&self, account: Address) -> ChainFuture<'_, AccountFunds> {
        Box::pin(async move {
            let block = self.confirmed_head().await?;
            let held = self
                .poco()
                .viewAccount(account)
                .block(BlockId::number(block))
                .call()
                .await
                .map_err(contract)?;
            Ok(AccountFunds { account, block, balance: held.stake, frozen: held.locked })
        })
    }

    fn registered(&self, address: Address) -> ChainFuture<'_, Option<AssetView>> {
        Box::pin(async move {
            let block = self.confirmed_head().await?;
            let at = BlockId::number(block);
            let provider = self.client.provider().clone();
            let apps = AppRegistry::new(self.deployment.app_registry, provider.clone());
            let datasets = DatasetRegistry::new(self.deployment.dataset_registry, provider.clone());
            let pools = WorkerpoolRegistry::new(self.deployment.workerpool_registry, provider);
            let (app_owner, dataset_owner, pool_owner) = try_join!(
                async { apps.ownerOrZero(address).block(at).call().await.map_err(contract) },
                async { datasets.ownerOrZero(address).block(at).call().await.map_err(contract) },
                async { pools.ownerOrZero(address).block(at).call().await.map_err(contract) },
            )?;
            let (owner, record) = if !app_owner.is_zero() {
                let app = apps.viewApp(address).block(at).call().await.map_err(contract)?;
                let record = AssetRecord::App {
                    name: app.name,
                    app_type: app.appType,
                    multiaddr: text_or_hex(&app.multiaddr),
                    checksum: app.checksum,
                    mrenclave: text_or_hex(&app.mrenclave),
                };
                (app_owner, record)
            } else if !dataset_owner.is_zero() {
                let dataset =
                    datasets.viewDataset(address).block(at).call().await.map_err(contract)?;
                let record = AssetRecord::Dataset {
                    name: dataset.name,
                    multiaddr: text_or_hex(&dataset.multiaddr),
                    checksum: dataset.checksum,
                };
                (dataset_owner, record)
            } else if !pool_owner.is_zero() {
                let pool =
                    pools.viewWorkerpool(address).block(at).call().await.map_err(contract)?;
                let ratio = |value: U256| u64::try_from(value).unwrap_or(u64::MAX);
                let record = AssetRecord::Workerpool {
                    description: pool.description,
                    worker_stake_ratio: ratio(pool.workerStakeRatio),
                    scheduler_reward_ratio: ratio(pool.schedulerRewardRatio),
                };
                (pool_owner, record)
            } else {
                return Ok(None);
            };
            Ok(Some(AssetView { address, block, owner, record }))
        })
    }
}

/// A chain where nothing is registered, nobody presigned and every account is empty, at block
/// 1: for a market whose mirror is seeded directly (benchmarks, tests of the HTTP layer).
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyChain;

impl ChainReader for EmptyChain {
    fn confirmed_head(&self) -> ChainFuture<'_, u64> {
        Box::pin(async { Ok(1) })
    }

    fn head(&self) -> ChainFuture<'_, u64> {
        Box::pin(async { Ok(1) })
    }

    fn owner(&self, _: OrderKind, _: Address) -> ChainFuture<'_, Address> {
        Box::pin(async { Ok(Address::ZERO) })
    }

    fn balance(&self, _: Address, _: u64) -> ChainFuture<'_, U256> {
        Box::pin(async { Ok(U256::ZERO) })
    }

    fn presigner(&self, _: B256) -> ChainFuture<'_, Address> {
        Box::pin(async { Ok(Address::ZERO) })
    }

    fn is_contract(&self, _: Address) -> ChainFuture<'_, bool> {
        Box::pin(async { Ok(false) })
    }

    fn verify_signature(&self, _: Address, _: B256, _: Bytes) -> ChainFuture<'_, bool> {
        Box::pin(async { Ok(false) })
    }

    fn funds(&self, account: Address) -> ChainFuture<'_, AccountFunds> {
        Box::pin(async move {
            Ok(AccountFunds { account, block: 1, balance: U256::ZERO, frozen: U256::ZERO })
        })
    }

    fn registered(&self, _: Address) -> ChainFuture<'_, Option<AssetView>> {
        Box::pin(async { Ok(None) })
    }
}
