//! The devnet: a local anvil chain with the protocol deployed and funded accounts, kept in one
//! directory so that it can be stopped and reopened where it was.
//!
//! A devnet can also be laid on a node that something else started ([`Devnet::attach`]): another
//! EVM implementation (Hardhat's node, for the tests that check poco on a second one), whose
//! accounts derive from [`DEV_MNEMONIC`] as anvil's do.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
    signers::local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English},
};
use poco_contracts::{
    Deployment,
    bindings::{IPoco, RLC},
};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::{ChainClient, ClientConfig, Error};

mod supervised;

pub use supervised::{NodeState, NodeStatus, READ_METHODS, Restart, WAIT_FOR_NODE, is_write};

/// The mnemonic of anvil's development accounts. Public knowledge: devnet keys hold nothing of
/// value anywhere else.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// One RLC in nRLC.
const RLC_UNIT: u64 = 1_000_000_000;

/// How to launch a devnet.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// Directory holding the chain state, the deployment and the anvil log.
    pub dir: PathBuf,
    /// The anvil binary.
    pub anvil: PathBuf,
    /// Whether anvil is supervised: restarted behind the same endpoint when it dies, its state
    /// saved before any write is answered (see [`NodeStatus`]). Otherwise anvil saves its own
    /// state every few seconds, and a kill can take back its last blocks: enough for tests.
    pub supervised: bool,
    /// Number of worker accounts.
    pub workers: usize,
    /// RLC each account gets in its wallet.
    pub wallet_rlc: u64,
    /// RLC each account gets deposited in its poco account.
    pub deposit_rlc: u64,
}

impl DevnetConfig {
    /// A devnet in `dir`, with the anvil found by [`find_anvil`] (not supervised), a block
    /// mined per transaction, 4 workers, 10,000 RLC in every wallet and 1,000 RLC deposited in
    /// every account.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            anvil: find_anvil(),
            supervised: false,
            workers: 4,
            wallet_rlc: 10_000,
            deposit_rlc: 1_000,
        }
    }
}

/// Where the pinned anvil is: `$POCO_ANVIL`, else `node_modules/.bin/anvil` in the current
/// directory or one of its parents, else the repository root this crate was built from.
pub fn find_anvil() -> PathBuf {
    if let Some(path) = std::env::var_os("POCO_ANVIL") {
        return PathBuf::from(path);
    }
    let relative = Path::new("node_modules/.bin/anvil");
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let candidate = dir.join(relative);
            if candidate.exists() {
                return candidate;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative)
}

/// The roles of the devnet's accounts, each a development key of [`DEV_MNEMONIC`].
#[derive(Debug, Clone)]
pub struct DevnetAccounts {
    /// Deploys and owns the protocol; holds the RLC supply.
    pub owner: PrivateKeySigner,
    /// Buys computation.
    pub requester: PrivateKeySigner,
    /// Sells an app.
    pub app_provider: PrivateKeySigner,
    /// Sells a dataset.
    pub dataset_provider: PrivateKeySigner,
    /// Owns a workerpool and runs its scheduler.
    pub scheduler: PrivateKeySigner,
    /// Run tasks.
    pub workers: Vec<PrivateKeySigner>,
}

impl DevnetAccounts {
    /// Derives the roles from [`DEV_MNEMONIC`]: indices 0 to 4, then one per worker.
    pub fn derive(workers: usize) -> Self {
        let key = Self::key;
        Self {
            owner: key(0),
            requester: key(1),
            app_provider: key(2),
            dataset_provider: key(3),
            scheduler: key(4),
            workers: (0..workers).map(|i| key(Self::FIRST_WORKER + i)).collect(),
        }
    }

    /// The development key at `index` of [`DEV_MNEMONIC`] alone (each derivation costs a
    /// key stretch: a process that signs as one role derives only its key).
    pub fn key(index: usize) -> PrivateKeySigner {
        MnemonicBuilder::<English>::default()
            .phrase(DEV_MNEMONIC)
            .index(index as u32)
            .expect("a valid derivation index")
            .build()
            .expect("the development mnemonic is valid")
    }

    /// The index of the first worker's key: the roles take 0 to 4.
    pub const FIRST_WORKER: usize = 5;

    /// Every account but the owner.
    pub fn users(&self) -> impl Iterator<Item = &PrivateKeySigner> {
        [&self.requester, &self.app_provider, &self.dataset_provider, &self.scheduler]
            .into_iter()
            .chain(&self.workers)
    }

    /// How many development accounts the roles take (indices 0 to `count() - 1`).
    pub fn count(&self) -> usize {
        Self::FIRST_WORKER + self.workers.len()
    }
}

/// What a devnet directory records about its chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DevnetRecord {
    deployment: Deployment,
    workers: usize,
}

/// A running devnet. Dropping it stops anvil, which saves the chain state in its directory
/// (an attached node is left running: whoever started it stops it).
#[derive(Debug)]
pub struct Devnet {
    node: Node,
    deployment: Deployment,
    accounts: DevnetAccounts,
    dir: PathBuf,
}

