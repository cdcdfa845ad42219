//! The Rust matching function against `matchOrders`, over random order sets: every set it
//! accepts the contract accepts (and writes the same deal), every set it rejects the contract
//! rejects with the same rule.

use alloy::{
    primitives::{Address, B256, U256},
    signers::local::PrivateKeySigner,
};
use poco_contracts::Revert;
use poco_primitives::{
    AppOrder, ChainSnapshot, DatasetOrder, RequestOrder, Signed, Tag, WorkerpoolOrder,
    match_orders,
    matching::{RegisteredWorkerpool, WorkerpoolPolicy},
};
use poco_test_utils::{MatchOrders, RLC, TestNet};
use proptest::{
    prelude::*,
    test_runner::{TestRng, TestRunner},
};

use crate::runtime;

/// The registered assets and actors every case draws from.
struct World {
    net: TestNet,
    app: Address,
    dataset: Address,
    workerpool: Address,
    rich: PrivateKeySigner,
    poor: PrivateKeySigner,
    stranger: PrivateKeySigner,
}

/// One generated case: a base order set and the faults injected into it.
#[derive(Debug, Clone)]
struct Case {
    with_dataset: bool,
    app_price: u64,
    dataset_price: u64,
    workerpool_price: u64,
    volumes: [u64; 4],
    trust: u64,
    extra_trust: u64,
    feature_bits: u8,
    extra_offer_bits: u8,
    poor_requester: bool,
    faults: Vec<u8>,
    salt: u64,
    send: bool,
}

const FAULTS: u8 = 32;

fn case() -> impl Strategy<Value = Case> {
    (
        (any::<bool>(), 0u64..4, 0u64..3, 0u64..6),
        (prop::array::uniform4(0u64..6), 0u64..9, 0u64..4, 0u8..4, 0u8..4),
        (prop::bool::weighted(0.1), prop::collection::vec(0..FAULTS, 0..3), any::<u64>()),
        prop::bool::weighted(0.5),
    )
        .prop_map(
            |(
                (with_dataset, app_price, dataset_price, workerpool_price),
                (volumes, trust, extra_trust, feature_bits, extra_offer_bits),
                (poor_requester, faults, salt),
                send,
            )| Case {
                with_dataset,
                app_price,
                dataset_price,
                workerpool_price,
                volumes,
                trust,
                extra_trust,
                feature_bits,
                extra_offer_bits,
                poor_requester,
                faults,
                salt,
                send,
            },
        )
}

impl World {
    async fn new() -> Self {
        let net = TestNet::start(1).await;
        let accounts = net.accounts().clone();
        let app = net.create_app(&accounts.app_provider, "crosscheck-app", B256::ZERO).await;
        let dataset =
            net.create_dataset(&accounts.dataset_provider, "crosscheck-data", B256::ZERO).await;
        let workerpool = net.create_workerpool(&accounts.scheduler, "crosscheck pool").await;
        // The requester gets a large deposit; a second requester keeps almost nothing.
        let (owner_client, token) = {
            let client = net.owner().clone();
            let token = poco_contracts::bindings::RLC::new(
                net.deployment().token,
                client.provider().clone(),
            );
            (client, token)
        };
        let poco = owner_client.poco(net.deployment().poco);
        owner_client.send(token.approve(net.deployment().poco, U256::MAX)).await.expect("approve");
        owner_client
            .send(poco.depositFor(U256::from(100_000 * RLC), accounts.requester.address()))
            .await
            .expect("deposit");
        // Four members, so that committee deals (feature bit 9) of trust up to 6 can match;
        // trust 7 and up need five (rule 0x80, checked last).
        for member in [
            &accounts.app_provider,
            &accounts.dataset_provider,
            &accounts.requester,
            &accounts.scheduler,
        ] {
            let (client, poco) = net.poco(member);
            client.send(poco.joinWorkerpool(workerpool)).await.expect("joinWorkerpool");
        }
        let poor = accounts.workers[0].clone();
        let (client, poco) = net.poco(&poor);
        client.send(poco.withdraw(U256::from(999 * RLC))).await.expect("withdraw");
        Self {
            app,
            dataset,
            workerpool,
            rich: accounts.requester.clone(),
            poor,
            stranger: PrivateKeySigner::random(),
            net,
        }
    }

