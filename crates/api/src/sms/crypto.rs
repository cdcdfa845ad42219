//! The crypto of the confidential path, shared by the CLI, the worker's enclave and the SMS.
//!
//! * **Datasets** are encrypted by their owner with a random 256-bit key
//!   ([`DatasetKey::generate`], [`encrypt_dataset`]): XChaCha20-Poly1305 with a random 192-bit
//!   nonce, in the file format `"POCO-DS1" ‖ nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes)`.
//!   The dataset is registered on-chain with the sha256 of the **encrypted** file
//!   ([`dataset_checksum`]), which workers check before anything else; the key goes to the SMS
//!   (`PUT /datasets/{address}/key`), which releases it only to an attested enclave.
//! * **Results** are encrypted for the beneficiary with [age](https://age-encryption.org)
//!   X25519 recipients ([`ResultKeyPair::generate`], [`encrypt_result`], [`decrypt_result`]):
//!   the beneficiary keeps the identity (`AGE-SECRET-KEY-1...`) and pushes the recipient
//!   (`age1...`) to the SMS. An encrypted result is one file, [`ENCRYPTED_RESULT_FILE`], holding
//!   the encrypted tar archive of the app's output; its result digest is what the enclave
//!   commits on-chain.
//! * [`Secret`]: a value that is wiped from memory when dropped and never shown by `Debug`.

use std::fmt;

use alloy::primitives::B256;
use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit, Payload},
};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::error::{Error, Result};

/// The magic bytes opening an encrypted dataset.
pub const DATASET_MAGIC: &[u8; 8] = b"POCO-DS1";
/// The name of the one file of an encrypted result: the age-encrypted tar of the output.
pub const ENCRYPTED_RESULT_FILE: &str = "result.tar.age";
/// The request parameter that asks for the result to be encrypted for the beneficiary.
pub const RESULT_ENCRYPTION_PARAM: &str = "iexec_result_encryption";

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes
}

/// A secret value: wiped from memory when dropped, shown as `<redacted>` by `Debug`, and
/// serialized as a plain string (only ever inside an encrypted envelope or a signed push).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value. Keep it out of logs and errors.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// A dataset's 256-bit encryption key. Wiped when dropped; `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatasetKey(Zeroizing<[u8; 32]>);

impl DatasetKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self(Zeroizing::new(random_bytes()))
    }

    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The key from its hexadecimal form (64 digits, `0x` optional).
    pub fn from_hex(text: &str) -> Result<Self> {
        let text = text.trim();
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(digits, bytes.as_mut_slice())
            .map_err(|_| Error::Crypto("a dataset key is 32 bytes in hexadecimal".into()))?;
        Ok(Self(bytes))
    }

    /// The hexadecimal form (64 digits, no prefix): what is pushed to the SMS.
    pub fn to_hex(&self) -> Secret {
        Secret(hex::encode(self.0.as_slice()))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DatasetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatasetKey(<redacted>)")
    }
}

/// Encrypts a dataset with `key`: `"POCO-DS1" ‖ nonce ‖ ciphertext ‖ tag`, the magic
/// authenticated as associated data.
pub fn encrypt_dataset(plaintext: &[u8], key: &DatasetKey) -> Result<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = random_bytes();
    let ciphertext = aead_seal(key.as_bytes(), &nonce, DATASET_MAGIC, plaintext)?;
    let mut out = Vec::with_capacity(DATASET_MAGIC.len() + NONCE_LEN + ciphertext.len());
    out.extend_from_slice(DATASET_MAGIC);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Decrypts a dataset encrypted by [`encrypt_dataset`]. The plaintext is wiped when dropped.
pub fn decrypt_dataset(encrypted: &[u8], key: &DatasetKey) -> Result<Zeroizing<Vec<u8>>> {
    let header = DATASET_MAGIC.len() + NONCE_LEN;
    if encrypted.len() < header + TAG_LEN || &encrypted[..DATASET_MAGIC.len()] != DATASET_MAGIC {
        return Err(Error::Crypto("not a poco encrypted dataset (POCO-DS1)".into()));
    }
    let nonce = &encrypted[DATASET_MAGIC.len()..header];
    aead_open(key.as_bytes(), nonce, DATASET_MAGIC, &encrypted[header..])
        .map_err(|_| Error::Crypto("the dataset does not decrypt with this key".into()))
}

/// The checksum to register a dataset with: the sha256 of its **encrypted** file.
pub fn dataset_checksum(encrypted: &[u8]) -> B256 {
    B256::from(<[u8; 32]>::from(Sha256::digest(encrypted)))
}

/// A beneficiary's result key pair (age X25519).
pub struct ResultKeyPair {
    identity: age::x25519::Identity,
}

impl ResultKeyPair {
    /// A new random key pair.
    pub fn generate() -> Self {
        Self { identity: age::x25519::Identity::generate() }
    }

    /// The key pair of an identity (`AGE-SECRET-KEY-1...`).
    pub fn from_identity(identity: &str) -> Result<Self> {
        let identity = identity.trim().parse().map_err(|_| {
            Error::Crypto("not an age X25519 identity (AGE-SECRET-KEY-1...)".into())
        })?;
        Ok(Self { identity })
    }

