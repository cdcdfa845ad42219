//! Wallets and keystores: round trips, imports, refusals, keystores from other implementations,
//! secrets kept out of `Debug` and errors, passwords read from files and the environment.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use alloy::primitives::{Address, address};
use poco_chain::wallet::{KeystoreDir, Mnemonic, Password, ScryptParams, Wallet, WalletError};

const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";
/// anvil's development accounts #0 and #1.
const KEY_0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ADDRESS_0: Address = address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
const KEY_1: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const ADDRESS_1: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");

/// Cheap scrypt parameters: tests stay fast.
fn light() -> ScryptParams {
    ScryptParams::new(8, 8, 1).unwrap()
}

fn password() -> Password {
    Password::new("a long and secret passphrase")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Writes a keystore of `KEY_0` into a fresh directory; returns the directory and the file.
fn keystore_of_key_0() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key0.json");
    Wallet::from_private_key(KEY_0).unwrap().write_keystore(&path, &password(), &light()).unwrap();
    (dir, path)
}

#[test]
fn created_keystore_unlocks_to_the_same_wallet() {
    let root = tempfile::tempdir().unwrap();
    let keystores = KeystoreDir::with_scrypt(root.path().join("keys"), light());
    let (wallet, path) = keystores.create(&password()).unwrap();

    assert_eq!(path.parent(), Some(keystores.path()));
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("UTC--"), "{name}");
    assert!(name.ends_with(&format!("--{}", alloy::hex::encode(wallet.address()))), "{name}");

    let unlocked = Wallet::unlock(&path, &password()).unwrap();
    assert_eq!(unlocked.address(), wallet.address());
    assert_eq!(unlocked.signer().to_bytes(), wallet.signer().to_bytes());

    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["version"], 3);
    assert_eq!(json["crypto"]["kdf"], "scrypt");
    assert_eq!(json["crypto"]["kdfparams"]["n"], 256);
    assert_eq!(json["address"], alloy::hex::encode(wallet.address()));

    // Two wallets made at random differ.
    let (other, _) = keystores.create(&password()).unwrap();
    assert_ne!(other.address(), wallet.address());
}

#[cfg(unix)]
#[test]
fn keystore_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let keystores = KeystoreDir::with_scrypt(root.path().join("a/b"), light());
    let (_, path) = keystores.create(&password()).unwrap();
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(keystores.path()), 0o700);
}

#[test]
fn an_existing_file_is_never_overwritten() {
    let (_dir, path) = keystore_of_key_0();
    let before = fs::read(&path).unwrap();
    let error = Wallet::random().write_keystore(&path, &password(), &light()).unwrap_err();
    assert!(matches!(&error, WalletError::AlreadyExists { path: p } if *p == path), "{error}");
    assert!(error.to_string().contains(&path.display().to_string()));
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(Wallet::unlock(&path, &password()).unwrap().address(), ADDRESS_0);
}

#[test]
fn private_keys_import_with_or_without_0x() {
    let root = tempfile::tempdir().unwrap();
    let keystores = KeystoreDir::with_scrypt(root.path(), light());
    for key in [KEY_0.to_owned(), format!("0x{KEY_0}"), format!("  0X{}\n", KEY_0.to_uppercase())] {
        assert_eq!(Wallet::from_private_key(&key).unwrap().address(), ADDRESS_0);
    }
    let (wallet, path) = keystores.import_private_key(&format!("0x{KEY_1}"), &password()).unwrap();
    assert_eq!(wallet.address(), ADDRESS_1);
    assert_eq!(Wallet::unlock(&path, &password()).unwrap().address(), ADDRESS_1);
}

#[test]
fn invalid_private_keys_are_refused_without_echoing_them() {
    let zero = "0".repeat(64);
    let order = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
    let not_hex = format!("{}zz", &KEY_0[..62]);
    for key in [&KEY_0[..62], &not_hex, &zero, order, ""] {
        let error = Wallet::from_private_key(key).unwrap_err();
        assert!(matches!(error, WalletError::InvalidPrivateKey { .. }), "{error}");
        let message = error.to_string();
        assert!(message.starts_with("invalid private key: "), "{message}");
        if !key.is_empty() {
            assert!(!message.contains(key), "{message}");
        }
    }
}

