//! Deal ids, task ids, result hashes and seals, authorizations and enclave signatures computed
//! in Rust are accepted by the contract; orders signed for another chain are refused.

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
};
use poco_contracts::bindings::{IPoco, IPocoTypes};
use poco_primitives::{
    Order, PocoDomain, ResultCommitment, Tag, WorkerpoolAuthorization,
    authorization::sign_enclave_message, result::result_digest,
};
use poco_test_utils::{OrderSpec, RLC, TestNet};

use crate::runtime;

#[test]
fn ids_commitments_and_authorizations_from_rust_are_accepted() {
    runtime().block_on(async {
        let net = TestNet::start(2).await;
        let accounts = net.accounts().clone();
        let app = net.create_app(&accounts.app_provider, "ids-app", B256::ZERO).await;
        let workerpool = net.create_workerpool(&accounts.scheduler, "ids pool").await;
        let spec = OrderSpec { app, workerpool, trust: 4, volume: 5, ..OrderSpec::default() };

        // Two deals from one request, each limited by its own workerpool order: the second
        // takes the next task indices, and both ids are the ones Rust computes.
        let mut first = net.orders(&OrderSpec { volume: 5, ..spec.clone() });
        first.workerpool = net.sign(
            poco_primitives::WorkerpoolOrder { volume: U256::from(2), ..first.workerpool.order },
            &accounts.scheduler,
        );
        let (deal_a, receipt) = net.match_orders(&accounts.requester, &first).await.unwrap();
        let matched = receipt
            .inner
            .logs()
            .iter()
            .find_map(|log| IPoco::OrdersMatched::decode_log(&log.inner).ok())
            .unwrap();
        assert_eq!(deal_a.id(), matched.dealid);
        assert_eq!(deal_a.requestHash, first.request.digest(&net.domain()));
        assert_eq!((deal_a.botFirst, deal_a.botSize), (U256::ZERO, U256::from(2)));
        let mut second = first.clone();
        second.workerpool = net.sign(
            poco_primitives::WorkerpoolOrder {
                salt: B256::repeat_byte(2),
                ..second.workerpool.order
            },
            &accounts.scheduler,
        );
        let (deal_b, _) = net.match_orders(&accounts.requester, &second).await.unwrap();
        assert_eq!((deal_b.botFirst, deal_b.botSize), (U256::from(2), U256::from(2)));
        assert_ne!(deal_a.id(), deal_b.id());
        let poco = net.owner().poco(net.deployment().poco);
        assert_eq!(
            poco.viewDealHash(deal_b.id()).call().await.unwrap(),
            deal_b.hash(),
            "the deal hash computed in Rust is the one stored"
        );

        // Two workers contribute to task 3 of the second deal with Rust-made commitments and
        // authorizations, reveal, and the scheduler finalizes with the Rust digest.
        let idx = U256::from(3);
        let task_id = deal_b.task_id(idx).unwrap();
        let digest = result_digest([("result.txt", b"42\n".as_slice())]).unwrap();
        let binding = IPocoTypes::Deal::from(&deal_b);
        for worker in &accounts.workers {
            let commitment = ResultCommitment::new(worker.address(), task_id, digest);
            let authorization = WorkerpoolAuthorization {
                worker: worker.address(),
                task_id,
                enclave_challenge: Address::ZERO,
            }
            .sign(&accounts.scheduler)
            .unwrap();
            let (client, poco) = net.poco(worker);
            let call = poco.contribute(
                binding.clone(),
                idx,
                commitment.result_hash,
                commitment.result_seal,
                Address::ZERO,
                Bytes::new(),
                authorization,
            );
            client.send(call).await.expect("a Rust-made contribution is accepted");
        }
        for worker in &accounts.workers {
            let (client, poco) = net.poco(worker);
            client.send(poco.reveal(task_id, digest)).await.expect("the reveal opens the seal");
        }
        let mut contributors: Vec<Address> = accounts.workers.iter().map(|w| w.address()).collect();
        contributors.sort();
        let (client, poco) = net.poco(&accounts.scheduler);
        let call = poco.finalize(binding, idx, digest, Bytes::new(), Bytes::new(), contributors);
        client.send(call).await.expect("finalize with the Rust digest");
        let task = poco.viewTask(task_id).call().await.unwrap();
        assert_eq!(task.status, 3, "COMPLETED");
        assert_eq!(task.resultDigest, digest);
    });
}

#[test]
fn enclave_signatures_from_rust_are_accepted() {
    runtime().block_on(async {
        let net = TestNet::start(1).await;
        let accounts = net.accounts().clone();
        let app = net.create_app(&accounts.app_provider, "tee-app", B256::ZERO).await;
        let workerpool = net.create_workerpool(&accounts.scheduler, "tee pool").await;
        let spec = OrderSpec { app, workerpool, tag: Tag::TEE.0, ..OrderSpec::default() };
        let (deal, _) = net.match_orders(&accounts.requester, &net.orders(&spec)).await.unwrap();
        let idx = deal.botFirst;
        let task_id = deal.task_id(idx).unwrap();
        let worker = &accounts.workers[0];
        let enclave = PrivateKeySigner::random();
        let digest = B256::repeat_byte(0x5a);
        let commitment = ResultCommitment::new(worker.address(), task_id, digest);
        let authorization = WorkerpoolAuthorization {
            worker: worker.address(),
            task_id,
            enclave_challenge: enclave.address(),
        }
        .sign(&accounts.scheduler)
        .unwrap();
        let (client, poco) = net.poco(worker);
        let binding = IPocoTypes::Deal::from(&deal);

        // Without the challenge, a TEE deal refuses the contribution.
        let call = poco.contributeAndFinalize(
            binding.clone(),
            idx,
            digest,
            Bytes::new(),
            Bytes::new(),
            Address::ZERO,
            Bytes::new(),
            authorization.clone(),
        );
        let error = client.send(call).await.expect_err("a TEE deal needs an enclave challenge");
        assert!(error.to_string().contains("enclave challenge"), "{error}");

        let enclave_sign = sign_enclave_message(&enclave, &commitment).unwrap();
        let call = poco.contributeAndFinalize(
            binding,
            idx,
            digest,
            Bytes::new(),
            Bytes::new(),
            enclave.address(),
            enclave_sign,
            authorization,
        );
        client.send(call).await.expect("the Rust enclave signature is accepted");
        assert_eq!(poco.viewTask(task_id).call().await.unwrap().status, 3);
        assert_eq!(
            poco.balanceOf(worker.address()).call().await.unwrap(),
            U256::from(1_000 * RLC) + U256::from(2 * RLC * 99 / 100),
            "the worker earned the pool price minus the scheduler's 1%"
        );
    });
}

