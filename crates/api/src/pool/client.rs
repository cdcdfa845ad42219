//! Clients of a scheduler, every request signed: a worker's side of the workerpool protocol,
//! and a requester reading a task's log.

use alloy::signers::local::PrivateKeySigner;
use poco_primitives::request::SignedRequest;
use serde::{Serialize, de::DeserializeOwned};

use super::{
    HandBack, Heartbeat, HeartbeatResponse, PoolInfo, Registration, Report, WorkRequest,
    WorkResponse,
};

/// What can go wrong talking to a scheduler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The scheduler could not be reached, refused, or answered something unexpected.
    #[error("scheduler at {url}: {message}")]
    Scheduler {
        /// The scheduler's URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// Signing the request with the worker's wallet failed.
    #[error(transparent)]
    Signing(#[from] poco_primitives::Error),
}

/// A `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A client of one scheduler, signing every request with the worker's wallet
/// ([`poco_primitives::request`]: unix seconds and a random nonce, so concurrent requests need
/// no coordination).
#[derive(Debug)]
pub struct SchedulerClient {
    url: String,
    http: reqwest::Client,
    wallet: PrivateKeySigner,
}

impl SchedulerClient {
    /// A client of the scheduler at `url`, signing with `wallet`.
    pub fn new(url: &str, wallet: PrivateKeySigner) -> Self {
        let http = crate::http::client(crate::http::REQUEST_TIMEOUT);
        Self { url: url.trim_end_matches('/').to_owned(), http, wallet }
    }

    fn fail(&self, message: String) -> Error {
        Error::Scheduler { url: self.url.clone(), message }
    }

    /// Sends `method path` with `body` (JSON when not empty), signed by the wallet; the
    /// answer's JSON, `None` when it is empty.
    async fn signed<R: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Option<R>> {
        let signed =
            SignedRequest::fresh(method.as_str(), path, &body).headers_signed_by(&self.wallet)?;
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let response =
            request.send().await.map_err(|e| self.fail(poco_primitives::error::causes(&e)))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.fail(e.to_string()))?;
        if !status.is_success() {
            let refusal = crate::http::Refusal::read(status, text.as_bytes());
            return Err(self.fail(format!("{status}: {}", refusal.message)));
        }
        if text.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| self.fail(format!("unexpected answer: {e}")))
    }

    async fn post<T: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<Option<R>> {
        let body = serde_json::to_vec(body).map_err(|e| self.fail(e.to_string()))?;
        self.signed(reqwest::Method::POST, path, body).await
    }

    /// The log the scheduler kept of a task (for the task's requester only):
    /// `{"taskId", "logs": [{"at": unix seconds, "message"}]}`.
    pub async fn task_logs(&self, task_id: alloy::primitives::B256) -> Result<TaskLogs> {
        let path = format!("/tasks/{task_id}/logs");
        self.signed(reqwest::Method::GET, &path, Vec::new())
            .await?
            .ok_or_else(|| self.fail("an empty answer to a log request".into()))
    }

    /// Registers the worker: its slots, TEE ability and version.
    pub async fn register(&self, registration: &Registration) -> Result<PoolInfo> {
        self.post("/workers/register", registration)
            .await?
            .ok_or_else(|| self.fail("empty answer to a registration".into()))
    }

    /// Sends a heartbeat; the answer carries what the scheduler wants done.
    pub async fn heartbeat(&self, beat: &Heartbeat) -> Result<HeartbeatResponse> {
        Ok(self.post("/workers/heartbeat", beat).await?.unwrap_or_default())
    }

    /// Asks for work for up to `free_slots` tasks.
    pub async fn work(&self, free_slots: u32) -> Result<WorkResponse> {
        Ok(self.post("/work", &WorkRequest { free_slots }).await?.unwrap_or_default())
    }

    /// Reports what the worker did with a task.
    pub async fn report(&self, report: &Report) -> Result<()> {
        self.post::<_, serde_json::Value>("/reports", report).await.map(|_| ())
    }

    /// Hands a task back to the scheduler at once: the worker cannot keep it.
    pub async fn hand_back(&self, hand_back: &HandBack) -> Result<()> {
        self.post::<_, serde_json::Value>(HAND_BACK_PATH, hand_back).await.map(|_| ())
    }
}

/// Where a scheduler takes hand-backs ([`HandBack`]).
pub const HAND_BACK_PATH: &str = "/work/hand-back";

/// A task's log, as its scheduler kept it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskLogs {
    /// The task.
    pub task_id: alloy::primitives::B256,
    /// Its entries, oldest first.
    pub logs: Vec<LogEntry>,
}

/// One entry of a task's log.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LogEntry {
    /// When, in unix seconds (millisecond precision).
    pub at: f64,
    /// What happened.
    pub message: String,
}
