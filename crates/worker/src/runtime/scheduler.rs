//! The worker's side of the workerpool protocol: signed requests to its scheduler.

use std::sync::Mutex;

use alloy::signers::local::PrivateKeySigner;
use poco_primitives::pool::{
    HEADER_ADDRESS, HEADER_SIGNATURE, HEADER_TIMESTAMP, Heartbeat, HeartbeatResponse, PoolInfo,
    Registration, Report, WorkRequest, WorkResponse, sign_request,
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{Error, Result};

/// A client of one scheduler, signing every request with the worker's wallet.
#[derive(Debug)]
pub(crate) struct SchedulerClient {
    url: String,
    http: reqwest::Client,
    wallet: PrivateKeySigner,
    last_timestamp: Mutex<u64>,
}

impl SchedulerClient {
    pub(crate) fn new(url: &str, wallet: PrivateKeySigner) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("a default HTTP client");
        Self {
            url: url.trim_end_matches('/').to_owned(),
            http,
            wallet,
            last_timestamp: Mutex::new(0),
        }
    }

    /// A timestamp later than any this client used: the scheduler refuses the others.
    fn timestamp(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let mut last = self.last_timestamp.lock().expect("lock");
        *last = now.max(*last + 1);
        *last
    }

    async fn post<T: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<Option<R>> {
        let fail = |message: String| Error::Scheduler { url: self.url.clone(), message };
        let body = serde_json::to_vec(body).map_err(|e| fail(e.to_string()))?;
        let timestamp = self.timestamp();
        let signature = sign_request(&self.wallet, "POST", path, timestamp, &body)?;
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header(HEADER_ADDRESS, self.wallet.address().to_string())
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, signature.to_string())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or(text);
            return Err(fail(format!("{status}: {message}")));
        }
        if text.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text).map(Some).map_err(|e| fail(format!("unexpected answer: {e}")))
    }

    pub(crate) async fn register(&self, registration: &Registration) -> Result<PoolInfo> {
        self.post("/workers/register", registration).await?.ok_or_else(|| Error::Scheduler {
            url: self.url.clone(),
            message: "empty answer to a registration".into(),
        })
    }

    pub(crate) async fn heartbeat(&self, beat: &Heartbeat) -> Result<HeartbeatResponse> {
        Ok(self.post("/workers/heartbeat", beat).await?.unwrap_or_default())
    }

    pub(crate) async fn work(&self, free_slots: u32) -> Result<WorkResponse> {
        Ok(self.post("/work", &WorkRequest { free_slots }).await?.unwrap_or_default())
    }

    pub(crate) async fn report(&self, report: &Report) -> Result<()> {
        self.post::<_, serde_json::Value>("/reports", report).await.map(|_| ())
    }
}
