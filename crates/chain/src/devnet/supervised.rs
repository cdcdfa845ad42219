//! The devnet's chain node, supervised: it keeps its endpoint when anvil dies, and nothing a
//! client was told survives only in anvil's memory.
//!
//! Anvil keeps its chain in memory and saves it now and then; killed between two saves, it
//! forgets the last blocks, which the devnet's services have already acted on (a deal they
//! scheduled vanishes, a transaction they saw mined is gone, the chain goes backwards under
//! them). Started again, it takes a new port. The devnet therefore puts itself in front of
//! anvil, on an address that does not change:
//!
//! - **Writes are answered only once saved.** A request that may change the chain (anything but
//!   the read methods of [`READ_METHODS`]) goes to one writer, which forwards the writes waiting
//!   in order, waits until anvil has mined them, takes anvil's state (`anvil_dumpState`) and
//!   saves it (a temporary file, flushed, renamed over the current one, whose previous version
//!   is kept): only then are their answers sent, several writes sharing one save.
//! - **Reads show nothing unsaved.** A read's answer waits until every write forwarded before
//!   it is saved, so no client ever sees a block that a kill could take back.
//! - **A dead anvil is restarted at once**, from the last save (or the one before, if the last
//!   cannot be loaded), and the writes forwarded since that save are sent again in their order:
//!   the chain the clients saw is the chain they get. Requests wait meanwhile (up to
//!   [`WAIT_FOR_NODE`]), so a restart looks like a slow node, not a lost one.
//!
//! The node's state is `node.json` beside the chain state ([`NodeStatus`]): its endpoint, the
//! anvil process, how often it was restarted and why; `poco devnet status` shows it.
//!
//! Who could lose what: only a write whose answer was never sent (the devnet process itself
//! killed while it waits for its save); its client sees a broken connection and sends it
//! again. The cost is one state save per group of writes, which grows with the chain's history
//! (about 20 ms at 300 blocks, 100 ms at 2,000 on this project's machines).

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{
    Request, Response, StatusCode, body::Incoming, header, server::conn::http1, service::service_fn,
};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::{
    net::TcpListener,
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};
use tracing::{error, info, warn};

use super::{AnvilProcess, DevnetConfig};
use crate::Error;

/// The JSON-RPC methods that only read the chain; every other method is taken for a write.
pub const READ_METHODS: &[&str] = &[
    "eth_accounts",
    "eth_blobBaseFee",
    "eth_blockNumber",
    "eth_call",
    "eth_chainId",
    "eth_estimateGas",
    "eth_feeHistory",
    "eth_gasPrice",
    "eth_getBalance",
    "eth_getBlockByHash",
    "eth_getBlockByNumber",
    "eth_getBlockReceipts",
    "eth_getBlockTransactionCountByHash",
    "eth_getBlockTransactionCountByNumber",
    "eth_getCode",
    "eth_getLogs",
    "eth_getProof",
    "eth_getStorageAt",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionByHash",
    "eth_getTransactionCount",
    "eth_getTransactionReceipt",
    "eth_maxPriorityFeePerGas",
    "eth_syncing",
    "net_listening",
    "net_version",
    "web3_clientVersion",
    "anvil_nodeInfo",
    "txpool_status",
];

/// Longest time a request waits for the node to be back (or its write to be saved) before it
/// is answered 503.
pub const WAIT_FOR_NODE: Duration = Duration::from_secs(60);

/// Largest request accepted (a deployment carries contract code).
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// The chain state as last saved, the one before it, and the temporary file a save writes.
const STATE_FILE: &str = "state.gz";
const PREVIOUS_STATE_FILE: &str = "state.previous.gz";
const PARTIAL_STATE_FILE: &str = "state.gz.partial";
/// The state file of devnets made before the node was supervised (anvil's own JSON).
const LEGACY_STATE_FILE: &str = "state.json";
/// The node's status, for `poco devnet status`.
const STATUS_FILE: &str = "node.json";

/// How often the writer looks whether anvil still runs, when no write keeps it busy.
const WATCH_PERIOD: Duration = Duration::from_millis(200);

/// What `node.json` says of the devnet's chain node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// The endpoint clients use; the same across restarts of anvil and of the devnet.
    pub endpoint: String,
    /// The anvil process serving it now.
    pub pid: u32,
    /// `running`, or `restarting` while anvil is started again.
    pub state: NodeState,
    /// How many times anvil died and was restarted since the devnet started.
    pub restarts: u64,
    /// The last restart, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restart: Option<Restart>,
}

