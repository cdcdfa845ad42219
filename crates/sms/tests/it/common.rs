//! The fixture of the SMS tests: a devnet with a TEE app (registered with the simulated
//! measurement of its module), a dataset, a workerpool, and an SMS on a manual clock trusting a
//! fresh simulation key; plus the parts a test plays itself (scheduler, worker, enclave).

use std::{fmt::Debug, path::PathBuf, time::Duration};

use alloy::{
    primitives::{Address, B256, Bytes},
    signers::local::PrivateKeySigner,
};
use poco_api::sms::{
    AppMeasurement, AttestRequest, AttestResponse, DatasetKey, Error, Evidence, ResultKeyPair,
    SessionRequest, SessionSecrets, SimulatedQuote, SmsClient, open_session_secrets,
    session_report_data, simulated_measurement,
};
use poco_contracts::bindings::IPocoTypes;
use poco_primitives::{
    Deal, Tag, WorkerpoolAuthorization,
    request::{RequestHeaders, SignedRequest},
};
use poco_sms::{Clock, SimulationConfig, SmsConfig};
use poco_test_utils::{OrderSpec, TestNet, app_module, wait_until};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// The example app the TEE app is registered as.
pub(crate) const APP: &str = "confidential";
/// The requester secret the deals name.
pub(crate) const SECRET_NAME: &str = "api-token";
/// Params naming [`SECRET_NAME`] as secret 1 and asking for result encryption.
pub(crate) const PARAMS: &str =
    r#"{"iexec_secrets":{"1":"api-token"},"iexec_result_encryption":true}"#;

/// The values a test pushed (the dataset key, the requester's, the app developer's and the
/// beneficiary's).
pub(crate) struct Pushed {
    pub(crate) dataset_key: DatasetKey,
    pub(crate) requester_secret: String,
    pub(crate) app_secret: String,
    pub(crate) result_key: ResultKeyPair,
}

/// A devnet and an SMS.
/// Runs an SMS with `config` on `listener` until the sender is dropped.
fn serve(config: SmsConfig, listener: TcpListener) -> (JoinHandle<()>, oneshot::Sender<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        poco_sms::serve(config, listener, async {
            let _ = stopped.await;
        })
        .await
        .expect("the SMS runs");
    });
    (handle, stop)
}

/// A second SMS instance ([`Fixture::start_another_sms`]).
pub(crate) struct OtherSms {
    pub(crate) url: String,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<()>,
}

impl OtherSms {
    /// A client of it.
    pub(crate) fn client(&self) -> SmsClient {
        SmsClient::new(&self.url)
    }

    /// Stops it and waits until it is gone.
    pub(crate) async fn stop(self) {
        drop(self.stop);
        self.handle.await.expect("the other SMS stops cleanly");
    }
}

pub(crate) struct Fixture {
    pub(crate) net: TestNet,
    /// The TEE app.
    pub(crate) app: Address,
    /// The module the app's measurement is of.
    pub(crate) module: Vec<u8>,
    pub(crate) dataset: Address,
    pub(crate) workerpool: Address,
    /// The simulation key the SMS trusts.
    pub(crate) simulation_key: PrivateKeySigner,
    /// The SMS's clock.
    pub(crate) clock: Clock,
    /// Whether the SMS (re)starts with the INSECURE simulation on.
    pub(crate) simulation: bool,
    pub(crate) url: String,
    /// The SMS's PostgreSQL database; `None`: SQLite in [`Self::data_dir`].
    database: Option<poco_test_utils::postgres::TestDatabase>,
    address: String,
    dir: TempDir,
    running: Option<(JoinHandle<()>, oneshot::Sender<()>)>,
    salt: u64,
}

impl Fixture {
    /// A devnet with two worker accounts, the assets, and a running SMS in simulation mode,
    /// its secrets in SQLite.
    pub(crate) async fn start() -> Self {
        Self::start_on(None).await
    }

