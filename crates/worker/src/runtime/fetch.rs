//! Fetching apps, datasets and input files, with the checksums registered on-chain.
//!
//! A source is a URL: `http://` or `https://`, `file://` (an absolute path on the worker's
//! machine, for devnets), or `sha256:<hex>`, a content address served from the worker's cache.
//! Whatever the source, an app or a dataset is used only if its sha256 is the checksum
//! registered on-chain; verified content is cached by checksum.

use std::path::PathBuf;

use alloy::primitives::B256;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Fetches and caches content by checksum.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    http: reqwest::Client,
    cache: PathBuf,
    max_bytes: usize,
}

impl Fetcher {
    pub(crate) fn new(cache: PathBuf, max_bytes: usize) -> Self {
        Self { http: reqwest::Client::new(), cache, max_bytes }
    }

    /// The content at `url`, which must hash to `expected` (an app or a dataset).
    pub(crate) async fn fetch_checked(
        &self,
        what: &'static str,
        url: &str,
        expected: B256,
    ) -> Result<Vec<u8>> {
        let cached = self.cache.join(format!("{expected:x}"));
        if let Ok(bytes) = tokio::fs::read(&cached).await
            && B256::from(<[u8; 32]>::from(Sha256::digest(&bytes))) == expected
        {
            return Ok(bytes);
        }
        let bytes = if let Some(hex) = url.strip_prefix("sha256:") {
            return Err(Error::Fetch {
                url: url.to_owned(),
                message: format!("content {hex} is not in the worker's cache"),
            });
        } else {
            self.fetch(url).await?
        };
        let actual = B256::from(<[u8; 32]>::from(Sha256::digest(&bytes)));
        if actual != expected {
            return Err(Error::ChecksumMismatch { what, url: url.to_owned(), expected, actual });
        }
        tokio::fs::create_dir_all(&self.cache).await.map_err(|e| Error::io(&self.cache, e))?;
        // Several tasks may fetch the same content at once: each writes its own partial file,
        // and the last rename wins with identical bytes.
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let partial = self.cache.join(format!("{expected:x}.{}.{unique}.part", std::process::id()));
        tokio::fs::write(&partial, &bytes).await.map_err(|e| Error::io(&partial, e))?;
        tokio::fs::rename(&partial, &cached).await.map_err(|e| Error::io(&cached, e))?;
        Ok(bytes)
    }

    /// The content at `url`, unchecked (input files chosen by the requester).
    pub(crate) async fn fetch(&self, url: &str) -> Result<Vec<u8>> {
        let fail = |message: String| Error::Fetch { url: url.to_owned(), message };
        if let Some(path) = url.strip_prefix("file://") {
            let bytes = tokio::fs::read(path).await.map_err(|e| fail(e.to_string()))?;
            if bytes.len() > self.max_bytes {
                return Err(fail(format!("larger than {} bytes", self.max_bytes)));
            }
            return Ok(bytes);
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(fail("only http(s)://, file:// and sha256: sources are supported".into()));
        }
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| fail(e.to_string()))?;
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(e.to_string()))? {
            if bytes.len() + chunk.len() > self.max_bytes {
                return Err(fail(format!("larger than {} bytes", self.max_bytes)));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn content_with_the_wrong_checksum_is_refused_and_right_content_is_cached() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.wasm");
        std::fs::write(&file, b"module bytes").unwrap();
        let fetcher = Fetcher::new(dir.path().join("cache"), 1 << 20);
        let url = format!("file://{}", file.display());
        let good = B256::from(<[u8; 32]>::from(Sha256::digest(b"module bytes")));
        let error = fetcher.fetch_checked("app", &url, B256::repeat_byte(1)).await.unwrap_err();
        assert!(matches!(error, Error::ChecksumMismatch { .. }), "{error}");
        assert_eq!(fetcher.fetch_checked("app", &url, good).await.unwrap(), b"module bytes");
        std::fs::remove_file(&file).unwrap();
        let cached = fetcher.fetch_checked("app", &format!("sha256:{good:x}"), good).await.unwrap();
        assert_eq!(cached, b"module bytes", "served from the cache by checksum");
    }
}
