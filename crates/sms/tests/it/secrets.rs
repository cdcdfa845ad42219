//! Secret writes: who may write what, write-once, signed and fresh requests, and secrets
//! surviving a restart sealed at rest.

use alloy::signers::local::PrivateKeySigner;
use poco_sms::{DatasetKey, ResultKeyPair};

use crate::common::{Enclave, Fixture, SECRET_NAME, now_ms, refused};

/// Each kind of secret is refused to anyone but its on-chain owner (or the address itself),
/// and the write-once ones cannot be overwritten, even by their owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_write_by_a_non_owner_is_refused() {
    let fixture = Fixture::start().await;
    let accounts = fixture.net.accounts().clone();
    let sms = fixture.sms();
    let key = DatasetKey::generate();

    // The dataset key: only the dataset's on-chain owner.
    for intruder in [&accounts.requester, &accounts.app_provider, &accounts.scheduler] {
        let message =
            refused(sms.push_dataset_key(intruder, fixture.dataset, &key).await, 403, "not_owner");
        assert!(message.contains("owned by"), "{message}");
    }
    assert!(!sms.dataset_key_exists(fixture.dataset).await.unwrap());
    sms.push_dataset_key(&accounts.dataset_provider, fixture.dataset, &key).await.unwrap();
    assert!(sms.dataset_key_exists(fixture.dataset).await.unwrap());
    refused(
        sms.push_dataset_key(&accounts.dataset_provider, fixture.dataset, &DatasetKey::generate())
            .await,
        409,
        "already_set",
    );
    // A dataset nobody registered has no owner to push its key.
    refused(
        sms.push_dataset_key(&accounts.dataset_provider, fixture.app, &key).await,
        404,
        "unknown_asset",
    );

    // The app developer secret: only the app's owner.
    refused(sms.push_app_secret(&accounts.requester, fixture.app, "x").await, 403, "not_owner");
    assert!(!sms.app_secret_exists(fixture.app).await.unwrap());
    sms.push_app_secret(&accounts.app_provider, fixture.app, "license").await.unwrap();
    refused(
        sms.push_app_secret(&accounts.app_provider, fixture.app, "other").await,
        409,
        "already_set",
    );

    // A requester secret: only under the signer's own address.
    let requester = accounts.requester.address();
    let path = format!("/requesters/{requester}/secrets/{SECRET_NAME}");
    let body = br#"{"value":"planted"}"#;
    let intruder = &accounts.workers[0];
    assert_eq!(
        fixture.raw("PUT", &path, intruder, intruder.address(), now_ms(), body).await,
        (403, "not_owner".into())
    );
    // ... and claiming to be the requester does not help: the signature says who signed.
    assert_eq!(
        fixture.raw("PUT", &path, intruder, requester, now_ms(), body).await,
        (401, "bad_signature".into())
    );
    assert!(!sms.requester_secret_exists(requester, SECRET_NAME).await.unwrap());
    sms.push_requester_secret(&accounts.requester, SECRET_NAME, "mine").await.unwrap();
    assert!(sms.requester_secret_exists(requester, SECRET_NAME).await.unwrap());
    refused(
        sms.push_requester_secret(&accounts.requester, SECRET_NAME, "changed").await,
        409,
        "already_set",
    );

    // A result key: only the beneficiary's own; its owner may replace it.
    let path = format!("/beneficiaries/{requester}/result-key");
    let body = format!(r#"{{"value":"{}"}}"#, ResultKeyPair::generate().recipient());
    assert_eq!(
        fixture.raw("PUT", &path, intruder, intruder.address(), now_ms(), body.as_bytes()).await,
        (403, "not_owner".into())
    );
    assert!(!sms.result_key_exists(requester).await.unwrap());
    sms.push_result_key(&accounts.requester, &ResultKeyPair::generate().recipient()).await.unwrap();
    sms.push_result_key(&accounts.requester, &ResultKeyPair::generate().recipient()).await.unwrap();
    assert!(sms.result_key_exists(requester).await.unwrap());
}

