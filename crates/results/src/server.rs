//! The HTTP service: routes, handlers and the per-request guard (timeout, metrics, span).

use std::{
    future::Future,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use alloy::primitives::{Address, B256, Bytes as AlloyBytes, U256};
use axum::{
    Json, Router,
    body::Body,
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use object_store::ObjectStore;
use poco_primitives::request::{RequestHeaders, parse_nonce};
use tokio::{net::TcpListener, sync::Semaphore};
use tracing::{Instrument, debug, info, info_span};

use poco_api::results::Error as Api;
use poco_api::results::{
    Challenge, CodeReceipt, ResultOutcome, UploadReceipt,
    archive::inspect_archive,
    auth::{
        HEADER_APP, HEADER_ARCHIVE_SHA256, HEADER_ARCHIVE_SIZE, HEADER_CHALLENGE_NONCE,
        HEADER_CONTENT_SHA256, HEADER_DEAL_ID, HEADER_REQUEST_NONCE, HEADER_RESULT_DIGEST,
        HEADER_RESULT_PUBLIC, HEADER_SIGNATURE, HEADER_TASK_INDEX, HEADER_TIMESTAMP,
        HEADER_UPLOAD_TICKET, HEADER_WORKER, SignedRequest, UploadTicket, recover_download_signer,
        sha256,
    },
};

use crate::{
    books::{ChallengeKey, Challenges, InFlight, ReplayGuard},
    chain::{ChainView, task_of},
    config::Config,
    error::{Error, ErrorCode, Result},
    metrics::Metrics,
    storage::{ArchiveStore, StoredResult},
};

/// A running result store's state: its configuration, chain view, archives and records.
///
/// [`ResultStore::router`] gives its HTTP API, for [`serve`] or for tests through `oneshot`.
#[derive(Debug, Clone)]
pub struct ResultStore {
    state: Arc<AppState>,
}

#[derive(Debug)]
struct AppState {
    config: Config,
    chain: ChainView,
    archives: ArchiveStore,
    replays: ReplayGuard,
    challenges: Challenges,
    in_flight: InFlight,
    uploads: Semaphore,
    metrics: Metrics,
}

impl ResultStore {
    /// Opens the storage configured and connects to the chain.
    pub async fn open(config: Config) -> Result<Self> {
        let store = config.storage.open()?;
        Self::with_object_store(config, store).await
    }

    /// A result store keeping its archives in `store` (instead of the configured storage).
    pub async fn with_object_store(config: Config, store: Arc<dyn ObjectStore>) -> Result<Self> {
        let chain = ChainView::connect(&config.chain, config.deal_cache_size).await?;
        let state = AppState {
            chain,
            archives: ArchiveStore::new(store),
            replays: ReplayGuard::new(config.max_replay_records),
            challenges: Challenges::new(
                config.challenge_key.unwrap_or_else(ChallengeKey::random),
                config.challenge_ttl.as_secs().max(1),
                config.max_used_challenges,
            ),
            in_flight: InFlight::default(),
            uploads: Semaphore::new(config.max_concurrent_uploads.max(1)),
            metrics: Metrics::default(),
            config,
        };
        Ok(Self { state: Arc::new(state) })
    }

    /// The HTTP API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/health", get(health))
            .route("/metrics", get(metrics))
            .route("/results/{taskid}", get(download).head(exists).put(upload))
            .route("/results/{taskid}/challenge", get(challenge))
            .route("/results/{taskid}/outcome", get(outcome))
            .route("/code/{checksum}", get(code).head(code_exists).put(publish_code))
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(self.state.clone(), guard))
            .with_state(self.state.clone())
    }
}

/// Runs the result store of `config` on `listener` until `shutdown` completes, then finishes
/// the requests in progress and returns.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let store = ResultStore::open(config).await?;
    if let Ok(address) = listener.local_addr() {
        info!(%address, "result store listening");
    }
    poco_http::serve("results", listener, store.router(), shutdown)
        .await
        .map_err(|source| Error::Io { path: "<listener>".into(), source })
}

// ==================================================================== guard

/// Every request: a span, the timeout, and the response counted.
async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let span = info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        task = tracing::field::Empty,
    );
    let limit = state.config.request_timeout;
    let started = std::time::Instant::now();
    let response = async {
        match tokio::time::timeout(limit, next.run(request)).await {
            Ok(response) => response,
            Err(_) => Error::Timeout { seconds: limit.as_secs() }.into_response(),
        }
    }
    .instrument(span.clone())
    .await;
    let code = response.extensions().get::<ErrorCode>().map(|code| code.0.as_str());
    span.in_scope(|| {
        debug!(
            status = response.status().as_u16(),
            code,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request done"
        );
    });
    state.metrics.response(response.status().as_u16(), code);
    response
}

