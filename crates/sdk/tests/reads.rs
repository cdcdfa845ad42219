//! What the SDK's reads of deals and tasks cost without a market, counted by a JSON-RPC proxy
//! in front of a real anvil with the real contracts: a search back from the head, a request
//! per range of blocks between the head and the deal, never the whole history; a market that
//! does not answer changes nothing; a watch reads tasks only when a block comes.

use std::time::Duration;

use alloy::primitives::{B256, U256};
use poco_primitives::Deal;
use poco_sdk::{Endpoints, Error, Poco, TaskStatus};
use poco_test_utils::{OrderSpec, TestNet, rpc::CountingProxy};

/// A devnet with a deal of `volume` tasks, its first task completed at once.
struct Fixture {
    net: TestNet,
    deal: Deal,
    /// The block of the match.
    deal_block: u64,
    proxy: CountingProxy,
}

const RESULTS: &str = "https://results.example/results";

/// The clients' `eth_getLogs` range: smaller than the default, so that a history of a few
/// ranges is quick to mine.
const RANGE: u64 = 1_000;

impl Fixture {
    async fn new(volume: u64) -> Self {
        let net = TestNet::start(1).await;
        let accounts = net.accounts().clone();
        let app = net.create_app(&accounts.app_provider, "reads-app", B256::ZERO).await;
        let workerpool = net.create_workerpool(&accounts.scheduler, "reads pool").await;
        let spec = OrderSpec { app, workerpool, volume, ..OrderSpec::default() };
        let (deal, receipt) =
            net.match_orders(&accounts.requester, &net.orders(&spec)).await.expect("a match");
        let deal_block = receipt.block_number.expect("a mined match");
        let proxy = CountingProxy::start(net.devnet().rpc_url()).await;
        Self { net, deal, deal_block, proxy }
    }

    /// Completes the deal's first task.
    async fn complete_first(&self) -> B256 {
        let worker = &self.net.accounts().workers[0];
        let idx = self.deal.botFirst;
        let task_id = self.deal.task_id(idx).unwrap();
        self.net
            .contribute_and_finalize(
                &self.deal,
                idx,
                worker,
                B256::repeat_byte(0x42),
                &location(task_id),
            )
            .await
            .expect("contributeAndFinalize");
        task_id
    }

    /// A client through the counting proxy, with the market at `market_url`.
    async fn client(&self, market_url: Option<String>) -> Poco {
        let endpoints = Endpoints {
            rpc_url: self.proxy.url().to_owned(),
            market_url,
            poco: self.net.deployment().poco,
            from_block: self.net.deployment().block,
            confirmations: 0,
            receipt_timeout: poco_sdk::DEFAULT_RECEIPT_TIMEOUT,
        };
        let client = Poco::connect(&endpoints, None).await.expect("a client").with_log_range(RANGE);
        self.proxy.take();
        client
    }

    async fn head(&self) -> u64 {
        self.net.owner().block_number().await.expect("a head")
    }
}

fn location(task_id: B256) -> String {
    format!("{RESULTS}/{task_id}")
}

/// Ranges of [`RANGE`] blocks a search back from `head` reads to reach block `block`.
fn ranges_back(head: u64, block: u64) -> u64 {
    (head - block) / RANGE + 1
}

