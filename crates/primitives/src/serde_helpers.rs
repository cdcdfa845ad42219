//! The JSON conventions of the protocol, for `#[serde(with = "...")]` attributes.
//!
//! * [`uint256`]: a `uint256` is written as a decimal string (`"1000000000"`) and read from a
//!   decimal string, a JSON integer or a `0x`-prefixed hexadecimal string. Anything else (a
//!   negative or fractional number, a JSON integer too large to be exact, a value above
//!   2^256 - 1) is refused with an error that says why.
//! * [`address`]: an address is written with its EIP-55 checksum and read from any `0x`-prefixed
//!   form; a mixed-case address must carry a valid checksum.
//!
//! `bytes32` and `bytes` values use alloy's own format, lowercase `0x`-prefixed hexadecimal.

/// `uint256` values: decimal strings out; decimal strings, JSON integers or `0x`-hex in.
pub mod uint256 {
    use alloy::primitives::U256;
    use serde::{Deserializer, Serializer, de};
    use std::fmt;

    /// Writes `value` as a decimal string.
    pub fn serialize<S: Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    /// Reads a `uint256` from a decimal string, a JSON integer or a `0x`-hex string.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<U256, D::Error> {
        deserializer.deserialize_any(Uint256Visitor)
    }

    /// Parses a decimal or `0x`-hexadecimal string into a `uint256`.
    ///
    /// The error says what is wrong with the text, for use in messages.
    pub fn parse(text: &str) -> Result<U256, &'static str> {
        if let Some(hex) = text.strip_prefix("0x") {
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("not a hexadecimal number");
            }
            U256::from_str_radix(hex, 16).map_err(|_| "out of range for uint256")
        } else {
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err("not a non-negative decimal integer");
            }
            U256::from_str_radix(text, 10).map_err(|_| "out of range for uint256")
        }
    }

    struct Uint256Visitor;

    impl de::Visitor<'_> for Uint256Visitor {
        type Value = U256;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a uint256 as a decimal string, a JSON integer or a 0x-hex string")
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<U256, E> {
            Ok(U256::from(value))
        }

        fn visit_u128<E: de::Error>(self, value: u128) -> Result<U256, E> {
            Ok(U256::from(value))
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<U256, E> {
            u64::try_from(value)
                .map(U256::from)
                .map_err(|_| E::custom(format_args!("uint256 cannot be negative: {value}")))
        }

        fn visit_i128<E: de::Error>(self, value: i128) -> Result<U256, E> {
            u128::try_from(value)
                .map(U256::from)
                .map_err(|_| E::custom(format_args!("uint256 cannot be negative: {value}")))
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<U256, E> {
            Err(E::custom(format_args!(
                "uint256 must be an exact integer, got {value}; \
                 write values above 2^64 - 1 as decimal strings"
            )))
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<U256, E> {
            parse(text)
                .map_err(|reason| E::custom(format_args!("invalid uint256 {text:?}: {reason}")))
        }
    }
}

/// Addresses: EIP-55 checksummed strings out; any `0x`-prefixed form in, with a valid checksum
/// when mixed-case.
pub mod address {
    use alloy::primitives::Address;
    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Writes `address` with its EIP-55 checksum.
    pub fn serialize<S: Serializer>(address: &Address, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(address.to_checksum_buffer(None).as_str())
    }

    /// Reads an address; a mixed-case address must carry a valid EIP-55 checksum.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Address, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        parse(&text)
            .map_err(|reason| de::Error::custom(format_args!("invalid address {text:?}: {reason}")))
    }

    /// Parses a `0x`-prefixed address; a mixed-case one must carry a valid EIP-55 checksum.
    pub fn parse(text: &str) -> Result<Address, &'static str> {
        let Some(hex) = text.strip_prefix("0x") else {
            return Err("missing 0x prefix");
        };
        if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("expected 40 hexadecimal digits");
        }
        let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
        if has_lower && has_upper {
            Address::parse_checksummed(text, None).map_err(|_| "wrong EIP-55 checksum")
        } else {
            text.parse().map_err(|_| "expected 40 hexadecimal digits")
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{Address, U256, address};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "super::uint256")]
        value: U256,
        #[serde(with = "super::address")]
        account: Address,
    }

    const ACCOUNT: Address = address!("0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045");

    fn read(value: &str) -> Result<U256, String> {
        let json = format!(r#"{{"value":{value},"account":"{ACCOUNT}"}}"#);
        serde_json::from_str::<Holder>(&json).map(|h| h.value).map_err(|e| e.to_string())
    }

    #[test]
    fn uint256_is_written_as_decimal_and_address_checksummed() {
        let holder = Holder { value: U256::from(10).pow(U256::from(30)), account: ACCOUNT };
        let json = serde_json::to_string(&holder).unwrap();
        assert_eq!(
            json,
            r#"{"value":"1000000000000000000000000000000","account":"0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045"}"#
        );
        assert_eq!(serde_json::from_str::<Holder>(&json).unwrap(), holder);
    }

    #[test]
    fn uint256_reads_decimal_strings_integers_and_hex() {
        assert_eq!(read(r#""42""#).unwrap(), U256::from(42));
        assert_eq!(read("42").unwrap(), U256::from(42));
        assert_eq!(read(r#""0x2a""#).unwrap(), U256::from(42));
        assert_eq!(read(&format!(r#""{}""#, U256::MAX)).unwrap(), U256::MAX);
        assert_eq!(read(&format!("{}", u64::MAX)).unwrap(), U256::from(u64::MAX));
    }

    #[test]
    fn uint256_refuses_what_is_not_an_exact_uint256() {
        let too_big = format!(r#""{}0""#, U256::MAX);
        assert!(read(&too_big).unwrap_err().contains("out of range for uint256"));
        assert!(read(&format!(r#""0x1{}""#, "0".repeat(64))).unwrap_err().contains("out of range"));
        assert!(read("-1").unwrap_err().contains("negative"));
        assert!(read("1.5").unwrap_err().contains("exact integer"));
        assert!(read("100000000000000000000000").unwrap_err().contains("decimal strings"));
        assert!(read(r#""-1""#).unwrap_err().contains("decimal integer"));
        assert!(read(r#""1e3""#).is_err());
        assert!(read(r#""""#).is_err());
        assert!(read(r#""0x""#).is_err());
        assert!(read(r#"" 1""#).is_err());
        assert!(read("null").is_err());
    }

    #[test]
    fn address_checksum_is_checked_when_mixed_case() {
        let lower = ACCOUNT.to_string().to_lowercase();
        let upper = format!("0x{}", lower[2..].to_uppercase());
        assert_eq!(super::address::parse(&lower), Ok(ACCOUNT));
        assert_eq!(super::address::parse(&upper), Ok(ACCOUNT));
        let mut bad = ACCOUNT.to_string();
        bad.replace_range(2..3, "D"); // 'd' -> 'D' breaks the checksum
        assert_eq!(super::address::parse(&bad), Err("wrong EIP-55 checksum"));
        assert!(super::address::parse(&lower[2..]).is_err());
        assert!(super::address::parse("0x1234").is_err());
    }
}
