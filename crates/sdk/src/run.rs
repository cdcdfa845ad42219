//! Running an app: find the cheapest compatible orders, explain what it costs and who gets
//! what, match them on-chain, then follow the tasks until their results are ready.

use std::{collections::BTreeMap, time::Duration};

use alloy::primitives::{Address, B256, U256};
use poco_contracts::bindings::IPocoTypes;
use poco_fetch::Source;
use poco_primitives::{
    Amount, AppOrder, DatasetOrder, Deal, RequestOrder, Signed, Tag, WorkerpoolOrder, committee,
};
use serde::Serialize;
use sha2::Digest;

use crate::{
    Error, Poco, Result,
    tasks::{DealView, TaskStatus, TaskView},
};

/// What a requester wants run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// The app.
    pub app: Address,
    /// The dataset, if any.
    pub dataset: Option<Address>,
    /// Only this workerpool, if given.
    pub workerpool: Option<Address>,
    /// The app's arguments.
    pub args: Option<String>,
    /// URLs of input files.
    pub input_files: Vec<String>,
    /// The category (time budget).
    pub category: u64,
    /// The trust wanted.
    pub trust: u64,
    /// Features needed.
    pub tag: Tag,
    /// Most the requester pays per task, all prices together (`None`: any).
    pub max_price: Option<Amount>,
    /// How many tasks.
    pub volume: u64,
    /// Who gets the results (default: the requester).
    pub beneficiary: Option<Address>,
    /// A contract to call with each result.
    pub callback: Option<Address>,
    /// Requester secrets handed to the app of a TEE task, by the index it reads them under
    /// (`IEXEC_REQUESTER_SECRET_<index>`, from 1): the names of secrets pushed to the SMS.
    pub secrets: BTreeMap<u32, String>,
    /// Encrypt each result for the beneficiary (TEE tasks; the beneficiary pushed a result key).
    pub encrypt_result: bool,
    /// Check, before paying, what would make every task fail: the app's and the dataset's
    /// URLs and checksums, the input URLs against the fetch policy, the arguments.
    pub check: bool,
}

impl RunSpec {
    /// A run of `app` with the defaults: no dataset, any workerpool, no arguments, category 0,
    /// trust 1, no tag, any price, one task, the requester as beneficiary, no secret.
    pub fn new(app: Address) -> Self {
        Self {
            app,
            dataset: None,
            workerpool: None,
            args: None,
            input_files: Vec::new(),
            category: 0,
            trust: 1,
            tag: Tag::NONE,
            max_price: None,
            volume: 1,
            beneficiary: None,
            callback: None,
            secrets: BTreeMap::new(),
            encrypt_result: false,
            check: true,
        }
    }

    /// Checks what only TEE tasks can have: requester secrets and result encryption, and the
    /// secrets' indices and names.
    pub fn check(&self) -> Result<()> {
        if (!self.secrets.is_empty() || self.encrypt_result) && !self.tag.is_tee() {
            return Err(Error::Config(
                "requester secrets and result encryption only reach TEE tasks: ask for the tee \
                 tag (--tag tee)"
                    .into(),
            ));
        }
        if self.encrypt_result && self.trust > 1 {
            return Err(Error::Config(
                "an encrypted result cannot be replicated: each enclave encrypts it afresh, so \
                 the replicas' results never agree; run with --trust 1 (the enclave's \
                 attestation stands in for replication) or without --encrypt-result"
                    .into(),
            ));
        }
        if self.tag.is_superset_of(Tag::COMMITTEE)
            && committee::committee_size(U256::from(self.trust)).is_none()
        {
            return Err(Error::Config(format!(
                "a committee deal serves trust up to {}: ask for less trust",
                committee::MAX_COMMITTEE_TRUST
            )));
        }
        for (index, name) in &self.secrets {
            if *index == 0 {
                return Err(Error::Config("requester secrets are numbered from 1".into()));
            }
            crate::confidential::check_name(name)?;
        }
        Ok(())
    }