/// A URL where nothing listens.
async fn nothing_listens() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_market_a_deal_and_its_task_cost_a_request_per_range_back_from_the_head() {
    let f = Box::pin(Fixture::new(2)).await;
    let task_id = f.complete_first().await;
    let later = 2 * RANGE + 500;
    f.net.mine(later).await;
    let head = f.head().await;
    // A market that does not answer is only a hint that did not come.
    let client = f.client(Some(nothing_listens().await)).await;

    let deal = client.deal(f.deal.id()).await.expect("the deal");
    assert_eq!(deal.deal, f.deal);
    assert_eq!(deal.block, f.deal_block);
    let traffic = f.proxy.take();
    let ranges = ranges_back(head, f.deal_block);
    assert_eq!(ranges, 3, "the deal is three ranges back");
    // The head, the ranges back to the deal, its stored hash.
    assert_eq!(traffic.count("eth_getLogs") as u64, ranges, "{}", traffic.summary());
    assert_eq!(traffic.requests, ranges + 2, "{}", traffic.summary());

    let task = client.task(task_id).await.expect("the task");
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(task.index, f.deal.botFirst);
    assert_eq!(task.results.as_deref(), Some(location(task_id).as_str()));
    assert_eq!(task.result_digest, Some(B256::repeat_byte(0x42)));
    let traffic = f.proxy.take();
    // The deal as above, then the task's state and the head's clock, and its finalization,
    // found in the first range from the deal's block.
    assert_eq!(traffic.count("eth_getLogs") as u64, ranges + 1, "{}", traffic.summary());
    assert_eq!(traffic.requests, ranges + 5, "{}", traffic.summary());

    let other = f.deal.task_id(f.deal.botFirst + U256::from(1)).unwrap();
    let waiting = client.task(other).await.expect("the second task");
    assert_eq!((waiting.status, waiting.results), (TaskStatus::Unset, None));

    // The requester's deals: read from the whole history without a market.
    let deals = client.deals_of(f.net.accounts().requester.address()).await.expect("deals");
    assert_eq!(deals.len(), 1);
    assert_eq!((deals[0].deal_id, deals[0].block), (f.deal.id(), f.deal_block));
    assert!(client.deals_of(f.net.accounts().scheduler.address()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_no_deal_holds_is_named_after_a_search_down_to_the_deployment() {
    let f = Box::pin(Fixture::new(1)).await;
    f.net.mine(RANGE + 10).await;
    let head = f.head().await;
    let client = f.client(None).await;
    let ranges = ranges_back(head, f.net.deployment().block);

    let unknown = B256::repeat_byte(9);
    let error = client.deal(unknown).await.unwrap_err();
    assert!(matches!(error, Error::UnknownDeal(id) if id == unknown), "{error}");
    assert_eq!(error.to_string(), format!("no deal {unknown} on this chain"));
    let traffic = f.proxy.take();
    assert_eq!(traffic.count("eth_getLogs") as u64, ranges, "{}", traffic.summary());
    assert_eq!(traffic.requests, ranges + 1, "{}", traffic.summary());

    let error = client.task(unknown).await.unwrap_err();
    assert!(matches!(error, Error::UnknownTask(id) if id == unknown), "{error}");
    assert_eq!(f.proxy.take().requests, ranges + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_reads_tasks_only_when_a_block_comes_and_not_once_they_are_over() {
    let f = Box::pin(Fixture::new(2)).await;
    let client = f.client(None).await;
    let deal = client.deal(f.deal.id()).await.expect("the deal");
    f.proxy.take();

    // No block comes: the tasks are read once, then only the head is asked for.
    let quiet = Duration::from_millis(1_600);
    let views = client
        .watch_tasks(
            &deal,
            &[f.deal.botFirst, f.deal.botFirst + U256::from(1)],
            quiet,
            false,
            |_| {},
        )
        .await
        .unwrap();
    assert!(views.iter().all(|v| v.status == TaskStatus::Unset));
    let traffic = f.proxy.take();
    assert_eq!(traffic.count("eth_call"), 2, "one read of each task: {}", traffic.summary());
    let polls = traffic.count("eth_blockNumber");
    assert!((3..=6).contains(&polls), "a look at the head every 500 ms: {}", traffic.summary());

    // The tasks complete one after the other: each block makes the watch read the tasks
    // not over yet, and it ends when both are.
    let mut seen = Vec::new();
    let indexes = [f.deal.botFirst, f.deal.botFirst + U256::from(1)];
    let watch = client.watch_tasks(&deal, &indexes, Duration::from_secs(60), false, |views| {
        seen.push(views.iter().map(|v| v.status).collect::<Vec<_>>());
    });
    let complete = async {
        let worker = &f.net.accounts().workers[0];
        for idx in indexes {
            tokio::time::sleep(Duration::from_millis(1_200)).await;
            let task_id = f.deal.task_id(idx).unwrap();
            f.net
                .contribute_and_finalize(
                    &f.deal,
                    idx,
                    worker,
                    B256::repeat_byte(1),
                    &location(task_id),
                )
                .await
                .expect("contributeAndFinalize");
        }
    };
    let (views, ()) = tokio::join!(watch, complete);
    let views = views.unwrap();
    assert!(views.iter().all(|v| v.status == TaskStatus::Completed), "{views:?}");
    assert!(views.iter().all(|v| v.results.is_some()), "{views:?}");
    assert_eq!(seen.first(), Some(&vec![TaskStatus::Unset, TaskStatus::Unset]));
    assert_eq!(seen.last(), Some(&vec![TaskStatus::Completed, TaskStatus::Completed]));
    let traffic = f.proxy.take();
    // viewTask: both tasks at first, then at most both at the first block and the one left at
    // the second; one viewDealHash-free read each time (the deal is known).
    let reads = traffic.count("eth_call");
    assert!((4..=5).contains(&reads), "{}", traffic.summary());
    assert!(traffic.count("eth_getBlockByNumber") <= 3, "{}", traffic.summary());
}
