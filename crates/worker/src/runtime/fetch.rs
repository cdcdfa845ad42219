//! Fetching apps, datasets and input files, under the worker's fetch policy.
//!
//! Every URL is opened through [`poco_fetch::Fetcher`], which refuses the worker's own files
//! and its private networks unless the operator widened the policy. A source may also be
//! `sha256:<hex>`, content served from the worker's cache. An app or a dataset is used only
//! if its sha256 is the checksum registered on-chain; verified content is cached by checksum.

use std::path::PathBuf;

use alloy::primitives::B256;
use poco_chain::files;
use poco_fetch::{FetchError, FetchPolicy, Source};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Fetches under the policy, and caches apps and datasets by checksum.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    inner: poco_fetch::Fetcher,
    cache: PathBuf,
}

impl Fetcher {
    pub(crate) fn new(cache: PathBuf, policy: FetchPolicy) -> Self {
        Self { inner: poco_fetch::Fetcher::new(policy), cache }
    }

    /// The content at `url` (an app or a dataset), which must hash to `expected`.
    pub(crate) async fn fetch_checked(
        &self,
        source: Source,
        url: &str,
        expected: B256,
    ) -> Result<Vec<u8>> {
        let cached = self.cache.join(format!("{expected:x}"));
        if let Ok(bytes) = tokio::fs::read(&cached).await
            && B256::from(<[u8; 32]>::from(Sha256::digest(&bytes))) == expected
        {
            return Ok(bytes);
        }
        if let Some(hex) = url.strip_prefix("sha256:") {
            return Err(Error::Fetch(FetchError::Unsupported {
                kind: source,
                url: url.to_owned(),
                reason: format!("content {hex} is not in the worker's cache"),
            }));
        }
        let bytes = self.inner.fetch(source, url).await?;
        let actual = B256::from(<[u8; 32]>::from(Sha256::digest(&bytes)));
        if actual != expected {
            return Err(Error::ChecksumMismatch {
                what: source.name(),
                url: url.to_owned(),
                expected,
                actual,
            });
        }
        files::create_private_dirs(&self.cache).map_err(|e| Error::io(&self.cache, e))?;
        // Several tasks may fetch the same content at once: each writes its own partial file,
        // and the last rename wins with identical bytes.
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let partial = self.cache.join(format!("{expected:x}.{}.{unique}.part", std::process::id()));
        let written = {
            let partial = partial.clone();
            tokio::task::spawn_blocking(move || {
                std::io::Write::write_all(&mut files::create_private(&partial)?, &bytes)
                    .map(|()| bytes)
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
        };
        let bytes = written.map_err(|e| Error::io(&partial, e))?;
        tokio::fs::rename(&partial, &cached).await.map_err(|e| Error::io(&cached, e))?;
        Ok(bytes)
    }

    /// An input file chosen by the requester, unchecked (nothing is registered for it).
    pub(crate) async fn fetch_input(&self, url: &str) -> std::result::Result<Vec<u8>, FetchError> {
        self.inner.fetch(Source::InputFile, url).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn content_with_the_wrong_checksum_is_refused_and_right_content_is_cached() {
        let dir = tempfile::tempdir().unwrap();
        let apps = dir.path().join("apps");
        std::fs::create_dir(&apps).unwrap();
        let file = apps.join("app.wasm");
        std::fs::write(&file, b"module bytes").unwrap();
        let policy = FetchPolicy { provided_dirs: vec![apps.clone()], ..FetchPolicy::default() };
        let fetcher = Fetcher::new(dir.path().join("cache"), policy);
        let url = format!("file://{}", file.display());
        let good = B256::from(<[u8; 32]>::from(Sha256::digest(b"module bytes")));
        let error =
            fetcher.fetch_checked(Source::App, &url, B256::repeat_byte(1)).await.unwrap_err();
        assert!(matches!(error, Error::ChecksumMismatch { .. }), "{error}");
        assert_eq!(fetcher.fetch_checked(Source::App, &url, good).await.unwrap(), b"module bytes");
        std::fs::remove_file(&file).unwrap();
        let cached =
            fetcher.fetch_checked(Source::App, &format!("sha256:{good:x}"), good).await.unwrap();
        assert_eq!(cached, b"module bytes", "served from the cache by checksum");
    }
}
