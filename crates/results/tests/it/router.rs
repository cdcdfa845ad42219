//! The router without a socket (`oneshot`): health, metrics, error shapes of requests refused
//! before any chain access.

use alloy::primitives::{Address, B256};
use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use poco_api::{http::ErrorBody, results::auth};
use poco_primitives::request::{format_nonce, random_nonce, unix_seconds};
use poco_results::{Config, ResultStore, StorageConfig};
use tower::ServiceExt;

/// A store whose chain is never reached (nothing listens on port 9).
async fn store(dir: &std::path::Path) -> ResultStore {
    let mut config = Config::new("http://127.0.0.1:9", Address::repeat_byte(1));
    config.storage = StorageConfig::Local { root: dir.join("results") };
    ResultStore::open(config).await.expect("the store opens")
}

async fn call(store: &ResultStore, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = store.router().oneshot(request).await.expect("a response");
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.expect("a body");
    (status, body.to_vec())
}

fn error(body: &[u8]) -> ErrorBody {
    serde_json::from_slice(body).expect("a JSON error body")
}

#[tokio::test]
async fn health_metrics_and_refusals_before_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();

    let (status, body) = call(&store, get("/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["status"], "ok");

    let (status, body) = call(&store, get("/nowhere")).await;
    assert_eq!((status, error(&body).code.as_str()), (StatusCode::NOT_FOUND, "not_found"));

    let (status, body) = call(&store, get("/results/not-a-task")).await;
    let body = error(&body);
    assert_eq!((status, body.code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    assert!(body.error.contains("task id"), "{}", body.error);

    let task = B256::repeat_byte(5);
    let (status, _) =
        call(&store, Request::head(format!("/results/{task}")).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(&store, get(&format!("/results/{task}/challenge"))).await;
    assert_eq!((status, error(&body).code.as_str()), (StatusCode::NOT_FOUND, "unknown_result"));

    // An upload without its deal reference, then without any signature.
    let put = Request::put(format!("/results/{task}")).body(Body::from("x")).unwrap();
    let (status, body) = call(&store, put).await;
    let body = error(&body);
    assert_eq!((status, body.code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    assert!(body.error.contains(auth::HEADER_DEAL_ID), "{}", body.error);
    let put = Request::put(format!("/results/{task}"))
        .header(auth::HEADER_DEAL_ID, B256::ZERO.to_string())
        .header(auth::HEADER_TASK_INDEX, "0")
        .body(Body::from("x"))
        .unwrap();
    let (status, body) = call(&store, put).await;
    let body = error(&body);
    assert_eq!((status, body.code.as_str()), (StatusCode::UNAUTHORIZED, "missing_auth"));
    assert!(body.error.contains(auth::HEADER_WORKER), "{}", body.error);

    let (status, body) = call(&store, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("poco_results_errors_total{code=\"missing_auth\"} 1"), "{text}");
    assert!(text.contains("poco_results_http_responses_total{status=\"404\"} 3"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_stuck_on_the_chain_times_out() {
    // A "chain" that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        Config::new(format!("http://{}", silent.local_addr().unwrap()), Address::repeat_byte(1));
    config.storage = StorageConfig::Local { root: dir.path().join("results") };
    config.request_timeout = std::time::Duration::from_millis(500);
    let store = ResultStore::open(config).await.unwrap();

    let worker = alloy::signers::local::PrivateKeySigner::random();
    let task = B256::repeat_byte(5);
    let path = format!("/results/{task}");
    let body = b"archive".to_vec();
    let timestamp = unix_seconds();
    let nonce = random_nonce();
    let signed = auth::SignedRequest {
        method: "PUT",
        path: &path,
        timestamp,
        nonce,
        body_sha256: auth::sha256(&body),
    };
    let request = Request::put(&path)
        .header(auth::HEADER_DEAL_ID, B256::ZERO.to_string())
        .header(auth::HEADER_TASK_INDEX, "0")
        .header(auth::HEADER_WORKER, worker.address().to_string())
        .header(auth::HEADER_TIMESTAMP, timestamp.to_string())
        .header(auth::HEADER_REQUEST_NONCE, format_nonce(&nonce))
        .header(auth::HEADER_CONTENT_SHA256, auth::sha256(&body).to_string())
        .header(auth::HEADER_UPLOAD_TICKET, format!("0x{}", "00".repeat(65)))
        .header(auth::HEADER_SIGNATURE, signed.sign(&worker).unwrap().to_string())
        .body(Body::from(body))
        .unwrap();
    let (status, body) =
        tokio::time::timeout(std::time::Duration::from_secs(30), call(&store, request))
            .await
            .expect("the store answers in time");
    assert_eq!((status, error(&body).code.as_str()), (StatusCode::REQUEST_TIMEOUT, "timeout"));
    drop(silent);
}
