//! What the market stores and serves: orders of any kind with their book status, deals, and
//! the events streamed to clients.

use alloy::primitives::{Address, B256, U256};
use poco_primitives::{
    AppOrder, DatasetOrder, Order, OrderKind, PocoDomain, RequestOrder, Signed, Tag,
    WorkerpoolOrder, matching::scheduler_stake,
};

pub use poco_api::market::{
    DealEventType, DealView, MarketEvent, OrderEventType, OrderView, SignatureKind, Status,
    kind_from_name, kind_name,
};

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

/// How the market stores a value in a database column: a small integer.
pub(crate) trait StorageCode: Sized {
    /// The number it is stored as.
    fn code(self) -> i16;
    /// The value stored as `code`.
    fn from_code(code: i16) -> Result<Self>;
}

impl StorageCode for Status {
    fn code(self) -> i16 {
        match self {
            Self::Open => 0,
            Self::Filled => 1,
            Self::Cancelled => 2,
            Self::Dead => 3,
            Self::Unpublished => 4,
        }
    }

    fn from_code(code: i16) -> Result<Self> {
        Ok(match code {
            0 => Self::Open,
            1 => Self::Filled,
            2 => Self::Cancelled,
            3 => Self::Dead,
            4 => Self::Unpublished,
            _ => return Err(Error::Corrupt(format!("order status {code}"))),
        })
    }
}

impl StorageCode for SignatureKind {
    fn code(self) -> i16 {
        match self {
            Self::Eoa => 0,
            Self::Contract => 1,
            Self::Presigned => 2,
        }
    }

    fn from_code(code: i16) -> Result<Self> {
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
