//! The worker API: registration, heartbeats, work, reports and hand-backs, each request signed
//! by the worker's wallet ([`poco_primitives::request`]: stamped in unix seconds, accepted
//! once); task status and logs for requesters; health and metrics. Every time it says is in
//! seconds.

use std::sync::Arc;

use alloy::primitives::{Address, B256};
use axum::{
    Json, Router,
    body::Bytes as Body,
    extract::{DefaultBodyLimit, Path, Request, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use poco_api::{
    http::ErrorBody,
    pool::{HAND_BACK_PATH, HandBack, Heartbeat, PoolInfo, Registration, Report, WorkRequest},
};
use poco_primitives::request::{RequestHeaders, SignedRequest, unix_seconds};
use serde::{Serialize, de::DeserializeOwned};
use tracing::error;

use crate::{Error, engine::Engine, store::now_ms};

/// Largest request body accepted.
const BODY_LIMIT: usize = 64 * 1024;
/// How far a request's timestamp may be from the scheduler's clock, either way, in seconds.
pub(crate) const CLOCK_SKEW_SECS: u64 = 5 * 60;

/// The router of the scheduler's HTTP API. Only the pool's active instance answers workers and
/// requesters; another answers 503 `standby`, naming the active one ([`gate`]). `/health` and
/// `/metrics` answer on every instance.
pub(crate) fn router(engine: Arc<Engine>) -> Router {
    let gated = Router::new()
        .route("/workers/register", post(register))
        .route("/workers/heartbeat", post(heartbeat))
        .route("/work", post(work))
        .route("/reports", post(report))
        .route(HAND_BACK_PATH, post(hand_back))
        .route("/tasks/{task_id}", get(task_status))
        .route("/tasks/{task_id}/logs", get(task_logs))
        .layer(middleware::from_fn_with_state(engine.clone(), gate));
    Router::new()
        .merge(gated)
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(engine)
}

/// Lets a request through only to the pool's active instance.
async fn gate(State(engine): State<Arc<Engine>>, request: Request, next: Next) -> Response {
    match engine.lease.check() {
        Ok(()) => next.run(request).await,
        Err(error) => ApiError(error).into_response(),
    }
}

/// `{"status": "active" | "starting" | "standby", "workerpool", "active": URL}`: 200 from the
/// active instance, 503 from any other (a load balancer sends workers to the active one).
async fn health(State(engine): State<Arc<Engine>>) -> Response {
    let role = engine.lease.role();
    let status =
        if engine.lease.is_active() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({
        "status": role,
        "workerpool": engine.config.workerpool,
        "active": engine.lease.active_url(),
    });
    (status, Json(body)).into_response()
}

/// An API error: the status and a JSON body `{"error", "code"}`.
pub(crate) struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        Self(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self.0 {
            Error::BadSignature(_) => (StatusCode::UNAUTHORIZED, "bad_signature"),
            Error::Replayed { .. } => (StatusCode::UNAUTHORIZED, "replayed_request"),
            Error::UnknownWorker(_) => (StatusCode::FORBIDDEN, "unknown_worker"),
            Error::NotAdmitted { rule, .. } => {
                let body = serde_json::json!({
                    "error": self.0.to_string(),
                    "code": "not_admitted",
                    "rule": rule,
                });
                return (StatusCode::FORBIDDEN, Json(body)).into_response();
            }
            Error::NotAssigned { .. } => (StatusCode::FORBIDDEN, "not_assigned"),
            Error::NotUploader { .. } => (StatusCode::FORBIDDEN, "not_uploader"),
            Error::ForeignLocation { .. } => (StatusCode::FORBIDDEN, "foreign_location"),
            Error::UnexpectedReport { .. } => (StatusCode::CONFLICT, "unexpected_report"),
            Error::CannotHandBack { .. } => (StatusCode::CONFLICT, "cannot_hand_back"),
            Error::NotRequester => (StatusCode::FORBIDDEN, "not_requester"),
            Error::UnknownTask(_) => (StatusCode::NOT_FOUND, "unknown_task"),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::Standby { .. } | Error::Fenced { .. } | Error::LeaseLost(_) => {
                let active = match &self.0 {
                    Error::Standby { active } => active.clone(),
                    _ => None,
                };
                let body = serde_json::json!({
                    "error": self.0.to_string(),
                    "code": poco_api::pool::STANDBY_CODE,
                    "active": active,
                });
                let retry = [(axum::http::header::RETRY_AFTER, "1")];
                return (StatusCode::SERVICE_UNAVAILABLE, retry, Json(body)).into_response();
            }
            _ => {
                error!(error = %self.0, "internal error");
                let body = ErrorBody { error: "internal error".into(), code: "internal".into() };
                return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
            }
        };
        (status, Json(ErrorBody { error: self.0.to_string(), code: code.into() })).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A request checked to be signed by the wallet it names, and fresh.
struct Signed<'a> {
    /// The wallet that signed it.
    signer: Address,
    /// What it signed.
    request: SignedRequest<'a>,
}

impl Signed<'_> {
    /// Accepts the request once: `false` when it was accepted before (a replay).
    async fn accept_once(&self, engine: &Engine) -> Result<bool, Error> {
        let fresh_until = self.request.fresh_until(CLOCK_SKEW_SECS);
        engine.store.accept_request(self.signer, self.request.signing_hash(), fresh_until).await
    }

    fn replayed(&self) -> Error {
        Error::Replayed { timestamp: self.request.timestamp }
    }
}

/// The signer of a request, after checking its signature and its freshness (its timestamp, in
/// unix seconds, within [`CLOCK_SKEW_SECS`] of the scheduler's clock). Whether it was seen
/// before is for the caller to check ([`Signed::accept_once`]).
fn signed_by<'a>(
    method: &'a Method,
    uri: &'a Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Signed<'a>, Error> {
    let received =
        RequestHeaders::parse(|name| headers.get(name).and_then(|value| value.to_str().ok()))
            .map_err(|error| Error::BadSignature(error.to_string()))?;
    let request = received.request(method.as_str(), uri.path(), body);
    if !request.is_fresh(unix_seconds(), CLOCK_SKEW_SECS) {
        return Err(Error::Replayed { timestamp: request.timestamp });
    }
    received.check_signature(&request).map_err(|error| Error::BadSignature(error.to_string()))?;
    Ok(Signed { signer: received.address, request })
}

/// The registered worker that signed a request, accepted once.
async fn worker(
    engine: &Engine,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Address, Error> {
    engine.metrics.requests.inc();
    let outcome = async {
        let signed = signed_by(method, uri, headers, body)?;
        if engine.store.worker(signed.signer).await?.is_none() {
            return Err(Error::UnknownWorker(signed.signer));
        }
        engine.admit(signed.signer).await?;
        if !signed.accept_once(engine).await? {
            return Err(signed.replayed());
        }
        Ok(signed.signer)
    }
    .await;
    if outcome.is_err() {
        engine.metrics.refused.inc();
    }
    outcome
}

fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::BadRequest(format!("invalid JSON body: {e}")))
}

