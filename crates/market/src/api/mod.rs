//! The HTTP API: a thin axum shell over [`Market`].
//!
//! Every handler returns `Result<_, Error>`; [`Error`]'s `IntoResponse` is the one place
//! where failures become responses. Query strings refuse unknown parameters; bodies are read
//! with a size limit and parsed by the order types themselves (unknown fields refused). A
//! middleware finds the client (the socket's peer, or the client a trusted proxy names; an
//! IPv6 client is its /64), applies its rate limit and the request timeout and records
//! metrics. Publications and unpublications are also rate-limited per order owner, charged
//! once the signature is verified; refused ones are charged to the client that sent them.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use alloy::primitives::{Address, B256, U256};
use axum::{
    Json, Router,
    body::Body,
    extract::{ConnectInfo, MatchedPath, Path, Query, Request, State, rejection::QueryRejection},
    http::{HeaderValue, StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use poco_http::{ClientSlots, LogGate, ServerStats, client_of, forwarded_client};
use poco_primitives::{OrderKind, Tag, serde_helpers};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::sync::watch;
use tracing::warn;

pub use cors::CorsOrigins;
use poco_api::market::{BestMatch, OrderPage, Unpublish};
pub use poco_api::market::{DealPage, IndexedTask};

use crate::{
    error::{Error, Result},
    market::Market,
    matching::Wanted,
    model::{AnySigned, DealView, OrderView, kind_name, parse_order},
    store::{DealQuery, OrderQuery, Page, Published, RoleFilter},
};

mod cors;
mod explorer;
mod limits;
mod metrics;
pub mod openapi;
mod ws;

use limits::RateLimiter;
use metrics::Metrics;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    market: Arc<Market>,
    ip_limiter: Arc<RateLimiter<IpAddr>>,
    address_limiter: Arc<RateLimiter<Address>>,
    refused_limiter: Arc<RateLimiter<IpAddr>>,
    metrics: Arc<Metrics>,
    websockets: Arc<ClientSlots>,
    counters: Arc<LimitCounters>,
    gate: Arc<LogGate>,
    trusted_proxies: Arc<[IpAddr]>,
    public_url: Option<Arc<str>>,
    server_stats: Option<Arc<ServerStats>>,
    cors: Arc<CorsOrigins>,
    shutdown: watch::Receiver<bool>,
}

/// How often the API's limits acted (shown on `/metrics`).
#[derive(Debug, Default)]
struct LimitCounters {
    rate_limited: AtomicU64,
    websocket_refused: AtomicU64,
    websocket_idle_closed: AtomicU64,
    websocket_unread_dropped: AtomicU64,
}

/// The client of a request: its address (the socket's peer, or the client a trusted proxy
/// names), an IPv6 one reduced to its /64. Put in the request by the guard middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Client(pub(crate) IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().copied().unwrap_or_else(|| {
            let peer = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
            Self(client_of(peer))
        }))
    }
}

impl ApiState {
    /// The state of a router over `market`; WebSocket streams end when `shutdown` turns true.
    pub fn new(market: Arc<Market>, shutdown: watch::Receiver<bool>) -> Self {
        let limits = *market.limits();
        Self {
            market,
            ip_limiter: Arc::new(RateLimiter::new(limits.ip_rate_per_second, limits.ip_burst)),
            address_limiter: Arc::new(RateLimiter::new(
                limits.address_rate_per_second,
                limits.address_burst,
            )),
            refused_limiter: Arc::new(RateLimiter::new(
                limits.address_rate_per_second,
                limits.address_burst,
            )),
            metrics: Arc::new(Metrics::default()),
            websockets: ClientSlots::new(
                limits.max_websocket_clients_per_client,
                limits.max_websocket_clients,
            ),
            counters: Arc::new(LimitCounters::default()),
            gate: Arc::new(LogGate::default()),
            trusted_proxies: Arc::from(Vec::new()),
            public_url: None,
            server_stats: None,
            cors: Arc::new(CorsOrigins::default()),
            shutdown,
        }
    }

    /// Lets pages of these origins call the API from a browser (none by default).
    pub fn with_cors(mut self, origins: CorsOrigins) -> Self {
        self.cors = Arc::new(origins);
        self
    }

