//! Chain reorganisations against a real anvil (`anvil_reorg`) and the real service, on both
//! backends. After each, the market's book, mirror and deals are compared with those of a
//! fresh market that followed the same chain from the start and was given the same orders
//! ([`Store::dump`]).
//!
//! - A match, a closing and a transfer undone by a reorganisation deeper than the confirmation
//!   depth: the market saw them and must repair. The requester whose match was undone gets its
//!   order back, open with its volume (a market that kept it filled would lose it from the
//!   book while the chain can still match it); the app order closed in a replaced block is
//!   open again; the dataset order its transfer killed lives again; the phantom deal is gone,
//!   with a `deal_removed` event.
//! - The same within the confirmation depth: the market never saw it, and has nothing to undo.
//! - A match the new chain holds in another block: the deal is indexed where it is now.
//!
//! And a deposit the market cannot see yet, being above its depth: an order it will cover is
//! answered `chain_sync_pending` (the client retries), not refused as uncovered.

use alloy::primitives::{B256, U256};
use poco_contracts::bindings::RLC as Token;
use poco_contracts::bindings::{DatasetRegistry, IPocoTypes};
use poco_market::{
    Limits,
    model::Status,
    store::{self, ChainDump},
};
use poco_primitives::{AppOrder, PocoDomain, RequestOrder, Signed};
use poco_test_utils::{MatchOrders, OrderSpec, RLC};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{self, Db, Events, Service, World, hash};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_match_undone_by_a_deep_reorganisation_is_repaired_on_sqlite() {
    Box::pin(deep(harness::sqlite(), harness::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_match_undone_by_a_deep_reorganisation_is_repaired_on_postgres() {
    Box::pin(deep(harness::postgres().await, harness::postgres().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_match_undone_within_the_confirmation_depth_is_never_seen_on_sqlite() {
    Box::pin(shallow(harness::sqlite(), harness::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_match_undone_within_the_confirmation_depth_is_never_seen_on_postgres() {
    Box::pin(shallow(harness::postgres().await, harness::postgres().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_match_the_new_chain_holds_elsewhere_is_indexed_there_on_sqlite() {
    Box::pin(moved(harness::sqlite(), harness::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_match_the_new_chain_holds_elsewhere_is_indexed_there_on_postgres() {
    Box::pin(moved(harness::postgres().await, harness::postgres().await)).await;
}

/// The orders of the tests: an app, a dataset and a workerpool order of volume 3, a second
/// app order of volume 2, and two requests of one task each, in publication order.
struct Book {
    orders: MatchOrders,
    app2: Signed<AppOrder>,
    second: Signed<RequestOrder>,
}

impl Book {
    fn new(world: &World) -> Self {
        let net = &world.net;
        let spec = OrderSpec {
            app: world.app,
            dataset: Some(world.dataset),
            workerpool: world.workerpool,
            app_price: RLC,
            dataset_price: RLC / 2,
            workerpool_price: 2 * RLC,
            volume: 3,
            salt: 11,
            ..OrderSpec::default()
        };
        let mut orders = net.orders(&spec);
        let accounts = net.accounts();
        let request = RequestOrder { volume: U256::from(1), ..orders.request.order.clone() };
        orders.request = net.sign(request.clone(), &accounts.requester);
        let second = RequestOrder { salt: B256::repeat_byte(0x22), ..request };
        let second = net.sign(second, &accounts.requester);
        let app2 =
            AppOrder { volume: U256::from(2), salt: B256::repeat_byte(0x33), ..orders.app.order };
        let app2 = net.sign(app2, &accounts.app_provider);
        Self { orders, app2, second }
    }

    /// Every order, with its kind and hash, in publication order.
    fn all(&self, domain: &PocoDomain) -> Vec<(&'static str, Value, B256)> {
        vec![
            ("app", to_value(&self.orders.app), self.orders.app.digest(domain)),
            ("app", to_value(&self.app2), self.app2.digest(domain)),
            ("dataset", to_value(&self.orders.dataset), self.orders.dataset.digest(domain)),
            (
                "workerpool",
                to_value(&self.orders.workerpool),
                self.orders.workerpool.digest(domain),
            ),
            ("request", to_value(&self.orders.request), self.orders.request.digest(domain)),
            ("request", to_value(&self.second), self.second.digest(domain)),
        ]
    }

    /// The first request's match.
    fn first_match(&self) -> MatchOrders {
        self.orders.clone()
    }

    /// The second request's match.
    fn second_match(&self) -> MatchOrders {
        MatchOrders { request: self.second.clone(), ..self.orders.clone() }
    }
}

fn to_value(order: &impl serde::Serialize) -> Value {
    serde_json::to_value(order).expect("JSON")
}

/// Publishes every order of `book`; each is accepted.
async fn publish(market: &Service, book: &Book, domain: &PocoDomain) {
    for (kind, order, _) in book.all(domain) {
        let (status, body) = market.post(&format!("/{kind}orders"), &order).await;
        assert_eq!(status, StatusCode::CREATED, "{kind} order: {body}");
    }
}

/// Starts the market on `db`, following `confirmations` blocks deep, once the world's assets
/// are that deep.
async fn start(world: &World, db: &Db, confirmations: u64) -> Service {
    world.net.mine(confirmations).await;
    let mut config = harness::config(&world.net, &db.url, Limits::default());
    config.confirmations = confirmations;
    harness::start_with(config).await
}

/// Waits until the market applied every block `confirmations` deep.
async fn synced(market: &Service, world: &World, confirmations: u64) {
    let confirmed = world.head().await.saturating_sub(confirmations);
    market
        .wait_for(&format!("the follower to pass block {confirmed}"), || async {
            let (_, health) = market.get("/health").await;
            health["checkpoint"].as_u64().is_some_and(|checkpoint| checkpoint > confirmed)
        })
        .await;
}

/// A counter of the market's `/metrics`.
async fn metric(market: &Service, name: &str) -> u64 {
    let text =
        reqwest::get(format!("{}/metrics", market.base)).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in the metrics"))
}

/// The dump of the store at `url`, opened beside the service.
async fn dump(url: &str) -> ChainDump {
    let store = store::open(url, 1).await.expect("the store opens");
    store.dump().await.expect("a dump")
}

/// Starts a fresh market on `fresh`, lets it follow the chain from the deployment, gives it the
/// orders of `book` in the same order, and checks that the store of the market under test
/// (`db`) holds what it holds: the same mirror, deals and balances, the same open orders with
/// the same volumes, and, for every order the fresh market refused, a closed status.
async fn same_as_fresh(world: &World, db: &Db, fresh: Db, book: &Book, confirmations: u64) {
    let market = start(world, &fresh, confirmations).await;
    synced(&market, world, confirmations).await;
    let mut refused = Vec::new();
    for (kind, order, hash) in book.all(&world.net.domain()) {
        let (status, body) = market.post(&format!("/{kind}orders"), &order).await;
        if status != StatusCode::CREATED {
            refused.push((hash, body["code"].as_str().unwrap_or_default().to_owned()));
        }
    }
    let repaired = dump(&db.url).await;
    let expected = dump(&fresh.url).await;
    assert_eq!(repaired.assets, expected.assets, "the registry mirror");
    assert_eq!(repaired.consumed, expected.consumed, "consumed volumes");
    assert_eq!(repaired.categories, expected.categories, "categories");
    assert_eq!(repaired.deals, expected.deals, "deals");
    assert_eq!(repaired.balances, expected.balances, "cached balances");
    for order in &expected.orders {
        assert!(repaired.orders.contains(order), "{order:?} as a fresh market has it");
    }
    for (hash, status, remaining) in &repaired.orders {
        if expected.orders.iter().any(|(h, ..)| h == hash) {
            continue;
        }
        let refusal = refused.iter().find(|(h, _)| h == hash).map(|(_, code)| code.as_str());
        let consumed = matches!(status, Status::Filled | Status::Cancelled);
        assert!(
            consumed && remaining.is_zero() && refusal == Some("no_volume_left"),
            "{hash} is {status:?} with {remaining} left; a fresh market answered {refusal:?}"
        );
    }
    market.stop().await;
    fresh.cleanup().await;
}

/// Waits for the deal event `event` of deal `deal_id`.
async fn deal_event(events: &mut Events, event: &str, deal_id: B256) -> Value {
    let id = deal_id.to_string();
    events
        .until(|e| e["type"] == "deal" && e["event"] == event && e["deal"]["dealId"] == id)
        .await
        .0
}

async fn deep(db: Db, fresh: Db) {
    let world = World::new().await;
    let net = &world.net;
    let accounts = net.accounts().clone();
    let book = Book::new(&world);
    let domain = net.domain();
    let market = start(&world, &db, 1).await;
    synced(&market, &world, 1).await;
    publish(&market, &book, &domain).await;
    let mut events = market.events("").await;
    let request_hash = book.orders.request.digest(&domain);
    let app_hash = book.orders.app.digest(&domain);
    let app2_hash = book.app2.digest(&domain);
    let dataset_hash = book.orders.dataset.digest(&domain);
    let fork_point = world.head().await + 1;

    // In blocks about to be replaced: the first request is matched, the second app order
    // closed, the dataset transferred.
    let (deal, _) = net.match_orders(&accounts.requester, &book.first_match()).await.unwrap();
    let (client, poco) = net.poco(&accounts.app_provider);
    let close = poco.manageAppOrder(IPocoTypes::AppOrderOperation {
        order: IPocoTypes::AppOrder::from(&book.app2),
        operation: 1,
        sign: Default::default(),
    });
    client.send(close).await.expect("close");
    let (client, _) = net.poco(&accounts.dataset_provider);
    let registry =
        DatasetRegistry::new(net.deployment().dataset_registry, client.provider().clone());
    let transfer = registry.transferFrom(
        accounts.dataset_provider.address(),
        accounts.workers[0].address(),
        U256::from_be_slice(world.dataset.as_slice()),
    );
    client.send(transfer).await.expect("transfer");
    net.mine(1).await;
    market.wait_order("dataset", dataset_hash, "status", "dead").await;
    assert_eq!(market.order("request", request_hash).await["status"], "filled");
    assert_eq!(market.order("app", app2_hash).await["status"], "cancelled");
    assert_eq!(market.order("app", app_hash).await["remaining"], "2");
    deal_event(&mut events, "deal_created", deal.id()).await;
    assert_eq!(metric(&market, "poco_market_follower_reorgs_total").await, 0);

    // The chain replaces those blocks with empty ones, and grows.
    let depth = world.head().await - fork_point + 1;
    net.reorg(depth, vec![]).await;
    net.mine(2).await;
    market
        .wait_for("the reorganisation repaired", || async {
            metric(&market, "poco_market_follower_reorgs_total").await == 1
        })
        .await;
    // At the first replaced block, or before it when a batch applied it with older blocks.
    let reported = metric(&market, "poco_market_follower_last_fork_point").await;
    assert!(reported <= fork_point && reported > 0, "fork point {reported}");
    deal_event(&mut events, "deal_removed", deal.id()).await;
    let (status, _) = market.get(&format!("/deals/{}", deal.id())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no phantom deal");
    // The requester's order is not lost: open again, with its volume.
    let request = market.order("request", request_hash).await;
    assert_eq!(
        (request["status"].as_str(), request["remaining"].as_str()),
        (Some("open"), Some("1"))
    );
    assert!(
        market.book().await.iter().any(|order| order["orderHash"] == request_hash.to_string()),
        "the request is in the book again"
    );
    let app = market.order("app", app_hash).await;
    assert_eq!(app["remaining"], "3");
    let app2 = market.order("app", app2_hash).await;
    assert_eq!((app2["status"].as_str(), app2["remaining"].as_str()), (Some("open"), Some("2")));
    let dataset = market.order("dataset", dataset_hash).await;
    assert_eq!(dataset["status"], "open", "its owner owns the dataset again: {dataset}");

    // The new chain matches the second request instead.
    let (second, _) = net.match_orders(&accounts.requester, &book.second_match()).await.unwrap();
    net.mine(1).await;
    synced(&market, &world, 1).await;
    deal_event(&mut events, "deal_created", second.id()).await;
    assert_eq!(market.order("request", request_hash).await["status"], "open");
    assert_eq!(market.order("request", book.second.digest(&domain)).await["status"], "filled");
    same_as_fresh(&world, &db, fresh, &book, 1).await;
    market.stop().await;
    db.cleanup().await;
}

async fn shallow(db: Db, fresh: Db) {
    let world = World::new().await;
    let net = &world.net;
    let accounts = net.accounts().clone();
    let book = Book::new(&world);
    let domain = net.domain();
    let market = start(&world, &db, 3).await;
    synced(&market, &world, 3).await;
    publish(&market, &book, &domain).await;
    let mut events = market.events("kind=deal").await;
    let request_hash = book.orders.request.digest(&domain);

    let (deal, _) = net.match_orders(&accounts.requester, &book.first_match()).await.unwrap();
    net.mine(1).await;
    synced(&market, &world, 3).await;
    assert_eq!(market.order("request", request_hash).await["status"], "open", "not 3 deep yet");

    // The last two blocks, the match's among them, are replaced.
    net.reorg(2, vec![]).await;
    net.mine(5).await;
    synced(&market, &world, 3).await;
    assert_eq!(metric(&market, "poco_market_follower_reorgs_total").await, 0, "nothing to undo");
    let request = market.order("request", request_hash).await;
    assert_eq!(
        (request["status"].as_str(), request["remaining"].as_str()),
        (Some("open"), Some("1"))
    );
    let (status, _) = market.get(&format!("/deals/{}", deal.id())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The new chain matches the second request: the first deal event the stream ever shows.
    let (second, _) = net.match_orders(&accounts.requester, &book.second_match()).await.unwrap();
    net.mine(3).await;
    synced(&market, &world, 3).await;
    let first = events.next().await;
    assert_eq!(first["event"], "deal_created");
    assert_eq!(hash(&first["deal"]["dealId"]), second.id(), "the undone deal never showed");
    same_as_fresh(&world, &db, fresh, &book, 3).await;
    market.stop().await;
    db.cleanup().await;
}

async fn moved(db: Db, fresh: Db) {
    let world = World::new().await;
    let net = &world.net;
    let accounts = net.accounts().clone();
    let book = Book::new(&world);
    let domain = net.domain();
    let market = start(&world, &db, 0).await;
    synced(&market, &world, 0).await;
    publish(&market, &book, &domain).await;

    let (deal, receipt) = net.match_orders(&accounts.requester, &book.first_match()).await.unwrap();
    net.mine(1).await;
    synced(&market, &world, 0).await;
    let (_, before) = market.get(&format!("/deals/{}", deal.id())).await;
    let matched_at = receipt.block_number.unwrap();
    assert_eq!(before["block"], matched_at);

    // The new chain holds the same match one block later.
    let raw = net.raw_transaction(receipt.transaction_hash).await;
    net.reorg(2, vec![(raw, 1)]).await;
    net.mine(1).await;
    market
        .wait_for("the deal where the new chain has it", || async {
            let (status, now) = market.get(&format!("/deals/{}", deal.id())).await;
            status == StatusCode::OK && now["block"] == matched_at + 1
        })
        .await;
    assert_eq!(metric(&market, "poco_market_follower_reorgs_total").await, 1);
    let (_, deals) = market.get("/deals").await;
    assert_eq!(deals["count"], 1, "{deals}");
    synced(&market, &world, 0).await;
    same_as_fresh(&world, &db, fresh, &book, 0).await;
    market.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_not_yet_confirmed_is_answered_sync_pending_then_covers_the_order() {
    let world = World::new().await;
    let db = harness::sqlite();
    let market = start(&world, &db, 3).await;
    let net = &world.net;
    let scheduler = &net.accounts().scheduler;
    let (client, poco) = net.poco(scheduler);
    let free = poco.balanceOf(scheduler.address()).call().await.unwrap();
    client.send(poco.withdraw(free)).await.expect("withdraw");
    net.mine(3).await;
    // The categories and the withdrawal applied: a refusal below is the stake's, not a
    // category the follower has not reached yet.
    synced(&market, &world, 3).await;
    let spec = OrderSpec {
        app: world.app,
        workerpool: world.workerpool,
        workerpool_price: 2 * RLC,
        volume: 1,
        ..OrderSpec::default()
    };
    let order = net.orders(&spec).workerpool;
    let (status, refused) = market.publish("workerpool", &order).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["code"], "insufficient_stake", "nothing covers it, anywhere: {refused}");

    // A deposit, in the newest block: the chain covers the order, 3 blocks deep it does not.
    let (owner, owner_poco) = net.poco(&net.accounts().owner);
    let token = Token::new(net.deployment().token, owner.provider().clone());
    owner.send(token.approve(net.deployment().poco, U256::from(RLC))).await.expect("approve");
    let deposit = owner_poco.depositFor(U256::from(RLC), scheduler.address());
    owner.send(deposit).await.expect("deposit");
    let (status, pending) = market.publish("workerpool", &order).await;
    assert_eq!(status, StatusCode::CONFLICT, "{pending}");
    assert_eq!(pending["code"], "chain_sync_pending", "{pending}");
    assert!(pending["error"].as_str().unwrap().contains("not yet 3 blocks deep"), "{pending}");

    net.mine(3).await;
    let (status, accepted) = market.publish("workerpool", &order).await;
    assert_eq!(status, StatusCode::CREATED, "once confirmed: {accepted}");
    market.stop().await;
    db.cleanup().await;
}