    /// The request parameters: `{"iexec_args": ..., "iexec_input_files": [...],
    /// "iexec_secrets": {"1": "name"}, "iexec_result_encryption": true}`, each only when set.
    pub fn params(&self) -> String {
        let mut params = serde_json::Map::new();
        if let Some(args) = &self.args {
            params.insert("iexec_args".into(), args.clone().into());
        }
        if !self.input_files.is_empty() {
            params.insert("iexec_input_files".into(), self.input_files.clone().into());
        }
        if !self.secrets.is_empty() {
            let secrets: serde_json::Map<String, serde_json::Value> = self
                .secrets
                .iter()
                .map(|(index, name)| (index.to_string(), name.clone().into()))
                .collect();
            params.insert("iexec_secrets".into(), secrets.into());
        }
        if self.encrypt_result {
            params.insert(poco_api::sms::crypto::RESULT_ENCRYPTION_PARAM.into(), true.into());
        }
        if params.is_empty() {
            String::new()
        } else {
            serde_json::Value::Object(params).to_string()
        }
    }
}

/// Who gets what from a run, per task and in total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Costs {
    /// Tasks in the deal.
    pub volume: u64,
    /// The app owner's price per task.
    pub app: Amount,
    /// The dataset owner's price per task.
    pub dataset: Amount,
    /// The workerpool's price per task (scheduler and workers).
    pub workerpool: Amount,
    /// What the requester pays in all.
    pub total: Amount,
    /// What the scheduler stakes, returned when its tasks succeed.
    pub scheduler_stake: Amount,
    /// What the requester's account must deposit first.
    pub to_deposit: Amount,
}

/// A run ready to be matched: the orders chosen and the request to sign.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The app order.
    pub app: Signed<AppOrder>,
    /// The dataset order (zero dataset when none).
    pub dataset: Signed<DatasetOrder>,
    /// The workerpool order.
    pub workerpool: Signed<WorkerpoolOrder>,
    /// The request, signed by the wallet, at exactly the chosen prices.
    pub request: Signed<RequestOrder>,
    /// What it costs.
    pub costs: Costs,
}

fn order_from<T: serde::de::DeserializeOwned>(
    view: Option<poco_api::market::OrderView>,
    what: &str,
) -> Result<T> {
    let view =
        view.ok_or_else(|| Error::NoMatch(format!("the market proposed no {what} order")))?;
    serde_json::from_value(view.order)
        .map_err(|e| Error::Config(format!("the market served an invalid {what} order: {e}")))
}