    /// Trusts the `Forwarded` / `X-Forwarded-For` headers of requests from these addresses
    /// (the operator's reverse proxies) to name the client.
    pub fn with_trusted_proxies(mut self, proxies: Vec<IpAddr>) -> Self {
        self.trusted_proxies = proxies.into();
        self
    }

    /// Names the URL clients reach the market at in its OpenAPI document (`servers`).
    pub fn with_public_url(mut self, url: Option<String>) -> Self {
        self.public_url = url.map(Arc::from);
        self
    }

    /// Shows the counters of the HTTP server on `/metrics`.
    pub fn with_server_stats(mut self, stats: Arc<ServerStats>) -> Self {
        self.server_stats = Some(stats);
        self
    }

    /// A refusal for `who`, counted and logged (once a minute per client).
    fn rate_limited(&self, client: Client, who: String, retry_after: std::time::Duration) -> Error {
        let count = self.counters.rate_limited.fetch_add(1, Ordering::Relaxed) + 1;
        if self.gate.allow(client.0) {
            warn!(target: "poco_market::limits", client = %client.0, %who, rate_limited = count, "rate limit reached");
        }
        Error::RateLimited { who, retry_after }
    }

    /// Refuses a write when the order owner's budget, or the client's budget of refused
    /// writes, is spent. Takes nothing: see [`Self::charge`].
    fn check_write(&self, client: Client, owner: Address) -> Result<()> {
        if let Err(retry_after) = self.address_limiter.peek(&owner) {
            return Err(self.rate_limited(client, format!("address {owner}"), retry_after));
        }
        if let Err(retry_after) = self.refused_limiter.peek(&client.0) {
            return Err(self.rate_limited(
                client,
                format!("ip {} (refused writes)", client.0),
                retry_after,
            ));
        }
        Ok(())
    }

    /// Charges a write: to `owner` when it went through (its signature was verified), to
    /// `client` when the client's input was refused.
    fn charge<T>(&self, client: Client, owner: Address, outcome: &Result<T>) {
        match outcome {
            Ok(_) => {
                let _ = self.address_limiter.check(&owner);
            }
            Err(e) if !e.is_server_error() => {
                let _ = self.refused_limiter.check(&client.0);
            }
            Err(_) => {}
        }
    }
}

/// The router of the whole API.
pub fn router(state: ApiState) -> Router {
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_document))
        .route("/categories", get(categories))
        .route("/bestmatch", get(best_match))
        .route("/deals", get(deals))
        .route("/deals/{deal_id}", get(deal))
        .route("/deals/{deal_id}/tasks", get(deal_tasks))
        .route("/tasks/{task_id}", get(task))
        .route("/tasks/{task_id}/events", get(task_events))
        .route("/accounts/{address}", get(account_funds))
        .route("/accounts/{address}/events", get(account_events))
        .route("/assets/{address}", get(asset))
        .route("/accounts/{address}/scores", get(scores))
        .route("/workerpools/{address}/workers", get(pool_workers))
        .route("/ws", get(ws::handler));
    for (path, body, content_type) in explorer::FILES {
        router = router.route(path, get(move || async move { explorer::file(body, content_type) }));
    }
    for kind in crate::model::KINDS {
        let base = format!("/{}orders", kind_name(kind));
        router = router
            .route(
                &base,
                get(move |state, query| list_orders(state, kind, query))
                    .post(move |state, client, body| publish(state, kind, client, body)),
            )
            .route(
                &format!("{base}/{{order_hash}}"),
                get(move |state, path| get_order(state, kind, path)),
            )
            .route(
                &format!("{base}/{{order_hash}}/unpublish"),
                post(move |state, client, path, body| unpublish(state, kind, client, path, body)),
            );
    }
    router
        .fallback(|| async { Error::NotFound("no such path (see /openapi.json)".into()) })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), cors::cors))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// The client, its rate limit, the timeout and metrics, around every request.
async fn guard(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    let client =
        Client(client_of(forwarded_client(peer, request.headers(), &state.trusted_proxies)));
    request.extensions_mut().insert(client);
    let timeout = state.market.limits().request_timeout;
    let response = match state.ip_limiter.check(&client.0) {
        Err(retry_after) => {
            state.rate_limited(client, format!("ip {}", client.0), retry_after).into_response()
        }
        Ok(()) => match tokio::time::timeout(timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => Error::Timeout(timeout).into_response(),
        },
    };
    state.metrics.record(&method, &route, response.status().as_u16(), started.elapsed());
    response
}

