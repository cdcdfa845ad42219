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
            confirmations: 0,
            receipt_timeout: crate::DEFAULT_RECEIPT_TIMEOUT,
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
        // Looking at the lock from here would release it if this process held it (POSIX locks
        // belong to the process, and closing any descriptor of the file drops them): believe
        // the file only if this process took the lock.
        return DevnetLock::held_here(home).then_some(info);
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
    path: PathBuf,
}

/// The devnet locks this process holds, by path.
static HELD_HERE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

impl Drop for DevnetLock {
    fn drop(&mut self) {
        HELD_HERE.lock().expect("lock").retain(|path| *path != self.path);
    }
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
        HELD_HERE.lock().expect("lock").push(path.clone());
        Ok(Self { _file: file, path })
    }

    /// Whether this process holds the lock of `home`'s devnet.
    fn held_here(home: &Path) -> bool {
        HELD_HERE.lock().expect("lock").contains(&Self::path(home))
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
    // The roles are the development keys 0 to 4, in the order of `ROLES`; the workers follow.
    let index = match ROLES.iter().position(|known| *known == role) {
        Some(index) => index,
        None => role
            .strip_prefix("worker-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n < 64)
            .map(|n| DevnetAccounts::FIRST_WORKER + n)
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown devnet account {role:?}: use one of {}, or worker-<n>",
                    ROLES.join(", ")
                ))
            })?,
    };
    Ok(DevnetAccounts::key(index))
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

#[cfg(test)]
mod tests {
    use std::{
        process::{Child, Command, Stdio},
        time::Instant,
    };

    use super::*;

    /// Each role's key is the one a devnet gives that role; unknown roles are refused.
    #[test]
    fn a_role_key_is_the_devnet_key_of_its_role() {
        let accounts = DevnetAccounts::derive(3);
        let address = |role| role_key(role).unwrap().address();
        assert_eq!(address("owner"), accounts.owner.address());
        assert_eq!(address("requester"), accounts.requester.address());
        assert_eq!(address("app-provider"), accounts.app_provider.address());
        assert_eq!(address("dataset-provider"), accounts.dataset_provider.address());
        assert_eq!(address("scheduler"), accounts.scheduler.address());
        assert_eq!(address("worker-0"), accounts.workers[0].address());
        assert_eq!(address("worker-2"), accounts.workers[2].address());
        for unknown in ["worker-64", "worker-", "workers-1", "Owner", ""] {
            let error = role_key(unknown).unwrap_err().to_string();
            assert!(error.contains("unknown devnet account"), "{unknown}: {error}");
        }
    }

    /// A `devnet.json` under `home` naming `pid`.
    fn write_info(home: &Path, pid: u32) {
        let info = DevnetInfo {
            pid,
            rpc_url: "http://127.0.0.1:1".into(),
            market_url: "http://127.0.0.1:1".into(),
            scheduler_url: "http://127.0.0.1:1".into(),
            results_url: "http://127.0.0.1:1".into(),
            sms_url: None,
            insecure_simulation: false,
            deployment: Deployment {
                chain_id: 31337,
                poco: Address::ZERO,
                token: Address::ZERO,
                app_registry: Address::ZERO,
                dataset_registry: Address::ZERO,
                workerpool_registry: Address::ZERO,
                tasks_module: Address::ZERO,
                block: 0,
            },
            workerpool: Address::ZERO,
            accounts: vec![],
            byzantine_workers: 0,
            tee_workers: 0,
            client_fetch: FetchPolicy::default(),
        };
        std::fs::create_dir_all(devnet_dir(home)).unwrap();
        std::fs::write(info_path(home), serde_json::to_vec(&info).unwrap()).unwrap();
    }

    /// Whether the process `child` still runs.
    fn alive(child: &mut Child) -> bool {
        child.try_wait().unwrap().is_none()
    }

    /// A process that holds `home`'s devnet lock until it is signalled, as a devnet does.
    fn lock_holder(home: &Path) -> Child {
        let lock = devnet_dir(home).join("devnet.lock");
        let script = "import fcntl, sys, time\n\
                      f = open(sys.argv[1], 'a')\n\
                      fcntl.lockf(f, fcntl.LOCK_EX)\n\
                      print('locked', flush=True)\n\
                      time.sleep(60)\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(&lock)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (the test command needs it)");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");
        child
    }

    #[tokio::test]
    async fn forged_or_stale_pids_get_no_signal() {
        let home = tempfile::tempdir().unwrap();
        // 0 would signal this process group, and a value past `pid_t` would wrap to -1 (every
        // process of the user): neither is a devnet.
        for pid in [0, u32::MAX, 1 << 31] {
            write_info(home.path(), pid);
            assert!(running(home.path()).is_none(), "pid {pid}");
            assert!(!down(home.path()).await.unwrap(), "pid {pid}");
        }
        // A live process that is not the devnet (it does not hold the devnet's lock): a stale
        // file whose pid was reused, or a forged one.
        let mut stranger = Command::new("sleep").arg("30").spawn().unwrap();
        write_info(home.path(), stranger.id());
        assert!(running(home.path()).is_none());
        assert!(!down(home.path()).await.unwrap());
        assert!(alive(&mut stranger), "a process that is not the devnet was signalled");
        stranger.kill().unwrap();
        stranger.wait().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_process_holding_the_lock_is_the_one_stopped() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(devnet_dir(home.path())).unwrap();
        let mut devnet = lock_holder(home.path());
        // The file names another process than the lock's holder: nobody is signalled.
        let mut stranger = Command::new("sleep").arg("30").spawn().unwrap();
        write_info(home.path(), stranger.id());
        assert!(running(home.path()).is_none());
        assert!(alive(&mut stranger) && alive(&mut devnet));
        stranger.kill().unwrap();
        stranger.wait().unwrap();
        // The file names the holder: it is the devnet, and `down` stops it.
        write_info(home.path(), devnet.id());
        assert_eq!(running(home.path()).map(|info| info.pid), Some(devnet.id()));
        let started = Instant::now();
        let stopping = tokio::spawn({
            let home = home.path().to_owned();
            async move { down(&home).await }
        });
        let status = devnet.wait().unwrap();
        assert!(!status.success(), "the devnet was stopped by a signal");
        // `down` waits for the devnet's file to go; a devnet removes it, this stand-in does not.
        std::fs::remove_file(info_path(home.path())).unwrap();
        assert!(stopping.await.unwrap().unwrap());
        assert!(started.elapsed() < Duration::from_secs(30));
        // Once it is gone, a second lock can be taken, and only one at a time.
        let lock = DevnetLock::acquire(home.path()).unwrap();
        let second = Command::new("python3")
            .args(["-c", "import fcntl, sys\nf = open(sys.argv[1], 'a')\nfcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)"])
            .arg(devnet_dir(home.path()).join("devnet.lock"))
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(!second.success(), "another process took the lock this process holds");
        drop(lock);
    }

    #[tokio::test]
    async fn a_devnet_in_this_process_is_not_signalled_from_it() {
        let home = tempfile::tempdir().unwrap();
        write_info(home.path(), std::process::id());
        // A file naming this process, which holds no lock: stale, and not believed.
        assert!(running(home.path()).is_none());
        let _lock = DevnetLock::acquire(home.path()).unwrap();
        assert!(running(home.path()).is_some());
        let error = down(home.path()).await.unwrap_err();
        assert!(matches!(error, Error::Devnet(_)), "{error}");
    }
}
