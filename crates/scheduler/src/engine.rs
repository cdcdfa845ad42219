//! The engine: drives every task from deal to finalization (or claim), one idempotent step
//! at a time, from the store and the chain.
//!
//! Each tick looks at the tasks that can move and starts the transactions they need:
//! initialize new deals in batches, ask an uploader once winners revealed, finalize once the
//! result is uploaded and every winner revealed (or the reveal window closed), reopen when
//! nobody revealed, claim what passed its final deadline. Transactions run concurrently from
//! one wallet (nonces never clash); a task's failure is logged and retried later without
//! stalling the others. Before sending, each step checks the chain, so a transaction that a
//! restart or a race made pointless is not sent.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::{
    contract::{CallBuilder, CallDecoder},
    eips::BlockId,
    network::Ethereum,
    primitives::{Address, B256, Bytes, U256},
    providers::DynProvider,
    providers::Provider,
    rpc::types::TransactionReceipt,
};
use poco_api::{
    pool::{
        Action, Assignment, ContributionMode, HandBack, Heartbeat, HeartbeatResponse, Report,
        WorkResponse,
    },
    results::UploadTicket,
};
use poco_chain::{ChainClient, Reorg};
use poco_contracts::bindings::{
    IPoco::{IPocoErrors, IPocoInstance},
    IPocoTypes,
};
use poco_primitives::{
    Deal, WorkerpoolAuthorization,
    credibility::{MAX_CONTRIBUTORS, contributions_needed, vote_key},
    request::unix_seconds,
    signature,
};
use tracing::{debug, info, warn};

use crate::{
    Admission, Error, Result, SchedulerConfig,
    lease::Lease,
    metrics::Metrics,
    store::{ReplicaRecord, ReplicaState, Stage, Store, TaskRecord, now_ms},
};

/// Most tasks one `initializeArray` covers.
const INITIALIZE_BATCH: usize = 100;
/// Most tasks a worker holds assigned and not yet contributed, per slot it registered. A
/// worker frees its slot once a task is computed, while the commitment waits for its block, so
/// that a slot computes more than one task per block; the bound keeps a worker that asks for
/// work and never contributes from holding more than this many tasks per slot (the replicas
/// it holds expire as any other).
pub const IN_FLIGHT_PER_SLOT: u32 = 4;
/// Most times a worker may hand one task back ([`HandBack`]): after that, the task goes to other
/// workers only. A worker that hands back everything it is given (out of spite, or a fault the
/// hand-back does not fix) takes each task at most this many times, and never holds it: each
/// hand-back frees its replica at once.
pub const MAX_HAND_BACKS: u32 = 3;
/// How long after handing a task back its worker waits, by default, before it may be given
/// that task again ([`SchedulerConfig::hand_back_pause`]; other workers get it at once): a
/// worker whose fault persists does not take the same task back in a loop.
pub const DEFAULT_HAND_BACK_PAUSE: Duration = Duration::from_secs(10);
/// Seconds before the contribution deadline after which no new replica is handed out.
const CONTRIBUTION_MARGIN: u64 = 5;
/// Most workers whose bond (or its absence) is remembered at once: it keeps strangers signing
/// requests from fresh wallets from growing the cache without bound. Past it, expired entries
/// are dropped, and a new one is not remembered until there is room (its bond is read again).
pub(crate) const BOND_CACHE_ENTRIES: usize = 10_000;

/// On-chain task statuses the engine checks before sending a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TaskStatusOnChain {
    /// REVEALING (finalize, reopen).
    Revealing = 2,
    /// UNSET, ACTIVE or REVEALING (claim).
    Claimable = 0,
}

/// What kind of transaction a task is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum TxKind {
    Initialize,
    Finalize,
    Reopen,
    Claim,
}

/// The scheduler's brain, shared by the engine loop and the worker API.
pub(crate) struct Engine {
    pub(crate) store: Store,
    pub(crate) config: Arc<SchedulerConfig>,
    pub(crate) metrics: Arc<Metrics>,
    client: ChainClient,
    poco: IPocoInstance<DynProvider>,
    deals: Mutex<HashMap<B256, Arc<(Deal, String)>>>,
    scores: Mutex<HashMap<Address, (u64, Instant)>>,
    in_flight: Mutex<HashSet<(B256, TxKind)>>,
    retry_after: Mutex<HashMap<(B256, TxKind), Instant>>,
    /// Serializes work assignment, so two workers asking at once never over-provision a task
    /// (and no assignment interleaves with a rollback).
    assigning: tokio::sync::Mutex<()>,
    /// The SMS client, when the pool serves TEE deals.
    sms: Option<poco_api::sms::SmsClient>,
    /// The one HTTP client of the result stores' checks before finalize (its connections are
    /// kept between tasks).
    results_http: reqwest::Client,
    /// Enclave challenges already obtained, by task (the SMS answers the same one again).
    challenges: Mutex<HashMap<B256, Address>>,
    /// The seats of committee tasks, by task, once the contract can draw them.
    committees: Mutex<HashMap<B256, Arc<Vec<Address>>>>,
    /// When this instance started acting (ms since the Unix epoch): a worker's silence counts
    /// only from then, since a scheduler that was down (or standing by) could not hear it.
    started_ms: std::sync::atomic::AtomicI64,
    /// Whether a worker holds a bond in the pool, and when that was read from the chain.
    bonds: Mutex<HashMap<Address, (bool, Instant)>>,
    /// Whether this instance is the pool's active one: it acts only while it is.
    pub(crate) lease: Arc<Lease>,
}