    /// The same, its secrets in a PostgreSQL database of its own.
    pub(crate) async fn start_on_postgres() -> Self {
        let database = poco_test_utils::postgres::TestDatabase::create("sms_it").await;
        Self::start_on(Some(database)).await
    }

    async fn start_on(database: Option<poco_test_utils::postgres::TestDatabase>) -> Self {
        let net = TestNet::start(2).await;
        let accounts = net.accounts().clone();
        let module = app_module(APP);
        let checksum = B256::from(<[u8; 32]>::from(Sha256::digest(&module)));
        let mrenclave = AppMeasurement::encode(simulated_measurement(&module).as_slice());
        let app = net
            .create_tee_app(
                &accounts.app_provider,
                "tee-confidential",
                "https://apps.example/confidential.wasm",
                checksum,
                mrenclave,
            )
            .await;
        let dataset =
            net.create_dataset(&accounts.dataset_provider, "records", B256::repeat_byte(7)).await;
        let workerpool = net.create_workerpool(&accounts.scheduler, "tee pool").await;
        let start_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
                as u64;
        let mut fixture = Self {
            net,
            app,
            module,
            dataset,
            workerpool,
            simulation_key: PrivateKeySigner::random(),
            clock: Clock::manual(start_ms),
            simulation: true,
            url: String::new(),
            database,
            address: "127.0.0.1:0".into(),
            dir: tempfile::tempdir().unwrap(),
            running: None,
            salt: 0,
        };
        fixture.start_sms().await;
        fixture
    }

