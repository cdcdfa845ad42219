//! The scheduler's configuration.

use std::{collections::HashSet, time::Duration};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use poco_contracts::Deployment;

use crate::{Error, Result};

/// Who may work for the pool: checked at registration and on every later request of a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Only the workers on this list.
    AllowList(HashSet<Address>),
    /// Workers holding a bond in this workerpool on-chain (`poco workerpool join`): a member,
    /// or a former member whose bond is still frozen. Read from the chain and cached for
    /// [`SchedulerConfig::bond_cache`] (a bond can be released).
    Bonded,
    /// Anyone with a wallet, stake or not: strangers can register and be handed tasks. Only
    /// when the operator says so; the scheduler warns about it when it starts.
    Open,
}

impl Admission {
    /// The rule's name, as the API's errors and the command line say it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AllowList(_) => "allow-list",
            Self::Bonded => "bonded",
            Self::Open => "open",
        }
    }

    /// What a worker needs to be admitted, in words.
    pub fn requirement(&self) -> &'static str {
        match self {
            Self::AllowList(_) => "the pool admits the workers on its operator's allow-list only",
            Self::Bonded => {
                "the pool admits workers holding a bond in it on-chain only \
                 (`poco workerpool join <workerpool>`)"
            }
            Self::Open => "the pool admits anyone",
        }
    }
}

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
    /// Base URLs of the pool's result stores (at least one). Assignments name the first; an
    /// upload is accepted only at `<one of them>/results/<task>`, exactly, so that nobody can
    /// point a task's result elsewhere.
    pub result_stores: Vec<String>,
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
    /// How long a worker that handed a task back waits before it may be given that task again
    /// (other workers get it at once; default [`crate::DEFAULT_HAND_BACK_PAUSE`]).
    pub hand_back_pause: Duration,
    /// Initialize new deals' tasks on-chain in batches (workers initialize them anyway when
    /// they contribute; initializing shows them ACTIVE sooner).
    pub initialize: bool,
    /// How often the engine looks at its tasks.
    pub tick: Duration,
    /// Who may work for the pool (default: [`Admission::Bonded`]).
    pub admission: Admission,
    /// How long a worker's bond (or its absence), read from the chain, is trusted before it is
    /// read again: it protects the chain's RPC from one call per request, and bounds how long
    /// a worker that released its bond keeps working (default 15 s).
    pub bond_cache: Duration,
    /// The SMS that creates the enclave challenges of TEE tasks; `None`: the pool serves no
    /// TEE deal (their tasks are never assigned).
    pub sms_url: Option<String>,
    /// The URL workers reach this instance at: standbys name it to workers while it is active.
    pub instance_url: Option<String>,
    /// How instances sharing a PostgreSQL database elect the active one.
    pub lease: LeaseConfig,
}

/// How the scheduler processes of one pool sharing a PostgreSQL database elect the active one
/// (on SQLite, one process runs the pool and no lease is taken).
///
/// The active instance renews its lease every [`LeaseConfig::renew_every`]; it acts (sends a
/// transaction, hands out a task or an upload ticket) only while, on its own monotonic clock,
/// less than `ttl - margin` passed since it sent its last successful renewal; a standby takes
/// the lease once `ttl` passed on the database's clock since that renewal reached it. A paused
/// active instance therefore stops acting at least `margin` before a standby can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How long a lease lasts from its last renewal (default 5 s).
    pub ttl: Duration,
    /// How often the active instance renews it (default 1 s).
    pub renew_every: Duration,
    /// How long before the lease's end the active instance stops acting (default 1.5 s).
    pub margin: Duration,
    /// How often a standby checks whether the lease is free (default 500 ms).
    pub poll: Duration,
}

impl LeaseConfig {
    /// A lease lasting `ttl` (at least 2 s), renewed five times within it, acted on until
    /// 30% of it is left.
    pub fn lasting(ttl: Duration) -> Self {
        let ttl = ttl.max(Duration::from_secs(2));
        Self { ttl, renew_every: ttl / 5, margin: ttl * 3 / 10, poll: Duration::from_millis(500) }
    }
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self::lasting(Duration::from_secs(5))
    }
}

impl SchedulerConfig {
    /// A configuration with the defaults: SQLite in memory is not a default (pass a file URL),
    /// one result store, bonded workers only (bonds cached 15 s), 2 s heartbeats, workers lost
    /// after 10 s, replicas re-assigned after 120 s, uploads re-assigned after 30 s, a task
    /// handed back given to the same worker again after 10 s at the soonest, eager batch
    /// initialization, a 100 ms engine tick.
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
            result_stores: vec![result_store.into()],
            confirmations: 0,
            heartbeat_interval: Duration::from_secs(2),
            worker_timeout: Duration::from_secs(10),
            replica_timeout: Duration::from_secs(120),
            upload_timeout: Duration::from_secs(30),
            hand_back_pause: crate::DEFAULT_HAND_BACK_PAUSE,
            initialize: true,
            tick: Duration::from_millis(100),
            admission: Admission::Bonded,
            bond_cache: Duration::from_secs(15),
            sms_url: None,
            instance_url: None,
            lease: LeaseConfig::default(),
        }
    }

    /// The configuration checked and its result stores normalised (`http` or `https`, a host,
    /// no user name, password, query or fragment, no trailing slash), so that a result's
    /// location can be compared with them exactly.
    pub fn validated(mut self) -> Result<Self> {
        if self.result_stores.is_empty() {
            return Err(Error::Config("at least one result store is needed".into()));
        }
        self.result_stores =
            self.result_stores.iter().map(|url| normalise_store(url)).collect::<Result<_>>()?;
        let lease = &self.lease;
        if lease.margin >= lease.ttl || lease.renew_every >= lease.ttl - lease.margin {
            return Err(Error::Config(format!(
                "the lease's renewal ({:?}) must come well within its time ({:?}) less its \
                 margin ({:?})",
                lease.renew_every, lease.ttl, lease.margin
            )));
        }
        Ok(self)
    }
}

/// A result store's base URL in the one spelling locations are compared with.
fn normalise_store(raw: &str) -> Result<String> {
    let bad = |why: &str| Error::Config(format!("result store {raw:?}: {why}"));
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("only http and https result stores are supported"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("a user name or password has no place in a result store's URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a query or fragment has no place in a result store's URL"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

impl std::fmt::Debug for SchedulerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerConfig")
            .field("rpc_url", &self.rpc_url)
            .field("workerpool", &self.workerpool)
            .field("scheduler", &self.wallet.address())
            .field("database_url", &self.database_url)
            .field("result_stores", &self.result_stores)
            .field("admission", &self.admission.name())
            .field("sms_url", &self.sms_url)
            .field("instance_url", &self.instance_url)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_stores_are_normalised_or_refused() {
        assert_eq!(normalise_store("http://127.0.0.1:8090/").unwrap(), "http://127.0.0.1:8090");
        assert_eq!(normalise_store("HTTP://Store.Example//").unwrap(), "http://store.example");
        assert_eq!(normalise_store("https://s.example/base/").unwrap(), "https://s.example/base");
        for bad in [
            "ftp://s.example",
            "http://user@s.example",
            "http://user:pw@s.example",
            "http://s.example/?a=b",
            "http://s.example/#x",
            "not a url",
            "file:///tmp/results",
        ] {
            assert!(matches!(normalise_store(bad), Err(Error::Config(_))), "{bad}");
        }
    }
}
