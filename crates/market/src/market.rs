//! The market itself: publishing, unpublishing and reading orders and deals, over a
//! [`Store`] and a [`ChainReader`]. The HTTP layer ([`crate::api`]) is a thin shell around it,
//! and the benchmark drives it directly.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use alloy::primitives::{Address, B256, Bytes, U256};
use poco_api::market::Unpublish;
use poco_primitives::{
    OrderKind, PocoDomain, Tag, committee,
    matching::{MAX_PRICE, MAX_TRUST},
    signature,
};

use tokio::sync::{mpsc, oneshot};
use tracing::error;

use crate::{
    chain::ChainReader,
    config::Limits,
    error::{Error, Result},
    model::{AnySigned, DealView, OrderRecord, SignatureKind, Status, kind_name, now_s},
    store::{DealQuery, OrderQuery, Page, Publication, Published, Store},
};

/// What the follower is doing, for `/health` and `/metrics`.
#[derive(Debug, Default)]
pub struct FollowerStatus {
    /// Whether this instance follows the chain.
    pub leader: AtomicBool,
    /// The first block not applied yet.
    pub checkpoint: AtomicU64,
    /// The newest confirmed block seen.
    pub confirmed_head: AtomicU64,
    /// Batches applied by this instance.
    pub batches: AtomicU64,
    /// Events applied by this instance.
    pub events: AtomicU64,
    /// Chain reorganisations this instance repaired.
    pub reorgs: AtomicU64,
    /// Blocks whose effects those reorganisations undid.
    pub undone_blocks: AtomicU64,
    /// The fork point of the last reorganisation repaired (0: none yet).
    pub last_fork_point: AtomicU64,
}

impl FollowerStatus {
    /// Confirmed blocks not applied yet.
    pub fn lag(&self) -> u64 {
        let next = self.checkpoint.load(Ordering::Relaxed);
        (self.confirmed_head.load(Ordering::Relaxed) + 1).saturating_sub(next)
    }
}

type Pending = (Publication, oneshot::Sender<Result<Published>>);

/// The orderbook service, without its HTTP shell.
pub struct Market {
    store: Arc<dyn Store>,
    chain: Arc<dyn ChainReader>,
    domain: PocoDomain,
    limits: Limits,
    writer: mpsc::Sender<Pending>,
    status: Arc<FollowerStatus>,
    categories: RwLock<HashMap<u64, u64>>,
    hints: MirrorHints,
}

