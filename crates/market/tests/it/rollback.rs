//! The store's rollback, on both backends, without a chain: batches of events as a follower
//! would apply them, then a rollback to a fork point given what the chain said at the block
//! before it, compared with a fresh store that applied only the blocks before the fork point;
//! then a re-sync from nothing, compared with a fresh store that applied every block.

use alloy::primitives::{Address, B256, U256};
use poco_market::{
    model::{AnySigned, OrderRecord, SignatureKind, Status},
    store::{
        self, AssetEntry, ChainBatch, ChainDump, ChainEvent, LocatedChainEvent, Publication,
        Rollback, Store,
    },
};
use poco_primitives::{AppOrder, OrderKind, Signed};

use crate::harness::{self, Db};

#[tokio::test]
async fn a_sqlite_rollback_leaves_what_the_blocks_before_the_fork_make() {
    Box::pin(rollback(harness::sqlite(), harness::sqlite())).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn a_postgres_rollback_leaves_what_the_blocks_before_the_fork_make() {
    Box::pin(rollback(harness::postgres().await, harness::postgres().await)).await;
}

const APP: Address = Address::repeat_byte(0xaa);
const POOL: Address = Address::repeat_byte(0xbb);
const OWNER: Address = Address::repeat_byte(0x01);
const BUYER: Address = Address::repeat_byte(0x02);

/// An app order of `volume`, its hash made of `salt`.
fn order(salt: u8, volume: u64) -> (B256, Publication) {
    let hash = B256::repeat_byte(salt);
    let app = AppOrder {
        app: APP,
        volume: U256::from(volume),
        salt: B256::repeat_byte(salt),
        ..AppOrder::default()
    };
    let record = OrderRecord {
        hash,
        order: AnySigned::App(Signed::presigned(app)),
        status: Status::Open,
        remaining: U256::from(volume),
        owner: OWNER,
        signature: SignatureKind::Presigned,
        published_at: 0,
        updated_at: 0,
        reason: None,
    };
    (hash, Publication { record, owner_of: Some(OWNER), coverage: None, cap: u64::MAX })
}

fn at(block: u64, log_index: u64, event: ChainEvent) -> LocatedChainEvent {
    LocatedChainEvent { event, block, transaction: B256::ZERO, log_index }
}

/// A match of `volume` of `hash` (as the app order of a deal of its own).
fn matched(hash: B256, volume: u64) -> ChainEvent {
    ChainEvent::OrdersMatched {
        deal_id: B256::repeat_byte(0xd0) ^ hash,
        app_hash: hash,
        dataset_hash: B256::ZERO,
        workerpool_hash: B256::repeat_byte(0xee),
        request_hash: B256::repeat_byte(0xef),
        volume: U256::from(volume),
    }
}

/// The chain, block by block: the app and a workerpool registered, a member joining the pool,
/// a category, an order closed at 1; from 2 on (to be replaced): a match of 2 of the first
/// order, the second consumed in full, another member, the third order closed, the pool's
/// policy changed, the app transferred away.
fn chain(hashes: &[B256; 4]) -> Vec<LocatedChainEvent> {
    let [first, second, third, closed] = *hashes;
    vec![
        at(
            1,
            0,
            ChainEvent::AssetTransfer {
                kind: OrderKind::App,
                asset: APP,
                from: Address::ZERO,
                to: OWNER,
            },
        ),
        at(1, 1, ChainEvent::Category { id: 0, timeref: 300 }),
        at(1, 2, ChainEvent::Closed { hash: closed }),
        at(
            1,
            3,
            ChainEvent::AssetTransfer {
                kind: OrderKind::Workerpool,
                asset: POOL,
                from: Address::ZERO,
                to: OWNER,
            },
        ),
        at(1, 4, ChainEvent::Membership { workerpool: POOL, joined: true }),
        at(2, 0, matched(first, 2)),
        at(2, 1, matched(second, 1)),
        at(2, 2, ChainEvent::Membership { workerpool: POOL, joined: true }),
        at(3, 0, ChainEvent::Closed { hash: third }),
        at(3, 1, ChainEvent::Category { id: 1, timeref: 600 }),
        at(
            3,
            3,
            ChainEvent::PolicyUpdate {
                workerpool: POOL,
                worker_stake_ratio: 40,
                scheduler_reward_ratio: 2,
            },
        ),
        at(
            3,
            2,
            ChainEvent::AssetTransfer { kind: OrderKind::App, asset: APP, from: OWNER, to: BUYER },
        ),
    ]
}

/// Applies `events` of blocks `from..=to` as one followed batch.
async fn follow(store: &dyn Store, events: &[LocatedChainEvent], from: u64, to: u64) {
    let events = events.iter().filter(|e| e.block >= from && e.block <= to).cloned().collect();
    let batch = ChainBatch { from, next: to + 1, events, balances: vec![], balance_block: to };
    let tip = B256::with_last_byte(to as u8);
    assert!(store.apply_followed(batch, tip, 8).await.unwrap(), "batch {from}..={to} applies");
}

/// A store on `db` that followed blocks 0 to 1 and holds the orders.
async fn started(db: &Db, publications: &[Publication]) -> std::sync::Arc<dyn Store> {
    let store = store::open(&db.url, 2).await.unwrap();
    follow(store.as_ref(), &[], 0, 0).await;
    let hashes = [0x11, 0x12, 0x13, 0x14].map(B256::repeat_byte);
    follow(store.as_ref(), &chain(&hashes), 1, 1).await;
    let outcomes = store.publish(publications.to_vec()).await.unwrap();
    // All but the order closed at block 1, which has nothing left to match.
    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 3);
    store
}

