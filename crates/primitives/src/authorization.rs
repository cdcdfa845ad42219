//! Worker authorizations and enclave signatures: the two personal-message signatures a
//! contribution carries.
//!
//! * **Authorization** ([`WorkerpoolAuthorization`]): the scheduler lets `worker` contribute to
//!   task `taskid` by signing, as an Ethereum personal message (EIP-191,
//!   `"\x19Ethereum Signed Message:\n32"`), the hash
//!   `keccak256(worker ‖ taskid ‖ enclaveChallenge)` (addresses as 20 bytes). The challenge is
//!   the zero address for work outside a TEE. `contribute` and `contributeAndFinalize` accept
//!   the deal's scheduler's ECDSA signature, or its ERC-1271 approval when the scheduler is a
//!   contract (which needs the chain).
//! * **Enclave signature** ([`sign_enclave_message`]): in a TEE deal the enclave, holding the
//!   task's challenge key, personal-signs `keccak256(resultHash ‖ resultSeal)`. Only an ECDSA
//!   signature by the challenge address is accepted.

use alloy::{
    primitives::{Address, B256, Bytes, keccak256},
    signers::SignerSync,
};

use crate::{
    error::Result,
    result::ResultCommitment,
    signature::{self, personal_message_hash},
};

/// The scheduler's permission for one worker to contribute to one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WorkerpoolAuthorization {
    /// The worker allowed to contribute (the sender of the contribution).
    pub worker: Address,
    /// The task.
    pub task_id: B256,
    /// The enclave's challenge address for TEE work; zero otherwise.
    pub enclave_challenge: Address,
}

impl WorkerpoolAuthorization {
    /// `keccak256(worker ‖ taskid ‖ enclaveChallenge)`: the message the scheduler signs.
    pub fn message_hash(&self) -> B256 {
        let mut message = [0u8; 72];
        message[..20].copy_from_slice(self.worker.as_slice());
        message[20..52].copy_from_slice(self.task_id.as_slice());
        message[52..].copy_from_slice(self.enclave_challenge.as_slice());
        keccak256(message)
    }

    /// The hash actually signed: the personal-message hash of [`Self::message_hash`].
    pub fn signing_hash(&self) -> B256 {
        personal_message_hash(self.message_hash())
    }

    /// The scheduler's signature of this authorization (65 bytes).
    pub fn sign<S: SignerSync + ?Sized>(&self, scheduler: &S) -> Result<Bytes> {
        signature::sign_hash(scheduler, self.signing_hash())
    }

    /// Who signed `signature` for this authorization, or why it is refused.
    pub fn recover_signer(&self, signature: &[u8]) -> Result<Address> {
        signature::recover_signer(self.signing_hash(), signature)
    }

    /// Whether `signature` is `scheduler`'s ECDSA signature of this authorization.
    pub fn is_signed_by(&self, scheduler: Address, signature: &[u8]) -> bool {
        signature::is_signed_by(scheduler, self.signing_hash(), signature)
    }
}

/// `keccak256(resultHash ‖ resultSeal)`: the message the enclave signs for a commitment.
pub fn enclave_message_hash(commitment: &ResultCommitment) -> B256 {
    let mut message = [0u8; 64];
    message[..32].copy_from_slice(commitment.result_hash.as_slice());
    message[32..].copy_from_slice(commitment.result_seal.as_slice());
    keccak256(message)
}

/// The enclave's signature of `commitment` with the task's challenge key (65 bytes): a personal
/// message signature of [`enclave_message_hash`].
pub fn sign_enclave_message<S: SignerSync + ?Sized>(
    enclave: &S,
    commitment: &ResultCommitment,
) -> Result<Bytes> {
    signature::sign_hash(enclave, personal_message_hash(enclave_message_hash(commitment)))
}

/// Whether `signature` is the ECDSA signature of `commitment` by `enclave_challenge`, as
/// `contribute` requires when a challenge is given.
pub fn is_enclave_signature(
    enclave_challenge: Address,
    commitment: &ResultCommitment,
    signature: &[u8],
) -> bool {
    let hash = personal_message_hash(enclave_message_hash(commitment));
    signature::is_signed_by(enclave_challenge, hash, signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;

    fn key(byte: u8) -> PrivateKeySigner {
        PrivateKeySigner::from_bytes(&B256::repeat_byte(byte)).unwrap()
    }

    #[test]
    fn authorization_message_is_packed() {
        let authorization = WorkerpoolAuthorization {
            worker: Address::repeat_byte(0xaa),
            task_id: B256::repeat_byte(0xbb),
            enclave_challenge: Address::repeat_byte(0xcc),
        };
        let mut packed = vec![0xaa; 20];
        packed.extend_from_slice(&[0xbb; 32]);
        packed.extend_from_slice(&[0xcc; 20]);
        assert_eq!(authorization.message_hash(), keccak256(&packed));
        let mut prefixed = b"\x19Ethereum Signed Message:\n32".to_vec();
        prefixed.extend_from_slice(keccak256(&packed).as_slice());
        assert_eq!(authorization.signing_hash(), keccak256(prefixed));
    }

    #[test]
    fn authorization_sign_and_verify() {
        let scheduler = key(3);
        let authorization = WorkerpoolAuthorization {
            worker: key(5).address(),
            task_id: B256::repeat_byte(1),
            enclave_challenge: Address::ZERO,
        };
        let signature = authorization.sign(&scheduler).unwrap();
        assert_eq!(authorization.recover_signer(&signature).unwrap(), scheduler.address());
        assert!(authorization.is_signed_by(scheduler.address(), &signature));
        // The signature is bound to the worker, the task and the challenge.
        let other_worker = WorkerpoolAuthorization { worker: key(6).address(), ..authorization };
        assert!(!other_worker.is_signed_by(scheduler.address(), &signature));
        let other_task = WorkerpoolAuthorization { task_id: B256::ZERO, ..authorization };
        assert!(!other_task.is_signed_by(scheduler.address(), &signature));
        let in_enclave =
            WorkerpoolAuthorization { enclave_challenge: key(7).address(), ..authorization };
        assert!(!in_enclave.is_signed_by(scheduler.address(), &signature));
        // A raw signature of the unprefixed hash is not a personal-message signature.
        let raw = signature::sign_hash(&scheduler, authorization.message_hash()).unwrap();
        assert!(!authorization.is_signed_by(scheduler.address(), &raw));
    }

    #[test]
    fn enclave_sign_and_verify() {
        let enclave = key(7);
        let commitment =
            ResultCommitment::new(key(5).address(), B256::repeat_byte(1), B256::repeat_byte(2));
        let mut packed = commitment.result_hash.to_vec();
        packed.extend_from_slice(commitment.result_seal.as_slice());
        assert_eq!(enclave_message_hash(&commitment), keccak256(packed));
        let signature = sign_enclave_message(&enclave, &commitment).unwrap();
        assert!(is_enclave_signature(enclave.address(), &commitment, &signature));
        assert!(!is_enclave_signature(key(8).address(), &commitment, &signature));
        let other =
            ResultCommitment::new(key(6).address(), B256::repeat_byte(1), B256::repeat_byte(2));
        assert!(!is_enclave_signature(enclave.address(), &other, &signature));
    }
}
