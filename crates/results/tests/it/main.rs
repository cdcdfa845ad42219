//! The result store against a real anvil running the real contracts: who may upload, when,
//! what, and who may download; apps' code published by their owners; and the router's small
//! endpoints without a socket.

mod code;
mod public;
mod router;
mod s3;
mod upload;

use std::{future::Future, time::Duration};

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::local::PrivateKeySigner,
};
use poco_api::{
    http::ErrorBody,
    results::{
        ResultStoreClient, TaskRef, UploadLimits, UploadTicket,
        auth::{self, SignedRequest},
    },
};
use poco_contracts::bindings::IPocoTypes;
use poco_primitives::{
    Deal, ResultCommitment, WorkerpoolAuthorization,
    request::{format_nonce, random_nonce, unix_seconds},
};
use poco_results::{Config, StorageConfig};
use poco_test_utils::{OrderSpec, TestNet};
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// The longest any test may take.
const TEST_LIMIT: Duration = Duration::from_secs(180);

/// Runs `test` with a bound on its duration.
async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_LIMIT, test).await.expect("the test finishes in time");
}

/// A result store served in-process on 127.0.0.1, port 0.
struct Store {
    url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<poco_results::Result<()>>>,
    _dir: TempDir,
}

impl Store {
    /// Starts a store for `net`'s chain with `max_body_bytes` as the body limit (of results and
    /// of apps' code).
    async fn start(net: &TestNet, max_body_bytes: u64) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let storage = StorageConfig::Local { root: dir.path().join("results") };
        Self::start_with(net, max_body_bytes, storage, dir).await
    }

    /// Starts a store keeping its archives in `storage`; `dir` lives as long as it.
    async fn start_with(
        net: &TestNet,
        max_body_bytes: u64,
        storage: StorageConfig,
        dir: TempDir,
    ) -> Self {
        let mut config = Config::new(net.devnet().rpc_url(), net.deployment().poco);
        config.chain.from_block = net.deployment().block;
        config.storage = storage;
        config.limits = UploadLimits { max_body_bytes, ..UploadLimits::default() };
        config.max_code_bytes = max_body_bytes;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a local port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(poco_results::serve(config, listener, async {
            let _ = signal.await;
        }));
        Self { url, shutdown: Some(shutdown), task: Some(task), _dir: dir }
    }

    fn client(&self) -> ResultStoreClient {
        ResultStoreClient::new(&self.url).expect("a valid URL")
    }

    /// Stops the server and waits for it (bounded).
    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the server stops in time")
                .expect("the server task does not panic")
                .expect("the server ends cleanly");
        }
    }
}

/// A matched deal on a fresh devnet.
struct Fixture {
    net: TestNet,
    deal: Deal,
}

impl Fixture {
    /// A devnet with `workers` workers and one deal of trust `trust` and `params`.
    async fn new(workers: usize, trust: u64, params: &str) -> Self {
        let net = TestNet::start(workers).await;
        let accounts = net.accounts().clone();
        let app = net.create_app(&accounts.app_provider, "results-app", B256::ZERO).await;
        let workerpool = net.create_workerpool(&accounts.scheduler, "results pool").await;
        let spec =
            OrderSpec { app, workerpool, trust, params: params.to_owned(), ..OrderSpec::default() };
        let (deal, _) =
            net.match_orders(&accounts.requester, &net.orders(&spec)).await.expect("a deal");
        Self { net, deal }
    }

    fn idx(&self) -> U256 {
        self.deal.botFirst
    }

    fn task(&self) -> TaskRef {
        TaskRef { deal_id: self.deal.id(), index: self.idx() }
    }

    fn task_id(&self) -> B256 {
        self.task().task_id()
    }

    fn authorization(&self, worker: &PrivateKeySigner) -> Bytes {
        WorkerpoolAuthorization {
            worker: worker.address(),
            task_id: self.task_id(),
            enclave_challenge: Address::ZERO,
        }
        .sign(&self.net.accounts().scheduler)
        .expect("the scheduler signs")
    }

    /// The scheduler's upload ticket for `worker`.
    fn ticket(&self, worker: &PrivateKeySigner) -> Bytes {
        UploadTicket { task_id: self.task_id(), worker: worker.address() }
            .sign(&self.net.accounts().scheduler)
            .expect("the scheduler signs")
    }

    async fn contribute(&self, worker: &PrivateKeySigner, digest: B256) {
        let commitment = ResultCommitment::new(worker.address(), self.task_id(), digest);
        let (client, poco) = self.net.poco(worker);
        let call = poco.contribute(
            IPocoTypes::Deal::from(&self.deal),
            self.idx(),
            commitment.result_hash,
            commitment.result_seal,
            Address::ZERO,
            Bytes::new(),
            self.authorization(worker),
        );
        client.send(call).await.expect("the contribution is accepted");
    }