/// Parses a query string into `T`, refusing unknown parameters.
struct Params<T>(T);

impl<T: DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(Error::InvalidQuery(
                e.body_text().replace("Failed to deserialize query string: ", ""),
            )),
            Err(e) => Err(Error::InvalidQuery(e.body_text())),
        }
    }
}

/// Reads a body up to the configured size.
async fn read_body(state: &ApiState, body: Body) -> Result<axum::body::Bytes> {
    let limit = state.market.limits().max_body_bytes;
    axum::body::to_bytes(body, limit).await.map_err(|_| Error::BodyTooLarge { limit })
}

fn parse_hash(text: &str, what: &str) -> Result<B256> {
    B256::from_str(text).map_err(|_| {
        Error::InvalidPath(format!(
            "{what} must be 0x followed by 64 hexadecimal digits, not {text:?}"
        ))
    })
}

fn address(name: &str, text: &str) -> Result<Address> {
    serde_helpers::address::parse(text)
        .map_err(|reason| Error::InvalidQuery(format!("{name}: {reason}")))
}

fn opt_address(name: &str, text: Option<&String>) -> Result<Option<Address>> {
    text.map(|t| address(name, t)).transpose()
}

fn uint(name: &str, text: &str) -> Result<U256> {
    serde_helpers::uint256::parse(text)
        .map_err(|reason| Error::InvalidQuery(format!("{name}: {reason}")))
}

fn small(name: &str, text: Option<&String>) -> Result<Option<u64>> {
    text.map(|t| {
        t.parse::<u64>().map_err(|_| {
            Error::InvalidQuery(format!(
                "{name}: expected an integer from 0 to 2^64 - 1, got {t:?}"
            ))
        })
    })
    .transpose()
}

fn tag(name: &str, text: Option<&String>) -> Result<Option<Tag>> {
    text.map(|t| Tag::from_str(t).map_err(|e| Error::InvalidQuery(format!("{name}: {e}"))))
        .transpose()
}

/// A restriction filter: absent means unrestricted orders only, `any` no filter, an address
/// the orders allowed for it (restricted to it or unrestricted), strict only those restricted
/// to it.
fn restriction(name: &str, text: Option<&String>, strict: Option<bool>) -> Result<RoleFilter> {
    Ok(match text.map(String::as_str) {
        None => RoleFilter::Is(Address::ZERO),
        Some("any") => RoleFilter::Any,
        Some(text) => {
            let address = address(name, text)?;
            if strict == Some(true) {
                RoleFilter::Is(address)
            } else {
                RoleFilter::AllowedFor(address)
            }
        }
    })
}

fn page_size(state: &ApiState, limit: Option<&String>) -> Result<u32> {
    let limits = state.market.limits();
    match small("limit", limit)? {
        None => Ok(limits.default_page_size),
        Some(limit) if limit >= 1 && limit <= u64::from(limits.max_page_size) => Ok(limit as u32),
        Some(limit) => Err(Error::InvalidQuery(format!(
            "limit: {limit} is outside 1..={}",
            limits.max_page_size
        ))),
    }
}

/// Query parameters of the four orderbooks (each kind accepts its own subset).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BookParams {
    app: Option<String>,
    dataset: Option<String>,
    workerpool: Option<String>,
    requester: Option<String>,
    owner: Option<String>,
    category: Option<String>,
    min_trust: Option<String>,
    max_trust: Option<String>,
    min_tag: Option<String>,
    max_tag: Option<String>,
    min_volume: Option<String>,
    app_strict: Option<bool>,
    dataset_strict: Option<bool>,
    workerpool_strict: Option<bool>,
    requester_strict: Option<bool>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// The parameters `kind`'s book does not take.
