//! What the market stores and serves: orders of any kind with their book status, deals, and
//! the events streamed to clients.

use alloy::primitives::{Address, B256, U256};
pub use poco_primitives::{AnySigned, Roles};
use poco_primitives::{OrderKind, Tag};

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

/// What a task event says happened (stored as its code; named in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEventKind {
    /// `TaskInitialize`.
    Initialize,
    /// `TaskContribute`.
    Contribute,
    /// `TaskConsensus`.
    Consensus,
    /// `TaskReveal`.
    Reveal,
    /// `TaskReopen`.
    Reopen,
    /// `TaskFinalize`.
    Finalize,
    /// `TaskClaimed`.
    Claimed,
    /// `AccurateContribution`: stake back, reward paid.
    Accurate,
    /// `FaultyContribution`: stake seized, score cut.
    Faulty,
    /// `SilentSeat`: a committee seat's holder did not vote.
    SilentSeat,
}

impl TaskEventKind {
    /// Every kind, in code order.
    pub const ALL: [Self; 10] = [
        Self::Initialize,
        Self::Contribute,
        Self::Consensus,
        Self::Reveal,
        Self::Reopen,
        Self::Finalize,
        Self::Claimed,
        Self::Accurate,
        Self::Faulty,
        Self::SilentSeat,
    ];

    /// Its name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Initialize => "initialize",
            Self::Contribute => "contribute",
            Self::Consensus => "consensus",
            Self::Reveal => "reveal",
            Self::Reopen => "reopen",
            Self::Finalize => "finalize",
            Self::Claimed => "claimed",
            Self::Accurate => "accurate_contribution",
            Self::Faulty => "faulty_contribution",
            Self::SilentSeat => "silent_seat",
        }
    }
}

/// The code of `value`: its position in `all`, the list of every value in code order.
fn position_code<T: PartialEq>(all: &[T], value: &T) -> i16 {
    all.iter().position(|v| v == value).expect("every value is listed") as i16
}

/// The value of code `code` in `all`; `what` names the kind of value in the error.
fn from_position_code<T: Copy>(all: &[T], code: i16, what: &str) -> Result<T> {
    usize::try_from(code)
        .ok()
        .and_then(|i| all.get(i).copied())
        .ok_or_else(|| Error::Corrupt(format!("{what} {code}")))
}

impl StorageCode for TaskEventKind {
    fn code(self) -> i16 {
        position_code(&Self::ALL, &self)
    }

    fn from_code(code: i16) -> Result<Self> {
        from_position_code(&Self::ALL, code, "task event kind")
    }
}

/// What an account event says happened (stored as its code; named in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountEventKind {
    /// `Deposit`: RLC into the account.
    Deposit,
    /// `Withdraw`: RLC out of it.
    Withdraw,
    /// `MemberJoined`: a bond locked in a workerpool.
    MemberJoined,
    /// `MemberLeft`.
    MemberLeft,
    /// `MemberExpelled`: a penalty taken from the bond.
    MemberExpelled,
    /// `BondReleased`: the bond back in the balance.
    BondReleased,
}

impl AccountEventKind {
    /// Every kind, in code order.
    pub const ALL: [Self; 6] = [
        Self::Deposit,
        Self::Withdraw,
        Self::MemberJoined,
        Self::MemberLeft,
        Self::MemberExpelled,
        Self::BondReleased,
    ];

    /// Its name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Deposit => "deposit",
            Self::Withdraw => "withdraw",
            Self::MemberJoined => "member_joined",
            Self::MemberLeft => "member_left",
            Self::MemberExpelled => "member_expelled",
            Self::BondReleased => "bond_released",
        }
    }
}

impl StorageCode for AccountEventKind {
    fn code(self) -> i16 {
        position_code(&Self::ALL, &self)
    }

    fn from_code(code: i16) -> Result<Self> {
        from_position_code(&Self::ALL, code, "account event kind")
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

/// Parses a JSON order of `kind`: the protocol's field names, unknown fields refused.
pub fn parse_order(kind: OrderKind, json: &[u8]) -> Result<AnySigned> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| Error::MalformedJson(e.to_string()))?;
    order_from_value(kind, value)
}

/// Reads an order of `kind` from a JSON value.
pub fn order_from_value(kind: OrderKind, value: serde_json::Value) -> Result<AnySigned> {
    if !value.is_object() {
        return Err(Error::InvalidOrder(format!(
            "expected a JSON object with the fields of a {} order",
            kind_name(kind)
        )));
    }
    AnySigned::from_value(kind, value).map_err(|e| Error::InvalidOrder(e.to_string()))
}

/// The stored sort key of an order: 32 bytes big-endian, ascending means best first (the
/// price for sell orders, its bitwise complement for requests, which sort by highest price
/// first).
pub fn sort_key(order: &AnySigned) -> [u8; 32] {
    let price = order.price();
    let key = if matches!(order, AnySigned::Request(_)) { !price } else { price };
    key.to_be_bytes()
}

/// An order as the market keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// The order hash.
    pub hash: B256,
    /// The signed order.
    pub order: AnySigned,
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
    use poco_primitives::{AppOrder, RequestOrder, Signed};

    use super::*;

    #[test]
    fn request_sort_key_puts_the_highest_price_first() {
        let request = |price: u64| {
            AnySigned::Request(Signed::presigned(RequestOrder {
                workerpoolmaxprice: U256::from(price),
                ..Default::default()
            }))
        };
        assert!(sort_key(&request(10)) < sort_key(&request(9)));
        let app = |price: u64| {
            AnySigned::App(Signed::presigned(AppOrder {
                appprice: U256::from(price),
                ..Default::default()
            }))
        };
        assert!(sort_key(&app(9)) < sort_key(&app(10)));
        assert!(sort_key(&app(255)) < sort_key(&app(256)), "big-endian bytes order as numbers");
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
        let error = parse_order(OrderKind::App, json).unwrap_err();
        assert_eq!(error.code(), "invalid_order");
        assert!(error.to_string().contains("extra"), "{error}");
        assert_eq!(parse_order(OrderKind::App, b"{").unwrap_err().code(), "malformed_json");
        assert_eq!(parse_order(OrderKind::App, b"[]").unwrap_err().code(), "invalid_order");
    }
}
