//! Enclave challenges, sessions and attestation: what an attested enclave gets, and each
//! refusal (measurement, stale and replayed quotes, inactive tasks, deals without the TEE tag,
//! workers without the scheduler's authorization, simulation where it is not allowed).

use std::time::Duration;

use alloy::{
    primitives::{Address, B256, U256},
    signers::local::PrivateKeySigner,
};
use poco_api::sms::SIMULATION_LABEL;
use poco_primitives::Tag;

use crate::common::{Enclave, Fixture, PARAMS, refused, sign};

/// The path that works: an authorized worker opens a session for an active task, its
/// simulated enclave attests, and gets exactly the secrets of its deal, the challenge key of
/// its task included, labelled as an INSECURE simulation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attested_simulated_enclave_gets_its_secrets() {
    let mut fixture = Fixture::start().await;
    let status = fixture.sms().status().await.unwrap();
    assert!(status.simulation && status.dcap);
    assert!(status.warning.unwrap().contains("INSECURE"));
    let pushed = fixture.push_secrets().await;
    let (deal, challenge, request) = fixture.active_task().await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let worker = fixture.worker(0).clone();
    let sms = fixture.sms();

    let session = sms.open_session(&worker, &request).await.unwrap();
    assert_eq!(session.task_id, task_id);
    let enclave = Enclave::new(&fixture.simulation_key, &fixture.module);
    let response = sms
        .attest(&worker, session.session_id, &enclave.attest_request(task_id, session.nonce))
        .await
        .unwrap();
    assert_eq!(response.attestation, SIMULATION_LABEL);
    // Only the enclave's session key opens the answer.
    let other = Enclave::new(&fixture.simulation_key, &fixture.module);
    assert!(poco_api::sms::open_session_secrets(&response, &other.key.identity()).is_err());
    let secrets = enclave.open(&response);
    assert_eq!(secrets.task_id, task_id);
    assert_eq!(secrets.attestation, SIMULATION_LABEL);
    assert_eq!(secrets.dataset_key.unwrap().expose(), pushed.dataset_key.to_hex().expose());
    assert_eq!(secrets.requester_secrets.len(), 1);
    assert_eq!(secrets.requester_secrets[&1].expose(), pushed.requester_secret);
    assert_eq!(secrets.app_developer_secret.unwrap().expose(), pushed.app_secret);
    assert_eq!(secrets.result_encryption_key.unwrap(), pushed.result_key.recipient());
    let key: PrivateKeySigner = secrets.challenge_key.expose().parse().unwrap();
    assert_eq!(key.address(), challenge);
}

/// A quote of another module, a quote signed by a simulation key the SMS does not trust, and
/// any simulated quote once the SMS runs without the simulation mode: all refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_with_the_wrong_measurement_is_refused() {
    let mut fixture = Fixture::start().await;
    fixture.push_secrets().await;
    let (deal, _, request) = fixture.active_task().await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let worker = fixture.worker(0).clone();
    let sms = fixture.sms();
    let session = sms.open_session(&worker, &request).await.unwrap();

    let mut tampered = fixture.module.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let impostor = Enclave::new(&fixture.simulation_key, &tampered);
    let message = refused(
        sms.attest(&worker, session.session_id, &impostor.attest_request(task_id, session.nonce))
            .await,
        403,
        "attestation_refused",
    );
    assert!(message.contains("measurement"), "{message}");

    let untrusted = Enclave::new(&PrivateKeySigner::random(), &fixture.module);
    let message = refused(
        sms.attest(&worker, session.session_id, &untrusted.attest_request(task_id, session.nonce))
            .await,
        403,
        "attestation_refused",
    );
    assert!(message.contains("not a trusted simulation key"), "{message}");

    // The same SMS without the simulation mode: no simulated quote passes, however right.
    fixture.stop_sms().await;
    fixture.simulation = false;
    fixture.start_sms().await;
    let sms = fixture.sms();
    let status = sms.status().await.unwrap();
    assert!(!status.simulation && status.warning.is_none());
    let session = sms.open_session(&worker, &request).await.unwrap();
    let enclave = Enclave::new(&fixture.simulation_key, &fixture.module);
    let message = refused(
        sms.attest(&worker, session.session_id, &enclave.attest_request(task_id, session.nonce))
            .await,
        403,
        "attestation_refused",
    );
    assert!(message.contains("simulation"), "{message}");
}