    async fn reveal(&self, worker: &PrivateKeySigner, digest: B256) {
        let (client, poco) = self.net.poco(worker);
        client.send(poco.reveal(self.task_id(), digest)).await.expect("the reveal is accepted");
    }

    async fn finalize(&self, digest: B256, mut contributors: Vec<Address>) {
        contributors.sort();
        let (client, poco) = self.net.poco(&self.net.accounts().scheduler);
        let call = poco.finalize(
            IPocoTypes::Deal::from(&self.deal),
            self.idx(),
            digest,
            Bytes::new(),
            Bytes::new(),
            contributors,
        );
        client.send(call).await.expect("finalize is accepted");
    }

    async fn contribute_and_finalize(&self, worker: &PrivateKeySigner, digest: B256) {
        let (client, poco) = self.net.poco(worker);
        let call = poco.contributeAndFinalize(
            IPocoTypes::Deal::from(&self.deal),
            self.idx(),
            digest,
            Bytes::new(),
            Bytes::new(),
            Address::ZERO,
            Bytes::new(),
            self.authorization(worker),
        );
        client.send(call).await.expect("contributeAndFinalize is accepted");
    }

    /// The task's on-chain result digest.
    async fn on_chain_digest(&self) -> B256 {
        let poco = self.net.owner().poco(self.net.deployment().poco);
        poco.viewTask(self.task_id()).call().await.expect("viewTask").resultDigest
    }
}

/// An upload request built by hand, so that tests can break any part of it.
#[derive(Clone)]
struct RawUpload {
    task: TaskRef,
    task_id: B256,
    body: Vec<u8>,
    /// The body hash the request signs and announces.
    signed_body: Vec<u8>,
    ticket: Option<Bytes>,
    /// The worker named in the request.
    worker: Address,
    /// Who signs the request (none: no signature header).
    signer: Option<PrivateKeySigner>,
    timestamp: u64,
    nonce: [u8; 16],
}

impl RawUpload {
    fn new(fixture: &Fixture, worker: &PrivateKeySigner, body: Vec<u8>) -> Self {
        Self {
            task: fixture.task(),
            task_id: fixture.task_id(),
            signed_body: body.clone(),
            body,
            ticket: Some(fixture.ticket(worker)),
            worker: worker.address(),
            signer: Some(worker.clone()),
            timestamp: unix_seconds(),
            nonce: random_nonce(),
        }
    }

    /// Sends the request; returns the status and the error body (if any).
    async fn send(&self, store: &Store) -> (u16, Option<ErrorBody>) {
        let path = format!("/results/{}", self.task_id);
        let body_sha256 = auth::sha256(&self.signed_body);
        let mut request = reqwest::Client::new()
            .put(format!("{}{path}", store.url))
            .header(auth::HEADER_DEAL_ID, self.task.deal_id.to_string())
            .header(auth::HEADER_TASK_INDEX, self.task.index.to_string())
            .header(auth::HEADER_WORKER, self.worker.to_string())
            .header(auth::HEADER_TIMESTAMP, self.timestamp.to_string())
            .header(auth::HEADER_REQUEST_NONCE, format_nonce(&self.nonce))
            .header(auth::HEADER_CONTENT_SHA256, body_sha256.to_string());
        if let Some(ticket) = &self.ticket {
            request = request.header(auth::HEADER_UPLOAD_TICKET, ticket.to_string());
        }
        if let Some(signer) = &self.signer {
            let signed = SignedRequest {
                method: "PUT",
                path: &path,
                timestamp: self.timestamp,
                nonce: self.nonce,
                body_sha256,
            };
            let signature = signed.sign(signer).expect("signing works");
            request = request.header(auth::HEADER_SIGNATURE, signature.to_string());
        }
        answer(request.body(self.body.clone())).await
    }

    /// Sends the request and checks it is refused with `status` and `code`.
    async fn refused(&self, store: &Store, status: u16, code: &str) -> String {
        refusal_message(self.send(store).await, status, code)
    }
}

/// Sends `request` (bounded); returns the status and the error body (if any).
async fn answer(request: reqwest::RequestBuilder) -> (u16, Option<ErrorBody>) {
    let response =
        request.timeout(Duration::from_secs(30)).send().await.expect("the store answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).ok())
}

/// Checks that an answer is a refusal with `status` and `code`; returns its message.
fn refusal_message((got, body): (u16, Option<ErrorBody>), status: u16, code: &str) -> String {
    let body = body.unwrap_or_else(|| panic!("a JSON error body with status {got}"));
    assert_eq!((got, body.code.as_str()), (status, code), "{}", body.error);
    body.error
}

/// The status and code of a client's refusal.
fn refused_code(error: &poco_api::results::Error) -> (u16, &str) {
    match error {
        poco_api::results::Error::Refused { status, code, .. } => (*status, code.as_str()),
        other => panic!("expected a refusal, got {other}"),
    }
}