async fn rollback(db: Db, fresh_db: Db) {
    let orders = [order(0x11, 5), order(0x12, 1), order(0x13, 3), order(0x14, 4)];
    let hashes = orders.clone().map(|(hash, _)| hash);
    let publications: Vec<Publication> = orders.iter().map(|(_, p)| p.clone()).collect();
    let events = chain(&hashes);
    let store = started(&db, &publications).await;
    follow(store.as_ref(), &events, 2, 3).await;
    let status = |dump: &ChainDump, hash: B256| {
        dump.orders.iter().find(|(h, ..)| *h == hash).map(|(_, status, left)| (*status, *left))
    };
    let before = store.dump().await.unwrap();
    assert_eq!(status(&before, hashes[0]), Some((Status::Dead, U256::from(3))), "transferred away");
    assert_eq!(status(&before, hashes[1]), Some((Status::Filled, U256::ZERO)));
    assert_eq!(status(&before, hashes[2]), Some((Status::Cancelled, U256::ZERO)));
    assert_eq!(before.deals.len(), 0, "no DealCreated in this story");

    // Blocks 2 and 3 are replaced; what the chain said at block 1 is read again.
    let targets = store.rollback_targets(Some(2)).await.unwrap();
    let mut expected =
        vec![hashes[0], hashes[1], hashes[2], B256::repeat_byte(0xee), B256::repeat_byte(0xef)];
    expected.sort();
    assert_eq!(targets.consumed, expected);
    assert_eq!(targets.assets, vec![(APP, OrderKind::App), (POOL, OrderKind::Workerpool)]);
    let owner_then = AssetEntry {
        kind: OrderKind::App,
        owner: OWNER,
        worker_stake_ratio: 30,
        scheduler_reward_ratio: 1,
        active_members: 0,
    };
    let pool_then = AssetEntry { kind: OrderKind::Workerpool, active_members: 1, ..owner_then };
    let rollback = Rollback {
        checkpoint: 4,
        fork_point: 2,
        common: Some(1),
        consumed: targets.consumed.iter().map(|hash| (*hash, U256::ZERO)).collect(),
        assets: vec![(APP, Some(owner_then)), (POOL, Some(pool_then))],
        balances: vec![],
        balance_block: 1,
    };
    assert!(!store.rollback(Rollback { checkpoint: 3, ..rollback.clone() }).await.unwrap());
    assert_eq!(store.dump().await.unwrap(), before, "a stale rollback changes nothing");
    assert!(store.rollback(rollback).await.unwrap());
    assert_eq!(store.checkpoint().await.unwrap(), Some(2));
    let recent: Vec<u64> = store.recent_blocks().await.unwrap().iter().map(|(n, _)| *n).collect();
    assert_eq!(recent, vec![0, 1]);

    let fresh = started(&fresh_db, &publications).await;
    let rolled = store.dump().await.unwrap();
    assert_eq!(rolled, fresh.dump().await.unwrap());
    assert_eq!(status(&rolled, hashes[0]), Some((Status::Open, U256::from(5))));
    assert_eq!(status(&rolled, hashes[1]), Some((Status::Open, U256::from(1))));
    assert_eq!(status(&rolled, hashes[2]), Some((Status::Open, U256::from(3))));
    assert_eq!(status(&rolled, hashes[3]), None, "closed before the fork: never in the book");
    let pool = rolled.assets.iter().find(|(asset, _)| *asset == POOL).map(|(_, entry)| *entry);
    assert_eq!(pool, Some(pool_then), "one member, the first policy");

    // The new chain holds the same blocks again: both stores apply them alike.
    follow(store.as_ref(), &events, 2, 3).await;
    follow(fresh.as_ref(), &events, 2, 3).await;
    assert_eq!(store.dump().await.unwrap(), fresh.dump().await.unwrap());
    assert_eq!(store.dump().await.unwrap(), before);

    // Deeper than the window: a re-sync from nothing, then every block again.
    let resync = Rollback {
        checkpoint: 4,
        fork_point: 0,
        common: None,
        consumed: vec![],
        assets: vec![],
        balances: vec![],
        balance_block: 3,
    };
    assert!(store.rollback(resync).await.unwrap());
    let empty = store.dump().await.unwrap();
    assert!(empty.assets.is_empty() && empty.consumed.is_empty() && empty.categories.is_empty());
    assert!(empty.orders.iter().all(|(_, status, _)| *status == Status::Open), "{empty:?}");
    assert_eq!(store.recent_blocks().await.unwrap(), vec![]);
    follow(store.as_ref(), &events, 0, 3).await;
    assert_eq!(store.dump().await.unwrap(), fresh.dump().await.unwrap());
    db.cleanup().await;
    fresh_db.cleanup().await;
}
