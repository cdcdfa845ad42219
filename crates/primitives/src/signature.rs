//! ECDSA signatures exactly as the contracts accept them.
//!
//! An externally owned account signs a 32-byte hash; the signature is 65 bytes `r ‖ s ‖ v`
//! (`v` = 27 or 28) or 64 bytes in the EIP-2098 compact form `r ‖ vs`. As in
//! `Signatures.recover` (OpenZeppelin `tryRecover`), a signature whose `s` lies in the upper
//! half of the curve order is refused, so each signature has exactly one valid encoding. A
//! contract signer (ERC-1271) cannot be checked here: that needs the chain.
//!
//! Orders are signed over their EIP-712 digest ([`crate::order`]); worker authorizations and
//! enclave results over a personal message ([`personal_message_hash`], see
//! [`crate::authorization`]).

use alloy::{
    primitives::{Address, B256, Bytes, U256, eip191_hash_message},
    signers::SignerSync,
};

use std::sync::LazyLock;

use crate::error::{Error, Result};

/// The largest `s` accepted: half the order of secp256k1, rounded down.
pub const SECP256K1_HALF_ORDER: U256 = U256::from_be_bytes([
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
]);

/// Signs `hash` as it is (no prefix): a 65-byte `r ‖ s ‖ v` signature with `v` = 27 or 28 and
/// a low `s`.
pub fn sign_hash<S: SignerSync + ?Sized>(signer: &S, hash: B256) -> Result<Bytes> {
    let signature = signer.sign_hash_sync(&hash)?;
    // Signers of this stack produce low-s signatures; normalizing keeps any other signer honest.
    let signature = signature.normalized_s();
    Ok(Bytes::copy_from_slice(&signature.as_bytes()))
}

/// The address that signed `hash` with `signature`, or why the contracts would refuse it.
///
/// Accepts 65-byte `r ‖ s ‖ v` (v = 27 or 28) and 64-byte EIP-2098 signatures with a low `s`,
/// exactly like `Signatures.recover`.
pub fn recover_signer(hash: B256, signature: &[u8]) -> Result<Address> {
    let (r, s, y_parity) = match signature.len() {
        65 => {
            let v = signature[64];
            let y_parity = match v {
                27 => false,
                28 => true,
                _ => return Err(Error::SignatureRecoveryId { v }),
            };
            (word(&signature[..32]), word(&signature[32..64]), y_parity)
        }
        64 => {
            let vs = word(&signature[32..]);
            (word(&signature[..32]), vs & (U256::MAX >> 1), vs.bit(255))
        }
        length => return Err(Error::SignatureLength { length }),
    };
    if s > SECP256K1_HALF_ORDER {
        return Err(Error::MalleableSignature);
    }
    recover_address(hash, r, s, y_parity)
}

/// ECDSA public key recovery with libsecp256k1, hashed into an address.
fn recover_address(hash: B256, r: U256, s: U256, y_parity: bool) -> Result<Address> {
    use secp256k1::{
        Message, Secp256k1, VerifyOnly,
        ecdsa::{RecoverableSignature, RecoveryId},
    };
    static CONTEXT: LazyLock<Secp256k1<VerifyOnly>> = LazyLock::new(Secp256k1::verification_only);

    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&r.to_be_bytes::<32>());
    compact[32..].copy_from_slice(&s.to_be_bytes::<32>());
    let id = if y_parity { RecoveryId::One } else { RecoveryId::Zero };
    let signature = RecoverableSignature::from_compact(&compact, id)
        .map_err(|_| Error::UnrecoverableSignature)?;
    let key = CONTEXT
        .recover_ecdsa(Message::from_digest(hash.0), &signature)
        .map_err(|_| Error::UnrecoverableSignature)?;
    let uncompressed = key.serialize_uncompressed();
    Ok(Address::from_raw_public_key(&uncompressed[1..]))
}

/// Whether `signature` is `signer`'s ECDSA signature of `hash` (never true for the zero address).
pub fn is_signed_by(signer: Address, hash: B256, signature: &[u8]) -> bool {
    !signer.is_zero() && recover_signer(hash, signature).is_ok_and(|recovered| recovered == signer)
}

