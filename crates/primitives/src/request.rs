//! Signed HTTP requests: how every poco service (scheduler, SMS, result store) knows which
//! wallet sent a request, and refuses to act twice on one.
//!
//! # Who signs
//!
//! The wallet the request speaks for: a worker to its scheduler (registration, heartbeats,
//! work, reports) and to the result store (uploads); a requester to the scheduler (its task
//! logs) and to the SMS (its secrets); an asset owner or a beneficiary to the SMS (dataset keys,
//! app secrets, result keys); a scheduler to the SMS (enclave challenges); a worker to the SMS
//! (enclave sessions).
//!
//! # What is covered
//!
//! One scheme, [`SignedRequest`]: the signer personal-signs (EIP-191 over a 32-byte hash, see
//! [`crate::signature`]) `keccak256` of the UTF-8 text
//!
//! ```text
//! poco-request-v1\n{METHOD}\n{PATH}\n{TIMESTAMP}\n{NONCE}\n{BODY_SHA256}
//! ```
//!
//! where `METHOD` is the upper-case HTTP method, `PATH` the request path as sent (no query),
//! `TIMESTAMP` unix **seconds** in decimal, `NONCE` 16 random bytes and `BODY_SHA256` the
//! SHA-256 of the body (empty body included), both `0x`-prefixed lower-case hex. The signed
//! values travel in headers: [`HEADER_ADDRESS`] (the signer), [`HEADER_TIMESTAMP`],
//! [`HEADER_NONCE`] and [`HEADER_SIGNATURE`] ([`RequestHeaders`]); the result store names the
//! uploading worker and the body hash in headers of its own.
//!
//! # How replays are refused
//!
//! A service accepts a request only if its timestamp is within the service's maximum age of
//! its own clock, either way ([`SignedRequest::is_fresh`]), and only once: it remembers each
//! accepted request's [`SignedRequest::signing_hash`] (per signer) until the request could no
//! longer be fresh ([`SignedRequest::fresh_until`]), and refuses the same hash again. The random
//! nonce makes two requests signed within the same second by the same wallet different, so
//! clients need no coordination (no strictly increasing clock, no shared counter).

use alloy::{
    primitives::{Address, B128, B256, Bytes, keccak256},
    signers::{Signer, SignerSync},
};
use sha2::{Digest, Sha256};

use crate::{
    error::{Error, Result},
    signature,
};

/// Header: the address of the wallet that signed the request.
pub const HEADER_ADDRESS: &str = "x-poco-address";
/// Header: the request's timestamp, in seconds since the Unix epoch (decimal).
pub const HEADER_TIMESTAMP: &str = "x-poco-timestamp";
/// Header: the request's random nonce, `0x` + 32 hex digits (16 bytes).
pub const HEADER_NONCE: &str = "x-poco-request-nonce";
/// Header: the signer's signature of the request, `0x` + 130 hex digits (65 bytes).
pub const HEADER_SIGNATURE: &str = "x-poco-signature";

/// The first line of the canonical text: the version of the scheme.
pub const CANONICAL_TAG: &str = "poco-request-v1";

/// The signed parts of a request, as the client signs them and the service checks them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRequest<'a> {
    /// The HTTP method, upper case.
    pub method: &'a str,
    /// The request path as sent, without query (`/results/0x…`).
    pub path: &'a str,
    /// When the request was signed, in seconds since the Unix epoch.
    pub timestamp: u64,
    /// 16 random bytes, unique per request.
    pub nonce: [u8; 16],
    /// The SHA-256 of the body.
    pub body_sha256: B256,
}

impl<'a> SignedRequest<'a> {
    /// A request to sign now: stamped with the system clock (unix seconds), a fresh random
    /// nonce, and the SHA-256 of `body`.
    pub fn fresh(method: &'a str, path: &'a str, body: &[u8]) -> Self {
        Self {
            method,
            path,
            timestamp: unix_seconds(),
            nonce: random_nonce(),
            body_sha256: body_sha256(body),
        }
    }

    /// The canonical text the signature covers (see the [module documentation](self)).
    pub fn canonical(&self) -> String {
        format!(
            "{CANONICAL_TAG}\n{}\n{}\n{}\n{}\n{}",
            self.method,
            self.path,
            self.timestamp,
            format_nonce(&self.nonce),
            self.body_sha256
        )
    }

    /// `keccak256(canonical text)`.
    pub fn message_hash(&self) -> B256 {
        keccak256(self.canonical().as_bytes())
    }

