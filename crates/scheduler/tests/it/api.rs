//! The worker API refuses what it must: unsigned, forged, stale, replayed or unregistered
//! requests, reports about tasks a worker was not given, malformed bodies; and it speaks
//! seconds.

use poco_api::pool::{Registration, Report, WorkRequest};
use poco_primitives::request::{RequestHeaders, unix_seconds};

use crate::{Database, Pool, eventually, sign};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_forged_replayed_and_unregistered_requests_are_refused() {
    let pool = Pool::start(2).await;
    let worker = pool.worker(0);
    let body = serde_json::to_vec(&WorkRequest { free_slots: 1 }).unwrap();

    // Not registered yet.
    let (status, text) = worker.post_raw("/work", &body, unix_seconds()).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("unknown_worker"), "{text}");

    let info = worker.register(2).await;
    assert_eq!(info.workerpool, pool.workerpool);
    assert_eq!(info.scheduler, pool.net.accounts().scheduler.address());

    // No signature at all.
    let response = reqwest::Client::new()
        .post(format!("{}/work", pool.url))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    // Signed by someone else under the worker's name.
    let impostor = pool.worker(1);
    let forged = RequestHeaders {
        address: worker.address(),
        ..impostor.sign_post("/work", &body, unix_seconds())
    };
    let (status, text) = worker.post_signed("/work", &body, &forged).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("bad_signature"), "{text}");

    // A signed request works once; the same bytes again are a replay.
    let signed = worker.sign_post("/work", &body, unix_seconds());
    let (status, _) = worker.post_signed("/work", &body, &signed).await;
    assert_eq!(status, 200);
    let (status, text) = worker.post_signed("/work", &body, &signed).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("replayed_request"), "{text}");

    // A timestamp far in the past or future is stale.
    for timestamp in [unix_seconds() - 3_600, unix_seconds() + 3_600] {
        let (status, text) = worker.post_raw("/work", &body, timestamp).await;
        assert_eq!(status, 401, "{text}");
        assert!(text.contains("replayed_request"), "{text}");
    }

    // A body that does not parse.
    let (status, text) = worker.post_raw("/work", b"{\"freeSlots\":", unix_seconds()).await;
    assert_eq!(status, 400, "{text}");

    // A report about a task the worker was never given.
    let report = serde_json::to_vec(&Report::Failed {
        task_id: alloy::primitives::B256::repeat_byte(7),
        reason: "x".into(),
    })
    .unwrap();
    let (status, text) = worker.post_raw("/reports", &report, unix_seconds()).await;
    assert_eq!(status, 403, "{text}");
}

/// Timestamps are unix seconds: one in milliseconds, as the scheduler used to take, is
/// thousands of years away and refused as stale, with a message that says seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_stamped_in_milliseconds_is_not_fresh() {
    let pool = Pool::start(1).await;
    let worker = pool.worker(0);
    worker.register(1).await;
    let body = serde_json::to_vec(&WorkRequest { free_slots: 1 }).unwrap();
    let (status, text) = worker.post_raw("/work", &body, unix_seconds() * 1000).await;
    assert_eq!(status, 401, "{text}");
    let error: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error["code"], "replayed_request", "{text}");
    assert!(error["error"].as_str().unwrap().contains("seconds"), "{text}");
    // A registration stamped in milliseconds is refused as well.
    let registration =
        serde_json::to_vec(&Registration { slots: 1, tee: false, version: "test".into() }).unwrap();
    let (status, text) =
        worker.post_raw("/workers/register", &registration, unix_seconds() * 1000).await;
    assert_eq!((status, text.contains("replayed_request")), (401, true), "{text}");
    // The same request in seconds passes.
    let (status, text) = worker.post_raw("/work", &body, unix_seconds()).await;
    assert_eq!(status, 200, "{text}");
}

/// Each signed request is accepted once, however it is sent again; two requests signed within
/// the same second by the same wallet are two requests (their nonces differ), both accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_accepted_once_and_two_in_one_second_both_are() {
    accepted_once(Pool::start(1).await).await;
}

/// The same with the accepted requests in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_request_is_accepted_once_and_two_in_one_second_both_are_on_postgres() {
    accepted_once(Pool::start_on(1, Database::postgres().await).await).await;
}

