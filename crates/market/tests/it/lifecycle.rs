//! The whole life of orders against a real anvil and the real service, on both backends:
//! publish, query, best match, matchOrders on-chain and the book following it (remaining
//! volume, status, WebSocket events, deals), then close, NFT transfer and withdrawal killing
//! the orders they should.

use alloy::primitives::{Address, U256};
use poco_contracts::bindings::{DatasetRegistry, IPocoTypes};
use poco_market::Limits;
use poco_primitives::{AppOrder, DatasetOrder, RequestOrder, Signed, WorkerpoolOrder};
use poco_test_utils::{MatchOrders, OrderSpec, RLC};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{self, Db, World, hash, rlc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_on_sqlite() {
    Box::pin(lifecycle(harness::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn lifecycle_on_postgres() {
    Box::pin(lifecycle(harness::postgres().await)).await;
}

fn signed<T: serde::de::DeserializeOwned>(view: &Value) -> T {
    serde_json::from_value(view["order"].clone()).expect("a signed order")
}

async fn lifecycle(db: Db) {
    let world = World::new().await;
    let net = &world.net;
    let accounts = net.accounts().clone();
    let market = harness::start(net, &db.url, Limits::default()).await;
    market.synced(&world).await;
    let mut events = market.events("").await;
    let mut pool_events =
        market.events(&format!("kind=workerpool&asset={}", world.workerpool)).await;

    // Publish the four orders, and a pricier workerpool order.
    let spec = OrderSpec {
        app: world.app,
        dataset: Some(world.dataset),
        workerpool: world.workerpool,
        app_price: RLC,
        dataset_price: RLC / 2,
        workerpool_price: 2 * RLC,
        volume: 3,
        trust: 1,
        salt: 1,
        ..OrderSpec::default()
    };
    let orders = net.orders(&spec);
    let pricier = net.sign(
        WorkerpoolOrder {
            workerpoolprice: U256::from(3 * RLC),
            salt: U256::from(2).into(),
            ..orders.workerpool.order.clone()
        },
        &accounts.scheduler,
    );
    let request = net.sign(
        RequestOrder { volume: U256::from(2), ..orders.request.order.clone() },
        &accounts.requester,
    );
    let mut hashes = vec![];
    for (kind, order) in [
        ("app", serde_json::to_value(&orders.app).unwrap()),
        ("dataset", serde_json::to_value(&orders.dataset).unwrap()),
        ("workerpool", serde_json::to_value(&orders.workerpool).unwrap()),
        ("workerpool", serde_json::to_value(&pricier).unwrap()),
        ("request", serde_json::to_value(&request).unwrap()),
    ] {
        let (status, answer) = market.post(&format!("/{kind}orders"), &order).await;
        assert_eq!(status, StatusCode::CREATED, "{kind}: {answer}");
        assert_eq!(answer["status"], "open");
        assert_eq!(answer["signature"], "eoa");
        hashes.push(hash(&answer["orderHash"]));
        let (event, _) = events.until(|e| e["event"] == "published").await;
        assert_eq!(event["order"]["orderHash"], answer["orderHash"]);
    }
    let [app_hash, dataset_hash, pool_hash, pricier_hash, request_hash] = hashes[..] else {
        unreachable!()
    };
    assert_eq!(app_hash, orders.app.digest(&net.domain()));

    // Publishing again changes nothing.
    let (status, again) = market.publish("app", &orders.app).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(hash(&again["orderHash"]), app_hash);

    // Queries: filters, sorting by price, cursor pagination, exact integers.
    let (_, page) = market.get(&format!("/apporders?app={}", world.app)).await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["orders"][0]["remaining"], "3");
    assert_eq!(page["orders"][0]["order"]["appprice"], RLC.to_string());
    let (_, page) = market.get("/workerpoolorders?category=0&minTrust=1&limit=1").await;
    assert_eq!(page["count"], 1, "{page}");
    assert_eq!(hash(&page["orders"][0]["orderHash"]), pool_hash, "cheapest first: {page}");
    let cursor = page["nextCursor"].as_str().expect("a next page").to_owned();
    let (_, page) =
        market.get(&format!("/workerpoolorders?category=0&limit=1&cursor={cursor}")).await;
    assert_eq!(hash(&page["orders"][0]["orderHash"]), pricier_hash);
    assert!(page.get("nextCursor").is_none(), "{page}");
    let (_, page) = market.get("/workerpoolorders?category=1").await;
    assert_eq!(page["count"], 0, "another category");
    let (_, page) = market.get("/workerpoolorders?category=0&minTrust=2").await;
    assert_eq!(page["count"], 0, "not enough trust");
    let (_, page) = market.get("/workerpoolorders?category=0&minTag=gpu").await;
    assert_eq!(page["count"], 0, "no pool offers a GPU");
    let (_, page) =
        market.get(&format!("/requestorders?app={}&minVolume=2&workerpool=any", world.app)).await;
    assert_eq!(hash(&page["orders"][0]["orderHash"]), request_hash);
    let (_, page) =
        market.get(&format!("/requestorders?app={}&minVolume=3&workerpool=any", world.app)).await;
    assert_eq!(page["count"], 0);

    // Best match: the cheaper pool, with the price breakdown.
    let (status, best) = market
        .get(&format!(
            "/bestmatch?app={}&dataset={}&requester={}&category=0&trust=1&appmaxprice={}&datasetmaxprice={}&workerpoolmaxprice={}&volume=2",
            world.app,
            world.dataset,
            accounts.requester.address(),
            RLC,
            RLC / 2,
            3 * RLC
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{best}");
    assert_eq!(best["found"], true, "{best}");
    assert_eq!(hash(&best["workerpoolorder"]["orderHash"]), pool_hash);
    assert_eq!(hash(&best["apporder"]["orderHash"]), app_hash);
    assert_eq!(hash(&best["datasetorder"]["orderHash"]), dataset_hash);
    assert_eq!(best["price"]["perTask"], (3 * RLC + RLC / 2).to_string());
    assert_eq!(best["price"]["total"], (7 * RLC).to_string());
    assert_eq!(best["volume"], "2");

    // Nothing for a trust no pool offers: the answer says why.
    let (_, none) = market
        .get(&format!(
            "/bestmatch?app={}&requester={}&category=0&trust=4&appmaxprice={}&workerpoolmaxprice={}",
            world.app,
            accounts.requester.address(),
            RLC,
            3 * RLC
        ))
        .await;
    assert_eq!(none["found"], false, "{none}");
    let why = none["explanation"][0].as_str().unwrap();
    assert!(why.contains("trust >= 4") && why.contains("the closest"), "{why}");

    // Match on-chain what the market proposed; the book follows.
    let matched = MatchOrders {
        app: signed::<Signed<AppOrder>>(&best["apporder"]),
        dataset: signed::<Signed<DatasetOrder>>(&best["datasetorder"]),
        workerpool: signed::<Signed<WorkerpoolOrder>>(&best["workerpoolorder"]),
        request: request.clone(),
    };
    let (deal, _) = net.match_orders(&accounts.requester, &matched).await.expect("matchOrders");
    let deal_id = deal.id();
    market.wait_order("app", app_hash, "remaining", "1").await;
    market.wait_order("request", request_hash, "status", "filled").await;
    assert_eq!(market.order("workerpool", pool_hash).await["remaining"], "1");
    assert_eq!(market.order("workerpool", pricier_hash).await["remaining"], "3");
    let (app_update, before) = events.until(|e| e["type"] == "deal").await;
    assert_eq!(app_update["event"], "deal_created");
    assert_eq!(hash(&app_update["deal"]["dealId"]), deal_id);
    let updated: Vec<(String, String)> = before
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["order"]["orderHash"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (event, order) in [
        ("updated", app_hash),
        ("updated", dataset_hash),
        ("updated", pool_hash),
        ("filled", request_hash),
    ] {
        assert!(
            updated.contains(&(event.to_owned(), order.to_string())),
            "{event} {order}: {updated:?}"
        );
    }
    // The filtered stream saw only the pool's events.
    let (event, _) = pool_events.until(|e| e["event"] == "updated").await;
    assert_eq!(hash(&event["order"]["orderHash"]), pool_hash);

    let (status, indexed) = market.get(&format!("/deals/{deal_id}")).await;
    assert_eq!(status, StatusCode::OK, "{indexed}");
    assert_eq!(indexed["volume"], "2");
    assert_eq!(hash(&indexed["workerpoolHash"]), pool_hash);
    assert_eq!(indexed["deal"]["botSize"], "2");
    let (_, deals) =
        market.get(&format!("/deals?requester={}", accounts.requester.address())).await;
    assert_eq!(deals["count"], 1);
    let (_, deals) =
        market.get(&format!("/deals?app={}&workerpool={}", world.app, Address::ZERO)).await;
    assert_eq!(deals["count"], 0);

    // Close on-chain: the app order is cancelled.
    let (client, poco) = net.poco(&accounts.app_provider);
    client
        .send(poco.manageAppOrder(IPocoTypes::AppOrderOperation {
            order: IPocoTypes::AppOrder::from(&orders.app),
            operation: 1,
            sign: Default::default(),
        }))
        .await
        .expect("close");
    events.order_event("cancelled", app_hash).await;
    let cancelled = market.order("app", app_hash).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["remaining"], "0");

    // Transfer of the dataset: its owner's orders die.
    let (client, _) = net.poco(&accounts.dataset_provider);
    let registry =
        DatasetRegistry::new(net.deployment().dataset_registry, client.provider().clone());
    let new_owner = accounts.workers[0].address();
    client
        .send(registry.transferFrom(
            accounts.dataset_provider.address(),
            new_owner,
            U256::from_be_slice(world.dataset.as_slice()),
        ))
        .await
        .expect("transfer");
    events.order_event("dead", dataset_hash).await;
    let dead = market.order("dataset", dataset_hash).await;
    assert_eq!(dead["status"], "dead");
    assert!(dead["reason"].as_str().unwrap().contains("transferred"), "{dead}");
    // The new owner's orders are accepted, the previous owner's refused.
    let (status, refused) = market
        .publish(
            "dataset",
            &net.sign(
                DatasetOrder { salt: U256::from(9).into(), ..orders.dataset.order.clone() },
                &accounts.dataset_provider,
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["code"], "signer_not_owner");
    let (status, accepted) = market
        .publish(
            "dataset",
            &net.sign(
                DatasetOrder { salt: U256::from(9).into(), ..orders.dataset.order.clone() },
                &accounts.workers[0],
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{accepted}");

    // Withdrawal: the scheduler keeps 1 RLC free, which covers the cheap order's remaining
    // stake (30% of 2 RLC × 1) but not the pricier one's (30% of 3 RLC × 3).
    let (client, poco) = net.poco(&accounts.scheduler);
    let free = poco.balanceOf(accounts.scheduler.address()).call().await.unwrap();
    client.send(poco.withdraw(free - rlc(1.0))).await.expect("withdraw");
    let dead = events.order_event("dead", pricier_hash).await;
    assert!(dead["order"]["reason"].as_str().unwrap().contains("no longer covered"), "{dead}");
    assert_eq!(market.order("workerpool", pool_hash).await["status"], "open");
    // And a new order it cannot cover is refused.
    let uncovered = net.sign(
        WorkerpoolOrder { salt: U256::from(7).into(), ..pricier.order.clone() },
        &accounts.scheduler,
    );
    let (status, refused) = market.publish("workerpool", &uncovered).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["code"], "insufficient_stake");
    // Funded again (by someone else), the same order is accepted at once: the market reads
    // the grown balance instead of what it remembered.
    let (client, poco) = net.poco(&net.accounts().owner);
    let token =
        poco_contracts::bindings::RLC::new(net.deployment().token, client.provider().clone());
    client.send(token.approve(net.deployment().poco, rlc(10.0))).await.expect("approve");
    client.send(poco.depositFor(rlc(10.0), accounts.scheduler.address())).await.expect("deposit");
    let (status, accepted) = market.publish("workerpool", &uncovered).await;
    assert_eq!(status, StatusCode::CREATED, "{accepted}");

    // Metrics show the book and the follower.
    let response = reqwest::get(format!("{}/metrics", market.base)).await.unwrap();
    let text = response.text().await.unwrap();
    assert!(text.contains("poco_market_open_orders{kind=\"workerpool\"} 2"), "{text}");
    assert!(text.contains("poco_market_follower_checkpoint"), "{text}");
    assert!(
        text.contains(
            "poco_market_http_requests_total{method=\"POST\",route=\"/apporders\",status=\"201\"} 1"
        ),
        "{text}"
    );

    market.stop().await;
    db.cleanup().await;
}
