//! A trust-4 task with two workers: only the chosen worker's upload of the consensus result,
//! properly signed, fresh and within the limits, is accepted, and only once; only the
//! beneficiary downloads it, with a fresh challenge each time.

use alloy::{
    primitives::{B256, U256},
    signers::local::PrivateKeySigner,
};
use bytes::Bytes;
use poco_api::results::{
    Error, TaskRef, UploadTicket,
    archive::{ArchiveLimits, inspect_archive, pack_files},
    auth,
};
use poco_primitives::{request::random_nonce, result::result_digest_of_dir};

use crate::{Fixture, RawUpload, Store, bounded, refused_code};

/// The body limit of this test's store.
const MAX_BODY: u64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_4_chosen_worker_uploads_once_and_beneficiary_downloads() {
    bounded(Box::pin(async {
        let fixture = Fixture::new(2, 4, "").await;
        let accounts = fixture.net.accounts().clone();
        let (chosen, other) = (&accounts.workers[0], &accounts.workers[1]);
        let store = Store::start(&fixture.net, MAX_BODY).await;
        let client = store.client();
        let task_id = fixture.task_id();

        let archive =
            pack_files([("result.txt", &b"42\n"[..]), ("logs/run.txt", &b"done"[..])]).unwrap();
        let digest = inspect_archive(&archive, &ArchiveLimits::default()).unwrap().digest;
        let upload = RawUpload::new(&fixture, chosen, archive.clone());

        // Nothing stored yet.
        assert!(!client.exists(task_id).await.unwrap());
        let error = client.challenge(task_id).await.unwrap_err();
        assert_eq!(refused_code(&error), (404, "unknown_result"));

        // No consensus yet: one contribution of trust 4 is not enough.
        fixture.contribute(chosen, digest).await;
        let message = upload.refused(&store, 409, "task_not_ready").await;
        assert!(message.contains("no consensus yet"), "{message}");
        // Consensus, but the chosen worker has not revealed: not settled yet.
        fixture.contribute(other, digest).await;
        let message = RawUpload { nonce: random_nonce(), ..upload.clone() }
            .refused(&store, 409, "task_not_ready")
            .await;
        assert!(message.contains("not revealed"), "{message}");
        fixture.reveal(chosen, digest).await;
        fixture.reveal(other, digest).await;

        // Unknown deal, and a task index that does not give the task id.
        let unknown = RawUpload {
            task: TaskRef { deal_id: B256::repeat_byte(0x77), index: U256::ZERO },
            nonce: random_nonce(),
            ..upload.clone()
        };
        unknown.refused(&store, 404, "unknown_deal").await;
        let mismatch = RawUpload {
            task: TaskRef { index: fixture.idx() + U256::from(1), ..fixture.task() },
            nonce: random_nonce(),
            ..upload.clone()
        };
        mismatch.refused(&store, 400, "task_mismatch").await;

        // The other worker, which contributed and revealed the same result, was not chosen:
        // with the chosen worker's ticket, or with no valid ticket of its own, it is refused.
        let by_other = RawUpload::new(&fixture, other, archive.clone());
        let stolen = RawUpload { ticket: upload.ticket.clone(), ..by_other.clone() };
        let message = stolen.refused(&store, 403, "not_chosen_worker").await;
        assert!(message.contains(&accounts.scheduler.address().to_string()), "{message}");
        // Refused before it was remembered: the same request again is refused for the same
        // reason, not as a replay (a stranger's signatures take no room in the replay cache).
        stolen.refused(&store, 403, "not_chosen_worker").await;
        // A ticket signed by someone other than the deal's scheduler.
        let forged_ticket =
            UploadTicket { task_id, worker: chosen.address() }.sign(&accounts.requester).unwrap();
        RawUpload { ticket: Some(forged_ticket), nonce: random_nonce(), ..upload.clone() }
            .refused(&store, 403, "not_chosen_worker")
            .await;

        // Request signatures: missing, malformed, by another key, stale, over another body.
        RawUpload { signer: None, nonce: random_nonce(), ..upload.clone() }
            .refused(&store, 401, "missing_auth")
            .await;
        RawUpload { ticket: None, nonce: random_nonce(), ..upload.clone() }
            .refused(&store, 401, "missing_auth")
            .await;
        RawUpload { signer: Some(other.clone()), nonce: random_nonce(), ..upload.clone() }
            .refused(&store, 401, "bad_signature")
            .await;
        let message = RawUpload {
            timestamp: upload.timestamp - 3_600,
            nonce: random_nonce(),
            ..upload.clone()
        }
        .refused(&store, 401, "stale_request")
        .await;
        assert!(message.contains("stale"), "{message}");
        // A timestamp in milliseconds is not unix seconds: thousands of years away.
        RawUpload { timestamp: upload.timestamp * 1000, nonce: random_nonce(), ..upload.clone() }
            .refused(&store, 401, "stale_request")
            .await;
        let tampered = RawUpload {
            body: pack_files([("result.txt", "43\n")]).unwrap(),
            nonce: random_nonce(),
            ..upload.clone()
        };
        tampered.refused(&store, 401, "content_hash_mismatch").await;

        // A forged archive, properly signed: its digest is not the consensus. Replaying that
        // exact request is refused as a replay.
        let forged =
            RawUpload::new(&fixture, chosen, pack_files([("result.txt", "43\n")]).unwrap());
        let message = forged.refused(&store, 422, "digest_mismatch").await;
        assert!(message.contains("does not match the consensus"), "{message}");
        forged.refused(&store, 401, "replayed_request").await;

        // An archive that is not a clean tar.
        let garbage = RawUpload::new(&fixture, chosen, vec![0xab; 1_000]);
        garbage.refused(&store, 422, "invalid_archive").await;

        // Too large for the store's limit.
        let big = pack_files([("result.txt", vec![b'x'; MAX_BODY as usize + 1])]).unwrap();
        let message = RawUpload::new(&fixture, chosen, big).refused(&store, 413, "too_large").await;
        assert!(message.contains(&format!("limit is {MAX_BODY}")), "{message}");

        // None of that stored anything.
        assert!(!client.exists(task_id).await.unwrap());

        // The chosen worker, through the client: accepted.
        let ticket = fixture.ticket(chosen);
        let receipt = client
            .upload(fixture.task(), Bytes::from(archive.clone()), &ticket, chosen)
            .await
            .expect("the chosen worker's upload is accepted");
        assert_eq!(receipt.task_id, task_id);
        assert_eq!(receipt.digest, digest);
        assert_eq!(receipt.files, 2);
        assert_eq!(receipt.size, archive.len() as u64);

        // Only once, even with the same bytes.
        let error = client
            .upload(fixture.task(), Bytes::from(archive.clone()), &ticket, chosen)
            .await
            .unwrap_err();
        assert_eq!(refused_code(&error), (409, "already_uploaded"));
        assert!(!error.is_transient());

        // HEAD: a stranger learns that it exists, and nothing more.
        assert!(client.exists(task_id).await.unwrap());
        let head = reqwest::Client::new()
            .head(format!("{}/results/{task_id}", store.url))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200);
        for name in [
            auth::HEADER_RESULT_DIGEST,
            auth::HEADER_ARCHIVE_SHA256,
            auth::HEADER_ARCHIVE_SIZE,
            auth::HEADER_RESULT_PUBLIC,
        ] {
            assert!(head.headers().get(name).is_none(), "{name} shown to a stranger");
        }
        let length = head.headers().get("content-length").map(|v| v.to_str().unwrap().to_owned());
        assert!(matches!(length.as_deref(), None | Some("0")), "{length:?}");
        // Signed by a stranger or by the other worker: refused.
        for signer in [&PrivateKeySigner::random(), other] {
            let error = client.info(task_id, signer).await.unwrap_err();
            assert!(matches!(error, Error::Refused { status: 403, .. }), "{error}");
        }
        // Signed by the beneficiary or by the deal's scheduler: everything.
        for signer in [&accounts.requester, &accounts.scheduler] {
            let info = client.info(task_id, signer).await.unwrap().expect("the result is there");
            assert_eq!(
                (info.digest, info.size, info.public),
                (digest, archive.len() as u64, false)
            );
            assert_eq!(info.archive_sha256, auth::sha256(&archive));
        }

        // The scheduler finalizes on the same digest.
        fixture.finalize(digest, vec![chosen.address(), other.address()]).await;
        let on_chain = fixture.on_chain_digest().await;
        assert_eq!(on_chain, digest);

        // The beneficiary downloads: the bytes uploaded, with a digest it can check.
        let beneficiary = &accounts.requester;
        assert_eq!(fixture.deal.beneficiary, beneficiary.address());
        let downloaded =
            client.download(task_id, beneficiary).await.expect("the beneficiary downloads");
        assert_eq!(downloaded.archive.as_ref(), archive.as_slice());
        downloaded.verify(on_chain).expect("the digest is the on-chain one");
        assert!(downloaded.verify(B256::ZERO).is_err());
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().join("result");
        downloaded.unpack_to(&dir).unwrap();
        assert_eq!(result_digest_of_dir(&dir).unwrap(), on_chain);
        assert_eq!(std::fs::read(dir.join("result.txt")).unwrap(), b"42\n");

        // Somebody else cannot, even with a valid challenge of their own.
        let error = client.download(task_id, other).await.unwrap_err();
        assert_eq!(refused_code(&error), (403, "not_beneficiary"));
        let outsider = PrivateKeySigner::random();
        let error = client.download(task_id, &outsider).await.unwrap_err();
        assert_eq!(refused_code(&error), (403, "not_beneficiary"));

        // A challenge is good once.
        let challenge = client.challenge(task_id).await.unwrap();
        let signature = auth::sign_download(beneficiary, task_id, challenge.nonce).unwrap();
        client.download_with(task_id, Some((challenge.nonce, &signature))).await.unwrap();
        let error =
            client.download_with(task_id, Some((challenge.nonce, &signature))).await.unwrap_err();
        assert_eq!(refused_code(&error), (401, "unknown_challenge"));
        // A nonce never issued, and no authentication at all.
        let signature = auth::sign_download(beneficiary, task_id, B256::repeat_byte(9)).unwrap();
        let error = client
            .download_with(task_id, Some((B256::repeat_byte(9), &signature)))
            .await
            .unwrap_err();
        assert_eq!(refused_code(&error), (401, "unknown_challenge"));
        let error = client.download_public(task_id).await.unwrap_err();
        assert_eq!(refused_code(&error), (401, "missing_auth"));
        // The refusal names the route that gives a challenge.
        let poco_api::results::Error::Refused { message, .. } = &error else { unreachable!() };
        assert!(message.contains(&format!("/results/{task_id}/challenge")), "{message}");

        // The outcome of the task, for the beneficiary only: it did not fail.
        let outcome = client.outcome(task_id, beneficiary).await.unwrap();
        assert_eq!((outcome.task_id, outcome.failure), (task_id, None));
        let error = client.outcome(task_id, other).await.unwrap_err();
        assert_eq!(refused_code(&error), (403, "not_beneficiary"));

        // The metrics count what happened.
        let metrics = reqwest::get(format!("{}/metrics", store.url)).await.unwrap();
        let text = metrics.text().await.unwrap();
        assert!(text.contains("poco_results_uploads_total 1\n"), "{text}");
        assert!(text.contains("poco_results_downloads_total 2\n"), "{text}");
        for code in [
            "not_chosen_worker",
            "digest_mismatch",
            "replayed_request",
            "too_large",
            "already_uploaded",
            "not_beneficiary",
        ] {
            assert!(
                text.contains(&format!("poco_results_errors_total{{code=\"{code}\"}}")),
                "{code}"
            );
        }
        store.stop().await;
    }))
    .await;
}
