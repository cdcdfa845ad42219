//! Secrets: keystore passwords and mnemonic phrases, wiped from memory when dropped and never
//! printed. A password can be read from a file or an environment variable, leaving no copy in
//! memory that is freed; asking someone for it is the caller's business.

use std::{
    ffi::OsString,
    fmt,
    fs::File,
    io::{self, Read},
    path::Path,
};

use zeroize::Zeroizing;

use super::WalletError;

/// A keystore password. Wiped from memory when dropped; never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(Zeroizing::new(password.into()))
    }

    /// The password itself. Keep it out of logs and messages.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The first line of the file at `path`, without its line ending; the rest is ignored.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, WalletError> {
        let path = path.as_ref();
        let error = |source| WalletError::PasswordFile { path: path.to_owned(), source };
        let mut bytes = Zeroizing::new(Vec::new());
        File::open(path).and_then(|mut file| file.read_to_end(&mut bytes)).map_err(error)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| error(io::Error::new(io::ErrorKind::InvalidData, "it is not UTF-8")))?;
        Ok(Self::new(text.lines().next().unwrap_or_default()))
    }

    /// The value of the environment variable `name`, whole.
    pub fn from_env(name: &str) -> Result<Self, WalletError> {
        let refused = |reason| WalletError::PasswordEnv { name: name.to_owned(), reason };
        match std::env::var_os(name).map(OsString::into_string) {
            Some(Ok(value)) => Ok(Self::new(value)),
            Some(Err(not_utf8)) => {
                drop(Zeroizing::new(not_utf8.into_encoded_bytes()));
                Err(refused("is not UTF-8"))
            }
            None => Err(refused("is not set")),
        }
    }

    /// Whether the password is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Self::new(password)
    }
}

/// A BIP-39 mnemonic phrase. Wiped from memory when dropped; never printed.
///
/// Its words are checked when a wallet is derived from it, by
/// [`Wallet::from_mnemonic`](super::Wallet::from_mnemonic).
#[derive(Clone)]
pub struct Mnemonic(Zeroizing<String>);

impl Mnemonic {
    /// Wraps a phrase, normalised: words in lower case separated by single spaces.
    pub fn new(phrase: &str) -> Self {
        let mut normalised = Zeroizing::new(String::with_capacity(phrase.len()));
        for word in phrase.split_whitespace() {
            if !normalised.is_empty() {
                normalised.push(' ');
            }
            normalised.extend(word.chars().flat_map(char::to_lowercase));
        }
        Self(normalised)
    }

    /// The phrase itself. Keep it out of logs and messages.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Mnemonic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mnemonic(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use alloy::hex;

    use super::*;
    use crate::wallet::Wallet;

    /// The address of anvil's first development key, derived from the development mnemonic.
    const ADDRESS: &str = "f39fd6e51aad88f6f4ce6ab8827279cfffb92266";

    #[test]
    fn mnemonics_are_normalised_and_redacted() {
        let mnemonic =
            Mnemonic::new("  Test test\ttest test test test test test test test test\nJUNK ");
        assert_eq!(
            mnemonic.expose_secret(),
            "test test test test test test test test test test test junk"
        );
        assert_eq!(format!("{mnemonic:?}"), "Mnemonic(<redacted>)");
        let wallet = Wallet::from_mnemonic(&mnemonic, 0).unwrap();
        assert_eq!(hex::encode(wallet.address()), ADDRESS);
    }
}