// ==================================================================== small routes

async fn health(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    match &state.config.public_url {
        Some(url) => Json(serde_json::json!({ "status": "ok", "publicUrl": url })),
        None => Json(serde_json::json!({ "status": "ok" })),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(state.challenges.used_count()),
    )
}

async fn not_found(uri: Uri) -> Error {
    Error::NoRoute { path: uri.path().to_owned() }
}

// ==================================================================== upload

async fn upload(
    State(state): State<Arc<AppState>>,
    Path(task): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let task_id = parse_b256("task id", &task)?;
    let UploadHeaders {
        deal_id,
        index,
        worker,
        timestamp,
        nonce,
        signed_sha256,
        ticket,
        signature,
    } = UploadHeaders::parse(&headers)?;

    // The request signature: by the worker it names, fresh, and not seen before.
    let request = SignedRequest {
        method: method.as_str(),
        path: uri.path(),
        timestamp,
        nonce,
        body_sha256: signed_sha256,
    };
    let now = unix_now();
    let max_age = state.config.max_request_age.as_secs();
    if !request.is_fresh(now, max_age) {
        return Err(Error::StaleRequest { timestamp, now, max_age });
    }
    let signer = request.recover_signer(&signature).map_err(|error| {
        Error::Checked(Api::BadSignature { what: "request", reason: error.to_string() })
    })?;
    if signer != worker {
        return Err(Error::Checked(Api::BadSignature {
            what: "request",
            reason: format!(
                "it is not {worker}'s signature of this request (it recovers to {signer}): sign \
                 exactly the method, path, timestamp, nonce and body hash sent"
            ),
        }));
    }
    tracing::Span::current().record("task", tracing::field::display(task_id));
    let limit = state.config.limits.max_body_bytes;
    if let Some(length) = content_length(&headers)
        && length > limit
    {
        return Err(Error::Checked(Api::TooLarge { what: "the body", size: length, limit }));
    }

    // The deal, the task, and the scheduler's choice of this worker.
    let record = state.chain.deal(deal_id).await?;
    if task_of(&record.deal, index) != Some(task_id) {
        return Err(Error::TaskMismatch { task_id, deal_id, index });
    }
    let scheduler = record.deal.scheduler;
    if (UploadTicket { task_id, worker }).recover_signer(&ticket)? != scheduler {
        return Err(Error::NotChosenWorker { worker, task_id, scheduler });
    }
    // Only now, with the worker shown to be the chosen one, is the request remembered: a
    // stranger's throwaway signatures fill nothing.
    state.replays.record(request.signing_hash(), request.fresh_until(max_age), now)?;

    // The body is read before a chosen worker is told its upload is a duplicate: an answer
    // sent while the client still writes would reach it as a broken connection, not as the
    // refusal it is.
    let _permit =
        state.uploads.try_acquire().map_err(|_| Error::Busy { what: "too many uploads" })?;
    let archive = read_body(body, limit, content_length(&headers)).await?;

    // Once per task.
    let _claim = state.in_flight.claim(task_id)?;
    if state.archives.metadata(task_id).await?.is_some() {
        return Err(Error::AlreadyUploaded { task_id });
    }

    // The body is the signed one, and a valid archive.
    let actual = sha256(&archive);
    if actual != signed_sha256 {
        return Err(Error::ContentHashMismatch { signed: signed_sha256, actual });
    }
    let archive_limits = state.config.limits.archive;
    let inspected = archive.clone();
    let summary = tokio::task::spawn_blocking(move || inspect_archive(&inspected, &archive_limits))
        .await
        .map_err(|e| Error::Internal(format!("archive inspection panicked: {e}")))??;

    // The digest is the task's settled consensus.
    state.chain.check_consensus(task_id, summary.digest, worker).await?;

    let stored = StoredResult {
        task_id,
        deal_id,
        task_index: index,
        digest: summary.digest,
        archive_sha256: actual,
        size: archive.len() as u64,
        files: summary.files.len(),
        worker,
        beneficiary: record.deal.beneficiary,
        public: record.public,
        uploaded_at: now,
        failure: summary.failure,
    };
    state.archives.put(archive, &stored).await?;
    state.metrics.upload(stored.size);
    info!(%task_id, %worker, digest = %stored.digest, size = stored.size, "result stored");
    let receipt = UploadReceipt {
        task_id,
        digest: stored.digest,
        archive_sha256: stored.archive_sha256,
        size: stored.size,
        files: stored.files,
    };
    Ok((StatusCode::CREATED, Json(receipt)).into_response())
}

