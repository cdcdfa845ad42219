//! Amounts of RLC, held as integers of nRLC (1 RLC = 10^9 nRLC). Never floats.
//!
//! Text form: `"2 RLC"`, `"0.5 RLC"`, `"1.000000001 RLC"`, `"500 nRLC"` (units are
//! case-insensitive, the space is optional). The unit is required: a bare number could mean
//! either, 10^9 apart, so it is refused with both readings. A fraction of an nRLC is refused.
//! [`std::fmt::Display`] writes RLC with the fewest decimals that keep the exact value (`"1.5 RLC"`, `"0 RLC"`), which parses back to the same amount. JSON is a
//! decimal string of nRLC, as every `uint256` of the protocol.
//!
//! [`Ether`] is the same for the chain's own currency (`"0.1 ETH"`, `"20 gwei"`, `"1 wei"`).

use alloy::primitives::U256;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::{fmt, str::FromStr};

use crate::error::Error;

/// nRLC in one RLC (RLC has 9 decimals).
pub const NRLC_PER_RLC: u64 = 1_000_000_000;
const DECIMALS: usize = 9;

/// An amount of RLC, counted in nRLC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(U256);

impl Amount {
    /// Nothing.
    pub const ZERO: Self = Self(U256::ZERO);

    /// An amount of `nrlc` nRLC.
    pub const fn from_nrlc(nrlc: U256) -> Self {
        Self(nrlc)
    }

    /// An amount of `rlc` whole RLC.
    pub fn from_rlc(rlc: u64) -> Self {
        Self(U256::from(rlc) * U256::from(NRLC_PER_RLC))
    }

    /// The amount in nRLC.
    pub const fn nrlc(self) -> U256 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    /// `self - other`, or `None` when `other` is larger.
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Self)
    }

    /// `self × count` (a per-task price times a number of tasks), or `None` on overflow.
    pub fn checked_mul(self, count: U256) -> Option<Self> {
        self.0.checked_mul(count).map(Self)
    }
}

impl From<U256> for Amount {
    fn from(nrlc: U256) -> Self {
        Self(nrlc)
    }
}

impl From<Amount> for U256 {
    fn from(amount: Amount) -> Self {
        amount.0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_units(f, self.0, DECIMALS, "RLC")
    }
}

/// Writes `value` (in the smallest unit) in `unit`, which has `decimals` decimals, with the
/// fewest decimals that keep it exact.
fn write_units(
    f: &mut fmt::Formatter<'_>,
    value: U256,
    decimals: usize,
    unit: &str,
) -> fmt::Result {
    let (whole, fraction) = value.div_rem(U256::from(10u64).pow(U256::from(decimals)));
    if fraction.is_zero() {
        return write!(f, "{whole} {unit}");
    }
    let fraction = format!("{fraction:0>decimals$}");
    write!(f, "{whole}.{} {unit}", fraction.trim_end_matches('0'))
}

impl FromStr for Amount {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        parse_units(text, &[("RLC", DECIMALS as u32), ("nRLC", 0)]).map(Self)
    }
}

/// An amount of ether, counted in wei (1 ETH = 10^18 wei): what pays for gas. Text form as
/// [`Amount`], with the units `ETH`, `gwei` and `wei`; the unit is required.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ether(U256);

impl Ether {
    /// An amount of `wei` wei.
    pub const fn from_wei(wei: U256) -> Self {
        Self(wei)
    }

    /// The amount in wei.
    pub const fn wei(self) -> U256 {
        self.0
    }
}

impl fmt::Display for Ether {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_units(f, self.0, 18, "ETH")
    }
}

impl FromStr for Ether {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        parse_units(text, &[("ETH", 18), ("gwei", 9), ("wei", 0)]).map(Self)
    }
}

impl Serialize for Ether {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::serde_helpers::uint256::serialize(&self.0, serializer)
    }
}