/// `keccak256("\x19Ethereum Signed Message:\n32" ‖ hash)`: what `personal_sign` signs for a
/// 32-byte message (EIP-191).
pub fn personal_message_hash(hash: B256) -> B256 {
    eip191_hash_message(hash)
}

fn word(bytes: &[u8]) -> U256 {
    U256::from_be_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::{
        primitives::{Signature, b256, keccak256},
        signers::local::PrivateKeySigner,
    };

    fn signer() -> PrivateKeySigner {
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318".parse().unwrap()
    }

    const HASH: B256 = b256!("0x1111111111111111111111111111111111111111111111111111111111111111");

    #[test]
    fn sign_then_recover() {
        let signer = signer();
        let signature = sign_hash(&signer, HASH).unwrap();
        assert_eq!(signature.len(), 65);
        assert!(signature[64] == 27 || signature[64] == 28);
        assert_eq!(recover_signer(HASH, &signature).unwrap(), signer.address());
        assert!(is_signed_by(signer.address(), HASH, &signature));
        assert!(!is_signed_by(Address::ZERO, HASH, &signature));
        assert!(!is_signed_by(signer.address(), keccak256(HASH), &signature));
    }

    #[test]
    fn compact_signatures_are_accepted() {
        let signer = signer();
        let signature = Signature::from_raw(&sign_hash(&signer, HASH).unwrap()).unwrap();
        assert_eq!(recover_signer(HASH, &signature.as_erc2098()).unwrap(), signer.address());
    }

    #[test]
    fn high_s_is_refused() {
        let signature = Signature::from_raw(&sign_hash(&signer(), HASH).unwrap()).unwrap();
        let order = SECP256K1_HALF_ORDER * U256::from(2) + U256::from(1);
        let flipped = Signature::new(signature.r(), order - signature.s(), !signature.v());
        assert!(matches!(
            recover_signer(HASH, &flipped.as_bytes()),
            Err(Error::MalleableSignature)
        ));
    }

    #[test]
    fn malformed_signatures_are_refused() {
        let mut signature = sign_hash(&signer(), HASH).unwrap().to_vec();
        assert!(matches!(
            recover_signer(HASH, &signature[..63]),
            Err(Error::SignatureLength { length: 63 })
        ));
        signature[64] -= 27; // v = 0 or 1: refused by ecrecover
        assert!(matches!(recover_signer(HASH, &signature), Err(Error::SignatureRecoveryId { .. })));
        assert!(matches!(
            recover_signer(HASH, &[0; 65][..]),
            Err(Error::SignatureRecoveryId { v: 0 })
        ));
        let mut zero = [0u8; 65];
        zero[64] = 27;
        assert!(matches!(recover_signer(HASH, &zero), Err(Error::UnrecoverableSignature)));
    }

    proptest::proptest! {
        /// libsecp256k1 recovers what the pure-Rust curve (the signer's own) recovers, for
        /// valid signatures and for arbitrary `r` and `s` words alike.
        #[test]
        fn recovery_agrees_with_the_reference_curve(
            key in proptest::array::uniform32(1u8..),
            hash in proptest::array::uniform32(proptest::num::u8::ANY),
            r in proptest::array::uniform32(proptest::num::u8::ANY),
            s in proptest::array::uniform32(proptest::num::u8::ANY),
            y_parity: bool,
        ) {
            let hash = B256::from(hash);
            let signer = PrivateKeySigner::from_bytes(&B256::from(key)).unwrap();
            let signature = sign_hash(&signer, hash).unwrap();
            proptest::prop_assert_eq!(recover_signer(hash, &signature).unwrap(), signer.address());

            let (r, s) = (U256::from_be_bytes(r), U256::from_be_bytes(s) & (U256::MAX >> 2));
            let reference = Signature::new(r, s, y_parity).recover_address_from_prehash(&hash).ok();
            proptest::prop_assert_eq!(recover_address(hash, r, s, y_parity).ok(), reference);
        }
    }

    #[test]
    fn personal_message_hash_is_eip191() {
        let mut prefixed = b"\x19Ethereum Signed Message:\n32".to_vec();
        prefixed.extend_from_slice(HASH.as_slice());
        assert_eq!(personal_message_hash(HASH), keccak256(prefixed));
    }
}
