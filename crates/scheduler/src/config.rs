//! The scheduler's configuration.

use std::{collections::HashSet, time::Duration};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use poco_contracts::Deployment;

/// Everything a scheduler needs to run one workerpool.
#[derive(Clone)]
pub struct SchedulerConfig {
    /// The chain's JSON-RPC endpoint.
    pub rpc_url: String,
    /// Where the protocol is.
    pub deployment: Deployment,
    /// The workerpool this scheduler runs.
    pub workerpool: Address,
    /// The workerpool owner's key: signs authorizations, upload tickets and transactions.
    pub wallet: PrivateKeySigner,
    /// `sqlite://<file>` (default, under the data directory) or `postgres://...`.
    pub database_url: String,
    /// Base URL of the result store workers upload to.
    pub result_store: String,
    /// Blocks an event needs on top of it before the scheduler acts on it.
    pub confirmations: u64,
    /// How often workers send heartbeats.
    pub heartbeat_interval: Duration,
    /// A worker silent for this long is lost: its unfinished work goes to others.
    pub worker_timeout: Duration,
    /// A replica neither contributed nor reported running by its worker for this long goes to
    /// another worker too (workers report what they run in every heartbeat).
    pub replica_timeout: Duration,
    /// How long the chosen uploader has before another revealer is asked.
    pub upload_timeout: Duration,
    /// Initialize new deals' tasks on-chain in batches (workers initialize them anyway when
    /// they contribute; initializing shows them ACTIVE sooner).
    pub initialize: bool,
    /// How often the engine looks at its tasks.
    pub tick: Duration,
    /// Workers allowed in the pool; `None`: anyone with a wallet.
    pub allowed_workers: Option<HashSet<Address>>,
    /// The SMS that creates the enclave challenges of TEE tasks; `None`: the pool serves no
    /// TEE deal (their tasks are never assigned).
    pub sms_url: Option<String>,
}

impl SchedulerConfig {
    /// A configuration with the defaults: SQLite in memory is not a default (pass a file URL),
    /// 2 s heartbeats, workers lost after 10 s, replicas re-assigned after 120 s, uploads
    /// re-assigned after 30 s, eager batch initialization, a 100 ms engine tick.
    pub fn new(
        rpc_url: impl Into<String>,
        deployment: Deployment,
        workerpool: Address,
        wallet: PrivateKeySigner,
        database_url: impl Into<String>,
        result_store: impl Into<String>,
    ) -> Self {
        Self {
            rpc_url: rpc_url.into(),
            deployment,
            workerpool,
            wallet,
            database_url: database_url.into(),
            result_store: result_store.into(),
            confirmations: 0,
            heartbeat_interval: Duration::from_secs(2),
            worker_timeout: Duration::from_secs(10),
            replica_timeout: Duration::from_secs(120),
            upload_timeout: Duration::from_secs(30),
            initialize: true,
            tick: Duration::from_millis(100),
            allowed_workers: None,
            sms_url: None,
        }
    }
}

impl std::fmt::Debug for SchedulerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerConfig")
            .field("rpc_url", &self.rpc_url)
            .field("workerpool", &self.workerpool)
            .field("scheduler", &self.wallet.address())
            .field("database_url", &self.database_url)
            .field("result_store", &self.result_store)
            .field("sms_url", &self.sms_url)
            .finish_non_exhaustive()
    }
}
