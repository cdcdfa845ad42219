//! The confidential path from the user's side: encrypting a dataset and keeping its key, the
//! beneficiary's result key, and the secrets pushed to the secret management service (SMS),
//! which releases them only to attested enclaves running TEE tasks.
//!
//! Local keys live under the poco home, in `keys/` (mode 0700), each file mode 0600 and never
//! printed:
//! * `keys/datasets/<checksum>.key`: a dataset key in hexadecimal, named after the checksum of
//!   the encrypted file it opens, which is also the checksum the dataset is registered with;
//! * `keys/result.key`: the beneficiary's age X25519 identity, in the format `age-keygen`
//!   writes, so `age -d -i keys/result.key` opens a result too.
//!
//! [`SecretsClient`] pushes and checks what the SMS holds: dataset keys (by the dataset's
//! owner), requester secrets (by the requester), app developer secrets (by the app's owner)
//! and result keys (by the beneficiary). Every push is signed by the wallet; the SMS checks the
//! signer against the chain, and keeps secrets write-once.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use alloy::{
    primitives::{Address, B256},
    signers::local::PrivateKeySigner,
};
use poco_api::sms::{DatasetKey, ResultKeyPair, Secret, SmsClient, SmsStatus};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::{Error, Result, RunSpec};

/// The name of the result key file under the home's `keys/` directory.
const RESULT_KEY_FILE: &str = "result.key";

/// Where the local keys of a poco home are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalKeys {
    dir: PathBuf,
}

impl LocalKeys {
    /// The keys of the poco home `home` (in `<home>/keys`).
    pub fn new(home: &Path) -> Self {
        Self { dir: home.join("keys") }
    }

    /// The directory of the keys.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the key of the dataset whose encrypted file has `checksum` is kept.
    pub fn dataset_key(&self, checksum: B256) -> PathBuf {
        self.dir.join("datasets").join(format!("{checksum}.key"))
    }

    /// Where the beneficiary's result key (age identity) is kept.
    pub fn result_key(&self) -> PathBuf {
        self.dir.join(RESULT_KEY_FILE)
    }
}

/// Writes `bytes` to a new file only its owner can read (0600), creating its directories
/// (0700). Refuses to replace an existing file unless `replace`.
fn write_private(path: &Path, bytes: &[u8], replace: bool) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| Error::io(parent, e))?;
    }
    if replace {
        match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(path, e)),
            _ => {}
        }
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| Error::io(path, e))
}

/// Reads a key file; a missing file is [`Error::MissingKey`] with `hint`.
fn read_key_file(path: &Path, what: &'static str, hint: &str) -> Result<Secret> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Secret::new(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::MissingKey { what, path: path.to_path_buf(), hint: hint.to_owned() })
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

// ------------------------------------------------------------------------ datasets

/// A dataset encrypted by [`encrypt_dataset_file`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptedDataset {
    /// The encrypted file: what workers fetch (publish it where they can).
    pub file: PathBuf,
    /// The sha256 of the encrypted file: the checksum to register the dataset with.
    pub checksum: B256,
    /// The encrypted file's size in bytes.
    pub size: u64,
    /// Where its key is kept (mode 0600).
    pub key_file: PathBuf,
}

/// Encrypts the file `input` into `output` with a fresh random key, and keeps the key in
/// `keys` (named after the checksum of the encrypted file). The plaintext is never written
/// anywhere; the key is returned for callers that show it on request.
pub fn encrypt_dataset_file(
    input: &Path,
    output: &Path,
    keys: &LocalKeys,
) -> Result<(EncryptedDataset, DatasetKey)> {
    let plaintext = fs::read(input).map_err(|e| Error::io(input, e))?;
    if let (Ok(from), Ok(to)) = (fs::canonicalize(input), fs::canonicalize(output))
        && from == to
    {
        return Err(Error::Config(format!(
            "{} would overwrite the plaintext: write the encrypted file elsewhere",
            output.display()
        )));
    }
    let key = DatasetKey::generate();
    let encrypted = poco_api::sms::encrypt_dataset(&plaintext, &key)?;
    drop(plaintext);
    let checksum = poco_api::sms::dataset_checksum(&encrypted);
    let key_file = keys.dataset_key(checksum);
    write_private(&key_file, format!("{}\n", key.to_hex().expose()).as_bytes(), false)?;
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    fs::write(output, &encrypted).map_err(|e| Error::io(output, e))?;
    let dataset = EncryptedDataset {
        file: output.to_path_buf(),
        checksum,
        size: encrypted.len() as u64,
        key_file,
    };
    Ok((dataset, key))
}