fn refused_params(kind: OrderKind, p: &BookParams) -> Option<&'static str> {
    let present = [
        ("category", p.category.is_some()),
        ("minTrust", p.min_trust.is_some()),
        ("maxTrust", p.max_trust.is_some()),
        ("appStrict", p.app_strict.is_some()),
        ("datasetStrict", p.dataset_strict.is_some()),
        ("requesterStrict", p.requester_strict.is_some()),
        ("workerpoolStrict", p.workerpool_strict.is_some()),
    ];
    let refused: &[&str] = match kind {
        OrderKind::App => &["category", "minTrust", "maxTrust", "appStrict"],
        OrderKind::Dataset => &["category", "minTrust", "maxTrust", "datasetStrict"],
        OrderKind::Workerpool => &["maxTrust", "workerpoolStrict"],
        OrderKind::Request => &["minTrust", "appStrict", "datasetStrict", "requesterStrict"],
    };
    present.into_iter().find(|(name, present)| *present && refused.contains(name)).map(|(n, _)| n)
}

fn book_query(state: &ApiState, kind: OrderKind, p: &BookParams) -> Result<OrderQuery> {
    if let Some(name) = refused_params(kind, p) {
        return Err(Error::InvalidQuery(format!(
            "unknown field `{name}` for {} orders",
            kind_name(kind)
        )));
    }
    let mut query = OrderQuery::new(kind, page_size(state, p.limit.as_ref())?);
    query.owner = opt_address("owner", p.owner.as_ref())?;
    query.category = small("category", p.category.as_ref())?;
    query.min_trust = small("minTrust", p.min_trust.as_ref())?;
    query.max_trust = small("maxTrust", p.max_trust.as_ref())?;
    query.required_tag = tag("minTag", p.min_tag.as_ref())?;
    query.allowed_tag = tag("maxTag", p.max_tag.as_ref())?;
    query.min_remaining = p.min_volume.as_ref().map(|v| uint("minVolume", v)).transpose()?;
    if let Some(cursor) = &p.cursor {
        crate::store::OrderCursor::decode(cursor)?;
        query.after = Some(cursor.clone());
    }
    let exact = |name: &str, text: Option<&String>| -> Result<RoleFilter> {
        Ok(opt_address(name, text)?.map_or(RoleFilter::Any, RoleFilter::Is))
    };
    match kind {
        OrderKind::App => {
            query.asset = opt_address("app", p.app.as_ref())?;
            query.dataset = restriction("dataset", p.dataset.as_ref(), p.dataset_strict)?;
            query.workerpool =
                restriction("workerpool", p.workerpool.as_ref(), p.workerpool_strict)?;
            query.requester = restriction("requester", p.requester.as_ref(), p.requester_strict)?;
        }
        OrderKind::Dataset => {
            query.asset = opt_address("dataset", p.dataset.as_ref())?;
            query.app = restriction("app", p.app.as_ref(), p.app_strict)?;
            query.workerpool =
                restriction("workerpool", p.workerpool.as_ref(), p.workerpool_strict)?;
            query.requester = restriction("requester", p.requester.as_ref(), p.requester_strict)?;
        }
        OrderKind::Workerpool => {
            query.asset = opt_address("workerpool", p.workerpool.as_ref())?;
            query.app = restriction("app", p.app.as_ref(), p.app_strict)?;
            query.dataset = restriction("dataset", p.dataset.as_ref(), p.dataset_strict)?;
            query.requester = restriction("requester", p.requester.as_ref(), p.requester_strict)?;
        }
        OrderKind::Request => {
            query.asset = opt_address("app", p.app.as_ref())?;
            query.dataset = exact("dataset", p.dataset.as_ref())?;
            query.requester = exact("requester", p.requester.as_ref())?;
            query.workerpool =
                restriction("workerpool", p.workerpool.as_ref(), p.workerpool_strict)?;
        }
    }
    Ok(query)
}

impl From<Page<crate::model::OrderRecord>> for OrderPage {
    fn from(page: Page<crate::model::OrderRecord>) -> Self {
        let orders: Vec<OrderView> = page.items.iter().map(|r| r.view()).collect();
        Self { count: orders.len(), orders, next_cursor: page.next }
    }
}

async fn list_orders(
    State(state): State<ApiState>,
    kind: OrderKind,
    Params(params): Params<BookParams>,
) -> Result<Json<OrderPage>> {
    let query = book_query(&state, kind, &params)?;
    Ok(Json(state.market.orders(query).await?.into()))
}