impl Devnet {
    /// Reopens the devnet of `config.dir` if it exists, or creates it: starts anvil, deploys
    /// the protocol and funds the accounts.
    pub async fn open_or_create(config: DevnetConfig) -> Result<Self, Error> {
        crate::files::private_dir(&config.dir).map_err(|e| Error::io(&config.dir, e))?;
        let record_path = config.dir.join("devnet.json");
        let record = read_record(&record_path)?;
        let workers = record.as_ref().map_or(config.workers, |r| r.workers);
        let accounts = DevnetAccounts::derive(workers);
        let (node, reopen) = if config.supervised {
            let saved = supervised::SavedState::new(&config.dir);
            let reopen = record.is_some() && saved.exists();
            if !reopen {
                saved.remove()?;
            }
            let node = supervised::SupervisedNode::start(&config, accounts.count()).await?;
            (Node::Supervised(node), reopen)
        } else {
            let state_path = config.dir.join("state.json");
            let reopen = record.is_some() && state_path.exists();
            if !reopen && state_path.exists() {
                std::fs::remove_file(&state_path).map_err(|e| Error::io(&state_path, e))?;
            }
            (Node::Anvil(AnvilProcess::spawn(&config, accounts.count(), &state_path)?), reopen)
        };

        if let Some(record) = record.filter(|_| reopen) {
            let client =
                ChainClient::connect(node.endpoint(), None, ClientConfig::default()).await?;
            let code = client.provider().get_code_at(record.deployment.poco).await?;
            if !code.is_empty() {
                info!(dir = %config.dir.display(), "reopened the devnet");
                return Ok(Self { node, deployment: record.deployment, accounts, dir: config.dir });
            }
            warn!("the devnet state does not hold the protocol any more: deploying again");
        }

        let deployment = deploy_and_fund(node.endpoint(), &accounts, &config).await?;
        let record = DevnetRecord { deployment, workers };
        write_file(
            &record_path,
            serde_json::to_vec_pretty(&record).expect("the record serializes").as_slice(),
        )?;
        info!(dir = %config.dir.display(), poco = %deployment.poco, "created the devnet");
        Ok(Self { node, deployment, accounts, dir: config.dir })
    }

    /// Lays a devnet on the running node at `rpc_url`, which this devnet neither starts nor
    /// stops: deploys the protocol and funds `config.workers` worker accounts as
    /// [`Devnet::open_or_create`] does. The node must hold the accounts of [`DEV_MNEMONIC`]
    /// (indices 0 to 4 + workers) with ether for their gas. `config.anvil` and
    /// `config.supervised` are not used, and nothing is recorded to reopen: the chain's state
    /// is the node's.
    pub async fn attach(config: DevnetConfig, rpc_url: impl Into<String>) -> Result<Self, Error> {
        crate::files::private_dir(&config.dir).map_err(|e| Error::io(&config.dir, e))?;
        let rpc_url = rpc_url.into();
        let accounts = DevnetAccounts::derive(config.workers);
        let deployment = deploy_and_fund(&rpc_url, &accounts, &config).await?;
        info!(rpc = %rpc_url, poco = %deployment.poco, "laid a devnet on a running node");
        Ok(Self { node: Node::Attached(rpc_url), deployment, accounts, dir: config.dir })
    }

    /// The JSON-RPC endpoint (HTTP).
    pub fn rpc_url(&self) -> &str {
        self.node.endpoint()
    }

    /// The WebSocket endpoint (the same port as HTTP, on anvil and on Hardhat's node).
    pub fn ws_url(&self) -> String {
        self.rpc_url().replacen("http://", "ws://", 1)
    }

    /// Where the protocol is.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The funded accounts.
    pub fn accounts(&self) -> &DevnetAccounts {
        &self.accounts
    }

    /// The devnet's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A client of this devnet signing with `signer`.
    pub async fn client(&self, signer: &PrivateKeySigner) -> Result<ChainClient, Error> {
        ChainClient::connect(self.rpc_url(), Some(signer.clone()), ClientConfig::default()).await
    }

    /// Stops anvil, saving the chain state (an attached node keeps running).
    pub fn stop(self) {
        drop(self);
    }
}

/// The node a devnet runs on.
#[derive(Debug)]
enum Node {
    /// The devnet's own anvil, stopped with it.
    Anvil(AnvilProcess),
    /// The devnet's own anvil, supervised, behind an endpoint of the devnet.
    Supervised(supervised::SupervisedNode),
    /// A node started by someone else, reached at this HTTP endpoint.
    Attached(String),
}

impl Node {
    fn endpoint(&self) -> &str {
        match self {
            Node::Anvil(anvil) => anvil.endpoint(),
            Node::Supervised(node) => node.endpoint(),
            Node::Attached(url) => url,
        }
    }
}

