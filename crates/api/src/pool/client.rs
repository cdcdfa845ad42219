//! Clients of a pool's scheduler (one instance or several, one of them active), every request
//! signed: a worker's side of the workerpool protocol,
//! and a requester reading a task's log.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use alloy::signers::local::PrivateKeySigner;
use poco_primitives::request::SignedRequest;
use serde::{Serialize, de::DeserializeOwned};
use tracing::{debug, warn};

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

/// The `code` of a scheduler instance's refusal when it is not the pool's active one (a
/// standby): the answer's `active` field names the active instance's URL when it is known.
pub const STANDBY_CODE: &str = "standby";

/// How long a client of several scheduler instances keeps trying when none of them is active
/// (a failover in progress): longer than a lease takes to expire.
pub const FAILOVER_PATIENCE: Duration = Duration::from_secs(20);

/// How long one request to one of several scheduler instances may take before the next is
/// tried (a paused instance holds connections open).
pub const FAILOVER_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of a pool's scheduler, signing every request with the worker's wallet
/// ([`poco_primitives::request`]: unix seconds and a random nonce, so concurrent requests need
/// no coordination).
///
/// A pool may run several scheduler instances, one of them active: given their URLs
/// ([`SchedulerClient::with_urls`]), the client sends each request to the instance that last
/// answered, and moves on to the next (to the one a standby names, when it is in the list) when
/// an instance cannot be reached or answers that it is a standby, for up to
/// [`FAILOVER_PATIENCE`]. Each attempt is signed anew, so no instance refuses it as a replay.
#[derive(Debug)]
pub struct SchedulerClient {
    urls: Vec<String>,
    current: AtomicUsize,
    http: reqwest::Client,
    wallet: PrivateKeySigner,
}

/// Why one attempt failed.
enum Attempt {
    /// Another instance may answer: this one is unreachable, or not the active one (the URL it
    /// names, if any).
    Elsewhere(Error, Option<String>),
    /// The answer stands.
    Final(Error),
}

impl SchedulerClient {
    /// A client of the scheduler at `url`, signing with `wallet`.
    pub fn new(url: &str, wallet: PrivateKeySigner) -> Self {
        Self::with_urls(&[url.to_owned()], wallet)
    }

    /// A client of the scheduler instances at `urls` (at least one; the first is tried first),
    /// signing with `wallet`.
    pub fn with_urls(urls: &[String], wallet: PrivateKeySigner) -> Self {
        let mut urls: Vec<String> =
            urls.iter().map(|url| url.trim().trim_end_matches('/').to_owned()).collect();
        urls.dedup();
        if urls.is_empty() {
            urls.push(String::new());
        }
        let timeout =
            if urls.len() > 1 { FAILOVER_REQUEST_TIMEOUT } else { crate::http::REQUEST_TIMEOUT };
        let http = crate::http::client(timeout);
        Self { urls, current: AtomicUsize::new(0), http, wallet }
    }

    /// The URL of the instance requests go to now.
    pub fn url(&self) -> &str {
        &self.urls[self.current.load(Ordering::Relaxed) % self.urls.len()]
    }

