//! The SMS's HTTP service: secret pushes checked against the chain, enclave challenges for the
//! scheduler, attested sessions for enclaves.

use std::{
    future::Future,
    path::{Path as FsPath, PathBuf},
    sync::Arc,
};

use alloy::{
    primitives::{Address, B256},
    signers::local::PrivateKeySigner,
};
use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, FromRequest, Path, Request, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    routing::{get, post, put},
};
use poco_primitives::{Deal, Tag, WorkerpoolAuthorization, request::RequestHeaders};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tracing::{info, warn};

use poco_api::sms::{
    AppMeasurement, AttestRequest, AttestResponse, ChallengeRequest, ChallengeResponse, Evidence,
    SIMULATION_LABEL, SecretValue, SessionRequest, SessionResponse, SessionSecrets, SmsStatus,
    check_secret_name,
    crypto::{DatasetKey, Secret, parse_recipient, random_bytes, seal_to_recipient},
    requester_secret_names, session_report_data, wants_result_encryption,
};

use crate::{
    attestation::{Attested, parse_collateral, verify_dcap, verify_simulated},
    chain::{ACTIVE, ChainView},
    config::SmsConfig,
    error::{Error, Result},
    seal::Sealer,
    store::{Kind, SessionRecord, Store},
};

/// Largest request body accepted (a DCAP quote with its collateral fits).
const BODY_LIMIT: usize = 256 * 1024;
/// The name of the single secret of its kind (dataset key, app secret, result key).
const SINGLE: &str = "-";

/// The warning every status and startup log carries when simulation is on.
const SIMULATION_WARNING: &str = "INSECURE simulation attestation is enabled: simulated quotes \
     prove nothing about the hardware; never hold real secrets with it";

/// A running SMS's state.
#[derive(Debug)]
pub struct Sms {
    config: SmsConfig,
    store: Store,
    sealer: Sealer,
    chain: ChainView,
}

impl Sms {
    /// Opens the database and the master key (created on first start) and connects to the
    /// chain.
    pub async fn open(config: SmsConfig) -> Result<Arc<Self>> {
        let sealer = Sealer::load_or_create(&config.master_key_file)?;
        let store = Store::open(&config.database_url).await?;
        let chain = ChainView::connect(&config.rpc_url, config.poco).await?;
        if let Some(simulation) = &config.attestation.simulation {
            warn!(
                insecure_simulation = true,
                trusted_simulation_keys = ?simulation.trusted_signers,
                "{SIMULATION_WARNING}"
            );
        }
        Ok(Arc::new(Self { config, store, sealer, chain }))
    }