/// Deploys the protocol from the owner's account on the node at `endpoint`, and funds the
/// other accounts.
async fn deploy_and_fund(
    endpoint: &str,
    accounts: &DevnetAccounts,
    config: &DevnetConfig,
) -> Result<Deployment, Error> {
    let owner =
        ChainClient::connect(endpoint, Some(accounts.owner.clone()), ClientConfig::default())
            .await?;
    let deployment = poco_contracts::deploy(
        owner.provider(),
        poco_contracts::DeployOptions::devnet(accounts.owner.address()),
    )
    .await?;
    fund(&owner, &deployment, accounts, config).await?;
    Ok(deployment)
}

async fn fund(
    owner: &ChainClient,
    deployment: &Deployment,
    accounts: &DevnetAccounts,
    config: &DevnetConfig,
) -> Result<(), Error> {
    let token = RLC::new(deployment.token, owner.provider().clone());
    let poco = IPoco::new(deployment.poco, owner.provider().clone());
    let wallet = U256::from(config.wallet_rlc) * U256::from(RLC_UNIT);
    let deposit = U256::from(config.deposit_rlc) * U256::from(RLC_UNIT);
    let users: Vec<Address> = accounts.users().map(|s| s.address()).collect();
    let total = deposit * U256::from(users.len());
    owner.send(token.approve(deployment.poco, total)).await?;
    for user in users {
        owner.send(token.transfer(user, wallet)).await?;
        owner.send(poco.depositFor(deposit, user)).await?;
    }
    Ok(())
}

fn read_record(path: &Path) -> Result<Option<DevnetRecord>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::DevnetFile { path: path.to_owned(), reason: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    crate::files::write_private(path, bytes).map_err(|e| Error::io(path, e))
}

/// An anvil process listening on a free port of 127.0.0.1, its output copied to `anvil.log`.
#[derive(Debug)]
pub struct AnvilProcess {
    child: Child,
    endpoint: String,
}

impl AnvilProcess {
    /// Starts anvil with `accounts` development accounts, loading and saving `state` (saved
    /// every few seconds and when anvil stops).
    fn spawn(config: &DevnetConfig, accounts: usize, state: &Path) -> Result<Self, Error> {
        if !config.anvil.exists() {
            return Err(Error::AnvilNotFound(config.anvil.clone()));
        }
        let mut command = Self::command(&config.anvil, accounts);
        command
            .arg("--state")
            .arg(state)
            .args(["--state-interval", "5"])
            .arg("--cache-path")
            .arg(config.dir.join("anvil-states"));
        Self::start(command, &config.dir.join("anvil.log"))
    }

    /// Starts a throwaway anvil (no state file), for tests and benchmarks. The states of old
    /// blocks it moves out of memory go beside `log` (anvil's default place is shared by
    /// every anvil of the machine and outlives a killed one).
    pub fn ephemeral(anvil: &Path, accounts: usize, log: &Path) -> Result<Self, Error> {
        if !anvil.exists() {
            return Err(Error::AnvilNotFound(anvil.to_owned()));
        }
        let states = log.parent().unwrap_or(Path::new(".")).join("anvil-states");
        let mut command = Self::command(anvil, accounts);
        command.arg("--cache-path").arg(states);
        Self::start(command, log)
    }

    /// Anvil on a free port of 127.0.0.1 with `accounts` development accounts (at least 10),
    /// mining a block per transaction.
    fn command(anvil: &Path, accounts: usize) -> Command {
        let mut command = Command::new(anvil);
        command
            .args(["--host", "127.0.0.1", "--port", "0", "--hardfork", "prague"])
            .args(["--accounts", &accounts.max(10).to_string()])
            .args(["--mnemonic", DEV_MNEMONIC]);
        command
    }

    fn start(mut command: Command, log_path: &Path) -> Result<Self, Error> {
        let mut log = crate::files::create_private(log_path).map_err(|e| Error::io(log_path, e))?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::AnvilStart(e.to_string()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (port_tx, port_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut port_tx = Some(port_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("Listening on ")
                    && let Some(tx) = port_tx.take()
                {
                    let _ = tx.send(address.trim().to_owned());
                }
                let _ = writeln!(log, "{line}");
            }
        });
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let text: Vec<String> = BufReader::new(stderr).lines().map_while(Result::ok).collect();
            let _ = err_tx.send(text.join("\n"));
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(address) = port_rx.recv_timeout(Duration::from_millis(50)) {
                return Ok(Self { child, endpoint: format!("http://{address}") });
            }
            if let Ok(Some(status)) = child.try_wait() {
                let stderr = err_rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
                return Err(Error::AnvilStart(format!("exited with {status}: {stderr}")));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(Error::AnvilStart("no listening address after 30 s".into()));
            }
        }
    }

    /// The HTTP endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for AnvilProcess {
    /// Asks anvil to stop (it saves its state on SIGTERM), and kills it if it lingers.
    fn drop(&mut self) {
        // SAFETY: sending a signal to our own child process has no memory-safety concern.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
