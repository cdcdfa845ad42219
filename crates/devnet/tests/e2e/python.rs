//! Python apps on a devnet: the example projects of `apps/python` built into app bundles, run
//! by workers that fetch the pinned Python runtime by its hashes; replicas agree bit for bit.

use std::path::Path;
use std::sync::Arc;

use alloy::primitives::{Address, B256, U256};
use poco_devnet::cluster::{Cluster, honest_executor};
use poco_primitives::result::{FAILURE_FILE, FailureRecord, result_digest_of_dir};
use poco_test_utils::{OrderSpec, apps_dir};
use sha2::{Digest, Sha256};

use super::MINUTE;

/// Registers `file` of the project as a dataset served from the cluster's scratch folder.
async fn dataset(cluster: &Cluster, file: &Path) -> Address {
    let bytes = std::fs::read(file).unwrap();
    let published = cluster.scratch().join(file.file_name().unwrap());
    std::fs::create_dir_all(cluster.scratch()).unwrap();
    std::fs::write(&published, &bytes).unwrap();
    let provider = cluster.net.accounts().dataset_provider.clone();
    let checksum = B256::from(<[u8; 32]>::from(Sha256::digest(&bytes)));
    let url = format!("file://{}", published.display());
    cluster.net.create_dataset_at(&provider, "test data", &url, checksum).await
}

/// Runs the example `project` at trust 4 on two honest workers, both of which must contribute
/// the same result for the task to complete; returns its `result.json`.
async fn run_example(project: &str, dataset_file: Option<&str>, args: &str) -> serde_json::Value {
    let root = apps_dir().join("python").join(project);
    let mut cluster = Cluster::start_python(2, &root).await;
    let dataset = match dataset_file {
        Some(file) => Some(dataset(&cluster, &root.join(file)).await),
        None => None,
    };
    cluster.start_worker(0);
    cluster.start_worker(1);
    let deal = cluster
        .deal_with(OrderSpec {
            dataset,
            trust: 4,
            volume: 1,
            params: format!(r#"{{"iexec_args":"{args}"}}"#),
            ..OrderSpec::default()
        })
        .await;
    // The first task of a fresh checkout compiles the runtime (a minute or two).
    cluster.wait_completed(&deal, 6 * MINUTE).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let poco = cluster.net.owner().poco(cluster.net.deployment().poco);
    let task = poco.viewTask(task_id).call().await.unwrap();
    assert_eq!(task.contributors, U256::from(2), "{project}: both workers contributed");
    assert_eq!(task.winners, U256::from(2), "{project}: both in the consensus");
    let workers: Vec<Address> =
        cluster.net.accounts().workers.iter().map(|worker| worker.address()).collect();
    let mut hashes = Vec::new();
    for worker in &workers {
        hashes.push(poco.viewContribution(task_id, *worker).call().await.unwrap().resultHashPrefix);
    }
    assert_eq!(hashes[0], hashes[1], "{project}: the same result hash");
    let unpacked = cluster.scratch().join("result");
    cluster.download(task_id).await.unpack_to(&unpacked).unwrap();
    assert!(!unpacked.join(FAILURE_FILE).exists(), "{project}: {:?}", failure(&unpacked));
    assert_eq!(result_digest_of_dir(&unpacked).unwrap(), task.resultDigest);
    serde_json::from_slice(&std::fs::read(unpacked.join("result.json")).unwrap()).unwrap()
}

fn failure(dir: &Path) -> Option<FailureRecord> {
    std::fs::read(dir.join(FAILURE_FILE))
        .ok()
        .map(|bytes| FailureRecord::from_json(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pandas_sales_by_region_on_two_agreeing_workers() {
    let result = run_example("sales", Some("test/sales.csv"), "region").await;
    let groups = result["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 5, "{result}");
    assert_eq!(groups.iter().map(|g| g["rows"].as_u64().unwrap()).sum::<u64>(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scikit_learn_model_scored_on_two_agreeing_workers() {
    let result = run_example("fit", Some("test/points.csv"), "0.25 7").await;
    let score = result["score"].as_f64().unwrap();
    assert!(score > 0.75, "{result}");
    assert_eq!(result["test_rows"], 75);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_numpy_monte_carlo_on_two_agreeing_workers() {
    let result = run_example("montecarlo", None, "100000 5").await;
    let pi = result["pi"].as_f64().unwrap();
    assert!((pi - std::f64::consts::PI).abs() < 0.02, "{result}");
}

/// A Python app that tries the network, a host file, an endless loop or 8 GiB of memory: each
/// task completes with a recorded failure, and the same worker then runs a good task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_app_that_tries_to_escape_ends_in_recorded_failures() {
    let mut cluster = Cluster::start_python(1, &apps_dir().join("testing/python-escape")).await;
    let mut config = cluster.worker_config(0);
    config.fuel_cap = Some(20_000_000_000);
    config.memory_bytes = 256 << 20;
    cluster.start_worker_with(0, config, Arc::new(honest_executor()));
    for (mode, expected) in [
        ("network", "exited with status 1"),
        ("host-file", "exited with status 1"),
        ("loop", "ran out of fuel"),
        ("memory", "ran out of memory"),
        ("ok", ""),
    ] {
        let deal = cluster.deal(1, 1, &format!(r#"{{"iexec_args":"{mode}"}}"#)).await;
        cluster.wait_completed(&deal, 6 * MINUTE).await;
        let task_id = deal.task_id(deal.botFirst).unwrap();
        let unpacked = cluster.scratch().join(format!("result-{mode}"));
        cluster.download(task_id).await.unpack_to(&unpacked).unwrap();
        match failure(&unpacked) {
            Some(record) => {
                assert!(record.cause.contains(expected), "{mode}: {record:?}");
                assert_ne!(expected, "", "{mode}: {record:?}");
            }
            None => {
                assert_eq!(mode, "ok");
                let text = std::fs::read_to_string(unpacked.join("result.txt")).unwrap();
                assert_eq!(text, "ok: still here\n");
            }
        }
    }
}