/// Reads `"<decimal number> <unit>"` exactly into an integer of the smallest unit; `units`
/// gives each unit's name (matched case-insensitively) and its number of decimals, the largest
/// first. No floats: a number finer than the smallest unit is refused, never rounded.
fn parse_units(text: &str, units: &[(&'static str, u32)]) -> Result<U256, Error> {
    let invalid = |reason: String| Error::InvalidAmount { input: text.to_owned(), reason };
    let names = || units.iter().map(|(name, _)| *name).collect::<Vec<_>>();
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim_start();
    if unit.is_empty() && !number.is_empty() {
        return Err(Error::AmountWithoutUnit { input: number.to_owned(), units: names() });
    }
    let Some(&(unit, decimals)) = units.iter().find(|(name, _)| unit.eq_ignore_ascii_case(name))
    else {
        return Err(invalid(format!("the unit must be {}", names().join(", "))));
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || (number.contains('.') && fraction.is_empty()) {
        return Err(invalid("expected a number such as 2, 0.5 or 1.000000001".into()));
    }
    let fraction = fraction.trim_end_matches('0');
    let smallest = units.last().map_or(unit, |(name, _)| *name);
    if fraction.len() > decimals as usize {
        return Err(invalid(if decimals == 0 {
            format!("{unit} is the smallest unit: no fraction of it exists")
        } else {
            format!("{unit} has {decimals} decimals: the amount is finer than 1 {smallest}")
        }));
    }
    let scale = U256::from(10u64).pow(U256::from(decimals));
    let fraction_units = if fraction.is_empty() {
        U256::ZERO
    } else {
        let digits = U256::from_str_radix(fraction, 10).expect("ascii digits");
        digits * U256::from(10u64).pow(U256::from(decimals as usize - fraction.len()))
    };
    let out_of_range = || invalid("out of range".into());
    U256::from_str_radix(whole, 10)
        .map_err(|_| out_of_range())?
        .checked_mul(scale)
        .and_then(|units| units.checked_add(fraction_units))
        .ok_or_else(out_of_range)
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::serde_helpers::uint256::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Amount {
    /// A `uint256` of nRLC (decimal string, JSON integer or `0x`-hex), or a text amount with a
    /// unit such as `"0.5 RLC"`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<'a> {
            Integer(u64),
            Text(std::borrow::Cow<'a, str>),
        }
        match Raw::deserialize(deserializer).map_err(|_| {
            de::Error::custom("expected an amount of nRLC or a text such as \"2 RLC\"")
        })? {
            Raw::Integer(nrlc) => Ok(Self(U256::from(nrlc))),
            Raw::Text(text) => match crate::serde_helpers::uint256::parse(&text) {
                Ok(nrlc) => Ok(Self(nrlc)),
                Err(_) => text.parse().map_err(de::Error::custom),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nrlc(text: &str) -> U256 {
        text.parse::<Amount>().unwrap().nrlc()
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(nrlc("2 RLC"), U256::from(2_000_000_000u64));
        assert_eq!(nrlc("500 nRLC"), U256::from(500));
        assert_eq!(nrlc("0.5 RLC"), U256::from(500_000_000));
        assert_eq!(nrlc("1.000000001 RLC"), U256::from(1_000_000_001));
        assert_eq!(nrlc("1.0000000010 rlc"), U256::from(1_000_000_001));
        assert_eq!(nrlc("3rlc"), U256::from(3_000_000_000u64));
        assert_eq!(nrlc("  42 nrlc "), U256::from(42));
        assert_eq!(nrlc("7.0 nRLC"), U256::from(7));
        assert_eq!(nrlc("0 RLC"), U256::ZERO);
    }

    #[test]
    fn refuses_what_is_not_exact() {
        for bad in [
            "1.0000000001 RLC",
            "0.5 nRLC",
            "2 ETH",
            "",
            "RLC",
            ".5 RLC",
            "1. RLC",
            "1.2.3 RLC",
            "-1 RLC",
            "1e9",
            "1 000 RLC",
        ] {
            assert!(matches!(bad.parse::<Amount>(), Err(Error::InvalidAmount { .. })), "{bad:?}");
        }
        for bare in ["1", "0.5", "42"] {
            let error = bare.parse::<Amount>().unwrap_err();
            assert!(matches!(error, Error::AmountWithoutUnit { .. }), "{bare:?}");
            let message = error.to_string();
            assert!(
                message.contains(&format!("{bare} RLC"))
                    && message.contains(&format!("{bare} nRLC")),
                "{message}"
            );
        }
        let too_big = format!("{} RLC", U256::MAX);
        assert!(too_big.parse::<Amount>().is_err());
    }

    #[test]
    fn ether_parses_exactly_and_prints_back() {
        let wei = |text: &str| text.parse::<Ether>().unwrap().wei();
        assert_eq!(wei("1 ETH"), U256::from(10u64.pow(18)));
        assert_eq!(wei("0.1eth"), U256::from(10u64.pow(17)));
        assert_eq!(wei("20 gwei"), U256::from(20_000_000_000u64));
        assert_eq!(wei("1.5 gwei"), U256::from(1_500_000_000u64));
        assert_eq!(wei("7 wei"), U256::from(7));
        assert_eq!(wei("0.000000000000000001 ETH"), U256::from(1));
        for text in ["1 ETH", "0.25 ETH", "0.000000000000000001 ETH", "12345.6789 ETH"] {
            assert_eq!(text.parse::<Ether>().unwrap().to_string(), text);
        }
        for bad in ["0.5 wei", "0.0000000000000000001 ETH", "1 RLC", "ETH", "1..2 ETH"] {
            assert!(matches!(bad.parse::<Ether>(), Err(Error::InvalidAmount { .. })), "{bad:?}");
        }
        let message = "3".parse::<Ether>().unwrap_err().to_string();
        assert!(message.contains("\"3 ETH\"") && message.contains("\"3 wei\""), "{message}");
    }

    #[test]
    fn display() {
        assert_eq!(Amount::from_rlc(2).to_string(), "2 RLC");
        assert_eq!(Amount::ZERO.to_string(), "0 RLC");
        assert_eq!(Amount::from_nrlc(U256::from(500_000_000)).to_string(), "0.5 RLC");
        assert_eq!(Amount::from_nrlc(U256::from(1_000_000_001)).to_string(), "1.000000001 RLC");
        assert_eq!(Amount::from_nrlc(U256::from(500)).to_string(), "0.0000005 RLC");
    }

    #[test]
    fn json() {
        let amount = Amount::from_rlc(3);
        assert_eq!(serde_json::to_string(&amount).unwrap(), "\"3000000000\"");
        assert_eq!(serde_json::from_str::<Amount>("\"3000000000\"").unwrap(), amount);
        assert_eq!(serde_json::from_str::<Amount>("3000000000").unwrap(), amount);
        assert_eq!(serde_json::from_str::<Amount>("\"3 RLC\"").unwrap(), amount);
        assert!(serde_json::from_str::<Amount>("-3").is_err());
        assert!(serde_json::from_str::<Amount>("1.5").is_err());
    }

    #[test]
    fn arithmetic() {
        let one = Amount::from_rlc(1);
        assert_eq!(one.checked_add(one), Some(Amount::from_rlc(2)));
        assert_eq!(Amount::ZERO.checked_sub(one), None);
        assert_eq!(one.checked_mul(U256::from(3)), Some(Amount::from_rlc(3)));
        assert_eq!(Amount::from_nrlc(U256::MAX).checked_mul(U256::from(2)), None);
    }

    proptest! {
        #[test]
        fn display_parses_back(limbs in any::<[u64; 4]>()) {
            let amount = Amount::from_nrlc(U256::from_limbs(limbs));
            prop_assert_eq!(amount.to_string().parse::<Amount>().unwrap(), amount);
        }
    }
}
