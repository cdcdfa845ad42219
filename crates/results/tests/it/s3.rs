//! The result store on a real S3-compatible server (moto's `moto_server`, a process of its
//! own on 127.0.0.1): a worker's upload stored in the bucket, the beneficiary's challenge and
//! download, and a second store instance on the same bucket serving what the first stored.
//! Credentials come from a settings file (mode 600), never from a flag, and no log or error
//! shows them.

use std::{
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use bytes::Bytes;
use poco_api::results::archive::{ArchiveLimits, inspect_archive, pack_files};
use poco_results::StorageConfig;

use crate::{Fixture, Store, bounded};

/// A secret that must never be shown.
const SECRET: &str = "s3-secret-never-shown";

/// `moto_server` on a free loopback port, killed when dropped.
struct S3Server {
    child: Child,
    url: String,
}

impl S3Server {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server runs (pip install 'moto[server]'; scripts/test.sh does)");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, url }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_stored_in_an_s3_bucket_and_served_by_any_instance() {
    bounded(Box::pin(async {
        let s3 = S3Server::start();
        // A bucket of its own.
        let created = reqwest::Client::new()
            .put(format!("{}/poco-results", s3.url))
            .send()
            .await
            .expect("moto answers");
        assert!(created.status().is_success(), "bucket created: {}", created.status());

        let dir = tempfile::tempdir().unwrap();
        let settings = dir.path().join("s3.env");
        let mut file = std::fs::File::create(&settings).unwrap();
        write!(
            file,
            "AWS_ACCESS_KEY_ID=poco\nAWS_SECRET_ACCESS_KEY={SECRET}\nAWS_REGION=us-east-1\n\
             AWS_ENDPOINT={}\nAWS_ALLOW_HTTP=true\n",
            s3.url
        )
        .unwrap();
        std::fs::set_permissions(&settings, std::fs::Permissions::from_mode(0o600)).unwrap();
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
        let listing = reqwest::get(format!("{}/poco-results?list-type=2", s3.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
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