impl Poco {
    /// Finds the cheapest orders that run `spec`, and signs the request that matches them.
    pub async fn plan_run(&self, spec: &RunSpec) -> Result<Plan> {
        spec.check()?;
        let requester = self.address()?;
        // Unknown assets are named as such, not as a missing offer.
        let app = self.asset(crate::AssetKind::App, spec.app).await?;
        let dataset = match spec.dataset {
            Some(dataset) => Some(self.asset(crate::AssetKind::Dataset, dataset).await?),
            None => None,
        };
        if spec.check {
            self.check_run(spec, &app, dataset.as_ref()).await?;
        }
        let any_price = U256::from(u64::MAX);
        let max = spec.max_price.map_or(any_price, |a| a.nrlc());
        let mut query = vec![
            ("app", spec.app.to_string()),
            ("requester", requester.to_string()),
            ("category", spec.category.to_string()),
            ("trust", spec.trust.to_string()),
            ("appmaxprice", max.to_string()),
            ("workerpoolmaxprice", max.to_string()),
            ("volume", spec.volume.to_string()),
        ];
        if !spec.tag.is_empty() {
            query.push(("tag", format!("{:#x}", spec.tag.to_u256())));
        }
        if let Some(dataset) = spec.dataset {
            query.push(("dataset", dataset.to_string()));
            query.push(("datasetmaxprice", max.to_string()));
        }
        if let Some(workerpool) = spec.workerpool {
            query.push(("workerpool", workerpool.to_string()));
        }
        let best = self.market()?.best_match(&query).await?;
        if !best.found {
            let why = if best.explanation.is_empty() {
                "nothing compatible is on the market".to_owned()
            } else {
                best.explanation.join("; ")
            };
            return Err(Error::NoMatch(why));
        }
        let app: Signed<AppOrder> = order_from(best.apporder, "app")?;
        let workerpool: Signed<WorkerpoolOrder> = order_from(best.workerpoolorder, "workerpool")?;
        let dataset: Signed<DatasetOrder> = match best.datasetorder {
            Some(view) => order_from(Some(view), "dataset")?,
            None => Signed::presigned(DatasetOrder::default()),
        };
        let volume = best.volume.unwrap_or(U256::from(spec.volume)).min(U256::from(spec.volume));
        // A committee deal's request names its pool: the one the market found, unless the
        // requester chose one (the market checked that it has members enough for the seats).
        let demand = Tag::deal_demand(Tag(app.tag), Tag(dataset.tag), spec.tag);
        let chosen_pool = match spec.workerpool {
            Some(pool) => pool,
            None if demand.is_superset_of(Tag::COMMITTEE) => workerpool.workerpool,
            None => Address::ZERO,
        };
        let per_task = app.appprice + dataset.datasetprice + workerpool.workerpoolprice;
        if let Some(max) = spec.max_price
            && per_task > max.nrlc()
        {
            return Err(Error::NoMatch(format!(
                "the cheapest offer costs {} per task, above your maximum of {max}",
                Amount::from_nrlc(per_task)
            )));
        }
        let request = RequestOrder {
            app: spec.app,
            appmaxprice: app.appprice,
            dataset: dataset.dataset,
            datasetmaxprice: dataset.datasetprice,
            workerpool: chosen_pool,
            workerpoolmaxprice: workerpool.workerpoolprice,
            requester,
            volume,
            tag: spec.tag.0,
            category: U256::from(spec.category),
            trust: U256::from(spec.trust),
            beneficiary: spec.beneficiary.unwrap_or(requester),
            callback: spec.callback.unwrap_or_default(),
            params: spec.params(),
            salt: crate::orders::new_salt(),
        };
        let total = per_task * volume;
        let free =
            self.poco().balanceOf(requester).call().await.map_err(|e| Error::Chain(e.into()))?;
        let costs = Costs {
            volume: volume.saturating_to(),
            app: Amount::from_nrlc(app.appprice),
            dataset: Amount::from_nrlc(dataset.datasetprice),
            workerpool: Amount::from_nrlc(workerpool.workerpoolprice),
            total: Amount::from_nrlc(total),
            scheduler_stake: Amount::from_nrlc(
                workerpool.workerpoolprice * U256::from(30) / U256::from(100) * volume,
            ),
            to_deposit: Amount::from_nrlc(total.saturating_sub(free)),
        };
        let request = self.sign(request)?;
        Ok(Plan { app, dataset, workerpool, request, costs })
    }