async fn publish(
    State(state): State<ApiState>,
    kind: OrderKind,
    client: Client,
    body: Body,
) -> Result<Response> {
    let body = read_body(&state, body).await?;
    let order = parse_order(kind, &body)?;
    // The budget of the order's requester or asset: spent only by orders whose signature the
    // market verified, so a replay with a broken signature cannot spend it.
    let key = match &order {
        AnySigned::Request(o) => o.requester,
        other => other.asset(),
    };
    state.check_write(client, key)?;
    let outcome = state.market.publish(order).await;
    state.charge(client, key, &outcome);
    let (status, record) = match outcome? {
        Published::Created(record) | Published::Reopened(record) => (StatusCode::CREATED, record),
        Published::Existing(record) => (StatusCode::OK, record),
    };
    let mut response = (status, Json(record.view())).into_response();
    if let Ok(location) =
        HeaderValue::from_str(&format!("/{}orders/{}", kind_name(kind), record.hash))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn get_order(
    State(state): State<ApiState>,
    kind: OrderKind,
    Path(hash): Path<String>,
) -> Result<Json<OrderView>> {
    let hash = parse_hash(&hash, "orderHash")?;
    Ok(Json(state.market.order(kind, hash).await?.view()))
}

async fn unpublish(
    State(state): State<ApiState>,
    kind: OrderKind,
    client: Client,
    Path(hash): Path<String>,
    body: Body,
) -> Result<Json<OrderView>> {
    let hash = parse_hash(&hash, "orderHash")?;
    let body = read_body(&state, body).await?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| Error::MalformedJson(e.to_string()))?;
    let request: Unpublish = serde_json::from_value(value)
        .map_err(|e| Error::InvalidOrder(format!("unpublish: {e}")))?;
    let record = state.market.order(kind, hash).await?;
    state.check_write(client, record.owner)?;
    let outcome = state.market.unpublish(hash, &request).await;
    state.charge(client, record.owner, &outcome);
    Ok(Json(outcome?.view()))
}

/// Query parameters of `/bestmatch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BestMatchParams {
    app: String,
    dataset: Option<String>,
    workerpool: Option<String>,
    requester: String,
    beneficiary: Option<String>,
    category: String,
    trust: Option<String>,
    tag: Option<String>,
    appmaxprice: String,
    datasetmaxprice: Option<String>,
    workerpoolmaxprice: String,
    volume: Option<String>,
}

async fn best_match(
    State(state): State<ApiState>,
    Params(p): Params<BestMatchParams>,
) -> Result<Json<BestMatch>> {
    let wanted = Wanted {
        app: address("app", &p.app)?,
        dataset: opt_address("dataset", p.dataset.as_ref())?.filter(|d| !d.is_zero()),
        workerpool: opt_address("workerpool", p.workerpool.as_ref())?.filter(|w| !w.is_zero()),
        requester: address("requester", &p.requester)?,
        beneficiary: opt_address("beneficiary", p.beneficiary.as_ref())?,
        category: small("category", Some(&p.category))?.unwrap_or_default(),
        trust: small("trust", p.trust.as_ref())?.unwrap_or_default(),
        tag: tag("tag", p.tag.as_ref())?.unwrap_or_default(),
        app_max_price: uint("appmaxprice", &p.appmaxprice)?,
        dataset_max_price: p
            .datasetmaxprice
            .as_ref()
            .map(|v| uint("datasetmaxprice", v))
            .transpose()?
            .unwrap_or_default(),
        workerpool_max_price: uint("workerpoolmaxprice", &p.workerpoolmaxprice)?,
        volume: p.volume.as_ref().map(|v| uint("volume", v)).transpose()?.unwrap_or(U256::from(1)),
    };
    if wanted.volume.is_zero() {
        return Err(Error::InvalidQuery("volume: must be at least 1".into()));
    }
    Ok(Json(state.market.best_match(&wanted).await?))
}

/// Query parameters of `/deals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DealParams {
    requester: Option<String>,
    app: Option<String>,
    dataset: Option<String>,
    workerpool: Option<String>,
    scheduler: Option<String>,
    app_owner: Option<String>,
    dataset_owner: Option<String>,
    beneficiary: Option<String>,
    category: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

