//! A typed client of the result store, for workers (upload), schedulers (info, signed) and
//! the SDK (download, streamed to a temporary file within a size bound).

use std::{io::Write, time::Duration};

use alloy::{
    primitives::{Address, B256, Bytes as AlloyBytes},
    signers::{Signer, SignerSync},
};
use bytes::Bytes;
use poco_primitives::request::format_nonce;
use reqwest::{Response, StatusCode, header::HeaderMap};
use sha2::{Digest, Sha256};
use tracing::warn;

use super::{
    archive::{ArchiveLimits, ArchiveSummary, inspect_archive, unpack_to_dir},
    auth::{
        HEADER_APP, HEADER_ARCHIVE_SHA256, HEADER_ARCHIVE_SIZE, HEADER_CHALLENGE_NONCE,
        HEADER_CONTENT_SHA256, HEADER_DEAL_ID, HEADER_REQUEST_NONCE, HEADER_RESULT_DIGEST,
        HEADER_RESULT_PUBLIC, HEADER_SIGNATURE, HEADER_TASK_INDEX, HEADER_TIMESTAMP,
        HEADER_UPLOAD_TICKET, HEADER_WORKER, SignedRequest, sha256, sign_download,
    },
    error::{Error, Result},
    wire::{Challenge, CodeReceipt, ResultInfo, ResultOutcome, TaskRef, UploadReceipt},
};
use crate::http::Refusal;

/// How long a request to a result store may take (an upload or a download of an archive).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A client of one result store.
#[derive(Debug, Clone)]
pub struct ResultStoreClient {
    base: String,
    http: reqwest::Client,
    limits: ArchiveLimits,
    max_download_bytes: u64,
}

/// The largest archive a client downloads unless told otherwise
/// ([`ResultStoreClient::with_max_download_bytes`]): the store's default content limit
/// (64 MiB) with room for the tar headers of its 10,000 entries. It protects the client's disk
/// and memory from a store that sends without end.
pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 96 * 1024 * 1024;

/// A downloaded result: the archive as stored, and its digest computed here.
#[derive(Debug, Clone)]
pub struct DownloadedResult {
    /// The task.
    pub task_id: B256,
    /// The archive's bytes, exactly as uploaded.
    pub archive: Bytes,
    /// Its result digest, computed by this client over the archive (the store's claim was
    /// checked against it). Compare it with the task's on-chain `resultDigest`
    /// ([`Self::verify`]).
    pub digest: B256,
    /// Its files and directories.
    pub summary: ArchiveSummary,
}

impl DownloadedResult {
    /// Checks that the archive's digest is `expected` (the task's on-chain result digest).
    pub fn verify(&self, expected: B256) -> Result<()> {
        if self.digest == expected {
            Ok(())
        } else {
            Err(Error::DigestMismatch {
                task_id: self.task_id,
                digest: self.digest,
                expected: Some(expected),
            })
        }
    }

    /// Writes the output tree into `dir`, which must not exist or be empty.
    pub fn unpack_to(&self, dir: &std::path::Path) -> Result<()> {
        unpack_to_dir(
            &self.archive,
            dir,
            &ArchiveLimits {
                max_content_bytes: u64::MAX,
                max_entries: usize::MAX,
                max_path_bytes: usize::MAX,
            },
        )
        .map(drop)
    }
}

impl ResultStoreClient {
    /// A client of the store at `base_url` (`http://host:port`), with a 2-minute timeout.
    pub fn new(base_url: &str) -> Result<Self> {
        Self::with_http_client(base_url, crate::http::client(REQUEST_TIMEOUT))
    }

