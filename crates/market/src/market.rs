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

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::SignerSync,
    sol,
    sol_types::{Eip712Domain, SolStruct},
};
use poco_primitives::{
    OrderKind, PocoDomain,
    matching::{MAX_PRICE, MAX_TRUST},
    signature,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::error;

use crate::{
    chain::ChainReader,
    config::Limits,
    error::{Error, Result},
    model::{AnyOrder, DealView, OrderRecord, SignatureKind, Status, kind_name, now_s},
    store::{DealQuery, OrderQuery, Page, Publication, Published, Store},
};

sol! {
    /// What an order's owner signs (EIP-712, domain `poco-market` version 1, the chain id and
    /// the Poco contract) to take the order out of the book. The nonce makes each
    /// authorization single-use; the expiry bounds how long the market remembers it.
    #[derive(Debug, PartialEq, Eq)]
    struct UnpublishOrder {
        /// The order to unpublish.
        bytes32 orderHash;
        /// Unix time (seconds) after which the authorization is refused.
        uint256 expiry;
        /// Any value; the same (order, expiry, nonce) is accepted once.
        bytes32 nonce;
    }
}

/// The body of an unpublish request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unpublish {
    /// Unix time (seconds) after which the authorization is refused; at most the market's
    /// `max_authorization_lifetime` from now.
    pub expiry: u64,
    /// A 32-byte nonce.
    pub nonce: B256,
    /// The owner's signature of [`UnpublishOrder`] (ECDSA, or ERC-1271 for a contract owner).
    pub sign: Bytes,
}

impl Unpublish {
    /// The EIP-712 domain of market authorizations on the chain of `domain`.
    pub fn eip712_domain(domain: &PocoDomain) -> Eip712Domain {
        Eip712Domain::new(
            Some("poco-market".into()),
            Some("1".into()),
            Some(U256::from(domain.chain_id())),
            Some(domain.verifying_contract()),
            None,
        )
    }

    /// The digest the owner signs to unpublish `order_hash`.
    pub fn digest(domain: &PocoDomain, order_hash: B256, expiry: u64, nonce: B256) -> B256 {
        UnpublishOrder { orderHash: order_hash, expiry: U256::from(expiry), nonce }
            .eip712_signing_hash(&Self::eip712_domain(domain))
    }

    /// An authorization to unpublish `order_hash`, signed by `signer`.
    pub fn sign<S: SignerSync + ?Sized>(
        signer: &S,
        domain: &PocoDomain,
        order_hash: B256,
        expiry: u64,
        nonce: B256,
    ) -> Result<Self> {
        let digest = Self::digest(domain, order_hash, expiry, nonce);
        let sign = signature::sign_hash(signer, digest)
            .map_err(|e| Error::Internal(format!("signing: {e}")))?;
        Ok(Self { expiry, nonce, sign })
    }
}

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
    pub async fn publish(&self, order: AnyOrder) -> Result<Published> {
        self.check_values(&order).await?;
        let hash = order.hash(&self.domain);
        // The same order with the same signature: nothing to check again. (Another signature
        // of a known order is checked like a new one, then answered with the stored order.)
        if let Some(existing) = self.store.order(hash).await?
            && !existing.status.can_reopen()
            && existing.order == order
        {
            return Ok(Published::Existing(existing));
        }
        let kind = order.kind();
        let owner = match kind {
            OrderKind::Request => order.roles().requester,
            _ => self.asset_owner(kind, order.asset()).await?,
        };
        let signature = self.check_signature(&order, hash, owner).await?;
        let coverage = match order.coverage_per_task() {
            Some(per_task) => {
                self.ensure_balance_cached(owner, per_task.saturating_mul(order.volume())).await?;
                Some((owner, per_task))
            }
            None => None,
        };
        let record = OrderRecord {
            hash,
            order,
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
        let (reply, outcome) = oneshot::channel();
        self.writer
            .send((publication, reply))
            .await
            .map_err(|_| Error::Internal("the publication writer stopped".into()))?;
        outcome.await.map_err(|_| Error::Internal("the publication writer stopped".into()))?
    }

    /// Refuses values no match can ever accept.
    async fn check_values(&self, order: &AnyOrder) -> Result<()> {
        if order.volume().is_zero() {
            return Err(Error::invalid("volume", "must be at least 1"));
        }
        match order {
            AnyOrder::App(o) if o.appprice > MAX_PRICE => {
                return Err(Error::invalid("appprice", "must be below 2^96 nRLC"));
            }
            AnyOrder::Dataset(o) if o.datasetprice > MAX_PRICE => {
                return Err(Error::invalid("datasetprice", "must be below 2^96 nRLC"));
            }
            AnyOrder::Workerpool(o) if o.workerpoolprice > MAX_PRICE => {
                return Err(Error::invalid("workerpoolprice", "must be below 2^96 nRLC"));
            }
            AnyOrder::Request(o) => {
                if o.requester.is_zero() {
                    return Err(Error::invalid("requester", "must be the signer's address"));
                }
                if o.trust > MAX_TRUST {
                    return Err(Error::invalid("trust", "must be at most 2^64 - 1"));
                }
            }
            _ => {}
        }
        if matches!(order, AnyOrder::Workerpool(_) | AnyOrder::Request(_)) {
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

    /// Every category, id and time reference.
    pub async fn categories(&self) -> Result<Vec<(u64, u64)>> {
        let categories = self.store.categories().await?;
        self.categories.write().expect("not poisoned").extend(categories.iter().copied());
        Ok(categories)
    }

    /// The current owner of an asset, from the mirror.
    async fn asset_owner(&self, kind: OrderKind, asset: Address) -> Result<Address> {
        if let Some(entry) = self.store.asset(asset).await?
            && entry.kind == kind
        {
            return Ok(entry.owner);
        }
        if !asset.is_zero() && !self.chain.owner(kind, asset).await?.is_zero() {
            return Err(Error::NotIndexedYet { asset });
        }
        Err(Error::AssetNotRegistered { kind: kind_name(kind), asset })
    }

    /// Checks that `owner` signed (or presigned) the order.
    async fn check_signature(
        &self,
        order: &AnyOrder,
        hash: B256,
        owner: Address,
    ) -> Result<SignatureKind> {
        let sign = order.sign();
        if sign.is_empty() {
            let presigner = self.chain.presigner(hash).await?;
            if presigner == owner && !owner.is_zero() {
                return Ok(SignatureKind::Presigned);
            }
            return Err(Error::InvalidSignature(format!(
                "the order has no signature and {owner} has not presigned it on-chain: sign it, or \
                 presign it with manage{}Order",
                capitalized(order.kind())
            )));
        }
        let recovered = signature::recover_signer(hash, sign);
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

    /// Makes sure `account`'s balance is cached, and fresh if the cache says it is below
    /// `wanted` (it may have grown since).
    async fn ensure_balance_cached(&self, account: Address, wanted: U256) -> Result<U256> {
        if let Some((balance, _)) = self.store.balance(account).await?
            && balance >= wanted
        {
            return Ok(balance);
        }
        let block = self.chain.confirmed_head().await?;
        let balance = self.chain.balance(account, block).await?;
        self.store.store_balance(account, balance, block).await?;
        Ok(balance)
    }

    /// The free balance of `account`, cached or read.
    pub async fn balance(&self, account: Address) -> Result<U256> {
        match self.store.balance(account).await? {
            Some((balance, _)) => Ok(balance),
            None => self.ensure_balance_cached(account, U256::MAX).await,
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