    /// Where the SMS keeps its database and master key.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("sms")
    }

    /// The SMS's configuration.
    pub(crate) fn config(&self) -> SmsConfig {
        let dir = self.data_dir();
        let mut config = SmsConfig::new(
            self.net.devnet().rpc_url(),
            self.net.deployment().poco,
            match &self.database {
                Some(database) => database.url.clone(),
                None => format!("sqlite://{}", dir.join("sms.db").display()),
            },
            dir.join("master.key"),
        );
        config.clock = self.clock.clone();
        if self.simulation {
            config.attestation.simulation =
                Some(SimulationConfig { trusted_signers: vec![self.simulation_key.address()] });
        }
        config
    }

    /// Starts the SMS (again, on the same address and data after [`Self::stop_sms`]).
    pub(crate) async fn start_sms(&mut self) {
        poco_chain::files::create_private_dirs(&self.data_dir()).unwrap();
        let listener = TcpListener::bind(&self.address).await.unwrap();
        self.address = listener.local_addr().unwrap().to_string();
        self.url = format!("http://{}", self.address);
        self.running = Some(serve(self.config(), listener));
        let client = self.sms();
        wait_until("the SMS answers", Duration::from_secs(30), || async {
            client.status().await.is_ok()
        })
        .await;
    }

    /// Another instance of the SMS on the same database and the same master key file, as a
    /// second machine given that key runs it, on an address of its own (127.0.0.2).
    pub(crate) async fn start_another_sms(&self) -> OtherSms {
        let listener = TcpListener::bind("127.0.0.2:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let client = SmsClient::new(&url);
        let (handle, stop) = serve(self.config(), listener);
        wait_until("the other SMS answers", Duration::from_secs(30), || async {
            client.status().await.is_ok()
        })
        .await;
        OtherSms { url, stop, handle }
    }

    /// Stops the SMS and waits until it is gone.
    pub(crate) async fn stop_sms(&mut self) {
        if let Some((handle, stop)) = self.running.take() {
            drop(stop);
            handle.await.expect("the SMS stops cleanly");
        }
    }

    /// Stops the SMS and drops its PostgreSQL database, if it has one.
    pub(crate) async fn finish(mut self) {
        self.stop_sms().await;
        if let Some(database) = self.database.take() {
            database.drop_database().await;
        }
    }

    /// A client of the SMS.
    pub(crate) fn sms(&self) -> SmsClient {
        SmsClient::new(&self.url)
    }

    /// The scheduler's key.
    pub(crate) fn scheduler(&self) -> &PrivateKeySigner {
        &self.net.accounts().scheduler
    }

    /// Worker `index`'s key.
    pub(crate) fn worker(&self, index: usize) -> &PrivateKeySigner {
        &self.net.accounts().workers[index]
    }

    /// Matches a deal of the TEE app and the dataset with `tag` and `params`.
    pub(crate) async fn deal(&mut self, tag: Tag, params: &str) -> Deal {
        self.salt += 1;
        let spec = OrderSpec {
            app: self.app,
            dataset: Some(self.dataset),
            workerpool: self.workerpool,
            tag: tag.0,
            params: params.to_owned(),
            salt: self.salt,
            ..OrderSpec::default()
        };
        let orders = self.net.orders(&spec);
        self.net.match_orders(&self.net.accounts().requester, &orders).await.unwrap().0
    }

    /// Initializes the first task of `deal` on-chain (ACTIVE); returns it.
    pub(crate) async fn initialize(&self, deal: &Deal) -> B256 {
        let (client, poco) = self.net.poco(self.scheduler());
        client.send(poco.initialize(IPocoTypes::Deal::from(deal), deal.botFirst)).await.unwrap();
        deal.task_id(deal.botFirst).unwrap()
    }

    /// Claims the first task of `deal` after its final deadline (FAILED).
    pub(crate) async fn fail_by_claim(&self, deal: &Deal) {
        let now = self.net.now().await;
        let deadline: u64 = deal.final_deadline().saturating_to();
        self.net.warp(deadline.saturating_sub(now) + 1).await;
        let (client, poco) = self.net.poco(self.scheduler());
        client
            .send(poco.claim(IPocoTypes::Deal::from(deal), deal.botFirst, Vec::new()))
            .await
            .unwrap();
    }

    /// The first task's enclave challenge, asked by the deal's scheduler.
    pub(crate) async fn challenge(&self, deal: &Deal) -> Address {
        let response = self.sms().challenge(self.scheduler(), deal, deal.botFirst).await.unwrap();
        assert_eq!(response.task_id, deal.task_id(deal.botFirst).unwrap());
        response.address
    }

    /// The scheduler's authorization of `worker` for `task_id` and `challenge`.
    pub(crate) fn authorize(&self, worker: Address, task_id: B256, challenge: Address) -> Bytes {
        WorkerpoolAuthorization { worker, task_id, enclave_challenge: challenge }
            .sign(self.scheduler())
            .unwrap()
    }

    /// The session request of the first task of `deal` with `authorization`.
    pub(crate) fn session_request(
        deal: &Deal,
        params: &str,
        authorization: Bytes,
    ) -> SessionRequest {
        SessionRequest {
            deal: deal.clone(),
            index: deal.botFirst,
            params: params.to_owned(),
            authorization,
        }
    }

    /// A TEE deal with [`PARAMS`], its first task ACTIVE with a challenge, and worker 0's
    /// session request for it.
    pub(crate) async fn active_task(&mut self) -> (Deal, Address, SessionRequest) {
        let deal = self.deal(Tag::TEE, PARAMS).await;
        let challenge = self.challenge(&deal).await;
        let task_id = self.initialize(&deal).await;
        let authorization = self.authorize(self.worker(0).address(), task_id, challenge);
        let request = Self::session_request(&deal, PARAMS, authorization);
        (deal, challenge, request)
    }

    /// Pushes a dataset key, the requester secret, an app developer secret and a result key,
    /// each signed by its owner.
    pub(crate) async fn push_secrets(&self) -> Pushed {
        let accounts = self.net.accounts();
        let sms = self.sms();
        let pushed = Pushed {
            dataset_key: DatasetKey::generate(),
            requester_secret: "requester-token-5b1f0c".into(),
            app_secret: "developer-license-93d2e7".into(),
            result_key: ResultKeyPair::generate(),
        };
        sms.push_dataset_key(&accounts.dataset_provider, self.dataset, &pushed.dataset_key)
            .await
            .unwrap();
        sms.push_requester_secret(&accounts.requester, SECRET_NAME, &pushed.requester_secret)
            .await
            .unwrap();
        sms.push_app_secret(&accounts.app_provider, self.app, &pushed.app_secret).await.unwrap();
        sms.push_result_key(&accounts.requester, &pushed.result_key.recipient()).await.unwrap();
        pushed
    }

    /// Sends a request with the signature headers `headers` (right or wrong); returns the
    /// status and the JSON answer (`null` when there is none).
    pub(crate) async fn send_signed(
        &self,
        method: &str,
        path: &str,
        headers: &RequestHeaders,
        body: &[u8],
    ) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// Sends a request with the signature headers `headers`; returns the status and the
    /// refusal code (empty on success).
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &RequestHeaders,
        body: &[u8],
    ) -> (u16, String) {
        let (status, answer) = self.send_signed(method, path, headers, body).await;
        (status, answer.get("code").and_then(|c| c.as_str()).unwrap_or_default().to_owned())
    }

    /// Sends a request signed with `signer` but claiming to come from `claimed`, stamped
    /// `timestamp` (unix seconds, or whatever a test tries) with a fresh nonce; returns the
    /// status and the refusal code (empty on success).
    pub(crate) async fn raw(
        &self,
        method: &str,
        path: &str,
        signer: &PrivateKeySigner,
        claimed: Address,
        timestamp: u64,
        body: &[u8],
    ) -> (u16, String) {
        let headers =
            RequestHeaders { address: claimed, ..sign(signer, method, path, timestamp, body) };
        self.send(method, path, &headers, body).await
    }
}

