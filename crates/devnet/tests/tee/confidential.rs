//! The whole confidential path, end to end: an encrypted dataset, a TEE app, a requester
//! secret and an app developer secret; the result is right, downloadable, and opens only with
//! the beneficiary's key; no plaintext or secret is ever written to a service's data directory
//! or logged.

use std::time::Duration;

use alloy::signers::local::PrivateKeySigner;
use poco_api::results::{ArchiveLimits, archive::unpack_to_dir};
use poco_api::sms::{
    DatasetKey, ENCRYPTED_RESULT_FILE, ResultKeyPair, dataset_checksum, decrypt_result,
    encrypt_dataset,
};
use poco_devnet::cluster::tee::TeeCluster;
use poco_primitives::Tag;
use poco_test_utils::{OrderSpec, logs::capture_logs};

use crate::{contains, walk};

const PARAMS: &str = r#"{"iexec_secrets":{"1":"warehouse-token"},"iexec_result_encryption":true}"#;

/// What `apps/confidential` writes to `result.txt` for `dataset` and the two secrets.
fn expected_result(dataset: &[u8], requester_secret: &str, developer_secret: &str) -> String {
    let (mut lines, mut numbers, mut sum, mut current) = (0u64, 0u64, 0u64, 0u64);
    let mut in_number = false;
    for &byte in dataset {
        if byte == b'\n' {
            lines += 1;
        }
        if byte.is_ascii_digit() {
            current = current.wrapping_mul(10).wrapping_add(u64::from(byte - b'0'));
            in_number = true;
        } else if in_number {
            sum = sum.wrapping_add(current);
            numbers += 1;
            current = 0;
            in_number = false;
        }
    }
    if in_number {
        sum = sum.wrapping_add(current);
        numbers += 1;
    }
    if dataset.last().is_some_and(|&last| last != b'\n') {
        lines += 1;
    }
    let fnv1a = |value: &str| {
        let hash = value.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        format!("{hash:016x}")
    };
    format!(
        "lines={lines}\nbytes={}\nnumbers={numbers}\nsum={sum}\nrequester_secret_fnv1a={}\n\
         developer_secret_fnv1a={}\n",
        dataset.len(),
        fnv1a(requester_secret),
        fnv1a(developer_secret)
    )
}

/// A word of letters only, unique to this run: what the test greps for.
fn marker(prefix: &str) -> String {
    let hex = PrivateKeySigner::random().address().to_string().to_lowercase();
    let letters: String = hex[2..]
        .chars()
        .map(|c| if c.is_ascii_digit() { (b'g' + (c as u8 - b'0')) as char } else { c })
        .collect();
    format!("{prefix}{letters}")
}