#[test]
fn mnemonics_import_at_the_standard_path() {
    let mnemonic = Mnemonic::new(DEV_MNEMONIC);
    assert_eq!(Wallet::from_mnemonic(&mnemonic, 0).unwrap().address(), ADDRESS_0);
    assert_eq!(Wallet::from_mnemonic(&mnemonic, 1).unwrap().address(), ADDRESS_1);

    let root = tempfile::tempdir().unwrap();
    let keystores = KeystoreDir::with_scrypt(root.path(), light());
    let (wallet, path) = keystores.import_mnemonic(&mnemonic, 0, &password()).unwrap();
    assert_eq!(wallet.address(), ADDRESS_0);
    let unlocked = Wallet::unlock(&path, &password()).unwrap();
    assert_eq!(alloy::hex::encode(unlocked.signer().to_bytes()), KEY_0);
}

#[test]
fn invalid_mnemonics_and_indexes_are_refused_without_echoing_them() {
    let typo = "test test test test test test test test test test test junkk";
    let short = "test test test test test test test test test test test";
    let wrong_checksum = "test test test test test test test test test test test test";
    for phrase in [typo, short, wrong_checksum, ""] {
        let error = Wallet::from_mnemonic(&Mnemonic::new(phrase), 0).unwrap_err();
        assert!(matches!(error, WalletError::InvalidMnemonic), "{error}");
        assert!(!error.to_string().contains("junkk"));
        assert!(!error.to_string().contains("test"));
    }
    let error = Wallet::from_mnemonic(&Mnemonic::new(DEV_MNEMONIC), 1 << 31).unwrap_err();
    assert!(matches!(error, WalletError::InvalidDerivationIndex { index: 0x8000_0000 }));
}

#[test]
fn a_wrong_password_is_refused() {
    let (_dir, path) = keystore_of_key_0();
    let wrong = Password::new("not the passphrase");
    let error = Wallet::unlock(&path, &wrong).unwrap_err();
    assert!(error.is_wrong_password(), "{error:?}");
    assert!(matches!(&error, WalletError::WrongPassword { path: p } if *p == path));
    assert_eq!(error.to_string(), format!("wrong password for keystore {}", path.display()));
    assert!(!format!("{error} {error:?}").contains("not the passphrase"));
}

#[test]
fn malformed_and_truncated_keystores_are_refused() {
    let (dir, path) = keystore_of_key_0();
    let json = fs::read_to_string(&path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let edited = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut value = value.clone();
        edit(&mut value);
        value.to_string()
    };
    let cases: Vec<(&str, String)> = vec![
        ("truncated", json[..json.len() / 2].to_owned()),
        ("empty", String::new()),
        ("not-json", "this is not a keystore".to_owned()),
        ("array", "[1, 2, 3]".to_owned()),
        ("no-crypto", edited(&|v| drop(v.as_object_mut().unwrap().remove("crypto")))),
        ("no-mac", edited(&|v| drop(v["crypto"].as_object_mut().unwrap().remove("mac")))),
        ("short-ciphertext", edited(&|v| v["crypto"]["ciphertext"] = "abcd".into())),
        ("bad-hex-iv", edited(&|v| v["crypto"]["cipherparams"]["iv"] = "xyz".into())),
        ("short-iv", edited(&|v| v["crypto"]["cipherparams"]["iv"] = "00ff".into())),
        ("n-not-power-of-2", edited(&|v| v["crypto"]["kdfparams"]["n"] = 1000.into())),
        ("dklen-16", edited(&|v| v["crypto"]["kdfparams"]["dklen"] = 16.into())),
        ("bad-address", edited(&|v| v["address"] = "nope".into())),
    ];
    for (name, contents) in cases {
        let file = dir.path().join(name);
        fs::write(&file, contents).unwrap();
        let error = Wallet::unlock(&file, &password()).unwrap_err();
        assert!(matches!(error, WalletError::Malformed { .. }), "{name}: {error}");
        let message = error.to_string();
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert!(!message.contains("a long and secret passphrase"), "{message}");
    }

    let unsupported = [
        ("version-4", edited(&|v| v["version"] = 4.into())),
        ("argon2", edited(&|v| v["crypto"]["kdf"] = "argon2id".into())),
        ("aes-256-gcm", edited(&|v| v["crypto"]["cipher"] = "aes-256-gcm".into())),
    ];
    for (name, contents) in unsupported {
        let file = dir.path().join(name);
        fs::write(&file, contents).unwrap();
        let error = Wallet::unlock(&file, &password()).unwrap_err();
        let message = error.to_string();
        match name {
            "version-4" => assert!(matches!(error, WalletError::UnsupportedVersion { .. })),
            "argon2" => {
                assert!(matches!(error, WalletError::UnsupportedKdf { .. }));
                assert!(message.contains("argon2id") && message.contains("scrypt"), "{message}");
            }
            _ => assert!(matches!(error, WalletError::UnsupportedCipher { .. })),
        }
        assert!(message.contains(&file.display().to_string()), "{message}");
    }

    let missing = dir.path().join("missing.json");
    let error = Wallet::unlock(&missing, &password()).unwrap_err();
    assert!(matches!(&error, WalletError::NotFound { path } if *path == missing), "{error}");
}

