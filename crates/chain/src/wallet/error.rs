//! The errors of wallets, keystores and passwords, worded without any secret.

use std::{
    io,
    path::{Path, PathBuf},
};

use alloy::primitives::Address;

/// What can go wrong with wallets, keystores and passwords.
///
/// No message carries a password, a private key or a mnemonic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// The password does not open the keystore (its MAC does not match).
    #[error("wrong password for keystore {}", path.display())]
    WrongPassword {
        /// The keystore file.
        path: PathBuf,
    },
    /// There is no keystore file at this path.
    #[error("no keystore file at {}: check the path", path.display())]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// No keystore of the directory is for this address.
    #[error(
        "no keystore for {address} in {}: import its key or create a wallet there first",
        dir.display()
    )]
    NoKeystoreFor {
        /// The address looked for.
        address: Address,
        /// The keystore directory.
        dir: PathBuf,
    },
    /// A keystore name that is not a plain file name.
    #[error(
        "{name:?} is not a keystore name: a name is a plain file name (no '/', not starting \
         with '.')"
    )]
    BadName {
        /// The name given.
        name: String,
    },
    /// The file is not a valid v3 keystore.
    #[error(
        "keystore {} is not a valid keystore (Web3 Secret Storage v3 JSON): {reason}",
        path.display()
    )]
    Malformed {
        /// The keystore file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The keystore is not version 3.
    #[error("keystore {} has version {version}, and only version 3 is supported", path.display())]
    UnsupportedVersion {
        /// The keystore file.
        path: PathBuf,
        /// The version it states.
        version: String,
    },
    /// The keystore derives its key with a function this module does not implement.
    #[error(
        "keystore {} uses the key derivation function {kdf:?}, which is not supported: \
         re-encrypt it with scrypt or pbkdf2 (hmac-sha256)",
        path.display()
    )]
    UnsupportedKdf {
        /// The keystore file.
        path: PathBuf,
        /// The key derivation function it names.
        kdf: String,
    },
    /// The keystore uses a cipher this module does not implement.
    #[error(
        "keystore {} uses the cipher {cipher:?}, which is not supported: only aes-128-ctr is",
        path.display()
    )]
    UnsupportedCipher {
        /// The keystore file.
        path: PathBuf,
        /// The cipher it names.
        cipher: String,
    },
    /// The keystore states an address that is not the one of the key it holds.
    #[error(
        "keystore {} states the address {stated} but holds the key of {actual}: \
         the file is corrupt or was tampered with",
        path.display()
    )]
    AddressMismatch {
        /// The keystore file.
        path: PathBuf,
        /// The address written in the file.
        stated: Address,
        /// The address of the decrypted key.
        actual: Address,
    },
    /// A file exists where a new keystore was to be written.
    #[error(
        "{} already exists: keystores are never overwritten; choose another file or move the \
         existing one away first",
        path.display()
    )]
    AlreadyExists {
        /// The path of the existing file.
        path: PathBuf,
    },
    /// The private key given is not a valid secp256k1 key in hex.
    #[error("invalid private key: {reason}")]
    InvalidPrivateKey {
        /// Why it is refused (never the key itself).
        reason: &'static str,
    },
    /// The mnemonic is not a valid BIP-39 English phrase.
    #[error(
        "invalid mnemonic: not a valid BIP-39 English phrase; check the words, their order and \
         their number (12 to 24)"
    )]
    InvalidMnemonic,
    /// The derivation index is out of range.
    #[error("invalid derivation index {index}: it must be below 2^31 (2147483648)")]
    InvalidDerivationIndex {
        /// The index given.
        index: u32,
    },
    /// The scrypt parameters are not usable.
    #[error("invalid scrypt parameters: {reason}")]
    InvalidScryptParams {
        /// What is wrong with them.
        reason: String,
    },
    /// The password file cannot be read.
    #[error("cannot read the password file {}: {source}", path.display())]
    PasswordFile {
        /// The password file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The environment variable meant to hold the password is unset or not UTF-8.
    #[error("environment variable {name} {reason}")]
    PasswordEnv {
        /// The variable's name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(getrandom::Error),
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl WalletError {
    /// Whether the password was wrong, so asking again may succeed.
    pub fn is_wrong_password(&self) -> bool {
        matches!(self, Self::WrongPassword { .. })
    }

    pub(super) fn io(path: &Path, source: io::Error) -> Self {
        Self::Io { path: path.to_owned(), source }
    }

    pub(super) fn malformed(path: &Path, reason: impl Into<String>) -> Self {
        Self::Malformed { path: path.to_owned(), reason: reason.into() }
    }
}
