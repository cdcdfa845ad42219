//! Deals and tasks: what the chain says about them, claiming the ones that failed, and
//! downloading results checked against the chain.

use std::path::Path;

use alloy::{
    primitives::{Address, B256, U256},
    sol_types::SolEvent,
};
use poco_api::results::{ArchiveLimits, ResultStoreClient, archive::unpack_to_dir};
use poco_contracts::bindings::{IPoco, IPocoTypes};
use poco_fetch::Source;
use poco_primitives::{Deal, result::FailureRecord};
use serde::Serialize;

use crate::{Error, Poco, Result};

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
    /// Its tasks' ids, in index order.
    pub tasks: Vec<B256>,
}

fn chain(error: alloy::contract::Error) -> Error {
    Error::Chain(error.into())
}

impl Poco {
    /// The deal `deal_id`, from its `DealCreated` event, checked against the on-chain hash.
    pub async fn deal(&self, deal_id: B256) -> Result<DealView> {
        let logs = self
            .logs(
                self.deployment().poco,
                &[Some(IPoco::DealCreated::SIGNATURE_HASH), Some(deal_id)],
            )
            .await?;
        let event = logs
            .iter()
            .find_map(|log| IPoco::DealCreated::decode_log(&log.inner).ok())
            .ok_or(Error::UnknownDeal(deal_id))?;
        let deal = Deal::from(event.data.deal);
        let stored = self.poco().viewDealHash(deal_id).call().await.map_err(chain)?;
        if stored != deal.hash() {
            return Err(Error::UnknownDeal(deal_id));
        }
        let tasks = deal.tasks().map(|(_, id)| id).collect();
        Ok(DealView { deal_id, deal, params: event.data.params, tasks })
    }

    /// The deals of `requester`, oldest first.
    pub async fn deals_of(&self, requester: Address) -> Result<Vec<DealView>> {
        let logs = self
            .logs(
                self.deployment().poco,
                &[
                    Some(IPoco::DealCreated::SIGNATURE_HASH),
                    None,
                    None,
                    Some(requester.into_word()),
                ],
            )
            .await?;
        let mut deals = Vec::new();
        for log in logs {
            let Ok(event) = IPoco::DealCreated::decode_log(&log.inner) else { continue };
            let deal = Deal::from(event.data.deal);
            let tasks = deal.tasks().map(|(_, id)| id).collect();
            deals.push(DealView {
                deal_id: event.data.dealid,
                deal,
                params: event.data.params,
                tasks,
            });
        }
        Ok(deals)
    }

    /// The deal a task belongs to and its index, found among the deals of the chain.
    pub async fn deal_of_task(&self, task_id: B256) -> Result<(DealView, U256)> {
        let logs =
            self.logs(self.deployment().poco, &[Some(IPoco::DealCreated::SIGNATURE_HASH)]).await?;
        for log in logs.iter().rev() {
            let Ok(event) = IPoco::DealCreated::decode_log(&log.inner) else { continue };
            let deal = Deal::from(event.data.deal);
            let found = deal.tasks().find(|(_, id)| *id == task_id).map(|(index, _)| index);
            if let Some(index) = found {
                let tasks = deal.tasks().map(|(_, id)| id).collect();
                let view =
                    DealView { deal_id: event.data.dealid, deal, params: event.data.params, tasks };
                return Ok((view, index));
            }
        }
        Err(Error::UnknownTask(task_id))
    }

    /// A task of a known deal.
    pub async fn task_in(&self, deal: &Deal, index: U256) -> Result<TaskView> {
        let task_id = deal.task_id(index)?;
        let on_chain = self.poco().viewTask(task_id).call().await.map_err(chain)?;
        let now = self.chain().block_timestamp().await?;
        let final_deadline: u64 = deal.final_deadline().saturating_to();
        let status = match on_chain.status {
            0..=2 if now >= final_deadline => TaskStatus::Timeout,
            0 => TaskStatus::Unset,
            1 => TaskStatus::Active,
            2 => TaskStatus::Revealing,
            3 => TaskStatus::Completed,
            _ => TaskStatus::Failed,
        };
        let results = if status == TaskStatus::Completed {
            self.results_location(task_id).await?
        } else {
            None
        };
        Ok(TaskView {
            task_id,
            deal_id: deal.id(),
            index,
            status,
            contributors: on_chain.contributors.saturating_to(),
            contribution_deadline: deal.contribution_deadline().saturating_to(),
            final_deadline,
            result_digest: (status == TaskStatus::Completed).then_some(on_chain.resultDigest),
            results,
            failure: None,
        })
    }

    /// A task, by id.
    pub async fn task(&self, task_id: B256) -> Result<TaskView> {
        let (deal, index) = self.deal_of_task(task_id).await?;
        self.task_in(&deal.deal, index).await
    }

    /// Where a finalized task's result is (the `results` of its `TaskFinalize` event).
    async fn results_location(&self, task_id: B256) -> Result<Option<String>> {
        let logs = self
            .logs(
                self.deployment().poco,
                &[Some(IPoco::TaskFinalize::SIGNATURE_HASH), Some(task_id)],
            )
            .await?;
        Ok(logs
            .iter()
            .find_map(|log| IPoco::TaskFinalize::decode_log(&log.inner).ok())
            .map(|event| String::from_utf8_lossy(&event.data.results).into_owned())
            .filter(|location| !location.is_empty()))
    }

    /// The workers who contributed to a task, sorted (as `claim` wants them).
    async fn contributors(&self, task_id: B256) -> Result<Vec<Address>> {
        let logs = self
            .logs(
                self.deployment().poco,
                &[Some(IPoco::TaskContribute::SIGNATURE_HASH), Some(task_id)],
            )
            .await?;
        let mut workers: Vec<Address> = logs
            .iter()
            .filter_map(|log| IPoco::TaskContribute::decode_log(&log.inner).ok())
            .map(|event| event.data.worker)
            .collect();
        workers.sort();
        workers.dedup();
        Ok(workers)
    }

    /// Claims a task past its final deadline: the requester is refunded.
    pub async fn claim(&self, task_id: B256) -> Result<TaskView> {
        let (deal, index) = self.deal_of_task(task_id).await?;
        let view = self.task_in(&deal.deal, index).await?;
        if view.status != TaskStatus::Timeout {
            return Err(Error::Config(format!(
                "task {task_id} is {} and cannot be claimed (claims open at its final deadline, {})",
                view.status, view.final_deadline
            )));
        }
        self.address()?;
        let contributors = self.contributors(task_id).await?;
        let poco = self.poco();
        let call = poco.claim(IPocoTypes::Deal::from(&deal.deal), index, contributors);
        self.chain().send(call).await?;
        self.task_in(&deal.deal, index).await
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