#[test]
fn a_keystore_stating_another_address_is_refused() {
    let (dir, path) = keystore_of_key_0();
    let mut value: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    value["address"] = alloy::hex::encode(ADDRESS_1).into();
    let forged = dir.path().join("forged.json");
    fs::write(&forged, value.to_string()).unwrap();
    let error = Wallet::unlock(&forged, &password()).unwrap_err();
    assert!(
        matches!(error, WalletError::AddressMismatch { stated, actual, .. }
            if stated == ADDRESS_1 && actual == ADDRESS_0),
        "{error}"
    );
}

#[test]
fn keystores_from_other_implementations_unlock() {
    // Foundry's cast: scrypt with n = 8192, no address field. One derivation costs seconds in a
    // debug build, so the wrong password is tried on the cheaper fixtures only.
    let password = Password::from_file(fixture("cast-import.password")).unwrap();
    let wallet = Wallet::unlock(fixture("cast-import.json"), &password).unwrap();
    assert_eq!(wallet.address(), ADDRESS_1);
    assert_eq!(alloy::hex::encode(wallet.signer().to_bytes()), KEY_1);

    // Python's eth-account: scrypt and pbkdf2, with an address field.
    let expected = address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
    let password = Password::from_file(fixture("eth-account.password")).unwrap();
    for name in ["eth-account-scrypt.json", "eth-account-pbkdf2.json"] {
        let wallet = Wallet::unlock(fixture(name), &password).unwrap();
        assert_eq!(wallet.address(), expected, "{name}");
        let wrong = Wallet::unlock(fixture(name), &Password::new("wrong")).unwrap_err();
        assert!(wrong.is_wrong_password(), "{name}: {wrong}");
    }
}