    /// Every instance's URL, in the order given.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    fn fail(&self, message: String) -> Error {
        Error::Scheduler { url: self.url().to_owned(), message }
    }

    /// Sends `method path` with `body` (JSON when not empty), signed by the wallet, to the
    /// active instance; the answer's JSON, `None` when it is empty.
    async fn signed<R: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Option<R>> {
        let several = self.urls.len() > 1;
        let deadline = std::time::Instant::now() + FAILOVER_PATIENCE;
        loop {
            let mut last = None;
            for _ in 0..self.urls.len() {
                let index = self.current.load(Ordering::Relaxed) % self.urls.len();
                let url = &self.urls[index];
                match self.attempt(url, method.clone(), path, &body).await {
                    Ok(answer) => return Ok(answer),
                    Err(Attempt::Final(error)) => return Err(error),
                    Err(Attempt::Elsewhere(error, _)) if !several => return Err(error),
                    Err(Attempt::Elsewhere(error, active)) => {
                        let named = active
                            .map(|active| active.trim_end_matches('/').to_owned())
                            .and_then(|active| self.urls.iter().position(|u| *u == active))
                            .filter(|&named| named != index);
                        let next = named.unwrap_or((index + 1) % self.urls.len());
                        debug!(%error, next = %self.urls[next], "trying another scheduler instance");
                        let _ = self.current.compare_exchange(
                            index,
                            next,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                        last = Some(error);
                    }
                }
            }
            let error = last.unwrap_or_else(|| self.fail("no scheduler instance".into()));
            if std::time::Instant::now() >= deadline {
                warn!(%error, "no scheduler instance is active");
                return Err(error);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// One attempt at the instance at `url`.
    async fn attempt<R: DeserializeOwned>(
        &self,
        url: &str,
        method: reqwest::Method,
        path: &str,
        body: &[u8],
    ) -> Result<Option<R>, Attempt> {
        let fail = |message: String| Error::Scheduler { url: url.to_owned(), message };
        let signed = SignedRequest::fresh(method.as_str(), path, body)
            .headers_signed_by(&self.wallet)
            .map_err(|e| Attempt::Final(e.into()))?;
        let mut request = self.http.request(method, format!("{url}{path}"));
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let response = request
            .send()
            .await
            .map_err(|e| Attempt::Elsewhere(fail(poco_primitives::error::causes(&e)), None))?;
        let status = response.status();
        let text =
            response.text().await.map_err(|e| Attempt::Elsewhere(fail(e.to_string()), None))?;
        if !status.is_success() {
            let refusal = crate::http::Refusal::read(status, text.as_bytes());
            let error = fail(format!("{status}: {}", refusal.message));
            if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                let active = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|body| body.get("active")?.as_str().map(str::to_owned));
                return Err(Attempt::Elsewhere(error, active));
            }
            return Err(Attempt::Final(error));
        }
        if text.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Attempt::Final(fail(format!("unexpected answer: {e}"))))
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, atomic::AtomicUsize};

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// A scheduler instance on 127.0.0.1 answering every request with `status` and the JSON
    /// `body` (built from the instance's own URL); returns its URL and how many requests it got.
    async fn instance(
        status: &'static str,
        body: impl Fn(&str) -> String + Send + 'static,
    ) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let asked = Arc::new(AtomicUsize::new(0));
        let (counter, own) = (asked.clone(), url.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 8192];
                let _ = socket.read(&mut request).await;
                counter.fetch_add(1, Ordering::SeqCst);
                let body = body(&own);
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        (url, asked)
    }

    /// The active instance: it has no work to give.
    async fn active() -> (String, Arc<AtomicUsize>) {
        instance("200 OK", |_| r#"{"assignments":[]}"#.to_owned()).await
    }

    /// A standby naming `active` as the active instance.
    async fn standby(active: &str) -> (String, Arc<AtomicUsize>) {
        let active = active.to_owned();
        instance("503 Service Unavailable", move |_| {
            format!(r#"{{"error":"standby","code":"{STANDBY_CODE}","active":"{active}"}}"#)
        })
        .await
    }

    /// A URL nothing listens at.
    async fn unreachable() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    fn client(urls: &[&String]) -> SchedulerClient {
        let urls: Vec<String> = urls.iter().map(|url| (*url).clone()).collect();
        SchedulerClient::with_urls(&urls, PrivateKeySigner::random())
    }

    #[tokio::test]
    async fn a_standby_sends_the_client_to_the_active_instance_it_names() {
        let (active, active_asked) = active().await;
        let skipped = unreachable().await;
        let (standby, standby_asked) = standby(&active).await;
        let client = client(&[&standby, &skipped, &active]);
        assert!(client.work(2).await.unwrap().assignments.is_empty());
        assert_eq!(client.url(), active, "later requests go straight to the active one");
        client.work(2).await.unwrap();
        assert_eq!(standby_asked.load(Ordering::SeqCst), 1);
        assert_eq!(active_asked.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_unreachable_or_silent_instance_is_passed_over() {
        let (active, _) = active().await;
        let down = unreachable().await;
        // A paused process: the kernel accepts connections, nobody answers.
        let paused = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = format!("http://{}", paused.local_addr().unwrap());
        let client = client(&[&down, &silent, &active]);
        let started = std::time::Instant::now();
        client.work(1).await.unwrap();
        assert_eq!(client.url(), active);
        assert!(
            started.elapsed() < FAILOVER_REQUEST_TIMEOUT * 2,
            "a silent instance is given up after {FAILOVER_REQUEST_TIMEOUT:?}"
        );
    }

    #[tokio::test]
    async fn a_refusal_other_than_standby_stands() {
        let (forbidden, _) = instance("401 Unauthorized", |_| {
            r#"{"error":"bad signature","code":"bad_signature"}"#.to_owned()
        })
        .await;
        let (active, active_asked) = active().await;
        let error = client(&[&forbidden, &active]).work(1).await.unwrap_err().to_string();
        assert!(error.contains("401") && error.contains("bad signature"), "{error}");
        assert_eq!(active_asked.load(Ordering::SeqCst), 0, "a refusal is not retried elsewhere");
    }

    #[tokio::test]
    async fn a_lone_standby_is_an_error_at_once() {
        let (standby, asked) = standby("http://127.0.0.1:9").await;
        let started = std::time::Instant::now();
        let error = client(&[&standby]).work(1).await.unwrap_err().to_string();
        assert!(error.contains("503"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2), "no waiting with one instance");
        assert_eq!(asked.load(Ordering::SeqCst), 1);
    }
}