async fn accepted_once(pool: Pool) {
    let worker = pool.worker(0);
    let registration =
        serde_json::to_vec(&Registration { slots: 1, tee: false, version: "test".into() }).unwrap();
    let signed = worker.sign_post("/workers/register", &registration, unix_seconds());
    let (status, text) = worker.post_signed("/workers/register", &registration, &signed).await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = worker.post_signed("/workers/register", &registration, &signed).await;
    assert_eq!((status, text.contains("replayed_request")), (401, true), "{text}");

    let body = serde_json::to_vec(&WorkRequest { free_slots: 1 }).unwrap();
    let second = unix_seconds();
    let first = worker.sign_post("/work", &body, second);
    let other = worker.sign_post("/work", &body, second);
    assert_eq!(first.timestamp, other.timestamp);
    assert_ne!(first.nonce, other.nonce);
    assert_eq!(worker.post_signed("/work", &body, &first).await.0, 200);
    assert_eq!(worker.post_signed("/work", &body, &other).await.0, 200);
    for replay in [&first, &other] {
        let (status, text) = worker.post_signed("/work", &body, replay).await;
        assert_eq!((status, text.contains("replayed_request")), (401, true), "{text}");
    }
    pool.finish().await;
}

/// A nonce or a timestamp changed after signing: the signature no longer recovers to the
/// worker, and the request is refused (a captured request cannot be made new again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_nonce_or_timestamp_is_refused() {
    let pool = Pool::start(1).await;
    let worker = pool.worker(0);
    worker.register(1).await;
    let body = serde_json::to_vec(&WorkRequest { free_slots: 1 }).unwrap();
    let signed = worker.sign_post("/work", &body, unix_seconds() - 10);
    let mut nonce = signed.nonce;
    nonce[0] ^= 1;
    let forgeries = [
        RequestHeaders { nonce, ..signed.clone() },
        RequestHeaders { timestamp: signed.timestamp + 1, ..signed.clone() },
    ];
    for forged in &forgeries {
        let (status, text) = worker.post_signed("/work", &body, forged).await;
        assert_eq!(status, 401, "{forged:?}: {text}");
        assert!(text.contains("bad_signature"), "{text}");
    }
    // The genuine request was never spent by the forgeries.
    assert_eq!(worker.post_signed("/work", &body, &signed).await.0, 200);
}

/// The registration answer says the heartbeat period in seconds, and a task's log stamps its
/// entries in unix seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_on_the_wire_are_in_seconds() {
    let pool = Pool::start(1).await;
    let worker = pool.worker(0);
    let registration =
        serde_json::to_vec(&Registration { slots: 1, tee: false, version: "test".into() }).unwrap();
    let (status, text) = worker.post_raw("/workers/register", &registration, unix_seconds()).await;
    assert_eq!(status, 200, "{text}");
    let info: serde_json::Value = serde_json::from_str(&text).unwrap();
    let configured = pool.config().heartbeat_interval.as_secs_f64();
    assert_eq!(info["heartbeatIntervalSecs"].as_f64(), Some(configured), "{text}");
    assert!(info.get("heartbeatIntervalMs").is_none(), "{text}");

    let deal = pool.deal(1, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    eventually("the worker is given the task", || async { !worker.ask(1).await.is_empty() }).await;
    let path = format!("/tasks/{task_id}/logs");
    let read_logs = |key| {
        let headers = sign(key, "GET", &path, b"", unix_seconds());
        let mut request = reqwest::Client::new().get(format!("{}{path}", pool.url));
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        request.send()
    };
    let stranger = read_logs(&worker.key).await.unwrap();
    assert_eq!(stranger.status().as_u16(), 403, "only the requester reads the logs");
    let response = read_logs(&pool.net.accounts().requester).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let logs: serde_json::Value = response.json().await.unwrap();
    let entries = logs["logs"].as_array().unwrap();
    assert!(!entries.is_empty(), "{logs}");
    let now = unix_seconds() as f64;
    for entry in entries {
        let at = entry["at"].as_f64().unwrap_or_else(|| panic!("{entry}"));
        assert!((now - 120.0..=now + 1.0).contains(&at), "{entry} is not unix seconds");
        assert!(entry.get("atMs").is_none(), "{entry}");
    }
}
