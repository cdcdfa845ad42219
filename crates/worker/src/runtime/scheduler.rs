//! The worker's side of the workerpool protocol: signed requests to its scheduler, and the
//! bounds put on what the scheduler asks (a scheduler is a stranger).

use std::time::Duration;

use alloy::signers::local::PrivateKeySigner;
use poco_primitives::{
    pool::{
        Heartbeat, HeartbeatResponse, PoolInfo, Registration, Report, WorkRequest, WorkResponse,
    },
    request::SignedRequest,
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{Error, Result};

/// The most often a worker sends heartbeats, whatever its scheduler asks.
const SHORTEST_HEARTBEAT: Duration = Duration::from_millis(100);
/// The least often a worker sends heartbeats, whatever its scheduler asks.
const LONGEST_HEARTBEAT: Duration = Duration::from_secs(300);

/// How often to send heartbeats to a scheduler that asked for one every `asked_secs` seconds
/// ([`PoolInfo::heartbeat_interval_secs`]), kept within [`SHORTEST_HEARTBEAT`] and
/// [`LONGEST_HEARTBEAT`]: a negative or too short period gives the shortest, a too long or
/// infinite one the longest, and a value that is not a number the longest (the least load on
/// a scheduler that says nothing meaningful).
pub(crate) fn heartbeat_period(asked_secs: f64) -> Duration {
    match Duration::try_from_secs_f64(asked_secs) {
        Ok(period) => period.clamp(SHORTEST_HEARTBEAT, LONGEST_HEARTBEAT),
        Err(_) if asked_secs < 0.0 => SHORTEST_HEARTBEAT,
        Err(_) => LONGEST_HEARTBEAT,
    }
}

/// A client of one scheduler, signing every request with the worker's wallet
/// ([`poco_primitives::request`]: unix seconds and a random nonce, so concurrent requests need
/// no coordination).
#[derive(Debug)]
pub(crate) struct SchedulerClient {
    url: String,
    http: reqwest::Client,
    wallet: PrivateKeySigner,
}

impl SchedulerClient {
    pub(crate) fn new(url: &str, wallet: PrivateKeySigner) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a default HTTP client");
        Self { url: url.trim_end_matches('/').to_owned(), http, wallet }
    }

    async fn post<T: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<Option<R>> {
        let fail = |message: String| Error::Scheduler { url: self.url.clone(), message };
        let body = serde_json::to_vec(body).map_err(|e| fail(e.to_string()))?;
        let signed = SignedRequest::fresh("POST", path, &body).headers_signed_by(&self.wallet)?;
        let mut request = self.http.post(format!("{}{path}", self.url));
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        let response = request
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heartbeat_period_a_scheduler_asks_is_bounded() {
        let ms = Duration::from_millis;
        assert_eq!(heartbeat_period(0.2), ms(200));
        assert_eq!(heartbeat_period(2.0), ms(2_000));
        assert_eq!(heartbeat_period(0.0), SHORTEST_HEARTBEAT);
        assert_eq!(heartbeat_period(-0.0), SHORTEST_HEARTBEAT);
        assert_eq!(heartbeat_period(0.001), SHORTEST_HEARTBEAT);
        assert_eq!(heartbeat_period(-5.0), SHORTEST_HEARTBEAT);
        assert_eq!(heartbeat_period(f64::NEG_INFINITY), SHORTEST_HEARTBEAT);
        assert_eq!(heartbeat_period(86_400.0), LONGEST_HEARTBEAT);
        assert_eq!(heartbeat_period(1e300), LONGEST_HEARTBEAT);
        assert_eq!(heartbeat_period(f64::INFINITY), LONGEST_HEARTBEAT);
        assert_eq!(heartbeat_period(f64::NAN), LONGEST_HEARTBEAT);
        // A scheduler that still answered in milliseconds gets a heartbeat every 5 minutes,
        // not one every 2000 s.
        assert_eq!(heartbeat_period(2_000.0), LONGEST_HEARTBEAT);
    }
}