    /// The HTTP API.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/datasets/{address}/key", put(push_dataset_key).head(has_dataset_key))
            .route("/apps/{address}/secret", put(push_app_secret).head(has_app_secret))
            .route(
                "/requesters/{address}/secrets/{name}",
                put(push_requester_secret).head(has_requester_secret),
            )
            .route("/beneficiaries/{address}/result-key", put(push_result_key).head(has_result_key))
            .route("/challenges", post(challenge))
            .route("/sessions", post(open_session))
            .route("/sessions/{session_id}/attest", post(attest))
            .route("/status", get(status))
            .route("/health", get(|| async { "ok" }))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(self.clone())
    }

    fn now_ms(&self) -> i64 {
        self.config.clock.now_ms() as i64
    }

    fn simulation_on(&self) -> bool {
        self.config.attestation.simulation.is_some()
    }

    /// The signer of a request ([`poco_primitives::request`]), after checking its signature
    /// and its freshness against the SMS's clock, in seconds; each request is accepted once.
    async fn signed(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Address> {
        let received =
            RequestHeaders::parse(|name| headers.get(name).and_then(|value| value.to_str().ok()))
                .map_err(|error| Error::BadSignature(error.to_string()))?;
        let request = received.request(method.as_str(), uri.path(), body);
        let max_age_secs = self.config.max_request_age.as_secs();
        let replayed = || Error::Replayed { timestamp: request.timestamp, max_age_secs };
        if !request.is_fresh(self.config.clock.now_secs(), max_age_secs) {
            return Err(replayed());
        }
        received
            .check_signature(&request)
            .map_err(|error| Error::BadSignature(error.to_string()))?;
        let fresh_until = request.fresh_until(max_age_secs);
        if !self.store.accept_request(received.address, request.signing_hash(), fresh_until).await?
        {
            return Err(replayed());
        }
        Ok(received.address)
    }

    fn secret_value(&self, body: &[u8]) -> Result<Secret> {
        let value: SecretValue = json(body)?;
        if value.value.is_empty() || value.value.len() > self.config.max_secret_bytes {
            return Err(Error::BadRequest(format!(
                "a secret is 1 to {} bytes",
                self.config.max_secret_bytes
            )));
        }
        Ok(value.value)
    }

    fn seal(&self, kind: Kind, scope: Address, name: &str, value: &Secret) -> Result<String> {
        self.sealer.seal(&context(kind, scope, name), value.expose().as_bytes())
    }

    async fn open_secret(&self, kind: Kind, scope: Address, name: &str) -> Result<Option<Secret>> {
        let Some(sealed) = self.store.secret(kind, scope, name).await? else { return Ok(None) };
        let plain = self.sealer.open(&context(kind, scope, name), &sealed)?;
        let text =
            std::str::from_utf8(&plain).map_err(|_| Error::corrupt("a secret is not UTF-8"))?;
        Ok(Some(Secret::new(text)))
    }

    /// Stores a write-once secret.
    async fn write_once(
        &self,
        kind: Kind,
        scope: Address,
        name: &str,
        value: &Secret,
    ) -> Result<()> {
        let sealed = self.seal(kind, scope, name, value)?;
        if !self.store.insert_secret(kind, scope, name, &sealed, self.now_ms()).await? {
            return Err(Error::AlreadySet { what: describe(kind, scope, name) });
        }
        info!(kind = kind.as_str(), %scope, name, "secret stored");
        Ok(())
    }

    async fn exists(&self, kind: Kind, scope: Address, name: &str) -> Result<StatusCode> {
        Ok(if self.store.secret(kind, scope, name).await?.is_some() {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        })
    }

    /// Verifies the evidence as configured.
    fn verify(&self, evidence: &Evidence) -> Result<Attested> {
        match evidence {
            Evidence::Simulated(quote) => {
                let Some(simulation) = &self.config.attestation.simulation else {
                    return Err(Error::Attestation(
                        "simulated quotes are refused: this SMS runs without the INSECURE \
                         simulation mode"
                            .into(),
                    ));
                };
                verify_simulated(quote, &simulation.trusted_signers)
            }
            Evidence::Dcap { quote, collateral } => {
                let dcap = &self.config.attestation.dcap;
                let now = dcap.verification_time.unwrap_or(self.config.clock.now_ms() / 1000);
                if let Some(collateral) = collateral {
                    let bytes = serde_json::to_vec(collateral)
                        .map_err(|e| Error::BadRequest(e.to_string()))?;
                    return verify_dcap(quote, &parse_collateral(&bytes)?, now, dcap);
                }
                let Some(dir) = &dcap.collateral_dir else {
                    return Err(Error::Attestation(
                        "no collateral sent and no cached collateral configured".into(),
                    ));
                };
                // Each file is tried; a malformed one is one refusal among others, not a
                // reason to refuse every quote.
                let mut refusals = Vec::new();
                for (path, collateral) in cached_collateral(dir)? {
                    match collateral.and_then(|c| verify_dcap(quote, &c, now, dcap)) {
                        Ok(attested) => return Ok(attested),
                        Err(Error::Attestation(reason)) => {
                            refusals.push(format!("{}: {reason}", path.display()));
                        }
                        Err(other) => return Err(other),
                    }
                }
                Err(Error::Attestation(if refusals.is_empty() {
                    format!("no collateral sent and no *.json collateral file in {}", dir.display())
                } else {
                    format!("no cached collateral verifies the quote: {}", refusals.join("; "))
                }))
            }
        }
    }

    /// The secrets an attested session of `request` gets.
    async fn provision(&self, request: &SessionRequest, task_id: B256) -> Result<SessionSecrets> {
        let deal = &request.deal;
        let dataset_key = if deal.dataset.is_zero() {
            None
        } else {
            let key = self.open_secret(Kind::DatasetKey, deal.dataset, SINGLE).await?.ok_or_else(
                || {
                    Error::Provisioning(format!(
                        "the owner of dataset {} pushed no key",
                        deal.dataset
                    ))
                },
            )?;
            Some(key)
        };
        let names = requester_secret_names(&request.params).map_err(Error::BadRequest)?;
        let mut requester_secrets = std::collections::BTreeMap::new();
        for (index, name) in names {
            let value = self
                .open_secret(Kind::RequesterSecret, deal.requester, &name)
                .await?
                .ok_or_else(|| {
                    Error::Provisioning(format!(
                        "requester {} has no secret named {name:?}",
                        deal.requester
                    ))
                })?;
            requester_secrets.insert(index, value);
        }
        let app_developer_secret = self.open_secret(Kind::AppSecret, deal.app, SINGLE).await?;
        let result_encryption_key = if wants_result_encryption(&request.params) {
            let key = self
                .open_secret(Kind::ResultKey, deal.beneficiary, SINGLE)
                .await?
                .ok_or_else(|| {
                    Error::Provisioning(format!(
                        "the deal asks for result encryption but beneficiary {} pushed no \
                         result key",
                        deal.beneficiary
                    ))
                })?;
            Some(key.expose().to_owned())
        } else {
            None
        };
        let (_, sealed) =
            self.store.challenge(task_id).await?.ok_or(Error::NoChallenge(task_id))?;
        let key = self.sealer.open(&challenge_context(task_id), &sealed)?;
        let challenge_key =
            Secret::new(std::str::from_utf8(&key).map_err(|_| Error::corrupt("challenge key"))?);
        Ok(SessionSecrets {
            task_id,
            attestation: String::new(),
            dataset_key,
            requester_secrets,
            app_developer_secret,
            result_encryption_key,
            challenge_key,
        })
    }
}

