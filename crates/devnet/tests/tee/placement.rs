//! Where TEE tasks run: never on a worker without an enclave, and on a TEE worker even when
//! the deal asks for no result encryption (the result then leaves the enclave in clear), and on
//! as many enclaves as the trust asks for.

use std::time::Duration;

use alloy::primitives::{Address, B256};
use poco_api::sms::{DatasetKey, dataset_checksum, encrypt_dataset};
use poco_devnet::cluster::tee::TeeCluster;
use poco_primitives::Tag;
use poco_test_utils::OrderSpec;

/// Registers a small encrypted dataset (3 lines, 13 bytes, numbers summing to 42) and pushes
/// its key to the SMS.
async fn small_encrypted_dataset(tee: &TeeCluster) -> Address {
    let provider = tee.cluster.net.accounts().dataset_provider.clone();
    let plaintext = b"a,1\nb,2\nc,39\n".to_vec();
    let key = DatasetKey::generate();
    let encrypted = encrypt_dataset(&plaintext, &key).unwrap();
    let published = tee.cluster.scratch().join("small.enc");
    std::fs::create_dir_all(published.parent().unwrap()).unwrap();
    std::fs::write(&published, &encrypted).unwrap();
    let dataset = tee
        .cluster
        .net
        .create_dataset_at(
            &provider,
            "small",
            &format!("file://{}", published.display()),
            dataset_checksum(&encrypted),
        )
        .await;
    tee.sms().push_dataset_key(&provider, dataset, &key).await.unwrap();
    dataset
}

/// The result of a completed task, as the requester downloads it.
async fn result_of(tee: &TeeCluster, task_id: B256) -> String {
    let downloaded = tee.cluster.download(task_id).await;
    let unpacked = tee.cluster.scratch().join(format!("result-{task_id}"));
    downloaded.unpack_to(&unpacked).unwrap();
    std::fs::read_to_string(unpacked.join("result.txt")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tee_task_never_goes_to_a_worker_without_an_enclave() {
    let mut tee = Box::pin(TeeCluster::start(2, "confidential")).await;
    let accounts = tee.cluster.net.accounts().clone();
    let dataset = small_encrypted_dataset(&tee).await;

    let plain = accounts.workers[0].address();
    let enclave = accounts.workers[1].address();
    let plain_before = tee.cluster.balance(plain).await;
    let enclave_before = tee.cluster.balance(enclave).await;
    tee.cluster.start_worker(0);
    let deal = tee
        .cluster
        .deal_with(OrderSpec { dataset: Some(dataset), tag: Tag::TEE.0, ..OrderSpec::default() })
        .await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_ne!(tee.cluster.status(task_id).await, 3, "a worker without an enclave ran it");

    tee.start_tee_worker(1);
    tee.cluster.wait_completed(&deal, Duration::from_secs(120)).await;
    assert_eq!(tee.cluster.balance(plain).await, plain_before, "the plain worker was not paid");
    assert!(tee.cluster.balance(enclave).await > enclave_before, "the TEE worker was paid");

    let result = result_of(&tee, task_id).await;
    assert!(result.starts_with("lines=3\nbytes=13\nnumbers=3\nsum=42\n"), "{result}");
    assert!(result.contains("requester_secret_fnv1a=none"), "{result}");
}

/// A replicated TEE task: two enclaves compute it, both contributions (each under its
/// enclave's signature) agree, the task completes and both workers are paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_tee_task_completes_on_agreeing_enclaves() {
    let mut tee = Box::pin(TeeCluster::start(2, "confidential")).await;
    let accounts = tee.cluster.net.accounts().clone();
    let dataset = small_encrypted_dataset(&tee).await;
    let workers = [accounts.workers[0].address(), accounts.workers[1].address()];
    let before = [tee.cluster.balance(workers[0]).await, tee.cluster.balance(workers[1]).await];
    let deal = tee
        .cluster
        .deal_with(OrderSpec {
            dataset: Some(dataset),
            tag: Tag::TEE.0,
            trust: 4,
            ..OrderSpec::default()
        })
        .await;
    assert!(deal.is_tee());
    tee.start_tee_worker(0);
    tee.start_tee_worker(1);
    tee.cluster.wait_completed(&deal, Duration::from_secs(120)).await;

    let task_id = deal.task_id(deal.botFirst).unwrap();
    let poco = tee.cluster.net.owner().poco(tee.cluster.net.deployment().poco);
    for worker in workers {
        let contribution = poco.viewContribution(task_id, worker).call().await.unwrap();
        assert_eq!(contribution.status, 2, "{worker} contributed and was proved right");
    }
    for (worker, before) in workers.into_iter().zip(before) {
        assert!(tee.cluster.balance(worker).await > before, "{worker} was paid");
    }
    let downloaded = tee.cluster.download(task_id).await;
    let task = poco.viewTask(task_id).call().await.unwrap();
    downloaded.verify(task.resultDigest).unwrap();
    let result = result_of(&tee, task_id).await;
    assert!(result.starts_with("lines=3\nbytes=13\nnumbers=3\nsum=42\n"), "{result}");
}
