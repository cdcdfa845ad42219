//! What the market stores and serves: orders of any kind with their book status, deals, and
//! the events streamed to clients.

use alloy::primitives::{Address, B256, U256};
use poco_primitives::{
    AppOrder, DatasetOrder, Deal, Order, OrderKind, PocoDomain, RequestOrder, Signed, Tag,
    WorkerpoolOrder, matching::scheduler_stake,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The four kinds, in their storage order.
pub const KINDS: [OrderKind; 4] =
    [OrderKind::App, OrderKind::Dataset, OrderKind::Workerpool, OrderKind::Request];

/// The number a kind is stored as.
pub fn kind_code(kind: OrderKind) -> i16 {
    match kind {
        OrderKind::App => 0,
        OrderKind::Dataset => 1,
        OrderKind::Workerpool => 2,
        OrderKind::Request => 3,
    }
}

/// The kind stored as `code`.
pub fn kind_from_code(code: i16) -> Result<OrderKind> {
    KINDS
        .get(usize::try_from(code).map_err(|_| Error::Corrupt(format!("order kind {code}")))?)
        .copied()
        .ok_or_else(|| Error::Corrupt(format!("order kind {code}")))
}

/// The kind's name in JSON and URLs (`app`, `dataset`, `workerpool`, `request`).
pub fn kind_name(kind: OrderKind) -> &'static str {
    match kind {
        OrderKind::App => "app",
        OrderKind::Dataset => "dataset",
        OrderKind::Workerpool => "workerpool",
        OrderKind::Request => "request",
    }
}

/// The kind named `name`.
pub fn kind_from_name(name: &str) -> Option<OrderKind> {
    KINDS.into_iter().find(|kind| kind_name(*kind) == name)
}

/// Where an order stands in the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In the book, with volume left.
    Open,
    /// All its volume was matched.
    Filled,
    /// Closed on-chain by its owner.
    Cancelled,
    /// Can no longer be matched: its asset changed hands or its signer's stake no longer
    /// covers it. It may be published again.
    Dead,
    /// Taken out of the book by its owner. It may be published again.
    Unpublished,
}

impl Status {
    /// The number it is stored as.
    pub fn code(self) -> i16 {
        match self {
            Self::Open => 0,
            Self::Filled => 1,
            Self::Cancelled => 2,
            Self::Dead => 3,
            Self::Unpublished => 4,
        }
    }

    /// The status stored as `code`.
    pub fn from_code(code: i16) -> Result<Self> {
        Ok(match code {
            0 => Self::Open,
            1 => Self::Filled,
            2 => Self::Cancelled,
            3 => Self::Dead,
            4 => Self::Unpublished,
            _ => return Err(Error::Corrupt(format!("order status {code}"))),
        })
    }

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Filled => "filled",
            Self::Cancelled => "cancelled",
            Self::Dead => "dead",
            Self::Unpublished => "unpublished",
        }
    }

    /// Whether publishing the same order again puts it back in the book.
    pub fn can_reopen(self) -> bool {
        matches!(self, Self::Dead | Self::Unpublished)
    }
}

/// How the order's signature was checked at publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureKind {
    /// ECDSA by an externally owned account.
    Eoa,
    /// ERC-1271 by a contract owner, checked with `verifySignature`.
    Contract,
    /// Presigned on-chain (`manage*Order` SIGN), empty `sign`.
    Presigned,
}

impl SignatureKind {
    /// The number it is stored as.
    pub fn code(self) -> i16 {
        match self {
            Self::Eoa => 0,
            Self::Contract => 1,
            Self::Presigned => 2,
        }
    }

    /// The kind stored as `code`.
    pub fn from_code(code: i16) -> Result<Self> {
        Ok(match code {
            0 => Self::Eoa,
            1 => Self::Contract,
            2 => Self::Presigned,
            _ => return Err(Error::Corrupt(format!("signature kind {code}"))),
        })
    }
}

/// A signed order of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyOrder {
    /// An app order.
    App(Signed<AppOrder>),
    /// A dataset order.
    Dataset(Signed<DatasetOrder>),
    /// A workerpool order.
    Workerpool(Signed<WorkerpoolOrder>),
    /// A request order.
    Request(Signed<RequestOrder>),
}