impl std::fmt::Debug for Market {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Market")
            .field("backend", &self.store.backend())
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// Most publications committed in one transaction.
const PUBLISH_BATCH: usize = 512;

/// How long the writer waits for more publications before it commits a batch.
const GATHER_WINDOW: std::time::Duration = std::time::Duration::from_millis(1);

impl Market {
    /// A market over `store` and `chain`, for orders of `domain`. Starts the task that
    /// commits publications in batches; call from within a tokio runtime.
    pub fn new(
        store: Arc<dyn Store>,
        chain: Arc<dyn ChainReader>,
        domain: PocoDomain,
        limits: Limits,
    ) -> Arc<Self> {
        let (writer, pending) = mpsc::channel(4 * PUBLISH_BATCH);
        tokio::spawn(commit_publications(store.clone(), pending));
        Arc::new(Self {
            store,
            chain,
            domain,
            limits,
            writer,
            status: Arc::new(FollowerStatus::default()),
            categories: RwLock::new(HashMap::new()),
            hints: MirrorHints::default(),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The chain reader.
    pub fn chain(&self) -> &Arc<dyn ChainReader> {
        &self.chain
    }

    /// The EIP-712 domain of orders.
    pub fn domain(&self) -> &PocoDomain {
        &self.domain
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The follower's status.
    pub fn follower_status(&self) -> &Arc<FollowerStatus> {
        &self.status
    }

    /// Validates and publishes a signed order. Publishing an order already in the book (or
    /// filled or cancelled) changes nothing and returns it; publishing a dead or unpublished
    /// order validates it again and puts it back.
    pub async fn publish(&self, order: AnySigned) -> Result<Published> {
        match self.publish_checked(order).await {
            Err(Error::InsufficientStake { account, needed, available, what }) => {
                Err(self.shortfall(account, needed, available, what).await)
            }
            outcome => outcome,
        }
    }

    /// A balance short of an order at the confirmed head: [`Error::BalanceNotConfirmed`] when
    /// the newest block's covers it (a deposit just made: the client retries), else the
    /// refusal as it is.
    async fn shortfall(
        &self,
        account: Address,
        needed: U256,
        available: U256,
        what: &'static str,
    ) -> Error {
        let refusal = Error::InsufficientStake { account, needed, available, what };
        let (Ok(head), Ok(confirmed)) =
            (self.chain.head().await, self.chain.confirmed_head().await)
        else {
            return refusal;
        };
        if head <= confirmed {
            return refusal;
        }
        match self.chain.balance(account, head).await {
            Ok(newest) if newest >= needed => {
                Error::BalanceNotConfirmed { account, confirmations: head - confirmed }
            }
            _ => refusal,
        }
    }

    async fn publish_checked(&self, order: AnySigned) -> Result<Published> {
        self.check_values(&order).await?;
        let hash = order.hash(&self.domain);
        match self.publication(&order, hash).await {
            Ok((publication, balance_hinted)) => {
                // Kept only when a remembered balance was trusted: the one case of a retry.
                let retry = balance_hinted.then(|| publication.clone());
                match (self.commit(publication).await, retry) {
                    // The remembered balance was higher than the mirror's: the mirror (or,
                    // when it is behind, the chain) decides.
                    (Err(Error::InsufficientStake { .. }), Some(publication)) => {
                        if let Some((account, per_task)) = publication.coverage {
                            self.hints.forget_balance(account);
                            let wanted = per_task.saturating_mul(order.volume());
                            self.ensure_balance(account, wanted).await?;
                        }
                        self.commit(publication).await
                    }
                    (outcome, _) => outcome,
                }
            }
            // The same order, already in the book or done with, is answered as it is even
            // when it would not pass again (its asset changed hands since, say).
            Err(refusal) => match self.store.order(hash).await? {
                Some(existing) if !existing.status.can_reopen() && existing.order == order => {
                    Ok(Published::Existing(existing))
                }
                _ => Err(refusal),
            },
        }
    }

    /// Checks the signer and the stake of an order; returns what to commit and whether the
    /// stake check trusted a remembered balance.
    async fn publication(&self, order: &AnySigned, hash: B256) -> Result<(Publication, bool)> {
        let kind = order.kind();
        let recovered =
            (!order.sign().is_empty()).then(|| signature::recover_signer(hash, order.sign()));
        let owner = match kind {
            OrderKind::Request => order.roles().requester,
            _ => {
                let signer = recovered.as_ref().and_then(|r| r.as_ref().ok()).copied();
                self.asset_owner(kind, order.asset(), signer).await?
            }
        };
        let signature = self.check_signature(order, hash, owner, recovered).await?;
        let mut balance_hinted = false;
        let coverage = match order.coverage_per_task() {
            Some(per_task) => {
                let wanted = per_task.saturating_mul(order.volume());
                if self.hints.balance(owner).is_some_and(|balance| balance >= wanted) {
                    balance_hinted = true;
                } else {
                    self.ensure_balance(owner, wanted).await?;
                }
                Some((owner, per_task))
            }
            None => None,
        };
        let record = OrderRecord {
            hash,
            order: order.clone(),
            status: Status::Open,
            remaining: U256::ZERO,
            owner,
            signature,
            published_at: 0,
            updated_at: 0,
            reason: None,
        };
        let publication = Publication {
            record,
            owner_of: (kind != OrderKind::Request).then_some(owner),
            coverage,
            cap: self.limits.max_open_orders_per_wallet,
        };
        Ok((publication, balance_hinted))
    }

    /// Hands a checked publication to the batch writer and waits for its outcome.
    async fn commit(&self, publication: Publication) -> Result<Published> {
        let (reply, outcome) = oneshot::channel();
        self.writer
            .send((publication, reply))
            .await
            .map_err(|_| Error::Internal("the publication writer stopped".into()))?;
        outcome.await.map_err(|_| Error::Internal("the publication writer stopped".into()))?
    }

    /// Refuses values no match can ever accept.
    async fn check_values(&self, order: &AnySigned) -> Result<()> {
        if order.volume().is_zero() {
            return Err(Error::invalid("volume", "must be at least 1"));
        }
        match order {
            AnySigned::App(o) if o.appprice > MAX_PRICE => {
                return Err(Error::invalid("appprice", "must be below 2^96 nRLC"));
            }
            AnySigned::Dataset(o) if o.datasetprice > MAX_PRICE => {
                return Err(Error::invalid("datasetprice", "must be below 2^96 nRLC"));
            }
            AnySigned::Workerpool(o) if o.workerpoolprice > MAX_PRICE => {
                return Err(Error::invalid("workerpoolprice", "must be below 2^96 nRLC"));
            }
            AnySigned::Request(o) => {
                if o.requester.is_zero() {
                    return Err(Error::invalid("requester", "must be the signer's address"));
                }
                if o.trust > MAX_TRUST {
                    return Err(Error::invalid("trust", "must be at most 2^64 - 1"));
                }
                if Tag(o.tag).is_superset_of(Tag::COMMITTEE) {
                    if committee::committee_size(o.trust).is_none() {
                        return Err(Error::invalid(
                            "trust",
                            format!(
                                "a committee request serves trust up to {}",
                                committee::MAX_COMMITTEE_TRUST
                            ),
                        ));
                    }
                    if o.workerpool.is_zero() {
                        return Err(Error::invalid(
                            "workerpool",
                            "a committee request must name its workerpool: a committee is as \
                             honest as the pool's members, so the requester chooses the pool \
                             (GET /bestmatch proposes one)",
                        ));
                    }
                }
            }
            _ => {}
        }
        if matches!(order, AnySigned::Workerpool(_) | AnySigned::Request(_)) {
            let category = order.category();
            if self.category_timeref(category).await?.is_none() {
                return Err(Error::invalid(
                    "category",
                    format!("category {category} does not exist (GET /categories lists them)"),
                ));
            }
        }
        Ok(())
    }

    /// The time reference of a category, from the mirror.
    pub async fn category_timeref(&self, category: U256) -> Result<Option<u64>> {
        let Ok(id) = u64::try_from(category) else { return Ok(None) };
        if let Some(timeref) = self.categories.read().expect("not poisoned").get(&id) {
            return Ok(Some(*timeref));
        }
        let categories = self.store.categories().await?;
        let mut cache = self.categories.write().expect("not poisoned");
        cache.extend(categories);
        Ok(cache.get(&id).copied())
    }

    /// Forgets what this instance remembers of the mirror (owners, balances, categories): a
    /// chain reorganisation changed it under them.
    pub(crate) fn forget_mirror_hints(&self) {
        self.hints.forget_all();
        self.categories.write().expect("not poisoned").clear();
    }

    /// Every category, id and time reference.
    pub async fn categories(&self) -> Result<Vec<(u64, u64)>> {
        let categories = self.store.categories().await?;
        self.categories.write().expect("not poisoned").extend(categories.iter().copied());
        Ok(categories)
    }

    /// The current owner of an asset, from the mirror. The remembered owner is trusted only
    /// when it is the order's `signer`: any other answer is read again, so a transfer the
    /// mirror has seen is never missed.
    async fn asset_owner(
        &self,
        kind: OrderKind,
        asset: Address,
        signer: Option<Address>,
    ) -> Result<Address> {
        if let Some(owner) = self.hints.owner(kind, asset)
            && Some(owner) == signer
        {
            return Ok(owner);
        }
        if let Some(entry) = self.store.asset(asset).await?
            && entry.kind == kind
        {
            self.hints.remember_owner(kind, asset, entry.owner);
            return Ok(entry.owner);
        }
        if !asset.is_zero() && !self.chain.owner(kind, asset).await?.is_zero() {
            return Err(Error::NotIndexedYet { asset });
        }
        Err(Error::AssetNotRegistered { kind: kind_name(kind), asset })
    }

    /// Checks that `owner` signed (or presigned) the order; `recovered` is the ECDSA signer
    /// of a non-empty signature.
    async fn check_signature(
        &self,
        order: &AnySigned,
        hash: B256,
        owner: Address,
        recovered: Option<Result<Address, poco_primitives::Error>>,
    ) -> Result<SignatureKind> {
        let sign = order.sign();
        let Some(recovered) = recovered else {
            let presigner = self.chain.presigner(hash).await?;
            if presigner == owner && !owner.is_zero() {
                return Ok(SignatureKind::Presigned);
            }
            return Err(Error::InvalidSignature(format!(
                "the order has no signature and {owner} has not presigned it on-chain: sign it, or \
                 presign it with manage{}Order",
                capitalized(order.kind())
            )));
        };
        if recovered.as_ref().is_ok_and(|signer| *signer == owner) {
            return Ok(SignatureKind::Eoa);
        }
        if self.chain.is_contract(owner).await?
            && self.chain.verify_signature(owner, hash, Bytes::copy_from_slice(sign)).await?
        {
            return Ok(SignatureKind::Contract);
        }
        match recovered {
            Ok(signer) if order.kind() != OrderKind::Request => {
                Err(Error::NotOwner { signer, asset: order.asset(), owner })
            }
            Ok(signer) => Err(Error::InvalidSignature(format!(
                "the request is signed by {signer}, not by its requester {owner}"
            ))),
            Err(e) => Err(Error::InvalidSignature(format!(
                "{e}; sign the order's EIP-712 hash with {owner}'s key"
            ))),
        }
    }

    /// Makes sure the mirror holds `account`'s balance, and reads it from the chain again
    /// when the mirror's is below `wanted` (it may have grown since).
    async fn ensure_balance(&self, account: Address, wanted: U256) -> Result<U256> {
        if let Some((balance, _)) = self.store.balance(account).await?
            && balance >= wanted
        {
            self.hints.remember_balance(account, balance);
            return Ok(balance);
        }
        let block = self.chain.confirmed_head().await?;
        let balance = self.chain.balance(account, block).await?;
        self.store.store_balance(account, balance, block).await?;
        self.hints.remember_balance(account, balance);
        Ok(balance)
    }

    /// The free balance of `account`, cached or read.
    pub async fn balance(&self, account: Address) -> Result<U256> {
        match self.store.balance(account).await? {
            Some((balance, _)) => Ok(balance),
            None => self.ensure_balance(account, U256::MAX).await,
        }
    }

    /// Takes an open order out of the book on its owner's signed authorization.
    pub async fn unpublish(&self, hash: B256, request: &Unpublish) -> Result<OrderRecord> {
        let now = now_s();
        if request.expiry <= now {
            return Err(Error::AuthorizationExpired(format!("expired at {}", request.expiry)));
        }
        let longest = self.limits.max_authorization_lifetime.as_secs();
        if request.expiry > now + longest {
            return Err(Error::AuthorizationExpired(format!(
                "expires more than {longest} s from now: choose a closer expiry"
            )));
        }
        let Some(record) = self.store.order(hash).await? else {
            return Err(Error::NotFound(format!("order {hash}")));
        };
        let digest = Unpublish::digest(&self.domain, hash, request.expiry, request.nonce);
        let owner = record.owner;
        let by_owner = signature::is_signed_by(owner, digest, &request.sign)
            || (!request.sign.is_empty()
                && self.chain.is_contract(owner).await?
                && self.chain.verify_signature(owner, digest, request.sign.clone()).await?);
        if !by_owner {
            return Err(Error::NotOrderOwner { owner });
        }
        self.store.unpublish(hash, digest, request.expiry).await
    }

    /// One order, any status.
    pub async fn order(&self, kind: OrderKind, hash: B256) -> Result<OrderRecord> {
        match self.store.order(hash).await? {
            Some(record) if record.order.kind() == kind => Ok(record),
            _ => Err(Error::NotFound(format!("{} order {hash}", kind_name(kind)))),
        }
    }

    /// A page of open orders.
    pub async fn orders(&self, query: OrderQuery) -> Result<Page<OrderRecord>> {
        self.store.orders(query).await
    }

    /// One deal.
    pub async fn deal(&self, deal_id: B256) -> Result<DealView> {
        self.store.deal(deal_id).await?.ok_or_else(|| Error::NotFound(format!("deal {deal_id}")))
    }

    /// A page of deals.
    pub async fn deals(&self, query: DealQuery) -> Result<Page<DealView>> {
        self.store.deals(query).await
    }

    /// The workers of a workerpool's indexed deals, with their outcomes and latest scores; its
    /// members; how its tasks ended.
    pub async fn pool_workers(
        &self,
        workerpool: alloy::primitives::Address,
    ) -> Result<poco_api::market::PoolWorkers> {
        self.store.pool_workers(workerpool).await
    }

    /// A worker's scores, newest first: `(block, score)`.
    pub async fn scores(
        &self,
        worker: alloy::primitives::Address,
        limit: u32,
    ) -> Result<Vec<(u64, u64)>> {
        self.store.scores(worker, limit).await
    }

    /// What the chain said of an account, newest first, as the follower applied it.
    pub async fn account_events(
        &self,
        account: alloy::primitives::Address,
        before: Option<(u64, u64)>,
        limit: u32,
    ) -> Result<Vec<poco_api::market::AccountEvent>> {
        self.store.account_events(account, before, limit).await
    }

    /// The indexed tasks of a deal, by index; the deal must be indexed.
    pub async fn deal_tasks(&self, deal_id: B256) -> Result<Vec<poco_api::market::DealTask>> {
        self.deal(deal_id).await?;
        self.store.deal_tasks(deal_id).await
    }

    /// What the chain said of a task, as the follower applied it.
    pub async fn task_events(&self, task_id: B256) -> Result<Vec<poco_api::market::TaskEvent>> {
        self.store.task_events(task_id).await
    }

    /// The deal of a task and the task's index, for the first
    /// [`TASKS_INDEXED_PER_DEAL`](crate::store::TASKS_INDEXED_PER_DEAL) tasks of each deal.
    pub async fn task(&self, task_id: B256) -> Result<(DealView, U256)> {
        self.store.task(task_id).await?.ok_or_else(|| {
            Error::NotFound(format!(
                "task {task_id}: in no indexed deal (the market indexes the first {} tasks of \
                 each deal)",
                crate::store::TASKS_INDEXED_PER_DEAL
            ))
        })
    }
}

/// What publications remember of the chain mirror: asset owners and free balances, so that
/// a publication usually reads nothing before its batched write. They are hints only: every
/// batch reads owners and balances again in its own transaction and decides on those, so a
/// stale hint can cost a refusal's retry, never let a wrong order in.
#[derive(Debug, Default)]
struct MirrorHints {
    owners: RwLock<HashMap<(OrderKind, Address), Address>>,
    balances: RwLock<HashMap<Address, U256>>,
}

/// Most entries of each hint map; past it, a map starts again empty.
const MAX_HINTS: usize = 1 << 20;

impl MirrorHints {
    fn owner(&self, kind: OrderKind, asset: Address) -> Option<Address> {
        self.owners.read().expect("not poisoned").get(&(kind, asset)).copied()
    }

    fn remember_owner(&self, kind: OrderKind, asset: Address, owner: Address) {
        remember(&self.owners, (kind, asset), owner);
    }

    fn balance(&self, account: Address) -> Option<U256> {
        self.balances.read().expect("not poisoned").get(&account).copied()
    }

    fn remember_balance(&self, account: Address, balance: U256) {
        remember(&self.balances, account, balance);
    }

    fn forget_balance(&self, account: Address) {
        self.balances.write().expect("not poisoned").remove(&account);
    }

    fn forget_all(&self) {
        self.owners.write().expect("not poisoned").clear();
        self.balances.write().expect("not poisoned").clear();
    }
}

fn remember<K: std::hash::Hash + Eq, V>(map: &RwLock<HashMap<K, V>>, key: K, value: V) {
    let mut map = map.write().expect("not poisoned");
    if map.len() >= MAX_HINTS && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

fn capitalized(kind: OrderKind) -> &'static str {
    match kind {
        OrderKind::App => "App",
        OrderKind::Dataset => "Dataset",
        OrderKind::Workerpool => "Workerpool",
        OrderKind::Request => "Request",
    }
}

/// Commits publications in batches: whatever is waiting goes in one transaction.
async fn commit_publications(store: Arc<dyn Store>, mut pending: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while pending.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        // Publications checked at the same moment arrive a few microseconds apart: gathering
        // them for a moment makes fewer, larger transactions, which write each index page
        // once for many orders.
        let gather = tokio::time::sleep(GATHER_WINDOW);
        tokio::pin!(gather);
        while batch.len() < PUBLISH_BATCH {
            let room = PUBLISH_BATCH - batch.len();
            tokio::select! {
                () = &mut gather => break,
                received = pending.recv_many(&mut batch, room) => {
                    if received == 0 {
                        break;
                    }
                }
            }
        }
        let (publications, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        match store.publish(publications).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(cause) => {
                error!(target: "poco_market::store", error = %cause, "a publication batch failed");
                for reply in replies {
                    let _ =
                        reply.send(Err(Error::Internal("the publication was not stored".into())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;

    #[test]
    fn unpublish_authorizations_bind_order_expiry_and_nonce() {
        let domain = PocoDomain::new(31337, Address::repeat_byte(1));
        let signer = PrivateKeySigner::random();
        let hash = B256::repeat_byte(2);
        let request = Unpublish::sign(&signer, &domain, hash, 100, B256::repeat_byte(3)).unwrap();
        let digest = Unpublish::digest(&domain, hash, 100, B256::repeat_byte(3));
        assert!(signature::is_signed_by(signer.address(), digest, &request.sign));
        for other in [
            Unpublish::digest(&domain, B256::repeat_byte(4), 100, B256::repeat_byte(3)),
            Unpublish::digest(&domain, hash, 101, B256::repeat_byte(3)),
            Unpublish::digest(&domain, hash, 100, B256::repeat_byte(4)),
            Unpublish::digest(
                &PocoDomain::new(1, Address::repeat_byte(1)),
                hash,
                100,
                B256::repeat_byte(3),
            ),
        ] {
            assert_ne!(other, digest);
        }
    }
}