    /// The hash actually signed: the personal-message hash of [`Self::message_hash`]. It
    /// identifies the request: a service accepts each one once per signer.
    pub fn signing_hash(&self) -> B256 {
        signature::personal_message_hash(self.message_hash())
    }

    /// The signer's signature of this request (65 bytes).
    pub fn sign<S: SignerSync + ?Sized>(&self, signer: &S) -> Result<Bytes> {
        signature::sign_hash(signer, self.signing_hash())
    }

    /// Who signed `signature` for this request (any signature of other values recovers to
    /// somebody else).
    pub fn recover_signer(&self, signature: &[u8]) -> Result<Address> {
        signature::recover_signer(self.signing_hash(), signature)
    }

    /// Signs this request with `signer`: the headers that carry it.
    pub fn headers_signed_by<S: SignerSync + Signer + ?Sized>(
        &self,
        signer: &S,
    ) -> Result<RequestHeaders> {
        Ok(RequestHeaders {
            address: signer.address(),
            timestamp: self.timestamp,
            nonce: self.nonce,
            signature: self.sign(signer)?,
        })
    }

    /// Whether the request's timestamp is at most `max_age_secs` away from `now_secs` (either
    /// way: clocks differ). A timestamp in milliseconds is some 50 000 years away.
    pub fn is_fresh(&self, now_secs: u64, max_age_secs: u64) -> bool {
        self.timestamp.abs_diff(now_secs) <= max_age_secs
    }

    /// The last second at which the request is still fresh for a service accepting
    /// `max_age_secs`: a service must remember it as accepted until then, and may forget it
    /// after.
    pub fn fresh_until(&self, max_age_secs: u64) -> u64 {
        self.timestamp.saturating_add(max_age_secs)
    }
}

/// The signature headers of a request ([`HEADER_ADDRESS`], [`HEADER_TIMESTAMP`],
/// [`HEADER_NONCE`], [`HEADER_SIGNATURE`]): what a client sends with the method, path and body,
/// and what a service reads back to rebuild the [`SignedRequest`] and check it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHeaders {
    /// The wallet the request claims to be signed by.
    pub address: Address,
    /// The signed timestamp, unix seconds.
    pub timestamp: u64,
    /// The signed nonce.
    pub nonce: [u8; 16],
    /// The signature.
    pub signature: Bytes,
}

impl RequestHeaders {
    /// The headers, as (name, value) pairs to send.
    pub fn pairs(&self) -> [(&'static str, String); 4] {
        [
            (HEADER_ADDRESS, self.address.to_string()),
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_NONCE, format_nonce(&self.nonce)),
            (HEADER_SIGNATURE, self.signature.to_string()),
        ]
    }

    /// Reads the headers of a received request; `header` gives a header's text by name (`None`
    /// when it is missing or not text).
    pub fn parse<'h>(header: impl Fn(&'static str) -> Option<&'h str>) -> Result<Self> {
        let required =
            |name: &'static str| header(name).ok_or_else(|| invalid(name, "missing header".into()));
        let address = required(HEADER_ADDRESS)?;
        let address = address
            .parse()
            .map_err(|_| invalid(HEADER_ADDRESS, format!("{address:?} is not an address")))?;
        let timestamp = required(HEADER_TIMESTAMP)?;
        let timestamp = timestamp.parse().map_err(|_| {
            invalid(HEADER_TIMESTAMP, format!("{timestamp:?} is not unix seconds in decimal"))
        })?;
        let nonce = parse_nonce(required(HEADER_NONCE)?)?;
        let signature = required(HEADER_SIGNATURE)?;
        let signature = signature
            .parse()
            .map_err(|_| invalid(HEADER_SIGNATURE, format!("{signature:?} is not 0x-hex")))?;
        Ok(Self { address, timestamp, nonce, signature })
    }

    /// The request these headers claim to sign, for the method, path and body received.
    pub fn request<'a>(&self, method: &'a str, path: &'a str, body: &[u8]) -> SignedRequest<'a> {
        SignedRequest {
            method,
            path,
            timestamp: self.timestamp,
            nonce: self.nonce,
            body_sha256: body_sha256(body),
        }
    }

    /// Checks that the signature is [`Self::address`]'s signature of `request`.
    pub fn check_signature(&self, request: &SignedRequest<'_>) -> Result<()> {
        let signer = request.recover_signer(&self.signature)?;
        if signer != self.address {
            return Err(Error::WrongRequestSigner { claimed: self.address, signer });
        }
        Ok(())
    }
}