/// Whether the chain node serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Anvil runs and requests are forwarded to it.
    Running,
    /// Anvil died and is being started again; requests wait.
    Restarting,
}

/// One restart of anvil.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restart {
    /// When it was restarted (seconds since the Unix epoch).
    pub at: u64,
    /// Why: how the previous anvil ended, or what it failed to answer.
    pub cause: String,
    /// The writes sent again after loading the last saved state.
    pub replayed: usize,
}

impl NodeStatus {
    /// The status of the node whose chain lives in `chain_dir`, if one was started there.
    pub fn read(chain_dir: &Path) -> Option<Self> {
        let bytes = fs::read(chain_dir.join(STATUS_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn write(&self, chain_dir: &Path) {
        let path = chain_dir.join(STATUS_FILE);
        let json = serde_json::to_vec_pretty(self).expect("the status serializes");
        if let Err(e) = crate::files::write_private(&path, &json) {
            warn!(path = %path.display(), error = %e, "cannot write the chain node's status");
        }
    }
}

/// The saved chain states of a devnet directory.
#[derive(Debug, Clone)]
pub(super) struct SavedState {
    dir: PathBuf,
}

impl SavedState {
    pub(super) fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned() }
    }

    /// Whether any state was saved (a devnet to reopen).
    pub(super) fn exists(&self) -> bool {
        [STATE_FILE, PREVIOUS_STATE_FILE, LEGACY_STATE_FILE]
            .iter()
            .any(|name| self.dir.join(name).is_file())
    }

    /// Forgets every saved state (a devnet made afresh).
    pub(super) fn remove(&self) -> Result<(), Error> {
        for name in [STATE_FILE, PREVIOUS_STATE_FILE, PARTIAL_STATE_FILE, LEGACY_STATE_FILE] {
            let path = self.dir.join(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Ok(())
    }

    /// Saves `state` (as `anvil_dumpState` gives it) so that a crash at any moment leaves a
    /// loadable state: written beside, flushed, the current one kept as the previous, renamed.
    fn save(&self, state: &[u8]) -> std::io::Result<()> {
        let partial = self.dir.join(PARTIAL_STATE_FILE);
        let mut file = crate::files::create_private(&partial)?;
        file.write_all(state)?;
        file.sync_all()?;
        drop(file);
        let current = self.dir.join(STATE_FILE);
        if current.exists() {
            fs::rename(&current, self.dir.join(PREVIOUS_STATE_FILE))?;
        }
        fs::rename(&partial, &current)?;
        fs::File::open(&self.dir)?.sync_all()
    }

    /// The saved states to try, newest first.
    fn candidates(&self) -> Vec<PathBuf> {
        [STATE_FILE, PREVIOUS_STATE_FILE]
            .iter()
            .map(|name| self.dir.join(name))
            .filter(|path| path.is_file())
            .collect()
    }

    fn legacy(&self) -> Option<PathBuf> {
        Some(self.dir.join(LEGACY_STATE_FILE)).filter(|path| path.is_file())
    }
}

/// How to start anvil again.
#[derive(Debug, Clone)]
struct Launch {
    anvil: PathBuf,
    accounts: usize,
    dir: PathBuf,
}

impl Launch {
    /// Starts anvil on a free internal port and loads the newest saved state that loads.
    async fn start(
        &self,
        saved: &SavedState,
        http: &reqwest::Client,
    ) -> Result<AnvilProcess, Error> {
        let candidates = saved.candidates();
        if candidates.is_empty() {
            // A new chain, or one saved by anvil itself before the node was supervised.
            let legacy = saved.legacy();
            return self.spawn(legacy).await;
        }
        let mut failures = Vec::new();
        for path in candidates {
            let anvil = self.spawn(None).await?;
            let loaded = match tokio::fs::read(&path).await {
                Ok(state) => load_state(http, anvil.endpoint(), &state).await,
                Err(e) => Err(e.to_string()),
            };
            match loaded {
                Ok(()) => {
                    if !failures.is_empty() {
                        warn!(path = %path.display(), "loaded an older saved chain state");
                    }
                    return Ok(anvil);
                }
                Err(reason) => {
                    warn!(path = %path.display(), %reason, "a saved chain state does not load");
                    failures.push(format!("{}: {reason}", path.display()));
                    drop_blocking(anvil).await;
                }
            }
        }
        Err(Error::AnvilStart(format!("no saved chain state loads: {}", failures.join("; "))))
    }

    async fn spawn(&self, legacy_state: Option<PathBuf>) -> Result<AnvilProcess, Error> {
        let launch = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut command = AnvilProcess::command(&launch.anvil, launch.accounts);
            command.arg("--cache-path").arg(launch.dir.join("anvil-states"));
            if let Some(state) = legacy_state {
                command.arg("--load-state").arg(state);
            }
            AnvilProcess::start(command, &launch.dir.join("anvil.log"))
        })
        .await
        .map_err(|e| Error::AnvilStart(e.to_string()))?
    }
}

/// Stops an anvil process off the async threads (its stop waits for the process).
async fn drop_blocking(anvil: AnvilProcess) {
    let _ = tokio::task::spawn_blocking(move || drop(anvil)).await;
}

/// Where requests go now: anvil's internal endpoint, and how many times it was started.
#[derive(Debug, Clone)]
struct Upstream {
    url: String,
    generation: u64,
}

/// A write waiting for its answer.
struct Write {
    body: Bytes,
    answer: oneshot::Sender<Bytes>,
}

/// A write forwarded since the last save, kept to be sent again if anvil dies before the next.
struct Pending {
    body: Bytes,
    answer: oneshot::Sender<Bytes>,
    response: Option<Bytes>,
}

/// What the request handlers and the writer share.
struct Shared {
    http: reqwest::Client,
    upstream: watch::Sender<Upstream>,
    /// Writes forwarded to anvil (every attempt counts).
    forwarded: AtomicU64,
    /// The value of `forwarded` at the last save: every write forwarded before is saved.
    saved: watch::Sender<u64>,
    writes: mpsc::Sender<Write>,
    anvil: Mutex<Option<AnvilProcess>>,
    closed: AtomicBool,
}

/// The supervised node: the endpoint in front, the writer, and anvil behind them.
pub(super) struct SupervisedNode {
    endpoint: String,
    shared: Arc<Shared>,
    writer: JoinHandle<()>,
    server: JoinHandle<()>,
    stop_server: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for SupervisedNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisedNode").field("endpoint", &self.endpoint).finish()
    }
}