/// Applies `$body` to the signed order inside any variant.
macro_rules! with_order {
    ($any:expr, $order:ident => $body:expr) => {
        match $any {
            AnyOrder::App($order) => $body,
            AnyOrder::Dataset($order) => $body,
            AnyOrder::Workerpool($order) => $body,
            AnyOrder::Request($order) => $body,
        }
    };
}

/// The addresses an order names in each role: the asset itself, a restriction, or the app and
/// dataset a request wants. Zero means none (or no restriction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles {
    /// The app (app orders, requests) or app restriction (dataset and workerpool orders).
    pub app: Address,
    /// The dataset (dataset orders, requests) or dataset restriction.
    pub dataset: Address,
    /// The workerpool (workerpool orders) or workerpool restriction (others).
    pub workerpool: Address,
    /// The requester (requests) or requester restriction.
    pub requester: Address,
}

impl AnyOrder {
    /// Parses a JSON order of `kind`: the protocol's field names, unknown fields refused.
    pub fn from_json(kind: OrderKind, json: &[u8]) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| Error::MalformedJson(e.to_string()))?;
        Self::from_value(kind, value)
    }

    /// Reads an order of `kind` from a JSON value.
    pub fn from_value(kind: OrderKind, value: serde_json::Value) -> Result<Self> {
        if !value.is_object() {
            return Err(Error::InvalidOrder(format!(
                "expected a JSON object with the fields of a {} order",
                kind_name(kind)
            )));
        }
        let invalid = |e: serde_json::Error| Error::InvalidOrder(e.to_string());
        Ok(match kind {
            OrderKind::App => Self::App(serde_json::from_value(value).map_err(invalid)?),
            OrderKind::Dataset => Self::Dataset(serde_json::from_value(value).map_err(invalid)?),
            OrderKind::Workerpool => {
                Self::Workerpool(serde_json::from_value(value).map_err(invalid)?)
            }
            OrderKind::Request => Self::Request(serde_json::from_value(value).map_err(invalid)?),
        })
    }

    /// The signed order as JSON.
    pub fn to_value(&self) -> serde_json::Value {
        with_order!(self, order => serde_json::to_value(order).expect("orders serialize"))
    }

    /// The kind.
    pub fn kind(&self) -> OrderKind {
        match self {
            Self::App(_) => OrderKind::App,
            Self::Dataset(_) => OrderKind::Dataset,
            Self::Workerpool(_) => OrderKind::Workerpool,
            Self::Request(_) => OrderKind::Request,
        }
    }

    /// The order hash (EIP-712 digest) under `domain`.
    pub fn hash(&self, domain: &PocoDomain) -> B256 {
        with_order!(self, order => order.digest(domain))
    }

    /// The signature bytes (empty for a presigned order).
    pub fn sign(&self) -> &[u8] {
        with_order!(self, order => &order.sign)
    }

    /// The total volume.
    pub fn volume(&self) -> U256 {
        with_order!(self, order => order.order.volume())
    }

    /// The tag.
    pub fn tag(&self) -> Tag {
        with_order!(self, order => order.order.tag())
    }

    /// The asset the order sells (app, dataset, workerpool), or the app a request wants.
    pub fn asset(&self) -> Address {
        match self {
            Self::App(o) => o.app,
            Self::Dataset(o) => o.dataset,
            Self::Workerpool(o) => o.workerpool,
            Self::Request(o) => o.app,
        }
    }

    /// The addresses the order names, by role.
    pub fn roles(&self) -> Roles {
        match self {
            Self::App(o) => Roles {
                app: o.app,
                dataset: o.datasetrestrict,
                workerpool: o.workerpoolrestrict,
                requester: o.requesterrestrict,
            },
            Self::Dataset(o) => Roles {
                app: o.apprestrict,
                dataset: o.dataset,
                workerpool: o.workerpoolrestrict,
                requester: o.requesterrestrict,
            },
            Self::Workerpool(o) => Roles {
                app: o.apprestrict,
                dataset: o.datasetrestrict,
                workerpool: o.workerpool,
                requester: o.requesterrestrict,
            },
            Self::Request(o) => Roles {
                app: o.app,
                dataset: o.dataset,
                workerpool: o.workerpool,
                requester: o.requester,
            },
        }
    }

    /// The price the book sorts on: the price of a sell order, the workerpool max price of a
    /// request.
    pub fn price(&self) -> U256 {
        match self {
            Self::App(o) => o.appprice,
            Self::Dataset(o) => o.datasetprice,
            Self::Workerpool(o) => o.workerpoolprice,
            Self::Request(o) => o.workerpoolmaxprice,
        }
    }

    /// The stored sort key: 32 bytes big-endian, ascending means best first (the price for
    /// sell orders, its bitwise complement for requests, which sort by highest price first).
    pub fn sort_key(&self) -> [u8; 32] {
        let price = self.price();
        let key = if matches!(self, Self::Request(_)) { !price } else { price };
        key.to_be_bytes()
    }

    /// The category (workerpool orders and requests; zero otherwise).
    pub fn category(&self) -> U256 {
        match self {
            Self::Workerpool(o) => o.category,
            Self::Request(o) => o.category,
            _ => U256::ZERO,
        }
    }

    /// The trust offered (workerpool orders) or wanted (requests); zero otherwise.
    pub fn trust(&self) -> U256 {
        match self {
            Self::Workerpool(o) => o.trust,
            Self::Request(o) => o.trust,
            _ => U256::ZERO,
        }
    }

    /// What the signer must hold free per task for the order to stand: the scheduler's stake
    /// for a workerpool order, the sum of the maximum prices for a request; `None` for apps
    /// and datasets.
    pub fn coverage_per_task(&self) -> Option<U256> {
        match self {
            Self::Workerpool(o) => Some(scheduler_stake(o.workerpoolprice)),
            Self::Request(o) => Some(
                o.appmaxprice
                    .saturating_add(o.datasetmaxprice)
                    .saturating_add(o.workerpoolmaxprice),
            ),
            _ => None,
        }
    }
}