/// The system clock, in whole seconds since the Unix epoch.
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// 16 bytes from the operating system's random source: a request nonce.
pub fn random_nonce() -> [u8; 16] {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).expect("the operating system's random source works");
    nonce
}

/// A nonce as it is signed and sent: `0x` + 32 lower-case hex digits.
pub fn format_nonce(nonce: &[u8; 16]) -> String {
    B128::from(*nonce).to_string()
}

/// A nonce as sent: 32 hex digits, `0x`-prefixed (a missing prefix is tolerated).
pub fn parse_nonce(text: &str) -> Result<[u8; 16]> {
    text.parse::<B128>()
        .map(|nonce| nonce.0)
        .map_err(|_| invalid(HEADER_NONCE, format!("{text:?} is not 0x followed by 32 hex digits")))
}

/// The SHA-256 of a request body.
pub fn body_sha256(body: &[u8]) -> B256 {
    B256::from(<[u8; 32]>::from(Sha256::digest(body)))
}

fn invalid(header: &'static str, reason: String) -> Error {
    Error::InvalidRequestHeader { header, reason }
}

#[cfg(test)]
mod tests {
    use alloy::signers::local::PrivateKeySigner;

    use super::*;

    fn key(byte: u8) -> PrivateKeySigner {
        PrivateKeySigner::from_bytes(&B256::repeat_byte(byte)).unwrap()
    }

