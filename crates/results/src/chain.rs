//! What the store reads from the chain: deals (from their `DealCreated` log, checked against
//! the hash the contract stores) and the consensus state of tasks.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use poco_chain::{ChainClient, ClientConfig};
use poco_contracts::bindings::{AppRegistry, IPoco};
use poco_primitives::{Deal, result::result_hash};
use tracing::debug;

use crate::{
    config::ChainConfig,
    error::{Error, Result},
};

/// The request params key that makes a deal's results public.
pub const PUBLIC_RESULT_PARAM: &str = "iexec_result_public";

/// A deal as the store needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealRecord {
    /// The deal, as the chain has it.
    pub deal: Deal,
    /// Whether anyone may download its results: its params are a JSON object with
    /// `"iexec_result_public": true`.
    pub public: bool,
}

/// Whether request params make results public.
pub fn params_make_public(params: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(params)
        .ok()
        .and_then(|value| value.get(PUBLIC_RESULT_PARAM).and_then(|flag| flag.as_bool()))
        .unwrap_or(false)
}

/// The task states of `IPocoTypes.TaskStatus`.
pub(crate) mod status {
    pub(crate) const UNSET: u8 = 0;
    pub(crate) const ACTIVE: u8 = 1;
    pub(crate) const REVEALING: u8 = 2;
    pub(crate) const COMPLETED: u8 = 3;
    pub(crate) const FAILED: u8 = 4;
    /// `ContributionStatus.PROVED`: the worker revealed the consensus.
    pub(crate) const PROVED: u8 = 2;
}

/// Reads deals and task states, caching deals (they never change).
#[derive(Debug)]
pub(crate) struct ChainView {
    client: ChainClient,
    config: ChainConfig,
    deals: Mutex<HashMap<B256, Arc<DealRecord>>>,
    cache_size: usize,
    /// The app registry's address, read from the protocol once.
    app_registry: tokio::sync::OnceCell<Address>,
}

/// An app as the chain has it, for a publication of its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AppRecord {
    /// Its owner.
    pub(crate) owner: Address,
    /// The sha256 of its code.
    pub(crate) checksum: B256,
}

impl ChainView {
    pub(crate) async fn connect(config: &ChainConfig, cache_size: usize) -> Result<Self> {
        let client = ChainClient::connect(&config.rpc_url, None, ClientConfig::default()).await?;
        Ok(Self {
            client,
            config: config.clone(),
            deals: Mutex::default(),
            cache_size,
            app_registry: tokio::sync::OnceCell::new(),
        })
    }

    /// The app at `app` as the chain's head has it, or `None` when no app is registered there.
    /// Not cached: ownership changes.
    pub(crate) async fn app(&self, app: Address) -> Result<Option<AppRecord>> {
        let registry = *self
            .app_registry
            .get_or_try_init(|| async {
                let poco = self.client.poco(self.config.poco);
                poco.appregistry().call().await.map_err(poco_chain::Error::from)
            })
            .await?;
        let registry = AppRegistry::new(registry, self.client.provider().clone());
        let owner = registry.ownerOrZero(app).call().await.map_err(poco_chain::Error::from)?;
        if owner.is_zero() {
            return Ok(None);
        }
        let data = registry.viewApp(app).call().await.map_err(poco_chain::Error::from)?;
        Ok(Some(AppRecord { owner, checksum: data.checksum }))
    }

    /// The deal `deal_id`: from the cache, or from its `DealCreated` log, checked against the
    /// hash the contract stores and its params against `paramsHash`.
    pub(crate) async fn deal(&self, deal_id: B256) -> Result<Arc<DealRecord>> {
        if let Some(record) = self.deals.lock().expect("deal cache lock").get(&deal_id) {
            return Ok(record.clone());
        }
        let poco = self.client.poco(self.config.poco);
        let stored = poco.viewDealHash(deal_id).call().await.map_err(poco_chain::Error::from)?;
        if stored.is_zero() {
            return Err(Error::UnknownDeal { deal_id });
        }
        let Some((deal, params)) = self.find_deal_log(deal_id).await? else {
            return Err(Error::DealLogMissing { deal_id, from_block: self.config.from_block });
        };
        if deal.hash() != stored || deal.id() != deal_id || keccak256(&params) != deal.paramsHash {
            return Err(Error::DealInconsistent { deal_id });
        }
        let record = Arc::new(DealRecord { deal, public: params_make_public(&params) });
        let mut deals = self.deals.lock().expect("deal cache lock");
        if deals.len() >= self.cache_size {
            deals.clear(); // deals are cheap to read again; keep the cache bounded
        }
        deals.insert(deal_id, record.clone());
        Ok(record)
    }

