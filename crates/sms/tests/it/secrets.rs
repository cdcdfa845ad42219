//! Secret writes: who may write what, write-once (across instances sharing a database too),
//! signed and fresh requests, and secrets surviving a restart sealed at rest.

use alloy::signers::local::PrivateKeySigner;
use poco_api::sms::{DatasetKey, ResultKeyPair, SmsClient};

use crate::common::{Enclave, Fixture, SECRET_NAME, refused, sign};

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
        fixture
            .raw("PUT", &path, intruder, intruder.address(), fixture.clock.now_secs(), body)
            .await,
        (403, "not_owner".into())
    );
    // ... and claiming to be the requester does not help: the signature says who signed.
    assert_eq!(
        fixture.raw("PUT", &path, intruder, requester, fixture.clock.now_secs(), body).await,
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
        fixture
            .raw(
                "PUT",
                &path,
                intruder,
                intruder.address(),
                fixture.clock.now_secs(),
                body.as_bytes()
            )
            .await,
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
    let signed = sign(&requester, "PUT", &path, fixture.clock.now_secs(), body);
    assert_eq!(fixture.send("PUT", &path, &signed, body).await.0, 201);
    // The very same request again: refused before anything else.
    assert_eq!(fixture.send("PUT", &path, &signed, body).await, (401, "replayed_request".into()));
    let path = format!("/requesters/{address}/secrets/second");
    let six_minutes = 6 * 60;
    let now = fixture.clock.now_secs();
    for stamp in [now - six_minutes, now + six_minutes] {
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
    let signed = sign(&requester, "PUT", &path, fixture.clock.now_secs(), body);
    assert_eq!(
        fixture.send("PUT", &path, &signed, br#"{"value":"two"}"#).await,
        (401, "bad_signature".into())
    );
    assert!(!fixture.sms().requester_secret_exists(address, "second").await.unwrap());
    // An oversized body is refused in JSON, as every error is.
    let huge = vec![b'x'; 1 << 20];
    let oversized = reqwest::Client::new()
        .put(format!("{}{path}", fixture.url))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status().as_u16(), 413);
    let body: serde_json::Value = oversized.json().await.expect("a JSON error body");
    assert_eq!(body["code"], "too_large", "{body}");
    assert!(body["error"].as_str().unwrap().contains("larger than"), "{body}");
}

/// Timestamps are unix seconds: a request stamped in milliseconds, as the SMS used to take, is
/// thousands of years away and refused as stale, with a message that says seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_stamped_in_milliseconds_is_not_fresh() {
    let fixture = Fixture::start().await;
    let requester = fixture.net.accounts().requester.clone();
    let address = requester.address();
    let path = format!("/requesters/{address}/secrets/{SECRET_NAME}");
    let body = br#"{"value":"token"}"#;
    let in_ms = sign(&requester, "PUT", &path, fixture.clock.now_secs() * 1000, body);
    let (status, answer) = fixture.send_signed("PUT", &path, &in_ms, body).await;
    assert_eq!((status, answer["code"].as_str()), (401, Some("replayed_request")), "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("seconds"), "{answer}");
    assert!(!fixture.sms().requester_secret_exists(address, SECRET_NAME).await.unwrap());
    let in_secs = sign(&requester, "PUT", &path, fixture.clock.now_secs(), body);
    assert_eq!(fixture.send("PUT", &path, &in_secs, body).await.0, 201);
}

/// The same signed request twice: the second is a replay. Two requests signed within the
/// same second by the same wallet are two requests (their nonces differ): both pass, and so
/// do concurrent clients of one wallet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_accepted_once_and_two_in_one_second_both_are() {
    accepted_once(Fixture::start().await).await;
}

/// The same with the accepted requests in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_request_is_accepted_once_and_two_in_one_second_both_are_on_postgres() {
    accepted_once(Fixture::start_on_postgres().await).await;
}

