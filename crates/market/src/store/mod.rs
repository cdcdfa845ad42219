//! Storage: one [`Store`] trait, two backends (SQLite, PostgreSQL) over sqlx.
//!
//! The store holds the book (`orders`), the mirror of the chain the book is checked against
//! (`assets`: every registered asset and its owner; `consumed`: Poco's consumed volumes;
//! `accounts`: free balances read from the chain; `categories`), the indexed `deals` and their
//! first tasks (`deal_tasks`, deleted with their deal), the used unpublish authorizations and
//! the follower's checkpoint.
//!
//! Consistency. The mirror is what the chain said as of the checkpoint block: the follower
//! updates it, the book and the checkpoint in one transaction ([`Store::apply_batch`]), and a
//! publication computes the order's remaining volume and checks its owner, cap and stake in
//! the transaction that inserts it ([`Store::publish`]). Writes are serialized (SQLite: one
//! writer connection; PostgreSQL: a transaction-scoped advisory lock shared by every
//! instance), so a publication and the events that concern it are applied in one order or
//! the other, never interleaved, and nothing is counted twice.
//!
//! Chain reorganisations. Every mirrored row remembers the block of the chain's last change to
//! it (`consumed`, `assets`, `categories`; `accounts.as_of` for balances; `orders.chain_block`
//! for a status the chain gave an order), and the follower records the last block of every
//! batch it applies, with its hash, among the last few ([`Store::apply_followed`],
//! [`Store::recent_blocks`]). When the chain replaced blocks from a fork point on,
//! [`Store::rollback_targets`] names the rows the replaced blocks changed; the follower reads
//! them from the chain as they were at the fork point's parent, and [`Store::rollback`] brings
//! the mirror back to that state in one transaction: deals of replaced blocks are removed,
//! consumed volumes, registry entries and balances are those read, categories created since
//! are gone, and every order whose status or volume depended on what changed is decided again
//! (an order a replaced match filled is open again with its volume). The follower then applies
//! the new chain from the fork point.
//!
//! Both backends run the same SQL, written once over a private backend trait (`$n`
//! placeholders; SQLite is handed anonymous `?` placeholders instead, which it binds in linear
//! time); each backend adds its own connection setup, write lock, leadership lock and event
//! delivery (SQLite: in-process; PostgreSQL: `LISTEN`/`NOTIFY`, so that events reach the
//! WebSocket clients of every instance). The rules a publication must pass, and what the
//! chain's consumption does to an order, are decided apart from any SQL.

use std::fmt;

use alloy::primitives::{Address, B256, U256};
use futures::future::BoxFuture;
use poco_primitives::{OrderKind, Tag};
use tokio::sync::broadcast;

use crate::{
    error::{Error, Result},
    model::{DealView, MarketEvent, OrderRecord, kind_code, tag_words},
};

mod postgres;
mod rules;
mod sql;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A future returned by the store.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T>>;

