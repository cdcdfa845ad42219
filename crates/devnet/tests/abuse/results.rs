//! The result store, attacked by strangers who hold no stake in the task: a flood of download
//! challenges, a flood of upload requests signed by throwaway keys (filling the replay cache),
//! and a `HEAD` asking what a private result is. A real anvil runs the real contracts; the
//! store is served on 127.0.0.1.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use alloy::{
    primitives::{Address, B256, Bytes as AlloyBytes},
    signers::local::PrivateKeySigner,
};
use bytes::Bytes;
use poco_api::results::{
    Error, ResultStoreClient, TaskRef, UploadTicket,
    archive::{ArchiveLimits, inspect_archive, pack_files},
    auth,
};
use poco_contracts::bindings::IPocoTypes;
use poco_primitives::{
    Deal, WorkerpoolAuthorization,
    request::{SignedRequest, format_nonce},
};
use poco_results::{Config, StorageConfig};
use poco_test_utils::{OrderSpec, TestNet};
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::oneshot, task::JoinSet};

/// The longest any of these tests may take.
const TEST_LIMIT: Duration = Duration::from_secs(240);
/// Download challenges the stranger asks for (the store used to keep 10,000 pending).
const CHALLENGE_FLOOD: u64 = 24_000;
/// Upload requests the stranger sends, each signed by a throwaway key with a bad ticket.
const UPLOAD_FLOOD: u64 = 3_000;
/// The replay cache of the store attacked by the upload flood: smaller than the flood.
const REPLAY_RECORDS: usize = 2_000;
/// Requests the stranger keeps in flight.
const FLOOD_CONCURRENCY: u64 = 16;

async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_LIMIT, test).await.expect("the test finishes in time");
}

/// A result store served on 127.0.0.1, port 0, for `net`'s chain.
struct Store {
    url: String,
    shutdown: Option<oneshot::Sender<()>>,
    _dir: TempDir,
}

impl Store {
    /// A store with the default limits, or a replay cache of `max_replay_records`.
    async fn start(net: &TestNet, max_replay_records: Option<usize>) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = Config::new(net.devnet().rpc_url(), net.deployment().poco);
        config.chain.from_block = net.deployment().block;
        config.storage = StorageConfig::Local { root: dir.path().join("results") };
        if let Some(records) = max_replay_records {
            config.max_replay_records = records;
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a local port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let (shutdown, signal) = oneshot::channel::<()>();
        tokio::spawn(poco_results::serve(config, listener, async {
            let _ = signal.await;
        }));
        Self { url, shutdown: Some(shutdown), _dir: dir }
    }

