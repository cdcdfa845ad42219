//! Deals and tasks: what the chain says about them, claiming the ones that failed, and
//! downloading results checked against the chain.

use std::{future::Future, path::Path};

use alloy::{
    primitives::{Address, B256, U256},
    sol_types::SolEvent,
};
use poco_api::results::{ArchiveLimits, ResultStoreClient, archive::unpack_to_dir};
use poco_contracts::bindings::{IPoco, IPocoTypes};
use poco_fetch::Source;
use poco_primitives::{Deal, result::FailureRecord};
use serde::Serialize;

use crate::{Error, Poco, Result, client::Head, market::MarketClient};

/// What [`Poco::download_result`] does with a result encrypted for its beneficiary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decryption {
    /// Decrypt it with the age identity in this file (`poco result keygen` writes one).
    KeyFile(std::path::PathBuf),
    /// Write it as it was downloaded: the encrypted file.
    Keep,
}

/// What [`Poco::download_result`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadedResult {
    /// The task, completed.
    pub task: TaskView,
    /// Whether the result was encrypted for its beneficiary.
    pub encrypted: bool,
    /// Whether it was decrypted (what was written is the app's output).
    pub decrypted: bool,
}

/// A task's status, one vocabulary for the chain and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    /// Not initialized yet (no worker started it).
    Unset,
    /// Open to contributions.
    Active,
    /// Consensus reached; waiting for reveals and finalization.
    Revealing,
    /// Finalized: the result is certified and paid.
    Completed,
    /// Claimed after its deadline: the requester was refunded.
    Failed,
    /// Past its final deadline and not claimed yet: it can be claimed.
    Timeout,
}

impl TaskStatus {
    /// Whether nothing will change any more (or only a claim).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Timeout)
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned));
        f.write_str(&name.unwrap_or_default())
    }
}

/// A task as the chain sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    /// The task id.
    pub task_id: B256,
    /// Its deal.
    pub deal_id: B256,
    /// Its index in the deal.
    pub index: U256,
    /// Where it is.
    pub status: TaskStatus,
    /// How many workers contributed.
    pub contributors: u64,
    /// Contributions close at (unix seconds).
    pub contribution_deadline: u64,
    /// The task can be claimed from (unix seconds).
    pub final_deadline: u64,
    /// The certified result digest, once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_digest: Option<B256>,
    /// Where the result is, once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<String>,
    /// Why a completed task failed (its result's failure record), when the beneficiary asked
    /// ([`Poco::task_failure`]): a failure of the request, agreed and paid like any result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureRecord>,
}

/// A deal, with its request parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DealView {
    /// The deal id.
    pub deal_id: B256,
    /// The deal, as stored (by hash) on-chain.
    pub deal: Deal,
    /// The request's parameters.
    pub params: String,
    /// Its tasks' ids, in index order (the first [`MAX_TASKS_SEARCHED`] of a larger deal).
    pub tasks: Vec<B256>,
    /// The block of its `DealCreated` event: the events of its tasks are searched from there.
    #[serde(skip)]
    pub block: u64,
}

impl DealView {
    /// The view of `deal`, created at `block`.
    fn new(deal: Deal, params: String, block: u64) -> Self {
        let tasks = deal.tasks().take(MAX_TASKS_SEARCHED).map(|(_, id)| id).collect();
        Self { deal_id: deal.id(), deal, params, tasks, block }
    }

    /// The index of `task_id` in the deal, among its first [`MAX_TASKS_SEARCHED`] tasks.
    fn index_of(&self, task_id: B256) -> Option<U256> {
        self.tasks.iter().position(|id| *id == task_id).map(|i| self.deal.botFirst + U256::from(i))
    }
}

/// How many tasks of one deal a search of a task through the deals of the chain looks at
/// (and [`DealView::tasks`] lists): the first ones. A deal's volume is whatever its orders
/// allowed, at any price, zero included; computing every id of a deal of billions of tasks
/// would never end. A later task of a larger deal is found through a market that indexed it,
/// or read with [`Poco::task_in`] from its deal and index.
pub const MAX_TASKS_SEARCHED: usize = 100_000;

/// Most deals [`Poco::deals_of`] takes from a market (ten pages of a thousand): a market that
/// claims more is not believed, and the chain is read instead.
const MAX_MARKET_DEALS: usize = 10_000;

fn chain(error: alloy::contract::Error) -> Error {
    Error::Chain(error.into())
}