/// An order as the market keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// The order hash.
    pub hash: B256,
    /// The signed order.
    pub order: AnyOrder,
    /// Its status.
    pub status: Status,
    /// Volume not yet consumed on-chain.
    pub remaining: U256,
    /// Who signed: the asset's owner at publication, or the requester.
    pub owner: Address,
    /// How the signature was checked.
    pub signature: SignatureKind,
    /// When it was first published, in milliseconds since the Unix epoch.
    pub published_at: i64,
    /// When its status or remaining volume last changed, in milliseconds.
    pub updated_at: i64,
    /// Why it is dead or cancelled.
    pub reason: Option<String>,
}

impl OrderRecord {
    /// The JSON form served by the API and streamed.
    pub fn view(&self) -> OrderView {
        OrderView {
            order_hash: self.hash,
            kind: kind_name(self.order.kind()).to_owned(),
            status: self.status,
            remaining: self.remaining,
            owner: self.owner,
            signature: self.signature,
            published_at: self.published_at,
            updated_at: self.updated_at,
            reason: self.reason.clone(),
            order: self.order.to_value(),
        }
    }
}

/// An order as served: the signed order and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    /// The order hash.
    pub order_hash: B256,
    /// `app`, `dataset`, `workerpool` or `request`.
    pub kind: String,
    /// The status.
    pub status: Status,
    /// Volume left, a decimal string.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub remaining: U256,
    /// The signer.
    #[serde(with = "poco_primitives::serde_helpers::address")]
    pub owner: Address,
    /// How the signature was checked.
    pub signature: SignatureKind,
    /// Publication time, milliseconds since the Unix epoch.
    pub published_at: i64,
    /// Last change, milliseconds since the Unix epoch.
    pub updated_at: i64,
    /// Why the order is dead or cancelled.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// The signed order, as published.
    pub order: serde_json::Value,
}

/// A deal as indexed from `OrdersMatched` and `DealCreated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DealView {
    /// The deal id.
    pub deal_id: B256,
    /// The deal, field for field as the contract emitted it.
    pub deal: Deal,
    /// The request's parameters.
    pub params: String,
    /// Tasks of the deal.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub volume: U256,
    /// The app order's hash.
    pub app_hash: B256,
    /// The dataset order's hash (zero without a dataset).
    pub dataset_hash: B256,
    /// The workerpool order's hash.
    pub workerpool_hash: B256,
    /// The request order's hash.
    pub request_hash: B256,
    /// The block of the match.
    pub block: u64,
    /// The transaction of the match.
    pub transaction: B256,
    /// The `DealCreated` log's index in its block.
    pub log_index: u64,
}

