//! The committee draw of `poco-primitives` against the contract: for random trusts and random
//! membership churn before and after the match, every seat the contract reports is the member
//! that held the position the Rust draw computes, at the match's membership epoch, and every
//! seat holder was an active member at match.

use std::collections::BTreeSet;

use alloy::primitives::{Address, B256, U256};
use poco_primitives::{Tag, committee};
use poco_test_utils::{OrderSpec, TestNet};
use proptest::{prelude::*, test_runner::TestRunner};

use crate::runtime;

/// One case: the trust asked, the tasks of the deal, and which members leave or join around
/// the match (indices into the workers; a leave of a non-member or a join of a member is
/// skipped).
#[derive(Debug, Clone)]
struct Case {
    trust: u64,
    volume: u64,
    before: Vec<(bool, usize)>,
    after: Vec<(bool, usize)>,
}

const WORKERS: usize = 14;

fn case() -> impl Strategy<Value = Case> {
    let churn = || prop::collection::vec((any::<bool>(), 0..WORKERS), 0..4);
    (1u64..=14, 1u64..=3, churn(), churn()).prop_map(|(trust, volume, before, after)| Case {
        trust,
        volume,
        before,
        after,
    })
}

#[test]
fn committee_draw_equals_the_contracts() {
    let rt = runtime();
    let net = rt.block_on(TestNet::start(WORKERS));
    let accounts = net.accounts().clone();
    let (app, workerpool) = rt.block_on(async {
        (
            net.create_app(&accounts.app_provider, "committee-app", B256::ZERO).await,
            net.create_workerpool(&accounts.scheduler, "committee pool").await,
        )
    });
    // Ten members to start with; the cases add and remove some.
    let members = std::cell::RefCell::new(BTreeSet::new());
    rt.block_on(async {
        for worker in &accounts.workers[..10] {
            let (client, poco) = net.poco(worker);
            client.send(poco.joinWorkerpool(workerpool)).await.expect("joinWorkerpool");
            members.borrow_mut().insert(worker.address());
        }
    });
    // Members that left hold their bond until released: they cannot join again in this test.
    let left = std::cell::RefCell::new(BTreeSet::new());
    let churn = |changes: &[(bool, usize)]| {
        let (net, members, left) = (&net, &members, &left);
        let changes = changes.to_vec();
        async move {
            for (join, index) in changes {
                let worker = &net.accounts().workers[index];
                let address = worker.address();
                let is_member = members.borrow().contains(&address);
                let (client, poco) = net.poco(worker);
                if join && !is_member && !left.borrow().contains(&address) {
                    client.send(poco.joinWorkerpool(workerpool)).await.expect("join");
                    members.borrow_mut().insert(address);
                } else if !join && is_member && members.borrow().len() > 7 {
                    client.send(poco.leaveWorkerpool(workerpool)).await.expect("leave");
                    members.borrow_mut().remove(&address);
                    left.borrow_mut().insert(address);
                }
            }
        }
    };
    let salt = std::cell::Cell::new(0u64);
    let mut runner = TestRunner::new(ProptestConfig { cases: 16, ..ProptestConfig::default() });
    runner
        .run(&case(), |case| {
            salt.set(salt.get() + 1);
            rt.block_on(async {
                churn(&case.before).await;
                let active_at_match = members.borrow().clone();
                let spec = OrderSpec {
                    app,
                    workerpool,
                    trust: case.trust,
                    volume: case.volume,
                    tag: Tag::COMMITTEE.0,
                    salt: salt.get(),
                    ..OrderSpec::default()
                };
                let (deal, _) =
                    net.match_orders(&accounts.requester, &net.orders(&spec)).await.unwrap();
                churn(&case.after).await;
                net.mine(1).await;
                let (client, poco) = net.poco(&accounts.requester);
                client.send(poco.drawCommittee((&deal).into())).await.expect("drawCommittee");
                let draw = poco.viewDraw(deal.id()).call().await.unwrap();
                prop_assert!(!draw.seed.is_zero(), "the seed is fixed");
                prop_assert_eq!(draw.memberCount, U256::from(active_at_match.len()));
                let size = committee::committee_size(U256::from(case.trust)).unwrap();
                let count: u64 = draw.memberCount.to();
                for (index, task_id) in deal.tasks() {
                    let seats = poco.viewCommittee((&deal).into(), index).call().await.unwrap();
                    prop_assert_eq!(seats.len() as u64, size);
                    let positions = committee::seat_positions(draw.seed, task_id, size, count);
                    for (seat, position) in seats.iter().zip(positions) {
                        let holder: Address = poco
                            .viewMemberAt(workerpool, U256::from(position), draw.epoch)
                            .call()
                            .await
                            .unwrap();
                        prop_assert_eq!(*seat, holder);
                        prop_assert!(
                            active_at_match.contains(seat),
                            "seat holder {} was not an active member at match",
                            seat
                        );
                    }
                }
                Ok(())
            })
        })
        .expect("the Rust committee draw agrees with the contract");
}
