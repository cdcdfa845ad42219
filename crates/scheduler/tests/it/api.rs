//! The worker API refuses what it must: unsigned, forged, replayed or unregistered requests,
//! reports about tasks a worker was not given, malformed bodies.

use poco_primitives::pool::{Report, WorkRequest};

use crate::{Pool, now_ms};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_forged_replayed_and_unregistered_requests_are_refused() {
    let pool = Pool::start(2).await;
    let worker = pool.worker(0);
    let body = serde_json::to_vec(&WorkRequest { free_slots: 1 }).unwrap();

    // Not registered yet.
    let (status, text) = worker.post_raw("/work", &body, now_ms()).await;
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
    let timestamp = now_ms();
    let signature =
        poco_primitives::pool::sign_request(&impostor.key, "POST", "/work", timestamp, &body)
            .unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/work", pool.url))
        .header("x-poco-address", worker.address().to_string())
        .header("x-poco-timestamp", timestamp.to_string())
        .header("x-poco-signature", signature.to_string())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    // A signed request works once; the same bytes again are a replay.
    let timestamp = now_ms() + 10;
    let (status, _) = worker.post_raw("/work", &body, timestamp).await;
    assert_eq!(status, 200);
    let (status, text) = worker.post_raw("/work", &body, timestamp).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("replayed"), "{text}");

    // A timestamp far in the past or future is stale.
    let (status, _) = worker.post_raw("/work", &body, now_ms() - 3_600_000).await;
    assert_eq!(status, 401);

    // A body that does not parse.
    let (status, text) = worker.post_raw("/work", b"{\"freeSlots\":", now_ms() + 20).await;
    assert_eq!(status, 400, "{text}");

    // A report about a task the worker was never given.
    let report = serde_json::to_vec(&Report::Failed {
        task_id: alloy::primitives::B256::repeat_byte(7),
        reason: "x".into(),
    })
    .unwrap();
    let (status, text) = worker.post_raw("/reports", &report, now_ms() + 30).await;
    assert_eq!(status, 403, "{text}");
}
