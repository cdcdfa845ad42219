//! The router without a socket or a chain (`oneshot`): malformed input of every sort gets its
//! 4xx with a JSON error, and the stored book is unchanged, on SQLite and (ignored unless
//! asked) PostgreSQL.

use std::sync::Arc;

use alloy::{
    primitives::{Address, B256, U256},
    signers::local::PrivateKeySigner,
};
use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use poco_market::{
    Limits, Market,
    api::{ApiState, CorsOrigins, router},
    chain::EmptyChain,
    store::{self, ChainBatch, ChainEvent, LocatedChainEvent, Store},
};
use poco_primitives::{AppOrder, Order, OrderKind, PocoDomain, Signed};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::{self, Db};

struct Fixture {
    app: axum::Router,
    store: Arc<dyn Store>,
    order: serde_json::Value,
    owner: PrivateKeySigner,
    db: Db,
    _stop: tokio::sync::watch::Sender<bool>,
}

const APP: Address = Address::repeat_byte(0xaa);
const CHAIN_ID: u64 = 31337;

/// The router on a SQLite file, with one open app order published.
async fn fixture(limits: Limits) -> Fixture {
    fixture_on(harness::sqlite(), limits).await
}

/// The router on `db`, with one open app order published.
async fn fixture_on(db: Db, limits: Limits) -> Fixture {
    let store = store::open(&db.url, 2).await.unwrap();
    let owner = PrivateKeySigner::from_bytes(&B256::repeat_byte(7)).unwrap();
    // The mirror learns that the app exists and who owns it.
    let applied = store
        .apply_batch(ChainBatch {
            from: 0,
            next: 1,
            events: vec![LocatedChainEvent {
                event: ChainEvent::AssetTransfer {
                    kind: OrderKind::App,
                    asset: APP,
                    from: Address::ZERO,
                    to: owner.address(),
                },
                block: 0,
                transaction: B256::ZERO,
                log_index: 0,
            }],
            balances: vec![],
            balance_block: 0,
        })
        .await
        .unwrap();
    assert!(applied);
    let domain = PocoDomain::new(CHAIN_ID, Address::repeat_byte(1));
    let market = Market::new(store.clone(), Arc::new(EmptyChain), domain, limits);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let app = router(ApiState::new(market, stopped));
    let order =
        AppOrder { app: APP, appprice: U256::from(5), volume: U256::from(2), ..Default::default() }
            .sign(&owner, &domain)
            .unwrap();
    let order = serde_json::to_value(order).unwrap();
    let fixture = Fixture { app, store, order, owner, db, _stop: stop };
    let (status, body) =
        fixture.call("POST", "/apporders", Body::from(fixture.order.to_string())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    fixture
}

impl Fixture {
    async fn call(&self, method: &str, uri: &str, body: Body) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(body)
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Sends a request that must be refused with `status` and `code`, and checks the book did
    /// not change.
    async fn refused(
        &self,
        method: &str,
        uri: &str,
        body: impl Into<Body>,
        status: StatusCode,
        code: &str,
    ) {
        let before = self.book().await;
        let (got, answer) = self.call(method, uri, body.into()).await;
        assert_eq!(got, status, "{method} {uri}: {answer}");
        assert_eq!(answer["code"], code, "{method} {uri}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{answer}");
        assert_eq!(self.book().await, before, "{method} {uri} changed the book");
    }

    async fn book(&self) -> (Value, [u64; 4]) {
        let (_, page) = self
            .call("GET", "/apporders?dataset=any&workerpool=any&requester=any", Body::empty())
            .await;
        (page, self.store.open_counts().await.unwrap())
    }

    /// Drops the store, then the database.
    async fn cleanup(self) {
        let Self { app, store, db, .. } = self;
        drop(app);
        drop(store);
        db.cleanup().await;
    }
}

fn with(order: &Value, field: &str, value: Value) -> String {
    let mut order = order.clone();
    order[field] = value;
    order.to_string()
}

#[tokio::test]
async fn malformed_bodies_are_refused() {
    let f = fixture(Limits::default()).await;
    malformed_bodies(&f).await;
}

async fn malformed_bodies(f: &Fixture) {
    let order = f.order.clone();
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    f.refused("POST", "/apporders", "{\"app\": ", StatusCode::BAD_REQUEST, "malformed_json").await;
    f.refused("POST", "/apporders", "", StatusCode::BAD_REQUEST, "malformed_json").await;
    f.refused("POST", "/apporders", "[1, 2]", unprocessable, "invalid_order").await;
    f.refused(
        "POST",
        "/apporders",
        with(&order, "appprice", json!(true)),
        unprocessable,
        "invalid_order",
    )
    .await;
    f.refused(
        "POST",
        "/apporders",
        with(&order, "appprice", json!(-1)),
        unprocessable,
        "invalid_order",
    )
    .await;
    f.refused(
        "POST",
        "/apporders",
        with(&order, "app", json!("0x12")),
        unprocessable,
        "invalid_order",
    )
    .await;
    f.refused(
        "POST",
        "/apporders",
        with(&order, "volume", json!(format!("{}0", U256::MAX))),
        unprocessable,
        "invalid_order",
    )
    .await;
    f.refused(
        "POST",
        "/apporders",
        with(&order, "surprise", json!(1)),
        unprocessable,
        "invalid_order",
    )
    .await;
    let mut missing = order.clone();
    missing.as_object_mut().unwrap().remove("salt");
    f.refused("POST", "/apporders", missing.to_string(), unprocessable, "invalid_order").await;
    // An app order where a workerpool order is expected.
    f.refused("POST", "/workerpoolorders", order.to_string(), unprocessable, "invalid_order").await;
    // Values no match can accept.
    f.refused(
        "POST",
        "/apporders",
        with(&order, "volume", json!("0")),
        unprocessable,
        "invalid_value",
    )
    .await;
    f.refused(
        "POST",
        "/apporders",
        with(&order, "appprice", json!((U256::from(1_u64) << 96_usize).to_string())),
        unprocessable,
        "invalid_value",
    )
    .await;
    // Forged: the signature no longer matches the order.
    f.refused(
        "POST",
        "/apporders",
        with(&order, "appprice", json!("4")),
        unprocessable,
        "signer_not_owner",
    )
    .await;
    f.refused(
        "POST",
        "/apporders",
        with(&order, "sign", json!("0x1234")),
        unprocessable,
        "invalid_signature",
    )
    .await;
    // Replayed: the owner's signature of this order for another chain, or another Poco.
    let order_of =
        |value: &Value| serde_json::from_value::<Signed<AppOrder>>(value.clone()).unwrap().order;
    for domain in [
        PocoDomain::new(CHAIN_ID + 1, Address::repeat_byte(1)),
        PocoDomain::new(CHAIN_ID, Address::repeat_byte(2)),
    ] {
        let elsewhere = AppOrder { salt: B256::repeat_byte(0x44), ..order_of(&order) }
            .sign(&f.owner, &domain)
            .unwrap();
        let body = serde_json::to_string(&elsewhere).unwrap();
        f.refused("POST", "/apporders", body, unprocessable, "signer_not_owner").await;
    }
    // Not registered (the chain knows nothing either), even when signed by a known owner.
    f.refused(
        "POST",
        "/apporders",
        with(&order, "app", json!(Address::repeat_byte(0xbb).to_string())),
        unprocessable,
        "asset_not_registered",
    )
    .await;
    let ghost = AppOrder { app: Address::repeat_byte(0xbb), ..order_of(&order) }
        .sign(&f.owner, &PocoDomain::new(CHAIN_ID, Address::repeat_byte(1)))
        .unwrap();
    let body = serde_json::to_string(&ghost).unwrap();
    f.refused("POST", "/apporders", body, unprocessable, "asset_not_registered").await;
}

#[tokio::test]
async fn huge_bodies_are_refused() {
    let f = fixture(Limits { max_body_bytes: 4_096, ..Limits::default() }).await;
    huge_bodies(&f).await;
    // The default limit, with a body of several megabytes.
    let f = fixture(Limits::default()).await;
    let huge = with(&f.order, "salt", json!("0x".to_owned() + &"00".repeat(2 << 20)));
    f.refused("POST", "/apporders", huge, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
}

async fn huge_bodies(f: &Fixture) {
    let huge = with(&f.order, "salt", json!("0x".to_owned() + &"00".repeat(10_000)));
    f.refused("POST", "/apporders", huge.clone(), StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
        .await;
    let hash = B256::repeat_byte(1);
    f.refused(
        "POST",
        &format!("/apporders/{hash}/unpublish"),
        huge.clone(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    )
    .await;
    // Streamed without a length.
    let chunks = huge
        .into_bytes()
        .chunks(1_000)
        .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
        .collect::<Vec<_>>();
    let streamed = Body::from_stream(futures::stream::iter(chunks));
    f.refused("POST", "/apporders", streamed, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
        .await;
}

#[tokio::test]
async fn unknown_and_malformed_query_parameters_are_refused() {
    let f = fixture(Limits::default()).await;
    malformed_queries(&f).await;
}

async fn malformed_queries(f: &Fixture) {
    let bad = StatusCode::BAD_REQUEST;
    for uri in [
        "/apporders?surprise=1",
        "/apporders?category=1",
        "/apporders?minTrust=1",
        "/datasetorders?maxTrust=1",
        "/requestorders?minTrust=1",
        "/apporders?app=0x12",
        "/apporders?minTag=nonsense",
        "/apporders?minVolume=-1",
        "/apporders?limit=0",
        "/apporders?limit=100000",
        "/apporders?cursor=zz",
        "/apporders?datasetStrict=maybe",
        "/workerpoolorders?category=two",
        "/deals?surprise=1",
        "/deals?cursor=00",
        "/health?verbose=1",
        "/categories?all=1",
        "/bestmatch?app=0x0000000000000000000000000000000000000001",
        "/bestmatch?app=0x0000000000000000000000000000000000000001&requester=0x0000000000000000000000000000000000000002&category=0&appmaxprice=1&workerpoolmaxprice=1&volume=0",
        "/ws?kind=everything",
        "/ws?surprise=1",
    ] {
        f.refused("GET", uri, Body::empty(), bad, "invalid_query").await;
    }
}

/// The same refusals with the book in PostgreSQL.
#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn bad_input_is_refused_on_postgres() {
    let f = fixture_on(
        harness::postgres().await,
        Limits { max_body_bytes: 4_096, ..Limits::default() },
    )
    .await;
    malformed_bodies(&f).await;
    huge_bodies(&f).await;
    malformed_queries(&f).await;
    f.cleanup().await;
}

#[tokio::test]
async fn bad_paths_and_methods_are_json_errors() {
    let f = fixture(Limits::default()).await;
    f.refused("GET", "/apporders/0x12", Body::empty(), StatusCode::BAD_REQUEST, "invalid_path")
        .await;
    f.refused("GET", "/deals/nothex", Body::empty(), StatusCode::BAD_REQUEST, "invalid_path").await;
    for malformed in
        ["nothex", "0x12", "0xzz00000000000000000000000000000000000000000000000000000000000000"]
    {
        let uri = format!("/tasks/{malformed}");
        f.refused("GET", &uri, Body::empty(), StatusCode::BAD_REQUEST, "invalid_path").await;
    }
    let hash = B256::repeat_byte(3);
    f.refused(
        "GET",
        &format!("/apporders/{hash}"),
        Body::empty(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    f.refused("GET", &format!("/deals/{hash}"), Body::empty(), StatusCode::NOT_FOUND, "not_found")
        .await;
    f.refused("GET", &format!("/tasks/{hash}"), Body::empty(), StatusCode::NOT_FOUND, "not_found")
        .await;
    let uri = format!("/tasks/{hash}?deal=1");
    f.refused("GET", &uri, Body::empty(), StatusCode::BAD_REQUEST, "invalid_query").await;
    f.refused(
        "POST",
        &format!("/tasks/{hash}"),
        Body::empty(),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    f.refused("GET", "/nowhere", Body::empty(), StatusCode::NOT_FOUND, "not_found").await;
    f.refused(
        "DELETE",
        "/apporders",
        Body::empty(),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    f.refused("GET", "/ws", Body::empty(), StatusCode::UPGRADE_REQUIRED, "websocket_required")
        .await;
    // An app order's hash asked as a dataset order.
    let (_, page) = f.call("GET", "/apporders", Body::empty()).await;
    let app_hash = page["orders"][0]["orderHash"].as_str().unwrap().to_owned();
    f.refused(
        "GET",
        &format!("/datasetorders/{app_hash}"),
        Body::empty(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Unpublish bodies.
    let uri = format!("/apporders/{app_hash}/unpublish");
    f.refused("POST", &uri, "{", StatusCode::BAD_REQUEST, "malformed_json").await;
    f.refused(
        "POST",
        &uri,
        r#"{"expiry": "soon"}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_order",
    )
    .await;
    let expired = json!({ "expiry": 1, "nonce": B256::ZERO, "sign": "0x" }).to_string();
    f.refused("POST", &uri, expired, StatusCode::UNAUTHORIZED, "authorization_expired").await;
    let far = json!({ "expiry": u64::MAX, "nonce": B256::ZERO, "sign": "0x" }).to_string();
    f.refused("POST", &uri, far, StatusCode::UNAUTHORIZED, "authorization_expired").await;
    let soon = poco_market::model::now_s() + 60;
    let forged =
        json!({ "expiry": soon, "nonce": B256::ZERO, "sign": format!("0x{}", "11".repeat(65)) })
            .to_string();
    f.refused("POST", &uri, forged, StatusCode::FORBIDDEN, "not_order_owner").await;
}

#[tokio::test]
async fn requests_beyond_the_rate_limit_get_429() {
    let f = fixture(Limits { ip_rate_per_second: 0.001, ip_burst: 3.0, ..Limits::default() }).await;
    // The fixture's publication took one token.
    for _ in 0..2 {
        assert_eq!(f.call("GET", "/categories", Body::empty()).await.0, StatusCode::OK);
    }
    let request = Request::builder().uri("/categories").body(Body::empty()).unwrap();
    let response = f.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let f = fixture(Limits::default()).await;
    let (status, document) = f.call("GET", "/openapi.json", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.0.3");
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/apporders",
        "/apporders/{orderHash}",
        "/apporders/{orderHash}/unpublish",
        "/datasetorders",
        "/workerpoolorders",
        "/requestorders",
        "/requestorders/{orderHash}/unpublish",
        "/bestmatch",
        "/deals",
        "/deals/{dealId}",
        "/deals/{dealId}/tasks",
        "/tasks/{taskId}",
        "/tasks/{taskId}/events",
        "/accounts/{address}/events",
        "/categories",
        "/health",
        "/metrics",
        "/openapi.json",
        "/ws",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    // Each documented GET without parameters answers as documented.
    for path in ["/health", "/categories", "/openapi.json"] {
        assert_eq!(f.call("GET", path, Body::empty()).await.0, StatusCode::OK, "{path}");
    }
}

/// A request from a page of `origin`, or its browser's preflight for a `method` request.
async fn from_page(
    app: &axum::Router,
    method: &str,
    uri: &str,
    origin: &str,
    preflight_for: Option<&str>,
) -> axum::response::Response {
    let mut request = Request::builder().method(method).uri(uri).header("origin", origin);
    if let Some(wanted) = preflight_for {
        request = request
            .header("access-control-request-method", wanted)
            .header("access-control-request-headers", "content-type");
    }
    app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap()
}

fn header<'a>(response: &'a axum::response::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn cross_origin_requests_are_off_by_default_and_follow_the_listed_origins() {
    let f = fixture(Limits::default()).await;
    let page = "https://explorer.example.org";
    // Off: no page of another origin may read an answer, and nothing answers a preflight.
    let answer = from_page(&f.app, "GET", "/categories", page, None).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
    let answer = from_page(&f.app, "OPTIONS", "/apporders", page, Some("POST")).await;
    assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&answer, "access-control-allow-origin"), None);

    // On for one origin.
    let store = store::open(&f.db.url, 2).await.unwrap();
    let domain = PocoDomain::new(CHAIN_ID, Address::repeat_byte(1));
    let market = Market::new(store, Arc::new(EmptyChain), domain, Limits::default());
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let origins = CorsOrigins::parse(&[page.to_owned()]).unwrap();
    let app = router(ApiState::new(market, stopped).with_cors(origins));
    let answer =
        from_page(&app, "GET", "/apporders?dataset=any&workerpool=any&requester=any", page, None)
            .await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(header(&answer, "access-control-allow-origin"), Some(page));
    assert_eq!(header(&answer, "vary"), Some("origin"), "caches keep one answer per origin");
    assert_eq!(header(&answer, "access-control-allow-credentials"), None, "never credentials");
    let preflight = from_page(&app, "OPTIONS", "/apporders", page, Some("POST")).await;
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&preflight, "access-control-allow-origin"), Some(page));
    assert_eq!(header(&preflight, "access-control-allow-methods"), Some("GET, POST"));
    assert_eq!(header(&preflight, "access-control-allow-headers"), Some("content-type"));
    assert_eq!(header(&preflight, "access-control-allow-credentials"), None);
    // A refusal is readable by the allowed page too: it can tell its user why.
    let refused = from_page(&app, "POST", "/apporders", page, None).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&refused, "access-control-allow-origin"), Some(page));

    // Other origins, look-alikes included, read nothing and are told why at preflight.
    for stranger in ["https://evil.example", "https://explorer.example.org.evil.example", "null"] {
        let answer = from_page(&app, "GET", "/categories", stranger, None).await;
        assert_eq!(header(&answer, "access-control-allow-origin"), None, "{stranger}");
        let preflight = from_page(&app, "OPTIONS", "/apporders", stranger, Some("POST")).await;
        assert_eq!(preflight.status(), StatusCode::FORBIDDEN, "{stranger}");
        let bytes = axum::body::to_bytes(preflight.into_body(), usize::MAX).await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["code"], "cors_origin_not_allowed", "{body}");
    }
    // An OPTIONS that is not a preflight is no more than a method the API does not take.
    let answer = from_page(&app, "OPTIONS", "/apporders", page, None).await;
    assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED);
    drop(app);
    f.cleanup().await;
}

#[tokio::test]
async fn the_explorer_is_served_from_the_binary_with_a_strict_policy() {
    let f = fixture(Limits::default()).await;
    let get = |uri: &'static str| {
        let app = f.app.clone();
        async move {
            let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
            app.oneshot(request).await.unwrap()
        }
    };
    let page = get("/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(header(&page, "content-type"), Some("text/html; charset=utf-8"));
    let policy = header(&page, "content-security-policy").unwrap().to_owned();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"));
    assert_eq!(header(&page, "x-content-type-options"), Some("nosniff"));
    let bytes = axum::body::to_bytes(page.into_body(), usize::MAX).await.unwrap();
    let html = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(html.contains("src=\"/explorer/app.js\""), "{html}");
    assert!(!html.contains("http://") && !html.contains("https://"), "nothing from elsewhere");
    for (uri, content_type) in [
        ("/explorer/app.js", "text/javascript; charset=utf-8"),
        ("/explorer/app.css", "text/css; charset=utf-8"),
    ] {
        let file = get(uri).await;
        assert_eq!(file.status(), StatusCode::OK, "{uri}");
        assert_eq!(header(&file, "content-type"), Some(content_type), "{uri}");
    }
    let missing = get("/explorer/other.js").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    f.cleanup().await;
}