/// The headers of an upload (see [`poco_api::results::auth`]).
struct UploadHeaders {
    deal_id: B256,
    index: U256,
    worker: Address,
    timestamp: u64,
    nonce: [u8; 16],
    signed_sha256: B256,
    ticket: AlloyBytes,
    signature: AlloyBytes,
}

impl UploadHeaders {
    fn parse(headers: &HeaderMap) -> Result<Self> {
        let deal_id = parse_b256(HEADER_DEAL_ID, required(headers, HEADER_DEAL_ID)?)?;
        let index = required(headers, HEADER_TASK_INDEX)?;
        let index = U256::from_str_radix(index, 10).map_err(|e| Error::BadRequest {
            what: HEADER_TASK_INDEX,
            reason: format!("{index:?} is not a decimal integer: {e}"),
        })?;
        let worker = auth_header(headers, HEADER_WORKER, "the uploading worker's address")?;
        let worker =
            worker.parse().map_err(|_| bad(HEADER_WORKER, "expected a 0x-prefixed address"))?;
        let signature = auth_header(headers, HEADER_SIGNATURE, "the worker's request signature")?;
        let signature = parse_hex(HEADER_SIGNATURE, signature)?;
        let timestamp = auth_header(headers, HEADER_TIMESTAMP, "unix seconds, signed")?;
        let timestamp = timestamp.parse().map_err(|_| Error::BadRequest {
            what: HEADER_TIMESTAMP,
            reason: format!("{timestamp:?} is not unix seconds"),
        })?;
        let nonce = auth_header(headers, HEADER_REQUEST_NONCE, "16 random bytes, signed")?;
        let nonce = parse_nonce(nonce)
            .map_err(|_| bad(HEADER_REQUEST_NONCE, "expected 0x followed by 32 hex digits"))?;
        let signed_sha256 = auth_header(headers, HEADER_CONTENT_SHA256, "the body's SHA-256")?;
        let signed_sha256 = parse_b256(HEADER_CONTENT_SHA256, signed_sha256)?;
        let ticket = auth_header(headers, HEADER_UPLOAD_TICKET, "the scheduler's upload ticket")?;
        let ticket = parse_hex(HEADER_UPLOAD_TICKET, ticket)?;
        Ok(Self { deal_id, index, worker, timestamp, nonce, signed_sha256, ticket, signature })
    }
}