    fn client(&self) -> ResultStoreClient {
        ResultStoreClient::new(&self.url).expect("a valid URL")
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A trust-1 deal on a fresh devnet (private results), its task finalized by its worker on
/// `archive`'s digest.
struct Fixture {
    net: TestNet,
    deal: Deal,
    archive: Vec<u8>,
}

impl Fixture {
    async fn finalized() -> Self {
        let net = TestNet::start(1).await;
        let accounts = net.accounts().clone();
        let app = net.create_app(&accounts.app_provider, "abuse-app", B256::ZERO).await;
        let workerpool = net.create_workerpool(&accounts.scheduler, "abuse pool").await;
        let spec = OrderSpec { app, workerpool, trust: 1, ..OrderSpec::default() };
        let (deal, _) =
            net.match_orders(&accounts.requester, &net.orders(&spec)).await.expect("a deal");
        let archive = pack_files([("result.txt", &b"42\n"[..])]).expect("an archive");
        let fixture = Self { net, deal, archive };
        fixture.contribute_and_finalize().await;
        fixture
    }

    fn task(&self) -> TaskRef {
        TaskRef { deal_id: self.deal.id(), index: self.deal.botFirst }
    }

    fn task_id(&self) -> B256 {
        self.task().task_id()
    }

    fn worker(&self) -> &PrivateKeySigner {
        &self.net.accounts().workers[0]
    }

    fn digest(&self) -> B256 {
        inspect_archive(&self.archive, &ArchiveLimits::default()).expect("a clean archive").digest
    }

    async fn contribute_and_finalize(&self) {
        let worker = self.worker();
        let authorization = WorkerpoolAuthorization {
            worker: worker.address(),
            task_id: self.task_id(),
            enclave_challenge: Address::ZERO,
        }
        .sign(&self.net.accounts().scheduler)
        .expect("the scheduler signs");
        let (client, poco) = self.net.poco(worker);
        let call = poco.contributeAndFinalize(
            IPocoTypes::Deal::from(&self.deal),
            self.deal.botFirst,
            self.digest(),
            AlloyBytes::new(),
            AlloyBytes::new(),
            Address::ZERO,
            AlloyBytes::new(),
            authorization,
        );
        client.send(call).await.expect("contributeAndFinalize is accepted");
    }

    /// The honest worker's upload, with the scheduler's ticket.
    async fn upload(
        &self,
        store: &Store,
    ) -> poco_api::results::Result<poco_api::results::UploadReceipt> {
        let ticket = UploadTicket { task_id: self.task_id(), worker: self.worker().address() }
            .sign(&self.net.accounts().scheduler)
            .expect("the scheduler signs");
        store
            .client()
            .upload(self.task(), Bytes::from(self.archive.clone()), &ticket, self.worker())
            .await
    }
}

/// Runs `attack(i)` for `i` in `0..total`, `FLOOD_CONCURRENCY` at a time, counting the
/// requests done in `sent`.
fn flood<F, Fut>(total: u64, sent: &Arc<AtomicU64>, attack: F) -> JoinSet<()>
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let mut attackers = JoinSet::new();
    for lane in 0..FLOOD_CONCURRENCY {
        let (sent, attack) = (sent.clone(), attack.clone());
        attackers.spawn(async move {
            let mut i = lane;
            while i < total {
                attack(i).await;
                sent.fetch_add(1, Ordering::Relaxed);
                i += FLOOD_CONCURRENCY;
            }
        });
    }
    attackers
}

/// Waits (bounded) until `sent` reaches `count`.
async fn wait_for(sent: &AtomicU64, count: u64, what: &str) {
    for _ in 0..2_400 {
        if sent.load(Ordering::Relaxed) >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the flood did not reach {count} {what} in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_flood_does_not_lock_the_beneficiary_out() {
    bounded(Box::pin(async {
        let fixture = Fixture::finalized().await;
        let store = Store::start(&fixture.net, None).await;
        fixture.upload(&store).await.expect("the honest upload");
        let task_id = fixture.task_id();

        // The stranger asks for challenges as fast as it can, through one client.
        let http = reqwest::Client::new();
        let url = format!("{}/results/{task_id}/challenge", store.url);
        let sent = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let attack = {
            let refused = refused.clone();
            move |_| {
                let (http, url, refused) = (http.clone(), url.clone(), refused.clone());
                async move {
                    let answer = http.get(&url).send().await.expect("the store answers");
                    if answer.status() != 200 {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        };
        let mut attackers = flood(CHALLENGE_FLOOD, &sent, attack);

        // Past what the store used to keep pending, and while the flood goes on, the
        // beneficiary downloads, three times.
        wait_for(&sent, 12_000, "challenges").await;
        let beneficiary = &fixture.net.accounts().requester;
        for _ in 0..3 {
            let downloaded = store
                .client()
                .download(task_id, beneficiary)
                .await
                .expect("the beneficiary downloads during the flood");
            downloaded.verify(fixture.digest()).expect("the consensus result");
        }
        let during = sent.load(Ordering::Relaxed);
        assert!(during < CHALLENGE_FLOOD, "the downloads happened during the flood ({during})");
        while let Some(done) = attackers.join_next().await {
            done.expect("an attacker lane does not panic");
        }
        assert_eq!(sent.load(Ordering::Relaxed), CHALLENGE_FLOOD);
        // Issuing cost nothing: no challenge was refused, and the store remembers only the
        // three the beneficiary used.
        assert_eq!(refused.load(Ordering::Relaxed), 0);
        let metrics = reqwest::get(format!("{}/metrics", store.url)).await.unwrap();
        let text = metrics.text().await.unwrap();
        assert!(text.contains("poco_results_used_challenges 3\n"), "{text}");
    }))
    .await;
}

/// A stranger's upload request: signed by a throwaway key, well formed, for the real task,
/// with a ticket the stranger signed itself.
async fn throwaway_upload(http: &reqwest::Client, url: &str, task: TaskRef, body: &[u8]) -> u16 {
    let stranger = PrivateKeySigner::random();
    let path = format!("/results/{}", task.task_id());
    let request = SignedRequest::fresh("PUT", &path, body);
    let signature = request.sign(&stranger).expect("signing works");
    let ticket = UploadTicket { task_id: task.task_id(), worker: stranger.address() }
        .sign(&stranger)
        .expect("signing works");
    let response = http
        .put(format!("{url}{path}"))
        .header(auth::HEADER_DEAL_ID, task.deal_id.to_string())
        .header(auth::HEADER_TASK_INDEX, task.index.to_string())
        .header(auth::HEADER_WORKER, stranger.address().to_string())
        .header(auth::HEADER_TIMESTAMP, request.timestamp.to_string())
        .header(auth::HEADER_REQUEST_NONCE, format_nonce(&request.nonce))
        .header(auth::HEADER_CONTENT_SHA256, request.body_sha256.to_string())
        .header(auth::HEADER_UPLOAD_TICKET, ticket.to_string())
        .header(auth::HEADER_SIGNATURE, signature.to_string())
        .body(body.to_vec())
        .send()
        .await
        .expect("the store answers");
    response.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_throwaway_signatures_does_not_block_the_chosen_uploader() {
    bounded(Box::pin(async {
        let fixture = Fixture::finalized().await;
        let store = Store::start(&fixture.net, Some(REPLAY_RECORDS)).await;
        let task = fixture.task();

        let http = reqwest::Client::new();
        let url = store.url.clone();
        let body = fixture.archive.clone();
        let sent = Arc::new(AtomicU64::new(0));
        let other_answers = Arc::new(AtomicU64::new(0));
        let attack = {
            let other_answers = other_answers.clone();
            move |_| {
                let (http, url, body, other) =
                    (http.clone(), url.clone(), body.clone(), other_answers.clone());
                async move {
                    // Refused as not chosen, every time: never "busy".
                    if throwaway_upload(&http, &url, task, &body).await != 403 {
                        other.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        };
        let mut attackers = flood(UPLOAD_FLOOD, &sent, attack);

        // Past the replay cache's size, and while the flood goes on, the chosen worker uploads.
        wait_for(&sent, REPLAY_RECORDS as u64 + 200, "uploads").await;
        let receipt = fixture.upload(&store).await;
        let during = sent.load(Ordering::Relaxed);
        let receipt = receipt.expect("the chosen worker's upload is accepted during the flood");
        assert_eq!(receipt.digest, fixture.digest());
        assert!(during < UPLOAD_FLOOD, "the upload happened during the flood ({during})");
        while let Some(done) = attackers.join_next().await {
            done.expect("an attacker lane does not panic");
        }
        assert_eq!(other_answers.load(Ordering::Relaxed), 0, "every throwaway request got 403");
        let downloaded = store
            .client()
            .download(fixture.task_id(), &fixture.net.accounts().requester)
            .await
            .expect("the beneficiary downloads the honest upload");
        downloaded.verify(fixture.digest()).unwrap();
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_learns_only_that_a_private_result_exists() {
    bounded(Box::pin(async {
        let fixture = Fixture::finalized().await;
        let store = Store::start(&fixture.net, Some(REPLAY_RECORDS)).await;
        let task_id = fixture.task_id();
        let url = format!("{}/results/{task_id}", store.url);
        let http = reqwest::Client::new();

        let before = http.head(&url).send().await.unwrap();
        assert_eq!(before.status(), 404);
        fixture.upload(&store).await.expect("the honest upload");

        // Unsigned: it exists, nothing more.
        let head = http.head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200);
        let leaked: Vec<_> = head
            .headers()
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("x-poco-"))
            .map(|(name, value)| format!("{name}: {value:?}"))
            .collect();
        assert!(leaked.is_empty(), "a stranger sees {leaked:?}");
        let length = head.headers().get("content-length").map(|v| v.to_str().unwrap().to_owned());
        assert!(matches!(length.as_deref(), None | Some("0")), "the size leaks: {length:?}");
        assert!(store.client().exists(task_id).await.unwrap());

        // Signed by the stranger's own key: refused, still nothing.
        let stranger = PrivateKeySigner::random();
        let error = store.client().info(task_id, &stranger).await.unwrap_err();
        assert!(matches!(error, Error::Refused { status: 403, .. }), "{error}");

        // Meanwhile the beneficiary and the deal's scheduler get the digest.
        for entitled in [&fixture.net.accounts().requester, &fixture.net.accounts().scheduler] {
            let info = store.client().info(task_id, entitled).await.unwrap().expect("stored");
            assert_eq!(info.digest, fixture.digest());
            assert_eq!(info.size, fixture.archive.len() as u64);
            assert!(!info.public);
        }
    }))
    .await;
}