/// The market's storage. Object safe: the service holds an `Arc<dyn Store>`.
///
/// Implemented by [`SqliteStore`] and [`PostgresStore`], which share its SQL.
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// The events committed from now on, by any instance sharing the database.
    fn subscribe(&self) -> broadcast::Receiver<MarketEvent>;

    /// One order, whatever its status.
    fn order(&self, hash: B256) -> StoreFuture<'_, Option<OrderRecord>>;

    /// A page of open orders.
    fn orders(&self, query: OrderQuery) -> StoreFuture<'_, Page<OrderRecord>>;

    /// Open orders per kind, in [`crate::model::KINDS`] order.
    fn open_counts(&self) -> StoreFuture<'_, [u64; 4]>;

    /// Publishes orders in one transaction; each gets its own outcome.
    fn publish(&self, batch: Vec<Publication>) -> StoreFuture<'_, Vec<Result<Published>>>;

    /// Takes an open order out of the book, recording the authorization so it cannot be
    /// replayed.
    fn unpublish(
        &self,
        hash: B256,
        authorization: B256,
        expiry: u64,
    ) -> StoreFuture<'_, OrderRecord>;

    /// The mirrored registry entry of `asset`.
    fn asset(&self, asset: Address) -> StoreFuture<'_, Option<AssetEntry>>;

    /// The cached free balance of `account` and the block it was read at.
    fn balance(&self, account: Address) -> StoreFuture<'_, Option<(U256, u64)>>;

    /// Caches a balance read at block `as_of`, unless a newer one is cached.
    fn store_balance(&self, account: Address, balance: U256, as_of: u64) -> StoreFuture<'_, ()>;

    /// Of `accounts`, those whose balance is cached (every account with an open workerpool or
    /// request order is).
    fn watched_accounts(&self, accounts: Vec<Address>) -> StoreFuture<'_, Vec<Address>>;

    /// Category id → time reference, for every category seen.
    fn categories(&self) -> StoreFuture<'_, Vec<(u64, u64)>>;

    /// The first block the follower has not applied yet, if it ever ran.
    fn checkpoint(&self) -> StoreFuture<'_, Option<u64>>;

    /// Applies a batch of chain events and moves the checkpoint, in one transaction. Returns
    /// false, changing nothing, when the stored checkpoint is not `batch.from` (another
    /// instance applied it, or the caller is behind).
    fn apply_batch(&self, batch: ChainBatch) -> StoreFuture<'_, bool>;

    /// Applies a batch the follower read, as [`Store::apply_batch`] does, and records its last
    /// block (`batch.next - 1`, whose hash is `tip`) among the `window` most recent ones, in the
    /// same transaction.
    fn apply_followed(&self, batch: ChainBatch, tip: B256, window: usize) -> StoreFuture<'_, bool>;

    /// The last blocks of the batches the follower applied (number, hash), oldest first.
    fn recent_blocks(&self) -> StoreFuture<'_, Vec<(u64, B256)>>;

    /// The rows a rollback to `fork_point` must read from the chain again: those the chain
    /// changed at `fork_point` or later. `None`: a re-sync, which reads every cached balance
    /// again (the rest of the mirror starts from nothing).
    fn rollback_targets(&self, fork_point: Option<u64>) -> StoreFuture<'_, RollbackTargets>;

    /// Undoes the effects of the blocks from `rollback.fork_point` on and moves the checkpoint
    /// there, in one transaction. Returns false, changing nothing, when the stored checkpoint
    /// is not `rollback.checkpoint`.
    fn rollback(&self, rollback: Rollback) -> StoreFuture<'_, bool>;

    /// Everything the store derived from the chain, in a fixed order: two stores that followed
    /// the same chain (and hold the same orders) dump the same.
    fn dump(&self) -> StoreFuture<'_, ChainDump>;

    /// Tries to become the one instance that follows the chain. The leadership lasts as long
    /// as the returned guard.
    fn lead(&self) -> StoreFuture<'_, Option<Leadership>>;

    /// One deal.
    fn deal(&self, deal_id: B256) -> StoreFuture<'_, Option<DealView>>;

    /// A page of deals, newest first.
    fn deals(&self, query: DealQuery) -> StoreFuture<'_, Page<DealView>>;

    /// The deal of a task and the task's index, if the task is among the first
    /// [`TASKS_INDEXED_PER_DEAL`] of an indexed deal.
    fn task(&self, task_id: B256) -> StoreFuture<'_, Option<(DealView, U256)>>;

    /// The indexed tasks of a deal, by index (empty for a deal not indexed).
    fn deal_tasks(&self, deal_id: B256) -> StoreFuture<'_, Vec<poco_api::market::DealTask>>;

    /// The events of a task the follower applied, in chain order (none for a task the chain
    /// said nothing of yet).
    fn task_events(&self, task_id: B256) -> StoreFuture<'_, Vec<poco_api::market::TaskEvent>>;

    /// The workers that contributed to tasks of `workerpool`'s indexed deals, with how their
    /// contributions ended and their latest score, most accurate first; its members; how its
    /// indexed deals' tasks ended.
    fn pool_workers(&self, workerpool: Address) -> StoreFuture<'_, poco_api::market::PoolWorkers>;

    /// A worker's scores, newest first, at most `limit`: `(block, score)`.
    fn scores(&self, worker: Address, limit: u32) -> StoreFuture<'_, Vec<(u64, u64)>>;

    /// What the chain said of an account, newest first: its movements (deposits,
    /// withdrawals, memberships, bonds) and the task events naming it (contributions and
    /// their outcomes), at most `limit`, before `before` (`(block, log index)`) when given.
    fn account_events(
        &self,
        account: Address,
        before: Option<(u64, u64)>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<poco_api::market::AccountEvent>>;
}

