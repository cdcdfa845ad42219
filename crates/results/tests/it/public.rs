//! A trust-1 task finalized by `contributeAndFinalize`, its result uploaded afterwards, in a
//! deal whose params make results public: anyone downloads it without authentication.

use bytes::Bytes;
use poco_api::results::{
    Error,
    archive::{ArchiveLimits, inspect_archive, pack_files},
};

use crate::{Fixture, RawUpload, Store, bounded};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_1_result_uploaded_after_finalization_is_public() {
    bounded(Box::pin(async {
        let params = r#"{"iexec_args":"run","iexec_result_public":true}"#;
        let fixture = Fixture::new(1, 1, params).await;
        let worker = fixture.net.accounts().workers[0].clone();
        // Larger than axum's default 2 MiB body limit, which the store does not use.
        let store = Store::start(&fixture.net, 8 * 1024 * 1024).await;
        let client = store.client();
        let task_id = fixture.task_id();

        let archive = pack_files([("out.bin", vec![7u8; 3 * 1024 * 1024])]).unwrap();
        let digest = inspect_archive(&archive, &ArchiveLimits::default()).unwrap().digest;

        // Before the task exists on-chain there is nothing to check the result against.
        RawUpload::new(&fixture, &worker, archive.clone())
            .refused(&store, 409, "task_not_ready")
            .await;

        fixture.contribute_and_finalize(&worker, digest).await;
        assert_eq!(fixture.on_chain_digest().await, digest);

        // Two uploads at once: exactly one is accepted.
        let ticket = fixture.ticket(&worker);
        let (first, second) = tokio::join!(
            client.upload(fixture.task(), Bytes::from(archive.clone()), &ticket, &worker),
            client.upload(fixture.task(), Bytes::from(archive.clone()), &ticket, &worker),
        );
        let (receipt, refusal) = match (first, second) {
            (Ok(receipt), Err(error)) | (Err(error), Ok(receipt)) => (receipt, error),
            other => panic!("exactly one upload must win: {other:?}"),
        };
        assert_eq!(receipt.digest, digest);
        assert!(
            matches!(&refusal, Error::Refused { status: 409, code, .. }
                if code == "already_uploaded" || code == "upload_in_progress"),
            "{refusal}"
        );

        let beneficiary = &fixture.net.accounts().requester;
        let info = client.info(task_id, beneficiary).await.unwrap().expect("stored");
        assert!(info.public);

        // Anyone downloads it, without a challenge.
        let downloaded = client.download_public(task_id).await.expect("a public download");
        assert_eq!(downloaded.archive.as_ref(), archive.as_slice());
        downloaded.verify(fixture.on_chain_digest().await).unwrap();
        let raw = reqwest::get(format!("{}/results/{task_id}", store.url)).await.unwrap();
        assert_eq!(raw.status(), 200);
        assert_eq!(raw.headers()["content-type"], "application/x-tar");
        assert_eq!(raw.bytes().await.unwrap().as_ref(), archive.as_slice());

        // Still only once.
        let error = client
            .upload(fixture.task(), Bytes::from(archive), &ticket, &worker)
            .await
            .unwrap_err();
        assert!(matches!(&error, Error::Refused { status: 409, .. }), "{error}");
        store.stop().await;
    }))
    .await;
}
