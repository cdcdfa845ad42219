//! Tags: the 256-bit feature masks of orders and deals.
//!
//! App, dataset and request orders carry the features they **need**; a workerpool order the
//! features it **offers**. A deal demands `app | dataset without TEE framework bits | request`
//! ([`Tag::deal_demand`]), and the pool must offer every demanded bit (rule 0x06). The low
//! nibble is reserved for TEE: bit 0 means "runs in a TEE" (the only bit the contracts
//! interpret), bits 1 to 3 name the framework, which always comes with bit 0: Scone = `0x3`,
//! Gramine = `0x5`, TDX = `0x9`. Bits 4 to 255 are features; poco names bit 8 `gpu` and bit 9
//! `committee` (the contracts draw the deal's contributors from the pool's bonded members).
//!
//! Text form ([`std::str::FromStr`] and [`std::fmt::Display`]): a comma-separated list of
//! names (`tee`, `scone`, `gramine`, `tdx`, `gpu`, `committee`) and `0x`-hex masks, OR-ed
//! together, e.g.
//! `"scone,gpu"` or `"tee,0x10"`; `"none"` or an empty string is the empty tag. JSON is the
//! bytes32 hexadecimal form, as in orders.

use alloy::primitives::{B256, U256};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::{fmt, ops, str::FromStr};

use crate::error::Error;

/// A 256-bit feature mask (bytes32 on-chain).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub B256);

/// A TEE framework named by tag bits 1 to 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TeeFramework {
    /// Intel SGX with Scone: tag `0x3`.
    Scone,
    /// Intel SGX with Gramine: tag `0x5`.
    Gramine,
    /// Intel TDX: tag `0x9`.
    Tdx,
}

/// Names of single-meaning tags, in display order.
const NAMED: [(&str, Tag); 6] = [
    ("tee", Tag::TEE),
    ("scone", Tag::SCONE),
    ("gramine", Tag::GRAMINE),
    ("tdx", Tag::TDX),
    ("gpu", Tag::GPU),
    ("committee", Tag::COMMITTEE),
];

impl Tag {
    /// No feature.
    pub const NONE: Self = Self::from_low_bits(0);
    /// Bit 0: the deal runs in a TEE.
    pub const TEE: Self = Self::from_low_bits(0x1);
    /// TEE with the Scone framework (bits 0 and 1).
    pub const SCONE: Self = Self::from_low_bits(0x3);
    /// TEE with the Gramine framework (bits 0 and 2).
    pub const GRAMINE: Self = Self::from_low_bits(0x5);
    /// TEE with Intel TDX (bits 0 and 3).
    pub const TDX: Self = Self::from_low_bits(0x9);
    /// Bit 8: the app needs, or the pool offers, a GPU.
    pub const GPU: Self = Self::from_low_bits(0x100);
    /// Bit 9: the deal's contributors are drawn by the contracts from the workerpool's bonded
    /// members, so the scheduler cannot choose who votes.
    pub const COMMITTEE: Self = Self::from_low_bits(0x200);
    /// Bits 1 to 3, the TEE frameworks: ignored in dataset tags (since iExec v6.2.0).
    pub const TEE_FRAMEWORK_BITS: Self = Self::from_low_bits(0xe);

    const fn from_low_bits(bits: u16) -> Self {
        let mut bytes = [0u8; 32];
        let be = bits.to_be_bytes();
        bytes[30] = be[0];
        bytes[31] = be[1];
        Self(B256::new(bytes))
    }

    /// The tag with only bit `index` set (bit 0 is the least significant bit of the bytes32).
    pub fn bit(index: u8) -> Self {
        Self::from(U256::from(1) << index)
    }

    /// Whether bit `index` is set.
    pub fn has_bit(self, index: u8) -> bool {
        self.to_u256().bit(usize::from(index))
    }

    /// The tag as a number (bit 0 is the least significant).
    pub fn to_u256(self) -> U256 {
        U256::from_be_bytes(self.0.0)
    }

    /// Whether no bit is set.
    pub fn is_empty(self) -> bool {
        self.0.is_zero()
    }

    /// Whether every bit of `other` is also set in `self` (an offer covering a demand).
    pub fn is_superset_of(self, other: Self) -> bool {
        other.missing_in(self).is_empty()
    }

    /// The bits of `self` that `offer` lacks: what rule 0x06 reports.
    pub fn missing_in(self, offer: Self) -> Self {
        self & !offer
    }

    /// Whether bit 0 (TEE) is set.
    pub fn is_tee(self) -> bool {
        self.has_bit(0)
    }

    /// The TEE framework named by the low nibble, which must be exactly `0x3`, `0x5` or `0x9`
    /// (the off-chain convention); `None` otherwise.
    pub fn tee_framework(self) -> Option<TeeFramework> {
        match self.0[31] & 0xf {
            0x3 => Some(TeeFramework::Scone),
            0x5 => Some(TeeFramework::Gramine),
            0x9 => Some(TeeFramework::Tdx),
            _ => None,
        }
    }