/// Runs the SMS on `listener` until `shutdown` resolves.
pub async fn serve(
    config: SmsConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let sms = Sms::open(config).await?;
    info!(address = ?listener.local_addr().ok(), simulation = sms.simulation_on(), "SMS listening");
    let served = poco_http::serve("sms", listener, sms.router(), shutdown).await;
    sms.store.close().await;
    Ok(served?)
}

/// Refuses a write whose signer is not `expected` (the asset's owner, the requester, the
/// deal's scheduler): `action` is what was refused, `reason` says who may.
fn ensure_signer(
    signer: Address,
    expected: Address,
    action: &'static str,
    reason: impl FnOnce() -> String,
) -> Result<()> {
    if signer == expected {
        Ok(())
    } else {
        Err(Error::NotOwner { signer, action, reason: reason() })
    }
}

fn context(kind: Kind, scope: Address, name: &str) -> String {
    format!("{}|{scope:#x}|{name}", kind.as_str())
}

fn challenge_context(task_id: B256) -> String {
    format!("challenge|{task_id:#x}")
}

fn describe(kind: Kind, scope: Address, name: &str) -> String {
    match kind {
        Kind::DatasetKey => format!("the key of dataset {scope}"),
        Kind::AppSecret => format!("the developer secret of app {scope}"),
        Kind::RequesterSecret => format!("secret {name:?} of requester {scope}"),
        Kind::ResultKey => format!("the result key of beneficiary {scope}"),
    }
}

fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::BadRequest(format!("invalid JSON body: {e}")))
}

fn address(raw: &str) -> Result<Address> {
    raw.parse().map_err(|_| Error::BadRequest(format!("{raw:?} is not an address")))
}

