//! Wallets: private keys kept in encrypted keystore files, and the passwords that open them.
//!
//! Keystores are Web3 Secret Storage v3 JSON files, the format geth, Foundry's `cast`, ethers
//! and the iExec SDK read and write.
//!
//! - [`Wallet`] holds one private key. Make one at random, from a private key in hex, from a
//!   BIP-39 mnemonic, or by unlocking a keystore file with [`Wallet::unlock`];
//!   [`Wallet::write_keystore`] encrypts it into a new file.
//! - [`KeystoreDir`] is a directory of keystores, named as geth names them: create, import and
//!   list wallets there.
//! - [`Password`] and [`Mnemonic`] hold secrets. The caller gives the password, or names the
//!   file or the environment variable to read it from: asking a person for it is not this
//!   module's business.
//!
//! Key material never shows: [`Wallet`]'s `Debug` shows only its address, [`Password`] and
//! [`Mnemonic`] print as redacted and are wiped from memory when dropped, and no error message
//! carries a password, a key or a mnemonic. New keystore files are readable by their owner only
//! (mode 0600) and an existing file is never overwritten.

use std::{fmt, path::Path};

use alloy::{
    hex,
    primitives::Address,
    signers::local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English},
};
use zeroize::Zeroizing;

mod calendar;
mod dir;
mod error;
mod keystore;
mod secret;

pub use dir::{KeystoreDir, KeystoreEntry};
pub use error::WalletError;
pub use keystore::ScryptParams;
pub use secret::{Mnemonic, Password};

/// A private key, and the account it controls.
///
/// `Debug` shows only the address; there is no `Display`. The key is wiped from memory when the
/// wallet is dropped.
#[derive(Clone)]
pub struct Wallet {
    signer: PrivateKeySigner,
}

impl Wallet {
    /// A new wallet with a key from the system's secure random number generator.
    pub fn random() -> Self {
        Self { signer: PrivateKeySigner::random() }
    }

    /// The wallet of a private key in hex: 64 hex digits, with or without `0x`; surrounding
    /// whitespace is ignored.
    pub fn from_private_key(hex_key: &str) -> Result<Self, WalletError> {
        let digits = hex_key.trim();
        let digits =
            digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")).unwrap_or(digits);
        if digits.len() != 64 {
            return Err(WalletError::InvalidPrivateKey {
                reason: "expected 32 bytes written as 64 hex digits, with or without 0x",
            });
        }
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(digits, &mut key[..]).map_err(|_| WalletError::InvalidPrivateKey {
            reason: "it contains characters that are not hex digits",
        })?;
        Self::from_key_bytes(&key).ok_or(WalletError::InvalidPrivateKey {
            reason: "it is not a valid secp256k1 key (zero, or not below the curve order)",
        })
    }

    /// The wallet at `m/44'/60'/0'/0/<index>` of a BIP-39 mnemonic (English words, no
    /// passphrase): the accounts MetaMask, geth, Foundry and anvil derive.
    pub fn from_mnemonic(mnemonic: &Mnemonic, index: u32) -> Result<Self, WalletError> {
        if index >= 1 << 31 {
            return Err(WalletError::InvalidDerivationIndex { index });
        }
        let builder = MnemonicBuilder::<English>::default()
            .phrase(mnemonic.expose_secret())
            .index(index)
            .map_err(|_| WalletError::InvalidDerivationIndex { index })?;
        let signer = builder.build().map_err(|_| WalletError::InvalidMnemonic)?;
        Ok(Self { signer })
    }

    /// The wallet of an existing signer.
    pub fn from_signer(signer: PrivateKeySigner) -> Self {
        Self { signer }
    }

    /// Opens the keystore file at `path` with `password`.
    ///
    /// Reads keystores written by geth, Foundry's `cast`, ethers, the iExec SDK and
    /// [`Wallet::write_keystore`]: scrypt or PBKDF2-HMAC-SHA256, AES-128-CTR, with or without
    /// the `address` field (when present it must match the key).
    pub fn unlock(path: impl AsRef<Path>, password: &Password) -> Result<Self, WalletError> {
        keystore::read(path.as_ref(), password)
    }

    /// Encrypts the key with `password` into a new keystore file at `path`, readable by its
    /// owner only. Refuses to overwrite an existing file.
    pub fn write_keystore(
        &self,
        path: impl AsRef<Path>,
        password: &Password,
        scrypt: &ScryptParams,
    ) -> Result<(), WalletError> {
        keystore::write(path.as_ref(), self, password, scrypt)
    }

    /// The account's address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The signer, to sign transactions and messages.
    pub fn signer(&self) -> &PrivateKeySigner {
        &self.signer
    }

    /// The signer, to hand to a [`ChainClient`](crate::ChainClient).
    pub fn into_signer(self) -> PrivateKeySigner {
        self.signer
    }

    fn from_key_bytes(key: &[u8; 32]) -> Option<Self> {
        PrivateKeySigner::from_slice(key).ok().map(|signer| Self { signer })
    }
}

impl fmt::Debug for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The checksummed form, as users see addresses everywhere else.
        f.debug_struct("Wallet").field("address", &format_args!("{}", self.address())).finish()
    }
}

impl From<Wallet> for PrivateKeySigner {
    fn from(wallet: Wallet) -> Self {
        wallet.signer
    }
}