impl SupervisedNode {
    /// Starts anvil from the saved state of `config.dir` (if any), and the endpoint in front of
    /// it, on the port of the previous run when it is free.
    pub(super) async fn start(config: &DevnetConfig, accounts: usize) -> Result<Self, Error> {
        if !config.anvil.exists() {
            return Err(Error::AnvilNotFound(config.anvil.clone()));
        }
        let saved = SavedState::new(&config.dir);
        let launch = Launch {
            anvil: config.anvil.clone(),
            accounts: accounts.max(10),
            dir: config.dir.clone(),
        };
        let http = reqwest::Client::builder()
            .timeout(WAIT_FOR_NODE)
            .build()
            .map_err(|e| Error::AnvilStart(e.to_string()))?;
        let listener = bind(&config.dir).await?;
        let endpoint =
            format!("http://{}", listener.local_addr().map_err(|e| Error::io(&config.dir, e))?);
        let anvil = launch.start(&saved, &http).await?;
        let (upstream, _) =
            watch::channel(Upstream { url: anvil.endpoint().to_owned(), generation: 0 });
        let (writes, queue) = mpsc::channel(1024);
        let status = NodeStatus {
            endpoint: endpoint.clone(),
            pid: anvil.child.id(),
            state: NodeState::Running,
            restarts: 0,
            last_restart: None,
        };
        status.write(&config.dir);
        let shared = Arc::new(Shared {
            http,
            upstream,
            forwarded: AtomicU64::new(0),
            saved: watch::channel(0).0,
            writes,
            anvil: Mutex::new(Some(anvil)),
            closed: AtomicBool::new(false),
        });
        let writer = Writer { shared: shared.clone(), saved: saved.clone(), launch, status };
        let writer = tokio::spawn(writer.run(queue));

        let (stop_server, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, shared.clone(), stopped));
        info!(%endpoint, "chain node supervised: its state is saved before a write is answered");
        Ok(Self { endpoint, shared, writer, server, stop_server: Some(stop_server) })
    }

    /// The endpoint clients use.
    pub(super) fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for SupervisedNode {
    /// Stops answering, then stops anvil: every write answered is saved already.
    fn drop(&mut self) {
        let shared = &self.shared;
        shared.closed.store(true, Ordering::SeqCst);
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        self.server.abort();
        self.writer.abort();
        let anvil = shared.anvil.lock().expect("the anvil lock").take();
        drop(anvil);
    }
}