impl Engine {
    pub(crate) fn new(
        store: Store,
        config: Arc<SchedulerConfig>,
        client: ChainClient,
        metrics: Arc<Metrics>,
        lease: Arc<Lease>,
    ) -> Self {
        let poco = client.poco(config.deployment.poco);
        Self {
            store,
            metrics,
            client,
            poco,
            deals: Mutex::default(),
            scores: Mutex::default(),
            in_flight: Mutex::default(),
            retry_after: Mutex::default(),
            assigning: tokio::sync::Mutex::new(()),
            sms: config.sms_url.as_deref().map(poco_api::sms::SmsClient::new),
            results_http: poco_api::http::client(poco_api::results::REQUEST_TIMEOUT),
            challenges: Mutex::default(),
            committees: Mutex::default(),
            started_ms: now_ms().into(),
            bonds: Mutex::default(),
            lease,
            config,
        }
    }

    /// A deal and its parameters, from the cache or the store.
    pub(crate) async fn deal(&self, deal_id: B256) -> Result<Arc<(Deal, String)>> {
        if let Some(deal) = self.deals.lock().expect("lock").get(&deal_id) {
            return Ok(deal.clone());
        }
        let deal = self
            .store
            .deal(deal_id)
            .await?
            .ok_or_else(|| Error::corrupt(format!("deal {deal_id} of a stored task")))?;
        let deal = Arc::new(deal);
        self.deals.lock().expect("lock").insert(deal_id, deal.clone());
        Ok(deal)
    }

    /// The confirmed head, where the chain state the scheduler acts on is read (scores, bonds,
    /// committee seats): a block a reorganisation within the confirmation depth may replace
    /// does not count yet. Reads that guard a transaction about to be sent (is the task still
    /// revealing, is the seed fixed) are made at the latest block instead, where the
    /// transaction will run.
    async fn confirmed(&self) -> Result<BlockId> {
        let head = self.client.block_number().await?;
        Ok(BlockId::number(head.saturating_sub(self.config.confirmations)))
    }

    /// Undoes, after a chain reorganisation, what the blocks from `reorg.fork_point` on
    /// changed ([`Store::rollback`]), so that the follower applies the new chain from there:
    /// deals of replaced blocks are withdrawn, other tasks set back to what the chain said
    /// before. What this process remembers of the chain is forgotten, and the wallet's nonce
    /// read again (the replaced blocks may have held its transactions). `checkpoint` is the
    /// first block the follower had not delivered when it found the reorganisation.
    pub(crate) async fn repair(&self, reorg: &Reorg, checkpoint: u64) -> Result<()> {
        warn!(
            fork_point = reorg.fork_point,
            common = ?reorg.common.map(|block| block.number),
            replaced = reorg.replaced.number,
            beyond_window = reorg.is_beyond_window(),
            "chain reorganisation: undoing the replaced blocks"
        );
        // No replica is handed out meanwhile: an assignment decided before the rollback would
        // name a task it withdrew.
        let serial = self.assigning.lock().await;
        let outcome = self
            .store
            .rollback(checkpoint, reorg.fork_point, reorg.is_beyond_window())
            .await?
            .ok_or_else(|| Error::corrupt("the checkpoint moved while a rollback was prepared"))?;
        drop(serial);
        self.deals.lock().expect("lock").clear();
        self.committees.lock().expect("lock").clear();
        self.scores.lock().expect("lock").clear();
        self.bonds.lock().expect("lock").clear();
        self.retry_after.lock().expect("lock").clear();
        self.client.resync_nonces().await;
        self.metrics.reorgs.inc();
        for deal in &outcome.withdrawn {
            warn!(%deal, "the deal is undone by the reorganisation: its tasks are withdrawn");
        }
        for task in &outcome.reset {
            let message = format!(
                "a chain reorganisation replaced the blocks from {} on: the task is as the \
                 chain had it before them",
                reorg.fork_point
            );
            self.store.log(*task, message).await?;
        }
        info!(
            fork_point = reorg.fork_point,
            withdrawn = outcome.withdrawn.len(),
            reset = outcome.reset.len(),
            "reorganisation repaired; following the new chain from the fork point"
        );
        Ok(())
    }

    /// A worker's reputation score, cached for a minute (it only changes at finalize).
    async fn score(&self, worker: Address) -> Result<u64> {
        if let Some((score, at)) = self.scores.lock().expect("lock").get(&worker)
            && at.elapsed() < Duration::from_secs(60)
        {
            return Ok(*score);
        }
        let at = self.confirmed().await?;
        let score: u64 = self
            .poco
            .viewScore(worker)
            .block(at)
            .call()
            .await
            .map_err(poco_chain::Error::from)?
            .saturating_to();
        self.scores.lock().expect("lock").insert(worker, (score, Instant::now()));
        Ok(score)
    }

    /// The scheduler's signature of an upload ticket for `worker`.
    fn ticket(&self, task_id: B256, worker: Address) -> Result<Bytes> {
        let hash = UploadTicket { task_id, worker }.signing_hash();
        Ok(signature::sign_hash(&self.config.wallet, hash)?)
    }

    /// The result store assignments name: the first of the pool's.
    pub(crate) fn result_store(&self) -> &str {
        &self.config.result_stores[0]
    }

    /// Where a task's result lives: in the pool's first result store.
    pub(crate) fn result_location(&self, task_id: B256) -> String {
        location_in(self.result_store(), task_id)
    }

    /// Whether `location` is where one of the pool's result stores keeps the task's result,
    /// exactly (the stores are normalised at start-up, and workers report the location they
    /// were given verbatim).
    fn is_pool_location(&self, task_id: B256, location: &str) -> bool {
        self.config.result_stores.iter().any(|store| location_in(store, task_id) == location)
    }

    // ============================================================== admission