    /// The orders of `case`, signed (or mis-signed) as its faults say.
    fn orders(&self, case: &Case) -> MatchOrders {
        let accounts = self.net.accounts();
        let salt = B256::from(U256::from(case.salt));
        let features = Tag::from(U256::from(case.feature_bits) << 8);
        let offer = Tag::from(U256::from(case.feature_bits | case.extra_offer_bits) << 8);
        let requester = if case.poor_requester { &self.poor } else { &self.rich };
        let mut app = AppOrder {
            app: self.app,
            appprice: U256::from(case.app_price * RLC),
            volume: U256::from(case.volumes[0]),
            salt,
            ..Default::default()
        };
        let mut dataset = if case.with_dataset {
            DatasetOrder {
                dataset: self.dataset,
                datasetprice: U256::from(case.dataset_price * RLC),
                volume: U256::from(case.volumes[1]),
                salt,
                ..Default::default()
            }
        } else {
            DatasetOrder::default()
        };
        let mut workerpool = WorkerpoolOrder {
            workerpool: self.workerpool,
            workerpoolprice: U256::from(case.workerpool_price * RLC),
            volume: U256::from(case.volumes[2]),
            tag: offer.0,
            trust: U256::from(case.trust + case.extra_trust),
            salt,
            ..Default::default()
        };
        let mut request = RequestOrder {
            app: self.app,
            appmaxprice: app.appprice,
            dataset: dataset.dataset,
            datasetmaxprice: dataset.datasetprice,
            workerpool: self.workerpool,
            workerpoolmaxprice: workerpool.workerpoolprice,
            requester: requester.address(),
            volume: U256::from(case.volumes[3]),
            tag: features.0,
            trust: U256::from(case.trust),
            beneficiary: requester.address(),
            params: format!("{{\"iexec_args\":\"{}\"}}", case.salt),
            salt,
            ..Default::default()
        };
        let other = Address::repeat_byte(0x77);
        let mut signers =
            [&accounts.app_provider, &accounts.dataset_provider, &accounts.scheduler, requester];
        for fault in &case.faults {
            match fault {
                0 => workerpool.category = U256::from(1),
                1 => {
                    workerpool.category = U256::from(7);
                    request.category = U256::from(7);
                }
                2 => request.trust = workerpool.trust + U256::from(1),
                3 => {
                    request.trust = U256::from(1) << 64;
                    workerpool.trust = request.trust;
                }
                4 => app.appprice = request.appmaxprice + U256::from(1),
                5 => dataset.datasetprice = request.datasetmaxprice + U256::from(1),
                6 => workerpool.workerpoolprice = request.workerpoolmaxprice + U256::from(1),
                7 => {
                    app.appprice = U256::from(1) << 96;
                    request.appmaxprice = app.appprice;
                }
                8 => request.tag = (Tag(request.tag) | Tag::bit(20)).0,
                9 => {
                    request.tag = (Tag(request.tag) | Tag::TEE).0;
                    workerpool.tag = (Tag(workerpool.tag) | Tag::TEE).0;
                }
                10 => request.app = other,
                11 => request.dataset = other,
                12 => request.workerpool = other,
                13 => app.datasetrestrict = other,
                14 => app.workerpoolrestrict = other,
                15 => app.requesterrestrict = other,
                16 => dataset.apprestrict = other,
                17 => dataset.workerpoolrestrict = other,
                18 => dataset.requesterrestrict = other,
                19 => workerpool.apprestrict = other,
                20 => workerpool.datasetrestrict = other,
                21 => workerpool.requesterrestrict = other,
                22 => {
                    app.app = other;
                    request.app = other;
                }
                23 => signers[0] = &self.stranger,
                24 => {
                    dataset.dataset = other;
                    request.dataset = other;
                }
                25 => signers[1] = &self.stranger,
                26 => {
                    workerpool.workerpool = other;
                    request.workerpool = other;
                }
                27 => signers[2] = &self.stranger,
                28 => signers[3] = &self.stranger,
                29 => app.volume = U256::ZERO,
                // Any pool: fine for a plain deal, refused for a committee (rule 0x0b).
                30 => request.workerpool = Address::ZERO,
                _ => {
                    // The scheduler's stake (30% of the price) exceeds its 1,000 RLC.
                    workerpool.workerpoolprice = U256::from(4_000 * RLC);
                    request.workerpoolmaxprice = workerpool.workerpoolprice;
                }
            }
        }
        MatchOrders {
            app: self.net.sign(app, signers[0]),
            dataset: if dataset.dataset.is_zero() && !case.faults.contains(&11) {
                Signed::presigned(dataset)
            } else {
                self.net.sign(dataset, signers[1])
            },
            workerpool: self.net.sign(workerpool, signers[2]),
            request: self.net.sign(request, signers[3]),
        }
    }

