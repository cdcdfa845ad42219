//! A devnet as its clients see it: whether one runs under a poco home, its endpoints and
//! accounts (`<home>/devnet/devnet.json`), the keys of its roles, and stopping it. Starting one
//! is `poco-devnet`'s.
//!
//! Layout of `<home>/devnet/`: `chain/` (anvil state, deployment), `market/`, `scheduler/`,
//! `results/`, `sms/` (its database and master key), `workers/<n>/`, `devnet.json` (endpoints
//! and accounts of the running devnet, removed when it stops) and `devnet.lock`.
//!
//! # Which process is the devnet
//!
//! The devnet's process holds a POSIX write lock on `devnet.lock` for as long as it runs
//! ([`DevnetLock`]). A client believes `devnet.json` only when that lock is held, and by the
//! process `devnet.json` names: a stale file (a devnet killed without cleaning up, whose pid
//! may since belong to another program) or a forged one (a pid of 0, which would signal the
//! caller's own process group, or one that does not fit a `pid_t`) never gets a signal.

use std::{
    fs::File,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    time::Duration,
};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use poco_chain::DevnetAccounts;
use poco_contracts::Deployment;
use poco_fetch::FetchPolicy;
use serde::{Deserialize, Serialize};

use crate::{Endpoints, Error, Result};

/// The roles of the devnet's accounts.
pub const ROLES: &[&str] = &["owner", "requester", "app-provider", "dataset-provider", "scheduler"];

/// What a running devnet tells its clients (`<home>/devnet/devnet.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevnetInfo {
    /// The devnet process.
    pub pid: u32,
    /// The chain's JSON-RPC endpoint.
    pub rpc_url: String,
    /// The market.
    pub market_url: String,
    /// The scheduler of the devnet's workerpool.
    pub scheduler_url: String,
    /// The result store.
    pub results_url: String,
    /// The secret management service of confidential tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_url: Option<String>,
    /// Whether the SMS accepts INSECURE simulated enclaves (always, on a devnet).
    #[serde(default)]
    pub insecure_simulation: bool,
    /// The protocol.
    pub deployment: Deployment,
    /// The devnet's workerpool.
    pub workerpool: Address,
    /// Accounts by role (`worker-<n>` for workers: the honest ones, then the TEE ones, then
    /// the byzantine ones).
    pub accounts: Vec<(String, Address)>,
    /// How many workers lie.
    pub byzantine_workers: usize,
    /// How many workers run TEE tasks (in INSECURE simulated enclaves).
    #[serde(default)]
    pub tee_workers: usize,
    /// What a client of this devnet may fetch: the devnet's staged files and its own result
    /// store, beyond the default policy.
    #[serde(default)]
    pub client_fetch: FetchPolicy,
}

impl DevnetInfo {
    /// The roles of the workers that run TEE tasks.
    pub fn tee_worker_roles(&self) -> Vec<&str> {
        let workers: Vec<&str> = self
            .accounts
            .iter()
            .map(|(role, _)| role.as_str())
            .filter(|role| role.starts_with("worker-"))
            .collect();
        let honest = workers.len().saturating_sub(self.tee_workers + self.byzantine_workers);
        workers.into_iter().skip(honest).take(self.tee_workers).collect()
    }

    /// The endpoints clients use.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            rpc_url: self.rpc_url.clone(),
            market_url: Some(self.market_url.clone()),
            poco: self.deployment.poco,
            from_block: self.deployment.block,
        }
    }
}

/// The devnet directory under a poco home.
pub fn devnet_dir(home: &Path) -> PathBuf {
    home.join("devnet")
}

/// Where a running devnet writes its endpoints and accounts.
pub fn info_path(home: &Path) -> PathBuf {
    devnet_dir(home).join("devnet.json")
}

/// The running devnet of `home`, if any: `devnet.json` names the process that holds the
/// devnet's lock.
pub fn running(home: &Path) -> Option<DevnetInfo> {
    let bytes = std::fs::read(info_path(home)).ok()?;
    let info: DevnetInfo = serde_json::from_slice(&bytes).ok()?;
    let pid = devnet_pid(&info)?;
    if pid == own_pid() {
        // This process runs the devnet: looking at the lock from here would release it (POSIX
        // locks belong to the process, and closing any descriptor of the file drops them).
        return Some(info);
    }
    (DevnetLock::holder(home)? == pid).then_some(info)
}

