//! A JSON-RPC proxy that counts what goes through it: put in front of anvil (on 127.0.0.1),
//! it forwards every request unchanged and records the method of every call, so that a test
//! or a benchmark can say how many requests a client's read costs. Request counts are
//! deterministic, unlike timings: a test can bound them.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use tokio::{net::TcpListener, task::JoinHandle};

/// What went through the proxy since the last [`CountingProxy::take`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    /// HTTP requests (a batch is one).
    pub requests: u64,
    /// The method of every JSON-RPC call, in order (a batch adds each of its calls).
    pub methods: Vec<String>,
    /// Bytes of the answers.
    pub answer_bytes: u64,
}

impl Traffic {
    /// How many calls of `method` went through.
    pub fn count(&self, method: &str) -> usize {
        self.methods.iter().filter(|m| *m == method).count()
    }

    /// `method × count` for each method, most called first (then by name).
    pub fn summary(&self) -> String {
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for method in &self.methods {
            match counts.iter_mut().find(|(m, _)| m == method) {
                Some((_, n)) => *n += 1,
                None => counts.push((method, 1)),
            }
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let parts: Vec<String> = counts.iter().map(|(m, n)| format!("{m} ×{n}")).collect();
        parts.join(", ")
    }
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    http: reqwest::Client,
    traffic: Mutex<Traffic>,
}

/// The proxy, listening on 127.0.0.1 until dropped.
#[derive(Debug)]
pub struct CountingProxy {
    url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl CountingProxy {
    /// Starts a proxy of the JSON-RPC endpoint `upstream` on a free port of 127.0.0.1.
    pub async fn start(upstream: &str) -> Self {
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            http: reqwest::Client::new(),
            traffic: Mutex::new(Traffic::default()),
        });
        let listener =
            TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let app = Router::new().fallback(forward).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared, server }
    }

    /// The proxy's URL, to give the client instead of the upstream's.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What went through since the last call (or the start), and starts counting afresh.
    pub fn take(&self) -> Traffic {
        std::mem::take(&mut *self.shared.traffic.lock().expect("not poisoned"))
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The methods of a JSON-RPC request body: one, or those of a batch.
fn methods(body: &[u8]) -> Vec<String> {
    let method = |call: &serde_json::Value| {
        call.get("method").and_then(|m| m.as_str()).unwrap_or("(no method)").to_owned()
    };
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(calls)) => calls.iter().map(method).collect(),
        Ok(call) => vec![method(&call)],
        Err(_) => vec!["(not JSON)".to_owned()],
    }
}

async fn forward(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let called = methods(&body);
    let answer = shared
        .http
        .post(&shared.upstream)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let (status, bytes) = match answer {
        Ok(answer) => {
            let status =
                StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            match answer.bytes().await {
                Ok(bytes) => (status, bytes),
                Err(_) => (StatusCode::BAD_GATEWAY, Bytes::new()),
            }
        }
        Err(_) => (StatusCode::BAD_GATEWAY, Bytes::new()),
    };
    {
        let mut traffic = shared.traffic.lock().expect("not poisoned");
        traffic.requests += 1;
        traffic.methods.extend(called);
        traffic.answer_bytes += bytes.len() as u64;
    }
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}
