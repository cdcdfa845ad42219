//! Wallets: private keys kept in encrypted keystore files, and the passwords that open them.
//!
//! Keystores are Web3 Secret Storage v3 JSON files, the format geth, Foundry's `cast`, ethers
//! and the iExec SDK read and write: the key is encrypted with AES-128-CTR under a key derived
//! from the password by scrypt (or, when reading, PBKDF2-HMAC-SHA256), and authenticated with a
//! keccak-256 MAC.
//!
//! - [`Wallet`] holds one private key. Make one at random, from a private key in hex, from a
//!   BIP-39 mnemonic, or by unlocking a keystore file with [`Wallet::unlock`];
//!   [`Wallet::write_keystore`] encrypts it into a new file.
//! - [`KeystoreDir`] is a directory of keystores, named as geth names them: create, import and
//!   list wallets there.
//! - [`Password`] and [`Mnemonic`] hold secrets; [`PasswordSource`] reads a password from a
//!   file, an environment variable or an interactive prompt.
//!
//! Key material never shows: [`Wallet`]'s `Debug` shows only its address, [`Password`] and
//! [`Mnemonic`] print as redacted and are wiped from memory when dropped, and no error message
//! carries a password, a key or a mnemonic. New keystore files are readable by their owner only
//! (mode 0600) and an existing file is never overwritten.

use std::{
    ffi::OsString,
    fmt,
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use aes::Aes128;
use alloy::{
    hex,
    primitives::{Address, keccak256},
    signers::local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English},
};
use ctr::cipher::{KeyIvInit, StreamCipher};
use serde::{Deserialize, Serialize};
use tracing::debug;
use zeroize::Zeroizing;

/// The environment variable the CLI reads a keystore password from, when it is set and no
/// password file is given.
pub const PASSWORD_ENV: &str = "POCO_WALLET_PASSWORD";

/// The largest keystore file read; real ones are under 1 KiB.
const MAX_KEYSTORE_BYTES: u64 = 64 * 1024;

/// The most memory a keystore's scrypt parameters may ask for (128 · r · n bytes): 1 GiB, four
/// times geth's standard.
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;

/// The most PBKDF2 iterations a keystore may ask for (geth writes 262,144).
const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;

/// The length of the derived key: 16 bytes of AES key, then 16 bytes of MAC key.
const DERIVED_KEY_LEN: usize = 32;

/// AES-128 in counter mode with a 128-bit big-endian counter, as Web3 Secret Storage specifies.
type Aes128Ctr = ctr::Ctr128BE<Aes128>;

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
    #[error(
        "environment variable {name} {reason}: set it to the password, or give a password file"
    )]
    PasswordEnv {
        /// The variable's name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The password could not be read from the terminal.
    #[error(
        "cannot prompt for the password ({source}): give a password file or an environment \
         variable instead"
    )]
    Prompt {
        /// The underlying error.
        source: io::Error,
    },
    /// The password and its confirmation differ.
    #[error("the two passwords typed differ: try again")]
    PasswordMismatch,
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

    fn io(path: &Path, source: io::Error) -> Self {
        Self::Io { path: path.to_owned(), source }
    }

    fn malformed(path: &Path, reason: impl Into<String>) -> Self {
        Self::Malformed { path: path.to_owned(), reason: reason.into() }
    }
}

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

    fn as_bytes(&self) -> &[u8] {
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
/// Its words are checked when a wallet is derived from it, by [`Wallet::from_mnemonic`].
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

/// The cost parameters of scrypt when encrypting a keystore: n = 2^`log_n`, r, p.
///
/// The memory scrypt needs is 128 · r · n bytes and its time grows with n · r · p.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScryptParams {
    log_n: u8,
    r: u32,
    p: u32,
}

impl ScryptParams {
    /// geth's standard parameters (n = 2^18, r = 8, p = 1: 256 MiB, about a second in an
    /// optimised build): the default.
    pub const STANDARD: Self = Self { log_n: 18, r: 8, p: 1 };

