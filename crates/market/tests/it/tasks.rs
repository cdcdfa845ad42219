//! The task index (`GET /tasks/{taskId}`): a task's deal and index, written with the deal for
//! its first `TASKS_INDEXED_PER_DEAL` tasks, deleted with the deal; a task's events
//! (`/tasks/{taskId}/events`) and an account's history (`/accounts/{address}/events`); on both
//! backends, against a real anvil and the real service.

use alloy::primitives::{B256, U256};
use poco_api::market::{Error as ApiError, MarketClient};
use poco_market::{Limits, store::TASKS_INDEXED_PER_DEAL};
use poco_primitives::Deal;
use poco_test_utils::OrderSpec;
use reqwest::StatusCode;

use crate::harness::{self, Db, Service, World, hash};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_are_indexed_with_their_deal_on_sqlite() {
    Box::pin(tasks_are_indexed(harness::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn tasks_are_indexed_with_their_deal_on_postgres() {
    Box::pin(tasks_are_indexed(harness::postgres().await)).await;
}

/// Matches a deal of `volume` tasks at no price, and waits until the market indexed it.
async fn indexed_deal(world: &World, market: &Service, volume: u64, salt: u64) -> Deal {
    let spec = OrderSpec {
        app: world.app,
        workerpool: world.workerpool,
        app_price: 0,
        workerpool_price: 0,
        volume,
        salt,
        ..OrderSpec::default()
    };
    let orders = world.net.orders(&spec);
    let (deal, _) =
        world.net.match_orders(&world.net.accounts().requester, &orders).await.expect("a match");
    let path = format!("/deals/{}", deal.id());
    market
        .wait_for("the deal to be indexed", || async { market.get(&path).await.0.is_success() })
        .await;
    deal
}

async fn tasks_are_indexed(db: Db) {
    let world = World::new().await;
    let market = harness::start(&world.net, &db.url, Limits::default()).await;
    let client = MarketClient::new(&market.base);

    // A small deal: each of its tasks names the deal and its index.
    let small = indexed_deal(&world, &market, 3, 1).await;
    let indexed = client.deal(small.id()).await.expect("the deal");
    for (index, task_id) in small.tasks() {
        let task = client.task(task_id).await.expect("an indexed task");
        assert_eq!(task.task_id, task_id);
        assert_eq!(task.index, index);
        assert_eq!(task.deal, indexed, "the same view as /deals/{{dealId}}");
        assert_eq!(task.deal.deal.task_id(task.index).unwrap(), task_id);
        let (status, json) = market.get(&format!("/tasks/{task_id}")).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json["index"], index.to_string(), "a decimal string");
        assert_eq!(hash(&json["deal"]["dealId"]), small.id());
        assert_eq!(json["deal"]["block"], indexed.block);
    }
    // The deal's tasks, by index.
    let (status, json) = market.get(&format!("/deals/{}/tasks", small.id())).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let listed: Vec<(B256, String)> = json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (hash(&t["taskId"]), t["index"].as_str().unwrap().to_owned()))
        .collect();
    let expected: Vec<(B256, String)> =
        small.tasks().map(|(index, id)| (id, index.to_string())).collect();
    assert_eq!(listed, expected);
    let (status, _) = market.get(&format!("/deals/{}/tasks", B256::repeat_byte(9))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The deals of the requester, through the typed client.
    let requester = world.net.accounts().requester.address();
    let page = client.deals(&[("requester", requester.to_string())]).await.expect("deals");
    assert_eq!(page.count, 1);
    assert_eq!(page.deals[0].deal_id, small.id());

    // A deal larger than the cap: its first tasks are indexed, the rest are not (404, as an
    // unknown task: clients look for them on the chain).
    let volume = TASKS_INDEXED_PER_DEAL + 1;
    let large = indexed_deal(&world, &market, volume, 2).await;
    let first = large.botFirst;
    let last_indexed = first + U256::from(TASKS_INDEXED_PER_DEAL - 1);
    for index in [first, last_indexed] {
        let task = client.task(large.task_id(index).unwrap()).await.expect("indexed");
        assert_eq!((task.deal.deal_id, task.index), (large.id(), index));
    }
    let beyond = large.task_id(first + U256::from(TASKS_INDEXED_PER_DEAL)).unwrap();
    match client.task(beyond).await {
        Err(ApiError::Refused { status: 404, code, message }) => {
            assert_eq!(code, "not_found");
            assert!(message.contains(&TASKS_INDEXED_PER_DEAL.to_string()), "{message}");
        }
        other => panic!("a task past the cap is not indexed: {other:?}"),
    }
    // A task id of no deal at all.
    let unknown = client.task(B256::repeat_byte(7)).await;
    assert!(matches!(unknown, Err(ApiError::Refused { status: 404, .. })), "{unknown:?}");

    // Deleting a deal (as a repair of a reorganisation does) deletes its tasks with it.
    delete_deal(&db.url, small.id()).await;
    for (_, task_id) in small.tasks() {
        let (status, json) = market.get(&format!("/tasks/{task_id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{json}");
    }
    let (status, _) = market.get(&format!("/tasks/{}", large.task_id(first).unwrap())).await;
    assert_eq!(status, StatusCode::OK, "the other deal's tasks stay");

    market.stop().await;
    db.cleanup().await;
}

/// Deletes a deal's row behind the market's back, through a connection of its own.
async fn delete_deal(url: &str, deal_id: B256) {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("the market's SQLite file");
        let deleted = sqlx::query("DELETE FROM deals WHERE deal_id = ?")
            .bind(deal_id.as_slice().to_vec())
            .execute(&pool)
            .await
            .expect("a delete");
        assert_eq!(deleted.rows_affected(), 1);
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("the market's PostgreSQL database");
        let deleted = sqlx::query("DELETE FROM deals WHERE deal_id = $1")
            .bind(deal_id.as_slice().to_vec())
            .execute(&pool)
            .await
            .expect("a delete");
        assert_eq!(deleted.rows_affected(), 1);
        pool.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_lifecycles_and_account_histories_are_indexed_and_undone_by_reorganisations_on_sqlite()
{
    Box::pin(task_lifecycle(harness::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn task_lifecycles_and_account_histories_are_indexed_and_undone_by_reorganisations_on_postgres()
 {
    Box::pin(task_lifecycle(harness::postgres().await)).await;
}

/// A trust-1 task completed on-chain: the market indexes its events in chain order (the
/// contribution with its result hash, the finalization with its result location) and the
/// histories of the accounts they name, newest first, by pages; a reorganisation that replaces
/// those blocks removes them.
async fn task_lifecycle(db: Db) {
    let world = World::new().await;
    let market = harness::start(&world.net, &db.url, Limits::default()).await;
    let client = MarketClient::new(&market.base);
    let deal = indexed_deal(&world, &market, 1, 11).await;
    let index = deal.botFirst;
    let task_id = deal.task_id(index).unwrap();
    let events = client.task_events(task_id).await.expect("the task's events");
    assert_eq!(events.task_id, task_id);
    assert!(events.events.is_empty(), "nothing happened to the task yet: {events:?}");

    let worker = &world.net.accounts().workers[0];
    let digest = B256::repeat_byte(0x42);
    let receipt = world
        .net
        .contribute_and_finalize(&deal, index, worker, digest, "https://results.example/t")
        .await
        .expect("the task completes");
    let fork_point = receipt.block_number.expect("a mined receipt");
    market
        .wait_for("the task's events indexed", || async {
            client.task_events(task_id).await.is_ok_and(|e| !e.events.is_empty())
        })
        .await;
    let events = client.task_events(task_id).await.unwrap().events;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    // `contributeAndFinalize` of a trust-1 task: one contribution, final at once.
    assert_eq!(kinds, ["contribute", "finalize"]);
    let order: Vec<(u64, u64)> = events.iter().map(|e| (e.block, e.log_index)).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "chain order: {order:?}");
    let contribution = &events[0];
    assert_eq!(contribution.account, Some(worker.address()));
    assert_eq!(contribution.transaction, receipt.transaction_hash);
    let result_hash = poco_primitives::result::result_hash(task_id, digest);
    assert_eq!(contribution.value, Some(result_hash.to_string()), "the result hash");
    let finalize = &events[1];
    assert_eq!(finalize.results.as_deref(), Some("https://results.example/t"));
    assert_eq!(finalize.account, None);
    // The raw JSON: names and decimal strings as the OpenAPI document says.
    let (status, json) = market.get(&format!("/tasks/{task_id}/events")).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["events"].as_array().unwrap().len(), events.len());
    let (status, json) = market.get("/tasks/0x12/events").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");

    // The worker's history names the task; the requester's holds its deposits, page by page.
    let history = client.account_events(worker.address(), &[]).await.expect("a history");
    let contributed = history.events.iter().find(|e| e.kind == "contribute").expect("{history:?}");
    assert_eq!(contributed.task_id, Some(task_id));
    let requester = world.net.accounts().requester.address();
    let all = client.account_events(requester, &[("limit", "1000".into())]).await.unwrap();
    assert!(all.events.iter().any(|e| e.kind == "deposit" && e.value.is_some()), "{all:?}");
    let newest_first: Vec<(u64, u64)> = all.events.iter().map(|e| (e.block, e.log_index)).collect();
    assert!(newest_first.windows(2).all(|w| w[0] > w[1]), "{newest_first:?}");
    let mut paged = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..=all.events.len() {
        let mut query = vec![("limit", "1".to_owned())];
        query.extend(before.clone().map(|b| ("before", b)));
        let page = client.account_events(requester, &query).await.unwrap();
        paged.extend(page.events);
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, all.events, "pages one event at a time give the same history");
    for bad in [
        "/accounts/0x12/events",
        "/accounts/0x0000000000000000000000000000000000000001/events?before=12",
        "/accounts/0x0000000000000000000000000000000000000001/events?limit=0",
        "/accounts/0x0000000000000000000000000000000000000001/events?from=1",
    ] {
        let (status, json) = market.get(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {json}");
    }

    // The pool's workers: the contributor, its contribution not yet proved either way (a
    // trust-1 task pays without a verdict).
    let (status, pool) = market.get(&format!("/workerpools/{}/workers", world.workerpool)).await;
    assert_eq!(status, StatusCode::OK, "{pool}");
    assert_eq!(pool["workers"].as_array().unwrap().len(), 1, "{pool}");
    assert_eq!(hash_address(&pool["workers"][0]["worker"]), worker.address());
    assert_eq!(pool["workers"][0]["contributions"], 1);
    assert_eq!(
        (pool["workers"][0]["accurate"].as_u64(), pool["workers"][0]["faulty"].as_u64()),
        (Some(0), Some(0))
    );
    let (status, _) = market.get("/workerpools/0x12/workers").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(pool["tasks"], serde_json::json!({"completed": 1, "failed": 0}), "{pool}");

    // Its members: one joins and stays, another joins and leaves, each with its bond.
    let stays = &world.net.accounts().workers[1];
    let leaves = &world.net.accounts().requester;
    for member in [stays, leaves] {
        let (chain, poco) = world.net.poco(member);
        chain.send(poco.joinWorkerpool(world.workerpool)).await.expect("joinWorkerpool");
    }
    let (chain, poco) = world.net.poco(leaves);
    chain.send(poco.leaveWorkerpool(world.workerpool)).await.expect("leaveWorkerpool");
    let path = format!("/workerpools/{}/workers", world.workerpool);
    market
        .wait_for("the memberships indexed", || async {
            let (_, pool) = market.get(&path).await;
            pool["members"].as_array().is_some_and(|m| m.len() == 2 && m[1]["status"] == "left")
        })
        .await;
    let (_, pool) = market.get(&path).await;
    let bond = poco_primitives::committee::MEMBER_BOND.to_string();
    let members = pool["members"].as_array().unwrap();
    assert_eq!(hash_address(&members[0]["worker"]), stays.address());
    assert_eq!(
        (members[0]["status"].as_str(), members[0]["bond"].as_str()),
        (Some("active"), Some(bond.as_str()))
    );
    assert_eq!(hash_address(&members[1]["worker"]), leaves.address());
    assert_eq!(members[1]["bond"].as_str(), Some(bond.as_str()), "a leaver's bond stays a while");

    // The chain replaces the blocks from the completion on: the events go with them.
    let depth = world.head().await - fork_point + 1;
    world.net.reorg(depth, vec![]).await;
    world.net.mine(2).await;
    market
        .wait_for("the replaced events removed", || async {
            client.task_events(task_id).await.is_ok_and(|e| e.events.is_empty())
        })
        .await;
    let (status, _) = market.get(&format!("/deals/{}", deal.id())).await;
    assert_eq!(status, StatusCode::OK, "the deal, older than the fork point, stays");
    let history = client.account_events(worker.address(), &[]).await.unwrap();
    assert!(history.events.iter().all(|e| e.task_id != Some(task_id)), "{history:?}");
    let (_, pool) = market.get(&format!("/workerpools/{}/workers", world.workerpool)).await;
    assert_eq!(pool["workers"], serde_json::json!([]), "the replaced contribution is gone");
    assert_eq!(pool["members"], serde_json::json!([]), "and the memberships after it");
    assert_eq!(pool["tasks"]["completed"], 0, "and the completion");

    market.stop().await;
    db.cleanup().await;
}

/// An address as the API writes it.
fn hash_address(value: &serde_json::Value) -> alloy::primitives::Address {
    value.as_str().expect("an address").parse().expect("a valid address")
}

/// `GET /accounts/{address}` and `GET /assets/{address}`: funds and registry records as the
/// chain holds them at the market's confirmed head, the price of a match frozen; bad and
/// unknown addresses refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funds_and_assets_are_read_from_the_chain_at_the_confirmed_head() {
    let db = harness::sqlite();
    let world = World::new().await;
    let market = harness::start(&world.net, &db.url, Limits::default()).await;
    let accounts = world.net.accounts().clone();
    let requester = accounts.requester.address();
    let (_, poco) = world.net.poco(&accounts.requester);
    let funds = |json: &serde_json::Value| -> (U256, U256) {
        let amount = |name: &str| json[name].as_str().expect("a decimal string").parse().unwrap();
        (amount("balance"), amount("frozen"))
    };

    let (status, before) = market.get(&format!("/accounts/{requester}")).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    let block = before["block"].as_u64().unwrap();
    let held = poco.viewAccount(requester).block(block.into()).call().await.unwrap();
    assert_eq!(funds(&before), (held.stake, held.locked), "the chain's figures at that block");
    assert!(held.stake > U256::ZERO, "the requester has a deposit");

    // A match of 2 tasks at 5 + 7 nRLC each freezes 24 nRLC of the requester's balance.
    let spec = OrderSpec {
        app: world.app,
        workerpool: world.workerpool,
        app_price: 5,
        workerpool_price: 7,
        volume: 2,
        salt: 21,
        ..OrderSpec::default()
    };
    let orders = world.net.orders(&spec);
    world.net.match_orders(&accounts.requester, &orders).await.expect("a match");
    let path = format!("/accounts/{requester}");
    market
        .wait_for("the match's price frozen", || async {
            let (_, now) = market.get(&path).await;
            now["frozen"].as_str() != before["frozen"].as_str()
        })
        .await;
    let (_, after) = market.get(&path).await;
    let (balance, frozen) = funds(&after);
    assert_eq!(frozen, held.locked + U256::from(24), "{after}");
    assert_eq!(balance, held.stake - U256::from(24), "{after}");

    // The registries: an app, a dataset, a workerpool, each with its owner and record.
    let (status, app) = market.get(&format!("/assets/{}", world.app)).await;
    assert_eq!(status, StatusCode::OK, "{app}");
    assert_eq!(app["kind"], "app");
    assert_eq!(hash_address(&app["owner"]), accounts.app_provider.address());
    assert_eq!(app["name"], "market-app");
    assert_eq!(app["multiaddr"], "https://apps.example/market-app.wasm");
    assert_eq!(app["checksum"], B256::ZERO.to_string());
    let (_, dataset) = market.get(&format!("/assets/{}", world.dataset)).await;
    assert_eq!(dataset["kind"], "dataset", "{dataset}");
    assert_eq!(hash_address(&dataset["owner"]), accounts.dataset_provider.address());
    assert_eq!(dataset["name"], "market-data");
    let (_, pool) = market.get(&format!("/assets/{}", world.workerpool)).await;
    assert_eq!(pool["kind"], "workerpool", "{pool}");
    assert_eq!(hash_address(&pool["owner"]), accounts.scheduler.address());
    assert_eq!(pool["description"], "market pool");
    assert_eq!(pool["workerStakeRatio"], 30, "the default policy");

    // An account is no asset; malformed addresses and unknown parameters are refused.
    let (status, json) = market.get(&format!("/assets/{requester}")).await;
    assert_eq!((status, json["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    for bad in [
        "/accounts/0x12".to_owned(),
        "/assets/0x12".to_owned(),
        format!("/accounts/{requester}?block=1"),
        format!("/assets/{}?kind=app", world.app),
    ] {
        let (status, json) = market.get(&bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {json}");
    }

    market.stop().await;
    db.cleanup().await;
}