/// Binds the endpoint on the port recorded by the previous run, or a free one.
async fn bind(dir: &Path) -> Result<TcpListener, Error> {
    let previous = NodeStatus::read(dir)
        .and_then(|status| status.endpoint.strip_prefix("http://").map(str::to_owned));
    if let Some(address) = previous {
        match TcpListener::bind(&address).await {
            Ok(listener) => return Ok(listener),
            Err(e) => warn!(
                %address,
                error = %e,
                "the devnet's chain endpoint cannot have its previous address: taking another"
            ),
        }
    }
    TcpListener::bind("127.0.0.1:0").await.map_err(|e| Error::io("127.0.0.1:0", e))
}

/// The one task that forwards writes, saves the state, and restarts anvil.
struct Writer {
    shared: Arc<Shared>,
    saved: SavedState,
    launch: Launch,
    status: NodeStatus,
}

/// Why a group of writes could not be saved.
enum SaveFailure {
    /// Anvil did not answer: it is restarted.
    Node(String),
    /// The state could not be written to disk: tried again, the writes held.
    Disk(std::io::Error),
}

impl Writer {
    async fn run(mut self, mut queue: mpsc::Receiver<Write>) {
        let mut pending: Vec<Pending> = Vec::new();
        // What anvil loaded is saved at once (a legacy state moves to the new files).
        self.commit(&mut pending).await;
        let mut watch = tokio::time::interval(WATCH_PERIOD);
        loop {
            tokio::select! {
                write = queue.recv() => match write {
                    Some(write) => pending.push(Pending {
                        body: write.body,
                        answer: write.answer,
                        response: None,
                    }),
                    None => return,
                },
                _ = watch.tick() => {
                    if let Some(cause) = self.exited() {
                        self.restart(&mut pending, cause).await;
                    }
                    continue;
                }
            }
            while let Ok(write) = queue.try_recv() {
                pending.push(Pending { body: write.body, answer: write.answer, response: None });
            }
            self.commit(&mut pending).await;
        }
    }