/// How many tasks of each deal the task index holds: the first ones, by index. A deal's
/// volume is whatever its orders allowed, and a match may cost nothing: the index of one
/// deal is bounded so that no deal can make the market write without end. The later tasks
/// of a larger deal are not found by [`Store::task`]; clients find them on the chain.
pub const TASKS_INDEXED_PER_DEAL: u64 = 1_000;

/// Proof of being the follower; dropping it gives leadership up.
pub struct Leadership {
    _guard: Box<dyn Send + Sync>,
}

impl Leadership {
    pub(crate) fn new(guard: impl Send + Sync + 'static) -> Self {
        Self { _guard: Box::new(guard) }
    }
}

impl fmt::Debug for Leadership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Leadership")
    }
}

/// A registry entry as mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetEntry {
    /// App, dataset or workerpool.
    pub kind: OrderKind,
    /// The current owner.
    pub owner: Address,
    /// Workerpools: the worker stake ratio.
    pub worker_stake_ratio: u8,
    /// Workerpools: the scheduler reward ratio.
    pub scheduler_reward_ratio: u8,
    /// Workerpools: the members of the active set, whom a committee deal would draw from.
    pub active_members: u64,
}

/// A page of results and the cursor of the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts, if there is one.
    pub next: Option<String>,
}

/// How a query treats one role column (app, dataset, workerpool, requester).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoleFilter {
    /// No condition.
    #[default]
    Any,
    /// Exactly this address.
    Is(Address),
    /// This address or zero (unrestricted).
    AllowedFor(Address),
}

/// A query of open orders of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderQuery {
    /// The kind.
    pub kind: OrderKind,
    /// The order's asset (a request's app).
    pub asset: Option<Address>,
    /// The signer.
    pub owner: Option<Address>,
    /// The category.
    pub category: Option<u64>,
    /// Lowest trust (workerpool orders).
    pub min_trust: Option<u64>,
    /// Highest trust (requests).
    pub max_trust: Option<u64>,
    /// Bits that must be set.
    pub required_tag: Option<Tag>,
    /// Bits that may be set (no other).
    pub allowed_tag: Option<Tag>,
    /// App column.
    pub app: RoleFilter,
    /// Dataset column.
    pub dataset: RoleFilter,
    /// Workerpool column.
    pub workerpool: RoleFilter,
    /// Requester column.
    pub requester: RoleFilter,
    /// Highest price (sell orders), or lowest workerpool max price (requests).
    pub price_limit: Option<U256>,
    /// Lowest remaining volume.
    pub min_remaining: Option<U256>,
    /// Resume after this cursor.
    pub after: Option<String>,
    /// Page size.
    pub limit: u32,
}

impl OrderQuery {
    /// Every open order of `kind`, `limit` at a time.
    pub fn new(kind: OrderKind, limit: u32) -> Self {
        Self {
            kind,
            asset: None,
            owner: None,
            category: None,
            min_trust: None,
            max_trust: None,
            required_tag: None,
            allowed_tag: None,
            app: RoleFilter::Any,
            dataset: RoleFilter::Any,
            workerpool: RoleFilter::Any,
            requester: RoleFilter::Any,
            price_limit: None,
            min_remaining: None,
            after: None,
            limit,
        }
    }
}

/// A query of deals.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DealQuery {
    /// The requester.
    pub requester: Option<Address>,
    /// The app.
    pub app: Option<Address>,
    /// The dataset.
    pub dataset: Option<Address>,
    /// The workerpool.
    pub workerpool: Option<Address>,
    /// The workerpool's owner at match time.
    pub scheduler: Option<Address>,
    /// The app's owner at match time.
    pub app_owner: Option<Address>,
    /// The dataset's owner at match time.
    pub dataset_owner: Option<Address>,
    /// The beneficiary.
    pub beneficiary: Option<Address>,
    /// The category.
    pub category: Option<u64>,
    /// Resume after this cursor.
    pub after: Option<String>,
    /// Page size.
    pub limit: u32,
}

/// An order to publish and what its insertion must still check against the mirror.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The order as it will be stored (status open; remaining is computed in the store).
    pub record: OrderRecord,
    /// For app, dataset and workerpool orders: the mirrored owner must still be the signer.
    pub owner_of: Option<Address>,
    /// For workerpool and request orders: the account whose cached free balance must cover
    /// `per_task × remaining`.
    pub coverage: Option<(Address, U256)>,
    /// The most open orders of this kind the signer may have.
    pub cap: u64,
}