/// What happened to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEventType {
    /// Put in the book.
    Published,
    /// Its remaining volume changed and it stays open.
    Updated,
    /// Its whole volume was matched.
    Filled,
    /// Closed on-chain.
    Cancelled,
    /// No longer matchable (transfer of the asset, stake no longer covered).
    Dead,
    /// Taken out by its owner.
    Unpublished,
}

impl OrderEventType {
    /// The event a transition to `status` is.
    pub fn for_status(status: Status) -> Self {
        match status {
            Status::Open => Self::Updated,
            Status::Filled => Self::Filled,
            Status::Cancelled => Self::Cancelled,
            Status::Dead => Self::Dead,
            Status::Unpublished => Self::Unpublished,
        }
    }
}

/// An event streamed on `/ws`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MarketEvent {
    /// An order changed.
    Order {
        /// What happened.
        event: OrderEventType,
        /// The order after the change.
        order: Box<OrderView>,
    },
    /// A deal was created on-chain.
    Deal {
        /// Always `deal_created`.
        event: DealEventType,
        /// The deal.
        deal: Box<DealView>,
    },
}

/// What happened to a deal: it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DealEventType {
    /// Created by `matchOrders`.
    DealCreated,
}

impl MarketEvent {
    /// The event of `record` after `event`.
    pub fn order(event: OrderEventType, record: &OrderRecord) -> Self {
        Self::Order { event, order: Box::new(record.view()) }
    }

    /// The event of a new deal.
    pub fn deal(deal: DealView) -> Self {
        Self::Deal { event: DealEventType::DealCreated, deal: Box::new(deal) }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Seconds since the Unix epoch, now.
pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The four 64-bit words of a tag, least significant first, as stored (two's complement).
pub fn tag_words(tag: Tag) -> [i64; 4] {
    let limbs = tag.to_u256().into_limbs();
    limbs.map(|limb| limb as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_sort_key_puts_the_highest_price_first() {
        let request = |price: u64| {
            AnyOrder::Request(Signed::presigned(RequestOrder {
                workerpoolmaxprice: U256::from(price),
                ..Default::default()
            }))
        };
        assert!(request(10).sort_key() < request(9).sort_key());
        let app = |price: u64| {
            AnyOrder::App(Signed::presigned(AppOrder {
                appprice: U256::from(price),
                ..Default::default()
            }))
        };
        assert!(app(9).sort_key() < app(10).sort_key());
        assert!(app(255).sort_key() < app(256).sort_key(), "big-endian bytes order as numbers");
    }

    #[test]
    fn tag_words_are_least_significant_first() {
        let tag = Tag::from(U256::from(1) << 200 | U256::from(0x101));
        assert_eq!(tag_words(tag), [0x101, 0, 0, 1 << 8]);
        assert_eq!(tag_words(Tag::from(U256::MAX)), [-1, -1, -1, -1]);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let json = br#"{"app":"0x0000000000000000000000000000000000000001","appprice":"1","volume":"1","tag":"0x0000000000000000000000000000000000000000000000000000000000000000","datasetrestrict":"0x0000000000000000000000000000000000000000","workerpoolrestrict":"0x0000000000000000000000000000000000000000","requesterrestrict":"0x0000000000000000000000000000000000000000","salt":"0x0000000000000000000000000000000000000000000000000000000000000000","sign":"0x","extra":1}"#;
        let error = AnyOrder::from_json(OrderKind::App, json).unwrap_err();
        assert_eq!(error.code(), "invalid_order");
        assert!(error.to_string().contains("extra"), "{error}");
        assert_eq!(AnyOrder::from_json(OrderKind::App, b"{").unwrap_err().code(), "malformed_json");
        assert_eq!(AnyOrder::from_json(OrderKind::App, b"[]").unwrap_err().code(), "invalid_order");
    }
}