/// The session answer says when the session expires in unix seconds (`expiresAt`): the SMS's
/// clock plus the session's time to live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_answer_says_when_it_expires_in_seconds() {
    let mut fixture = Fixture::start().await;
    let (_, _, request) = fixture.active_task().await;
    let worker = fixture.worker(0).clone();
    let ttl = fixture.config().session_ttl.as_secs();
    let body = serde_json::to_vec(&request).unwrap();
    let headers = sign(&worker, "POST", "/sessions", fixture.clock.now_secs(), &body);
    let (status, answer) = fixture.send_signed("POST", "/sessions", &headers, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("expiresMs").is_none(), "{answer}");
    let expires_at = answer["expiresAt"].as_u64().unwrap_or_else(|| panic!("{answer}"));
    let expected = fixture.clock.now_secs() + ttl;
    assert!(expires_at.abs_diff(expected) <= 3, "{expires_at} is not about {expected}");

    // The SMS's clock, not the client's: moved 30 s on, so are the sessions it opens.
    fixture.clock.advance(Duration::from_secs(30));
    let session = fixture.sms().open_session(&worker, &request).await.unwrap();
    let expected = fixture.clock.now_secs() + ttl;
    assert!(session.expires_at.abs_diff(expected) <= 3, "{} vs {expected}", session.expires_at);
    assert!(session.expires_at >= expires_at + 29);
}

/// A quote that comes too late (the session expired), or that was made for an earlier session
/// of the same task, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_quote_is_refused() {
    let mut fixture = Fixture::start().await;
    fixture.push_secrets().await;
    let (deal, _, request) = fixture.active_task().await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let worker = fixture.worker(0).clone();
    let sms = fixture.sms();
    let enclave = Enclave::new(&fixture.simulation_key, &fixture.module);

    let session = sms.open_session(&worker, &request).await.unwrap();
    let late = enclave.attest_request(task_id, session.nonce);
    fixture.clock.advance(Duration::from_secs(61));
    let message =
        refused(sms.attest(&worker, session.session_id, &late).await, 403, "attestation_refused");
    assert!(message.contains("expired"), "{message}");

    // A quote made for an earlier session does not bind the new session's nonce.
    let first = sms.open_session(&worker, &request).await.unwrap();
    let old = enclave.attest_request(task_id, first.nonce);
    let second = sms.open_session(&worker, &request).await.unwrap();
    assert_ne!(first.nonce, second.nonce);
    let message =
        refused(sms.attest(&worker, second.session_id, &old).await, 403, "attestation_refused");
    assert!(message.contains("report data"), "{message}");
    sms.attest(&worker, second.session_id, &enclave.attest_request(task_id, second.nonce))
        .await
        .unwrap();
}

/// A quote that was accepted once is refused after: on its session, on a new session, and
/// with its binding lifted onto another session key (the secrets would go to whoever holds
/// that key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_quote_is_refused() {
    let mut fixture = Fixture::start().await;
    fixture.push_secrets().await;
    let (deal, _, request) = fixture.active_task().await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let worker = fixture.worker(0).clone();
    let sms = fixture.sms();
    let enclave = Enclave::new(&fixture.simulation_key, &fixture.module);

    let session = sms.open_session(&worker, &request).await.unwrap();
    let quote = enclave.attest_request(task_id, session.nonce);
    sms.attest(&worker, session.session_id, &quote).await.unwrap();
    let message =
        refused(sms.attest(&worker, session.session_id, &quote).await, 403, "attestation_refused");
    assert!(message.contains("replay"), "{message}");

    let again = sms.open_session(&worker, &request).await.unwrap();
    refused(sms.attest(&worker, again.session_id, &quote).await, 403, "attestation_refused");

    // The enclave's genuine quote for this session, with a thief's key in place of its own.
    let thief = Enclave::new(&fixture.simulation_key, &fixture.module);
    let mut stolen = enclave.attest_request(task_id, again.nonce);
    stolen.enclave_key = thief.key.recipient();
    let message =
        refused(sms.attest(&worker, again.session_id, &stolen).await, 403, "attestation_refused");
    assert!(message.contains("report data"), "{message}");
}

/// No session for a task that is not ACTIVE: not initialized yet, or failed since; and a
/// session opened while the task was active releases nothing once it no longer is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_is_not_active_is_refused() {
    let mut fixture = Fixture::start().await;
    fixture.push_secrets().await;
    let worker = fixture.worker(0).clone();
    let sms = fixture.sms();
    let deal = fixture.deal(Tag::TEE, PARAMS).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let challenge = fixture.challenge(&deal).await;
    let authorization = fixture.authorize(worker.address(), task_id, challenge);
    let request = Fixture::session_request(&deal, PARAMS, authorization);

    let message = refused(sms.open_session(&worker, &request).await, 409, "task_not_active");
    assert!(message.contains("status 0"), "{message}");

    fixture.initialize(&deal).await;
    let session = sms.open_session(&worker, &request).await.unwrap();
    let enclave = Enclave::new(&fixture.simulation_key, &fixture.module);
    let quote = enclave.attest_request(task_id, session.nonce);
    fixture.fail_by_claim(&deal).await;
    let message =
        refused(sms.attest(&worker, session.session_id, &quote).await, 409, "task_not_active");
    assert!(message.contains("status 4"), "{message}");
    refused(sms.open_session(&worker, &request).await, 409, "task_not_active");
}