    /// The secret identity, to keep in a file only the beneficiary reads.
    pub fn identity(&self) -> Secret {
        use age::secrecy::ExposeSecret;
        Secret(self.identity.to_string().expose_secret().to_owned())
    }

    /// The public recipient (`age1...`), to push to the SMS.
    pub fn recipient(&self) -> String {
        self.identity.to_public().to_string()
    }
}

impl fmt::Debug for ResultKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResultKeyPair").field("recipient", &self.recipient()).finish()
    }
}

/// Checks that `recipient` is an age X25519 recipient (`age1...`).
pub fn parse_recipient(recipient: &str) -> Result<age::x25519::Recipient> {
    recipient
        .trim()
        .parse()
        .map_err(|_| Error::Crypto("not an age X25519 recipient (age1...)".into()))
}

/// Encrypts `plaintext` for `recipient` (`age1...`), in the age binary format.
pub fn encrypt_result(plaintext: &[u8], recipient: &str) -> Result<Vec<u8>> {
    let recipient = parse_recipient(recipient)?;
    age::encrypt(&recipient, plaintext).map_err(|e| Error::Crypto(format!("age: {e}")))
}

/// Decrypts an age file with the beneficiary's identity (`AGE-SECRET-KEY-1...`).
pub fn decrypt_result(ciphertext: &[u8], identity: &str) -> Result<Zeroizing<Vec<u8>>> {
    let pair = ResultKeyPair::from_identity(identity)?;
    age::decrypt(&pair.identity, ciphertext)
        .map(Zeroizing::new)
        .map_err(|_| Error::Crypto("the result does not decrypt with this identity".into()))
}

/// Encrypts `plaintext` to an enclave session key (an age recipient): how the SMS hands a
/// session its secrets.
pub fn seal_to_recipient(plaintext: &[u8], recipient: &age::x25519::Recipient) -> Result<Vec<u8>> {
    age::encrypt(recipient, plaintext).map_err(|e| Error::Crypto(format!("age: {e}")))
}

/// XChaCha20-Poly1305 encryption of `plaintext` under `key` and `nonce`, authenticating `aad`:
/// ciphertext then 16-byte tag.
pub fn aead_seal(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    XChaCha20Poly1305::new(key.into())
        .encrypt(&XNonce::from(*nonce), Payload { msg: plaintext, aad })
        .map_err(|_| Error::Crypto("encryption failed".into()))
}

/// The plaintext of [`aead_seal`]'s output, if `key`, `nonce` and `aad` authenticate it.
pub fn aead_open(
    key: &[u8; 32],
    nonce: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let nonce: [u8; NONCE_LEN] =
        nonce.try_into().map_err(|_| Error::Crypto("bad nonce length".into()))?;
    XChaCha20Poly1305::new(key.into())
        .decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad })
        .map(Zeroizing::new)
        .map_err(|_| Error::Crypto("authentication failed".into()))
}

/// The length of an [`aead_seal`] nonce, in bytes.
pub const AEAD_NONCE_LEN: usize = NONCE_LEN;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasets_round_trip_and_refuse_other_keys_and_tampering() {
        let key = DatasetKey::generate();
        let plaintext = b"name,age\nalice,31\nbob,47\n";
        let encrypted = encrypt_dataset(plaintext, &key).unwrap();
        assert!(encrypted.starts_with(DATASET_MAGIC));
        assert!(!encrypted.windows(5).any(|w| w == b"alice"));
        assert_eq!(decrypt_dataset(&encrypted, &key).unwrap().as_slice(), plaintext);
        assert_ne!(encrypt_dataset(plaintext, &key).unwrap(), encrypted, "fresh nonce each time");
        assert!(decrypt_dataset(&encrypted, &DatasetKey::generate()).is_err());
        let mut tampered = encrypted.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(decrypt_dataset(&tampered, &key).is_err());
        assert!(decrypt_dataset(b"POCO-DS1short", &key).is_err());
        assert_eq!(
            dataset_checksum(&encrypted),
            B256::from(<[u8; 32]>::from(Sha256::digest(&encrypted)))
        );
        let again = DatasetKey::from_hex(key.to_hex().expose()).unwrap();
        assert_eq!(again, key);
        assert!(DatasetKey::from_hex("0x1234").is_err());
        assert_eq!(format!("{key:?}"), "DatasetKey(<redacted>)");
    }

    #[test]
    fn results_decrypt_only_with_the_beneficiary_identity() {
        let beneficiary = ResultKeyPair::generate();
        let other = ResultKeyPair::generate();
        assert!(beneficiary.recipient().starts_with("age1"));
        assert!(beneficiary.identity().expose().starts_with("AGE-SECRET-KEY-1"));
        let encrypted = encrypt_result(b"the answer is 42", &beneficiary.recipient()).unwrap();
        let plain = decrypt_result(&encrypted, beneficiary.identity().expose()).unwrap();
        assert_eq!(plain.as_slice(), b"the answer is 42");
        assert!(decrypt_result(&encrypted, other.identity().expose()).is_err());
        assert!(encrypt_result(b"x", "not a recipient").is_err());
        let shown = format!("{beneficiary:?}");
        assert!(!shown.contains("AGE-SECRET-KEY"), "{shown}");
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(secret.expose(), "hunter2");
    }
}