    /// Checks that `worker` may work for the pool, by the configured [`Admission`] rule.
    pub(crate) async fn admit(&self, worker: Address) -> Result<()> {
        let admitted = match &self.config.admission {
            Admission::Open => true,
            Admission::AllowList(workers) => workers.contains(&worker),
            Admission::Bonded => self.bonded(worker).await?,
        };
        if admitted {
            return Ok(());
        }
        let rule = &self.config.admission;
        warn!(%worker, rule = rule.name(), "request of a worker not admitted refused");
        Err(Error::NotAdmitted { worker, rule: rule.name(), requirement: rule.requirement() })
    }

    /// Whether `worker` holds a bond in the pool, from the cache (for
    /// [`SchedulerConfig::bond_cache`]) or the chain.
    async fn bonded(&self, worker: Address) -> Result<bool> {
        if let Some((bonded, at)) = self.bonds.lock().expect("lock").get(&worker)
            && at.elapsed() < self.config.bond_cache
        {
            return Ok(*bonded);
        }
        let at = self.confirmed().await?;
        let membership = self
            .poco
            .viewMembership(self.config.workerpool, worker)
            .block(at)
            .call()
            .await
            .map_err(poco_chain::Error::from)?;
        let bonded = !membership.bond.is_zero();
        let mut bonds = self.bonds.lock().expect("lock");
        if bonds.len() >= BOND_CACHE_ENTRIES {
            let ttl = self.config.bond_cache;
            bonds.retain(|_, (_, at)| at.elapsed() < ttl);
            if bonds.len() >= BOND_CACHE_ENTRIES {
                warn!(entries = bonds.len(), "bond cache full: this bond is read again next time");
                return Ok(bonded);
            }
        }
        bonds.insert(worker, (bonded, Instant::now()));
        Ok(bonded)
    }

    // ============================================================== the worker API's logic

    /// Hands `worker` up to `free_slots` tasks that need one more replica, keeping its
    /// uncontributed tasks within [`IN_FLIGHT_PER_SLOT`] per registered slot. A task goes to a
    /// worker once, unless the worker handed it back ([`Engine::hand_back`]): then again after
    /// [`SchedulerConfig::hand_back_pause`], at most [`MAX_HAND_BACKS`] times. A worker whose
    /// last heartbeat said it is unhealthy gets nothing until one says it is well again.
    pub(crate) async fn assign(&self, worker: Address, free_slots: u32) -> Result<WorkResponse> {
        self.lease.check()?;
        let record = self.store.worker(worker).await?.ok_or(Error::UnknownWorker(worker))?;
        if let Some(unhealthy) = &record.unhealthy {
            debug!(%worker, %unhealthy, "no work for a worker that says it is unhealthy");
            return Ok(WorkResponse::default());
        }
        let _serial = self.assigning.lock().await;
        let running = self
            .store
            .worker_replicas(worker)
            .await?
            .iter()
            .filter(|r| r.state.is_pending())
            .count() as u32;
        let in_flight = record.slots.saturating_mul(IN_FLIGHT_PER_SLOT);
        let mut room = free_slots.min(in_flight.saturating_sub(running));
        let mut response = WorkResponse::default();
        if room == 0 {
            return Ok(response);
        }
        let now = self.client.block_timestamp().await?;
        let own_score = self.score(worker).await?;
        for task in self.store.tasks_at(Stage::Open, 500).await? {
            if room == 0 {
                break;
            }
            let deal = self.deal(task.deal_id).await?;
            let (deal, params) = (&deal.0, &deal.1);
            if deal.is_tee() && !record.tee {
                continue;
            }
            let deadline: u64 = deal.contribution_deadline().saturating_to();
            if now + CONTRIBUTION_MARGIN >= deadline {
                continue;
            }
            let replicas = self.store.replicas(task.task_id).await?;
            if let Some(mine) = replicas.iter().find(|r| r.worker == worker)
                && !may_take_back(mine, now_ms(), self.config.hand_back_pause)
            {
                continue;
            }
            let needed = if deal.is_committee() {
                // Only seat holders can vote, so each of them gets the task.
                self.committee(deal, task.index, task.task_id)
                    .await?
                    .is_some_and(|seats| seats.contains(&worker))
            } else {
                self.needs_replica(deal, &replicas, own_score).await?
            };
            if !needed {
                continue;
            }
            let enclave_challenge = if deal.is_tee() {
                match self.enclave_challenge(deal, task.index, task.task_id).await {
                    Ok(challenge) => challenge,
                    Err(error) => {
                        debug!(task = %task.task_id, %error, "no enclave challenge: not assigned");
                        continue;
                    }
                }
            } else {
                Address::ZERO
            };
            if !self.store.add_replica(task.task_id, worker).await? {
                continue;
            }
            let authorization =
                WorkerpoolAuthorization { worker, task_id: task.task_id, enclave_challenge }
                    .sign(&self.config.wallet)?;
            let fast = deal.trust <= U256::from(1);
            response.assignments.push(Assignment {
                task_id: task.task_id,
                index: task.index,
                deal: deal.clone(),
                params: params.clone(),
                enclave_challenge,
                authorization,
                mode: if fast {
                    ContributionMode::ContributeAndFinalize
                } else {
                    ContributionMode::Contribute
                },
                results_location: self.result_location(task.task_id),
                upload_ticket: if fast { Some(self.ticket(task.task_id, worker)?) } else { None },
            });
            self.store.log(task.task_id, format!("assigned to worker {worker}")).await?;
            self.metrics.assignments.inc();
            room -= 1;
        }
        if !response.assignments.is_empty() {
            // Each replica was recorded under this instance's lease; the authorizations leave
            // only if the lease still holds now.
            self.lease.check()?;
            for assignment in &response.assignments {
                info!(task = %assignment.task_id, %worker, token = self.lease.token(), "task assigned");
            }
        }
        Ok(response)
    }