    /// Forwards the pending writes not yet forwarded, saves the state and answers them all;
    /// restarts anvil (and starts over) whenever it fails them.
    async fn commit(&mut self, pending: &mut Vec<Pending>) {
        loop {
            if let Err(cause) = self.forward_all(pending).await {
                self.restart(pending, cause).await;
                continue;
            }
            let upto = self.shared.forwarded.load(Ordering::SeqCst);
            match self.save().await {
                Ok(()) => {
                    self.shared.saved.send_replace(upto);
                    break;
                }
                Err(SaveFailure::Node(cause)) => self.restart(pending, cause).await,
                Err(SaveFailure::Disk(e)) => {
                    error!(
                        dir = %self.saved.dir.display(),
                        error = %e,
                        "cannot save the chain state: writes wait until it can be saved"
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        for write in pending.drain(..) {
            let response = write.response.expect("every pending write was forwarded");
            let _ = write.answer.send(response);
        }
    }

    async fn forward_all(&self, pending: &mut [Pending]) -> Result<(), String> {
        let url = self.shared.upstream.borrow().url.clone();
        for write in pending.iter_mut().filter(|w| w.response.is_none()) {
            self.shared.forwarded.fetch_add(1, Ordering::SeqCst);
            write.response = Some(forward(&self.shared.http, &url, write.body.clone()).await?);
        }
        Ok(())
    }

    /// Waits until anvil has mined what it was sent, then saves its state.
    async fn save(&self) -> Result<(), SaveFailure> {
        let url = self.shared.upstream.borrow().url.clone();
        let http = &self.shared.http;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let status = call(http, &url, "txpool_status", serde_json::json!([]))
                .await
                .map_err(SaveFailure::Node)?;
            let pending = status.get("pending").and_then(|p| p.as_str()).unwrap_or("0x0");
            if pending == "0x0" || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let dump = call(http, &url, "anvil_dumpState", serde_json::json!([]))
            .await
            .map_err(SaveFailure::Node)?;
        let hex = dump.as_str().ok_or_else(|| SaveFailure::Node(format!("dump: {dump}")))?;
        let state = alloy::hex::decode(hex).map_err(|e| SaveFailure::Node(e.to_string()))?;
        let saved = self.saved.clone();
        tokio::task::spawn_blocking(move || saved.save(&state))
            .await
            .map_err(|e| SaveFailure::Disk(std::io::Error::other(e.to_string())))?
            .map_err(SaveFailure::Disk)
    }

    /// How anvil ended, if it did.
    fn exited(&self) -> Option<String> {
        let mut anvil = self.shared.anvil.lock().expect("the anvil lock");
        match anvil.as_mut().map(|a| a.child.try_wait()) {
            Some(Ok(Some(status))) => Some(format!("anvil exited ({status})")),
            Some(Ok(None)) => None,
            Some(Err(e)) => Some(format!("anvil cannot be watched: {e}")),
            None => Some("anvil is not running".into()),
        }
    }

    /// Starts anvil again from the last saved state and sends the pending writes again, until
    /// that works (every failed attempt waits a little longer, up to 5 s).
    async fn restart(&mut self, pending: &mut [Pending], cause: String) {
        warn!(%cause, writes = pending.len(), "the chain node died: restarting it");
        self.status.state = NodeState::Restarting;
        self.status.write(&self.saved.dir);
        let mut pause = Duration::from_millis(100);
        loop {
            if self.shared.closed.load(Ordering::SeqCst) {
                return;
            }
            let old = self.shared.anvil.lock().expect("the anvil lock").take();
            if let Some(old) = old {
                drop_blocking(old).await;
            }
            match self.launch.start(&self.saved, &self.shared.http).await {
                Ok(anvil) => {
                    let url = anvil.endpoint().to_owned();
                    let pid = anvil.child.id();
                    {
                        let mut slot = self.shared.anvil.lock().expect("the anvil lock");
                        if self.shared.closed.load(Ordering::SeqCst) {
                            drop(slot);
                            drop_blocking(anvil).await;
                            return;
                        }
                        *slot = Some(anvil);
                    }
                    self.shared.upstream.send_modify(|upstream| {
                        upstream.url = url;
                        upstream.generation += 1;
                    });
                    for write in pending.iter_mut() {
                        write.response = None;
                    }
                    match self.forward_all(pending).await {
                        Ok(()) => {
                            self.status.pid = pid;
                            self.status.state = NodeState::Running;
                            self.status.restarts += 1;
                            self.status.last_restart = Some(Restart {
                                at: SystemTime::now()
                                    .duration_since(UNIX_EPOCH)
                                    .map_or(0, |d| d.as_secs()),
                                cause: cause.clone(),
                                replayed: pending.len(),
                            });
                            self.status.write(&self.saved.dir);
                            info!(
                                pid,
                                restarts = self.status.restarts,
                                replayed = pending.len(),
                                "the chain node runs again, on the same endpoint"
                            );
                            return;
                        }
                        Err(e) => warn!(error = %e, "the restarted chain node failed at once"),
                    }
                }
                Err(e) => error!(error = %e, "the chain node does not start again"),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }
}

/// Sends a JSON-RPC body to anvil as it came; the answer as anvil gave it.
async fn forward(http: &reqwest::Client, url: &str, body: Bytes) -> Result<Bytes, String> {
    let response = http
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("anvil did not answer: {e}"))?;
    response.bytes().await.map_err(|e| format!("anvil's answer was cut: {e}"))
}

/// Calls one method of anvil; its result, or why there is none.
async fn call(
    http: &reqwest::Client,
    url: &str,
    method: &str,
    params: serde_json::Value,
) -> Result<serde_json::Value, String> {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let answer = forward(http, url, Bytes::from(body.to_string())).await?;
    let mut reply: serde_json::Value =
        serde_json::from_slice(&answer).map_err(|e| format!("{method}: {e}"))?;
    if let Some(error) = reply.get("error") {
        return Err(format!("{method}: {error}"));
    }
    Ok(reply["result"].take())
}

/// Loads a saved state into a fresh anvil.
async fn load_state(http: &reqwest::Client, url: &str, state: &[u8]) -> Result<(), String> {
    let hex = format!("0x{}", alloy::hex::encode(state));
    match call(http, url, "anvil_loadState", serde_json::json!([hex])).await? {
        serde_json::Value::Bool(true) => Ok(()),
        other => Err(format!("anvil_loadState answered {other}")),
    }
}

/// Whether a JSON-RPC body (one call or a batch) may change the chain. A body that does not
/// parse is forwarded as a read: anvil answers it with its parse error.
pub fn is_write(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Call {
        #[serde(default)]
        method: String,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Calls {
        One(Call),
        Batch(Vec<Call>),
    }
    let writes = |call: &Call| !READ_METHODS.contains(&call.method.as_str());
    match serde_json::from_slice::<Calls>(body) {
        Ok(Calls::One(call)) => writes(&call),
        Ok(Calls::Batch(calls)) => calls.iter().any(writes),
        Err(_) => false,
    }
}

/// Answers the requests of the devnet's clients until `stopped`: each connection its own task.
async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    warn!(error = %e, "the devnet's chain endpoint cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(shared.clone(), request));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let answered = match Limited::new(request.into_body(), MAX_REQUEST_BYTES).collect().await {
        Ok(body) => {
            let body = body.to_bytes();
            if is_write(&body) { write(&shared, body).await } else { read(&shared, body).await }
        }
        Err(e) => Err(format!("the request could not be read: {e}")),
    };
    let (status, body) = match answered {
        Ok(answer) => (StatusCode::OK, answer),
        Err(reason) => {
            let error = serde_json::json!({
                "jsonrpc": "2.0",
                "id": null,
                "error": {"code": -32603, "message": reason},
            });
            (StatusCode::SERVICE_UNAVAILABLE, Bytes::from(error.to_string()))
        }
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    Ok(response)
}

async fn write(shared: &Shared, body: Bytes) -> Result<Bytes, String> {
    let (answer, answered) = oneshot::channel();
    shared
        .writes
        .send(Write { body, answer })
        .await
        .map_err(|_| "the devnet's chain node is stopping".to_owned())?;
    match tokio::time::timeout(WAIT_FOR_NODE, answered).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err("the devnet's chain node is stopping".into()),
        Err(_) => Err(format!(
            "the devnet's chain node did not save this write within {} s",
            WAIT_FOR_NODE.as_secs()
        )),
    }
}

/// Forwards a read, and answers once everything forwarded before it is saved; asks again if
/// anvil was restarted meanwhile (what it read may have been taken back and written anew).
async fn read(shared: &Shared, body: Bytes) -> Result<Bytes, String> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_NODE;
    let mut upstream = shared.upstream.subscribe();
    let mut saved = shared.saved.subscribe();
    loop {
        let Upstream { url, generation } = upstream.borrow_and_update().clone();
        match forward(&shared.http, &url, body.clone()).await {
            Ok(answer) => {
                let needed = shared.forwarded.load(Ordering::SeqCst);
                let caught_up = tokio::time::timeout_at(deadline, saved.wait_for(|s| *s >= needed));
                match caught_up.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => return Err("the devnet's chain node is stopping".into()),
                    Err(_) => return Err("the devnet's chain node did not save in time".into()),
                }
                if shared.upstream.borrow().generation == generation {
                    return Ok(answer);
                }
            }
            Err(reason) => {
                // Anvil died: wait for the writer to start it again.
                let restarted = tokio::time::timeout_at(deadline, upstream.changed());
                match restarted.await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Err("the devnet's chain node is stopping".into()),
                    Err(_) => return Err(reason),
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err("the devnet's chain node did not come back in time".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_and_node_commands_are_writes_and_queries_are_not() {
        let body = |method: &str| format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}"}}"#);
        for method in
            ["eth_sendRawTransaction", "eth_sendTransaction", "evm_mine", "anvil_setBalance"]
        {
            assert!(is_write(body(method).as_bytes()), "{method}");
        }
        for method in ["eth_blockNumber", "eth_getLogs", "eth_call", "eth_getTransactionReceipt"] {
            assert!(!is_write(body(method).as_bytes()), "{method}");
        }
        let batch = format!("[{},{}]", body("eth_blockNumber"), body("evm_increaseTime"));
        assert!(is_write(batch.as_bytes()), "a batch with one write is a write");
        let reads = format!("[{},{}]", body("eth_blockNumber"), body("eth_chainId"));
        assert!(!is_write(reads.as_bytes()));
        assert!(!is_write(b"not json"), "anvil answers what does not parse");
        assert!(is_write(br#"{"id":1}"#), "a call without a method is not known to read");
    }

    #[test]
    fn a_save_keeps_the_previous_state_and_leaves_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let saved = SavedState::new(dir.path());
        assert!(!saved.exists());
        saved.save(b"first").unwrap();
        saved.save(b"second").unwrap();
        assert_eq!(fs::read(dir.path().join(STATE_FILE)).unwrap(), b"second");
        assert_eq!(fs::read(dir.path().join(PREVIOUS_STATE_FILE)).unwrap(), b"first");
        assert!(!dir.path().join(PARTIAL_STATE_FILE).exists());
        assert_eq!(saved.candidates().len(), 2);
        saved.remove().unwrap();
        assert!(!saved.exists());
    }
}
