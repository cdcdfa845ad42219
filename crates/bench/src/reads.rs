//! The chain the `reads` benchmark (and its test) reads: anvil with the protocol deployed, a
//! long history of empty blocks, one deal matched and its task completed somewhere in it, a
//! market that indexed the deal, and a counting JSON-RPC proxy in front of anvil, so that the
//! requests `Poco::task` (what `poco task show` does) and `Poco::deal` cost can be counted,
//! with the market and without.

use std::{path::PathBuf, time::Duration};

use alloy::{
    primitives::B256,
    providers::{Provider, ext::AnvilApi},
};
use eyre::{Result, WrapErr, bail};
use poco_api::market::MarketClient;
use poco_chain::devnet::{AnvilProcess, DevnetAccounts, find_anvil};
use poco_contracts::Deployment;
use poco_primitives::Deal;
use poco_sdk::{Endpoints, Poco, TaskView};
use poco_test_utils::rpc::{CountingProxy, Traffic};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::Lifecycle;

/// A chain with a long history and one completed task in it.
pub struct ReadsChain {
    dir: tempfile::TempDir,
    anvil: AnvilProcess,
    lifecycle: Lifecycle,
    /// The deal.
    pub deal: Deal,
    /// The block of its match.
    pub deal_block: u64,
    /// Its one task, completed.
    pub task_id: B256,
    /// The head once every block is mined.
    pub head: u64,
    /// The proxy the clients read through.
    pub proxy: CountingProxy,
    /// Most blocks one `eth_getLogs` of the clients covers ([`poco_sdk::LOG_RANGE`] unless
    /// [`ReadsChain::with_log_range`] says otherwise).
    pub log_range: u64,
    market: Option<RunningMarket>,
}

struct RunningMarket {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<poco_market::Result<()>>,
}

/// What `Poco::task` and `Poco::deal` cost on the chain, with one client.
#[derive(Debug, Clone)]
pub struct Reads {
    /// `Poco::task` of the completed task.
    pub task: Traffic,
    /// What it returned.
    pub task_view: TaskView,
    /// `Poco::deal` of its deal.
    pub deal: Traffic,
    /// `Poco::connect`, before both.
    pub connect: Traffic,
}