/// Reads a dataset key file (64 hexadecimal digits). `hint` says how to get one when the file
/// does not exist.
pub fn read_dataset_key(path: &Path, hint: &str) -> Result<DatasetKey> {
    let text = read_key_file(path, "dataset key", hint)?;
    DatasetKey::from_hex(text.expose()).map_err(|_| Error::BadKeyFile {
        path: path.to_path_buf(),
        reason: "not a dataset key (64 hexadecimal digits)".into(),
    })
}

// ------------------------------------------------------------------------ result keys

/// Creates a new result key pair and writes its identity to `path` (mode 0600) in the format
/// of `age-keygen`. Refuses to replace an existing key unless `replace`: results encrypted for
/// it could not be opened any more.
pub fn generate_result_key(path: &Path, replace: bool) -> Result<ResultKeyPair> {
    if !replace && path.exists() {
        return Err(Error::Config(format!(
            "a result key already exists at {}: results encrypted for it need it to be opened; \
             pass --force to replace it (keep a copy first)",
            path.display()
        )));
    }
    let pair = ResultKeyPair::generate();
    let text = Secret::new(format!(
        "# poco result key: decrypts the results encrypted for this beneficiary\n\
         # public key: {}\n{}\n",
        pair.recipient(),
        pair.identity().expose()
    ));
    write_private(path, text.expose().as_bytes(), replace)?;
    Ok(pair)
}

/// Reads a result key file (an age X25519 identity, `AGE-SECRET-KEY-1...`, comment lines
/// allowed). `hint` says how to get one when the file does not exist.
pub fn read_result_key(path: &Path, hint: &str) -> Result<ResultKeyPair> {
    let text = read_key_file(path, "result key", hint)?;
    let bad = || Error::BadKeyFile {
        path: path.to_path_buf(),
        reason: "not an age X25519 identity (AGE-SECRET-KEY-1...)".into(),
    };
    let line = text
        .expose()
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("AGE-SECRET-KEY-1"))
        .ok_or_else(bad)?;
    ResultKeyPair::from_identity(line).map_err(|_| bad())
}

/// The content of the file `name` in a tar archive, if it holds one.
fn archive_entry(archive: &[u8], name: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        let path = entry.path().ok()?.to_string_lossy().into_owned();
        if path.trim_start_matches("./") == name {
            let mut content = Vec::new();
            entry.read_to_end(&mut content).ok()?;
            return Some(content);
        }
    }
    None
}

/// Opens the result archive of `task`, which holds only [`poco_api::sms::ENCRYPTED_RESULT_FILE`],
/// with the identity in `key_file`: returns the tar archive of the app's output, wiped from
/// memory when dropped.
pub(crate) fn open_result(
    task: B256,
    archive: &[u8],
    key_file: &Path,
) -> Result<Zeroizing<Vec<u8>>> {
    let encrypted =
        archive_entry(archive, poco_api::sms::ENCRYPTED_RESULT_FILE).ok_or_else(|| {
            Error::ResultKey { task, reason: "its archive holds no encrypted result".into() }
        })?;
    let key = match read_result_key(key_file, "") {
        Ok(key) => key,
        Err(Error::MissingKey { path, .. }) => {
            return Err(Error::ResultKey {
                task,
                reason: format!(
                    "there is no result key at {}: pass the key that opens it with --key-file, \
                     or keep it encrypted with --no-decrypt",
                    path.display()
                ),
            });
        }
        Err(other) => return Err(other),
    };
    poco_api::sms::decrypt_result(&encrypted, key.identity().expose()).map_err(|_| {
        Error::ResultKey {
            task,
            reason: format!(
                "the result key at {} does not open it: it was encrypted for another key (the one \
             its beneficiary had pushed to the SMS when the task ran)",
                key_file.display()
            ),
        }
    })
}