/// A deal without the TEE tag gets no challenge and no session; a deal asking for a hardware
/// framework refuses the INSECURE simulation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_without_the_tee_tag_is_refused() {
    let mut fixture = Fixture::start().await;
    fixture.push_secrets().await;
    let worker = fixture.worker(0).clone();
    let scheduler = fixture.scheduler().clone();
    let sms = fixture.sms();

    let plain = fixture.deal(Tag::NONE, PARAMS).await;
    assert!(!plain.is_tee());
    refused(sms.challenge(&scheduler, &plain, plain.botFirst).await, 403, "not_tee");
    let task_id = fixture.initialize(&plain).await;
    let authorization = fixture.authorize(worker.address(), task_id, Address::ZERO);
    let request = Fixture::session_request(&plain, PARAMS, authorization);
    refused(sms.open_session(&worker, &request).await, 403, "not_tee");

    let scone = fixture.deal(Tag::SCONE, PARAMS).await;
    let challenge = fixture.challenge(&scone).await;
    let task_id = fixture.initialize(&scone).await;
    let authorization = fixture.authorize(worker.address(), task_id, challenge);
    let request = Fixture::session_request(&scone, PARAMS, authorization);
    let session = sms.open_session(&worker, &request).await.unwrap();
    let enclave = Enclave::new(&fixture.simulation_key, &fixture.module);
    let message = refused(
        sms.attest(&worker, session.session_id, &enclave.attest_request(task_id, session.nonce))
            .await,
        403,
        "simulation_refused",
    );
    assert!(message.contains("INSECURE") && message.contains("Scone"), "{message}");
}

/// Only the deal's scheduler gets challenges, and only the worker it authorized for (this
/// task, this challenge) gets a session, and only that worker may attest it. A deal or params
/// that are not the on-chain ones are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_the_schedulers_authorization_is_refused() {
    let mut fixture = Fixture::start().await;
    fixture.push_secrets().await;
    let worker = fixture.worker(0).clone();
    let other = fixture.worker(1).clone();
    let sms = fixture.sms();
    let deal = fixture.deal(Tag::TEE, PARAMS).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();

    // The challenge is the scheduler's to ask for.
    refused(sms.challenge(&worker, &deal, deal.botFirst).await, 403, "not_owner");
    fixture.initialize(&deal).await;
    let unchallenged = Fixture::session_request(
        &deal,
        PARAMS,
        fixture.authorize(worker.address(), task_id, Address::ZERO),
    );
    refused(sms.open_session(&worker, &unchallenged).await, 404, "no_challenge");
    let challenge = fixture.challenge(&deal).await;

    let forged_by_worker = poco_primitives::WorkerpoolAuthorization {
        worker: worker.address(),
        task_id,
        enclave_challenge: challenge,
    }
    .sign(&worker)
    .unwrap();
    let cases = [
        ("signed by the worker itself", forged_by_worker),
        ("for another worker", fixture.authorize(other.address(), task_id, challenge)),
        ("for another challenge", fixture.authorize(worker.address(), task_id, Address::ZERO)),
        ("for another task", fixture.authorize(worker.address(), B256::repeat_byte(9), challenge)),
    ];
    for (case, authorization) in cases {
        let request = Fixture::session_request(&deal, PARAMS, authorization);
        let message =
            refused(sms.open_session(&worker, &request).await, 403, "unauthorized_worker");
        assert!(message.contains(&worker.address().to_string()), "{case}: {message}");
    }

    // A deal that is not the on-chain one, or params that are not its params.
    let authorization = fixture.authorize(worker.address(), task_id, challenge);
    let mut forged = deal.clone();
    forged.botSize += U256::from(1);
    let request = Fixture::session_request(&forged, PARAMS, authorization.clone());
    refused(sms.open_session(&worker, &request).await, 404, "unknown_deal");
    let request = Fixture::session_request(
        &deal,
        r#"{"iexec_secrets":{"1":"someone-else"},"iexec_result_encryption":true}"#,
        authorization.clone(),
    );
    refused(sms.open_session(&worker, &request).await, 400, "bad_request");

    // The authorized worker's session: another worker cannot attest it.
    let request = Fixture::session_request(&deal, PARAMS, authorization);
    let session = sms.open_session(&worker, &request).await.unwrap();
    let enclave = Enclave::new(&fixture.simulation_key, &fixture.module);
    let quote = enclave.attest_request(task_id, session.nonce);
    refused(sms.attest(&other, session.session_id, &quote).await, 400, "session_refused");
    sms.attest(&worker, session.session_id, &quote).await.unwrap();
}
