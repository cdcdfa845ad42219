//! A typed client of the result store, for workers (upload), schedulers (exists) and the SDK
//! (download).

use std::time::Duration;

use alloy::{
    primitives::{B256, Bytes as AlloyBytes},
    signers::SignerSync,
};
use bytes::Bytes;
use poco_primitives::request::format_nonce;
use reqwest::{Response, StatusCode, header::HeaderMap};

use crate::{
    api::{Challenge, ResultInfo, ResultOutcome, TaskRef, UploadReceipt},
    archive::{ArchiveLimits, ArchiveSummary, inspect_archive, unpack_to_dir},
    auth::{
        HEADER_ARCHIVE_SHA256, HEADER_ARCHIVE_SIZE, HEADER_CHALLENGE_NONCE, HEADER_CONTENT_SHA256,
        HEADER_DEAL_ID, HEADER_REQUEST_NONCE, HEADER_RESULT_DIGEST, HEADER_RESULT_PUBLIC,
        HEADER_SIGNATURE, HEADER_TASK_INDEX, HEADER_TIMESTAMP, HEADER_UPLOAD_TICKET, HEADER_WORKER,
        SignedRequest, sha256, sign_download,
    },
    error::{Error, ErrorBody, Result},
};

/// A client of one result store.
#[derive(Debug, Clone)]
pub struct ResultStoreClient {
    base: String,
    http: reqwest::Client,
    limits: ArchiveLimits,
}

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
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Self::with_http_client(base_url, http)
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
        Ok(Self { base, http, limits: ArchiveLimits::default() })
    }

    /// Sets the limits applied to downloaded archives (the store's defaults otherwise).
    pub fn with_archive_limits(mut self, limits: ArchiveLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The store's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn path(task_id: B256) -> String {
        format!("/results/{task_id}")
    }

    /// Uploads `archive` (a tar of the output tree, see [`crate::archive::pack_dir`]) as the
    /// result of `task`, with the scheduler's `ticket` ([`crate::UploadTicket`] signed by the
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

    /// Whether a result is stored for `task_id`, and what it is.
    pub async fn exists(&self, task_id: B256) -> Result<Option<ResultInfo>> {
        let response =
            self.http.head(format!("{}{}", self.base, Self::path(task_id))).send().await?;
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
        let challenge = self.challenge(task_id).await?;
        let signature = sign_download(beneficiary, task_id, challenge.nonce)?;
        self.download_with(task_id, Some((challenge.nonce, &signature))).await
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
        let mut request = self.http.get(format!("{}{}", self.base, Self::path(task_id)));
        if let Some((nonce, signature)) = signed_challenge {
            request = request
                .header(HEADER_CHALLENGE_NONCE, nonce.to_string())
                .header(HEADER_SIGNATURE, AlloyBytes::copy_from_slice(signature).to_string());
        }
        let response = check(request.send().await?).await?;
        let claimed = info(response.headers())?;
        let archive = response.bytes().await?;
        if sha256(&archive) != claimed.archive_sha256 {
            return Err(Error::UnexpectedResponse(
                "the archive's bytes do not hash to the SHA-256 the store announced".into(),
            ));
        }
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
}

/// The response if it is a success, else the store's refusal as [`Error::Refused`].
async fn check(response: Response) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => (body.code, body.error),
        Err(_) => ("unknown".to_owned(), status.canonical_reason().unwrap_or("").to_owned()),
    };
    Err(Error::Refused { status: status.as_u16(), code, message })
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