// ------------------------------------------------------------------------ the SMS

/// A client of the SMS acting for a wallet: pushes and checks dataset keys, requester
/// secrets, app developer secrets and result keys. Values are never returned, printed or
/// logged; a check only says whether a value is set.
#[derive(Debug)]
pub struct SecretsClient {
    sms: SmsClient,
    wallet: Option<PrivateKeySigner>,
}

/// A write-once refusal, with what to do instead.
fn write_once(error: poco_api::sms::Error, instead: &str) -> Error {
    match Error::from(error) {
        Error::SmsRefused { status, code, message } if code == "already_set" => {
            Error::SmsRefused { status, message: format!("{message} ({instead})"), code }
        }
        other => other,
    }
}

impl SecretsClient {
    /// A client of the SMS at `url`, signing with `wallet` (needed for pushes).
    pub fn new(url: &str, wallet: Option<PrivateKeySigner>) -> Self {
        Self { sms: SmsClient::new(url), wallet }
    }

    /// The SMS's URL.
    pub fn url(&self) -> &str {
        self.sms.url()
    }

    fn wallet(&self) -> Result<&PrivateKeySigner> {
        self.wallet.as_ref().ok_or(Error::NoWallet)
    }

    /// The wallet's address.
    pub fn address(&self) -> Result<Address> {
        Ok(self.wallet()?.address())
    }

    /// What the SMS says about itself (its attestation modes, the simulation warning).
    pub async fn status(&self) -> Result<SmsStatus> {
        Ok(self.sms.status().await?)
    }

    /// Pushes the key of `dataset`; the wallet must own the dataset on-chain. Write-once.
    pub async fn push_dataset_key(&self, dataset: Address, key: &DatasetKey) -> Result<()> {
        self.sms.push_dataset_key(self.wallet()?, dataset, key).await.map_err(|e| {
            write_once(e, "a dataset key is write-once: encrypt the data again and register it as a new dataset")
        })
    }

    /// Whether the key of `dataset` is set.
    pub async fn dataset_key_exists(&self, dataset: Address) -> Result<bool> {
        Ok(self.sms.dataset_key_exists(dataset).await?)
    }

    /// Pushes the wallet's requester secret `name`. Write-once per name.
    pub async fn push_requester_secret(&self, name: &str, value: &Secret) -> Result<()> {
        check_name(name)?;
        self.sms.push_requester_secret(self.wallet()?, name, value.expose()).await.map_err(|e| {
            write_once(e, "secrets are write-once: push the new value under a new name")
        })
    }

    /// Whether `requester` has a secret named `name`.
    pub async fn requester_secret_exists(&self, requester: Address, name: &str) -> Result<bool> {
        check_name(name)?;
        Ok(self.sms.requester_secret_exists(requester, name).await?)
    }

    /// Pushes the developer secret of `app`; the wallet must own the app. Write-once.
    pub async fn push_app_secret(&self, app: Address, value: &Secret) -> Result<()> {
        self.sms.push_app_secret(self.wallet()?, app, value.expose()).await.map_err(|e| {
            write_once(e, "an app developer secret is write-once: register a new app to change it")
        })
    }

    /// Whether the developer secret of `app` is set.
    pub async fn app_secret_exists(&self, app: Address) -> Result<bool> {
        Ok(self.sms.app_secret_exists(app).await?)
    }

    /// Pushes the public half of `key` as the wallet's result key: results of deals asking for
    /// encryption with the wallet as beneficiary are encrypted for it. Replaces a previous one.
    pub async fn push_result_key(&self, key: &ResultKeyPair) -> Result<String> {
        let recipient = key.recipient();
        self.sms.push_result_key(self.wallet()?, &recipient).await?;
        Ok(recipient)
    }

    /// Whether `beneficiary` has a result key.
    pub async fn result_key_exists(&self, beneficiary: Address) -> Result<bool> {
        Ok(self.sms.result_key_exists(beneficiary).await?)
    }

