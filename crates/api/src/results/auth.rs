//! The three signatures of the result store's API, all ECDSA personal-message signatures
//! (EIP-191 over a 32-byte keccak256 hash, 65 bytes `r ‖ s ‖ v`, low `s`), exactly as
//! [`poco_primitives::signature`] makes and checks them:
//!
//! * the **upload ticket** ([`UploadTicket`]): the deal's scheduler chooses the worker that
//!   uploads a task's result by signing `keccak256("poco-upload" ‖ taskid ‖ worker)` (the
//!   11 ASCII bytes, the 32-byte task id, the 20-byte worker address);
//! * the **request signature** ([`SignedRequest`], the scheme every poco service shares, see
//!   [`poco_primitives::request`]): the worker signs each upload request, `keccak256` of the
//!   UTF-8 text `"poco-request-v1\n{METHOD}\n{PATH}\n{TIMESTAMP}\n{NONCE}\n{BODY_SHA256}"`,
//!   where `METHOD` is upper case (`PUT`), `PATH` the request path as sent (`/results/0x…`, no
//!   query), `TIMESTAMP` unix seconds in decimal, `NONCE` and `BODY_SHA256` `0x`-prefixed
//!   lower-case hex (16 random bytes; the SHA-256 of the body). The worker is named in
//!   [`HEADER_WORKER`] and the body hash in [`HEADER_CONTENT_SHA256`]. The store refuses a
//!   timestamp too far from its clock and a request it already received;
//! * the **download challenge** ([`download_message_hash`]): the beneficiary signs
//!   `keccak256("poco-download" ‖ taskid ‖ nonce)` (13 ASCII bytes, 32, 32) for a nonce the store
//!   issued for that task; a nonce is good for one request and a short time.
//!
//! Publishing an app's code (`PUT /code/{sha256}`) is a request signed with the same scheme by
//! the app's owner, who names the app in [`HEADER_APP`]; its body hash is the path's sha256,
//! which must be the checksum the app is registered with.

use alloy::{
    primitives::{Address, B256, Bytes, keccak256},
    signers::SignerSync,
};
use poco_primitives::{
    request,
    signature::{personal_message_hash, recover_signer, sign_hash},
};

use super::error::{Error, Result};

/// Header: the deal of the uploaded task (`0x` + 64 hex digits).
pub const HEADER_DEAL_ID: &str = "x-poco-deal-id";
/// Header: the task's index in its request order (decimal), so that the task id is
/// `keccak256(dealid ‖ idx)`.
pub const HEADER_TASK_INDEX: &str = "x-poco-task-index";
/// Header: the uploading worker's address; the request signature must recover to it.
pub const HEADER_WORKER: &str = "x-poco-worker";
/// Header: the scheduler's upload ticket (`0x` + 130 hex digits).
pub const HEADER_UPLOAD_TICKET: &str = "x-poco-upload-ticket";
pub use poco_primitives::request::{HEADER_NONCE as HEADER_REQUEST_NONCE, HEADER_TIMESTAMP};
/// Header: the app whose code a publication carries (`0x`-prefixed address).
pub const HEADER_APP: &str = "x-poco-app";
/// Header: the SHA-256 of the body (`0x` + 64 hex digits).
pub const HEADER_CONTENT_SHA256: &str = "x-poco-content-sha256";
/// Header: a signature (the worker's request signature on uploads, the beneficiary's challenge
/// signature on downloads), `0x` + 130 hex digits: the header of every signed poco request.
pub const HEADER_SIGNATURE: &str = request::HEADER_SIGNATURE;
/// Header: the download challenge's nonce (`0x` + 64 hex digits).
pub const HEADER_CHALLENGE_NONCE: &str = "x-poco-challenge-nonce";
/// Response header: the result digest of a stored archive.
pub const HEADER_RESULT_DIGEST: &str = "x-poco-result-digest";
/// Response header: the SHA-256 of a stored archive's bytes.
pub const HEADER_ARCHIVE_SHA256: &str = "x-poco-archive-sha256";
/// Response header: the size of a stored archive, in bytes.
pub const HEADER_ARCHIVE_SIZE: &str = "x-poco-archive-size";
/// Response header: whether the stored result is public (`true` or `false`).
pub const HEADER_RESULT_PUBLIC: &str = "x-poco-result-public";

/// The deal's scheduler's choice of the worker that uploads a task's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UploadTicket {
    /// The task.
    pub task_id: B256,
    /// The worker allowed to upload its result.
    pub worker: Address,
}

impl UploadTicket {
    /// The domain tag of the ticket message.
    pub const TAG: &'static [u8] = b"poco-upload";