async fn accepted_once(fixture: Fixture) {
    let requester = fixture.net.accounts().requester.clone();
    let address = requester.address();
    let path = format!("/beneficiaries/{address}/result-key");
    let body = format!(r#"{{"value":"{}"}}"#, ResultKeyPair::generate().recipient());
    let body = body.as_bytes();
    let second = fixture.clock.now_secs();
    let first = sign(&requester, "PUT", &path, second, body);
    let other = sign(&requester, "PUT", &path, second, body);
    assert_eq!(first.timestamp, other.timestamp);
    assert_ne!(first.nonce, other.nonce);
    assert_eq!(fixture.send("PUT", &path, &first, body).await, (201, String::new()));
    assert_eq!(fixture.send("PUT", &path, &other, body).await, (201, String::new()));
    for replay in [&first, &other] {
        assert_eq!(
            fixture.send("PUT", &path, replay, body).await,
            (401, "replayed_request".into())
        );
    }
    // Clients of one wallet writing at once (a worker's concurrent TEE tasks): none refused.
    let mut pushes = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (sms, requester) = (fixture.sms(), requester.clone());
        pushes.spawn(async move {
            sms.push_result_key(&requester, &ResultKeyPair::generate().recipient()).await
        });
    }
    while let Some(outcome) = pushes.join_next().await {
        outcome.unwrap().unwrap();
    }
    fixture.finish().await;
}

/// A nonce or a timestamp changed after signing: the signature no longer recovers to the
/// signer, the request is refused, and the genuine one is not spent by the forgeries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_nonce_or_timestamp_is_refused() {
    let fixture = Fixture::start().await;
    let requester = fixture.net.accounts().requester.clone();
    let address = requester.address();
    let path = format!("/requesters/{address}/secrets/{SECRET_NAME}");
    let body = br#"{"value":"token"}"#;
    let signed = sign(&requester, "PUT", &path, fixture.clock.now_secs() - 10, body);
    let mut nonce = signed.nonce;
    nonce[15] ^= 0x80;
    let forgeries = [
        poco_primitives::request::RequestHeaders { nonce, ..signed.clone() },
        poco_primitives::request::RequestHeaders {
            timestamp: signed.timestamp + 1,
            ..signed.clone()
        },
    ];
    for forged in &forgeries {
        assert_eq!(
            fixture.send("PUT", &path, forged, body).await,
            (401, "bad_signature".into()),
            "{forged:?}"
        );
    }
    assert!(!fixture.sms().requester_secret_exists(address, SECRET_NAME).await.unwrap());
    assert_eq!(fixture.send("PUT", &path, &signed, body).await.0, 201);
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

/// Two SMS instances on one PostgreSQL database and one master key (two machines given the
/// same key file): twenty pushes of one requester secret, each a different value, sent at once
/// to both, store exactly one (the others are 409 `already_set`, whichever instance they
/// reached); a session opened on one instance is attested on the other, which releases the
/// value that won.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn two_instances_on_one_database_keep_a_secret_write_once_under_a_race() {
    let mut fixture = Fixture::start_on_postgres().await;
    let other = fixture.start_another_sms().await;
    let accounts = fixture.net.accounts().clone();
    let first = fixture.sms();
    // What a session needs besides the raced secret.
    let result_key = ResultKeyPair::generate();
    first
        .push_dataset_key(&accounts.dataset_provider, fixture.dataset, &DatasetKey::generate())
        .await
        .unwrap();
    first.push_app_secret(&accounts.app_provider, fixture.app, "license").await.unwrap();
    first.push_result_key(&accounts.requester, &result_key.recipient()).await.unwrap();

    let mut pushes = tokio::task::JoinSet::new();
    for attempt in 0..20 {
        let url = if attempt % 2 == 0 { &fixture.url } else { &other.url };
        let client = SmsClient::new(url);
        let requester = accounts.requester.clone();
        pushes.spawn(async move {
            let value = format!("value-{attempt}");
            let outcome = client.push_requester_secret(&requester, SECRET_NAME, &value).await;
            (value, outcome)
        });
    }
    let mut stored = Vec::new();
    while let Some(joined) = pushes.join_next().await {
        let (value, outcome) = joined.unwrap();
        match outcome {
            Ok(()) => stored.push(value),
            Err(refusal) => {
                refused(Err::<(), _>(refusal), 409, "already_set");
            }
        }
    }
    assert_eq!(stored.len(), 1, "exactly one push stored the secret: {stored:?}");

    let (deal, _, request) = fixture.active_task().await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let worker = fixture.worker(0).clone();
    let session = first.open_session(&worker, &request).await.unwrap();
    let enclave = Enclave::new(&fixture.simulation_key, &fixture.module);
    let response = other
        .client()
        .attest(&worker, session.session_id, &enclave.attest_request(task_id, session.nonce))
        .await
        .unwrap();
    let secrets = enclave.open(&response);
    assert_eq!(secrets.requester_secrets[&1].expose(), stored[0], "both release the winner");
    other.stop().await;
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
