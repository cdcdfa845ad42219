//! The typed client of the SMS: what the CLI (secret pushes and checks), the scheduler
//! (challenges) and the worker's enclave (sessions) call.

use alloy::{
    primitives::{Address, B256, U256},
    signers::local::PrivateKeySigner,
};
use poco_primitives::{Deal, request::SignedRequest};
use reqwest::{Method, StatusCode};
use serde::{Serialize, de::DeserializeOwned};

use super::{
    crypto::{DatasetKey, Secret, decrypt_result},
    error::{Error, Result},
    wire::{
        AttestRequest, AttestResponse, ChallengeRequest, ChallengeResponse, SecretValue,
        SessionRequest, SessionResponse, SessionSecrets, SmsStatus,
    },
};
use crate::http::Refusal;

/// A client of one SMS. Every write is signed by the caller's wallet
/// ([`poco_primitives::request`]): stamped in unix seconds with a random nonce, so that any
/// number of clients of one wallet may sign at once.
#[derive(Debug)]
pub struct SmsClient {
    url: String,
    http: reqwest::Client,
}

impl SmsClient {
    /// A client of the SMS at `url`.
    pub fn new(url: &str) -> Self {
        let http = crate::http::client(crate::http::REQUEST_TIMEOUT);
        Self { url: url.trim_end_matches('/').to_owned(), http }
    }

    /// The SMS's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn unreachable(&self, error: &reqwest::Error) -> Error {
        Error::Unreachable { url: self.url.clone(), message: poco_primitives::error::causes(error) }
    }

    fn unexpected(&self, message: &dyn std::fmt::Display) -> Error {
        Error::UnexpectedAnswer { url: self.url.clone(), message: message.to_string() }
    }

    async fn send<T>(
        &self,
        method: Method,
        path: &str,
        signer: Option<&PrivateKeySigner>,
        body: Option<&T>,
    ) -> Result<(StatusCode, Vec<u8>)>
    where
        T: Serialize + ?Sized,
    {
        let body = match body {
            Some(body) => serde_json::to_vec(body).map_err(|e| self.unexpected(&e))?,
            None => Vec::new(),
        };
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.url));
        if let Some(signer) = signer {
            let signed = SignedRequest::fresh(method.as_str(), path, &body);
            for (name, value) in signed.headers_signed_by(signer)?.pairs() {
                request = request.header(name, value);
            }
        }
        if !body.is_empty() {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(&e))?.to_vec();
        Ok((status, bytes))
    }

    fn refused(status: StatusCode, bytes: &[u8]) -> Error {
        Refusal::read(status, bytes).into()
    }

    async fn call<T, R>(
        &self,
        method: Method,
        path: &str,
        signer: &PrivateKeySigner,
        body: &T,
    ) -> Result<R>
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let (status, bytes) = self.send(method, path, Some(signer), Some(body)).await?;
        if !status.is_success() {
            return Err(Self::refused(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| self.unexpected(&e))
    }

    async fn put_secret(&self, path: &str, signer: &PrivateKeySigner, value: &str) -> Result<()> {
        let body = SecretValue { value: Secret::new(value) };
        let (status, bytes) = self.send(Method::PUT, path, Some(signer), Some(&body)).await?;
        if !status.is_success() {
            return Err(Self::refused(status, &bytes));
        }
        Ok(())
    }

    async fn head(&self, path: &str) -> Result<bool> {
        let (status, bytes) = self.send::<()>(Method::HEAD, path, None, None).await?;
        match status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(Self::refused(status, &bytes)),
        }
    }

    /// Pushes the key of `dataset`, signed by its on-chain owner. Write-once.
    pub async fn push_dataset_key(
        &self,
        owner: &PrivateKeySigner,
        dataset: Address,
        key: &DatasetKey,
    ) -> Result<()> {
        self.put_secret(&format!("/datasets/{dataset}/key"), owner, key.to_hex().expose()).await
    }

    /// Whether the key of `dataset` is set (the value is never returned).
    pub async fn dataset_key_exists(&self, dataset: Address) -> Result<bool> {
        self.head(&format!("/datasets/{dataset}/key")).await
    }

    /// Pushes the developer secret of `app`, signed by its on-chain owner. Write-once.
    pub async fn push_app_secret(
        &self,
        owner: &PrivateKeySigner,
        app: Address,
        value: &str,
    ) -> Result<()> {
        self.put_secret(&format!("/apps/{app}/secret"), owner, value).await
    }

    /// Whether the developer secret of `app` is set.
    pub async fn app_secret_exists(&self, app: Address) -> Result<bool> {
        self.head(&format!("/apps/{app}/secret")).await
    }

    /// Pushes the requester's secret `name`, signed by the requester. Write-once per name.
    pub async fn push_requester_secret(
        &self,
        requester: &PrivateKeySigner,
        name: &str,
        value: &str,
    ) -> Result<()> {
        let address = requester.address();
        self.put_secret(&format!("/requesters/{address}/secrets/{name}"), requester, value).await
    }

    /// Whether `requester` has a secret named `name`.
    pub async fn requester_secret_exists(&self, requester: Address, name: &str) -> Result<bool> {
        self.head(&format!("/requesters/{requester}/secrets/{name}")).await
    }

    /// Pushes the beneficiary's result encryption key (an age recipient, `age1...`), signed by
    /// the beneficiary. Replaces any previous one.
    pub async fn push_result_key(
        &self,
        beneficiary: &PrivateKeySigner,
        recipient: &str,
    ) -> Result<()> {
        let address = beneficiary.address();
        self.put_secret(&format!("/beneficiaries/{address}/result-key"), beneficiary, recipient)
            .await
    }

    /// Whether `beneficiary` has a result encryption key.
    pub async fn result_key_exists(&self, beneficiary: Address) -> Result<bool> {
        self.head(&format!("/beneficiaries/{beneficiary}/result-key")).await
    }

    /// The enclave challenge of task `index` of `deal`, created on the first call; signed by
    /// the deal's scheduler.
    pub async fn challenge(
        &self,
        scheduler: &PrivateKeySigner,
        deal: &Deal,
        index: U256,
    ) -> Result<ChallengeResponse> {
        let body = ChallengeRequest { deal: deal.clone(), index };
        self.call(Method::POST, "/challenges", scheduler, &body).await
    }

    /// Opens an enclave session for a task, signed by the worker the scheduler authorized.
    pub async fn open_session(
        &self,
        worker: &PrivateKeySigner,
        request: &SessionRequest,
    ) -> Result<SessionResponse> {
        self.call(Method::POST, "/sessions", worker, request).await
    }

    /// Presents the enclave's evidence for a session; returns the secrets, encrypted to the
    /// enclave's session key.
    pub async fn attest(
        &self,
        worker: &PrivateKeySigner,
        session_id: B256,
        request: &AttestRequest,
    ) -> Result<AttestResponse> {
        self.call(Method::POST, &format!("/sessions/{session_id}/attest"), worker, request).await
    }

    /// What the SMS says about itself.
    pub async fn status(&self) -> Result<SmsStatus> {
        let (status, bytes) = self.send::<()>(Method::GET, "/status", None, None).await?;
        if !status.is_success() {
            return Err(Self::refused(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| self.unexpected(&e))
    }
}

/// Opens the secrets of an [`AttestResponse`] with the enclave's session identity.
pub fn open_session_secrets(
    response: &AttestResponse,
    identity: &Secret,
) -> Result<SessionSecrets> {
    let plaintext = decrypt_result(&response.secrets, identity.expose())?;
    serde_json::from_slice(&plaintext).map_err(|e| Error::Crypto(format!("session secrets: {e}")))
}