    /// geth's light parameters (n = 2^12, r = 8, p = 6: 4 MiB), for machines short of memory.
    pub const LIGHT: Self = Self { log_n: 12, r: 8, p: 6 };

    /// Custom parameters. Weak ones (as tests use) make a keystore easy to brute-force.
    pub fn new(log_n: u8, r: u32, p: u32) -> Result<Self, WalletError> {
        let invalid = |reason: String| WalletError::InvalidScryptParams { reason };
        if log_n == 0 || log_n >= 64 {
            return Err(invalid(format!("log2(n) must be between 1 and 63, not {log_n}")));
        }
        if r == 0 || p == 0 {
            return Err(invalid("r and p must be at least 1".to_owned()));
        }
        let memory = (128 * u128::from(r)) << log_n;
        if memory > u128::from(MAX_SCRYPT_MEMORY) {
            return Err(invalid(format!(
                "n = 2^{log_n} and r = {r} need {} MiB, more than the {} MiB allowed",
                memory >> 20,
                MAX_SCRYPT_MEMORY >> 20
            )));
        }
        if 128 * u128::from(r) * u128::from(p) > u128::from(MAX_SCRYPT_MEMORY) {
            return Err(invalid(format!("r = {r} and p = {p} are too large together")));
        }
        Ok(Self { log_n, r, p })
    }

    /// log2 of n, the CPU and memory cost.
    pub fn log_n(&self) -> u8 {
        self.log_n
    }

    /// n, the CPU and memory cost.
    pub fn n(&self) -> u64 {
        1 << self.log_n
    }

    /// r, the block size.
    pub fn r(&self) -> u32 {
        self.r
    }

    /// p, the parallelism.
    pub fn p(&self) -> u32 {
        self.p
    }
}