    /// The tag with bits 1 to 3 cleared: how a dataset order's tag enters the deal.
    pub fn without_tee_framework(self) -> Self {
        self & !Self::TEE_FRAMEWORK_BITS
    }

    /// The demand of a deal: `app | dataset without TEE framework bits | request`.
    pub fn deal_demand(app: Self, dataset: Self, request: Self) -> Self {
        app | dataset.without_tee_framework() | request
    }

    /// The set bits, from least to most significant.
    pub fn bits(self) -> impl Iterator<Item = u8> {
        (0..=255u8).filter(move |&index| self.has_bit(index))
    }
}

impl TeeFramework {
    /// The tag of this framework (TEE bit included).
    pub const fn tag(self) -> Tag {
        match self {
            Self::Scone => Tag::SCONE,
            Self::Gramine => Tag::GRAMINE,
            Self::Tdx => Tag::TDX,
        }
    }

    /// The lowercase name of the framework, as in tag text.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Scone => "scone",
            Self::Gramine => "gramine",
            Self::Tdx => "tdx",
        }
    }
}

impl fmt::Display for TeeFramework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<B256> for Tag {
    fn from(bytes: B256) -> Self {
        Self(bytes)
    }
}

impl From<Tag> for B256 {
    fn from(tag: Tag) -> Self {
        tag.0
    }
}

impl From<U256> for Tag {
    fn from(value: U256) -> Self {
        Self(B256::from(value))
    }
}

impl From<Tag> for U256 {
    fn from(tag: Tag) -> Self {
        tag.to_u256()
    }
}

impl ops::BitOr for Tag {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl ops::BitOrAssign for Tag {
    fn bitor_assign(&mut self, rhs: Self) {
        *self = *self | rhs;
    }
}

impl ops::BitAnd for Tag {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

impl ops::BitXor for Tag {
    type Output = Self;
    fn bitxor(self, rhs: Self) -> Self {
        Self(self.0 ^ rhs.0)
    }
}

impl ops::Not for Tag {
    type Output = Self;
    fn not(self) -> Self {
        Self(!self.0)
    }
}

impl fmt::LowerHex for Tag {
    /// The full bytes32 form, `0x` and 64 digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Tag {
    /// Names where the bits have one (`scone,gpu`), then a `0x` mask for the rest; `none` for
    /// the empty tag. Parsing the text gives the same tag back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = *self;
        let mut terms: Vec<String> = Vec::new();
        if rest.is_tee() {
            for framework in [TeeFramework::Scone, TeeFramework::Gramine, TeeFramework::Tdx] {
                let tag = framework.tag();
                if rest.is_superset_of(tag & Self::TEE_FRAMEWORK_BITS) {
                    terms.push(framework.name().to_owned());
                    rest = rest & !(tag & Self::TEE_FRAMEWORK_BITS);
                }
            }
            if terms.is_empty() {
                terms.push("tee".to_owned());
            }
            rest = rest & !Self::TEE;
        }
        for (name, tag) in [("gpu", Self::GPU), ("committee", Self::COMMITTEE)] {
            if rest.is_superset_of(tag) {
                terms.push(name.to_owned());
                rest = rest & !tag;
            }
        }
        if !rest.is_empty() {
            terms.push(format!("{:#x}", rest.to_u256()));
        }
        if terms.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&terms.join(","))
    }
}

impl FromStr for Tag {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidTag { input: text.to_owned(), reason };
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("none") {
            return Ok(Self::NONE);
        }
        let mut tag = Self::NONE;
        for term in trimmed.split(',').map(str::trim) {
            if let Some(hex) = term.strip_prefix("0x") {
                if hex.is_empty() || hex.len() > 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(format!("{term:?} is not a bytes32 hexadecimal mask")));
                }
                tag |= Self::from(U256::from_str_radix(hex, 16).expect("at most 64 hex digits"));
            } else if let Some((_, named)) =
                NAMED.iter().find(|(name, _)| name.eq_ignore_ascii_case(term))
            {
                tag |= *named;
            } else {
                return Err(invalid(format!(
                    "unknown feature {term:?} (known: tee, scone, gramine, tdx, gpu, or 0x-hex)"
                )));
            }
        }
        Ok(tag)
    }
}