/// The deal of a `DealCreated` log, with its block.
pub(crate) fn deal_created(log: &alloy::rpc::types::Log) -> Option<DealView> {
    let event = IPoco::DealCreated::decode_log(&log.inner).ok()?;
    let deal = Deal::from(event.data.deal);
    (deal.id() == event.data.dealid)
        .then(|| DealView::new(deal, event.data.params, log.block_number.unwrap_or_default()))
}

impl Poco {
    /// The deal `deal_id`, from its `DealCreated` event, checked against the on-chain hash.
    ///
    /// The event is read at the block a market names (one `eth_getLogs` of one block, when a
    /// market is configured and knows the deal), else searched from the head back to the
    /// deployment block ([`LOG_RANGE`](crate::LOG_RANGE) blocks a request, by default). The
    /// market is only a hint: what is returned is what the chain says.
    pub async fn deal(&self, deal_id: B256) -> Result<DealView> {
        let hinted = match self.market_hint(|market| market.deal(deal_id)).await {
            Some(indexed) => self.deal_at(deal_id, indexed.block).await,
            None => None,
        };
        let view = match hinted {
            Some(view) => view,
            None => self.find_deal(deal_id).await?.ok_or(Error::UnknownDeal(deal_id))?,
        };
        self.check_stored(view).await
    }

