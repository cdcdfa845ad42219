//! Chain reorganisations against a real anvil (`anvil_reorg`) and the running scheduler. After
//! each, what the scheduler holds of the chain is compared with what a fresh scheduler that
//! followed the same chain from the start holds ([`poco_scheduler::sync`],
//! [`Store::dump`](poco_scheduler::store::Store::dump)).
//!
//! Who would gain from a reorganisation the scheduler did not repair:
//! - a worker whose contribution was undone, if the scheduler handed its task to another
//!   worker at once: the first worker's transaction may still come back in a block of the new
//!   chain, and the task would then be computed (and paid from the pool's share) twice. The
//!   undone replica keeps its seat, pending, until it comes back or expires as any silent one.
//! - a requester or a worker of a phantom deal: a deal whose match was undone has no tasks on
//!   the chain; the scheduler withdraws them (workers asking get nothing more, those running
//!   them are told to abort) rather than pay gas to initialize or finalize them.

use std::time::Duration;

use alloy::{
    primitives::{Address, B256},
    providers::Provider,
};
use poco_api::pool::Action;
use poco_scheduler::store::Store;

use crate::{Database, Pool, eventually, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contribution_undone_keeps_its_seat_until_it_comes_back() {
    let pool = Pool::start_on(3, Database::sqlite()).await;
    Box::pin(contribution_undone(pool, Database::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_contribution_undone_keeps_its_seat_until_it_comes_back_on_postgres() {
    let pool = Pool::start_on(3, Database::postgres().await).await;
    Box::pin(contribution_undone(pool, Database::postgres().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_undone_is_withdrawn_from_its_workers() {
    let pool = Pool::start_on(2, Database::sqlite()).await;
    Box::pin(deal_undone(pool, Database::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_deal_undone_is_withdrawn_from_its_workers_on_postgres() {
    let pool = Pool::start_on(2, Database::postgres().await).await;
    Box::pin(deal_undone(pool, Database::postgres().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contribution_undone_within_the_confirmation_depth_is_never_seen() {
    let pool = Pool::start_confirming(3, Database::sqlite(), 3).await;
    Box::pin(contribution_unseen(pool, Database::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_contribution_undone_within_the_confirmation_depth_is_never_seen_on_postgres() {
    let pool = Pool::start_confirming(3, Database::postgres().await, 3).await;
    Box::pin(contribution_unseen(pool, Database::postgres().await)).await;
}

/// The scheduler's public view of a task: its HTTP status and body.
async fn view(pool: &Pool, task_id: B256) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("{}/tasks/{task_id}", pool.url)).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// The state of `worker`'s replica of `task_id`, as the scheduler says.
async fn replica(pool: &Pool, task_id: B256, worker: Address) -> Option<String> {
    let (_, task) = view(pool, task_id).await;
    task["replicas"].as_array()?.iter().find_map(|replica| {
        let of = replica["worker"].as_str()?.parse::<Address>().ok()? == worker;
        of.then(|| replica["state"].as_str().unwrap_or_default().to_owned())
    })
}

/// A counter or gauge of the scheduler's `/metrics`.
async fn metric(pool: &Pool, name: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", pool.url)).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in the metrics"))
}

/// Waits until the scheduler applied every block `confirmations` deep.
async fn synced(pool: &Pool, confirmations: u64) {
    let confirmed = pool.net.head().await.saturating_sub(confirmations);
    eventually("the scheduler follows the confirmed head", || async {
        metric(pool, "poco_scheduler_checkpoint_block").await > confirmed
    })
    .await;
}

/// Waits until the scheduler's `initializeArray` for `task_id` is mined and followed: the
/// scheduler sends nothing more for it by itself, so the test's blocks are the chain's last.
async fn initialized(pool: &Pool, task_id: B256) {
    eventually("the scheduler initializes the task", || async {
        pool.task_status(task_id).await == 1
    })
    .await;
    synced(pool, 0).await;
}

/// Checks that the scheduler holds of the chain what a fresh scheduler, following the same
/// chain from the deployment on `fresh`, derives from it.
async fn same_as_fresh(pool: &Pool, fresh: Database, confirmations: u64) {
    synced(pool, confirmations).await;
    let mut config = pool.config();
    config.database_url = fresh.url();
    let expected = poco_scheduler::sync(config).await.expect("a fresh scheduler syncs");
    let expected = expected.dump().await.unwrap();
    let running = Store::open(&pool.database.url()).await.unwrap();
    let repaired = running.dump().await.unwrap();
    assert_eq!(repaired.deals, expected.deals, "deals");
    assert_eq!(repaired.tasks, expected.tasks, "tasks");
    assert_eq!(repaired.contributions, expected.contributions, "contributions");
    if let Database::Postgres(database) = fresh {
        database.drop_database().await;
    }
}

async fn contribution_undone(pool: Pool, fresh: Database) {
    let workers: Vec<_> = (0..3).map(|i| pool.worker(i)).collect();
    for worker in &workers {
        worker.register(1).await;
    }
    let deal = pool.deal(4, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let first =
        until("a first worker gets the task", || async { workers[0].ask(1).await.pop() }).await;
    let second = until("a second worker gets it", || async { workers[1].ask(1).await.pop() }).await;
    assert!(workers[2].ask(1).await.is_empty(), "two replicas are enough for trust 4");
    let digest = B256::repeat_byte(7);
    initialized(&pool, task_id).await;

    // The first worker contributes, in a block about to be replaced.
    let fork_point = pool.net.head().await + 1;
    let receipt = workers[0].contribute(&pool.net, &first, digest).await;
    eventually("the scheduler sees the contribution", || async {
        replica(&pool, task_id, workers[0].address()).await.as_deref() == Some("contributed")
    })
    .await;
    let raw = pool.net.raw_transaction(receipt.transaction_hash).await;
    let depth = pool.net.head().await - fork_point + 1;
    pool.net.reorg(depth, vec![]).await;
    pool.net.mine(1).await;
    eventually("the scheduler repairs", || async {
        metric(&pool, "poco_scheduler_reorgs_total").await == 1
    })
    .await;
    assert_eq!(pool.task_status(task_id).await, 1, "no contribution on the new chain");
    assert_eq!(
        replica(&pool, task_id, workers[0].address()).await.as_deref(),
        Some("computed"),
        "the contribution undone is pending again"
    );

    // Its worker keeps its seat while its transaction may come back: nobody else is handed
    // the task, and the worker is not told to stop.
    for _ in 0..5 {
        assert!(workers[2].ask(1).await.is_empty(), "the task is not handed out a third time");
        let beat = workers[0].heartbeat(vec![task_id]).await;
        assert!(
            !beat.actions.iter().any(|action| matches!(action, Action::Abort { .. })),
            "{beat:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The transaction is mined again on the new chain; the second worker agrees: consensus.
    let provider = pool.net.owner().provider();
    provider.send_raw_transaction(&raw).await.unwrap().get_receipt().await.unwrap();
    eventually("the contribution is back", || async {
        replica(&pool, task_id, workers[0].address()).await.as_deref() == Some("contributed")
    })
    .await;
    workers[1].contribute(&pool.net, &second, digest).await;
    eventually("consensus", || async { view(&pool, task_id).await.1["stage"] == "revealing" })
        .await;
    assert!(workers[2].ask(1).await.is_empty(), "never a third replica");
    same_as_fresh(&pool, fresh, 0).await;
    pool.finish().await;
}

async fn deal_undone(pool: Pool, fresh: Database) {
    let workers: Vec<_> = (0..2).map(|i| pool.worker(i)).collect();
    for worker in &workers {
        worker.register(1).await;
    }
    let fork_point = pool.net.head().await + 1;
    let deal = pool.deal(4, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    until("a worker gets the task", || async { workers[0].ask(1).await.pop() }).await;
    initialized(&pool, task_id).await;
    let depth = pool.net.head().await - fork_point + 1;
    pool.net.reorg(depth, vec![]).await;
    pool.net.mine(1).await;
    eventually("the scheduler repairs", || async {
        metric(&pool, "poco_scheduler_reorgs_total").await == 1
    })
    .await;

    // No phantom deal: its task is gone, the worker running it is told to abort, nobody else
    // is handed it.
    assert_eq!(view(&pool, task_id).await.0, 404);
    let beat = workers[0].heartbeat(vec![task_id]).await;
    assert!(
        beat.actions
            .iter()
            .any(|action| matches!(action, Action::Abort { task_id: t, .. } if *t == task_id)),
        "{beat:?}"
    );
    assert!(workers[1].ask(1).await.is_empty());
    assert_eq!(pool.task_status(task_id).await, 0, "the chain knows no such task");
    same_as_fresh(&pool, fresh, 0).await;
    pool.finish().await;
}

async fn contribution_unseen(pool: Pool, fresh: Database) {
    let workers: Vec<_> = (0..3).map(|i| pool.worker(i)).collect();
    for worker in &workers {
        worker.register(1).await;
    }
    let deal = pool.deal(4, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    pool.net.mine(3).await;
    let first =
        until("a first worker gets the task", || async { workers[0].ask(1).await.pop() }).await;
    until("a second worker gets it", || async { workers[1].ask(1).await.pop() }).await;
    eventually("the scheduler initializes the task", || async {
        pool.task_status(task_id).await == 1
    })
    .await;

    // The contribution's block and the next are replaced before they are 3 deep.
    workers[0].contribute(&pool.net, &first, B256::repeat_byte(7)).await;
    pool.net.mine(1).await;
    synced(&pool, 3).await;
    pool.net.reorg(2, vec![]).await;
    pool.net.mine(4).await;
    synced(&pool, 3).await;
    assert_eq!(metric(&pool, "poco_scheduler_reorgs_total").await, 0, "nothing to undo");
    assert_eq!(replica(&pool, task_id, workers[0].address()).await.as_deref(), Some("assigned"));
    assert!(workers[2].ask(1).await.is_empty(), "the first worker still holds its seat");
    same_as_fresh(&pool, fresh, 3).await;
    pool.finish().await;
}