#[test]
fn orders_signed_for_another_chain_are_refused() {
    runtime().block_on(async {
        let net = TestNet::start(0).await;
        let accounts = net.accounts().clone();
        let app = net.create_app(&accounts.app_provider, "chain-app", B256::ZERO).await;
        let workerpool = net.create_workerpool(&accounts.scheduler, "chain pool").await;
        let mut orders = net.orders(&OrderSpec { app, workerpool, ..OrderSpec::default() });
        let foreign = PocoDomain::new(1, net.deployment().poco);
        orders.app = orders.app.order.clone().sign(&accounts.app_provider, &foreign).unwrap();
        let error = net
            .match_orders(&accounts.requester, &orders)
            .await
            .expect_err("a signature for chain 1 is not valid here");
        assert_eq!(error.revert().and_then(|r| r.matching_rule()), Some(0x21), "{error}");
    });
}

/// Property: for random deals (volume, trust, category, params, salt), a random task of the
/// deal, a random result digest and a random enclave challenge, the task id, the result hash
/// and seal and the scheduler's authorization computed in Rust are what the contract accepts
/// and records.
#[test]
fn random_task_ids_commitments_and_authorizations_are_accepted() {
    use proptest::{
        prelude::*,
        test_runner::{Config as ProptestConfig, TestCaseError, TestRunner},
    };

    let rt = runtime();
    let net = rt.block_on(TestNet::start(1));
    let accounts = net.accounts().clone();
    let worker = accounts.workers[0].clone();
    let (app, workerpool) = rt.block_on(async {
        (
            net.create_app(&accounts.app_provider, "random-ids", B256::ZERO).await,
            net.create_workerpool(&accounts.scheduler, "random ids pool").await,
        )
    });
    let salt = std::cell::Cell::new(1_000u64);
    let cases = (
        1u64..=16,
        prop_oneof![Just(0u64), Just(1), Just(2), Just(4), Just(100)],
        0u64..5,
        "[a-z0-9 ]{0,24}",
        any::<u64>(),
        any::<[u8; 32]>(),
        any::<bool>(),
    );
    let mut runner = TestRunner::new(ProptestConfig { cases: 24, ..ProptestConfig::default() });
    runner
        .run(&cases, |(volume, trust, category, args, pick, digest, with_challenge)| {
            salt.set(salt.get() + 1);
            rt.block_on(async {
                let params = format!(r#"{{"iexec_args":"{args}"}}"#);
                let spec = OrderSpec {
                    app,
                    workerpool,
                    volume,
                    trust,
                    category,
                    params,
                    salt: salt.get(),
                    ..OrderSpec::default()
                };
                let (deal, _) =
                    net.match_orders(&accounts.requester, &net.orders(&spec)).await.unwrap();
                let idx = deal.botFirst + U256::from(pick % volume);
                let task_id = deal.task_id(idx).unwrap();
                let digest = B256::from(digest);
                let challenge = if with_challenge {
                    PrivateKeySigner::random().address()
                } else {
                    Address::ZERO
                };
                let commitment = ResultCommitment::new(worker.address(), task_id, digest);
                let authorization = WorkerpoolAuthorization {
                    worker: worker.address(),
                    task_id,
                    enclave_challenge: challenge,
                }
                .sign(&accounts.scheduler)
                .unwrap();
                let (client, poco) = net.poco(&worker);
                // Only a non-TEE contribution can go without the enclave's signature: with a
                // challenge, the authorization must be refused for lacking it, not accepted.
                let sent = client
                    .send(poco.contribute(
                        IPocoTypes::Deal::from(&deal),
                        idx,
                        commitment.result_hash,
                        commitment.result_seal,
                        challenge,
                        Bytes::new(),
                        authorization,
                    ))
                    .await;
                if with_challenge {
                    prop_assert!(sent.is_err(), "a contribution without its enclave signature");
                    return Ok(());
                }
                sent.map_err(|e| TestCaseError::fail(format!("refused: {e}")))?;
                // The authorization signs the Rust task id and the contract checked it against
                // the id it derives from (deal, index): the contribution is recorded there.
                let task = poco.viewTask(task_id).call().await.unwrap();
                prop_assert_eq!(task.contributors, U256::from(1));
                let recorded =
                    poco.viewContribution(task_id, worker.address()).call().await.unwrap();
                prop_assert_eq!(&recorded.resultHashPrefix[..], &commitment.result_hash[..15]);
                prop_assert_eq!(&recorded.resultSealPrefix[..], &commitment.result_seal[..15]);
                Ok(())
            })
        })
        .unwrap();
}