    /// The `DealCreated` log of `deal_id`, searched back from the head in bounded ranges.
    async fn find_deal_log(&self, deal_id: B256) -> Result<Option<(Deal, String)>> {
        let head = self.client.block_number().await?;
        let first = self.config.from_block;
        let range =
            if self.config.max_log_range == 0 { u64::MAX } else { self.config.max_log_range };
        let mut to = head;
        loop {
            if to < first {
                return Ok(None);
            }
            let from = to.saturating_sub(range - 1).max(first);
            let filter = Filter::new()
                .address(self.config.poco)
                .event_signature(IPoco::DealCreated::SIGNATURE_HASH)
                .topic1(deal_id)
                .from_block(from)
                .to_block(to);
            let logs =
                self.client.provider().get_logs(&filter).await.map_err(poco_chain::Error::from)?;
            debug!(%deal_id, from, to, logs = logs.len(), "looked for a deal");
            if let Some(event) =
                logs.iter().find_map(|log| IPoco::DealCreated::decode_log(&log.inner).ok())
            {
                return Ok(Some((Deal::from(event.data.deal), event.data.params)));
            }
            if from == first || from == 0 {
                return Ok(None);
            }
            to = from - 1;
        }
    }

    /// Whether `digest` is the task's settled consensus, for an upload by `worker`:
    /// the task is completed with this digest, or it is revealing on this digest's group and
    /// `worker` revealed it (a revealed consensus can no longer be reopened).
    pub(crate) async fn check_consensus(
        &self,
        task_id: B256,
        digest: B256,
        worker: Address,
    ) -> Result<()> {
        let poco = self.client.poco(self.config.poco);
        let task = poco.viewTask(task_id).call().await.map_err(poco_chain::Error::from)?;
        let mismatch = |expected| {
            Error::Checked(poco_api::results::Error::DigestMismatch { task_id, digest, expected })
        };
        match task.status {
            status::COMPLETED => {
                if task.resultDigest == digest {
                    Ok(())
                } else {
                    Err(mismatch(Some(task.resultDigest)))
                }
            }
            status::REVEALING => {
                let group = poco
                    .viewGroup(task_id, result_hash(task_id, digest))
                    .call()
                    .await
                    .map_err(poco_chain::Error::from)?;
                if !group.consensus {
                    return Err(mismatch(None));
                }
                let contribution = poco
                    .viewContribution(task_id, worker)
                    .call()
                    .await
                    .map_err(poco_chain::Error::from)?;
                if contribution.status != status::PROVED {
                    return Err(Error::TaskNotReady {
                        task_id,
                        reason: format!(
                            "worker {worker} has not revealed the consensus yet; reveal, then \
                             upload"
                        ),
                    });
                }
                Ok(())
            }
            status::UNSET | status::ACTIVE => Err(Error::TaskNotReady {
                task_id,
                reason: "it has no consensus yet; upload once the result is revealed".into(),
            }),
            status::FAILED => Err(Error::TaskNotReady {
                task_id,
                reason: "it failed (claimed): it will never have a result".into(),
            }),
            other => {
                Err(Error::TaskNotReady { task_id, reason: format!("unknown status {other}") })
            }
        }
    }
}

/// The task id of `index` in `deal`, if the index is one of the deal's.
pub(crate) fn task_of(deal: &Deal, index: U256) -> Option<B256> {
    deal.task_id(index).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_flag_from_params() {
        assert!(params_make_public(r#"{"iexec_result_public": true}"#));
        assert!(params_make_public(r#"{"iexec_args": "x", "iexec_result_public": true}"#));
        assert!(!params_make_public(r#"{"iexec_result_public": "true"}"#));
        assert!(!params_make_public(r#"{"iexec_result_public": false}"#));
        assert!(!params_make_public(""));
        assert!(!params_make_public("not json"));
        assert!(!params_make_public("[true]"));
    }
}