    /// Checks, before anything is paid, that the SMS holds what the TEE run `spec` of
    /// `requester` needs: the dataset's key, each requester secret named, and the
    /// beneficiary's result key when the result is to be encrypted.
    pub async fn check_run(&self, spec: &RunSpec, requester: Address) -> Result<()> {
        spec.check()?;
        if !spec.tag.is_tee() {
            return Ok(());
        }
        if let Some(dataset) = spec.dataset
            && !self.dataset_key_exists(dataset).await?
        {
            return Err(Error::NotSetAtSms {
                what: format!("the key of dataset {dataset}"),
                hint: "its owner pushes it with `poco dataset push-key`".into(),
            });
        }
        for name in spec.secrets.values() {
            if !self.requester_secret_exists(requester, name).await? {
                return Err(Error::NotSetAtSms {
                    what: format!("secret {name:?} of requester {requester}"),
                    hint: format!("push it with `poco secret push {name}`"),
                });
            }
        }
        if spec.encrypt_result {
            let beneficiary = spec.beneficiary.unwrap_or(requester);
            if !self.result_key_exists(beneficiary).await? {
                return Err(Error::NotSetAtSms {
                    what: format!("the result key of beneficiary {beneficiary}"),
                    hint: "the beneficiary creates one with `poco result keygen` and pushes it \
                           with `poco result push-key`"
                        .into(),
                });
            }
        }
        Ok(())
    }
}

/// Checks a requester secret's name as the SMS does: 1 to 64 letters, digits, `.`, `_`, `-`.
pub fn check_name(name: &str) -> Result<()> {
    poco_api::sms::check_secret_name(name).map_err(|e| Error::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_encrypted_dataset_keeps_its_key_private_and_named_by_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let keys = LocalKeys::new(&dir.path().join("home"));
        let input = dir.path().join("plain.csv");
        fs::write(&input, "name,amount\nalice,31\n").unwrap();
        let output = dir.path().join("out/records.enc");
        let (dataset, key) = encrypt_dataset_file(&input, &output, &keys).unwrap();
        let encrypted = fs::read(&output).unwrap();
        assert_eq!(dataset.checksum, poco_api::sms::dataset_checksum(&encrypted));
        assert_eq!(dataset.size, encrypted.len() as u64);
        assert_eq!(dataset.key_file, keys.dataset_key(dataset.checksum));
        assert_eq!(mode(&dataset.key_file), 0o600);
        assert_eq!(mode(keys.dir()), 0o700);
        let read = read_dataset_key(&dataset.key_file, "").unwrap();
        assert_eq!(read, key);
        let plain = poco_api::sms::decrypt_dataset(&encrypted, &read).unwrap();
        assert_eq!(plain.as_slice(), b"name,amount\nalice,31\n");
        assert!(encrypt_dataset_file(&input, &input, &keys).is_err(), "never over the plaintext");
        let missing = read_dataset_key(&dir.path().join("none.key"), "how").unwrap_err();
        assert!(matches!(missing, Error::MissingKey { .. }), "{missing}");
        fs::write(dir.path().join("bad.key"), "zz").unwrap();
        assert!(matches!(
            read_dataset_key(&dir.path().join("bad.key"), ""),
            Err(Error::BadKeyFile { .. })
        ));
    }

    #[test]
    fn result_keys_are_private_kept_and_not_replaced_by_accident() {
        let dir = tempfile::tempdir().unwrap();
        let keys = LocalKeys::new(dir.path());
        let path = keys.result_key();
        let pair = generate_result_key(&path, false).unwrap();
        assert_eq!(mode(&path), 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(&format!("# public key: {}", pair.recipient())), "{text}");
        assert_eq!(read_result_key(&path, "").unwrap().recipient(), pair.recipient());
        let refused = generate_result_key(&path, false).unwrap_err();
        assert!(refused.to_string().contains("--force"), "{refused}");
        let replaced = generate_result_key(&path, true).unwrap();
        assert_ne!(replaced.recipient(), pair.recipient());
        assert_eq!(mode(&path), 0o600);
        fs::write(dir.path().join("other"), "hello\n").unwrap();
        assert!(matches!(
            read_result_key(&dir.path().join("other"), ""),
            Err(Error::BadKeyFile { .. })
        ));
    }
}