    /// What would make every task of `spec` fail, found before paying: an app or a dataset
    /// that cannot be fetched or does not have its registered checksum, an input URL the
    /// fetch policy refuses or that does not answer, arguments that do not split.
    async fn check_run(
        &self,
        spec: &RunSpec,
        app: &crate::Asset,
        dataset: Option<&crate::Asset>,
    ) -> Result<()> {
        let failed = |what: String| Error::RunCheck(what);
        if let Some(args) = &spec.args {
            poco_primitives::args::split_args(args)
                .map_err(|e| failed(format!("the arguments do not parse: {e}")))?;
        }
        for (source, asset) in [(Source::App, Some(app)), (Source::Dataset, dataset)]
            .into_iter()
            .filter_map(|(s, a)| a.map(|a| (s, a)))
        {
            let (Some(url), Some(checksum)) = (&asset.multiaddr, asset.checksum) else { continue };
            if url.starts_with("sha256:") {
                continue; // served from workers' caches: nothing to fetch from here
            }
            let bytes = self.fetcher().fetch(source, url).await.map_err(|e| {
                failed(format!("the {source} {} cannot be fetched: {e}", asset.address))
            })?;
            let actual = B256::from(<[u8; 32]>::from(sha2::Sha256::digest(&bytes)));
            if actual != checksum {
                return Err(failed(format!(
                    "the {source} {} at {url} has sha256 {actual}, but {checksum} is registered: \
                     workers would refuse it",
                    asset.address
                )));
            }
        }
        for (index, url) in spec.input_files.iter().enumerate() {
            self.fetcher()
                .probe(Source::InputFile, url)
                .await
                .map_err(|e| failed(format!("input file {}: {e}", index + 1)))?;
        }
        Ok(())
    }

    /// Matches a plan on-chain, depositing what the account lacks first when `deposit` is
    /// allowed; returns the deal.
    pub async fn execute(&self, plan: &Plan, deposit: bool) -> Result<DealView> {
        let requester = self.address()?;
        if !plan.costs.to_deposit.nrlc().is_zero() {
            if deposit {
                self.top_up(plan.costs.total).await?;
            } else {
                self.require_free(requester, plan.costs.total).await?;
            }
        }
        let poco = self.poco();
        let call = poco.matchOrders(
            IPocoTypes::AppOrder::from(&plan.app),
            IPocoTypes::DatasetOrder::from(&plan.dataset),
            IPocoTypes::WorkerpoolOrder::from(&plan.workerpool),
            IPocoTypes::RequestOrder::from(&plan.request),
        );
        let receipt = self.chain().send(call).await?;
        // The match's own receipt says where the deal is: nothing to search.
        receipt
            .inner
            .logs()
            .iter()
            .find_map(crate::tasks::deal_created)
            .ok_or_else(|| Error::Config("the match emitted no deal".into()))
    }

    /// Fixes a committee deal's seed as soon as its seed block is past (the requester's side
    /// of the draw: nobody who dislikes the draw can keep it unfixed until the block's hash
    /// is gone). Returns whether the seed is fixed.
    pub async fn draw_committee(&self, deal: &Deal) -> Result<bool> {
        let poco = self.poco();
        let draw = poco.viewDraw(deal.id()).call().await.map_err(|e| Error::Chain(e.into()))?;
        if !draw.seed.is_zero() {
            return Ok(true);
        }
        let head = self.chain().block_number().await?;
        if U256::from(head) <= draw.seedBlock {
            return Ok(false);
        }
        self.chain().send(poco.drawCommittee(IPocoTypes::Deal::from(deal))).await?;
        let draw = poco.viewDraw(deal.id()).call().await.map_err(|e| Error::Chain(e.into()))?;
        Ok(!draw.seed.is_zero())
    }

    /// Follows a deal's tasks until each is over (completed, failed, or past its deadline),
    /// calling `progress` whenever a status changes. A task past its final deadline is claimed
    /// at once when the client has a wallet (the requester is refunded). Gives up after
    /// `timeout`; see [`Self::watch_tasks`] for what it reads.
    pub async fn watch(
        &self,
        deal: &DealView,
        timeout: Duration,
        progress: impl FnMut(&[TaskView]),
    ) -> Result<Vec<TaskView>> {
        let indexes: Vec<U256> =
            deal.deal.tasks().take(crate::tasks::MAX_TASKS_SEARCHED).map(|(i, _)| i).collect();
        let claim = self.wallet().is_ok();
        self.watch_tasks(deal, &indexes, timeout, claim, progress).await
    }