    /// The enclave challenge of a TEE task, from the cache or the SMS (which creates it on the
    /// first request and answers the same one after).
    async fn enclave_challenge(&self, deal: &Deal, index: U256, task_id: B256) -> Result<Address> {
        if let Some(challenge) = self.challenges.lock().expect("lock").get(&task_id) {
            return Ok(*challenge);
        }
        let sms = self.sms.as_ref().ok_or_else(|| {
            Error::BadRequest("TEE deal but no SMS configured: the pool cannot serve it".into())
        })?;
        let response = sms.challenge(&self.config.wallet, deal, index).await?;
        if response.task_id != task_id {
            return Err(Error::corrupt("the SMS answered a challenge for another task"));
        }
        self.challenges.lock().expect("lock").insert(task_id, response.address);
        debug!(task = %task_id, challenge = %response.address, "enclave challenge obtained");
        Ok(response.address)
    }

    /// The seats of a committee task, drawn by the contract; `None` while the draw cannot be
    /// made (its seed block is not past yet). When the seed block's hash can no longer be
    /// read, the deal is seeded again (`drawCommittee`), and its seats come a few blocks later.
    async fn committee(
        &self,
        deal: &Deal,
        index: U256,
        task_id: B256,
    ) -> Result<Option<Arc<Vec<Address>>>> {
        if let Some(seats) = self.committees.lock().expect("lock").get(&task_id) {
            return Ok(Some(seats.clone()));
        }
        let at = self.confirmed().await?;
        let view = self.poco.viewCommittee(IPocoTypes::Deal::from(deal), index).block(at);
        let seats = match view.call().await {
            Ok(seats) => Arc::new(seats),
            Err(error) => {
                let Some(revert) = poco_contracts::Revert::from_contract_error(&error) else {
                    return Err(poco_chain::Error::from(error).into());
                };
                debug!(task = %task_id, %revert, "committee not drawn");
                if matches!(revert, poco_contracts::Revert::Poco(IPocoErrors::DrawExpired(_))) {
                    info!(deal = %deal.id(), "the committee's seed is gone: seeding it again");
                    self.send(
                        "drawCommittee",
                        self.poco.drawCommittee(IPocoTypes::Deal::from(deal)),
                    )
                    .await?;
                }
                return Ok(None);
            }
        };
        // The seats can be read: fix the seed now, so nobody can wait for it to expire.
        let draw = self.poco.viewDraw(deal.id()).call().await.map_err(poco_chain::Error::from)?;
        if draw.seed.is_zero() {
            self.send("drawCommittee", self.poco.drawCommittee(IPocoTypes::Deal::from(deal)))
                .await?;
        }
        self.committees.lock().expect("lock").insert(task_id, seats.clone());
        Ok(Some(seats))
    }

    /// Whether a task needs another replica, given its replicas and the candidate's score.
    async fn needs_replica(
        &self,
        deal: &Deal,
        replicas: &[ReplicaRecord],
        candidate: u64,
    ) -> Result<bool> {
        if replicas.len() >= MAX_CONTRIBUTORS {
            return Ok(false);
        }
        let trust: u64 = deal.trust.saturating_to();
        let mut contributed = Vec::new();
        let mut pending = Vec::new();
        for replica in replicas {
            match (replica.state, replica.result_hash) {
                (ReplicaState::Contributed | ReplicaState::Revealed, Some(hash)) => {
                    contributed.push((hash, self.score(replica.worker).await?));
                }
                (state, _) if state.is_pending() => pending.push(self.score(replica.worker).await?),
                _ => {}
            }
        }
        let mut candidates = pending.clone();
        candidates.push(candidate);
        Ok(contributions_needed(trust, &contributed, &candidates)
            .is_some_and(|needed| needed > pending.len()))
    }

    /// What `worker` should do next, given the tasks it says it is running; records what it
    /// says of its health (an unhealthy worker is given no work: [`Engine::assign`]).
    pub(crate) async fn heartbeat(
        &self,
        worker: Address,
        beat: &Heartbeat,
    ) -> Result<HeartbeatResponse> {
        let mut actions = Vec::new();
        let record = self.store.worker(worker).await?.ok_or(Error::UnknownWorker(worker))?;
        if record.unhealthy != beat.unhealthy {
            match &beat.unhealthy {
                Some(unhealthy) => {
                    warn!(%worker, %unhealthy, "the worker says it is unhealthy: no work for it")
                }
                None => info!(%worker, "the worker says it is healthy again"),
            }
            self.store.set_worker_health(worker, beat.unhealthy.as_ref()).await?;
        }
        self.store.renew_replicas(worker, &beat.running).await?;
        let replicas = self.store.worker_replicas(worker).await?;
        for replica in &replicas {
            let Some(task) = self.store.task(replica.task_id).await? else { continue };
            if task.stage == Stage::Revealing
                && replica.state == ReplicaState::Contributed
                && votes_for(replica.result_hash, task.consensus)
            {
                actions.push(Action::Reveal { task_id: task.task_id });
            }
            if task.uploader == Some(worker) && task.location.is_none() {
                actions.push(Action::Upload {
                    task_id: task.task_id,
                    ticket: self.ticket(task.task_id, worker)?,
                });
            }
        }
        let live: HashSet<B256> = replicas
            .iter()
            .filter(|r| {
                !matches!(
                    r.state,
                    ReplicaState::Expired | ReplicaState::Failed | ReplicaState::Released
                )
            })
            .map(|r| r.task_id)
            .collect();
        let released: HashSet<B256> = replicas
            .iter()
            .filter(|r| r.state == ReplicaState::Released)
            .map(|r| r.task_id)
            .collect();
        for task_id in &beat.running {
            if !live.contains(task_id) {
                let reason = match self.store.task(*task_id).await? {
                    Some(task) if task.stage.is_final() => "the task is over",
                    Some(_) if released.contains(task_id) => "the worker handed the task back",
                    Some(_) => "the task was given to another worker",
                    None => "unknown task",
                };
                actions.push(Action::Abort { task_id: *task_id, reason: reason.into() });
            }
        }
        if actions.iter().any(|action| matches!(action, Action::Upload { .. })) {
            // An upload ticket leaves only while this instance is the active one.
            self.lease.check()?;
        }
        Ok(HeartbeatResponse { actions })
    }