/// A write is a signed request, fresh and seen once: a captured request cannot be replayed,
/// an old or future stamp is refused, an unsigned one too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_writes_are_fresh_and_never_replayed() {
    let fixture = Fixture::start().await;
    let requester = fixture.net.accounts().requester.clone();
    let address = requester.address();
    let path = format!("/requesters/{address}/secrets/first");
    let body = br#"{"value":"one"}"#;
    let stamp = now_ms();
    assert_eq!(fixture.raw("PUT", &path, &requester, address, stamp, body).await.0, 201);
    // The very same request again: refused before anything else.
    assert_eq!(
        fixture.raw("PUT", &path, &requester, address, stamp, body).await,
        (401, "replayed_request".into())
    );
    let path = format!("/requesters/{address}/secrets/second");
    let six_minutes = 6 * 60 * 1000;
    for stamp in [now_ms() - six_minutes, now_ms() + six_minutes] {
        assert_eq!(
            fixture.raw("PUT", &path, &requester, address, stamp, body).await,
            (401, "replayed_request".into())
        );
    }
    let unsigned = reqwest::Client::new()
        .put(format!("{}{path}", fixture.url))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    // A body changed after signing does not verify (the signature covers its sha256).
    let stamp = now_ms();
    let signature =
        poco_primitives::pool::sign_request(&requester, "PUT", &path, stamp, body).unwrap();
    let tampered = reqwest::Client::new()
        .put(format!("{}{path}", fixture.url))
        .header(poco_primitives::pool::HEADER_ADDRESS, address.to_string())
        .header(poco_primitives::pool::HEADER_TIMESTAMP, stamp.to_string())
        .header(poco_primitives::pool::HEADER_SIGNATURE, signature.to_string())
        .body(br#"{"value":"two"}"#.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status().as_u16(), 401);
    assert!(!fixture.sms().requester_secret_exists(address, "second").await.unwrap());
}

/// The SMS restarted on the same database and master key still holds every secret and every
/// challenge, and releases the same values; on disk they are only ever sealed. A different
/// master key opens nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_sms_keeps_its_secrets_sealed() {
    restarted_sms_keeps_secrets(Fixture::start().await).await;
}

/// The same with the secrets in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_restarted_sms_keeps_its_secrets_sealed_on_postgres() {
    restarted_sms_keeps_secrets(Fixture::start_on_postgres().await).await;
}

async fn restarted_sms_keeps_secrets(mut fixture: Fixture) {
    let pushed = fixture.push_secrets().await;
    let accounts = fixture.net.accounts().clone();
    let (deal, challenge, request) = fixture.active_task().await;
    let task_id = deal.task_id(deal.botFirst).unwrap();

    fixture.stop_sms().await;
    let recipient = pushed.result_key.recipient();
    let values = [
        pushed.dataset_key.to_hex().expose().to_owned(),
        pushed.requester_secret.clone(),
        pushed.app_secret.clone(),
        recipient.clone(),
    ];
    for entry in walk(&fixture.data_dir()) {
        let bytes = std::fs::read(&entry).unwrap();
        for value in &values {
            assert!(
                !contains(&bytes, value.as_bytes()),
                "{} holds a secret in plaintext",
                entry.display()
            );
        }
    }

    fixture.start_sms().await;
    let sms = fixture.sms();
    assert!(sms.dataset_key_exists(fixture.dataset).await.unwrap());
    assert!(sms.app_secret_exists(fixture.app).await.unwrap());
    assert!(sms.requester_secret_exists(accounts.requester.address(), SECRET_NAME).await.unwrap());
    assert!(sms.result_key_exists(accounts.requester.address()).await.unwrap());
    // Write-once still holds across the restart.
    refused(
        sms.push_requester_secret(&accounts.requester, SECRET_NAME, "changed").await,
        409,
        "already_set",
    );
    assert_eq!(fixture.challenge(&deal).await, challenge, "the challenge survives too");

    let worker = fixture.worker(0).clone();
    let session = sms.open_session(&worker, &request).await.unwrap();
    let enclave = Enclave::new(&fixture.simulation_key, &fixture.module);
    let response = sms
        .attest(&worker, session.session_id, &enclave.attest_request(task_id, session.nonce))
        .await
        .unwrap();
    let secrets = enclave.open(&response);
    assert_eq!(secrets.dataset_key.unwrap().expose(), pushed.dataset_key.to_hex().expose());
    assert_eq!(secrets.requester_secrets[&1].expose(), pushed.requester_secret);
    assert_eq!(secrets.app_developer_secret.unwrap().expose(), pushed.app_secret);
    assert_eq!(secrets.result_encryption_key.unwrap(), recipient);
    let key: PrivateKeySigner = secrets.challenge_key.expose().parse().unwrap();
    assert_eq!(key.address(), challenge);

    // Another master key: the sealed rows do not open, and nothing is released.
    fixture.stop_sms().await;
    let master = fixture.data_dir().join("master.key");
    std::fs::remove_file(&master).unwrap();
    fixture.start_sms().await;
    let sms = fixture.sms();
    let session = sms.open_session(&worker, &request).await.unwrap();
    let enclave = Enclave::new(&fixture.simulation_key, &fixture.module);
    let outcome = sms
        .attest(&worker, session.session_id, &enclave.attest_request(task_id, session.nonce))
        .await;
    let message = refused(outcome, 500, "internal");
    assert!(!message.contains(&pushed.requester_secret), "{message}");
    fixture.finish().await;
}

/// Every file under `dir`, recursively.
pub(crate) fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Whether `needle` occurs in `haystack`.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}