/// The signature headers of `signer`'s request `method path` with `body`, stamped `timestamp`
/// (unix seconds, or whatever a test tries) and a fresh random nonce.
pub(crate) fn sign(
    signer: &PrivateKeySigner,
    method: &str,
    path: &str,
    timestamp: u64,
    body: &[u8],
) -> RequestHeaders {
    let request = SignedRequest { timestamp, ..SignedRequest::fresh(method, path, body) };
    request.headers_signed_by(signer).unwrap()
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some((handle, _)) = self.running.take() {
            handle.abort();
        }
    }
}

/// A simulated enclave: a session key and the simulation key it quotes with.
pub(crate) struct Enclave {
    pub(crate) key: ResultKeyPair,
    pub(crate) attestation_key: PrivateKeySigner,
    pub(crate) module: Vec<u8>,
}

impl Enclave {
    /// An enclave running `module`, quoting with `attestation_key`.
    pub(crate) fn new(attestation_key: &PrivateKeySigner, module: &[u8]) -> Self {
        Self {
            key: ResultKeyPair::generate(),
            attestation_key: attestation_key.clone(),
            module: module.to_vec(),
        }
    }

    /// Its quote for a session of `task_id` with `nonce`, binding its own session key.
    pub(crate) fn attest_request(&self, task_id: B256, nonce: B256) -> AttestRequest {
        let enclave_key = self.key.recipient();
        let report_data = session_report_data(task_id, nonce, &enclave_key);
        let quote = SimulatedQuote::sign(
            &self.attestation_key,
            simulated_measurement(&self.module).as_slice(),
            report_data,
        )
        .unwrap();
        AttestRequest { evidence: Evidence::Simulated(quote), enclave_key }
    }

    /// The secrets of an attested session.
    pub(crate) fn open(&self, response: &AttestResponse) -> SessionSecrets {
        open_session_secrets(response, &self.key.identity()).unwrap()
    }
}

/// Asserts that `outcome` is the SMS refusing with `status` and `code`; returns its message.
#[track_caller]
pub(crate) fn refused<T: Debug>(outcome: Result<T, Error>, status: u16, code: &str) -> String {
    match outcome {
        Err(Error::Refused { status: got, code: got_code, message }) => {
            assert_eq!((got, got_code.as_str()), (status, code), "{message}");
            message
        }
        other => panic!("expected a refusal {status} {code}, got {other:?}"),
    }
}
