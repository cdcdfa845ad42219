//! A stranger's app that tries to fill the worker's disk through its output directory: by many
//! writes, and by a sparse file of a huge apparent size. Both are stopped at the output quota
//! and recorded as app failures, while an honest task on the same worker gets its result.

use std::{
    os::unix::fs::MetadataExt,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use poco_devnet::cluster::Cluster;
use poco_primitives::result::{FAILURE_FILE, FailureRecord, FailureStage};
use poco_worker::exec::{OutputQuota, WasmExecutor};

const MIB: u64 = 1 << 20;
const WITHIN: Duration = Duration::from_secs(120);

/// The disk a tree takes: its entries' blocks, added up.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_filling_the_disk_is_stopped_while_an_honest_task_completes() {
    let mut cluster = Cluster::start(1, "testing/filler").await;
    let mut config = cluster.worker_config(0);
    config.slots = 2;
    let work = config.data_dir.join("tasks");
    cluster.start_worker_with(0, config, Arc::new(WasmExecutor::new().unwrap()));

    let peak = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (peak, stop, work) = (peak.clone(), stop.clone(), work.clone());
        std::thread::spawn(move || {
            for _ in 0..60_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                peak.fetch_max(disk_use(&work), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    // The attack: 4 GiB in 1 MiB writes, and one byte 1 TiB into a file.
    let flood =
        cluster.deal(1, 1, &format!(r#"{{"iexec_args":"bytes {} {MIB}"}}"#, 4096 * MIB)).await;
    let sparse = cluster.deal(1, 1, r#"{"iexec_args":"sparse 1099511627776"}"#).await;
    // The honest requester, during the attack.
    let honest = cluster.deal(1, 1, r#"{"iexec_args":"bytes 4096 4096"}"#).await;

    cluster.wait_completed(&honest, WITHIN).await;
    let task = honest.task_id(honest.botFirst).unwrap();
    let result = cluster.download(task).await;
    assert_eq!(result.summary.files, [("fill.bin".to_owned(), 4096)], "the honest result");

    let quota = OutputQuota::default().max_bytes;
    for deal in [&flood, &sparse] {
        cluster.wait_completed(deal, WITHIN).await;
        let task = deal.task_id(deal.botFirst).unwrap();
        let result = cluster.download(task).await;
        let files: Vec<_> = result.summary.files.iter().map(|(path, _)| path.clone()).collect();
        assert_eq!(files, [FAILURE_FILE], "nothing of the attack is kept");
        let failure: FailureRecord = result.summary.failure.clone().expect("a failure record");
        assert_eq!(failure.stage, FailureStage::Run);
        assert!(failure.cause.contains("too many bytes in /iexec_out"), "{failure:?}");
    }
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let peak = peak.load(Ordering::Relaxed);
    // Two slots: at most two outputs at the quota at once, and the honest one.
    assert!(peak <= 2 * quota + 16 * MIB, "the worker's disk held {peak} bytes");
}