async fn deals(
    State(state): State<ApiState>,
    Params(p): Params<DealParams>,
) -> Result<Json<DealPage>> {
    let query = DealQuery {
        requester: opt_address("requester", p.requester.as_ref())?,
        app: opt_address("app", p.app.as_ref())?,
        dataset: opt_address("dataset", p.dataset.as_ref())?,
        workerpool: opt_address("workerpool", p.workerpool.as_ref())?,
        scheduler: opt_address("scheduler", p.scheduler.as_ref())?,
        app_owner: opt_address("appOwner", p.app_owner.as_ref())?,
        dataset_owner: opt_address("datasetOwner", p.dataset_owner.as_ref())?,
        beneficiary: opt_address("beneficiary", p.beneficiary.as_ref())?,
        category: small("category", p.category.as_ref())?,
        after: match &p.cursor {
            Some(cursor) => {
                crate::store::decode_deal_cursor(cursor)?;
                Some(cursor.clone())
            }
            None => None,
        },
        limit: page_size(&state, p.limit.as_ref())?,
    };
    let page = state.market.deals(query).await?;
    Ok(Json(DealPage { count: page.items.len(), deals: page.items, next_cursor: page.next }))
}

async fn deal(State(state): State<ApiState>, Path(id): Path<String>) -> Result<Json<DealView>> {
    let id = parse_hash(&id, "dealId")?;
    Ok(Json(state.market.deal(id).await?))
}

async fn deal_tasks(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Params(NoParams {}): Params<NoParams>,
) -> Result<Json<poco_api::market::DealTasks>> {
    let deal_id = parse_hash(&id, "dealId")?;
    let tasks = state.market.deal_tasks(deal_id).await?;
    Ok(Json(poco_api::market::DealTasks { deal_id, tasks }))
}

async fn task(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Params(NoParams {}): Params<NoParams>,
) -> Result<Json<IndexedTask>> {
    let task_id = parse_hash(&id, "taskId")?;
    let (deal, index) = state.market.task(task_id).await?;
    Ok(Json(IndexedTask { task_id, index, deal }))
}

async fn task_events(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Params(NoParams {}): Params<NoParams>,
) -> Result<Json<poco_api::market::TaskEvents>> {
    let task_id = parse_hash(&id, "taskId")?;
    let events = state.market.task_events(task_id).await?;
    Ok(Json(poco_api::market::TaskEvents { task_id, events }))
}

/// An address in a path.
fn path_address(raw: &str) -> Result<Address> {
    serde_helpers::address::parse(raw)
        .map_err(|reason| Error::InvalidPath(format!("address: {reason}")))
}

async fn pool_workers(
    State(state): State<ApiState>,
    Path(raw): Path<String>,
    Params(NoParams {}): Params<NoParams>,
) -> Result<Json<poco_api::market::PoolWorkers>> {
    let workerpool = path_address(&raw)?;
    Ok(Json(state.market.pool_workers(workerpool).await?))
}

async fn account_funds(
    State(state): State<ApiState>,
    Path(raw): Path<String>,
    Params(NoParams {}): Params<NoParams>,
) -> Result<Json<poco_api::market::AccountFunds>> {
    let account = path_address(&raw)?;
    Ok(Json(state.market.chain().funds(account).await?))
}

async fn asset(
    State(state): State<ApiState>,
    Path(raw): Path<String>,
    Params(NoParams {}): Params<NoParams>,
) -> Result<Json<poco_api::market::AssetView>> {
    let address = path_address(&raw)?;
    let found = state.market.chain().registered(address).await?;
    found.map(Json).ok_or_else(|| {
        Error::NotFound(format!("{address} is no registered app, dataset or workerpool"))
    })
}

/// Query parameters of `/accounts/{address}/scores`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreParams {
    limit: Option<String>,
}

async fn scores(
    State(state): State<ApiState>,
    Path(raw): Path<String>,
    Params(p): Params<ScoreParams>,
) -> Result<Json<poco_api::market::Scores>> {
    let account = path_address(&raw)?;
    let limit = page_size(&state, p.limit.as_ref())?;
    let scores = state.market.scores(account, limit).await?;
    let scores = scores
        .into_iter()
        .map(|(block, score)| poco_api::market::ScoreAt { block, score })
        .collect();
    Ok(Json(poco_api::market::Scores { account, scores }))
}