/// What a publication did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// A new order in the book.
    Created(OrderRecord),
    /// A dead or unpublished order back in the book.
    Reopened(OrderRecord),
    /// The order was already known: nothing changed.
    Existing(OrderRecord),
}

impl Published {
    /// The order.
    pub fn record(&self) -> &OrderRecord {
        match self {
            Self::Created(r) | Self::Reopened(r) | Self::Existing(r) => r,
        }
    }
}

/// A chain event as the store applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEvent {
    /// A registry token moved: creation (`from` zero) or change of owner.
    AssetTransfer {
        /// Which registry.
        kind: OrderKind,
        /// The asset.
        asset: Address,
        /// Previous owner (zero on creation).
        from: Address,
        /// New owner.
        to: Address,
    },
    /// A workerpool's policy changed.
    PolicyUpdate {
        /// The workerpool.
        workerpool: Address,
        /// The new worker stake ratio.
        worker_stake_ratio: u8,
        /// The new scheduler reward ratio.
        scheduler_reward_ratio: u8,
    },
    /// A worker entered (`joined`) or left (left, or was expelled from) a workerpool's active
    /// set.
    Membership {
        /// The workerpool.
        workerpool: Address,
        /// Whether the active set grew by one (or shrank by one).
        joined: bool,
    },
    /// `OrdersMatched`: volume consumed from each order.
    OrdersMatched {
        /// The deal.
        deal_id: B256,
        /// The app order.
        app_hash: B256,
        /// The dataset order (zero without dataset).
        dataset_hash: B256,
        /// The workerpool order.
        workerpool_hash: B256,
        /// The request order.
        request_hash: B256,
        /// The deal's volume.
        volume: U256,
    },
    /// `DealCreated`: the whole deal.
    DealCreated {
        /// The deal id.
        deal_id: B256,
        /// The deal.
        deal: Box<poco_primitives::Deal>,
        /// The request's parameters.
        params: String,
    },
    /// `Closed*Order`: the order's volume is consumed in full.
    Closed {
        /// The order hash.
        hash: B256,
    },
    /// A task's lifecycle event.
    Task {
        /// The task.
        task_id: B256,
        /// What happened.
        kind: crate::model::TaskEventKind,
        /// The workerpool (initialize) or the worker the event names.
        account: Option<Address>,
        /// The 32-byte value it carries (result hash, consensus, digest, reward).
        word: Option<B256>,
        /// The result location of a finalize.
        results: Option<alloy::primitives::Bytes>,
    },
    /// A movement of an account beside tasks (deposit, withdrawal, membership, bond).
    Account {
        /// The account.
        account: Address,
        /// What happened.
        kind: crate::model::AccountEventKind,
        /// The workerpool of a membership or a bond.
        workerpool: Option<Address>,
        /// The amount moved.
        amount: Option<U256>,
    },
    /// A worker's score as the chain holds it at the event's block (read after the events of
    /// a batch that proved it right or wrong).
    Score {
        /// The worker.
        worker: Address,
        /// Its score.
        score: u64,
    },
    /// `CreateCategory`.
    Category {
        /// Its id.
        id: u64,
        /// Its time reference, in seconds.
        timeref: u64,
    },
}

/// A [`ChainEvent`] and where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedChainEvent {
    /// The event.
    pub event: ChainEvent,
    /// Its block.
    pub block: u64,
    /// Its transaction.
    pub transaction: B256,
    /// Its log index in the block.
    pub log_index: u64,
}

/// Events of a contiguous block range, to apply with the balances read for the accounts they
/// touch.
#[derive(Debug, Clone)]
pub struct ChainBatch {
    /// First block of the range.
    pub from: u64,
    /// First block after the range: the new checkpoint.
    pub next: u64,
    /// The decoded events, in chain order.
    pub events: Vec<LocatedChainEvent>,
    /// Fresh free balances of the watched accounts the events touch.
    pub balances: Vec<(Address, U256)>,
    /// The block those balances were read at.
    pub balance_block: u64,
}

/// What a rollback must read from the chain again, as it was at the fork point's parent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollbackTargets {
    /// Orders whose consumed volume (or closing) the chain changed at the fork point or later.
    pub consumed: Vec<B256>,
    /// Registered assets the chain changed then (owner, policy, members), and their kind.
    pub assets: Vec<(Address, OrderKind)>,
    /// Accounts whose cached balance was read at the fork point or later.
    pub accounts: Vec<Address>,
}

