//! Orders: signing, publishing to the market, unpublishing, cancelling on-chain.

use alloy::primitives::{B256, Bytes};
use poco_api::market::{OrderView, Unpublish};
use poco_contracts::bindings::IPocoTypes;
use poco_primitives::{Order, OrderKind, Signed};

use crate::{Error, Poco, Result};

/// A fresh random salt, so that otherwise identical orders hash differently.
pub fn new_salt() -> B256 {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    B256::from(bytes)
}

pub use poco_primitives::AnySigned;

/// Reads a signed order of `kind` from its JSON.
pub fn parse_order(kind: OrderKind, json: &str) -> Result<AnySigned> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| Error::Config(format!("invalid {kind} order: {e}")))?;
    AnySigned::from_value(kind, value)
        .map_err(|e| Error::Config(format!("invalid {kind} order: {e}")))
}

/// How long [`Poco::publish`] waits for a market that has not yet indexed the blocks an
/// order depends on.
pub const SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

impl Poco {
    /// Signs an order with the wallet.
    pub fn sign<T: Order>(&self, order: T) -> Result<Signed<T>> {
        Ok(order.sign(self.wallet()?, &self.domain())?)
    }

    /// The hash of a signed order (its EIP-712 digest, as used on-chain and by the market).
    pub fn order_hash(&self, order: &AnySigned) -> B256 {
        order.hash(&self.domain())
    }

    /// Publishes a signed order to the market.
    ///
    /// An order of an asset, a deposit or a workerpool the market has not seen yet because it
    /// follows the chain some blocks behind its head (the market answers `chain_sync_pending`)
    /// is sent again each second, for at most [`SYNC_WAIT`]: what was just registered on a
    /// network with confirmations can be published at once.
    pub async fn publish(&self, order: &AnySigned) -> Result<OrderView> {
        let market = self.market()?;
        let deadline = std::time::Instant::now() + SYNC_WAIT;
        loop {
            match market.publish(order.kind(), order).await {
                Err(poco_api::market::Error::Refused { code, .. })
                    if code == "chain_sync_pending" && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                other => return Ok(other?),
            }
        }
    }

    /// Takes an order of the wallet off the market (it stays valid on-chain: see
    /// [`Poco::cancel`]).
    pub async fn unpublish(&self, kind: OrderKind, hash: B256) -> Result<OrderView> {
        // The market checks the expiry against its own clock: the chain's last block may be
        // minutes old on an idle chain.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let expiry = now + 300;
        let request = Unpublish::sign(self.wallet()?, &self.domain(), hash, expiry, new_salt())
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(self.market()?.unpublish(kind, hash, &request).await?)
    }

    /// Closes an order on-chain: it can never be matched again.
    pub async fn cancel(&self, order: &AnySigned) -> Result<B256> {
        let poco = self.poco();
        let close = 1u8;
        let receipt = match order {
            AnySigned::App(o) => {
                let op = IPocoTypes::AppOrderOperation {
                    order: o.into(),
                    operation: close,
                    sign: Bytes::new(),
                };
                self.chain().send(poco.manageAppOrder(op)).await?
            }
            AnySigned::Dataset(o) => {
                let op = IPocoTypes::DatasetOrderOperation {
                    order: o.into(),
                    operation: close,
                    sign: Bytes::new(),
                };
                self.chain().send(poco.manageDatasetOrder(op)).await?
            }
            AnySigned::Workerpool(o) => {
                let op = IPocoTypes::WorkerpoolOrderOperation {
                    order: o.into(),
                    operation: close,
                    sign: Bytes::new(),
                };
                self.chain().send(poco.manageWorkerpoolOrder(op)).await?
            }
            AnySigned::Request(o) => {
                let op = IPocoTypes::RequestOrderOperation {
                    order: o.into(),
                    operation: close,
                    sign: Bytes::new(),
                };
                self.chain().send(poco.manageRequestOrder(op)).await?
            }
        };
        Ok(receipt.transaction_hash)
    }
}
