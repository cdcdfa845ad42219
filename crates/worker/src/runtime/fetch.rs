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

    /// Serves `routes` (path, body) over HTTP on a loopback port, one request per connection,
    /// until the test ends; returns the base URL.
    fn serve(routes: Vec<(&'static str, Vec<u8>)>) -> String {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).map_or(true, |n| n == 0) || header == "\r\n" {
                        break;
                    }
                }
                let body = routes.iter().find(|(p, _)| *p == path).map(|(_, b)| b.clone());
                let (status, body) = match body {
                    Some(body) => ("200 OK", body),
                    None => ("404 Not Found", Vec::new()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        base
    }

    #[tokio::test]
    async fn an_app_over_http_is_fetched_only_with_its_registered_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let base = serve(vec![
            ("/app.wasm", b"module bytes".to_vec()),
            ("/other.wasm", b"other".to_vec()),
        ]);
        let good = B256::from(<[u8; 32]>::from(Sha256::digest(b"module bytes")));
        // Loopback is this machine: refused until the operator widens the policy, and the
        // refusal says how.
        let strict = Fetcher::new(dir.path().join("strict"), FetchPolicy::default());
        let error =
            strict.fetch_checked(Source::App, &format!("{base}/app.wasm"), good).await.unwrap_err();
        let message = error.to_string();
        assert!(message.contains("loopback"), "{message}");
        assert!(message.contains("--fetch.allow 127.0.0.0/8"), "{message}");

        let policy =
            FetchPolicy { allow: vec!["127.0.0.0/8".parse().unwrap()], ..FetchPolicy::default() };
        let fetcher = Fetcher::new(dir.path().join("cache"), policy);
        // Other bytes at the URL than the registered checksum's: refused, and not cached.
        let other = format!("{base}/other.wasm");
        let error = fetcher.fetch_checked(Source::App, &other, good).await.unwrap_err();
        assert!(matches!(error, Error::ChecksumMismatch { .. }), "{error}");
        assert!(!dir.path().join("cache").join(format!("{good:x}")).exists());
        let fetched =
            fetcher.fetch_checked(Source::App, &format!("{base}/app.wasm"), good).await.unwrap();
        assert_eq!(fetched, b"module bytes");
        let wrong = B256::repeat_byte(7);
        let error = fetcher.fetch_checked(Source::App, &other, wrong).await.unwrap_err();
        assert!(matches!(error, Error::ChecksumMismatch { .. }), "{error}");
        assert!(!dir.path().join("cache").join(format!("{wrong:x}")).exists());
    }
}