/// The pid `info` names, if it is one a signal may go to: positive and a `pid_t`.
fn devnet_pid(info: &DevnetInfo) -> Option<libc::pid_t> {
    libc::pid_t::try_from(info.pid).ok().filter(|pid| *pid > 0)
}

fn own_pid() -> libc::pid_t {
    libc::pid_t::try_from(std::process::id()).expect("a process id fits a pid_t")
}

/// The lock a running devnet holds on `<home>/devnet/devnet.lock`: a POSIX write lock, which
/// the system releases when the process ends, however it ends.
#[derive(Debug)]
pub struct DevnetLock {
    // Holding the descriptor holds the lock.
    _file: File,
}

impl DevnetLock {
    fn path(home: &Path) -> PathBuf {
        devnet_dir(home).join("devnet.lock")
    }

    /// Takes the lock of `home`'s devnet for this process; fails if another process holds it.
    pub fn acquire(home: &Path) -> Result<Self> {
        let path = Self::path(home);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut lock = Self::write_lock();
        // SAFETY: F_SETLK with a valid descriptor and a fully initialised `flock`.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &mut lock) } != 0 {
            return Err(Error::Devnet(format!(
                "another process holds {}: a devnet already runs in {}",
                path.display(),
                home.display()
            )));
        }
        Ok(Self { _file: file })
    }

    /// The process that holds the lock of `home`'s devnet, if one does.
    fn holder(home: &Path) -> Option<libc::pid_t> {
        let file = File::open(Self::path(home)).ok()?;
        let mut lock = Self::write_lock();
        // SAFETY: F_GETLK with a valid descriptor and a fully initialised `flock`.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) } != 0 {
            return None;
        }
        (i32::from(lock.l_type) != libc::F_UNLCK && lock.l_pid > 0).then_some(lock.l_pid)
    }

    /// A write lock on the whole file.
    fn write_lock() -> libc::flock {
        // SAFETY: `flock` is a plain C struct for which all zeroes is a valid value.
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = libc::F_WRLCK as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        lock
    }
}

/// The key of a devnet role: `owner`, `requester`, `app-provider`, `dataset-provider`,
/// `scheduler` or `worker-<n>` (from 0).
pub fn role_key(role: &str) -> Result<PrivateKeySigner> {
    let accounts = DevnetAccounts::derive(64);
    Ok(match role {
        "owner" => accounts.owner,
        "requester" => accounts.requester,
        "app-provider" => accounts.app_provider,
        "dataset-provider" => accounts.dataset_provider,
        "scheduler" => accounts.scheduler,
        other => {
            let index = other
                .strip_prefix("worker-")
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n < 64)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "unknown devnet account {other:?}: use one of {}, or worker-<n>",
                        ROLES.join(", ")
                    ))
                })?;
            accounts.workers[index].clone()
        }
    })
}

/// Stops the running devnet of `home`; returns whether one was running.
pub async fn down(home: &Path) -> Result<bool> {
    let Some(info) = running(home) else { return Ok(false) };
    let pid = devnet_pid(&info).expect("a running devnet has a valid pid");
    if pid == own_pid() {
        return Err(Error::Devnet(
            "the devnet runs in this process: stop it with the shutdown future given to `up`"
                .into(),
        ));
    }
    // SAFETY: a signal to the process that holds the devnet's lock (checked by `running`).
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(Error::Devnet(format!(
            "cannot signal the devnet (pid {pid}): {}",
            std::io::Error::last_os_error()
        )));
    }
    for _ in 0..300 {
        if running(home).is_none() {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::Devnet(format!("the devnet (pid {pid}) did not stop within 30 s")))
}

/// Stops the devnet of `home` if it runs and deletes it.
pub async fn reset(home: &Path) -> Result<()> {
    down(home).await?;
    let dir = devnet_dir(home);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(dir, e)),
        _ => Ok(()),
    }
}