    fn lookup<'h>(
        headers: &'h [(&'static str, String)],
    ) -> impl Fn(&'static str) -> Option<&'h str> {
        move |name| headers.iter().find(|(n, _)| *n == name).map(|(_, value)| value.as_str())
    }

    #[test]
    fn canonical_text_is_stable() {
        let request = SignedRequest {
            method: "PUT",
            path: "/results/0x01",
            timestamp: 1_700_000_000,
            nonce: [0xab; 16],
            body_sha256: B256::repeat_byte(0x11),
        };
        assert_eq!(
            request.canonical(),
            format!(
                "poco-request-v1\nPUT\n/results/0x01\n1700000000\n0x{}\n0x{}",
                "ab".repeat(16),
                "11".repeat(32)
            )
        );
        assert_eq!(request.message_hash(), keccak256(request.canonical()));
        let worker = key(2);
        let signature = request.sign(&worker).unwrap();
        assert_eq!(request.recover_signer(&signature).unwrap(), worker.address());
        // It is an EIP-191 signature, as `personal_sign` / `sign_message` make.
        let via_message = worker.sign_message_sync(request.message_hash().as_slice()).unwrap();
        assert_eq!(request.recover_signer(&via_message.as_bytes()).unwrap(), worker.address());
        assert!(matches!(
            request.recover_signer(&signature[..10]),
            Err(Error::SignatureLength { length: 10 })
        ));
    }

    #[test]
    fn a_signature_covers_every_part_of_the_request() {
        let signer = key(3);
        let body = br#"{"freeSlots":2}"#;
        let request = SignedRequest::fresh("POST", "/work", body);
        let signature = request.sign(&signer).unwrap();
        assert_eq!(request.recover_signer(&signature).unwrap(), signer.address());
        let mut nonce = request.nonce;
        nonce[0] ^= 1;
        let altered = [
            SignedRequest { method: "GET", ..request.clone() },
            SignedRequest { path: "/reports", ..request.clone() },
            SignedRequest { timestamp: request.timestamp + 1, ..request.clone() },
            SignedRequest { nonce, ..request.clone() },
            SignedRequest { body_sha256: body_sha256(br#"{"freeSlots":3}"#), ..request.clone() },
        ];
        for other in altered {
            assert_ne!(other.recover_signer(&signature).unwrap(), signer.address(), "{other:?}");
        }
    }

    #[test]
    fn fresh_requests_are_stamped_in_seconds_with_their_own_nonce() {
        let before = unix_seconds();
        let first = SignedRequest::fresh("POST", "/work", b"{}");
        let second = SignedRequest::fresh("POST", "/work", b"{}");
        assert!(first.timestamp >= before && first.timestamp <= unix_seconds());
        assert_eq!(first.body_sha256, body_sha256(b"{}"));
        // Signed within the same second by the same wallet, still two requests.
        assert_ne!(first.nonce, second.nonce);
        assert_ne!(first.signing_hash(), second.signing_hash());
    }

    #[test]
    fn a_timestamp_in_milliseconds_is_not_fresh() {
        let now = unix_seconds();
        let mut request = SignedRequest::fresh("POST", "/work", b"");
        assert!(request.is_fresh(now, 300));
        request.timestamp = now * 1000;
        assert!(!request.is_fresh(now, 300));
        for (timestamp, fresh) in [(now - 300, true), (now + 300, true), (now - 301, false)] {
            request.timestamp = timestamp;
            assert_eq!(request.is_fresh(now, 300), fresh, "{timestamp}");
        }
        request.timestamp = u64::MAX;
        assert!(!request.is_fresh(now, 300));
        assert_eq!(request.fresh_until(300), u64::MAX);
    }

    #[test]
    fn headers_round_trip_and_check_the_signer() {
        let signer = key(4);
        let body = b"body";
        let request = SignedRequest::fresh("PUT", "/apps/0x01/secret", body);
        let sent = request.headers_signed_by(&signer).unwrap();
        let pairs = sent.pairs();
        let received = RequestHeaders::parse(lookup(&pairs)).unwrap();
        assert_eq!(received, sent);
        let rebuilt = received.request("PUT", "/apps/0x01/secret", body);
        assert_eq!(rebuilt, request);
        received.check_signature(&rebuilt).unwrap();
        // Another body, or the right body under somebody else's name: refused.
        let other_body = received.request("PUT", "/apps/0x01/secret", b"other");
        assert!(matches!(
            received.check_signature(&other_body),
            Err(Error::WrongRequestSigner { .. })
        ));
        let impostor = RequestHeaders { address: key(5).address(), ..received };
        assert!(matches!(
            impostor.check_signature(&rebuilt),
            Err(Error::WrongRequestSigner { claimed, signer: actual })
                if claimed == key(5).address() && actual == signer.address()
        ));
    }

    #[test]
    fn a_forged_nonce_or_timestamp_is_refused() {
        let signer = key(6);
        let request = SignedRequest::fresh("POST", "/workers/heartbeat", b"{}");
        let sent = request.headers_signed_by(&signer).unwrap();
        let mut nonce = sent.nonce;
        nonce[15] ^= 0xff;
        let forgeries = [
            RequestHeaders { nonce, ..sent.clone() },
            RequestHeaders { timestamp: sent.timestamp - 1, ..sent },
        ];
        for forged in forgeries {
            let rebuilt = forged.request("POST", "/workers/heartbeat", b"{}");
            assert!(
                matches!(forged.check_signature(&rebuilt), Err(Error::WrongRequestSigner { .. })),
                "{forged:?}"
            );
        }
    }

    #[test]
    fn malformed_headers_are_refused_by_name() {
        let request = SignedRequest::fresh("GET", "/tasks/0x01/logs", b"");
        let pairs = request.headers_signed_by(&key(7)).unwrap().pairs();
        for (name, bad) in [
            (HEADER_ADDRESS, "0x12"),
            (HEADER_TIMESTAMP, "1.5"),
            (HEADER_TIMESTAMP, "-1"),
            (HEADER_NONCE, "0x0102"),
            (HEADER_NONCE, &"zz".repeat(16)),
            (HEADER_SIGNATURE, "signature"),
        ] {
            let mut broken = pairs.clone();
            broken.iter_mut().find(|(n, _)| *n == name).unwrap().1 = bad.to_owned();
            let error = RequestHeaders::parse(lookup(&broken)).unwrap_err();
            assert!(
                matches!(&error, Error::InvalidRequestHeader { header, .. } if *header == name),
                "{name}: {error}"
            );
            let missing: Vec<_> = pairs.iter().filter(|(n, _)| *n != name).cloned().collect();
            let error = RequestHeaders::parse(lookup(&missing)).unwrap_err();
            assert_eq!(error.to_string(), format!("{name}: missing header"));
        }
    }

    #[test]
    fn nonces_are_0x_and_32_hex_digits() {
        let nonce = [0xab; 16];
        let text = format_nonce(&nonce);
        assert_eq!(text, format!("0x{}", "ab".repeat(16)));
        assert_eq!(parse_nonce(&text).unwrap(), nonce);
        assert!(parse_nonce(&format!("0x{}", "ab".repeat(17))).is_err());
        assert_ne!(random_nonce(), random_nonce());
    }
}