/// How to bring the store back to the state of a block, after a chain reorganisation replaced
/// the blocks after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    /// The checkpoint the store must be at: the first block the follower had not applied when
    /// it found the reorganisation.
    pub checkpoint: u64,
    /// The first block whose effects are undone: the new checkpoint.
    pub fork_point: u64,
    /// The block the state returns to (`fork_point - 1`), where [`Rollback::consumed`],
    /// [`Rollback::assets`] and [`Rollback::balances`] were read. `None`: the reorganisation
    /// is deeper than the blocks the store remembers, and the mirror starts again from nothing
    /// (the follower re-syncs from the deployment's block).
    pub common: Option<u64>,
    /// For each of [`RollbackTargets::consumed`], `viewConsumed` at the common block.
    pub consumed: Vec<(B256, U256)>,
    /// For each of [`RollbackTargets::assets`], its registry entry at the common block (`None`:
    /// not registered then).
    pub assets: Vec<(Address, Option<AssetEntry>)>,
    /// Free balances at [`Rollback::balance_block`]: of [`RollbackTargets::accounts`] at the
    /// common block, or of every cached account for a re-sync.
    pub balances: Vec<(Address, U256)>,
    /// The block the balances were read at.
    pub balance_block: u64,
}

/// What a store derived from the chain, in a fixed order (see [`Store::dump`]). Blocks and
/// times of changes are left out: a store that repaired itself after a reorganisation and one
/// that followed the new chain from the start learned the same facts at different moments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainDump {
    /// Registered assets, by address.
    pub assets: Vec<(Address, AssetEntry)>,
    /// Consumed volumes and closings, by order hash.
    pub consumed: Vec<(B256, U256, bool)>,
    /// Categories and their time references, by id.
    pub categories: Vec<(u64, u64)>,
    /// Cached free balances, by account.
    pub balances: Vec<(Address, U256)>,
    /// Deals, in chain order.
    pub deals: Vec<DealView>,
    /// Every order's status and remaining volume, by hash.
    pub orders: Vec<(B256, crate::model::Status, U256)>,
    /// Task events, in chain order: `(block, log index, task, kind code)`.
    pub task_events: Vec<(u64, u64, B256, i16)>,
    /// Account events, in chain order: `(block, log index, account, kind code)`.
    pub account_events: Vec<(u64, u64, Address, i16)>,
    /// Workers' scores: `(account, block, score)`.
    pub scores: Vec<(Address, u64, u64)>,
}

/// The key of the transaction-scoped advisory lock that serializes writers (PostgreSQL).
pub(crate) const WRITE_LOCK_KEY: i64 = 0x706f_636f_6d6b_7401; // "pocomkt" + 1
/// The key of the follower's session-level advisory lock (PostgreSQL).
pub(crate) const LEADER_LOCK_KEY: i64 = 0x706f_636f_6d6b_7402;

