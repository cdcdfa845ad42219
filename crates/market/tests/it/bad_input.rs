//! Refusals that need the chain, against a real anvil and the real service: forged
//! signatures, replayed unpublish authorizations, unregistered assets, previous owners,
//! consumed orders, the open-order cap, on both backends. Each leaves the stored book
//! unchanged. And the signatures that must be accepted: presigned orders and ERC-1271
//! contract owners.

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::SolValue,
};
use poco_api::market::Unpublish;
use poco_contracts::bindings::{AppRegistry, IPocoTypes};
use poco_market::{Limits, model::now_s};
use poco_primitives::{AppOrder, RequestOrder, Signed, WorkerpoolOrder};
use poco_test_utils::{OrderSpec, RLC};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{self, Db, Service, World, hash};

/// Publishes `order` expecting a refusal with `status` and `code`; the book must not change.
async fn refused<T: serde::Serialize>(
    market: &Service,
    kind: &str,
    order: &T,
    status: StatusCode,
    code: &str,
) -> Value {
    let before = market.book().await;
    let (got, answer) = market.publish(kind, order).await;
    assert_eq!(got, status, "{answer}");
    assert_eq!(answer["code"], code, "{answer}");
    assert_eq!(market.book().await, before, "the refused {kind} order changed the book");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_replayed_unregistered_and_stale_orders_are_refused() {
    Box::pin(refusals(harness::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn forged_replayed_unregistered_and_stale_orders_are_refused_on_postgres() {
    Box::pin(refusals(harness::postgres().await)).await;
}

async fn refusals(db: Db) {
    let world = World::new().await;
    let net = &world.net;
    let accounts = net.accounts().clone();
    let limits = Limits { max_open_orders_per_wallet: 3, ..Limits::default() };
    let market = harness::start(net, &db.url, limits).await;
    market.synced(&world).await;
    let spec = OrderSpec {
        app: world.app,
        workerpool: world.workerpool,
        volume: 2,
        ..OrderSpec::default()
    };
    let orders = net.orders(&spec);
    let stranger = PrivateKeySigner::random();
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;

    // Forged: signed by someone else, tampered with, malleable.
    let forged = net.sign(orders.app.order.clone(), &stranger);
    let answer = refused(&market, "app", &forged, unprocessable, "signer_not_owner").await;
    assert!(answer["error"].as_str().unwrap().contains("sign it with the owner's key"), "{answer}");
    let forged = net.sign(orders.request.order.clone(), &stranger);
    refused(&market, "request", &forged, unprocessable, "invalid_signature").await;
    let mut tampered = orders.workerpool.clone();
    tampered.order.workerpoolprice += U256::from(1);
    refused(&market, "workerpool", &tampered, unprocessable, "signer_not_owner").await;
    let mut malleable = orders.app.clone();
    let signature = alloy::primitives::Signature::from_raw(&malleable.sign).unwrap();
    let n = poco_primitives::signature::SECP256K1_HALF_ORDER * U256::from(2) + U256::from(1);
    let flipped =
        alloy::primitives::Signature::new(signature.r(), n - signature.s(), !signature.v());
    malleable.sign = Bytes::from(flipped.as_bytes().to_vec());
    refused(&market, "app", &malleable, unprocessable, "invalid_signature").await;
    let unsigned = Signed::presigned(orders.app.order.clone());
    refused(&market, "app", &unsigned, unprocessable, "invalid_signature").await;

    // Unregistered assets.
    let ghost = net.sign(
        AppOrder { app: Address::repeat_byte(0x66), ..orders.app.order.clone() },
        &accounts.app_provider,
    );
    refused(&market, "app", &ghost, unprocessable, "asset_not_registered").await;
    let ghost_pool = net.sign(
        WorkerpoolOrder { workerpool: world.app, ..orders.workerpool.order.clone() },
        &accounts.app_provider,
    );
    refused(&market, "workerpool", &ghost_pool, unprocessable, "asset_not_registered").await;

    // Values no match accepts.
    let unknown_category = net.sign(
        WorkerpoolOrder { category: U256::from(99), ..orders.workerpool.order.clone() },
        &accounts.scheduler,
    );
    refused(&market, "workerpool", &unknown_category, unprocessable, "invalid_value").await;

    // A request whose requester cannot cover it.
    let greedy = net.sign(
        RequestOrder { volume: U256::from(1_000_000), ..orders.request.order.clone() },
        &accounts.requester,
    );
    refused(&market, "request", &greedy, unprocessable, "insufficient_stake").await;

    // A closed order has no volume left.
    let closed = net.sign(
        AppOrder { salt: B256::repeat_byte(0xc1), ..orders.app.order.clone() },
        &accounts.app_provider,
    );
    let (client, poco) = net.poco(&accounts.app_provider);
    client
        .send(poco.manageAppOrder(IPocoTypes::AppOrderOperation {
            order: IPocoTypes::AppOrder::from(&closed),
            operation: 1,
            sign: Bytes::new(),
        }))
        .await
        .unwrap();
    market.synced(&world).await;
    refused(&market, "app", &closed, StatusCode::CONFLICT, "no_volume_left").await;

    // The open-order cap (3 here).
    for salt in 1..=3u8 {
        let order = net.sign(
            AppOrder { salt: B256::repeat_byte(salt), ..orders.app.order.clone() },
            &accounts.app_provider,
        );
        assert_eq!(market.publish("app", &order).await.0, StatusCode::CREATED);
    }
    let fourth = net.sign(
        AppOrder { salt: B256::repeat_byte(4), ..orders.app.order.clone() },
        &accounts.app_provider,
    );
    refused(&market, "app", &fourth, StatusCode::CONFLICT, "open_order_cap").await;

    // Unpublish: only with the owner's fresh signature, and once.
    let first = net.sign(
        AppOrder { salt: B256::repeat_byte(1), ..orders.app.order.clone() },
        &accounts.app_provider,
    );
    let first_hash = first.digest(&net.domain());
    let uri = format!("/apporders/{first_hash}/unpublish");
    let expiry = now_s() + 600;
    let by_stranger =
        Unpublish::sign(&stranger, &net.domain(), first_hash, expiry, B256::repeat_byte(1))
            .unwrap();
    let (status, answer) = market.post(&uri, &serde_json::to_value(&by_stranger).unwrap()).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_order_owner")),
        "{answer}"
    );
    let other_order = Unpublish::sign(
        &accounts.app_provider,
        &net.domain(),
        B256::repeat_byte(9),
        expiry,
        B256::repeat_byte(1),
    )
    .unwrap();
    let (status, answer) = market.post(&uri, &serde_json::to_value(&other_order).unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an authorization for another order: {answer}");
    let authorization = Unpublish::sign(
        &accounts.app_provider,
        &net.domain(),
        first_hash,
        expiry,
        B256::repeat_byte(1),
    )
    .unwrap();
    let body = serde_json::to_value(&authorization).unwrap();
    let mut events = market.events("kind=app").await;
    let (status, answer) = market.post(&uri, &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "unpublished");
    events.order_event("unpublished", first_hash).await;
    assert_eq!(market.order("app", first_hash).await["status"], "unpublished");
    // Published again, then the same authorization replayed: refused, the order stays.
    let (status, answer) = market.publish("app", &first).await;
    assert_eq!(status, StatusCode::CREATED, "re-publication reopens: {answer}");
    let before = market.book().await;
    let (status, answer) = market.post(&uri, &body).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::CONFLICT, Some("authorization_replayed")),
        "{answer}"
    );
    assert_eq!(market.book().await, before);
    assert_eq!(market.order("app", first_hash).await["status"], "open");

    // The previous owner of a transferred app can no longer publish for it.
    let (client, _) = net.poco(&accounts.app_provider);
    let registry = AppRegistry::new(net.deployment().app_registry, client.provider().clone());
    client
        .send(registry.transferFrom(
            accounts.app_provider.address(),
            accounts.workers[1].address(),
            U256::from_be_slice(world.app.as_slice()),
        ))
        .await
        .unwrap();
    market.synced(&world).await;
    let stale = net.sign(
        AppOrder { salt: B256::repeat_byte(0x51), ..orders.app.order.clone() },
        &accounts.app_provider,
    );
    let answer = refused(&market, "app", &stale, unprocessable, "signer_not_owner").await;
    assert!(
        answer["error"].as_str().unwrap().contains(&accounts.workers[1].address().to_string()),
        "{answer}"
    );
    // Its orders died with the transfer.
    assert_eq!(market.order("app", first_hash).await["status"], "dead");

    market.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_orders_and_contract_owners_are_accepted() {
    let world = World::new().await;
    let net = &world.net;
    let accounts = net.accounts().clone();
    let db = harness::sqlite();
    let market = harness::start(net, &db.url, Limits::default()).await;

    // A presigned order: empty `sign`, presigned on-chain by the owner.
    let order = AppOrder {
        app: world.app,
        appprice: U256::from(RLC),
        volume: U256::from(1),
        ..Default::default()
    };
    let (client, poco) = net.poco(&accounts.app_provider);
    client
        .send(poco.manageAppOrder(IPocoTypes::AppOrderOperation {
            order: IPocoTypes::AppOrder::from(&Signed::presigned(order.clone())),
            operation: 0,
            sign: Bytes::new(),
        }))
        .await
        .unwrap();
    market.synced(&world).await;
    let (status, answer) = market.publish("app", &Signed::presigned(order)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["signature"], "presigned");

    // An app owned by an ERC-1271 wallet, its orders signed by the wallet's key.
    let key = PrivateKeySigner::random();
    let code = hex::decode(include_str!("../fixtures/TestWallet.bin").trim()).unwrap();
    let mut creation = code;
    creation.extend_from_slice(&key.address().abi_encode());
    let deployer = net.client(&accounts.workers[0]);
    let receipt = deployer
        .provider()
        .send_transaction(
            TransactionRequest::default().with_deploy_code(creation).with_gas_limit(1_000_000),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let wallet = receipt.contract_address.expect("the wallet is deployed");
    let registry = AppRegistry::new(net.deployment().app_registry, deployer.provider().clone());
    let call = registry.createApp(
        wallet,
        "wallet-app".into(),
        "WASM".into(),
        Bytes::new(),
        B256::ZERO,
        Bytes::new(),
    );
    let app = call.call().await.unwrap();
    deployer.send(call).await.unwrap();
    market.synced(&world).await;
    let order = net.sign(
        AppOrder { app, appprice: U256::from(RLC), volume: U256::from(1), ..Default::default() },
        &key,
    );
    let (status, answer) = market.publish("app", &order).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["signature"], "contract");
    assert_eq!(answer["owner"], wallet.to_string());
    // The wallet's key also authorizes unpublishing.
    let order_hash = hash(&answer["orderHash"]);
    let authorization =
        Unpublish::sign(&key, &net.domain(), order_hash, now_s() + 60, B256::repeat_byte(5))
            .unwrap();
    let (status, answer) = market
        .post(
            &format!("/apporders/{order_hash}/unpublish"),
            &serde_json::to_value(&authorization).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // But not a random key.
    let forged = net.sign(
        AppOrder { app, appprice: U256::from(2), volume: U256::from(1), ..Default::default() },
        &PrivateKeySigner::random(),
    );
    let (status, answer) = market.publish("app", &forged).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");

    market.stop().await;
}