/// Query parameters of `/accounts/{address}/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountEventParams {
    before: Option<String>,
    limit: Option<String>,
}

async fn account_events(
    State(state): State<ApiState>,
    Path(raw): Path<String>,
    Params(p): Params<AccountEventParams>,
) -> Result<Json<poco_api::market::AccountEvents>> {
    let account = path_address(&raw)?;
    let before = match &p.before {
        None => None,
        Some(text) => {
            let parsed = text.split_once(':').and_then(|(block, index)| {
                Some((block.parse::<u64>().ok()?, index.parse::<u64>().ok()?))
            });
            Some(parsed.ok_or_else(|| {
                Error::InvalidQuery(format!(
                    "before: expected BLOCK:LOG_INDEX (a nextBefore of a previous page), got \
                     {text:?}"
                ))
            })?)
        }
    };
    let limit = page_size(&state, p.limit.as_ref())?;
    let events = state.market.account_events(account, before, limit).await?;
    let next_before = (events.len() == limit as usize)
        .then(|| events.last().map(|e| format!("{}:{}", e.block, e.log_index)))
        .flatten();
    Ok(Json(poco_api::market::AccountEvents { account, events, next_before }))
}

/// A category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryView {
    /// Its id.
    pub id: u64,
    /// Its time reference, in seconds.
    pub timeref: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

async fn categories(
    State(state): State<ApiState>,
    Params(NoParams {}): Params<NoParams>,
) -> Result<Json<Vec<CategoryView>>> {
    let categories = state.market.categories().await?;
    Ok(Json(categories.into_iter().map(|(id, timeref)| CategoryView { id, timeref }).collect()))
}

/// The answer of `/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Whether this instance follows the chain.
    pub leader: bool,
    /// First block not applied yet (stored checkpoint).
    pub checkpoint: u64,
    /// Newest confirmed block this instance saw.
    pub confirmed_head: u64,
}

async fn health(
    State(state): State<ApiState>,
    Params(NoParams {}): Params<NoParams>,
) -> Result<Json<Health>> {
    let checkpoint = state.market.store().checkpoint().await?.unwrap_or_default();
    let status = state.market.follower_status();
    Ok(Json(Health {
        status: "ok".into(),
        backend: state.market.store().backend().into(),
        leader: status.leader.load(std::sync::atomic::Ordering::Relaxed),
        checkpoint,
        confirmed_head: status.confirmed_head.load(std::sync::atomic::Ordering::Relaxed),
    }))
}

async fn metrics(State(state): State<ApiState>, Params(NoParams {}): Params<NoParams>) -> Response {
    let websockets = state.websockets.held();
    let counter = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let c = &state.counters;
    let mut limits = vec![
        (
            "poco_market_rate_limited_total",
            "Requests refused by a rate limit.",
            counter(&c.rate_limited),
        ),
        (
            "poco_market_websocket_refused_total",
            "WebSocket streams refused: the client held its share, or all were taken.",
            counter(&c.websocket_refused),
        ),
        (
            "poco_market_websocket_idle_closed_total",
            "WebSocket streams closed after the idle timeout.",
            counter(&c.websocket_idle_closed),
        ),
        (
            "poco_market_websocket_unread_dropped_total",
            "WebSocket clients dropped for not reading their events.",
            counter(&c.websocket_unread_dropped),
        ),
    ];
    if let Some(server) = &state.server_stats {
        limits.extend([
            (
                "poco_market_connections_refused_total",
                "Connections refused: the client held its share of connections.",
                counter(&server.refused_per_client) + counter(&server.refused_total),
            ),
            (
                "poco_market_header_timeouts_total",
                "Connections closed: request headers not received in time.",
                counter(&server.header_timeouts),
            ),
            (
                "poco_market_idle_connections_closed_total",
                "Connections closed after the idle timeout.",
                counter(&server.idle_closed),
            ),
        ]);
    }
    let text = state.metrics.render(&state.market, websockets, &limits).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

async fn openapi_document(
    State(state): State<ApiState>,
    Params(NoParams {}): Params<NoParams>,
) -> Json<serde_json::Value> {
    let mut document = openapi::document();
    if let Some(url) = &state.public_url {
        document["servers"] = serde_json::json!([{ "url": url.as_ref() }]);
    }
    Json(document)
}