/// The body, refused as soon as it passes `limit`.
async fn read_body(body: Body, limit: u64, length: Option<u64>) -> Result<Bytes> {
    let capacity = length.unwrap_or(0).min(limit) as usize;
    let mut buffer = BytesMut::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| bad("body", &format!("the body could not be read: {e}")))?;
        let size = buffer.len() as u64 + chunk.len() as u64;
        if size > limit {
            return Err(Error::Checked(Api::TooLarge { what: "the body", size, limit }));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

// ==================================================================== exists, challenge, download

/// `HEAD /results/{taskid}`: whether a result is stored, and nothing more, for anyone; its
/// digest, hashes, size and public flag only for a request signed (the shared signed-request
/// scheme) by the deal's beneficiary or its scheduler (the workerpool owner, which checks the
/// digest before it finalizes).
async fn exists(
    State(state): State<Arc<AppState>>,
    Path(task): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response> {
    let task_id = parse_b256("task id", &task)?;
    let stored = state.archives.metadata(task_id).await?.ok_or(Error::UnknownResult { task_id })?;
    let mut response = StatusCode::OK.into_response();
    if headers.contains_key(HEADER_SIGNATURE) {
        let body_sha256 = poco_primitives::request::body_sha256(b"");
        let (signer, request) =
            checked_request(&state, &headers, method.as_str(), uri.path(), body_sha256)?;
        let (now, max_age) = (unix_now(), state.config.max_request_age.as_secs());
        if signer != stored.beneficiary {
            let scheduler = state.chain.deal(stored.deal_id).await?.deal.scheduler;
            if signer != scheduler {
                return Err(Error::NotEntitled { signer, task_id });
            }
        }
        state.replays.record(request.signing_hash(), request.fresh_until(max_age), now)?;
        describe(response.headers_mut(), &stored);
    }
    Ok(response)
}

async fn challenge(
    State(state): State<Arc<AppState>>,
    Path(task): Path<String>,
) -> Result<Json<Challenge>> {
    let task_id = parse_b256("task id", &task)?;
    state.archives.metadata(task_id).await?.ok_or(Error::UnknownResult { task_id })?;
    // Stateless: the nonce carries its expiry and a MAC of the task; nothing is stored.
    let (nonce, expires_at) = state.challenges.issue(task_id, unix_now());
    Ok(Json(Challenge { task_id, nonce, expires_at }))
}

/// A stored result, once the request is shown to come from whoever may read it: anyone for a
/// public result, else its beneficiary, by a signed challenge.
async fn readable(state: &AppState, task: &str, headers: &HeaderMap) -> Result<StoredResult> {
    let task_id = parse_b256("task id", task)?;
    let stored = state.archives.metadata(task_id).await?.ok_or(Error::UnknownResult { task_id })?;
    if !stored.public {
        let hint = format!("a nonce from GET /results/{task_id}/challenge, signed");
        let nonce = auth_header(headers, HEADER_CHALLENGE_NONCE, &hint)?;
        let nonce = parse_b256(HEADER_CHALLENGE_NONCE, nonce)?;
        let signature =
            auth_header(headers, HEADER_SIGNATURE, "the beneficiary's challenge signature")?;
        let signature = parse_hex(HEADER_SIGNATURE, signature)?;
        // The nonce is this store's, for this task, and alive; then the beneficiary signed it;
        // only then is it recorded as used (a stranger's attempts record nothing).
        let now = unix_now();
        state.challenges.verify(task_id, nonce, now)?;
        let signer = recover_download_signer(task_id, nonce, &signature)?;
        if signer != stored.beneficiary {
            return Err(Error::NotBeneficiary { signer, task_id });
        }
        state.challenges.use_once(nonce, now)?;
    }
    Ok(stored)
}

async fn outcome(
    State(state): State<Arc<AppState>>,
    Path(task): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ResultOutcome>> {
    let stored = readable(&state, &task, &headers).await?;
    Ok(Json(ResultOutcome { task_id: stored.task_id, failure: stored.failure }))
}

async fn download(
    State(state): State<Arc<AppState>>,
    Path(task): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let stored = readable(&state, &task, &headers).await?;
    let stream = state.archives.archive(&stored).await?;
    state.metrics.download(stored.size);
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    describe(headers, &stored);
    Ok(response)
}

/// The headers describing a stored result.
fn describe(headers: &mut HeaderMap, stored: &StoredResult) {
    let value = |text: String| HeaderValue::from_str(&text).expect("ASCII header value");
    headers.insert(header::CONTENT_LENGTH, value(stored.size.to_string()));
    headers.insert(HEADER_ARCHIVE_SIZE, value(stored.size.to_string()));
    headers.insert(HEADER_RESULT_DIGEST, value(stored.digest.to_string()));
    headers.insert(HEADER_ARCHIVE_SHA256, value(stored.archive_sha256.to_string()));
    headers.insert(HEADER_RESULT_PUBLIC, value(stored.public.to_string()));
}

// ==================================================================== apps' code

/// `PUT /code/{sha256}`: an app's owner publishes its code, which the store then serves to
/// anyone. Accepted when the request is signed (the shared scheme, its body hash being the
/// path's sha256) by the owner of the app named in `x-poco-app`, the app's registered checksum
/// is that sha256, and the body hashes to it; all but that last check happen before the body is
/// read. Publishing the same code again is answered `200 OK`.
async fn publish_code(
    State(state): State<Arc<AppState>>,
    Path(checksum): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let checksum = parse_b256("code checksum", &checksum)?;
    let app = required(&headers, HEADER_APP)?
        .parse::<Address>()
        .map_err(|_| bad(HEADER_APP, "expected a 0x-prefixed address"))?;
    if !headers.contains_key(HEADER_SIGNATURE) {
        return Err(Error::MissingAuth {
            header: HEADER_SIGNATURE,
            hint: "the app owner's request signature".to_owned(),
        });
    }
    let (signer, request) =
        checked_request(&state, &headers, method.as_str(), uri.path(), checksum)?;
    let (now, max_age) = (unix_now(), state.config.max_request_age.as_secs());
    let limit = state.config.max_code_bytes;
    if let Some(length) = content_length(&headers)
        && length > limit
    {
        return Err(Error::Checked(Api::TooLarge { what: "the code", size: length, limit }));
    }

    // The app, its owner and its checksum, as the chain has them now.
    let record = state.chain.app(app).await?.ok_or(Error::UnknownApp { app })?;
    if record.owner != signer {
        return Err(Error::NotAppOwner { signer, app, owner: record.owner });
    }
    if record.checksum != checksum {
        return Err(Error::CodeMismatch { app, registered: record.checksum, published: checksum });
    }
    state.replays.record(request.signing_hash(), request.fresh_until(max_age), now)?;

    let _permit =
        state.uploads.try_acquire().map_err(|_| Error::Busy { what: "too many uploads" })?;
    let code = read_body(body, limit, content_length(&headers)).await?;
    let actual = sha256(&code);
    if actual != checksum {
        return Err(Error::ContentHashMismatch { signed: checksum, actual });
    }
    let size = code.len() as u64;
    let created = state.archives.put_code(checksum, code).await?;
    if created {
        state.metrics.upload(size);
        info!(%app, %checksum, size, "app code published");
    }
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let receipt = CodeReceipt { app, checksum, size, path: uri.path().to_owned() };
    Ok((status, Json(receipt)).into_response())
}

/// `HEAD /code/{sha256}`: whether that code is published, and its size.
async fn code_exists(
    State(state): State<Arc<AppState>>,
    Path(checksum): Path<String>,
) -> Result<Response> {
    let checksum = parse_b256("code checksum", &checksum)?;
    let size = state.archives.code_size(checksum).await?.ok_or(Error::UnknownCode { checksum })?;
    let mut response = StatusCode::OK.into_response();
    code_headers(response.headers_mut(), size);
    Ok(response)
}

/// `GET /code/{sha256}`: a published app's code, for anyone.
async fn code(
    State(state): State<Arc<AppState>>,
    Path(checksum): Path<String>,
) -> Result<Response> {
    let checksum = parse_b256("code checksum", &checksum)?;
    let (size, stream) =
        state.archives.code(checksum).await?.ok_or(Error::UnknownCode { checksum })?;
    state.metrics.download(size);
    let mut response = Response::new(Body::from_stream(stream));
    code_headers(response.headers_mut(), size);
    Ok(response)
}

fn code_headers(headers: &mut HeaderMap, size: u64) {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    // Content-addressed: the bytes under a checksum never change.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
}

/// A request signed with the shared scheme (its headers), fresh and signed by the address it
/// names, for a body of `body_sha256`: the signer and the signed request, which the caller
/// records against replays once it has checked the signer may act.
fn checked_request<'a>(
    state: &AppState,
    headers: &HeaderMap,
    method: &'a str,
    path: &'a str,
    body_sha256: B256,
) -> Result<(Address, SignedRequest<'a>)> {
    let bad_signature = |error: poco_primitives::Error| Api::BadSignature {
        what: "request",
        reason: error.to_string(),
    };
    let signed = RequestHeaders::parse(|name| headers.get(name)?.to_str().ok())
        .map_err(|error| Error::Checked(bad_signature(error)))?;
    let request = SignedRequest {
        method,
        path,
        timestamp: signed.timestamp,
        nonce: signed.nonce,
        body_sha256,
    };
    let now = unix_now();
    let max_age = state.config.max_request_age.as_secs();
    if !request.is_fresh(now, max_age) {
        return Err(Error::StaleRequest { timestamp: signed.timestamp, now, max_age });
    }
    signed.check_signature(&request).map_err(|error| Error::Checked(bad_signature(error)))?;
    Ok((signed.address, request))
}

// ==================================================================== parsing

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn bad(what: &'static str, reason: &str) -> Error {
    Error::BadRequest { what, reason: reason.to_owned() }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>> {
    headers.get(name).map(|value| value.to_str().map_err(|_| bad(name, "not ASCII"))).transpose()
}

fn required<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str> {
    header_text(headers, name)?.ok_or_else(|| bad(name, "missing header"))
}

fn auth_header<'a>(headers: &'a HeaderMap, name: &'static str, hint: &str) -> Result<&'a str> {
    header_text(headers, name)?
        .ok_or_else(|| Error::MissingAuth { header: name, hint: hint.to_owned() })
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn parse_hex(what: &'static str, text: &str) -> Result<AlloyBytes> {
    text.parse::<AlloyBytes>().map_err(|_| bad(what, "expected 0x-prefixed hex"))
}

fn parse_b256(what: &'static str, text: &str) -> Result<B256> {
    text.parse::<B256>().map_err(|_| bad(what, "expected 0x followed by 64 hex digits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bodies_are_cut_at_the_limit_even_without_a_length() {
        let body = || {
            Body::from_stream(futures::stream::iter([
                Ok::<_, std::io::Error>(Bytes::from(vec![1u8; 600])),
                Ok(Bytes::from(vec![2u8; 600])),
            ]))
        };
        let read = read_body(body(), 1_200, None).await.unwrap();
        assert_eq!(read.len(), 1_200);
        assert!(matches!(
            read_body(body(), 1_000, None).await,
            Err(Error::Checked(Api::TooLarge { size: 1_200, limit: 1_000, .. }))
        ));
    }
}
