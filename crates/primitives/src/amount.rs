//! Amounts of RLC, held as integers of nRLC (1 RLC = 10^9 nRLC). Never floats.
//!
//! Text form: `"2 RLC"`, `"0.5 RLC"`, `"1.000000001 RLC"`, `"500 nRLC"` (units are
//! case-insensitive, the space is optional), or a bare integer, read as nRLC. A fraction of an
//! nRLC is refused. [`std::fmt::Display`] writes RLC with the fewest decimals that keep the
//! exact value (`"1.5 RLC"`, `"0 RLC"`), which parses back to the same amount. JSON is a
//! decimal string of nRLC, as every `uint256` of the protocol.

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
        let (whole, fraction) = self.0.div_rem(U256::from(NRLC_PER_RLC));
        if fraction.is_zero() {
            return write!(f, "{whole} RLC");
        }
        let fraction = format!("{:0>DECIMALS$}", fraction.to::<u64>());
        write!(f, "{whole}.{} RLC", fraction.trim_end_matches('0'))
    }
}

impl FromStr for Amount {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid =
            |reason: &'static str| Error::InvalidAmount { input: text.to_owned(), reason };
        let trimmed = text.trim();
        let split =
            trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let unit = unit.trim_start();
        let nrlc_per_unit = if unit.is_empty() || unit.eq_ignore_ascii_case("nrlc") {
            1
        } else if unit.eq_ignore_ascii_case("rlc") {
            NRLC_PER_RLC
        } else {
            return Err(invalid("the unit must be RLC or nRLC"));
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty()
            || fraction.contains('.')
            || (number.contains('.') && fraction.is_empty())
        {
            return Err(invalid("expected a number such as 2, 0.5 or 1.000000001"));
        }
        let fraction = fraction.trim_end_matches('0');
        let fraction_nrlc = if fraction.is_empty() {
            0
        } else if nrlc_per_unit == 1 {
            return Err(invalid("nRLC is the smallest unit: no fraction of it exists"));
        } else if fraction.len() > DECIMALS {
            return Err(invalid("RLC has 9 decimals: the amount is finer than 1 nRLC"));
        } else {
            let digits: u64 = fraction.parse().expect("ascii digits, at most 9");
            digits * 10u64.pow((DECIMALS - fraction.len()) as u32)
        };
        let whole = U256::from_str_radix(whole, 10).map_err(|_| invalid("out of range"))?;
        whole
            .checked_mul(U256::from(nrlc_per_unit))
            .and_then(|nrlc| nrlc.checked_add(U256::from(fraction_nrlc)))
            .map(Self)
            .ok_or_else(|| invalid("out of range"))
    }
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
        assert_eq!(nrlc("  42  "), U256::from(42));
        assert_eq!(nrlc("7.0 nRLC"), U256::from(7));
        assert_eq!(nrlc("0 RLC"), U256::ZERO);
    }

    #[test]
    fn refuses_what_is_not_exact() {
        for bad in [
            "1.0000000001 RLC",
            "0.5 nRLC",
            "0.5",
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
        let too_big = format!("{} RLC", U256::MAX);
        assert!(too_big.parse::<Amount>().is_err());
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