/// Foundry's `cast` (from `npm ci`, as CI installs it) reads the keystores we write.
#[test]
fn cast_reads_our_keystores() {
    let cast = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../node_modules/.bin/cast");
    if !cast.exists() {
        assert!(std::env::var_os("CI").is_none(), "{} is missing: run `npm ci`", cast.display());
        eprintln!("skipped: {} is missing (run `npm ci`)", cast.display());
        return;
    }
    let (dir, _) = keystore_of_key_0();
    let output = Command::new(&cast)
        .args(["wallet", "decrypt-keystore", "key0.json", "--keystore-dir"])
        .arg(dir.path())
        .args(["--unsafe-password", password().expose_secret()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(&format!("0x{KEY_0}")), "{stdout}");
}

#[test]
fn a_directory_lists_its_keystores() {
    let root = tempfile::tempdir().unwrap();
    let keystores = KeystoreDir::with_scrypt(root.path().join("keys"), light());
    assert!(keystores.list().unwrap().is_empty(), "a missing directory has no keystores");

    let (first, first_path) = keystores.import_private_key(KEY_0, &password()).unwrap();
    let (second, second_path) =
        keystores.import_mnemonic(&Mnemonic::new(DEV_MNEMONIC), 1, &password()).unwrap();
    let cast_path = keystores.path().join("from-cast");
    fs::copy(fixture("cast-import.json"), &cast_path).unwrap();
    fs::write(keystores.path().join("notes.txt"), "not a keystore").unwrap();
    fs::write(keystores.path().join("other.json"), "{\"version\": 3}").unwrap();
    fs::create_dir(keystores.path().join("subdir")).unwrap();
    fs::copy(&first_path, keystores.path().join(".hidden")).unwrap();

    let mut entries = keystores.list().unwrap();
    entries.sort_by_key(|entry| entry.address);
    let listed: Vec<_> = entries.iter().map(|e| (e.address, e.path.clone())).collect();
    assert_eq!(
        listed,
        vec![
            (None, cast_path),
            (Some(second.address()), second_path.clone()),
            (Some(first.address()), first_path),
        ]
    );

    assert_eq!(keystores.find(ADDRESS_1).unwrap().path, second_path);
    let error = keystores.find(Address::ZERO).unwrap_err();
    assert!(matches!(error, WalletError::NoKeystoreFor { .. }), "{error}");
    assert!(error.to_string().contains(&keystores.path().display().to_string()));
}

#[test]
fn debug_output_shows_no_secret() {
    let wallet = Wallet::from_private_key(KEY_0).unwrap();
    for shown in [format!("{wallet:?}"), format!("{wallet:#?}")] {
        assert!(shown.contains(&ADDRESS_0.to_string()), "{shown}");
        assert!(!shown.to_lowercase().contains(KEY_0), "{shown}");
    }
    let secret = "a long and secret passphrase";
    let password = Password::new(secret);
    let mnemonic = Mnemonic::new(DEV_MNEMONIC);
    let shown = format!("{password:?} {password:#?} {mnemonic:?} {mnemonic:#?}");
    assert!(!shown.contains(secret) && !shown.contains("junk"), "{shown}");
}

#[test]
fn passwords_are_read_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("lf", "secret\n", "secret"),
        ("crlf", "secret\r\n", "secret"),
        ("bare", "secret", "secret"),
        ("lines", "secret\nsecond line\n", "secret"),
        ("spaces", "  spaced secret \n", "  spaced secret "),
        ("empty", "", ""),
    ];
    for (name, contents, expected) in cases {
        let file = dir.path().join(name);
        fs::write(&file, contents).unwrap();
        let password = Password::from_file(file).unwrap();
        assert_eq!(password.expose_secret(), expected, "{name}");
    }
    let missing = dir.path().join("missing");
    let error = Password::from_file(&missing).unwrap_err();
    assert!(matches!(&error, WalletError::PasswordFile { path, .. } if *path == missing));
    assert!(error.to_string().contains(&missing.display().to_string()));
}

#[test]
fn passwords_are_read_from_the_environment() {
    let name = "POCO_TEST_WALLET_PASSWORD_FROM_ENV";
    let unset = "POCO_TEST_WALLET_PASSWORD_NEVER_SET";
    // SAFETY: only this test touches these variables, and nothing in this test binary reads the
    // environment outside std's own lock (no C code calls getenv).
    unsafe { std::env::set_var(name, "from the environment") };

    let password = Password::from_env(name).unwrap();
    assert_eq!(password.expose_secret(), "from the environment");
    let error = Password::from_env(unset).unwrap_err();
    assert!(matches!(error, WalletError::PasswordEnv { .. }), "{error}");
    assert_eq!(error.to_string(), format!("environment variable {unset} is not set"));
    #[cfg(unix)]
    {
        use std::{ffi::OsStr, os::unix::ffi::OsStrExt};
        let not_utf8 = "POCO_TEST_WALLET_PASSWORD_NOT_UTF8";
        // SAFETY: as above.
        unsafe { std::env::set_var(not_utf8, OsStr::from_bytes(b"\xff")) };
        let error = Password::from_env(not_utf8).unwrap_err();
        assert_eq!(error.to_string(), format!("environment variable {not_utf8} is not UTF-8"));
    }
}

#[test]
fn scrypt_parameters_default_to_the_standard_ones() {
    assert_eq!(ScryptParams::default(), ScryptParams::STANDARD);
    let standard = ScryptParams::STANDARD;
    assert_eq!((standard.n(), standard.r(), standard.p()), (262_144, 8, 1));
    assert_eq!(KeystoreDir::new("keys").scrypt(), ScryptParams::STANDARD);
    assert_eq!(light().log_n(), 8);
    for (log_n, r, p) in [(0, 8, 1), (18, 0, 1), (18, 8, 0), (24, 64, 1), (64, 1, 1)] {
        let error = ScryptParams::new(log_n, r, p).unwrap_err();
        assert!(matches!(error, WalletError::InvalidScryptParams { .. }), "{error}");
    }
}