async fn register(
    State(engine): State<Arc<Engine>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<PoolInfo>> {
    engine.metrics.requests.inc();
    let signed = signed_by(&method, &uri, &headers, &body)?;
    let address = signed.signer;
    let registration: Registration = json(&body)?;
    if let Err(error) = engine.admit(address).await {
        engine.metrics.refused.inc();
        return Err(error.into());
    }
    if registration.slots == 0 || registration.slots > 1024 {
        return Err(Error::BadRequest("slots must be between 1 and 1024".into()).into());
    }
    if !signed.accept_once(&engine).await? {
        return Err(signed.replayed().into());
    }
    engine
        .store
        .register_worker(address, registration.slots, registration.tee, &registration.version)
        .await?;
    let config = &engine.config;
    Ok(Json(PoolInfo {
        workerpool: config.workerpool,
        scheduler: engine.scheduler(),
        poco: config.deployment.poco,
        chain_id: config.deployment.chain_id,
        result_store: engine.result_store().to_owned(),
        heartbeat_interval_secs: config.heartbeat_interval.as_secs_f64(),
    }))
}

async fn heartbeat(
    State(engine): State<Arc<Engine>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<impl IntoResponse> {
    let address = worker(&engine, &method, &uri, &headers, &body).await?;
    let beat: Heartbeat = json(&body)?;
    Ok(Json(engine.heartbeat(address, &beat).await?))
}

async fn work(
    State(engine): State<Arc<Engine>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<impl IntoResponse> {
    let address = worker(&engine, &method, &uri, &headers, &body).await?;
    let request: WorkRequest = json(&body)?;
    Ok(Json(engine.assign(address, request.free_slots).await?))
}

async fn report(
    State(engine): State<Arc<Engine>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let address = worker(&engine, &method, &uri, &headers, &body).await?;
    let report: Report = json(&body)?;
    engine.report(address, &report).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A worker handing back a task it cannot keep: 204 once the task is free for others.
async fn hand_back(
    State(engine): State<Arc<Engine>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let address = worker(&engine, &method, &uri, &headers, &body).await?;
    let hand_back: HandBack = json(&body)?;
    engine.hand_back(address, &hand_back).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A task as the scheduler sees it: public.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TaskStatus {
    task_id: B256,
    deal_id: B256,
    index: String,
    stage: String,
    consensus: Option<B256>,
    replicas: Vec<ReplicaStatus>,
    result_location: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplicaStatus {
    worker: Address,
    state: String,
}

fn task_id(raw: &str) -> Result<B256, Error> {
    raw.parse().map_err(|_| Error::BadRequest(format!("{raw:?} is not a task id")))
}

async fn task_status(
    State(engine): State<Arc<Engine>>,
    Path(raw): Path<String>,
) -> ApiResult<Json<TaskStatus>> {
    let task_id = task_id(&raw)?;
    let task = engine.store.task(task_id).await?.ok_or(Error::UnknownTask(task_id))?;
    let replicas = engine
        .store
        .replicas(task_id)
        .await?
        .into_iter()
        .map(|r| ReplicaStatus { worker: r.worker, state: format!("{:?}", r.state).to_lowercase() })
        .collect();
    Ok(Json(TaskStatus {
        task_id,
        deal_id: task.deal_id,
        index: task.index.to_string(),
        stage: format!("{:?}", task.stage).to_lowercase(),
        consensus: task.consensus,
        replicas,
        result_location: task.location,
    }))
}

/// A task's log, for its requester only (a signed request, fresh; reading twice does no harm,
/// so it is not remembered). Each entry is `{"at", "message"}`, `at` in unix seconds with a
/// fractional part (millisecond precision).
async fn task_logs(
    State(engine): State<Arc<Engine>>,
    Path(raw): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let task_id = task_id(&raw)?;
    let address = signed_by(&method, &uri, &headers, &[])?.signer;
    let task = engine.store.task(task_id).await?.ok_or(Error::UnknownTask(task_id))?;
    let deal = engine.deal(task.deal_id).await?;
    if deal.0.requester != address {
        return Err(Error::NotRequester.into());
    }
    let logs = engine
        .store
        .logs(task_id)
        .await?
        .into_iter()
        .map(|(at_ms, message)| poco_api::pool::LogEntry { at: at_ms as f64 / 1000.0, message })
        .collect();
    Ok(Json(poco_api::pool::TaskLogs { task_id, logs }))
}

async fn metrics(State(engine): State<Arc<Engine>>) -> ApiResult<String> {
    let tasks = engine.store.task_counts().await?;
    let since = now_ms() - engine.config.worker_timeout.as_millis() as i64;
    let alive = engine.store.workers_alive(since).await?;
    let unhealthy = engine.store.workers_unhealthy(since).await?;
    let checkpoint = engine.store.checkpoint().await?.unwrap_or_default();
    Ok(engine.metrics.render(&tasks, alive, unhealthy, checkpoint))
}