    /// The chain state the matching function needs, read from the chain.
    async fn snapshot(&self, orders: &MatchOrders) -> ChainSnapshot {
        let net = &self.net;
        let accounts = net.accounts();
        let domain = net.domain();
        let mut snapshot = ChainSnapshot::new(domain, net.now().await);
        snapshot.apps.insert(self.app, accounts.app_provider.address());
        snapshot.datasets.insert(self.dataset, accounts.dataset_provider.address());
        snapshot.workerpools.insert(
            self.workerpool,
            RegisteredWorkerpool {
                owner: accounts.scheduler.address(),
                policy: WorkerpoolPolicy::default(),
            },
        );
        let poco = net.owner().poco(net.deployment().poco);
        for hash in [
            orders.app.digest(&domain),
            orders.dataset.digest(&domain),
            orders.workerpool.digest(&domain),
            orders.request.digest(&domain),
        ] {
            let consumed = poco.viewConsumed(hash).call().await.expect("viewConsumed");
            snapshot.consumed.insert(hash, consumed);
        }
        for account in [orders.request.requester, accounts.scheduler.address()] {
            let balance = poco.balanceOf(account).call().await.expect("balanceOf");
            snapshot.balances.insert(account, balance);
        }
        let members = poco.countMembers(self.workerpool).call().await.expect("countMembers");
        snapshot.members.insert(self.workerpool, members.to());
        snapshot
    }
}

#[test]
fn rust_matching_agrees_with_match_orders() {
    let rt = runtime();
    let world = rt.block_on(World::new());
    // A fixed seed: the same 192 cases every run, so that the coverage checks below cannot fail
    // by the luck of the draw.
    let config = ProptestConfig { cases: 192, ..ProptestConfig::default() };
    let rng = TestRng::deterministic_rng(config.rng_algorithm);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let rules_seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let deals_sent = std::cell::Cell::new(0);
    runner
        .run(&case(), |case| {
            let orders = world.orders(&case);
            let (rust, contract) = rt.block_on(async {
                let snapshot = world.snapshot(&orders).await;
                let rust = match_orders(
                    &orders.app,
                    &orders.dataset,
                    &orders.workerpool,
                    &orders.request,
                    None,
                    &snapshot,
                );
                let requester = if case.poor_requester { &world.poor } else { &world.rich };
                let (_, poco) = world.net.poco(requester);
                let contract = orders.call(&poco).call().await;
                (rust, contract)
            });
            match (&rust, &contract) {
                (Ok(outcome), Ok(dealid)) => {
                    prop_assert_eq!(outcome.deal_id, *dealid);
                    if case.send {
                        let requester = if case.poor_requester { &world.poor } else { &world.rich };
                        let (deal, _) = rt
                            .block_on(world.net.match_orders(requester, &orders))
                            .expect("a match accepted by eth_call is accepted on-chain");
                        let mut expected = outcome.deal.clone();
                        expected.startTime = deal.startTime;
                        prop_assert_eq!(deal, expected);
                        deals_sent.set(deals_sent.get() + 1);
                    }
                }
                (Err(rust_error), Err(contract_error)) => {
                    let revert = Revert::from_contract_error(contract_error)
                        .expect("matchOrders refusals are reverts");
                    prop_assert_eq!(
                        Some(rust_error.code()),
                        revert.matching_rule(),
                        "Rust says {}, the contract says {}",
                        rust_error,
                        revert
                    );
                    rules_seen.borrow_mut().insert(rust_error.code());
                }
                _ => prop_assert!(
                    false,
                    "Rust says {:?}, the contract says {:?}",
                    rust.as_ref().map(|o| o.deal_id),
                    contract.as_ref().map_err(Revert::from_contract_error)
                ),
            }
            Ok(())
        })
        .expect("the Rust matching function agrees with the contract");
    // The generator reaches most rules; a regression in it would hollow the test out.
    let rules_seen = rules_seen.into_inner();
    assert!(rules_seen.len() >= 20, "only rules {rules_seen:x?} were exercised");
    for committee_rule in [0x0b, 0x80] {
        assert!(rules_seen.contains(&committee_rule), "rule {committee_rule:#x} never refused");
    }
    assert!(deals_sent.get() >= 5, "only {} deals were sent for real", deals_sent.get());
}
