//! A directory of keystore files: new wallets saved there under geth's file names, and the
//! keystores it holds listed and looked up by address.

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::SystemTime,
};

use alloy::{hex, primitives::Address};
use tracing::debug;

use super::{Mnemonic, Password, ScryptParams, Wallet, WalletError, calendar, keystore};

/// A keystore file found in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoreEntry {
    /// The address the file states. `None` when it states none, as files written by Foundry's
    /// `cast` do: the address is known once the file is unlocked.
    pub address: Option<Address>,
    /// The file.
    pub path: PathBuf,
}

impl KeystoreEntry {
    /// The keystore file at `path`, read only as far as the address it states: nothing is
    /// decrypted, no password is needed.
    pub fn read(path: impl Into<PathBuf>) -> Result<Self, WalletError> {
        let path = path.into();
        let address = keystore::stated_address(&path)?;
        Ok(Self { address, path })
    }

    /// The file's name: what `--account NAME` calls it.
    pub fn name(&self) -> String {
        self.path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }
}

/// A directory of keystore files, and the scrypt parameters new ones get.
///
/// New files are named as geth names them, `UTC--<creation time>--<address>`; the directory is
/// created (mode 0700) when first written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoreDir {
    dir: PathBuf,
    scrypt: ScryptParams,
}

impl KeystoreDir {
    /// The keystore directory `dir`, encrypting with the standard scrypt parameters.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_scrypt(dir, ScryptParams::default())
    }

    /// The keystore directory `dir`, encrypting with the given scrypt parameters.
    pub fn with_scrypt(dir: impl Into<PathBuf>, scrypt: ScryptParams) -> Self {
        Self { dir: dir.into(), scrypt }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The scrypt parameters new keystores get.
    pub fn scrypt(&self) -> ScryptParams {
        self.scrypt
    }

    /// Creates a new random wallet and its keystore file; returns both.
    pub fn create(&self, password: &Password) -> Result<(Wallet, PathBuf), WalletError> {
        let wallet = Wallet::random();
        let path = self.save(&wallet, password)?;
        Ok((wallet, path))
    }

    /// Imports a private key in hex (with or without `0x`) into a new keystore file.
    pub fn import_private_key(
        &self,
        hex_key: &str,
        password: &Password,
    ) -> Result<(Wallet, PathBuf), WalletError> {
        let wallet = Wallet::from_private_key(hex_key)?;
        let path = self.save(&wallet, password)?;
        Ok((wallet, path))
    }

    /// Imports the account at `m/44'/60'/0'/0/<index>` of a mnemonic into a new keystore file.
    pub fn import_mnemonic(
        &self,
        mnemonic: &Mnemonic,
        index: u32,
        password: &Password,
    ) -> Result<(Wallet, PathBuf), WalletError> {
        let wallet = Wallet::from_mnemonic(mnemonic, index)?;
        let path = self.save(&wallet, password)?;
        Ok((wallet, path))
    }

    /// Encrypts `wallet` into a new keystore file of the directory, named as geth names it;
    /// returns its path.
    pub fn save(&self, wallet: &Wallet, password: &Password) -> Result<PathBuf, WalletError> {
        let created = calendar::utc_timestamp(SystemTime::now());
        self.save_as(
            wallet,
            password,
            &format!("UTC--{created}--{}", hex::encode(wallet.address())),
        )
    }

    /// Encrypts `wallet` into a new keystore file of the directory named `name` (a plain file
    /// name, as `cast wallet import NAME` gives); an existing file is never overwritten.
    pub fn save_as(
        &self,
        wallet: &Wallet,
        password: &Password,
        name: &str,
    ) -> Result<PathBuf, WalletError> {
        check_name(name)?;
        create_private_dir(&self.dir)?;
        let path = self.dir.join(name);
        wallet.write_keystore(&path, password, &self.scrypt)?;
        Ok(path)
    }

    /// The keystore file named `name` in the directory, if there is one.
    pub fn named(&self, name: &str) -> Result<Option<KeystoreEntry>, WalletError> {
        check_name(name)?;
        let path = self.dir.join(name);
        if !path.is_file() {
            return Ok(None);
        }
        KeystoreEntry::read(path).map(Some)
    }

    /// The keystore files of the directory, sorted by file name (oldest first for geth's
    /// names). Other files and subdirectories are skipped; a missing directory has none.
    pub fn list(&self) -> Result<Vec<KeystoreEntry>, WalletError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(WalletError::io(&self.dir, error)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| WalletError::io(&self.dir, error))?;
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if hidden || !entry.file_type().is_ok_and(|kind| kind.is_file()) {
                continue;
            }
            match keystore::stated_address(&path) {
                Ok(address) => found.push(KeystoreEntry { address, path }),
                Err(error) => {
                    debug!(target: "poco::wallet", %error, "skipping a file that is not a keystore")
                }
            }
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(found)
    }

    /// The keystore file that states `address`; the first by name if several do.
    pub fn find(&self, address: Address) -> Result<KeystoreEntry, WalletError> {
        self.list()?
            .into_iter()
            .find(|entry| entry.address == Some(address))
            .ok_or_else(|| WalletError::NoKeystoreFor { address, dir: self.dir.clone() })
    }
}

/// Refuses a keystore name that is not a plain file name: empty, hidden, or naming another
/// directory.
fn check_name(name: &str) -> Result<(), WalletError> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && name.len() <= 255;
    if plain { Ok(()) } else { Err(WalletError::BadName { name: name.to_owned() }) }
}

/// Creates `dir` and its missing parents, the new ones readable by their owner only.
fn create_private_dir(dir: &Path) -> Result<(), WalletError> {
    crate::files::create_private_dirs(dir).map_err(|error| WalletError::io(dir, error))
}