    /// A client of the store at `base_url` using `http`.
    pub fn with_http_client(base_url: &str, http: reqwest::Client) -> Result<Self> {
        let parsed = reqwest::Url::parse(base_url)
            .map_err(|e| Error::Config(format!("invalid result store URL {base_url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::Config(format!(
                "invalid result store URL {base_url:?}: the scheme must be http or https"
            )));
        }
        let base = base_url.trim_end_matches('/').to_owned();
        Ok(Self {
            base,
            http,
            limits: ArchiveLimits::default(),
            max_download_bytes: DEFAULT_MAX_DOWNLOAD_BYTES,
        })
    }

    /// Sets the limits applied to downloaded archives (the store's defaults otherwise).
    pub fn with_archive_limits(mut self, limits: ArchiveLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the largest archive this client downloads, in bytes (announced or sent).
    pub fn with_max_download_bytes(mut self, limit: u64) -> Self {
        self.max_download_bytes = limit;
        self
    }

    /// The store's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn path(task_id: B256) -> String {
        format!("/results/{task_id}")
    }

    /// Uploads `archive` (a tar of the output tree, see [`super::archive::pack_dir`]) as the
    /// result of `task`, with the scheduler's `ticket` ([`super::UploadTicket`] signed by the
    /// deal's scheduler for `worker`), signing the request with `worker`'s key.
    pub async fn upload<S: SignerSync + ?Sized>(
        &self,
        task: TaskRef,
        archive: Bytes,
        ticket: &[u8],
        worker: &S,
    ) -> Result<UploadReceipt> {
        let path = Self::path(task.task_id());
        let request = SignedRequest::fresh("PUT", &path, &archive);
        let signature = request.sign(worker).map_err(Error::Signing)?;
        // The signer's address, as the store will recover it.
        let worker = request.recover_signer(&signature).map_err(Error::Signing)?;
        let response = self
            .http
            .put(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
            .header(HEADER_DEAL_ID, task.deal_id.to_string())
            .header(HEADER_TASK_INDEX, task.index.to_string())
            .header(HEADER_WORKER, worker.to_string())
            .header(HEADER_TIMESTAMP, request.timestamp.to_string())
            .header(HEADER_REQUEST_NONCE, format_nonce(&request.nonce))
            .header(HEADER_CONTENT_SHA256, request.body_sha256.to_string())
            .header(HEADER_UPLOAD_TICKET, AlloyBytes::copy_from_slice(ticket).to_string())
            .header(HEADER_SIGNATURE, signature.to_string())
            .body(archive)
            .send()
            .await?;
        let response = check(response).await?;
        Ok(response.json().await?)
    }

    /// The path an app's code of `checksum` is served at.
    pub fn code_path(checksum: B256) -> String {
        format!("/code/{checksum}")
    }

    /// The URL an app's code of `checksum` is served at by this store: what the app is
    /// registered with, before the code is published.
    pub fn code_url(&self, checksum: B256) -> String {
        format!("{}{}", self.base, Self::code_path(checksum))
    }

    /// Publishes `code` as the code of `app`, signing the request with `owner`'s key: the store
    /// accepts it when `owner` owns `app` on-chain and the code's SHA-256 is the app's
    /// registered checksum, and serves it to anyone at [`Self::code_url`] from then on.
    /// Publishing the same code again is accepted.
    pub async fn publish_code<S: SignerSync + Signer + ?Sized>(
        &self,
        app: Address,
        code: Bytes,
        owner: &S,
    ) -> Result<CodeReceipt> {
        let path = Self::code_path(sha256(&code));
        let signed = SignedRequest::fresh("PUT", &path, &code)
            .headers_signed_by(owner)
            .map_err(Error::Signing)?;
        let mut request = self
            .http
            .put(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(HEADER_APP, app.to_string());
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        let response = check(request.body(code).send().await?).await?;
        Ok(response.json().await?)
    }

    /// Whether a result is stored for `task_id` (all the store tells a stranger).
    pub async fn exists(&self, task_id: B256) -> Result<bool> {
        let response =
            self.http.head(format!("{}{}", self.base, Self::path(task_id))).send().await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        check(response).await?;
        Ok(true)
    }

    /// What result is stored for `task_id` (digest, hashes, size, public flag), asked with a
    /// `HEAD` signed by `signer` (the shared signed-request scheme): the deal's beneficiary, or
    /// its scheduler (the workerpool owner). `None` when nothing is stored.
    pub async fn info<S: SignerSync + Signer + ?Sized>(
        &self,
        task_id: B256,
        signer: &S,
    ) -> Result<Option<ResultInfo>> {
        let path = Self::path(task_id);
        let signed = SignedRequest::fresh("HEAD", &path, b"")
            .headers_signed_by(signer)
            .map_err(Error::Signing)?;
        let mut request = self.http.head(format!("{}{path}", self.base));
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        let response = request.send().await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = check(response).await?;
        Ok(Some(info(response.headers())?))
    }

    /// A download challenge for `task_id`'s result.
    pub async fn challenge(&self, task_id: B256) -> Result<Challenge> {
        let url = format!("{}{}/challenge", self.base, Self::path(task_id));
        let response = check(self.http.get(url).send().await?).await?;
        let challenge: Challenge = response.json().await?;
        if challenge.task_id != task_id {
            return Err(Error::UnexpectedResponse("a challenge for another task".into()));
        }
        Ok(challenge)
    }

    /// Downloads `task_id`'s result as its beneficiary: gets a challenge, signs it with
    /// `beneficiary`, downloads, and checks the archive's digest.
    pub async fn download<S: SignerSync + ?Sized>(
        &self,
        task_id: B256,
        beneficiary: &S,
    ) -> Result<DownloadedResult> {
        self.download_reporting(task_id, beneficiary, &mut |_, _| {}).await
    }

    /// How `task_id`'s result ended (a failure record, if it holds one), asked as its
    /// beneficiary with a challenge signed by `beneficiary` (a public result needs none).
    pub async fn outcome<S: SignerSync + ?Sized>(
        &self,
        task_id: B256,
        beneficiary: &S,
    ) -> Result<ResultOutcome> {
        let challenge = self.challenge(task_id).await?;
        let signature = sign_download(beneficiary, task_id, challenge.nonce)?;
        let url = format!("{}{}/outcome", self.base, Self::path(task_id));
        let request = self
            .http
            .get(url)
            .header(HEADER_CHALLENGE_NONCE, challenge.nonce.to_string())
            .header(HEADER_SIGNATURE, AlloyBytes::copy_from_slice(&signature).to_string());
        let outcome: ResultOutcome = check(request.send().await?).await?.json().await?;
        if outcome.task_id != task_id {
            return Err(Error::UnexpectedResponse("an outcome for another task".into()));
        }
        Ok(outcome)
    }

    /// Downloads a public result, without authentication.
    pub async fn download_public(&self, task_id: B256) -> Result<DownloadedResult> {
        self.download_with(task_id, None).await
    }

    /// Downloads `task_id`'s result with a challenge signed elsewhere (`nonce`, `signature`),
    /// or none for a public result.
    pub async fn download_with(
        &self,
        task_id: B256,
        signed_challenge: Option<(B256, &[u8])>,
    ) -> Result<DownloadedResult> {
        self.download_with_progress(task_id, signed_challenge, &mut |_, _| {}).await
    }

    /// Downloads `task_id`'s result as its beneficiary, like [`Self::download`], calling
    /// `progress(received, total)` as bytes arrive (`total` when the store announced it).
    pub async fn download_reporting<S: SignerSync + ?Sized>(
        &self,
        task_id: B256,
        beneficiary: &S,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<DownloadedResult> {
        let challenge = self.challenge(task_id).await?;
        let signature = sign_download(beneficiary, task_id, challenge.nonce)?;
        self.download_with_progress(task_id, Some((challenge.nonce, &signature)), progress).await
    }

    /// Downloads `task_id`'s result (see [`Self::download_with`]), streaming it to a temporary
    /// file: refused as soon as it is larger than [`Self::with_max_download_bytes`] allows or
    /// than the store announced (its `content-length` and archive size), checked against the
    /// announced SHA-256, then inspected (its digest computed here).
    pub async fn download_with_progress(
        &self,
        task_id: B256,
        signed_challenge: Option<(B256, &[u8])>,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<DownloadedResult> {
        let mut request = self.http.get(format!("{}{}", self.base, Self::path(task_id)));
        if let Some((nonce, signature)) = signed_challenge {
            request = request
                .header(HEADER_CHALLENGE_NONCE, nonce.to_string())
                .header(HEADER_SIGNATURE, AlloyBytes::copy_from_slice(signature).to_string());
        }
        let response = check(request.send().await?).await?;
        let claimed = info(response.headers())?;
        let archive = self.receive(response, claimed, progress).await?;
        let limits = self.limits;
        let inspected = archive.clone();
        let summary = tokio::task::spawn_blocking(move || inspect_archive(&inspected, &limits))
            .await
            .map_err(|e| Error::Internal(format!("archive inspection panicked: {e}")))??;
        if summary.digest != claimed.digest {
            return Err(Error::DigestMismatch {
                task_id,
                digest: summary.digest,
                expected: Some(claimed.digest),
            });
        }
        Ok(DownloadedResult { task_id, archive, digest: summary.digest, summary })
    }

    /// The body of a download, streamed to a temporary file within the size bound and checked
    /// against the announced SHA-256; its bytes (at most the bound) once they are checked.
    async fn receive(
        &self,
        mut response: Response,
        claimed: ResultInfo,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<Bytes> {
        let limit = self.max_download_bytes;
        let too_large = |received: u64, reason: String| {
            warn!(received, limit, %reason, "download stopped");
            Error::DownloadTooLarge { received, reason, limit }
        };
        if claimed.size > limit {
            return Err(too_large(claimed.size, "the store announces a larger archive".into()));
        }
        // The transfer may not exceed what the store announced, nor the bound.
        let announced = match response.content_length() {
            Some(length) if length != claimed.size => {
                return Err(Error::UnexpectedResponse(format!(
                    "the store announces {length} bytes of body for an archive of {} bytes",
                    claimed.size
                )));
            }
            _ => claimed.size,
        };
        let temporary = tempfile::NamedTempFile::new()
            .map_err(|source| Error::Io { path: std::env::temp_dir(), source })?;
        let path = temporary.path().to_path_buf();
        let io_error = |source| Error::Io { path: path.clone(), source };
        let mut file = std::io::BufWriter::new(temporary.as_file());
        let mut hasher = Sha256::new();
        let mut received = 0u64;
        progress(0, Some(announced));
        while let Some(chunk) = response.chunk().await? {
            received += chunk.len() as u64;
            if received > announced {
                return Err(too_large(
                    received,
                    format!("the store sends more than the {announced} bytes it announced"),
                ));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(io_error)?;
            progress(received, Some(announced));
        }
        if received != announced {
            return Err(Error::UnexpectedResponse(format!(
                "the store sent {received} bytes of the {announced} it announced"
            )));
        }
        file.flush().map_err(io_error)?;
        drop(file);
        if B256::from(<[u8; 32]>::from(hasher.finalize())) != claimed.archive_sha256 {
            return Err(Error::UnexpectedResponse(
                "the archive's bytes do not hash to the SHA-256 the store announced".into(),
            ));
        }
        let archive = std::fs::read(temporary.path()).map_err(io_error)?;
        Ok(Bytes::from(archive))
    }
}

/// The response if it is a success, else the store's refusal as [`Error::Refused`].
async fn check(response: Response) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.bytes().await.unwrap_or_default();
    Err(Refusal::read(status, &body).into())
}

fn info(headers: &HeaderMap) -> Result<ResultInfo> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| Error::UnexpectedResponse(format!("no {name} header")))
    };
    let hash = |name: &str| {
        text(name)?
            .parse::<B256>()
            .map_err(|_| Error::UnexpectedResponse(format!("malformed {name} header")))
    };
    Ok(ResultInfo {
        digest: hash(HEADER_RESULT_DIGEST)?,
        archive_sha256: hash(HEADER_ARCHIVE_SHA256)?,
        size: text(HEADER_ARCHIVE_SIZE)?
            .parse()
            .map_err(|_| Error::UnexpectedResponse("malformed archive size".into()))?,
        public: text(HEADER_RESULT_PUBLIC)? == "true",
    })
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;
    use crate::results::archive::pack_files;

    /// The largest download of these tests' clients.
    const LIMIT: u64 = 64 * 1024;

    /// A store on 127.0.0.1 that answers each of up to four requests with `head` (status line
    /// and headers) then `body`, and closes the connection.
    async fn store_answering(head: String, body: Vec<u8>) -> ResultStoreClient {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            for _ in 0..4 {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            }
        });
        ResultStoreClient::new(&url).unwrap().with_max_download_bytes(LIMIT)
    }

    /// A response head announcing an archive of `size` bytes with `sha256` and `digest`, and
    /// `content_length` if any.
    fn head(size: u64, sha256: B256, digest: B256, content_length: Option<u64>) -> String {
        let length = content_length.map(|n| format!("content-length: {n}\r\n")).unwrap_or_default();
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-tar\r\n{length}\
             {HEADER_ARCHIVE_SIZE}: {size}\r\n{HEADER_ARCHIVE_SHA256}: {sha256}\r\n\
             {HEADER_RESULT_DIGEST}: {digest}\r\n{HEADER_RESULT_PUBLIC}: true\r\n\
             connection: close\r\n\r\n"
        )
    }

    fn archive() -> (Vec<u8>, B256, B256) {
        let archive = pack_files([("result.txt", &b"42\n"[..])]).unwrap();
        let digest = inspect_archive(&archive, &ArchiveLimits::default()).unwrap().digest;
        (archive.clone(), crate::results::auth::sha256(&archive), digest)
    }

    #[tokio::test]
    async fn an_honest_store_streams_a_checked_archive_with_progress() {
        let (archive, sha, digest) = archive();
        let size = archive.len() as u64;
        let client = store_answering(head(size, sha, digest, Some(size)), archive.clone()).await;
        let mut seen = Vec::new();
        let downloaded = client
            .download_with_progress(B256::ZERO, None, &mut |received, total| {
                seen.push((received, total));
            })
            .await
            .unwrap();
        assert_eq!(downloaded.archive.as_ref(), archive.as_slice());
        assert_eq!(downloaded.digest, digest);
        assert_eq!(seen.first(), Some(&(0, Some(size))));
        assert_eq!(seen.last(), Some(&(size, Some(size))));
    }

    #[tokio::test]
    async fn a_store_announcing_more_than_the_bound_is_not_read() {
        let (archive, sha, digest) = archive();
        let huge = 10 * LIMIT;
        let client = store_answering(head(huge, sha, digest, Some(huge)), archive).await;
        let error = client.download_public(B256::ZERO).await.unwrap_err();
        assert!(
            matches!(error, Error::DownloadTooLarge { received, limit: LIMIT, .. } if received == huge),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_store_sending_more_than_it_announced_is_cut_off() {
        let (_, sha, digest) = archive();
        // It announces 100 bytes (and no content-length), then sends without end (here 4x the
        // bound), until the connection closes.
        let client =
            store_answering(head(100, sha, digest, None), vec![0u8; 4 * LIMIT as usize]).await;
        let mut last = 0;
        let error = client
            .download_with_progress(B256::ZERO, None, &mut |received, _| last = received)
            .await
            .unwrap_err();
        match error {
            Error::DownloadTooLarge { received, reason, .. } => {
                assert!(received > 100 && received <= 4 * LIMIT, "{received}");
                assert!(reason.contains("more than the 100 bytes"), "{reason}");
            }
            other => panic!("expected the download to be cut off, got {other}"),
        }
        assert!(last <= 100, "nothing past the announced size was accepted: {last}");
    }

    #[tokio::test]
    async fn a_store_whose_lengths_disagree_or_bytes_differ_is_refused() {
        let (archive, sha, digest) = archive();
        let size = archive.len() as u64;
        // A content-length that is not the archive's size.
        let client =
            store_answering(head(size, sha, digest, Some(size + 1)), archive.clone()).await;
        let error = client.download_public(B256::ZERO).await.unwrap_err();
        assert!(
            matches!(error, Error::UnexpectedResponse(ref m) if m.contains("announces")),
            "{error}"
        );
        // Other bytes than the announced SHA-256.
        let mut altered = archive.clone();
        altered[600] ^= 1;
        let client = store_answering(head(size, sha, digest, Some(size)), altered).await;
        let error = client.download_public(B256::ZERO).await.unwrap_err();
        assert!(
            matches!(error, Error::UnexpectedResponse(ref m) if m.contains("SHA-256")),
            "{error}"
        );
    }
}
