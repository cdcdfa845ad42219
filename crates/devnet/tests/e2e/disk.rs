//! A worker whose disk fills up: on a real small filesystem (a 1 MiB tmpfs the test mounts, so
//! the test needs the right to mount one: root, or CAP_SYS_ADMIN), the worker's writes fail
//! with ENOSPC. It hands its tasks back at once, with the cause; the scheduler gives them to
//! the other worker, which completes them well within one replica timeout; nothing stays
//! frozen, every balance is exact; the full worker says it is unhealthy, and well again once
//! space returns.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256};
use poco_devnet::cluster::{Cluster, honest_executor};
use poco_test_utils::{RLC, wait_until};
use poco_worker::exec::{ExecFuture, ExecSpec, Executor, WasmExecutor};
use tokio::sync::watch;

use crate::MINUTE;

/// A tmpfs of a given size mounted at a folder of the test, unmounted when dropped (lazily if
/// a worker still holds a file there).
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (as `mount` spells it: `1m`) at `path`, private to its owner.
    /// A test that cannot mount one fails here, saying why: it never passes without its disk.
    fn mount(path: &Path, size: &str) -> Self {
        std::fs::create_dir_all(path).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(path)
            .output()
            .unwrap_or_else(|error| {
                panic!("cannot run `mount` for the test's small disk: {error}")
            });
        assert!(
            output.status.success(),
            "cannot mount a {size} tmpfs at {} (this test needs the right to mount one: root or \
             CAP_SYS_ADMIN): {} {}",
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Self { path: path.to_owned() }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Writes zeros to a file at the disk's root until the disk is full (ENOSPC); returns how
    /// many bytes it took.
    fn fill(&self) -> u64 {
        let mut file = std::fs::File::create(self.filler()).unwrap();
        let chunk = vec![0u8; 4096];
        let mut written = 0;
        loop {
            match file.write(&chunk) {
                Ok(0) => panic!("the disk takes no more bytes but says nothing"),
                Ok(n) => written += n as u64,
                Err(error) if error.kind() == std::io::ErrorKind::StorageFull => return written,
                Err(error) => panic!("filling the small disk: {error}"),
            }
        }
    }

    /// Removes what [`SmallDisk::fill`] wrote.
    fn empty(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }

    fn filler(&self) -> PathBuf {
        self.path.join("filler")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Busy (a worker of a failed test still runs there): detached now, gone when freed.
            let lazy = Command::new("umount").arg("-l").arg(&self.path).status();
            if !lazy.is_ok_and(|s| s.success()) {
                eprintln!("could not unmount the small disk at {}", self.path.display());
            }
        }
    }
}

/// The real sandbox, each run waiting until the test opens the gate: until then the worker
/// holds its tasks (saved, their app fetched, their inputs ready), as a worker computing long
/// ones would.
struct Gated {
    inner: WasmExecutor,
    waiting: Arc<AtomicUsize>,
    open: watch::Receiver<bool>,
}

impl Executor for Gated {
    fn backend(&self) -> &'static str {
        "wasm, gated"
    }

    fn execute(&self, spec: ExecSpec) -> ExecFuture<'_> {
        Box::pin(async move {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let mut open = self.open.clone();
            let _ = open.wait_for(|open| *open).await;
            self.inner.execute(spec).await
        })
    }
}

/// The accounts a trust-1 deal pays, and what each gains (or, negative, pays) for `tasks`
/// tasks completed by `paid`, at the default prices (app 1 RLC, pool 2 RLC, 99% of it to the
/// worker); `full` is the worker that handed them back: it neither gains nor loses.
fn trust_one_changes(
    cluster: &Cluster,
    paid: Address,
    full: Address,
    tasks: u64,
) -> (Vec<Address>, Vec<i128>) {
    let accounts = cluster.net.accounts();
    let pool = i128::from(2 * RLC);
    let worker_reward = pool * 99 / 100;
    let n = i128::from(tasks);
    let who = vec![
        accounts.requester.address(),
        accounts.app_provider.address(),
        accounts.scheduler.address(),
        paid,
        full,
    ];
    let changes = vec![
        -n * (i128::from(RLC) + pool),
        n * i128::from(RLC),
        n * (pool - worker_reward),
        n * worker_reward,
        0,
    ];
    (who, changes)
}

async fn balances(cluster: &Cluster, accounts: &[Address]) -> Vec<i128> {
    let mut out = Vec::new();
    for account in accounts {
        out.push(i128::try_from(cluster.balance(*account).await).unwrap());
    }
    out
}

/// Waits until the scheduler shows every one of `tasks` handed back by `worker` (its replica
/// `released`, or given to it again and then contributed by nobody else: not needed here).
async fn all_released(cluster: &Cluster, tasks: &[B256], worker: Address, within: Duration) {
    wait_until("the full worker's tasks are all handed back", within, || async {
        for task in tasks {
            let replicas = cluster.replicas(*task).await;
            if !replicas.iter().any(|(w, state)| *w == worker && state == "released") {
                return false;
            }
        }
        true
    })
    .await;
}

