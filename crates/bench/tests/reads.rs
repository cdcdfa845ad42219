//! The bound of the reads benchmark, as a test: on a chain of about 2,000 blocks read in ranges
//! of 100 blocks (what a chain of 200,000 blocks costs in the default ranges of 10,000, at a
//! hundredth of the mining), reading a task through a market that knows its deal costs a
//! small fixed number of JSON-RPC requests
//! (request counts are deterministic; times are the benchmark's), and a market whose index
//! lies changes what the reads cost, never what they return.

use poco_bench::reads::ReadsChain;
use poco_sdk::TaskStatus;

/// Blocks one `eth_getLogs` covers in this test.
const RANGE: u64 = 100;

/// The most requests `Poco::task` of a completed task may cost through a market: the deal's
/// `DealCreated` at the block the market names, its stored hash, the latest block, the task,
/// and its `TaskFinalize` in the first range from the deal's block.
const TASK_THROUGH_A_MARKET: u64 = 5;
/// The most requests `Poco::deal` may cost through a market: its `DealCreated` at the block
/// the market names, and its stored hash.
const DEAL_THROUGH_A_MARKET: u64 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_read_through_a_market_costs_a_fixed_number_of_requests() {
    let chain = Box::pin(ReadsChain::build(1_000, 1_000)).await.expect("the chain");
    let mut chain = chain.with_log_range(RANGE);
    assert!(chain.head >= 2_000, "a chain of 2,000 blocks: {}", chain.head);
    let market = chain.start_market().await.expect("a market");

    let reads = chain.measure(Some(market.clone())).await.expect("reads through the market");
    assert_eq!(reads.task_view.status, TaskStatus::Completed);
    assert!(reads.task_view.results.is_some(), "{:?}", reads.task_view);
    assert!(
        reads.task.requests <= TASK_THROUGH_A_MARKET,
        "Poco::task through a market: {} requests ({})",
        reads.task.requests,
        reads.task.summary()
    );
    assert_eq!(reads.task.count("eth_getLogs"), 2, "{}", reads.task.summary());
    assert!(
        reads.deal.requests <= DEAL_THROUGH_A_MARKET,
        "Poco::deal through a market: {} requests ({})",
        reads.deal.requests,
        reads.deal.summary()
    );

    // Without a market: a range per 100 blocks between the head and the deal, no more.
    let ranges = (chain.head - chain.deal_block) / RANGE + 1;
    let alone = chain.measure(None).await.expect("reads without a market");
    assert_eq!(alone.task_view, reads.task_view);
    assert_eq!(alone.task.requests, ranges + 5, "{}", alone.task.summary());
    assert_eq!(alone.deal.requests, ranges + 2, "{}", alone.deal.summary());
    assert!(alone.task.requests < chain.former_requests().0);

    // The requester's deals through the market: one read of the block it names.
    let client = chain.client(Some(market.clone())).await.expect("a client");
    chain.proxy.take();
    let deals = client.deals_of(chain.deal.requester).await.expect("the requester's deals");
    assert_eq!(deals.len(), 1);
    assert_eq!((deals[0].deal_id, deals[0].block), (chain.deal.id(), chain.deal_block));
    assert_eq!(chain.proxy.take().requests, 1);

    // A market whose index names the wrong block, and forged parameters: the reads find the
    // deal on the chain all the same, and return what the chain says.
    let database = format!("sqlite://{}", chain.market_database().display());
    let pool = sqlx::SqlitePool::connect(&database).await.expect("the market's database");
    sqlx::query(
        "UPDATE deals SET body = json_set(body, '$.block', ?1, '$.params', 'forged') \
         WHERE deal_id = ?2",
    )
    .bind(i64::try_from(chain.deal_block + 3).unwrap())
    .bind(chain.deal.id().as_slice().to_vec())
    .execute(&pool)
    .await
    .expect("a tampered deal");
    pool.close().await;
    let lied_to = chain.measure(Some(market)).await.expect("reads through a lying market");
    assert_eq!(lied_to.task_view, reads.task_view);
    // One more request than without a market: the look at the block the market named.
    assert_eq!(lied_to.task.requests, ranges + 6, "{}", lied_to.task.summary());
    let deal = client.deal(chain.deal.id()).await.expect("the deal");
    assert_ne!(deal.params, "forged");
    assert_eq!(deal.block, chain.deal_block);
    // The requester's deals: the market's block is wrong, so the chain is read instead.
    let deals = client.deals_of(chain.deal.requester).await.expect("the requester's deals");
    assert_eq!(deals.len(), 1);
    assert_eq!((deals[0].deal_id, deals[0].block), (chain.deal.id(), chain.deal_block));
    assert_ne!(deals[0].params, "forged");

    chain.stop().await.expect("a clean stop");
}
