//! The keystore file: Web3 Secret Storage v3 JSON and its crypto.
//!
//! A key is encrypted with AES-128-CTR under the first half of a key derived from the password
//! by scrypt (or, when reading, PBKDF2-HMAC-SHA256), and authenticated with keccak-256 over the
//! second half and the ciphertext. Reading is lenient on what does not matter (field case, `0x`
//! prefixes, a missing address) and strict on what does; the cost parameters of a file are
//! bounded, so that a hostile file cannot exhaust memory or time.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    path::Path,
};

use aes::Aes128;
use alloy::{
    hex,
    primitives::{Address, keccak256},
};
use ctr::cipher::{KeyIvInit, StreamCipher};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Password, Wallet, WalletError};

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

/// Opens the keystore file at `path` with `password`.
pub(super) fn read(path: &Path, password: &Password) -> Result<Wallet, WalletError> {
    let json = read_keystore_file(path)?;
    decrypt(path, &json, password)
}

/// The address the keystore file at `path` states, if any, without decrypting it.
pub(super) fn stated_address(path: &Path) -> Result<Option<Address>, WalletError> {
    let json = read_keystore_file(path)?;
    Ok(parse(path, &json)?.address)
}

/// Encrypts the key of `wallet` with `password` into a new file at `path`, readable by its owner
/// only; an existing file is never overwritten.
pub(super) fn write(
    path: &Path,
    wallet: &Wallet,
    password: &Password,
    scrypt: &ScryptParams,
) -> Result<(), WalletError> {
    let mut salt = [0u8; 32];
    let mut iv = [0u8; 16];
    let mut id = [0u8; 16];
    for buffer in [&mut salt[..], &mut iv[..], &mut id[..]] {
        getrandom::fill(buffer).map_err(WalletError::Random)?;
    }
    let json = encrypt(wallet, password, scrypt, &salt, &iv, &id);
    write_new_file(path, json.as_bytes())
}

/// The keystore JSON of the key of `wallet` with the given salt, IV and id bytes (random in use;
/// fixed only for test vectors).
fn encrypt(
    wallet: &Wallet,
    password: &Password,
    scrypt: &ScryptParams,
    salt: &[u8],
    iv: &[u8; 16],
    id: &[u8; 16],
) -> String {
    let derived = scrypt_key(password, salt, scrypt);
    let mut ciphertext = Zeroizing::new(wallet.signer.to_bytes().0);
    aes_ctr(&derived, iv).apply_keystream(&mut ciphertext[..]);
    let mac = mac(&derived, &ciphertext[..]);
    let file = KeystoreOut {
        address: hex::encode(wallet.address()),
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
        let json = encrypt(
            &wallet,
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
    fn makes_version_4_uuids() {
        let id = uuid_v4(&[0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_v4(&[0; 16]), "00000000-0000-4000-8000-000000000000");
    }
}