    /// Records what a worker reports, when it comes from the worker holding the replica, in
    /// the state where that report is expected; anything else is refused and changes nothing.
    ///
    /// - `computed`: while the replica is pending (assigned or computed) and the task open.
    /// - `failed`: while the replica is pending.
    /// - `uploaded`: from the worker asked to upload, while the task is revealing; or, for a
    ///   trust-1 task (the worker contributes and finalizes at once), from a worker holding a
    ///   live replica of it, the one that contributed once the chain shows who did. The
    ///   location must be the task's in one of the pool's result stores, exactly (empty for a
    ///   deal with a callback: its result goes on-chain, nothing is uploaded).
    pub(crate) async fn report(&self, worker: Address, report: &Report) -> Result<()> {
        let task_id = report.task_id();
        let replicas = self.store.replicas(task_id).await?;
        let Some(mine) = replicas.iter().find(|r| r.worker == worker) else {
            warn!(task = %task_id, %worker, "report about a task the worker was not given refused");
            return Err(Error::NotAssigned { task: task_id, worker });
        };
        let task = self.store.task(task_id).await?.ok_or(Error::UnknownTask(task_id))?;
        let unexpected = |report: &'static str, reason: String| {
            debug!(task = %task_id, %worker, report, %reason, "unexpected report refused");
            Error::UnexpectedReport { task: task_id, worker, report, reason }
        };
        match report {
            Report::Computed { result_hash, .. } => {
                if !mine.state.is_pending() || task.stage != Stage::Open {
                    return Err(unexpected(
                        "computed",
                        format!("the replica is {:?} and the task {:?}", mine.state, task.stage),
                    ));
                }
                self.store
                    .set_replica(task_id, worker, ReplicaState::Computed, Some(*result_hash))
                    .await?;
                self.store
                    .log(task_id, format!("worker {worker} computed result {result_hash}"))
                    .await?;
            }
            Report::Uploaded { location, callback_data, .. } => {
                self.check_upload(&task, mine, &replicas, location).await?;
                self.store.set_uploaded(task_id, location, callback_data).await?;
                self.store
                    .log(task_id, format!("result uploaded by {worker} to {location}"))
                    .await?;
            }
            Report::Failed { reason, .. } => {
                if !mine.state.is_pending() {
                    return Err(unexpected("failed", format!("the replica is {:?}", mine.state)));
                }
                self.store.set_replica(task_id, worker, ReplicaState::Failed, None).await?;
                self.store.log(task_id, format!("worker {worker} failed: {reason}")).await?;
            }
        }
        Ok(())
    }

    /// Takes back a task `worker` cannot keep (its files could not be written on its machine),
    /// so that the next worker asking gets it at once instead of after the replica timeout.
    /// Accepted from the worker holding the replica, while the replica is only assigned (the
    /// worker reported no result) and the chain shows no contribution of the worker to the
    /// task: a worker cannot hand back a task it computed or contributed to, nor anyone else's
    /// (the request is signed by the worker, [`crate::api`]). The replica is `released`, the
    /// task's log says why, and the worker may be given the task again later
    /// ([`Engine::assign`]).
    pub(crate) async fn hand_back(&self, worker: Address, hand_back: &HandBack) -> Result<()> {
        let task_id = hand_back.task_id;
        let task = self.store.task(task_id).await?.ok_or(Error::UnknownTask(task_id))?;
        let replicas = self.store.replicas(task_id).await?;
        let Some(mine) = replicas.iter().find(|r| r.worker == worker) else {
            warn!(task = %task_id, %worker, "hand-back of a task the worker was not given refused");
            return Err(Error::NotAssigned { task: task_id, worker });
        };
        let refuse = |reason: String| {
            debug!(task = %task_id, %worker, %reason, "hand-back refused");
            Error::CannotHandBack { task: task_id, worker, reason }
        };
        if mine.state != ReplicaState::Assigned {
            return Err(refuse(format!(
                "the replica is {}: only a task the worker has not computed can be handed back",
                mine.state.as_str()
            )));
        }
        // The store follows the chain some blocks behind: the chain itself says whether the
        // worker contributed already.
        let contribution = self
            .poco
            .viewContribution(task_id, worker)
            .call()
            .await
            .map_err(poco_chain::Error::from)?;
        if contribution.status != 0 {
            return Err(refuse("the worker contributed to it on-chain".into()));
        }
        {
            let _serial = self.assigning.lock().await;
            if !self.store.release_replica(task_id, worker).await? {
                return Err(refuse("the replica changed meanwhile".into()));
            }
        }
        let again = if mine.hand_backs + 1 < MAX_HAND_BACKS {
            format!(
                "it goes to the next worker that asks (to this one again in {} s at the soonest)",
                self.config.hand_back_pause.as_secs_f64()
            )
        } else {
            "it goes to the next worker that asks (never to this one again)".to_owned()
        };
        let message =
            format!("worker {worker} handed the task back ({}): {again}", hand_back.cause);
        self.store.log(task_id, message).await?;
        self.metrics.hand_backs.inc();
        info!(
            task = %task_id, %worker, cause = %hand_back.cause, stage = ?task.stage,
            "task handed back: free for the next worker"
        );
        Ok(())
    }

    /// Whether the holder of `mine` may report the task's result uploaded at `location`.
    async fn check_upload(
        &self,
        task: &TaskRecord,
        mine: &ReplicaRecord,
        replicas: &[ReplicaRecord],
        location: &str,
    ) -> Result<()> {
        let (task_id, worker) = (task.task_id, mine.worker);
        let deal = self.deal(task.deal_id).await?;
        let fast = deal.0.trust <= U256::from(1);
        if fast {
            let live = !matches!(
                mine.state,
                ReplicaState::Failed | ReplicaState::Expired | ReplicaState::Rejected
            );
            let on_chain = |r: &ReplicaRecord| {
                matches!(r.state, ReplicaState::Contributed | ReplicaState::Revealed)
            };
            let someone_else = replicas.iter().any(on_chain) && !on_chain(mine);
            if !live || someone_else || task.stage == Stage::Failed {
                warn!(task = %task_id, %worker, "upload report of a worker not holding the task refused");
                return Err(Error::NotUploader { task: task_id, worker });
            }
        } else {
            if task.stage != Stage::Revealing {
                debug!(task = %task_id, %worker, stage = ?task.stage, "upload report before consensus refused");
                return Err(Error::UnexpectedReport {
                    task: task_id,
                    worker,
                    report: "uploaded",
                    reason: format!(
                        "the task is {:?}: results are uploaded once consensus is reached, by \
                         the worker asked to",
                        task.stage
                    ),
                });
            }
            if task.uploader != Some(worker) {
                warn!(task = %task_id, %worker, "upload report of a worker not asked to upload refused");
                return Err(Error::NotUploader { task: task_id, worker });
            }
        }
        let expected =
            if deal.0.callback.is_zero() { self.result_location(task_id) } else { String::new() };
        let acceptable = if deal.0.callback.is_zero() {
            self.is_pool_location(task_id, location)
        } else {
            location.is_empty()
        };
        if !acceptable {
            warn!(task = %task_id, %worker, %location, "upload report naming a foreign location refused");
            return Err(Error::ForeignLocation {
                task: task_id,
                location: location.into(),
                expected,
            });
        }
        Ok(())
    }

    // ============================================================== the engine loop

    /// One pass over the tasks that can move.
    pub(crate) async fn tick(self: &Arc<Self>) -> Result<()> {
        self.lease.check()?;
        let now_ms = now_ms();
        // A worker is silent when it was not heard for a while *while this scheduler listened*:
        // after a restart, the workers' replicas are not taken from them for the time the
        // scheduler itself was away.
        let worker_timeout = self.config.worker_timeout.as_millis() as i64;
        let started_ms = self.started_ms.load(std::sync::atomic::Ordering::Relaxed);
        let silent_before =
            if now_ms - started_ms < worker_timeout { i64::MIN } else { now_ms - worker_timeout };
        let expired = self
            .store
            .expire_replicas(now_ms - self.config.replica_timeout.as_millis() as i64, silent_before)
            .await?;
        if expired > 0 {
            debug!(expired, "replicas expired");
        }
        self.store.prune_request_nonces(unix_seconds()).await?;
        let now = self.client.block_timestamp().await?;
        if self.config.initialize {
            self.initialize_new_deals().await?;
        }
        for task in self.store.tasks_at(Stage::Revealing, 1_000).await? {
            if let Err(error) = self.advance_revealing(&task, now).await {
                warn!(task = %task.task_id, %error, "could not advance the task");
            }
        }
        for task in self.store.expired(now, 200).await? {
            self.spawn(task.task_id, TxKind::Claim, {
                let engine = self.clone();
                async move { engine.claim(&task).await }
            });
        }
        Ok(())
    }

    async fn initialize_new_deals(self: &Arc<Self>) -> Result<()> {
        let tasks = self.store.uninitialized(10 * INITIALIZE_BATCH as i64).await?;
        let mut by_deal: HashMap<B256, Vec<TaskRecord>> = HashMap::new();
        for task in tasks {
            by_deal.entry(task.deal_id).or_default().push(task);
        }
        for (deal_id, tasks) in by_deal {
            for batch in tasks.chunks(INITIALIZE_BATCH) {
                let batch = batch.to_vec();
                let engine = self.clone();
                self.spawn(batch[0].task_id, TxKind::Initialize, async move {
                    engine.initialize(deal_id, &batch).await
                });
            }
        }
        Ok(())
    }

    async fn initialize(&self, deal_id: B256, tasks: &[TaskRecord]) -> Result<()> {
        let deal = self.deal(deal_id).await?;
        let now = self.client.block_timestamp().await?;
        let deadline: u64 = deal.0.contribution_deadline().saturating_to();
        if now + CONTRIBUTION_MARGIN >= deadline {
            // Too late to matter: workers initialize the tasks they contribute to anyway.
            return self
                .store
                .mark_initialized(&tasks.iter().map(|t| t.task_id).collect::<Vec<_>>(), None)
                .await;
        }
        let indexes: Vec<U256> = tasks.iter().map(|t| t.index).collect();
        let call = self.poco.initializeArray(IPocoTypes::Deal::from(&deal.0), indexes);
        let mined = self.send("initializeArray", call).await?.block_number;
        let task_ids: Vec<B256> = tasks.iter().map(|t| t.task_id).collect();
        self.store.mark_initialized(&task_ids, Some(mined.unwrap_or_default())).await?;
        self.metrics.transactions.inc();
        info!(deal = %deal_id, tasks = tasks.len(), "initialized tasks");
        Ok(())
    }

    async fn advance_revealing(self: &Arc<Self>, task: &TaskRecord, now: u64) -> Result<()> {
        let replicas = self.store.replicas(task.task_id).await?;
        let winners: Vec<&ReplicaRecord> = replicas
            .iter()
            .filter(|r| votes_for(r.result_hash, task.consensus))
            .filter(|r| matches!(r.state, ReplicaState::Contributed | ReplicaState::Revealed))
            .collect();
        let revealed: Vec<&ReplicaRecord> =
            winners.iter().copied().filter(|r| r.state == ReplicaState::Revealed).collect();

        if revealed.is_empty() {
            // Nobody revealed: once the reveal window is over, reopen the task.
            let view =
                self.poco.viewTask(task.task_id).call().await.map_err(poco_chain::Error::from)?;
            let reveal_deadline: u64 = view.revealDeadline.saturating_to();
            if view.status == 2 && view.reveals.is_zero() && now >= reveal_deadline {
                let engine = self.clone();
                let task = task.clone();
                self.spawn(task.task_id, TxKind::Reopen, async move { engine.reopen(&task).await });
            }
            return Ok(());
        }

        // Choose an uploader among the revealers; replace one that takes too long.
        let upload_late =
            now_ms() - task.upload_asked_ms > self.config.upload_timeout.as_millis() as i64;
        if task.location.is_none() && (task.uploader.is_none() || upload_late) {
            let next = revealed
                .iter()
                .map(|r| r.worker)
                .find(|w| Some(*w) != task.uploader)
                .or(task.uploader)
                .expect("someone revealed");
            if task.uploader != Some(next) || upload_late {
                self.store.set_uploader(task.task_id, next).await?;
                self.store
                    .log(task.task_id, format!("worker {next} asked to upload the result"))
                    .await?;
            }
            return Ok(());
        }
        if task.location.is_none() {
            return Ok(());
        }
        let all_revealed = revealed.len() == winners.len();
        if !all_revealed {
            let view =
                self.poco.viewTask(task.task_id).call().await.map_err(poco_chain::Error::from)?;
            if now < view.revealDeadline.saturating_to::<u64>() {
                return Ok(());
            }
        }
        let engine = self.clone();
        let task = task.clone();
        self.spawn(task.task_id, TxKind::Finalize, async move { engine.finalize(&task).await });
        Ok(())
    }

    /// The task's contributors, sorted, as `finalize`, `claim` and `reopen` want them.
    async fn contributors(&self, task_id: B256) -> Result<Vec<Address>> {
        let mut contributors: Vec<Address> = self
            .store
            .replicas(task_id)
            .await?
            .into_iter()
            .filter(|r| {
                matches!(
                    r.state,
                    ReplicaState::Contributed | ReplicaState::Revealed | ReplicaState::Rejected
                )
            })
            .map(|r| r.worker)
            .collect();
        contributors.sort();
        Ok(contributors)
    }

    /// Whether the chain shows the task as `expected` with exactly these contributors: a step
    /// is only sent when it cannot fail on a state the store has not caught up with yet (or
    /// that a previous run already changed).
    async fn chain_agrees(
        &self,
        task_id: B256,
        expected: TaskStatusOnChain,
        contributors: &[Address],
    ) -> Result<bool> {
        let view = self.poco.viewTask(task_id).call().await.map_err(poco_chain::Error::from)?;
        let status_ok = match expected {
            TaskStatusOnChain::Revealing => view.status == TaskStatusOnChain::Revealing as u8,
            TaskStatusOnChain::Claimable => view.status < 3,
        };
        let agrees = status_ok && view.contributors == U256::from(contributors.len());
        if !agrees {
            debug!(task = %task_id, status = view.status, "the chain is not where the store is yet");
        }
        Ok(agrees)
    }

    async fn finalize(&self, task: &TaskRecord) -> Result<()> {
        let deal = self.deal(task.deal_id).await?;
        let contributors = self.contributors(task.task_id).await?;
        if !self.chain_agrees(task.task_id, TaskStatusOnChain::Revealing, &contributors).await? {
            return Ok(());
        }
        let digest =
            task.result_digest.ok_or_else(|| Error::corrupt("revealed task without digest"))?;
        // The archive at the upload location must have the consensus digest (asked with a HEAD
        // signed by this scheduler): a worker that says it uploaded but did not, or a store
        // that lost it, must not get the task finalized on a result nobody can download.
        // Otherwise the task waits for the next tick, and once the uploader's time is up,
        // another revealer is asked. (A deal with a callback has no archive: the contract
        // checks its callback data against the digest.)
        let location = task.location.clone().unwrap_or_default();
        let stored = match location.strip_suffix(&format!("/results/{}", task.task_id)) {
            _ if !deal.0.callback.is_zero() && location.is_empty() => Ok(None),
            Some(base) => match poco_api::results::ResultStoreClient::with_http_client(
                base,
                self.results_http.clone(),
            ) {
                Ok(results) => Box::pin(results.info(task.task_id, &self.config.wallet))
                    .await
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            },
            None => Err(format!("{location:?} is not a result store location for this task")),
        };
        let refusal = match stored {
            Ok(None) if !deal.0.callback.is_zero() && location.is_empty() => None,
            Ok(Some(info)) if info.digest == digest => None,
            Ok(Some(info)) => Some(format!("the stored archive's digest is {}", info.digest)),
            Ok(None) => Some("no archive is stored there".to_owned()),
            Err(error) => Some(format!("the result store could not be asked: {error}")),
        };
        if let Some(why) = refusal {
            warn!(
                task = %task.task_id, %location, consensus = %digest, %why,
                "not finalizing: the result at the upload location is not the consensus"
            );
            let late =
                now_ms() - task.upload_asked_ms > self.config.upload_timeout.as_millis() as i64;
            if late {
                self.store.clear_upload(task.task_id).await?;
                let uploader = task.uploader.map(|w| w.to_string()).unwrap_or_default();
                self.store
                    .log(
                        task.task_id,
                        format!(
                            "the upload reported by {uploader} is not at {location} ({why}): \
                             asking another revealer"
                        ),
                    )
                    .await?;
            }
            return Ok(());
        }
        let callback = if deal.0.callback.is_zero() {
            Bytes::new()
        } else {
            task.callback_data.clone().unwrap_or_default()
        };
        let results = Bytes::from(task.location.clone().unwrap_or_default().into_bytes());
        let call = self.poco.finalize(
            IPocoTypes::Deal::from(&deal.0),
            task.index,
            digest,
            results,
            callback,
            contributors,
        );
        let mined = self.send("finalize", call).await?.block_number.unwrap_or_default();
        self.metrics.transactions.inc();
        self.store.set_stage(task.task_id, Stage::Completed, mined).await?;
        self.store.log(task.task_id, "finalized").await?;
        info!(task = %task.task_id, "finalized");
        Ok(())
    }

    async fn reopen(&self, task: &TaskRecord) -> Result<()> {
        let deal = self.deal(task.deal_id).await?;
        let view =
            self.poco.viewTask(task.task_id).call().await.map_err(poco_chain::Error::from)?;
        if view.status != TaskStatusOnChain::Revealing as u8 || !view.reveals.is_zero() {
            return Ok(());
        }
        let consensus =
            task.consensus.ok_or_else(|| Error::corrupt("revealing task without consensus"))?;
        let mut winners: Vec<Address> = self
            .store
            .replicas(task.task_id)
            .await?
            .into_iter()
            .filter(|r| {
                r.state == ReplicaState::Contributed && votes_for(r.result_hash, Some(consensus))
            })
            .map(|r| r.worker)
            .collect();
        winners.sort();
        let call =
            self.poco.reopen(IPocoTypes::Deal::from(&deal.0), task.index, consensus, winners);
        let mined = self.send("reopen", call).await?.block_number.unwrap_or_default();
        self.metrics.transactions.inc();
        self.store.set_stage(task.task_id, Stage::Open, mined).await?;
        self.store.log(task.task_id, "nobody revealed in time: reopened").await?;
        info!(task = %task.task_id, "reopened");
        Ok(())
    }

    async fn claim(&self, task: &TaskRecord) -> Result<()> {
        let deal = self.deal(task.deal_id).await?;
        let contributors = self.contributors(task.task_id).await?;
        if !self.chain_agrees(task.task_id, TaskStatusOnChain::Claimable, &contributors).await? {
            return Ok(());
        }
        let call = self.poco.claim(IPocoTypes::Deal::from(&deal.0), task.index, contributors);
        let mined = self.send("claim", call).await?.block_number.unwrap_or_default();
        self.metrics.transactions.inc();
        self.store.set_stage(task.task_id, Stage::Failed, mined).await?;
        self.store
            .log(task.task_id, "final deadline passed: claimed, the requester is refunded")
            .await?;
        info!(task = %task.task_id, "claimed");
        Ok(())
    }

    /// Runs a transaction step in the background, once at a time per task and kind; after a
    /// failure, the step waits a while before it is tried again.
    fn spawn<F>(self: &Arc<Self>, task_id: B256, kind: TxKind, step: F)
    where
        F: std::future::Future<Output = Result<()>> + Send + 'static,
    {
        let key = (task_id, kind);
        if let Some(at) = self.retry_after.lock().expect("lock").get(&key)
            && Instant::now() < *at
        {
            return;
        }
        if !self.in_flight.lock().expect("lock").insert(key) {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            let outcome = step.await;
            if let Err(error) = outcome {
                warn!(task = %task_id, ?kind, %error, "transaction step failed; will retry");
                engine.metrics.failures.inc();
                let _ = engine.store.log(task_id, format!("{kind:?} failed: {error}")).await;
                engine
                    .retry_after
                    .lock()
                    .expect("lock")
                    .insert(key, Instant::now() + Duration::from_secs(2));
            } else {
                engine.retry_after.lock().expect("lock").remove(&key);
            }
            engine.in_flight.lock().expect("lock").remove(&key);
        });
    }

    /// Sends a transaction of the pool's scheduler, only while this instance is the active
    /// one: a standby, or an instance whose lease ran out (paused, cut from the database),
    /// sends nothing.
    async fn send<P, D>(
        &self,
        what: &'static str,
        call: CallBuilder<P, D>,
    ) -> Result<TransactionReceipt>
    where
        P: Provider<Ethereum>,
        D: CallDecoder,
    {
        self.lease.check()?;
        info!(transaction = what, token = self.lease.token(), "sending a transaction");
        let receipt = self.client.send(call).await?;
        info!(transaction = what, hash = %receipt.transaction_hash, "transaction mined");
        Ok(receipt)
    }

    /// This instance starts acting now (it took the pool's lease).
    pub(crate) fn activated(&self) {
        self.started_ms.store(now_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The scheduler's address.
    pub(crate) fn scheduler(&self) -> Address {
        self.config.wallet.address()
    }
}

/// Whether a worker whose replica of a task is `mine` may be given the task again at `now_ms`:
/// only a replica it handed back, `pause` after, fewer than [`MAX_HAND_BACKS`] times. Any
/// other replica (held, computed, contributed, failed or expired) keeps the task from the
/// worker.
fn may_take_back(mine: &ReplicaRecord, now_ms: i64, pause: Duration) -> bool {
    mine.state == ReplicaState::Released
        && mine.hand_backs < MAX_HAND_BACKS
        && now_ms - mine.released_ms >= pause.as_millis() as i64
}

/// Where the result store at `store` (normalised) keeps a task's result.
fn location_in(store: &str, task_id: B256) -> String {
    format!("{store}/results/{task_id}")
}

/// Whether a contribution's vote is for the consensus: the contract groups votes by the
/// 120-bit prefix of their hash, so a hash equal to the consensus in that prefix is a vote for it.
fn votes_for(vote: Option<B256>, consensus: Option<B256>) -> bool {
    match (vote, consensus) {
        (Some(vote), Some(consensus)) => vote_key(vote) == vote_key(consensus),
        _ => false,
    }
}