impl ReadsChain {
    /// Starts anvil, deploys the protocol, mines `before` empty blocks, matches a deal of one
    /// trust-1 task and completes it, then mines `after` more.
    pub async fn build(before: u64, after: u64) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let accounts = DevnetAccounts::derive(1);
        let anvil = AnvilProcess::ephemeral(&find_anvil(), 10, &dir.path().join("anvil.log"))
            .wrap_err("starting anvil")?;
        let lifecycle = Lifecycle::deploy(anvil.endpoint(), &accounts).await?;
        lifecycle.mine(before).await?;
        let (deal, receipt) = lifecycle.match_deal(1, 1, 1).await?;
        let deal_block = receipt.block_number.unwrap_or_default();
        let worker = accounts.workers.first().cloned().expect("one worker");
        lifecycle.contribute_and_finalize(&deal, deal.botFirst, &worker).await?;
        lifecycle.mine(after).await?;
        let deal = Deal::from(deal);
        let task_id = deal.task_id(deal.botFirst)?;
        let head = lifecycle.head().await?;
        let proxy = CountingProxy::start(anvil.endpoint()).await;
        Ok(Self {
            dir,
            anvil,
            lifecycle,
            deal,
            deal_block,
            task_id,
            head,
            proxy,
            log_range: poco_sdk::LOG_RANGE,
            market: None,
        })
    }

    /// The protocol's deployment.
    pub fn deployment(&self) -> &Deployment {
        self.lifecycle.deployment()
    }

    /// Starts a market (SQLite, on 127.0.0.1) following anvil directly, and waits until it
    /// has indexed the deal. Returns its URL.
    pub async fn start_market(&mut self) -> Result<String> {
        if let Some(market) = &self.market {
            return Ok(market.url.clone());
        }
        let mut config = poco_market::MarketConfig::new(
            self.dir.path().join("market"),
            self.anvil.endpoint(),
            *self.deployment(),
        );
        config.poll_interval = Duration::from_millis(50);
        config.max_block_range = 10_000;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(poco_market::serve(config, listener, async move {
            let _ = stopped.await;
        }));
        let client = MarketClient::new(&url);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        while client.deal(self.deal.id()).await.is_err() {
            if task.is_finished() {
                bail!("the market stopped: {:?}", task.await);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the market did not index the deal in 300 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.market = Some(RunningMarket { url: url.clone(), stop: Some(stop), task });
        Ok(url)
    }

    /// The market's SQLite database (once started), to tamper with.
    pub fn market_database(&self) -> PathBuf {
        self.dir.path().join("market").join("market.sqlite")
    }

    /// A client reading through the proxy, with the market at `market_url`.
    pub async fn client(&self, market_url: Option<String>) -> Result<Poco> {
        let endpoints = Endpoints {
            rpc_url: self.proxy.url().to_owned(),
            market_url,
            poco: self.deployment().poco,
            from_block: self.deployment().block,
            confirmations: 0,
            receipt_timeout: poco_sdk::DEFAULT_RECEIPT_TIMEOUT,
        };
        Ok(Poco::connect(&endpoints, None).await?.with_log_range(self.log_range))
    }

    /// Clients read logs `blocks` at a time: a short chain read in short ranges costs what a
    /// chain as many times longer costs in the default ranges.
    pub fn with_log_range(mut self, blocks: u64) -> Self {
        self.log_range = blocks;
        self
    }

    /// Counts what `Poco::connect`, `Poco::task` of the completed task and `Poco::deal` of its
    /// deal cost, with the market at `market_url`.
    pub async fn measure(&self, market_url: Option<String>) -> Result<Reads> {
        self.proxy.take();
        let client = self.client(market_url).await?;
        let connect = self.proxy.take();
        let task_view = client.task(self.task_id).await?;
        let task = self.proxy.take();
        let view = client.deal(self.deal.id()).await?;
        let deal = self.proxy.take();
        if view.deal != self.deal || task_view.deal_id != self.deal.id() {
            bail!("the reads returned another deal");
        }
        Ok(Reads { task, task_view, deal, connect })
    }

    /// The requests the former reads made (a scan from the deployment block to the head, in
    /// ranges of one more block than the clients' log range, for the deal of the task and again
    /// for its finalization): `(Poco::task, Poco::deal)`, counted from the code they ran.
    pub fn former_requests(&self) -> (u64, u64) {
        former_requests(self.deployment().block, self.head, self.log_range + 1)
    }

    /// Stops the market and anvil.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(mut market) = self.market.take() {
            if let Some(stop) = market.stop.take() {
                let _ = stop.send(());
            }
            let _ = tokio::time::timeout(Duration::from_secs(30), &mut market.task).await;
        }
        Ok(())
    }
}

/// The requests of the former `(Poco::task, Poco::deal)` of a completed task on a chain whose
/// protocol was deployed at `deployed` and whose head is `head`: each scan read the head
/// (`eth_blockNumber`) and every range of `range` blocks (10,001 in the released code); `task`
/// scanned twice (every `DealCreated` of the chain, then the task's `TaskFinalize`) and read
/// the task and the latest block; `deal` scanned once and read the deal's hash.
pub fn former_requests(deployed: u64, head: u64, range: u64) -> (u64, u64) {
    let scan = 1 + (head - deployed + 1).div_ceil(range);
    (2 * scan + 2, scan + 1)
}

impl Lifecycle {
    /// Mines `blocks` empty blocks.
    pub async fn mine(&self, blocks: u64) -> Result<()> {
        if blocks > 0 {
            self.provider().anvil_mine(Some(blocks), None).await?;
        }
        Ok(())
    }

    /// The latest block's number.
    pub async fn head(&self) -> Result<u64> {
        Ok(self.provider().get_block_number().await?)
    }
}