    /// Follows the tasks `indexes` of `deal` until each is over, calling `progress` with all
    /// of them whenever a status changes (and once at first). Tasks past their final deadline
    /// are claimed when `claim` (the wallet pays the gas; the requester is refunded).
    ///
    /// Reads only what can have changed: every [`WATCH_POLL`] it asks the chain for its
    /// head (one `eth_blockNumber`), and only when a new block came does it read the state of
    /// the tasks not over yet (a task's state, and the clock its deadlines are judged by, move
    /// with blocks only). Gives up after `timeout`, returning the tasks as last read.
    pub async fn watch_tasks(
        &self,
        deal: &DealView,
        indexes: &[U256],
        timeout: Duration,
        claim: bool,
        mut progress: impl FnMut(&[TaskView]),
    ) -> Result<Vec<TaskView>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut drawn = !deal.deal.is_committee();
        let mut views: Vec<Option<TaskView>> = vec![None; indexes.len()];
        let mut last_statuses: Option<Vec<TaskStatus>> = None;
        let mut last_head = None;
        loop {
            let number = self.chain().block_number().await?;
            if last_head != Some(number) {
                last_head = Some(number);
                if !drawn {
                    drawn = self.draw_committee(&deal.deal).await?;
                }
                let head = self.block_header(Some(number)).await?;
                for (slot, index) in indexes.iter().enumerate() {
                    if views[slot].as_ref().is_some_and(|v| v.status.is_final()) {
                        continue;
                    }
                    let mut view = self.task_at(deal, *index, head).await?;
                    if view.status == TaskStatus::Timeout && claim {
                        view = match self.claim_in(deal, *index).await {
                            Ok(claimed) => claimed,
                            // Claimed by someone else meanwhile (the scheduler claims too).
                            Err(_) => self.task_in(deal, *index).await?,
                        };
                    }
                    views[slot] = Some(view);
                }
                let current: Vec<TaskView> = views.iter().flatten().cloned().collect();
                let statuses: Vec<TaskStatus> = current.iter().map(|v| v.status).collect();
                if last_statuses.as_ref() != Some(&statuses) {
                    progress(&current);
                    last_statuses = Some(statuses);
                }
                if views.iter().all(|v| v.as_ref().is_some_and(|v| v.status.is_final())) {
                    return Ok(current);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(views.into_iter().flatten().collect());
            }
            tokio::time::sleep(WATCH_POLL).await;
        }
    }
}

/// How often a watch asks the chain whether a new block came.
pub const WATCH_POLL: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_name_the_secrets_and_ask_for_encryption_as_the_sms_reads_them() {
        let mut spec = RunSpec::new(Address::repeat_byte(1));
        assert_eq!(spec.params(), "");
        spec.args = Some("10 20".into());
        spec.secrets.insert(1, "warehouse-token".into());
        spec.secrets.insert(2, "db.password".into());
        spec.encrypt_result = true;
        let refused = spec.check().unwrap_err();
        assert!(refused.to_string().contains("--tag tee"), "{refused}");
        spec.tag = Tag::TEE;
        spec.trust = 4;
        let refused = spec.check().unwrap_err();
        assert!(refused.to_string().contains("--trust 1"), "{refused}");
        spec.trust = 1;
        spec.check().unwrap();
        let params = spec.params();
        let names = poco_api::sms::requester_secret_names(&params).unwrap();
        assert_eq!(names[&1], "warehouse-token");
        assert_eq!(names[&2], "db.password");
        assert!(poco_api::sms::wants_result_encryption(&params));
        let parsed: serde_json::Value = serde_json::from_str(&params).unwrap();
        assert_eq!(parsed["iexec_args"], "10 20");
        spec.secrets.insert(3, "bad name".into());
        assert!(spec.check().is_err());
        spec.secrets.clear();
        spec.secrets.insert(0, "zero".into());
        assert!(spec.check().is_err());
    }
}
