//! An app's output is bounded: an app that writes without end is stopped at its output quota,
//! recorded and paid as an app failure, and leaves nothing on the worker's disk; a result the
//! store refuses is not retried forever.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use alloy::{
    primitives::{Address, B256},
    providers::ext::AnvilApi,
};
use poco_devnet::cluster::Cluster;
use poco_primitives::result::{FAILURE_FILE, FailureRecord, FailureStage};
use poco_test_utils::{RLC, logs::capture_logs, wait_until};
use poco_worker::exec::{OutputQuota, WasmExecutor};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::MINUTE;

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// The disk a tree takes: its files' blocks, added up (a sparse file takes only what it wrote).
fn disk_use(root: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(root) else { return 0 };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(metadata) = entry.path().symlink_metadata() else { continue };
        total += metadata.blocks() * 512;
        if metadata.is_dir() {
            total += disk_use(&entry.path());
        }
    }
    total
}

/// Samples the disk use of `root` every few milliseconds until dropped; keeps the largest.
struct DiskWatch {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl DiskWatch {
    fn start(root: PathBuf) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            // Bounded: at most ten minutes of samples.
            for _ in 0..120_000 {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                p.fetch_max(disk_use(&root), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Self { peak, stop }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for DiskWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn balances(cluster: &Cluster, accounts: &[Address]) -> Vec<i128> {
    let mut out = Vec::new();
    for account in accounts {
        out.push(i128::try_from(cluster.balance(*account).await).unwrap());
    }
    out
}

fn failure_in(cluster: &Cluster, task: B256, archive: &[u8]) -> FailureRecord {
    let dir = cluster.scratch().join(format!("result-{task}"));
    poco_api::results::archive::unpack_to_dir(archive, &dir, &Default::default()).unwrap();
    FailureRecord::from_json(&std::fs::read(dir.join(FAILURE_FILE)).unwrap()).unwrap()
}

/// An app writing 1 GiB to `/iexec_out` is stopped at the byte quota: the task completes with a
/// failure record naming the quota, paid to the nRLC like any result (requester −3 RLC, app
/// owner +1, scheduler +0.02, worker +1.98 at the cluster's prices), and the worker's work
/// folder never holds more than the quota and a margin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_writing_a_gibibyte_is_stopped_at_its_quota_and_paid_as_a_failure() {
    let mut cluster = Cluster::start(1, "testing/filler").await;
    let config = cluster.worker_config(0);
    let work = config.data_dir.join("tasks");
    cluster.start_worker_with(0, config, Arc::new(WasmExecutor::new().unwrap()));
    let accounts = cluster.net.accounts().clone();
    let who = [
        accounts.requester.address(),
        accounts.app_provider.address(),
        accounts.scheduler.address(),
        accounts.workers[0].address(),
    ];
    let pool = 2 * RLC as i128;
    let worker_reward = pool * 99 / 100;
    let expected = [-(RLC as i128) - pool, RLC as i128, pool - worker_reward, worker_reward];

    let before = balances(&cluster, &who).await;
    let watch = DiskWatch::start(work.clone());
    let deal = cluster.deal(1, 1, &format!(r#"{{"iexec_args":"bytes {GIB} {MIB}"}}"#)).await;
    cluster.wait_completed(&deal, MINUTE).await;
    let task = deal.task_id(deal.botFirst).unwrap();
    let downloaded = cluster.download(task).await;
    let peak = watch.peak();
    drop(watch);

    let files: Vec<_> = downloaded.summary.files.iter().map(|(path, _)| path.clone()).collect();
    assert_eq!(files, [FAILURE_FILE], "only the failure record");
    let failure = failure_in(&cluster, task, &downloaded.archive);
    assert_eq!(failure.stage, FailureStage::Run);
    let quota = OutputQuota::default().max_bytes;
    assert_eq!(
        failure.cause,
        format!("went past the output quota: too many bytes in /iexec_out (the limit is {quota})")
    );
    assert!(peak <= quota + 16 * MIB, "the worker's disk held {peak} bytes");
    assert!(disk_use(&work) < MIB, "the over-quota output stays on the worker's disk");
    let after = balances(&cluster, &who).await;
    let changes: Vec<i128> = before.iter().zip(&after).map(|(b, a)| a - b).collect();
    assert_eq!(changes, expected, "a quota failure is paid like any result");
}

/// A result store that answers every request `status` with the refusal `code`, counting the
/// uploads.
async fn unavailable_store(status: &'static str, code: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let uploads = Arc::new(AtomicUsize::new(0));
    let counted = uploads.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                let n = socket.read(&mut buffer).await.unwrap_or(0);
                if buffer[..n].starts_with(b"PUT ") {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                // A poco refusal: `{"error": <message>, "code": <code>}`.
                let body = format!(r#"{{"error":"try later","code":"{code}"}}"#);
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, uploads)
}

/// An upload that keeps failing for a reason that may pass is tried exactly the configured
/// number of times, with a backoff, then given up and logged; it is not retried forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_upload_is_retried_a_bounded_number_of_times() {
    let logs = capture_logs();
    let mut cluster = Cluster::start(1, "testing/filler").await;
    let (store, uploads) = unavailable_store("503 Service Unavailable", "busy").await;
    cluster.kill_scheduler().await;
    cluster.results_url = store;
    cluster.start_scheduler().await;
    let mut config = cluster.worker_config(0);
    config.upload_attempts = 3;
    config.upload_backoff = Duration::from_millis(300);
    let work = config.data_dir.join("tasks");
    cluster.start_worker_with(0, config, Arc::new(WasmExecutor::new().unwrap()));

    let deal = cluster.deal(1, 1, r#"{"iexec_args":"bytes 4096 4096"}"#).await;
    cluster.wait_completed(&deal, MINUTE).await;
    wait_until("the worker gives the upload up", MINUTE, || async {
        String::from_utf8_lossy(&logs.contents()).contains("the upload failed too many times")
    })
    .await;
    // Heartbeats and sweeps go on every 200 ms: a worker still trying would upload again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(uploads.load(Ordering::SeqCst), 3, "exactly the configured attempts");
    assert_eq!(disk_use(&work), 0, "the task's files are gone");
}

/// A block that completes many trust-1 tasks at once leaves their worker with a burst of results
/// to upload, and a store that takes one upload at a time answers the others "busy". The
/// worker uploads them one at a time, as configured, so that none meets that refusal: with a
/// single attempt each, every result still reaches the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_results_reaches_a_store_that_takes_one_upload_at_a_time() {
    const TASKS: u64 = 8;
    let mut cluster = Cluster::start(1, "testing/filler").await;
    let dir = tempfile::tempdir().unwrap();
    let net = &cluster.net;
    let mut store = poco_results::Config::new(net.devnet().rpc_url(), net.deployment().poco);
    store.storage = poco_results::StorageConfig::Local { root: dir.path().join("results") };
    store.max_concurrent_uploads = 1;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(poco_results::serve(store, listener, std::future::pending()));
    cluster.kill_scheduler().await;
    cluster.results_url = url;
    cluster.start_scheduler().await;
    let mut config = cluster.worker_config(0);
    config.slots = TASKS as u32;
    config.upload_attempts = 1;
    config.concurrent_uploads = 1;
    cluster.start_worker_with(0, config, Arc::new(WasmExecutor::new().unwrap()));

    // From now on a block every 2 seconds: the tasks' contributions land in the same blocks.
    let provider = cluster.net.owner().provider();
    provider.anvil_set_auto_mine(false).await.unwrap();
    provider.anvil_set_interval_mining(2).await.unwrap();
    let deal = cluster.deal(1, TASKS, r#"{"iexec_args":"bytes 4194304 65536"}"#).await;
    cluster.wait_completed(&deal, MINUTE).await;
    for (_, task) in deal.tasks() {
        let result = cluster.download(task).await;
        assert_eq!(result.summary.files, [("fill.bin".to_owned(), 4 * MIB)], "task {task}");
    }
}

/// A store that answers a conflict that may pass (the task not ready there yet): the worker
/// does not take it for an upload already made and report a location where nothing is stored;
/// it retries, then gives the upload up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_not_ready_yet_is_asked_again_not_reported_as_holding_the_result() {
    let logs = capture_logs();
    let mut cluster = Cluster::start(1, "testing/filler").await;
    let (store, uploads) = unavailable_store("409 Conflict", "task_not_ready").await;
    cluster.kill_scheduler().await;
    cluster.results_url = store;
    cluster.start_scheduler().await;
    let mut config = cluster.worker_config(0);
    config.upload_attempts = 3;
    config.upload_backoff = Duration::from_millis(300);
    cluster.start_worker_with(0, config, Arc::new(WasmExecutor::new().unwrap()));

    // Arguments of its own: the same deal on another test's chain would have the same task id,
    // and the logs, captured for the whole binary, would mix the two workers' lines.
    let deal = cluster.deal(1, 1, r#"{"iexec_args":"bytes 8192 4096"}"#).await;
    cluster.wait_completed(&deal, MINUTE).await;
    let task = deal.task_id(deal.botFirst).unwrap().to_string();
    wait_until("the worker gives the upload up", MINUTE, || async {
        String::from_utf8_lossy(&logs.contents())
            .lines()
            .any(|line| line.contains(&task) && line.contains("the upload failed too many times"))
    })
    .await;
    assert_eq!(uploads.load(Ordering::SeqCst), 3, "asked again until given up");
}

/// A worker told the store takes more than it does: the store refuses the upload (413), which
/// cannot change, so the worker stops at the first refusal and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_is_not_retried() {
    let logs = capture_logs();
    let mut cluster = Cluster::start(1, "testing/filler").await;
    let mut config = cluster.worker_config(0);
    config.store_limits.max_body_bytes = 4 * GIB;
    config.store_limits.archive.max_content_bytes = 4 * GIB;
    cluster.start_worker_with(0, config, Arc::new(WasmExecutor::new().unwrap()));

    let deal = cluster.deal(1, 1, &format!(r#"{{"iexec_args":"bytes {} {MIB}"}}"#, 80 * MIB)).await;
    cluster.wait_completed(&deal, MINUTE).await;
    let task = deal.task_id(deal.botFirst).unwrap().to_string();
    let lines_of_task = |needle: &str| {
        String::from_utf8_lossy(&logs.contents())
            .lines()
            .filter(|line| line.contains(&task) && line.contains(needle))
            .count()
    };
    wait_until("the worker gives the upload up", MINUTE, || async {
        lines_of_task("refused the result: not retried") > 0
    })
    .await;
    // Heartbeats and sweeps go on every 200 ms: a worker still trying would upload again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(lines_of_task("refused the result: not retried"), 1, "tried once");
    assert_eq!(lines_of_task("the upload failed; will retry"), 0, "a refusal is not retried");
    assert_eq!(lines_of_task("result uploaded"), 0);
}