/// The `*.json` files of `dir`, in name order, each parsed or with why it could not be.
fn cached_collateral(dir: &FsPath) -> Result<Vec<(PathBuf, Result<dcap_qvl::QuoteCollateralV3>)>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::Attestation(format!("{}: {e}", dir.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    Ok(files
        .into_iter()
        .map(|path| {
            let collateral = std::fs::read(&path)
                .map_err(|e| Error::Attestation(e.to_string()))
                .and_then(|json| parse_collateral(&json));
            (path, collateral)
        })
        .collect())
}

type Shared = State<Arc<Sms>>;

// ------------------------------------------------------------------------ secret pushes

async fn push_dataset_key(
    State(sms): Shared,
    Path(raw): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    let dataset = address(&raw)?;
    let signer = sms.signed(&method, &uri, &headers, &body).await?;
    let value = sms.secret_value(&body)?;
    DatasetKey::from_hex(value.expose())?;
    let owner = sms.chain.dataset_owner(dataset).await?;
    ensure_signer(signer, owner, "push this dataset's key", || {
        format!("dataset {dataset} is owned by {owner}")
    })?;
    sms.write_once(Kind::DatasetKey, dataset, SINGLE, &value).await?;
    Ok(StatusCode::CREATED)
}

async fn has_dataset_key(State(sms): Shared, Path(raw): Path<String>) -> Result<StatusCode> {
    sms.exists(Kind::DatasetKey, address(&raw)?, SINGLE).await
}

async fn push_app_secret(
    State(sms): Shared,
    Path(raw): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    let app = address(&raw)?;
    let signer = sms.signed(&method, &uri, &headers, &body).await?;
    let value = sms.secret_value(&body)?;
    let owner = sms.chain.app_owner(app).await?;
    ensure_signer(signer, owner, "push this app's developer secret", || {
        format!("app {app} is owned by {owner}")
    })?;
    sms.write_once(Kind::AppSecret, app, SINGLE, &value).await?;
    Ok(StatusCode::CREATED)
}

async fn has_app_secret(State(sms): Shared, Path(raw): Path<String>) -> Result<StatusCode> {
    sms.exists(Kind::AppSecret, address(&raw)?, SINGLE).await
}

async fn push_requester_secret(
    State(sms): Shared,
    Path((raw, name)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    let requester = address(&raw)?;
    check_secret_name(&name)?;
    let signer = sms.signed(&method, &uri, &headers, &body).await?;
    let value = sms.secret_value(&body)?;
    ensure_signer(signer, requester, "push this secret", || {
        format!("only {requester} writes its own secrets")
    })?;
    sms.write_once(Kind::RequesterSecret, requester, &name, &value).await?;
    Ok(StatusCode::CREATED)
}

async fn has_requester_secret(
    State(sms): Shared,
    Path((raw, name)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_secret_name(&name)?;
    sms.exists(Kind::RequesterSecret, address(&raw)?, &name).await
}

async fn push_result_key(
    State(sms): Shared,
    Path(raw): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    let beneficiary = address(&raw)?;
    let signer = sms.signed(&method, &uri, &headers, &body).await?;
    let value = sms.secret_value(&body)?;
    parse_recipient(value.expose())?;
    ensure_signer(signer, beneficiary, "push this result key", || {
        format!("only {beneficiary} sets its own result key")
    })?;
    // A public key: replacing it is safe (it only changes who can read later results) and
    // only its owner can, with a fresh signed request.
    let sealed = sms.seal(Kind::ResultKey, beneficiary, SINGLE, &value)?;
    sms.store.upsert_secret(Kind::ResultKey, beneficiary, SINGLE, &sealed, sms.now_ms()).await?;
    info!(%beneficiary, "result encryption key stored");
    Ok(StatusCode::CREATED)
}

async fn has_result_key(State(sms): Shared, Path(raw): Path<String>) -> Result<StatusCode> {
    sms.exists(Kind::ResultKey, address(&raw)?, SINGLE).await
}

// ------------------------------------------------------------------------ challenges

async fn challenge(
    State(sms): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ChallengeResponse>> {
    let signer = sms.signed(&method, &uri, &headers, &body).await?;
    let request: ChallengeRequest = json(&body)?;
    let deal = &request.deal;
    let deal_id = sms.chain.check_deal(deal, None).await?;
    ensure_signer(signer, deal.scheduler, "ask for an enclave challenge", || {
        format!("only the deal's scheduler {} may", deal.scheduler)
    })?;
    if !deal.is_tee() {
        return Err(Error::NotTee(deal_id));
    }
    let task_id = deal.task_id(request.index).map_err(|e| Error::BadRequest(e.to_string()))?;
    if let Some((address, _)) = sms.store.challenge(task_id).await? {
        return Ok(Json(ChallengeResponse { task_id, address }));
    }
    let key = PrivateKeySigner::random();
    let hex_key = Secret::new(hex::encode(key.to_bytes()));
    let sealed = sms.sealer.seal(&challenge_context(task_id), hex_key.expose().as_bytes())?;
    let address =
        sms.store.insert_challenge(task_id, deal_id, key.address(), &sealed, sms.now_ms()).await?;
    info!(task = %task_id, challenge = %address, "enclave challenge created");
    Ok(Json(ChallengeResponse { task_id, address }))
}

// ------------------------------------------------------------------------ sessions

/// Checks everything a session needs on the chain and from the worker; returns the task.
async fn check_session_request(
    sms: &Sms,
    worker: Address,
    request: &SessionRequest,
) -> Result<B256> {
    let deal: &Deal = &request.deal;
    let deal_id = sms.chain.check_deal(deal, Some(&request.params)).await?;
    if !deal.is_tee() {
        return Err(Error::NotTee(deal_id));
    }
    let task_id = deal.task_id(request.index).map_err(|e| Error::BadRequest(e.to_string()))?;
    let status = sms.chain.task_status(task_id).await?;
    if status != ACTIVE {
        return Err(Error::TaskNotActive { task_id, status });
    }
    let (challenge, _) = sms.store.challenge(task_id).await?.ok_or(Error::NoChallenge(task_id))?;
    let authorization = WorkerpoolAuthorization { worker, task_id, enclave_challenge: challenge };
    if !authorization.is_signed_by(deal.scheduler, &request.authorization) {
        return Err(Error::Unauthorized { worker, task_id });
    }
    Ok(task_id)
}

async fn open_session(
    State(sms): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SessionResponse>> {
    let worker = sms.signed(&method, &uri, &headers, &body).await?;
    let request: SessionRequest = json(&body)?;
    let task_id = check_session_request(&sms, worker, &request).await?;
    let now = sms.now_ms();
    let long_expired = now - 2 * sms.config.max_request_age.as_millis() as i64;
    sms.store.prune(sms.config.clock.now_secs(), long_expired).await?;
    let session_id = B256::from(random_bytes::<32>());
    let nonce = B256::from(random_bytes::<32>());
    let expires_ms = now + sms.config.session_ttl.as_millis() as i64;
    let record = SessionRecord {
        task_id,
        worker,
        nonce,
        request: String::from_utf8(body.to_vec()).map_err(|e| Error::BadRequest(e.to_string()))?,
        expires_ms,
        used: false,
    };
    sms.store.insert_session(session_id, &record).await?;
    if sms.simulation_on() {
        info!(
            task = %task_id, %worker, insecure_simulation = true,
            "session opened (this SMS also accepts INSECURE simulated quotes)"
        );
    } else {
        info!(task = %task_id, %worker, "session opened");
    }
    // On the wire in seconds: the last whole second the session is open.
    let expires_at = expires_ms as u64 / 1000;
    Ok(Json(SessionResponse { session_id, task_id, nonce, expires_at }))
}

async fn attest(
    State(sms): Shared,
    Path(raw): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<AttestResponse>> {
    let session_id: B256 =
        raw.parse().map_err(|_| Error::BadRequest(format!("{raw:?} is not a session id")))?;
    let worker = sms.signed(&method, &uri, &headers, &body).await?;
    let attest: AttestRequest = json(&body)?;
    let simulated = matches!(attest.evidence, Evidence::Simulated(_));
    let outcome = attest_session(&sms, session_id, worker, &attest).await;
    match &outcome {
        Ok((task_id, _)) if simulated => warn!(
            task = %task_id, %worker, attestation = SIMULATION_LABEL, insecure_simulation = true,
            "secrets released to an INSECURE simulated enclave"
        ),
        Ok((task_id, response)) => info!(
            task = %task_id, %worker, attestation = %response.attestation,
            "secrets released to an attested enclave"
        ),
        Err(error) if simulated => warn!(
            session = %session_id, %worker, %error, insecure_simulation = true,
            "INSECURE simulated attestation refused"
        ),
        Err(error) => warn!(session = %session_id, %worker, %error, "attestation refused"),
    }
    outcome.map(|(_, response)| Json(response))
}

async fn attest_session(
    sms: &Sms,
    session_id: B256,
    worker: Address,
    attest: &AttestRequest,
) -> Result<(B256, AttestResponse)> {
    let record = sms
        .store
        .session(session_id)
        .await?
        .ok_or_else(|| Error::Session("unknown session".into()))?;
    if record.worker != worker {
        return Err(Error::Session("the session belongs to another worker".into()));
    }
    if record.used {
        return Err(Error::Attestation(
            "the session was already used: a quote serves one session (replay)".into(),
        ));
    }
    if sms.now_ms() > record.expires_ms {
        return Err(Error::Attestation("the session expired: stale quote".into()));
    }
    let request: SessionRequest = json(record.request.as_bytes())?;
    let recipient = parse_recipient(&attest.enclave_key)?;
    let attested = sms.verify(&attest.evidence)?;
    attested.check_framework(Tag(request.deal.tag).tee_framework())?;
    let app = AppMeasurement::parse(&sms.chain.app_mrenclave(request.deal.app).await?)?;
    let expected = session_report_data(record.task_id, record.nonce, &attest.enclave_key);
    attested.check(&app, &expected)?;
    // The task may have moved on since the session opened.
    let task_id = check_session_request(sms, worker, &request).await?;
    if task_id != record.task_id {
        return Err(Error::corrupt("a session's task changed"));
    }
    let mut secrets = sms.provision(&request, task_id).await?;
    secrets.attestation = attested.kind.to_owned();
    if !sms.store.insert_quote(attest.evidence.digest(), session_id, sms.now_ms()).await? {
        return Err(Error::Attestation("this quote was already used (replay)".into()));
    }
    if !sms.store.use_session(session_id).await? {
        return Err(Error::Attestation(
            "the session was already used: a quote serves one session (replay)".into(),
        ));
    }
    let plaintext = zeroize::Zeroizing::new(
        serde_json::to_vec(&secrets).map_err(|e| Error::corrupt(e.to_string()))?,
    );
    let sealed = seal_to_recipient(&plaintext, &recipient)?;
    Ok((task_id, AttestResponse { secrets: sealed.into(), attestation: attested.kind.to_owned() }))
}

async fn status(State(sms): Shared) -> Json<SmsStatus> {
    let simulation = sms.simulation_on();
    Json(SmsStatus {
        version: env!("CARGO_PKG_VERSION").into(),
        dcap: true,
        simulation,
        warning: simulation.then(|| SIMULATION_WARNING.to_owned()),
        public_url: sms.config.public_url.clone(),
    })
}
/// A request body within the service's limit; an oversized one is refused in JSON, as every
/// error of the service is.
struct Body(axum::body::Bytes);

impl std::ops::Deref for Body {
    type Target = axum::body::Bytes;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self> {
        match axum::body::Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(Error::TooLarge { limit: BODY_LIMIT })
            }
            Err(rejection) => {
                Err(Error::BadRequest(format!("the body could not be read: {rejection}")))
            }
        }
    }
}