    /// The market's answer to `ask`, if a market is configured and answers: a hint, which a
    /// read checks against the chain, and does without when the market is down, refuses or
    /// does not know.
    async fn market_hint<'a, T, F>(&'a self, ask: impl FnOnce(&'a MarketClient) -> F) -> Option<T>
    where
        F: Future<Output = std::result::Result<T, poco_api::market::Error>>,
    {
        ask(self.market().ok()?).await.ok()
    }

    /// The deal `deal_id` if its `DealCreated` event is in block `block`, which a market
    /// named: `None` too when the chain refuses to read that block (one past the head), so
    /// that a market's lie costs a search, never a failure.
    async fn deal_at(&self, deal_id: B256, block: u64) -> Option<DealView> {
        if block < self.deployment().block {
            return None;
        }
        let topics = [Some(IPoco::DealCreated::SIGNATURE_HASH), Some(deal_id)];
        let logs = self.logs_in(self.deployment().poco, &topics, block, block).await.ok()?;
        logs.iter().filter_map(deal_created).find(|view| view.deal_id == deal_id)
    }

    /// The deal `deal_id`, searched from the head back to the deployment block.
    async fn find_deal(&self, deal_id: B256) -> Result<Option<DealView>> {
        let topics = [Some(IPoco::DealCreated::SIGNATURE_HASH), Some(deal_id)];
        let found = self
            .find_newest(&topics, |log| deal_created(log).filter(|view| view.deal_id == deal_id))
            .await?;
        Ok(found.map(|(view, _)| view))
    }

    /// `view` if the protocol stores its deal under its id (`viewDealHash`).
    async fn check_stored(&self, view: DealView) -> Result<DealView> {
        let stored = self.poco().viewDealHash(view.deal_id).call().await.map_err(chain)?;
        if stored != view.deal.hash() {
            return Err(Error::UnknownDeal(view.deal_id));
        }
        Ok(view)
    }

    /// The deals of `requester`, oldest first.
    ///
    /// With a market, its index of the requester's deals (`/deals?requester=`) says where
    /// they are, and the `DealCreated` events of those blocks are read (one `eth_getLogs` per
    /// block): a deal the market names that the chain does not have at its block makes the
    /// whole answer be read from the chain instead. A market can still leave deals out.
    /// Without a market, the requester's `DealCreated` events are read from the deployment
    /// block to the head.
    pub async fn deals_of(&self, requester: Address) -> Result<Vec<DealView>> {
        let topics =
            [Some(IPoco::DealCreated::SIGNATURE_HASH), None, None, Some(requester.into_word())];
        if let Some(hinted) = self.market_deals_of(requester).await
            && let Some(deals) = self.deals_at_blocks(&topics, &hinted).await
        {
            return Ok(deals);
        }
        let logs = self.logs(self.deployment().poco, &topics).await?;
        Ok(logs.iter().filter_map(deal_created).collect())
    }

    /// The deals of the workerpool `workerpool` (those its scheduler runs), oldest first: its
    /// `DealCreated` events, read from the deployment block to the head.
    pub async fn deals_of_workerpool(&self, workerpool: Address) -> Result<Vec<DealView>> {
        let topics =
            [Some(IPoco::DealCreated::SIGNATURE_HASH), None, Some(workerpool.into_word()), None];
        let logs = self.logs(self.deployment().poco, &topics).await?;
        Ok(logs.iter().filter_map(deal_created).collect())
    }

    /// The market's `(deal id, block)` of every deal of `requester`, oldest first; `None`
    /// when there is no market, it fails, or it names more than [`MAX_MARKET_DEALS`].
    async fn market_deals_of(&self, requester: Address) -> Option<Vec<(B256, u64)>> {
        let market = self.market().ok()?;
        let mut deals = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("requester", requester.to_string()), ("limit", "1000".into())];
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.clone()));
            }
            let page = market.deals(&query).await.ok()?;
            deals.extend(page.deals.iter().map(|d| (d.deal_id, d.block)));
            if deals.len() > MAX_MARKET_DEALS {
                return None;
            }
            match page.next_cursor {
                Some(next) if Some(&next) != cursor.as_ref() && !page.deals.is_empty() => {
                    cursor = Some(next);
                }
                Some(_) => return None,
                None => break,
            }
        }
        deals.reverse();
        Some(deals)
    }

    /// The deals `hinted` (id, block), each read from its block's `DealCreated` events of
    /// `topics`, in the order given; `None` when one of them is not at its block (or named
    /// twice, or the chain refuses to read its block).
    async fn deals_at_blocks(
        &self,
        topics: &[Option<B256>],
        hinted: &[(B256, u64)],
    ) -> Option<Vec<DealView>> {
        let mut read: std::collections::HashMap<u64, Vec<DealView>> = Default::default();
        let mut deals: Vec<DealView> = Vec::with_capacity(hinted.len());
        for (deal_id, block) in hinted {
            if *block < self.deployment().block || deals.iter().any(|d| d.deal_id == *deal_id) {
                return None;
            }
            if !read.contains_key(block) {
                let logs =
                    self.logs_in(self.deployment().poco, topics, *block, *block).await.ok()?;
                read.insert(*block, logs.iter().filter_map(deal_created).collect());
            }
            deals.push(read[block].iter().find(|view| view.deal_id == *deal_id)?.clone());
        }
        Some(deals)
    }

    /// The deal a task belongs to and its index.
    ///
    /// A market's task index names the deal, whose `DealCreated` event is then read at the
    /// block the market gives and checked like [`Self::deal`] (and the task id against the
    /// deal and index). Without a market, or when it does not know the task, the deals of the
    /// chain are searched from the head back to the deployment block, each for its first
    /// [`MAX_TASKS_SEARCHED`] tasks.
    pub async fn deal_of_task(&self, task_id: B256) -> Result<(DealView, U256)> {
        if let Some(indexed) = self.market_hint(|market| market.task(task_id)).await
            && let Some(view) = self.deal_at(indexed.deal.deal_id, indexed.deal.block).await
            && view.deal.task_id(indexed.index).ok() == Some(task_id)
        {
            return Ok((self.check_stored(view).await?, indexed.index));
        }
        let topics = [Some(IPoco::DealCreated::SIGNATURE_HASH)];
        let found = self
            .find_newest(&topics, |log| {
                let view = deal_created(log)?;
                let index = view.index_of(task_id)?;
                Some((view, index))
            })
            .await?;
        let ((view, index), _) = found.ok_or(Error::UnknownTask(task_id))?;
        Ok((self.check_stored(view).await?, index))
    }

    /// A task of a known deal.
    pub async fn task_in(&self, deal: &DealView, index: U256) -> Result<TaskView> {
        let head = self.block_header(None).await?;
        self.task_at(deal, index, head).await
    }

    /// Every task of a known deal (its first [`MAX_TASKS_SEARCHED`]), read at one head.
    pub async fn tasks_of(&self, deal: &DealView) -> Result<Vec<TaskView>> {
        let head = self.block_header(None).await?;
        let mut views = Vec::with_capacity(deal.tasks.len());
        for (index, _) in deal.deal.tasks().take(MAX_TASKS_SEARCHED) {
            views.push(self.task_at(deal, index, head).await?);
        }
        Ok(views)
    }

    /// A task of a known deal, its deadlines judged at block `head`.
    pub(crate) async fn task_at(
        &self,
        deal: &DealView,
        index: U256,
        head: Head,
    ) -> Result<TaskView> {
        let task_id = deal.deal.task_id(index)?;
        let on_chain = self.poco().viewTask(task_id).call().await.map_err(chain)?;
        let final_deadline: u64 = deal.deal.final_deadline().saturating_to();
        let status = match on_chain.status {
            0..=2 if head.timestamp >= final_deadline => TaskStatus::Timeout,
            0 => TaskStatus::Unset,
            1 => TaskStatus::Active,
            2 => TaskStatus::Revealing,
            3 => TaskStatus::Completed,
            _ => TaskStatus::Failed,
        };
        let results = if status == TaskStatus::Completed {
            self.results_location(task_id, deal, head.number).await?
        } else {
            None
        };
        Ok(TaskView {
            task_id,
            deal_id: deal.deal_id,
            index,
            status,
            contributors: on_chain.contributors.saturating_to(),
            contribution_deadline: deal.deal.contribution_deadline().saturating_to(),
            final_deadline,
            result_digest: (status == TaskStatus::Completed).then_some(on_chain.resultDigest),
            results,
            failure: None,
        })
    }

    /// A task, by id.
    pub async fn task(&self, task_id: B256) -> Result<TaskView> {
        let (deal, index) = self.deal_of_task(task_id).await?;
        self.task_in(&deal, index).await
    }

    /// Where a finalized task's result is (the `results` of its `TaskFinalize` event),
    /// searched from its deal's block to the head, or to the first block past its final
    /// deadline (no finalization happens from then on).
    async fn results_location(
        &self,
        task_id: B256,
        deal: &DealView,
        head: u64,
    ) -> Result<Option<String>> {
        let topics = [Some(IPoco::TaskFinalize::SIGNATURE_HASH), Some(task_id)];
        let until = deal.deal.final_deadline().saturating_to();
        let mut location = None;
        self.scan_forward(&topics, deal.block, head, until, |log| {
            location = IPoco::TaskFinalize::decode_log(&log.inner).ok();
            location.is_some()
        })
        .await?;
        Ok(location
            .map(|event| String::from_utf8_lossy(&event.data.results).into_owned())
            .filter(|location| !location.is_empty()))
    }

    /// The workers who contributed to a task, sorted (as `claim` wants them): its
    /// `TaskContribute` events from its deal's block to the head, or to the first block past
    /// its contribution deadline.
    async fn contributors(
        &self,
        task_id: B256,
        deal: &DealView,
        head: u64,
    ) -> Result<Vec<Address>> {
        let topics = [Some(IPoco::TaskContribute::SIGNATURE_HASH), Some(task_id)];
        let until = deal.deal.contribution_deadline().saturating_to();
        let mut workers = Vec::new();
        self.scan_forward(&topics, deal.block, head, until, |log| {
            if let Ok(event) = IPoco::TaskContribute::decode_log(&log.inner) {
                workers.push(event.data.worker);
            }
            false
        })
        .await?;
        workers.sort();
        workers.dedup();
        Ok(workers)
    }

    /// Claims a task past its final deadline: the requester is refunded.
    pub async fn claim(&self, task_id: B256) -> Result<TaskView> {
        let (deal, index) = self.deal_of_task(task_id).await?;
        self.claim_in(&deal, index).await
    }

    /// Claims every task of the deal `deal_id` past its final deadline and not completed (the
    /// requester is refunded for each); returns the deal's tasks as they are then. Fails,
    /// claiming nothing, when none can be claimed.
    pub async fn claim_deal(&self, deal_id: B256) -> Result<Vec<TaskView>> {
        let deal = self.deal(deal_id).await?;
        let tasks = self.tasks_of(&deal).await?;
        let claimable: Vec<U256> =
            tasks.iter().filter(|t| t.status == TaskStatus::Timeout).map(|t| t.index).collect();
        if claimable.is_empty() {
            let mut statuses: Vec<String> = tasks.iter().map(|t| t.status.to_string()).collect();
            statuses.dedup();
            let opens = tasks.iter().map(|t| t.final_deadline).min().unwrap_or_default();
            return Err(Error::Config(format!(
                "no task of deal {deal_id} can be claimed: they are {} (claims open at the \
                 final deadline, unix time {opens}, for tasks not completed by then)",
                statuses.join(", ")
            )));
        }
        for index in claimable {
            self.claim_in(&deal, index).await?;
        }
        self.tasks_of(&deal).await
    }

    /// Claims a task of a known deal past its final deadline.
    pub(crate) async fn claim_in(&self, deal: &DealView, index: U256) -> Result<TaskView> {
        let head = self.block_header(None).await?;
        let view = self.task_at(deal, index, head).await?;
        if view.status != TaskStatus::Timeout {
            return Err(Error::Config(format!(
                "task {} is {} and cannot be claimed (claims open at its final deadline, {})",
                view.task_id, view.status, view.final_deadline
            )));
        }
        self.address()?;
        let contributors = self.contributors(view.task_id, deal, head.number).await?;
        let poco = self.poco();
        let call = poco.claim(IPocoTypes::Deal::from(&deal.deal), index, contributors);
        self.chain().send(call).await?;
        self.task_in(deal, index).await
    }

    /// A client of the result store at a task's published `location`, which the fetch policy
    /// must let results reach (a scheduler chose it).
    async fn result_store(&self, task_id: B256, location: &str) -> Result<ResultStoreClient> {
        self.fetcher().check(Source::Result, location).await?;
        let suffix = format!("/results/{task_id}");
        let base = location.strip_suffix(&suffix).unwrap_or(location);
        let http = self.fetcher().client(Source::Result).clone();
        Ok(ResultStoreClient::with_http_client(base, http)?)
    }

    /// Why a completed task failed, when its result holds a failure record: asked of its
    /// result store as the beneficiary (the wallet), so only the beneficiary learns the cause,
    /// the app's exit status and the end of its error output. `None` for a task that has not
    /// completed, completed without failure, or whose result is encrypted (decrypt it to read
    /// its record).
    pub async fn task_failure(&self, task_id: B256) -> Result<Option<FailureRecord>> {
        let view = self.task(task_id).await?;
        let (TaskStatus::Completed, Some(location)) = (view.status, view.results.as_deref()) else {
            return Ok(None);
        };
        let wallet = self.wallet()?.clone();
        let client = self.result_store(task_id, location).await?;
        // A trust-1 result is uploaded just after its task completes: give it a moment.
        let mut attempts = 0;
        loop {
            match client.outcome(task_id, &wallet).await {
                Err(poco_api::results::Error::Refused { status: 404, .. }) if attempts < 60 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                other => return Ok(other?.failure),
            }
        }
    }

    /// Downloads a completed task's result as its beneficiary (the wallet), checks it against
    /// the digest certified on-chain, and unpacks it into `out` (created if needed, and empty).
    ///
    /// A result encrypted for the beneficiary (its archive holds only
    /// [`poco_api::sms::ENCRYPTED_RESULT_FILE`]) is decrypted as `decryption` says, after the digest
    /// check: what is unpacked is then the app's output itself. Nothing is written when the key
    /// is missing or does not open it.
    pub async fn download_result(
        &self,
        task_id: B256,
        out: &Path,
        decryption: &Decryption,
    ) -> Result<DownloadedResult> {
        self.download_result_reporting(task_id, out, decryption, &mut |_, _| {}).await
    }

    /// [`Self::download_result`], calling `progress(received, total)` as the archive's bytes
    /// arrive (it is streamed to a temporary file, within the result store client's size
    /// bound, and checked before anything is unpacked).
    pub async fn download_result_reporting(
        &self,
        task_id: B256,
        out: &Path,
        decryption: &Decryption,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<DownloadedResult> {
        let wallet = self.wallet()?.clone();
        let view = self.task(task_id).await?;
        let (Some(digest), Some(location)) = (view.result_digest, view.results.clone()) else {
            return Err(Error::NoResultYet { task: task_id, status: view.status.to_string() });
        };
        let client = self.result_store(task_id, &location).await?;
        // A trust-1 result is uploaded just after its task completes: give it a moment.
        let mut attempts = 0;
        let downloaded = loop {
            match client.download_reporting(task_id, &wallet, &mut *progress).await {
                Err(poco_api::results::Error::Refused { status: 404, .. }) if attempts < 60 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                other => break other?,
            }
        };
        if downloaded.digest != digest {
            return Err(Error::ResultMismatch { task: task_id });
        }
        let encrypted = matches!(
            downloaded.summary.files.as_slice(),
            [(name, _)] if name == poco_api::sms::ENCRYPTED_RESULT_FILE
        );
        let opened = match decryption {
            Decryption::KeyFile(key_file) if encrypted => {
                Some(crate::confidential::open_result(task_id, &downloaded.archive, key_file)?)
            }
            _ => None,
        };
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        match &opened {
            Some(archive) => {
                let limits = ArchiveLimits {
                    max_content_bytes: u64::MAX,
                    max_entries: usize::MAX,
                    max_path_bytes: usize::MAX,
                };
                unpack_to_dir(archive, out, &limits)?;
            }
            None => downloaded.unpack_to(out)?,
        }
        Ok(DownloadedResult { task: view, encrypted, decrypted: opened.is_some() })
    }
}
