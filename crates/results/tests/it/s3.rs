//! The result store on a real S3-compatible server (moto's `moto_server`, a process of its
//! own on 127.0.0.1): a worker's upload stored in the bucket, the beneficiary's challenge and
//! download, and a second store instance on the same bucket serving what the first stored.
//! Credentials come from a settings file (mode 600), never from a flag, and no log or error
//! shows them.

use bytes::Bytes;
use poco_api::results::archive::{ArchiveLimits, inspect_archive, pack_files};
use poco_results::StorageConfig;
use poco_test_utils::s3::S3Server;

use crate::{Fixture, Store, bounded};

/// A secret that must never be shown.
const SECRET: &str = "s3-secret-never-shown";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_stored_in_an_s3_bucket_and_served_by_any_instance() {
    bounded(Box::pin(async {
        let s3 = S3Server::start();
        s3.create_bucket("poco-results");
        let dir = tempfile::tempdir().unwrap();
        let settings = s3.settings_file(dir.path(), SECRET);
        let storage = StorageConfig::S3 {
            url: "s3://poco-results/pool-1".into(),
            settings: Some(settings.clone()),
        };
        assert!(!format!("{storage:?}").contains(SECRET));

        let fixture = Fixture::new(1, 1, "").await;
        let worker = fixture.net.accounts().workers[0].clone();
        let first = Store::start_with(&fixture.net, 1 << 20, storage.clone(), dir).await;
        let task_id = fixture.task_id();
        let archive = pack_files([("result.txt", &b"stored in S3\n"[..])]).unwrap();
        let digest = inspect_archive(&archive, &ArchiveLimits::default()).unwrap().digest;
        fixture.contribute_and_finalize(&worker, digest).await;

        let receipt = first
            .client()
            .upload(fixture.task(), Bytes::from(archive.clone()), &fixture.ticket(&worker), &worker)
            .await
            .expect("the worker's upload is stored in the bucket");
        assert_eq!(receipt.digest, digest);
        // It is in the bucket, under the store's prefix.
        let listing = s3.listing("poco-results");
        assert!(listing.contains("pool-1/"), "the archive is under the prefix: {listing}");

        // The beneficiary's challenge and download, from the first instance and from a second
        // one that only shares the bucket.
        let second_dir = tempfile::tempdir().unwrap();
        let second = Store::start_with(&fixture.net, 1 << 20, storage, second_dir).await;
        let beneficiary = &fixture.net.accounts().requester;
        for store in [&first, &second] {
            let downloaded =
                store.client().download(task_id, beneficiary).await.expect("a download");
            assert_eq!(downloaded.archive.as_ref(), archive.as_slice());
            downloaded.verify(fixture.on_chain_digest().await).unwrap();
        }
        // Stored once: the second instance refuses a second upload of the same task.
        let again = second
            .client()
            .upload(fixture.task(), Bytes::from(archive.clone()), &fixture.ticket(&worker), &worker)
            .await
            .unwrap_err();
        assert!(again.to_string().contains("already"), "{again}");
        first.stop().await;
        second.stop().await;
        drop(settings);
    }))
    .await;
}