/// Checks the end of a run: every task COMPLETED, each handed back by `full` for a full disk
/// (the scheduler's log says so), nothing frozen, each balance changed by exactly its share,
/// the full worker never contributed.
async fn check_the_end(
    cluster: &Cluster,
    tasks: &[B256],
    full: Address,
    (who, changes): &(Vec<Address>, Vec<i128>),
    before: &[i128],
) {
    let line = format!("worker {full} handed the task back (the worker's disk is full)");
    let poco = cluster.net.owner().poco(cluster.net.deployment().poco);
    for task in tasks {
        assert_eq!(cluster.status(*task).await, 3, "task {task} is COMPLETED");
        let logs = cluster.task_logs(*task).await;
        assert!(logs.iter().any(|(_, message)| message.starts_with(&line)), "{task}: {logs:?}");
        let contribution = poco.viewContribution(*task, full).call().await.unwrap();
        assert_eq!(contribution.status, 0, "the full worker never contributed to {task}");
    }
    for account in who {
        assert_eq!(cluster.frozen(*account).await, U256::ZERO, "nothing frozen for {account}");
    }
    let after = balances(cluster, who).await;
    for ((account, change), (before, after)) in
        who.iter().zip(changes).zip(before.iter().zip(&after))
    {
        assert_eq!(after - before, *change, "the balance of {account}");
    }
}

/// The disk of a worker fills up while it holds four tasks (saved, waiting to run): their runs
/// end on a full disk (their writes fail; what they leave is not trusted), so the worker hands
/// them back at once, says it is unhealthy and asks for no more; the other worker completes the
/// four within one replica timeout of the hand-back. Once the disk has room again, the worker
/// says it is well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_disk_fills_up_hands_its_tasks_back_to_be_completed_by_others() {
    let mut cluster = Cluster::start(2, "pi").await;
    let disk = SmallDisk::mount(&cluster.scratch().join("small-disk"), "1m");
    let accounts = cluster.net.accounts().clone();
    let (full, other) = (accounts.workers[0].address(), accounts.workers[1].address());
    let replica_timeout = cluster.scheduler_config().replica_timeout;

    let mut config = cluster.worker_config_at(0, disk.path().join("worker"));
    config.slots = 4;
    config.min_free_bytes = 256 << 10;
    let (gate, open) = watch::channel(false);
    let waiting = Arc::new(AtomicUsize::new(0));
    let executor = Gated { inner: honest_executor(), waiting: waiting.clone(), open };
    cluster.start_worker_with(0, config, Arc::new(executor));

    let expected = trust_one_changes(&cluster, other, full, 4);
    let before = balances(&cluster, &expected.0).await;
    let deal = cluster.deal(1, 4, r#"{"iexec_args":"2000 1"}"#).await;
    let tasks: Vec<B256> = deal.tasks().map(|(_, id)| id).collect();
    wait_until("the worker holds the four tasks, about to run them", MINUTE, || async {
        waiting.load(Ordering::SeqCst) == 4
    })
    .await;
    for task in &tasks {
        assert_eq!(cluster.replicas(*task).await, [(full, "assigned".to_owned())]);
    }

    let filled = disk.fill();
    println!("the small disk filled with {filled} more bytes");
    cluster.start_worker(1);
    gate.send(true).unwrap();
    all_released(&cluster, &tasks, full, MINUTE).await;
    let handed_back = Instant::now();
    wait_until("the full worker says it is unhealthy", MINUTE, || async {
        cluster.scheduler_metric("poco_scheduler_workers_unhealthy").await == 1
    })
    .await;
    cluster.wait_completed(&deal, replica_timeout).await;
    let took = handed_back.elapsed();
    println!("4 tasks handed back, then completed by the other worker {took:?} later");
    assert!(took < replica_timeout, "{took:?}: not within one replica timeout");
    assert_eq!(cluster.scheduler_metric("poco_scheduler_hand_backs_total").await, 4);
    check_the_end(&cluster, &tasks, full, &expected, &before).await;

    disk.empty();
    wait_until("the worker says it is well again", MINUTE, || async {
        cluster.scheduler_metric("poco_scheduler_workers_unhealthy").await == 0
    })
    .await;
    cluster.kill_worker(0).await;
    cluster.kill_worker(1).await;
}

/// The worker's free-space check off and its disk already full: the state of each task of its
/// reply cannot be saved. None is dropped: every one is handed back at once (not only the
/// first), and the other worker completes them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_of_a_reply_whose_state_cannot_be_saved_is_handed_back() {
    let mut cluster = Cluster::start(2, "pi").await;
    let disk = SmallDisk::mount(&cluster.scratch().join("full-disk"), "1m");
    let accounts = cluster.net.accounts().clone();
    let (full, other) = (accounts.workers[0].address(), accounts.workers[1].address());
    let replica_timeout = cluster.scheduler_config().replica_timeout;
    disk.fill();

    let mut config = cluster.worker_config_at(0, disk.path().join("worker"));
    config.slots = 4;
    config.min_free_bytes = 0;
    let executor = Arc::new(honest_executor());
    cluster.start_worker_with(0, config, executor);

    let expected = trust_one_changes(&cluster, other, full, 4);
    let before = balances(&cluster, &expected.0).await;
    let deal = cluster.deal(1, 4, r#"{"iexec_args":"2000 1"}"#).await;
    let tasks: Vec<B256> = deal.tasks().map(|(_, id)| id).collect();
    all_released(&cluster, &tasks, full, MINUTE).await;
    let handed_back = Instant::now();
    let mut config = cluster.worker_config(1);
    config.slots = 4;
    cluster.start_worker_with(1, config, Arc::new(honest_executor()));
    cluster.wait_completed(&deal, replica_timeout).await;
    let took = handed_back.elapsed();
    println!("4 tasks handed back at receipt, completed by the other worker {took:?} later");
    assert!(took < replica_timeout, "{took:?}: not within one replica timeout");
    check_the_end(&cluster, &tasks, full, &expected, &before).await;
    cluster.kill_worker(0).await;
    cluster.kill_worker(1).await;
}