impl Default for ScryptParams {
    fn default() -> Self {
        Self::STANDARD
    }
}

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
        let path = path.as_ref();
        let json = read_keystore_file(path)?;
        decrypt(path, &json, password)
    }

    /// Encrypts the key with `password` into a new keystore file at `path`, readable by its
    /// owner only. Refuses to overwrite an existing file.
    pub fn write_keystore(
        &self,
        path: impl AsRef<Path>,
        password: &Password,
        scrypt: &ScryptParams,
    ) -> Result<(), WalletError> {
        let path = path.as_ref();
        let json = self.keystore_json(password, scrypt)?;
        write_new_file(path, json.as_bytes())
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

    fn keystore_json(
        &self,
        password: &Password,
        scrypt: &ScryptParams,
    ) -> Result<String, WalletError> {
        let mut salt = [0u8; 32];
        let mut iv = [0u8; 16];
        let mut id = [0u8; 16];
        for buffer in [&mut salt[..], &mut iv[..], &mut id[..]] {
            getrandom::fill(buffer).map_err(WalletError::Random)?;
        }
        Ok(self.keystore_json_with(password, scrypt, &salt, &iv, &id))
    }

    /// The keystore JSON of this key with the given salt, IV and id bytes (random in use; fixed
    /// only for test vectors).
    fn keystore_json_with(
        &self,
        password: &Password,
        scrypt: &ScryptParams,
        salt: &[u8],
        iv: &[u8; 16],
        id: &[u8; 16],
    ) -> String {
        let derived = scrypt_key(password, salt, scrypt);
        let mut ciphertext = Zeroizing::new(self.signer.to_bytes().0);
        aes_ctr(&derived, iv).apply_keystream(&mut ciphertext[..]);
        let mac = mac(&derived, &ciphertext[..]);
        let file = KeystoreOut {
            address: hex::encode(self.address()),
            crypto: CryptoOut {
                cipher: "aes-128-ctr",
                cipherparams: CipherParams { iv: hex::encode(iv) },
                ciphertext: hex::encode(&ciphertext[..]),
                kdf: "scrypt",
                kdfparams: ScryptOut {
                    dklen: DERIVED_KEY_LEN,
                    n: scrypt.n(),
                    r: scrypt.r,
                    p: scrypt.p,
                    salt: hex::encode(salt),
                },
                mac: hex::encode(mac),
            },
            id: uuid_v4(id),
            version: 3,
        };
        serde_json::to_string(&file).expect("a keystore serialises to JSON")
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

/// A keystore file found in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoreEntry {
    /// The address the file states. `None` when it states none, as files written by Foundry's
    /// `cast` do: the address is known once the file is unlocked.
    pub address: Option<Address>,
    /// The file.
    pub path: PathBuf,
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

    /// Encrypts `wallet` into a new keystore file of the directory; returns its path.
    pub fn save(&self, wallet: &Wallet, password: &Password) -> Result<PathBuf, WalletError> {
        create_private_dir(&self.dir)?;
        let name =
            format!("UTC--{}--{}", utc_timestamp(SystemTime::now()), hex::encode(wallet.address()));
        let path = self.dir.join(name);
        wallet.write_keystore(&path, password, &self.scrypt)?;
        Ok(path)
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
            match read_keystore_file(&path).and_then(|json| parse(&path, &json)) {
                Ok(keystore) => found.push(KeystoreEntry { address: keystore.address, path }),
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

// ---------------------------------------------------------------------------------------------
// The v3 format.

/// A keystore as written.
#[derive(Serialize)]
struct KeystoreOut {
    address: String,
    crypto: CryptoOut,
    id: String,
    version: u8,
}

#[derive(Serialize)]
struct CryptoOut {
    cipher: &'static str,
    cipherparams: CipherParams,
    ciphertext: String,
    kdf: &'static str,
    kdfparams: ScryptOut,
    mac: String,
}

#[derive(Serialize)]
struct ScryptOut {
    dklen: usize,
    n: u64,
    r: u32,
    p: u32,
    salt: String,
}

/// A keystore as read: lenient on what does not matter, strict on what does.
#[derive(Deserialize)]
struct KeystoreIn {
    #[serde(default)]
    address: Option<String>,
    #[serde(alias = "Crypto")]
    crypto: CryptoIn,
    version: serde_json::Value,
}

#[derive(Deserialize)]
struct CryptoIn {
    cipher: String,
    cipherparams: CipherParams,
    ciphertext: String,
    kdf: String,
    kdfparams: serde_json::Value,
    mac: String,
}

#[derive(Serialize, Deserialize)]
struct CipherParams {
    iv: String,
}

#[derive(Deserialize)]
struct ScryptIn {
    dklen: usize,
    n: u64,
    r: u32,
    p: u32,
    salt: String,
}

#[derive(Deserialize)]
struct Pbkdf2In {
    dklen: usize,
    c: u32,
    prf: String,
    salt: String,
}

/// How a keystore derives its key from the password.
enum Kdf {
    Scrypt(ScryptParams),
    Pbkdf2 { rounds: u32 },
}

/// A parsed keystore, checked and ready to decrypt.
struct Parsed {
    address: Option<Address>,
    kdf: Kdf,
    salt: Vec<u8>,
    iv: [u8; 16],
    ciphertext: [u8; 32],
    mac: [u8; 32],
}

fn read_keystore_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, WalletError> {
    let file = File::open(path).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => WalletError::NotFound { path: path.to_owned() },
        _ => WalletError::io(path, error),
    })?;
    let mut json = Zeroizing::new(Vec::new());
    file.take(MAX_KEYSTORE_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(|error| WalletError::io(path, error))?;
    if json.len() as u64 > MAX_KEYSTORE_BYTES {
        return Err(WalletError::malformed(path, "the file is far too large for a keystore"));
    }
    Ok(json)
}

fn parse(path: &Path, json: &[u8]) -> Result<Parsed, WalletError> {
    let file: KeystoreIn = serde_json::from_slice(json)
        .map_err(|error| WalletError::malformed(path, describe_json_error(&error)))?;
    let version = match &file.version {
        serde_json::Value::Number(number) => number.as_u64(),
        serde_json::Value::String(text) => text.parse().ok(),
        _ => None,
    };
    if version != Some(3) {
        return Err(WalletError::UnsupportedVersion {
            path: path.to_owned(),
            version: file.version.to_string(),
        });
    }
    let crypto = file.crypto;
    if !crypto.cipher.eq_ignore_ascii_case("aes-128-ctr") {
        return Err(WalletError::UnsupportedCipher {
            path: path.to_owned(),
            cipher: crypto.cipher,
        });
    }
    let field = |name: &str| {
        let name = name.to_owned();
        move |reason: String| WalletError::malformed(path, format!("{name}: {reason}"))
    };
    let params = |error: serde_json::Error| field("kdfparams")(describe_json_error(&error));
    let (kdf, dklen, salt) = match crypto.kdf.to_ascii_lowercase().as_str() {
        "scrypt" => {
            let scrypt: ScryptIn = serde_json::from_value(crypto.kdfparams).map_err(params)?;
            if !scrypt.n.is_power_of_two() || scrypt.n < 2 {
                return Err(field("kdfparams")(format!(
                    "scrypt's n must be a power of 2 above 1, not {}",
                    scrypt.n
                )));
            }
            let log_n = scrypt.n.trailing_zeros() as u8;
            let checked = ScryptParams::new(log_n, scrypt.r, scrypt.p)
                .map_err(|error| field("kdfparams")(error.to_string()))?;
            (Kdf::Scrypt(checked), scrypt.dklen, scrypt.salt)
        }
        "pbkdf2" => {
            let pbkdf2: Pbkdf2In = serde_json::from_value(crypto.kdfparams).map_err(params)?;
            if pbkdf2.prf != "hmac-sha256" {
                return Err(WalletError::UnsupportedKdf {
                    path: path.to_owned(),
                    kdf: format!("pbkdf2 with {}", pbkdf2.prf),
                });
            }
            if pbkdf2.c == 0 || pbkdf2.c > MAX_PBKDF2_ROUNDS {
                return Err(field("kdfparams")(format!(
                    "pbkdf2's c must be between 1 and {MAX_PBKDF2_ROUNDS}, not {}",
                    pbkdf2.c
                )));
            }
            (Kdf::Pbkdf2 { rounds: pbkdf2.c }, pbkdf2.dklen, pbkdf2.salt)
        }
        _ => return Err(WalletError::UnsupportedKdf { path: path.to_owned(), kdf: crypto.kdf }),
    };
    if dklen != DERIVED_KEY_LEN {
        return Err(field("kdfparams")(format!("dklen must be {DERIVED_KEY_LEN}, not {dklen}")));
    }
    let bytes = |name: &str, text: &str| {
        hex::decode(text).map_err(|error| field(name)(format!("not hex ({error})")))
    };
    let fixed = |name: &str, text: &str| -> Result<[u8; 32], WalletError> {
        let decoded = bytes(name, text)?;
        decoded
            .try_into()
            .map_err(|v: Vec<u8>| field(name)(format!("{} bytes instead of 32", v.len())))
    };
    let iv = bytes("cipherparams.iv", &crypto.cipherparams.iv)?;
    let iv: [u8; 16] = iv.try_into().map_err(|v: Vec<u8>| {
        field("cipherparams.iv")(format!("{} bytes instead of 16", v.len()))
    })?;
    let address = match file.address.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<Address>()
                .map_err(|_| field("address")("not a 20-byte hex address".to_owned()))?,
        ),
    };
    Ok(Parsed {
        address,
        kdf,
        salt: bytes("kdfparams.salt", &salt)?,
        iv,
        ciphertext: fixed("ciphertext", &crypto.ciphertext)?,
        mac: fixed("mac", &crypto.mac)?,
    })
}

/// What is wrong with a file's JSON, without quoting its strings: a misplaced private key must
/// not end up in an error message.
fn describe_json_error(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = if error.line() == 0 {
        String::new()
    } else {
        format!(" at line {} column {}", error.line(), error.column())
    };
    match error.classify() {
        Category::Eof => format!("the JSON ends early{at}: is the file truncated?"),
        Category::Syntax => format!("invalid JSON{at}"),
        Category::Io => format!("unreadable JSON{at}"),
        Category::Data => {
            // serde quotes offending strings as `string "..."`: keep the words, drop the quotes.
            let message = error.to_string();
            let mut redacted = String::with_capacity(message.len());
            let mut parts = message.split('"');
            redacted.push_str(parts.next().unwrap_or_default());
            while let (Some(_quoted), rest) = (parts.next(), parts.next()) {
                redacted.push_str("\"<redacted>\"");
                redacted.push_str(rest.unwrap_or_default());
            }
            redacted
        }
    }
}

fn decrypt(path: &Path, json: &[u8], password: &Password) -> Result<Wallet, WalletError> {
    let keystore = parse(path, json)?;
    let derived = match keystore.kdf {
        Kdf::Scrypt(params) => scrypt_key(password, &keystore.salt, &params),
        Kdf::Pbkdf2 { rounds } => {
            let mut derived = Zeroizing::new([0u8; DERIVED_KEY_LEN]);
            pbkdf2::pbkdf2_hmac::<pbkdf2::sha2::Sha256>(
                password.as_bytes(),
                &keystore.salt,
                rounds,
                &mut derived[..],
            );
            derived
        }
    };
    let expected = mac(&derived, &keystore.ciphertext);
    // Not secret, but compared in constant time all the same.
    let differ = expected.iter().zip(&keystore.mac).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if differ != 0 {
        return Err(WalletError::WrongPassword { path: path.to_owned() });
    }
    let mut key = Zeroizing::new(keystore.ciphertext);
    aes_ctr(&derived, &keystore.iv).apply_keystream(&mut key[..]);
    let wallet = Wallet::from_key_bytes(&key).ok_or_else(|| {
        WalletError::malformed(path, "the decrypted key is not a valid secp256k1 private key")
    })?;
    match keystore.address {
        Some(stated) if stated != wallet.address() => Err(WalletError::AddressMismatch {
            path: path.to_owned(),
            stated,
            actual: wallet.address(),
        }),
        _ => Ok(wallet),
    }
}

fn scrypt_key(
    password: &Password,
    salt: &[u8],
    params: &ScryptParams,
) -> Zeroizing<[u8; DERIVED_KEY_LEN]> {
    let params = scrypt::Params::new(params.log_n, params.r, params.p)
        .expect("ScryptParams are checked when made");
    let mut derived = Zeroizing::new([0u8; DERIVED_KEY_LEN]);
    scrypt::scrypt(password.as_bytes(), salt, &params, &mut derived[..])
        .expect("32 bytes is a valid scrypt output length");
    derived
}

/// The cipher keyed with the first half of the derived key.
fn aes_ctr(derived: &[u8; DERIVED_KEY_LEN], iv: &[u8; 16]) -> Aes128Ctr {
    Aes128Ctr::new_from_slices(&derived[..16], iv).expect("a 16-byte key and a 16-byte IV")
}

/// keccak256(derived[16..32] ‖ ciphertext).
fn mac(derived: &[u8; DERIVED_KEY_LEN], ciphertext: &[u8]) -> [u8; 32] {
    let mut input = Zeroizing::new(Vec::with_capacity(16 + ciphertext.len()));
    input.extend_from_slice(&derived[16..]);
    input.extend_from_slice(ciphertext);
    keccak256(&input[..]).0
}

/// A version-4 (random) UUID from 16 random bytes.
fn uuid_v4(bytes: &[u8; 16]) -> String {
    let mut b = *bytes;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The time as geth writes it in keystore names: `2024-05-08T07-50-55.123456789Z`.
fn utc_timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}-{:02}-{:02}.{:09}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_nanos()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so that leap days end each 4-, 100- and 400-year cycle.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Creates `dir` and its missing parents, the new ones readable by their owner only.
fn create_private_dir(dir: &Path) -> Result<(), WalletError> {
    crate::files::create_private_dirs(dir).map_err(|error| WalletError::io(dir, error))
}

/// Writes a new file with mode 0600; refuses to replace an existing one.
fn write_new_file(path: &Path, contents: &[u8]) -> Result<(), WalletError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|error| match error.kind() {
        io::ErrorKind::AlreadyExists => WalletError::AlreadyExists { path: path.to_owned() },
        _ => WalletError::io(path, error),
    })?;
    if let Err(error) = file.write_all(contents).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(WalletError::io(path, error));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// anvil's first development key and its address.
    const KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    const ADDRESS: &str = "f39fd6e51aad88f6f4ce6ab8827279cfffb92266";

    /// The expected outputs below were computed with other implementations (Python's hashlib
    /// scrypt and PBKDF2, pycryptodome's AES-CTR and keccak) for this key, password, salt and IV.
    const PASSWORD: &str = "poco test vector";
    const SALT: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const IV: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
    const SCRYPT_CIPHERTEXT: &str =
        "555939ae9886415ea31918ddee1e13d5ae6870c3c14bf826077791e501a8b256";
    const SCRYPT_MAC: &str = "ef2cefdb2d34d828bb5dead885fffc3e926e34e2cc16d3b5eed7d475918d1a39";
    const PBKDF2_CIPHERTEXT: &str =
        "5361d0fc249bdde5c5fe4a4f638b3cbe6eb97bfdc0dd9c9d06298f9cd69b46db";
    const PBKDF2_MAC: &str = "6e918ab727f39af0ec790523cebcff450367bec3db3ccfd47720b6eff60c1498";

    fn vector_path() -> &'static Path {
        Path::new("vector.json")
    }

    #[test]
    fn encrypts_the_known_vector() {
        let wallet = Wallet::from_private_key(KEY).unwrap();
        let salt = hex::decode(SALT).unwrap();
        let iv: [u8; 16] = hex::decode(IV).unwrap().try_into().unwrap();
        let json = wallet.keystore_json_with(
            &Password::new(PASSWORD),
            &ScryptParams::new(10, 8, 1).unwrap(),
            &salt,
            &iv,
            &[0x11; 16],
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["address"], ADDRESS);
        assert_eq!(value["version"], 3);
        assert_eq!(value["id"], "11111111-1111-4111-9111-111111111111");
        let crypto = &value["crypto"];
        assert_eq!(crypto["cipher"], "aes-128-ctr");
        assert_eq!(crypto["cipherparams"]["iv"], IV);
        assert_eq!(crypto["ciphertext"], SCRYPT_CIPHERTEXT);
        assert_eq!(crypto["kdf"], "scrypt");
        assert_eq!(
            crypto["kdfparams"],
            serde_json::json!({"dklen": 32, "n": 1024, "r": 8, "p": 1, "salt": SALT})
        );
        assert_eq!(crypto["mac"], SCRYPT_MAC);
        assert!(!json.contains(KEY));
    }

    #[test]
    fn decrypts_the_known_vectors() {
        let scrypt = serde_json::json!({
            "crypto": {
                "cipher": "aes-128-ctr",
                "cipherparams": {"iv": IV},
                "ciphertext": SCRYPT_CIPHERTEXT,
                "kdf": "scrypt",
                "kdfparams": {"dklen": 32, "n": 1024, "r": 8, "p": 1, "salt": SALT},
                "mac": SCRYPT_MAC,
            },
            "id": "7e59dc02-8d42-409d-b29a-a8a0f862cc81",
            "version": 3,
        });
        // Capitalised "Crypto", 0x prefixes and an address, as some older tools write them.
        let pbkdf2 = serde_json::json!({
            "address": format!("0x{ADDRESS}"),
            "Crypto": {
                "cipher": "aes-128-ctr",
                "cipherparams": {"iv": format!("0x{IV}")},
                "ciphertext": PBKDF2_CIPHERTEXT,
                "kdf": "pbkdf2",
                "kdfparams": {"c": 1000, "dklen": 32, "prf": "hmac-sha256", "salt": SALT},
                "mac": PBKDF2_MAC,
            },
            "version": 3,
        });
        for vector in [scrypt, pbkdf2] {
            let json = serde_json::to_vec(&vector).unwrap();
            let wallet = decrypt(vector_path(), &json, &Password::new(PASSWORD)).unwrap();
            assert_eq!(hex::encode(wallet.address()), ADDRESS);
            assert_eq!(hex::encode(wallet.signer().to_bytes()), KEY);
            let wrong = decrypt(vector_path(), &json, &Password::new("poco test vectors"));
            assert!(wrong.unwrap_err().is_wrong_password());
        }
    }

    #[test]
    fn refuses_unsupported_or_dangerous_parameters() {
        let with = |kdf: &str, kdfparams: serde_json::Value, cipher: &str| {
            let json = serde_json::json!({
                "crypto": {
                    "cipher": cipher,
                    "cipherparams": {"iv": IV},
                    "ciphertext": SCRYPT_CIPHERTEXT,
                    "kdf": kdf,
                    "kdfparams": kdfparams,
                    "mac": SCRYPT_MAC,
                },
                "version": 3,
            });
            decrypt(vector_path(), &serde_json::to_vec(&json).unwrap(), &Password::new(PASSWORD))
                .unwrap_err()
        };
        let scrypt =
            |n: u64, r: u32| serde_json::json!({"dklen": 32, "n": n, "r": r, "p": 1, "salt": SALT});
        assert!(matches!(
            with("argon2", serde_json::json!({}), "aes-128-ctr"),
            WalletError::UnsupportedKdf { kdf, .. } if kdf == "argon2"
        ));
        assert!(matches!(
            with("scrypt", scrypt(1024, 8), "aes-256-gcm"),
            WalletError::UnsupportedCipher { .. }
        ));
        // 2^30 · 8 · 128 bytes would be 1 TiB.
        assert!(matches!(
            with("scrypt", scrypt(1 << 30, 8), "aes-128-ctr"),
            WalletError::Malformed { .. }
        ));
        assert!(matches!(
            with("scrypt", scrypt(1000, 8), "aes-128-ctr"),
            WalletError::Malformed { .. }
        ));
        assert!(matches!(
            with("scrypt", scrypt(1024, u32::MAX), "aes-128-ctr"),
            WalletError::Malformed { .. }
        ));
        let sha512 =
            serde_json::json!({"c": 1000, "dklen": 32, "prf": "hmac-sha512", "salt": SALT});
        assert!(matches!(
            with("pbkdf2", sha512, "aes-128-ctr"),
            WalletError::UnsupportedKdf { .. }
        ));
    }

    #[test]
    fn json_errors_quote_no_value() {
        let secret = format!("0x{KEY}");
        let json = format!("{{\"version\": 3, \"crypto\": \"{secret}\"}}");
        let error = parse(vector_path(), json.as_bytes()).err().unwrap();
        let message = error.to_string();
        assert!(matches!(error, WalletError::Malformed { .. }), "{message}");
        assert!(!message.contains(KEY), "{message}");
        assert!(message.contains("invalid type: string \"<redacted>\""), "{message}");
        let truncated = parse(vector_path(), b"{\"version\": 3, \"cry").err().unwrap();
        assert!(truncated.to_string().contains("truncated"), "{truncated}");
    }

    #[test]
    fn formats_geth_timestamps() {
        let at = |secs: u64, nanos: u32| {
            utc_timestamp(UNIX_EPOCH + std::time::Duration::new(secs, nanos))
        };
        assert_eq!(at(0, 0), "1970-01-01T00-00-00.000000000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00-00-00.000000005Z");
        assert_eq!(at(1_778_226_655, 527_285_345), "2026-05-08T07-50-55.527285345Z");
        assert_eq!(at(4_107_542_399, 0), "2100-02-28T23-59-59.000000000Z");
    }

    #[test]
    fn makes_version_4_uuids() {
        let id = uuid_v4(&[0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_v4(&[0; 16]), "00000000-0000-4000-8000-000000000000");
    }

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
