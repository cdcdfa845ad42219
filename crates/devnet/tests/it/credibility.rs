//! The credibility maths of `poco-primitives` against the contract: random sequences of
//! contributions (random worker scores, random answers, and look-alike votes: a result hash
//! with its last bit flipped, sealed with the true digest) reach the same consensus decision at
//! every step, with the same totals and group weights.

use alloy::primitives::{Address, B256, Bytes, U256};
use poco_contracts::bindings::IPocoTypes;
use poco_primitives::{Consensus, ResultCommitment, WorkerpoolAuthorization};
use poco_test_utils::{OrderSpec, TestNet};
use proptest::{prelude::*, test_runner::TestRunner};

use crate::runtime;

/// A task's trust and its contributions: (answer 0..4, worker score). Answer 3 is a
/// look-alike of answer 0.
fn history() -> impl Strategy<Value = (u64, Vec<(u8, u64)>)> {
    (
        prop_oneof![Just(1u64), 2u64..10, Just(100), Just(1_000)],
        prop::collection::vec((0u8..4, prop_oneof![0u64..12, 12u64..400, Just(3_000)]), 1..9),
    )
}

#[test]
fn consensus_decisions_agree_with_the_contract() {
    let rt = runtime();
    let net = rt.block_on(TestNet::start(9));
    let accounts = net.accounts().clone();
    let (app, workerpool) = rt.block_on(async {
        (
            net.create_app(&accounts.app_provider, "cred-app", B256::ZERO).await,
            net.create_workerpool(&accounts.scheduler, "cred pool").await,
        )
    });
    let salt = std::cell::Cell::new(0u64);
    let mut runner = TestRunner::new(ProptestConfig { cases: 40, ..ProptestConfig::default() });
    runner
        .run(&history(), |(trust, votes)| {
            salt.set(salt.get() + 1);
            rt.block_on(async {
                let spec = OrderSpec {
                    app,
                    workerpool,
                    trust,
                    workerpool_price: 1_000,
                    salt: salt.get(),
                    ..OrderSpec::default()
                };
                let (deal, _) =
                    net.match_orders(&accounts.requester, &net.orders(&spec)).await.unwrap();
                let idx = deal.botFirst;
                let task_id = deal.task_id(idx).unwrap();
                let binding = IPocoTypes::Deal::from(&deal);
                let mut model = Consensus::new(trust);
                for ((answer, score), worker) in votes.iter().zip(&accounts.workers) {
                    net.set_score(worker.address(), *score).await;
                    let digest = B256::repeat_byte(answer % 3 + 1);
                    let mut commitment = ResultCommitment::new(worker.address(), task_id, digest);
                    if *answer == 3 {
                        commitment.result_hash.0[31] ^= 1;
                    }
                    let expected = model.contribute(commitment.result_hash, *score);
                    let authorization = WorkerpoolAuthorization {
                        worker: worker.address(),
                        task_id,
                        enclave_challenge: Address::ZERO,
                    }
                    .sign(&accounts.scheduler)
                    .unwrap();
                    let (client, poco) = net.poco(worker);
                    let sent = client
                        .send(poco.contribute(
                            binding.clone(),
                            idx,
                            commitment.result_hash,
                            commitment.result_seal,
                            Address::ZERO,
                            Bytes::new(),
                            authorization,
                        ))
                        .await;
                    match (&expected, &sent) {
                        (Ok(_), Ok(_)) => {}
                        (Err(_), Err(_)) => break,
                        _ => {
                            return Err(TestCaseError::fail(format!(
                                "model {expected:?}, contract {:?}",
                                sent.map(|r| r.transaction_hash)
                            )));
                        }
                    }
                    let task = poco.viewTask(task_id).call().await.unwrap();
                    let consensus_reached = task.status == 2;
                    prop_assert_eq!(consensus_reached, model.consensus().is_some());
                    prop_assert_eq!(task.consensusTotal, model.total());
                    let group =
                        poco.viewGroup(task_id, commitment.result_hash).call().await.unwrap();
                    let modelled = model.group(commitment.result_hash).unwrap();
                    prop_assert_eq!(group.weight, modelled.weight);
                    prop_assert_eq!(group.size, U256::from(modelled.size));
                    if consensus_reached {
                        prop_assert_eq!(task.winners, U256::from(modelled.size));
                        break;
                    }
                }
                Ok(())
            })
        })
        .expect("the credibility maths agree with the contract");
}
