//! Secrets: keystore passwords and mnemonic phrases, wiped from memory when dropped and never
//! printed, and where a password comes from.

use std::{
    ffi::OsString,
    fmt,
    fs::File,
    io::{self, Read},
    path::{Path, PathBuf},
};

use zeroize::Zeroizing;

use super::WalletError;

/// The environment variable the CLI reads a keystore password from, when it is set and no
/// password file is given.
pub const PASSWORD_ENV: &str = "POCO_WALLET_PASSWORD";

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

/// Where a keystore password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// The first line of a file, without its line ending.
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
    /// An interactive prompt on the terminal, without echo.
    Prompt,
}

impl PasswordSource {
    /// Chooses the source the CLI reads: a password file when one is given, else the
    /// environment variable `env` when it is given and set, else an interactive prompt.
    ///
    /// Pass `Some(`[`PASSWORD_ENV`]`)` for the default variable.
    pub fn choose(file: Option<PathBuf>, env: Option<&str>) -> Self {
        if let Some(file) = file {
            return Self::File(file);
        }
        match env {
            Some(name) if std::env::var_os(name).is_some() => Self::Env(name.to_owned()),
            _ => Self::Prompt,
        }
    }

    /// Reads the password to open an existing keystore.
    pub fn read(&self) -> Result<Password, WalletError> {
        self.read_with(false, prompt_terminal)
    }

    /// Reads the password for a new keystore; a prompt asks twice and both must match.
    pub fn read_new(&self) -> Result<Password, WalletError> {
        self.read_with(true, prompt_terminal)
    }

    fn read_with(
        &self,
        confirm: bool,
        mut prompt: impl FnMut(&str) -> io::Result<String>,
    ) -> Result<Password, WalletError> {
        match self {
            Self::File(path) => read_password_file(path),
            Self::Env(name) => match std::env::var_os(name).map(OsString::into_string) {
                Some(Ok(value)) => Ok(Password::new(value)),
                Some(Err(not_utf8)) => {
                    drop(Zeroizing::new(not_utf8.into_encoded_bytes()));
                    Err(WalletError::PasswordEnv { name: name.clone(), reason: "is not UTF-8" })
                }
                None => Err(WalletError::PasswordEnv { name: name.clone(), reason: "is not set" }),
            },
            Self::Prompt => {
                let ask = |prompt: &mut dyn FnMut(&str) -> io::Result<String>, text: &str| {
                    prompt(text).map(Password::new).map_err(|source| WalletError::Prompt { source })
                };
                if !confirm {
                    return ask(&mut prompt, "Keystore password: ");
                }
                let first = ask(&mut prompt, "New keystore password: ")?;
                let second = ask(&mut prompt, "Repeat the password: ")?;
                if first.expose_secret() != second.expose_secret() {
                    return Err(WalletError::PasswordMismatch);
                }
                Ok(first)
            }
        }
    }
}

/// Asks on the terminal, without echo.
fn prompt_terminal(text: &str) -> io::Result<String> {
    rpassword::prompt_password(text)
}

fn read_password_file(path: &Path) -> Result<Password, WalletError> {
    let error = |source| WalletError::PasswordFile { path: path.to_owned(), source };
    let mut bytes = Zeroizing::new(Vec::new());
    File::open(path).and_then(|mut file| file.read_to_end(&mut bytes)).map_err(error)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| error(io::Error::new(io::ErrorKind::InvalidData, "it is not UTF-8")))?;
    Ok(Password::new(text.lines().next().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use alloy::hex;

    use super::*;
    use crate::wallet::Wallet;

    /// The address of anvil's first development key, derived from the development mnemonic.
    const ADDRESS: &str = "f39fd6e51aad88f6f4ce6ab8827279cfffb92266";

    #[test]
    fn a_new_password_is_asked_twice() {
        let answers = |list: &[&str]| {
            let mut list: Vec<String> = list.iter().rev().map(|s| (*s).to_owned()).collect();
            move |_: &str| Ok(list.pop().expect("asked too often"))
        };
        let source = PasswordSource::Prompt;
        let password = source.read_with(true, answers(&["same", "same"])).unwrap();
        assert_eq!(password.expose_secret(), "same");
        let mismatch = source.read_with(true, answers(&["one", "two"])).unwrap_err();
        assert!(matches!(mismatch, WalletError::PasswordMismatch));
        let once = source.read_with(false, answers(&["once"])).unwrap();
        assert_eq!(once.expose_secret(), "once");
        let no_terminal = source
            .read_with(false, |_| Err(io::Error::new(io::ErrorKind::NotFound, "no tty")))
            .unwrap_err();
        assert!(matches!(no_terminal, WalletError::Prompt { .. }));
        assert!(no_terminal.to_string().contains("password file"));
    }

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