/// Issue 7, "what it must show" 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_dataset_and_secrets_give_a_result_only_the_beneficiary_reads() {
    let logs = capture_logs();
    let mut tee = Box::pin(TeeCluster::start(1, "confidential")).await;
    let accounts = tee.cluster.net.accounts().clone();
    let sms = tee.sms();
    assert!(sms.status().await.unwrap().warning.unwrap().contains("INSECURE"));

    // The dataset owner encrypts the dataset (the plaintext only ever lives in this test's
    // memory), publishes the ciphertext, registers its checksum and pushes the key.
    let patient = marker("patient");
    let plaintext = format!(
        "name,visits,amount\n{patient},3,1200\nrow{},14,77\nrow{},5,31\n",
        marker("b"),
        marker("c")
    )
    .into_bytes();
    let key = DatasetKey::generate();
    let encrypted = encrypt_dataset(&plaintext, &key).unwrap();
    assert!(!contains(&encrypted, patient.as_bytes()));
    let published = tee.cluster.scratch().join("records.enc");
    std::fs::create_dir_all(published.parent().unwrap()).unwrap();
    std::fs::write(&published, &encrypted).unwrap();
    let dataset = tee
        .cluster
        .net
        .create_dataset_at(
            &accounts.dataset_provider,
            "confidential records",
            &format!("file://{}", published.display()),
            dataset_checksum(&encrypted),
        )
        .await;
    sms.push_dataset_key(&accounts.dataset_provider, dataset, &key).await.unwrap();

    // The requester's secret, the app developer's secret, the beneficiary's result key (the
    // cluster's deals have the requester as beneficiary).
    let requester_secret = marker("requestertoken");
    let developer_secret = marker("developerlicense");
    sms.push_requester_secret(&accounts.requester, "warehouse-token", &requester_secret)
        .await
        .unwrap();
    sms.push_app_secret(&accounts.app_provider, tee.cluster.app, &developer_secret).await.unwrap();
    let beneficiary = ResultKeyPair::generate();
    sms.push_result_key(&accounts.requester, &beneficiary.recipient()).await.unwrap();

    let deal = tee
        .cluster
        .deal_with(OrderSpec {
            dataset: Some(dataset),
            tag: Tag::TEE.0,
            trust: 1,
            params: PARAMS.into(),
            ..OrderSpec::default()
        })
        .await;
    assert!(deal.is_tee());
    tee.start_tee_worker(0);
    tee.cluster.wait_completed(&deal, Duration::from_secs(120)).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();

    // Downloadable, with the digest committed on-chain (under the enclave's signature).
    let downloaded = tee.cluster.download(task_id).await;
    let poco = tee.cluster.net.owner().poco(tee.cluster.net.deployment().poco);
    let task = poco.viewTask(task_id).call().await.unwrap();
    downloaded.verify(task.resultDigest).unwrap();
    let files: Vec<&str> = downloaded.summary.files.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(files, [ENCRYPTED_RESULT_FILE], "only the encrypted result leaves the enclave");
    let outside = tempfile::tempdir().unwrap();
    downloaded.unpack_to(&outside.path().join("downloaded")).unwrap();
    let sealed =
        std::fs::read(outside.path().join("downloaded").join(ENCRYPTED_RESULT_FILE)).unwrap();
    assert!(!contains(&sealed, b"lines="));

    // Only the beneficiary's identity opens it.
    assert!(decrypt_result(&sealed, ResultKeyPair::generate().identity().expose()).is_err());
    let tar = decrypt_result(&sealed, beneficiary.identity().expose()).unwrap();
    let opened = outside.path().join("opened");
    unpack_to_dir(&tar, &opened, &ArchiveLimits::default()).unwrap();
    let result = std::fs::read_to_string(opened.join("result.txt")).unwrap();
    assert_eq!(result, expected_result(&plaintext, &requester_secret, &developer_secret));
    assert!(!result.contains("=none"), "both secrets reached the app: {result}");

    // Nothing confidential on disk: not in the worker's, scheduler's, result store's or SMS's
    // data, nor in the enclave workspaces (wiped), nor in any log line.
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("the dataset plaintext", plaintext.clone()),
        ("a dataset row", patient.clone().into_bytes()),
        ("the dataset key", key.to_hex().expose().as_bytes().to_vec()),
        ("the requester secret", requester_secret.clone().into_bytes()),
        ("the developer secret", developer_secret.clone().into_bytes()),
        ("the beneficiary's identity", beneficiary.identity().expose().as_bytes().to_vec()),
        ("the decrypted result", result.clone().into_bytes()),
    ];
    tee.cluster.kill_worker(0).await;
    tee.cluster.kill_scheduler().await;
    tee.kill_sms().await;
    let files = walk(tee.cluster.data_dir());
    for dir in ["worker-0", "sms", "results", "scheduler.db"] {
        assert!(
            files.iter().any(|f| f.starts_with(tee.cluster.data_dir().join(dir))),
            "nothing under {dir}: the grep would prove nothing"
        );
    }
    for file in &files {
        // The result store still runs: a temporary file may go meanwhile.
        let Ok(bytes) = std::fs::read(file) else { continue };
        for (what, value) in &secrets {
            assert!(!contains(&bytes, value), "{what} is in {}", file.display());
        }
    }
    assert!(walk(tee.workspace_root()).is_empty(), "an enclave workspace was left behind");
    let captured = logs.contents();
    assert!(contains(&captured, b"INSECURE"), "the simulation is named in the logs");
    assert!(contains(&captured, b"secrets released"), "the capture saw the SMS");
    for (what, value) in &secrets {
        assert!(!contains(&captured, value), "{what} is in the logs");
    }
}