impl Serialize for Tag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Tag {
    /// The bytes32 hexadecimal form, or any text form of [`Tag`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tag(text: &str) -> Tag {
        text.parse().unwrap()
    }

    #[test]
    fn constants() {
        assert_eq!(Tag::TEE.to_u256(), U256::from(1));
        assert_eq!(Tag::SCONE.to_u256(), U256::from(3));
        assert_eq!(Tag::GRAMINE.to_u256(), U256::from(5));
        assert_eq!(Tag::TDX.to_u256(), U256::from(9));
        assert_eq!(Tag::GPU, Tag::bit(8));
        assert_eq!(Tag::TEE_FRAMEWORK_BITS, Tag::bit(1) | Tag::bit(2) | Tag::bit(3));
        assert!(Tag::SCONE.is_tee() && !Tag::GPU.is_tee());
        assert_eq!(Tag::bit(255).0[0], 0x80);
    }

    #[test]
    fn frameworks_match_the_low_nibble_exactly() {
        assert_eq!(Tag::SCONE.tee_framework(), Some(TeeFramework::Scone));
        assert_eq!((Tag::GRAMINE | Tag::GPU).tee_framework(), Some(TeeFramework::Gramine));
        assert_eq!(Tag::TDX.tee_framework(), Some(TeeFramework::Tdx));
        assert_eq!(Tag::TEE.tee_framework(), None);
        assert_eq!((Tag::SCONE | Tag::TDX).tee_framework(), None);
        assert_eq!(Tag::bit(1).tee_framework(), None);
    }

    #[test]
    fn superset_and_missing_bits() {
        let offer = Tag::SCONE | Tag::GPU;
        assert!(offer.is_superset_of(Tag::TEE));
        assert!(offer.is_superset_of(Tag::SCONE | Tag::GPU));
        assert!(offer.is_superset_of(Tag::NONE));
        assert!(!offer.is_superset_of(Tag::TDX));
        assert_eq!(Tag::TDX.missing_in(offer), Tag::bit(3));
    }

    #[test]
    fn deal_demand_ignores_dataset_frameworks() {
        assert_eq!(Tag::SCONE.without_tee_framework(), Tag::TEE);
        let demand = Tag::deal_demand(Tag::TDX, Tag::SCONE | Tag::GPU, Tag::NONE);
        assert_eq!(demand, Tag::TDX | Tag::GPU);
    }

    #[test]
    fn parse_names_and_hex() {
        assert_eq!(tag("tee"), Tag::TEE);
        assert_eq!(tag("Scone"), Tag::SCONE);
        assert_eq!(tag("tdx, gpu"), Tag::TDX | Tag::GPU);
        assert_eq!(tag("0x3"), Tag::SCONE);
        assert_eq!(tag(&format!("{:x}", Tag::GRAMINE)), Tag::GRAMINE);
        assert_eq!(tag(""), Tag::NONE);
        assert_eq!(tag("none"), Tag::NONE);
        assert!(matches!("sgx".parse::<Tag>(), Err(Error::InvalidTag { .. })));
        assert!("0x".parse::<Tag>().is_err());
        assert!("tee,".parse::<Tag>().is_err());
        assert!(format!("0x1{}", "0".repeat(64)).parse::<Tag>().is_err());
    }

    #[test]
    fn display() {
        assert_eq!(Tag::NONE.to_string(), "none");
        assert_eq!(Tag::TEE.to_string(), "tee");
        assert_eq!((Tag::SCONE | Tag::GPU).to_string(), "scone,gpu");
        assert_eq!((Tag::GPU | Tag::COMMITTEE).to_string(), "gpu,committee");
        assert_eq!(Tag::COMMITTEE, Tag::bit(9));
        assert_eq!((Tag::SCONE | Tag::GRAMINE).to_string(), "scone,gramine");
        assert_eq!((Tag::TDX | Tag::bit(4)).to_string(), "tdx,0x10");
        assert_eq!(Tag::bit(1).to_string(), "0x2");
        assert_eq!(
            format!("{:x}", Tag::TEE),
            "0x0000000000000000000000000000000000000000000000000000000000000001"
        );
    }

    #[test]
    fn json_is_bytes32_hex() {
        let json = serde_json::to_string(&Tag::SCONE).unwrap();
        assert_eq!(json, format!("\"{:x}\"", Tag::SCONE));
        assert_eq!(serde_json::from_str::<Tag>(&json).unwrap(), Tag::SCONE);
        assert_eq!(serde_json::from_str::<Tag>("\"tdx\"").unwrap(), Tag::TDX);
    }

    proptest! {
        #[test]
        fn display_parses_back(bytes in any::<[u8; 32]>()) {
            let tag = Tag(B256::new(bytes));
            prop_assert_eq!(tag.to_string().parse::<Tag>().unwrap(), tag);
        }

        #[test]
        fn superset_is_bitwise(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let (a, b) = (Tag(B256::new(a)), Tag(B256::new(b)));
            prop_assert!((a | b).is_superset_of(a));
            prop_assert_eq!(a.is_superset_of(b), a & b == b);
            let missing = b.missing_in(a);
            prop_assert!((missing & a).is_empty());
            prop_assert!((a | missing).is_superset_of(b));
        }
    }
}