/// Opens the store `url` names: `postgres://…` or `sqlite:…`.
pub async fn open(url: &str, connections: u32) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(PostgresStore::connect(url, connections).await?))
    } else if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::open(url, connections).await?))
    } else {
        Err(Error::Config(format!(
            "unsupported database URL {url:?}: use postgres://… or sqlite://…"
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding shared by both backends.

/// A bind parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Bytes(Vec<u8>),
    Int(i64),
    Text(String),
    /// A NULL text.
    Null,
    /// A NULL integer.
    NullInt,
    /// A NULL BLOB/BYTEA.
    NullBytes,
}

impl From<Option<Vec<u8>>> for Param {
    fn from(bytes: Option<Vec<u8>>) -> Self {
        bytes.map_or(Self::NullBytes, Self::Bytes)
    }
}

impl Param {
    /// An integer, or NULL.
    pub(crate) fn from_opt_int(value: Option<i64>) -> Self {
        value.map_or(Self::NullInt, Self::Int)
    }
}

impl From<Address> for Param {
    fn from(address: Address) -> Self {
        Self::Bytes(address_bytes(address))
    }
}

impl From<B256> for Param {
    fn from(hash: B256) -> Self {
        Self::Bytes(hash_bytes(hash))
    }
}

/// A word: 32 bytes, big-endian, so that they sort as the numbers do.
impl From<U256> for Param {
    fn from(value: U256) -> Self {
        Self::Bytes(word_bytes(value))
    }
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<String> for Param {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<Option<String>> for Param {
    fn from(text: Option<String>) -> Self {
        text.map_or(Self::Null, Self::Text)
    }
}

/// SQL text with `$n` placeholders and their parameters.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) params: Vec<Param>,
}

impl Sql {
    fn new(text: &str) -> Self {
        Self { text: text.to_owned(), params: vec![] }
    }

    /// Adds the parameter of the next placeholder (`$1` first).
    fn arg(mut self, param: impl Into<Param>) -> Self {
        self.params.push(param.into());
        self
    }

    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Adds a parameter and returns its placeholder.
    fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    /// The statement with each `$n` replaced by an anonymous `?`, and its parameters in the
    /// order the placeholders appear (repeated where a placeholder is). SQLite finds a named
    /// or numbered parameter by scanning the list of names, so binding `n` of them costs
    /// `n²` steps, which dominates a multi-row insert of a few thousand values; anonymous
    /// parameters have no names to scan.
    pub(crate) fn anonymous(&self) -> (String, Vec<&Param>) {
        let mut text = String::with_capacity(self.text.len());
        let mut params = Vec::with_capacity(self.params.len());
        let mut rest = self.text.as_str();
        while let Some(at) = rest.find('$') {
            text.push_str(&rest[..at]);
            let digits = rest[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
            let number = rest[at + 1..at + 1 + digits].parse::<usize>().ok();
            match number.and_then(|n| n.checked_sub(1)).and_then(|i| self.params.get(i)) {
                Some(param) => {
                    text.push('?');
                    params.push(param);
                }
                None => text.push_str(&rest[at..at + 1 + digits]),
            }
            rest = &rest[at + 1 + digits..];
        }
        text.push_str(rest);
        (text, params)
    }
}

pub(crate) fn address_bytes(address: Address) -> Vec<u8> {
    address.as_slice().to_vec()
}

pub(crate) fn word_bytes(value: U256) -> Vec<u8> {
    value.to_be_bytes::<32>().to_vec()
}

pub(crate) fn hash_bytes(hash: B256) -> Vec<u8> {
    hash.as_slice().to_vec()
}

pub(crate) fn to_address(bytes: &[u8]) -> Result<Address> {
    <[u8; 20]>::try_from(bytes)
        .map(Address::from)
        .map_err(|_| Error::Corrupt(format!("an address of {} bytes", bytes.len())))
}

pub(crate) fn to_word(bytes: &[u8]) -> Result<U256> {
    <[u8; 32]>::try_from(bytes)
        .map(U256::from_be_bytes)
        .map_err(|_| Error::Corrupt(format!("a word of {} bytes", bytes.len())))
}

pub(crate) fn to_hash(bytes: &[u8]) -> Result<B256> {
    <[u8; 32]>::try_from(bytes)
        .map(B256::from)
        .map_err(|_| Error::Corrupt(format!("a hash of {} bytes", bytes.len())))
}

/// A number stored in a BIGINT, clamped to its range.
pub(crate) fn clamp_i64(value: U256) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The position of an order in the book, encoded as an opaque cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrderCursor {
    pub(crate) price: [u8; 32],
    pub(crate) published_at: i64,
    pub(crate) hash: B256,
}

impl OrderCursor {
    pub(crate) fn of(record: &OrderRecord) -> Self {
        Self {
            price: crate::model::sort_key(&record.order),
            published_at: record.published_at,
            hash: record.hash,
        }
    }

    pub(crate) fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(73);
        bytes.push(b'o');
        bytes.extend_from_slice(&self.price);
        bytes.extend_from_slice(&self.published_at.to_be_bytes());
        bytes.extend_from_slice(self.hash.as_slice());
        hex::encode(bytes)
    }

    pub(crate) fn decode(text: &str) -> Result<Self> {
        let invalid = || Error::InvalidQuery("cursor: not a cursor this market returned".into());
        let bytes = hex::decode(text).map_err(|_| invalid())?;
        if bytes.len() != 73 || bytes[0] != b'o' {
            return Err(invalid());
        }
        Ok(Self {
            price: bytes[1..33].try_into().map_err(|_| invalid())?,
            published_at: i64::from_be_bytes(bytes[33..41].try_into().map_err(|_| invalid())?),
            hash: B256::from_slice(&bytes[41..73]),
        })
    }
}

/// The position of a deal, encoded as an opaque cursor.
pub(crate) fn encode_deal_cursor(block: u64, log_index: u64) -> String {
    let mut bytes = vec![b'd'];
    bytes.extend_from_slice(&block.to_be_bytes());
    bytes.extend_from_slice(&log_index.to_be_bytes());
    hex::encode(bytes)
}

pub(crate) fn decode_deal_cursor(text: &str) -> Result<(i64, i64)> {
    let invalid = || Error::InvalidQuery("cursor: not a cursor this market returned".into());
    let bytes = hex::decode(text).map_err(|_| invalid())?;
    if bytes.len() != 17 || bytes[0] != b'd' {
        return Err(invalid());
    }
    let block = u64::from_be_bytes(bytes[1..9].try_into().map_err(|_| invalid())?);
    let index = u64::from_be_bytes(bytes[9..17].try_into().map_err(|_| invalid())?);
    Ok((i64::try_from(block).map_err(|_| invalid())?, i64::try_from(index).map_err(|_| invalid())?))
}

pub(crate) const ORDER_COLUMNS: &str =
    "hash, kind, status, owner, remaining, sign_kind, published_at, updated_at, reason, body";

/// The SQL of an order query: open orders of one kind, best first.
pub(crate) fn order_query_sql(query: &OrderQuery) -> Result<Sql> {
    let mut sql = Sql::new(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE status = 0"));
    let kind = sql.bind(Param::Int(kind_code(query.kind).into()));
    sql.push(&format!(" AND kind = {kind}"));
    if let Some(asset) = query.asset {
        let p = sql.bind(Param::Bytes(address_bytes(asset)));
        sql.push(&format!(" AND asset = {p}"));
    }
    if let Some(owner) = query.owner {
        let p = sql.bind(Param::Bytes(address_bytes(owner)));
        sql.push(&format!(" AND owner = {p}"));
    }
    if let Some(category) = query.category {
        let p = sql.bind(Param::Int(i64::try_from(category).unwrap_or(i64::MAX)));
        // With an asset, its index is the narrow one: `+` keeps SQLite's planner (which has
        // no statistics) from walking a whole category in price order instead.
        let column = if query.asset.is_some() { "+category" } else { "category" };
        sql.push(&format!(" AND {column} = {p}"));
    }
    if let Some(trust) = query.min_trust {
        let p = sql.bind(Param::Int(i64::try_from(trust).unwrap_or(i64::MAX)));
        sql.push(&format!(" AND trust >= {p}"));
    }
    if let Some(trust) = query.max_trust {
        let p = sql.bind(Param::Int(i64::try_from(trust).unwrap_or(i64::MAX)));
        sql.push(&format!(" AND trust <= {p}"));
    }
    if let Some(tag) = query.required_tag {
        for (index, word) in tag_words(tag).into_iter().enumerate() {
            if word != 0 {
                let p = sql.bind(Param::Int(word));
                sql.push(&format!(" AND (tag{index} & {p}) = {p}"));
            }
        }
    }
    if let Some(tag) = query.allowed_tag {
        for (index, word) in tag_words(!tag).into_iter().enumerate() {
            if word != 0 {
                let p = sql.bind(Param::Int(word));
                sql.push(&format!(" AND (tag{index} & {p}) = 0"));
            }
        }
    }
    for (column, filter) in [
        ("app", query.app),
        ("dataset", query.dataset),
        ("workerpool", query.workerpool),
        ("requester", query.requester),
    ] {
        match filter {
            RoleFilter::Any => {}
            RoleFilter::Is(address) => {
                let p = sql.bind(Param::Bytes(address_bytes(address)));
                sql.push(&format!(" AND {column} = {p}"));
            }
            RoleFilter::AllowedFor(address) => {
                let zero = sql.bind(Param::Bytes(address_bytes(Address::ZERO)));
                let p = sql.bind(Param::Bytes(address_bytes(address)));
                sql.push(&format!(" AND {column} IN ({zero}, {p})"));
            }
        }
    }
    if let Some(limit) = query.price_limit {
        let key = if query.kind == OrderKind::Request { !limit } else { limit };
        let p = sql.bind(Param::Bytes(word_bytes(key)));
        sql.push(&format!(" AND price <= {p}"));
    }
    if let Some(volume) = query.min_remaining {
        let p = sql.bind(Param::Bytes(word_bytes(volume)));
        sql.push(&format!(" AND remaining >= {p}"));
    }
    if let Some(cursor) = &query.after {
        let cursor = OrderCursor::decode(cursor)?;
        let price = sql.bind(Param::Bytes(cursor.price.to_vec()));
        let time = sql.bind(Param::Int(cursor.published_at));
        let hash = sql.bind(Param::Bytes(hash_bytes(cursor.hash)));
        sql.push(&format!(" AND (price, published_at, hash) > ({price}, {time}, {hash})"));
    }
    let limit = sql.bind(Param::Int(i64::from(query.limit) + 1));
    sql.push(&format!(" ORDER BY price, published_at, hash LIMIT {limit}"));
    Ok(sql)
}

/// The SQL of a deal query, newest first.
pub(crate) fn deal_query_sql(query: &DealQuery) -> Result<Sql> {
    let mut sql = Sql::new("SELECT body, block, log_index FROM deals WHERE 1 = 1");
    for (column, value) in [
        ("requester", query.requester),
        ("app", query.app),
        ("dataset", query.dataset),
        ("workerpool", query.workerpool),
        ("scheduler", query.scheduler),
        ("app_owner", query.app_owner),
        ("dataset_owner", query.dataset_owner),
        ("beneficiary", query.beneficiary),
    ] {
        if let Some(address) = value {
            let p = sql.bind(Param::Bytes(address_bytes(address)));
            sql.push(&format!(" AND {column} = {p}"));
        }
    }
    if let Some(category) = query.category {
        let p = sql.bind(Param::Int(i64::try_from(category).unwrap_or(i64::MAX)));
        sql.push(&format!(" AND category = {p}"));
    }
    if let Some(cursor) = &query.after {
        let (block, index) = decode_deal_cursor(cursor)?;
        let block = sql.bind(Param::Int(block));
        let index = sql.bind(Param::Int(index));
        sql.push(&format!(" AND (block, log_index) < ({block}, {index})"));
    }
    let limit = sql.bind(Param::Int(i64::from(query.limit) + 1));
    sql.push(&format!(" ORDER BY block DESC, log_index DESC LIMIT {limit}"));
    Ok(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_placeholders_follow_the_text() {
        let mut sql = Sql::new("SELECT 1 WHERE a = ");
        let a = sql.bind(Param::Int(1));
        let b = sql.bind(Param::Text("b".into()));
        sql.push(&format!("{a} AND (b > {b} OR (b = {b} AND c IN ({a}, $9))) AND d = '$'"));
        let (text, params) = sql.anonymous();
        assert_eq!(
            text,
            "SELECT 1 WHERE a = ? AND (b > ? OR (b = ? AND c IN (?, $9))) AND d = '$'"
        );
        let b = Param::Text("b".into());
        assert_eq!(params, [&Param::Int(1), &b, &b, &Param::Int(1)]);
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let cursor = OrderCursor {
            price: [7; 32],
            published_at: 1_700_000_000_123,
            hash: B256::repeat_byte(9),
        };
        assert_eq!(OrderCursor::decode(&cursor.encode()).unwrap(), cursor);
        assert_eq!(OrderCursor::decode("zz").unwrap_err().code(), "invalid_query");
        assert_eq!(
            OrderCursor::decode(&encode_deal_cursor(1, 2)).unwrap_err().code(),
            "invalid_query"
        );
        assert_eq!(decode_deal_cursor(&encode_deal_cursor(5, 6)).unwrap(), (5, 6));
    }

    #[test]
    fn queries_bind_every_value() {
        let mut query = OrderQuery::new(OrderKind::Workerpool, 20);
        query.category = Some(2);
        query.min_trust = Some(4);
        query.required_tag = Some(Tag::TEE | Tag::GPU);
        query.app = RoleFilter::AllowedFor(Address::repeat_byte(1));
        let sql = order_query_sql(&query).unwrap();
        assert!(sql.text.contains("category = $2"), "{}", sql.text);
        assert!(sql.text.contains("(tag0 & $4) = $4"), "{}", sql.text);
        assert!(sql.text.contains("app IN ($5, $6)"), "{}", sql.text);
        assert_eq!(sql.params.len(), 7);
        assert_eq!(sql.params[3], Param::Int(0x101));
    }
}