    /// `keccak256("poco-upload" ‖ taskid ‖ worker)`.
    pub fn message_hash(&self) -> B256 {
        let mut message = Vec::with_capacity(Self::TAG.len() + 52);
        message.extend_from_slice(Self::TAG);
        message.extend_from_slice(self.task_id.as_slice());
        message.extend_from_slice(self.worker.as_slice());
        keccak256(message)
    }

    /// The hash actually signed: the personal-message hash of [`Self::message_hash`].
    pub fn signing_hash(&self) -> B256 {
        personal_message_hash(self.message_hash())
    }

    /// The scheduler's signature of this ticket (65 bytes).
    pub fn sign<S: SignerSync + ?Sized>(&self, scheduler: &S) -> Result<Bytes> {
        sign_hash(scheduler, self.signing_hash()).map_err(Error::Signing)
    }

    /// Who signed `signature` for this ticket.
    pub fn recover_signer(&self, signature: &[u8]) -> Result<Address> {
        recover(self.signing_hash(), signature, "upload ticket")
    }
}

/// The signed parts of an upload request: the scheme every poco service shares.
pub use poco_primitives::request::SignedRequest;

/// The domain tag of the download challenge message.
pub const DOWNLOAD_TAG: &[u8] = b"poco-download";

/// `keccak256("poco-download" ‖ taskid ‖ nonce)`: what the beneficiary signs to download.
pub fn download_message_hash(task_id: B256, nonce: B256) -> B256 {
    let mut message = Vec::with_capacity(DOWNLOAD_TAG.len() + 64);
    message.extend_from_slice(DOWNLOAD_TAG);
    message.extend_from_slice(task_id.as_slice());
    message.extend_from_slice(nonce.as_slice());
    keccak256(message)
}

/// The beneficiary's signature of a download challenge (65 bytes).
pub fn sign_download<S: SignerSync + ?Sized>(
    beneficiary: &S,
    task_id: B256,
    nonce: B256,
) -> Result<Bytes> {
    sign_hash(beneficiary, personal_message_hash(download_message_hash(task_id, nonce)))
        .map_err(Error::Signing)
}

/// Who signed a download challenge.
pub fn recover_download_signer(task_id: B256, nonce: B256, signature: &[u8]) -> Result<Address> {
    recover(personal_message_hash(download_message_hash(task_id, nonce)), signature, "challenge")
}

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> B256 {
    request::body_sha256(bytes)
}

fn recover(hash: B256, signature: &[u8], what: &'static str) -> Result<Address> {
    recover_signer(hash, signature)
        .map_err(|error| Error::BadSignature { what, reason: error.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;

    fn key(byte: u8) -> PrivateKeySigner {
        PrivateKeySigner::from_bytes(&B256::repeat_byte(byte)).unwrap()
    }

    #[test]
    fn ticket_layout_and_recovery() {
        let ticket =
            UploadTicket { task_id: B256::repeat_byte(0xaa), worker: Address::repeat_byte(0xbb) };
        let mut packed = b"poco-upload".to_vec();
        packed.extend_from_slice(&[0xaa; 32]);
        packed.extend_from_slice(&[0xbb; 20]);
        assert_eq!(ticket.message_hash(), keccak256(&packed));
        let scheduler = key(1);
        let signature = ticket.sign(&scheduler).unwrap();
        assert_eq!(signature.len(), 65);
        assert_eq!(ticket.recover_signer(&signature).unwrap(), scheduler.address());
        // The same signature for another worker recovers to somebody else.
        let other = UploadTicket { worker: Address::repeat_byte(0xcc), ..ticket };
        assert_ne!(other.recover_signer(&signature).unwrap(), scheduler.address());
        // It is an EIP-191 signature, as `personal_sign` / `sign_message` make.
        let via_message = scheduler.sign_message_sync(ticket.message_hash().as_slice()).unwrap();
        assert_eq!(ticket.recover_signer(&via_message.as_bytes()).unwrap(), scheduler.address());
    }

    #[test]
    fn download_message_layout() {
        let (task, nonce) = (B256::repeat_byte(1), B256::repeat_byte(2));
        let mut packed = b"poco-download".to_vec();
        packed.extend_from_slice(&[1; 32]);
        packed.extend_from_slice(&[2; 32]);
        assert_eq!(download_message_hash(task, nonce), keccak256(packed));
        let beneficiary = key(3);
        let signature = sign_download(&beneficiary, task, nonce).unwrap();
        assert_eq!(
            recover_download_signer(task, nonce, &signature).unwrap(),
            beneficiary.address()
        );
        assert_ne!(
            recover_download_signer(task, B256::ZERO, &signature).unwrap(),
            beneficiary.address()
        );
    }
}
