//! A market killed while deals are being matched, and restarted on the same database, loses
//! no update and applies none twice: the book and the deals end up equal to the chain.

use std::time::Duration;

use alloy::{primitives::U256, providers::Provider, rpc::types::Filter, sol_types::SolEvent};
use poco_contracts::bindings::IPoco;
use poco_market::Limits;
use poco_primitives::{RequestOrder, Signed};
use poco_test_utils::{MatchOrders, OrderSpec, RLC};
use reqwest::StatusCode;

use crate::harness::{self, Db, World, hash};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_stream_and_restarted_loses_nothing_on_sqlite() {
    Box::pin(restart(harness::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn killed_mid_stream_and_restarted_loses_nothing_on_postgres() {
    Box::pin(restart(harness::postgres().await)).await;
}

const DEALS: u64 = 12;

async fn restart(db: Db) {
    let world = World::new().await;
    let net = &world.net;
    let accounts = net.accounts().clone();
    let spec = OrderSpec {
        app: world.app,
        workerpool: world.workerpool,
        app_price: RLC,
        workerpool_price: RLC,
        volume: 30,
        salt: 7,
        ..OrderSpec::default()
    };
    let orders = net.orders(&spec);
    let requests: Vec<Signed<RequestOrder>> = (0..DEALS)
        .map(|i| {
            net.sign(
                RequestOrder {
                    volume: U256::from(1),
                    salt: U256::from(1_000 + i).into(),
                    ..orders.request.order.clone()
                },
                &accounts.requester,
            )
        })
        .collect();

    let market = harness::start(net, &db.url, Limits::default()).await;
    market.synced(&world).await;
    assert_eq!(market.publish("app", &orders.app).await.0, StatusCode::CREATED);
    assert_eq!(market.publish("workerpool", &orders.workerpool).await.0, StatusCode::CREATED);
    for request in &requests {
        assert_eq!(market.publish("request", request).await.0, StatusCode::CREATED);
    }

    // Deals are matched one after the other while the market runs, then is killed.
    let matcher = {
        let net_orders = orders.clone();
        let requests = requests.clone();
        let requester = accounts.requester.clone();
        let client = net.client(&requester);
        let poco = client.poco(net.deployment().poco);
        tokio::spawn(async move {
            for request in requests {
                let set = MatchOrders { request, ..net_orders.clone() };
                client.send(set.call(&poco)).await.expect("matchOrders");
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };
    market
        .wait_for("a few deals", || async {
            let (_, deals) = market.get("/deals").await;
            deals["count"].as_u64().unwrap_or_default() >= 3
        })
        .await;
    market.kill().await;
    matcher.await.expect("every match succeeds");

    // Restarted on the same database, the market catches up.
    let market = harness::start(net, &db.url, Limits::default()).await;
    market.synced(&world).await;
    let poco = net.owner().poco(net.deployment().poco);
    let check = |kind: &'static str, hash: alloy::primitives::B256, volume: u64| {
        let market = &market;
        let poco = &poco;
        async move {
            let consumed = poco.viewConsumed(hash).call().await.unwrap();
            let order = market.order(kind, hash).await;
            let remaining = U256::from(volume) - consumed;
            assert_eq!(order["remaining"], remaining.to_string(), "{kind} {hash}: {order}");
            let status = if remaining.is_zero() { "filled" } else { "open" };
            assert_eq!(order["status"], status, "{kind} {hash}: {order}");
        }
    };
    let domain = net.domain();
    check("app", orders.app.digest(&domain), 30).await;
    check("workerpool", orders.workerpool.digest(&domain), 30).await;
    for request in &requests {
        check("request", request.digest(&domain), 1).await;
    }
    assert_eq!(
        market.order("app", orders.app.digest(&domain)).await["remaining"],
        (30 - DEALS).to_string()
    );

    // Every deal once, as on-chain.
    let filter = Filter::new()
        .address(net.deployment().poco)
        .event_signature(IPoco::DealCreated::SIGNATURE_HASH)
        .from_block(0);
    let logs = net.owner().provider().get_logs(&filter).await.unwrap();
    assert_eq!(logs.len() as u64, DEALS);
    let mut listed = vec![];
    let mut cursor = String::new();
    loop {
        let (_, page) = market.get(&format!("/deals?limit=5{cursor}")).await;
        for deal in page["deals"].as_array().unwrap() {
            listed.push(hash(&deal["dealId"]));
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let mut unique = listed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), listed.len(), "no deal twice");
    for log in &logs {
        let deal = IPoco::DealCreated::decode_log(&log.inner).unwrap();
        assert!(listed.contains(&deal.dealid), "deal {} is indexed", deal.dealid);
    }
    assert_eq!(listed.len() as u64, DEALS);

    // A graceful restart changes nothing either.
    market.stop().await;
    let market = harness::start(net, &db.url, Limits::default()).await;
    market.synced(&world).await;
    let (_, deals) = market.get("/deals?limit=100").await;
    assert_eq!(deals["count"].as_u64(), Some(DEALS));
    assert_eq!(
        market.order("app", orders.app.digest(&domain)).await["remaining"],
        (30 - DEALS).to_string()
    );
    market.stop().await;
    db.cleanup().await;
}
