//! Secrets at rest: every stored secret is sealed with XChaCha20-Poly1305 under the master key,
//! with the row's identity (kind, scope, name) as associated data, so a sealed value cannot be
//! moved to another row. The master key lives in its own file, created with mode 0600 on first
//! start; a key file readable by others is refused.

use std::{fs, io::Write, path::Path};

use zeroize::Zeroizing;

use poco_api::sms::crypto::{AEAD_NONCE_LEN, aead_open, aead_seal, random_bytes};

use crate::error::{Error, Result};

/// Seals and opens stored secrets with the master key.
pub(crate) struct Sealer {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<master key>)")
    }
}

impl Sealer {
    /// Loads the master key from `path`, creating the file with a random key if it is missing.
    pub(crate) fn load_or_create(path: &Path) -> Result<Self> {
        let fail = |reason: String| Error::MasterKey { path: path.to_path_buf(), reason };
        match fs::read_to_string(path) {
            Ok(text) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode =
                        fs::metadata(path).map_err(|e| fail(e.to_string()))?.permissions().mode();
                    if mode & 0o077 != 0 {
                        return Err(fail(format!(
                            "the file is readable by others (mode {:o}): chmod 600 it",
                            mode & 0o777
                        )));
                    }
                }
                let text = Zeroizing::new(text);
                let mut key = Zeroizing::new([0u8; 32]);
                hex::decode_to_slice(text.trim(), key.as_mut_slice())
                    .map_err(|_| fail("not 32 bytes in hexadecimal".into()))?;
                Ok(Self { key })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent() {
                    poco_chain::files::create_private_dirs(parent)
                        .map_err(|e| fail(e.to_string()))?;
                }
                let key = Zeroizing::new(random_bytes::<32>());
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(path).map_err(|e| fail(e.to_string()))?;
                let encoded = Zeroizing::new(hex::encode(key.as_slice()));
                file.write_all(encoded.as_bytes()).map_err(|e| fail(e.to_string()))?;
                file.sync_all().map_err(|e| fail(e.to_string()))?;
                tracing::info!(path = %path.display(), "created a new master key");
                Ok(Self { key })
            }
            Err(error) => Err(fail(error.to_string())),
        }
    }

    /// A sealer with a given key (tests).
    #[cfg(test)]
    pub(crate) fn with_key(key: [u8; 32]) -> Self {
        Self { key: Zeroizing::new(key) }
    }

    /// `hex(nonce ‖ ciphertext ‖ tag)` of `plaintext`, bound to `context`.
    pub(crate) fn seal(&self, context: &str, plaintext: &[u8]) -> Result<String> {
        let nonce: [u8; AEAD_NONCE_LEN] = random_bytes();
        let ciphertext = aead_seal(&self.key, &nonce, context.as_bytes(), plaintext)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(hex::encode(out))
    }

    /// The plaintext of a value sealed by [`Self::seal`] under the same `context`.
    pub(crate) fn open(&self, context: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>> {
        let bytes = hex::decode(sealed).map_err(|_| Error::corrupt(format!("sealed {context}")))?;
        if bytes.len() < AEAD_NONCE_LEN {
            return Err(Error::corrupt(format!("sealed {context}")));
        }
        let (nonce, ciphertext) = bytes.split_at(AEAD_NONCE_LEN);
        aead_open(&self.key, nonce, context.as_bytes(), ciphertext)
            .map_err(|_| Error::corrupt(format!("{context} does not open with this master key")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_context_and_under_their_key() {
        let sealer = Sealer::with_key([7; 32]);
        let sealed = sealer.seal("dataset|0xab|key", b"secret").unwrap();
        assert!(!sealed.contains(&hex::encode(b"secret")));
        assert_eq!(sealer.open("dataset|0xab|key", &sealed).unwrap().as_slice(), b"secret");
        assert!(sealer.open("dataset|0xcd|key", &sealed).is_err(), "moved to another row");
        assert!(Sealer::with_key([8; 32]).open("dataset|0xab|key", &sealed).is_err());
    }

    #[test]
    fn the_master_key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/master.key");
        let first = Sealer::load_or_create(&path).unwrap();
        let sealed = first.seal("x", b"value").unwrap();
        let second = Sealer::load_or_create(&path).unwrap();
        assert_eq!(second.open("x", &sealed).unwrap().as_slice(), b"value");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(Sealer::load_or_create(&path), Err(Error::MasterKey { .. })));
        }
    }
}
