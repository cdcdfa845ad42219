//! Several market instances on one PostgreSQL database: one follows the chain at a time, the
//! other takes over when it dies, and every instance streams every event.

use alloy::primitives::U256;
use poco_contracts::bindings::IPocoTypes;
use poco_market::Limits;
use poco_primitives::{AppOrder, Signed};
use poco_test_utils::OrderSpec;
use reqwest::StatusCode;

use crate::harness::{self, Service, World};

async fn is_leader(market: &Service) -> bool {
    market.get("/health").await.1["leader"] == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn instances_share_one_postgres() {
    let db = harness::postgres().await;
    let world = World::new().await;
    let net = &world.net;
    let accounts = net.accounts().clone();
    let first = harness::start(net, &db.url, Limits::default()).await;
    first.synced(&world).await;
    let second = harness::start(net, &db.url, Limits::default()).await;
    second.synced(&world).await;
    // Exactly one leads.
    first
        .wait_for("a leader", || async { is_leader(&first).await || is_leader(&second).await })
        .await;
    let (leader, follower) =
        if is_leader(&first).await { (first, second) } else { (second, first) };
    assert!(!is_leader(&follower).await, "two leaders");

    // An order published through the leader reaches the other instance's clients, and so do
    // the events the leader applies.
    let mut events = follower.events("").await;
    let spec = OrderSpec {
        app: world.app,
        workerpool: world.workerpool,
        volume: 2,
        ..OrderSpec::default()
    };
    let orders = net.orders(&spec);
    let app_hash = orders.app.digest(&net.domain());
    for (kind, order) in [
        ("app", serde_json::to_value(&orders.app).unwrap()),
        ("workerpool", serde_json::to_value(&orders.workerpool).unwrap()),
        ("request", serde_json::to_value(&orders.request).unwrap()),
    ] {
        let (status, answer) = leader.post(&format!("/{kind}orders"), &order).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    events.order_event("published", app_hash).await;
    let deal = net.match_orders(&accounts.requester, &orders).await.expect("matchOrders").0;
    let (event, _) = events.until(|e| e["type"] == "deal").await;
    assert_eq!(event["deal"]["dealId"], deal.id().to_string());
    assert_eq!(follower.order("app", app_hash).await["status"], "filled");

    // The leader dies; the other instance takes over and keeps the book true.
    leader.kill().await;
    follower.wait_for("the survivor to lead", || is_leader(&follower)).await;
    let other = net.sign(
        AppOrder { salt: U256::from(77).into(), ..orders.app.order.clone() },
        &accounts.app_provider,
    );
    let other_hash = other.digest(&net.domain());
    assert_eq!(follower.publish("app", &other).await.0, StatusCode::CREATED);
    let (client, poco) = net.poco(&accounts.app_provider);
    client
        .send(poco.manageAppOrder(IPocoTypes::AppOrderOperation {
            order: IPocoTypes::AppOrder::from(&Signed::presigned(other.order.clone())),
            operation: 1,
            sign: Default::default(),
        }))
        .await
        .unwrap();
    events.order_event("cancelled", other_hash).await;
    follower.stop().await;
    db.cleanup().await;
}
