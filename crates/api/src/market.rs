//! The market's side of the wire: orders, deals and indexed tasks as the market serves them,
//! the events it streams on `/ws`, the bodies of unpublish and best-match, and its typed client
//! ([`MarketClient`]).

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::SignerSync,
    sol,
    sol_types::{Eip712Domain, SolStruct},
};
use poco_primitives::{Deal, OrderKind, PocoDomain, signature};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::http::Refusal;

/// The kind's name in JSON and URLs (`app`, `dataset`, `workerpool`, `request`).
pub fn kind_name(kind: OrderKind) -> &'static str {
    match kind {
        OrderKind::App => "app",
        OrderKind::Dataset => "dataset",
        OrderKind::Workerpool => "workerpool",
        OrderKind::Request => "request",
    }
}

/// The kind named `name`.
pub fn kind_from_name(name: &str) -> Option<OrderKind> {
    [OrderKind::App, OrderKind::Dataset, OrderKind::Workerpool, OrderKind::Request]
        .into_iter()
        .find(|kind| kind_name(*kind) == name)
}

/// Where an order stands in the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In the book, with volume left.
    Open,
    /// All its volume was matched.
    Filled,
    /// Closed on-chain by its owner.
    Cancelled,
    /// Can no longer be matched: its asset changed hands or its signer's stake no longer
    /// covers it. It may be published again.
    Dead,
    /// Taken out of the book by its owner. It may be published again.
    Unpublished,
}

impl Status {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Filled => "filled",
            Self::Cancelled => "cancelled",
            Self::Dead => "dead",
            Self::Unpublished => "unpublished",
        }
    }

    /// Whether publishing the same order again puts it back in the book.
    pub fn can_reopen(self) -> bool {
        matches!(self, Self::Dead | Self::Unpublished)
    }
}

/// How the order's signature was checked at publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureKind {
    /// ECDSA by an externally owned account.
    Eoa,
    /// ERC-1271 by a contract owner, checked with `verifySignature`.
    Contract,
    /// Presigned on-chain (`manage*Order` SIGN), empty `sign`.
    Presigned,
}

/// An order as served: the signed order and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    /// The order hash.
    pub order_hash: B256,
    /// `app`, `dataset`, `workerpool` or `request`.
    pub kind: String,
    /// The status.
    pub status: Status,
    /// Volume left, a decimal string.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub remaining: U256,
    /// The signer.
    #[serde(with = "poco_primitives::serde_helpers::address")]
    pub owner: Address,
    /// How the signature was checked.
    pub signature: SignatureKind,
    /// Publication time, milliseconds since the Unix epoch.
    pub published_at: i64,
    /// Last change, milliseconds since the Unix epoch.
    pub updated_at: i64,
    /// Why the order is dead or cancelled.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// The signed order, as published.
    pub order: serde_json::Value,
}

/// A deal as indexed from `OrdersMatched` and `DealCreated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DealView {
    /// The deal id.
    pub deal_id: B256,
    /// The deal, field for field as the contract emitted it.
    pub deal: Deal,
    /// The request's parameters.
    pub params: String,
    /// Tasks of the deal.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub volume: U256,
    /// The app order's hash.
    pub app_hash: B256,
    /// The dataset order's hash (zero without a dataset).
    pub dataset_hash: B256,
    /// The workerpool order's hash.
    pub workerpool_hash: B256,
    /// The request order's hash.
    pub request_hash: B256,
    /// The block of the match.
    pub block: u64,
    /// The transaction of the match.
    pub transaction: B256,
    /// The `DealCreated` log's index in its block.
    pub log_index: u64,
}

/// A page of deals (`GET /deals`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DealPage {
    /// The deals, newest first.
    pub deals: Vec<DealView>,
    /// How many deals this page has.
    pub count: usize,
    /// The cursor of the next page (absent on the last).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub next_cursor: Option<String>,
}

/// A task as the market's task index knows it (`GET /tasks/{taskId}`): its deal, and its
/// index in the deal. The market indexes the first tasks of each deal only (a bound of its
/// own, documented with its API); the later tasks of a larger deal are answered 404.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexedTask {
    /// The task id: `keccak256(dealId ‖ index)`.
    pub task_id: B256,
    /// Its index in the deal (request-relative, from `deal.botFirst`), a decimal string.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub index: U256,
    /// Its deal, as `GET /deals/{dealId}` serves it.
    pub deal: DealView,
}

/// The tasks of a deal the market indexed (`GET /deals/{dealId}/tasks`): its first ones, in
/// index order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DealTasks {
    /// The deal.
    pub deal_id: B256,
    /// Its indexed tasks, by index.
    pub tasks: Vec<DealTask>,
}

/// A task of a deal: its id and its index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DealTask {
    /// The task id.
    pub task_id: B256,
    /// Its index in the deal, a decimal string.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub index: U256,
}

/// What the chain said of a task (`GET /tasks/{taskId}/events`), in chain order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEvents {
    /// The task id.
    pub task_id: B256,
    /// Its events, oldest first.
    pub events: Vec<TaskEvent>,
}

/// One event of a task's lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEvent {
    /// What happened: `initialize`, `contribute`, `consensus`, `reveal`, `reopen`,
    /// `finalize`, `claimed`, `accurate_contribution` (stake back, reward paid),
    /// `faulty_contribution` (stake seized, score cut) or `silent_seat`.
    pub kind: String,
    /// The block it happened in.
    pub block: u64,
    /// Its transaction.
    pub transaction: B256,
    /// Its place in the block.
    pub log_index: u64,
    /// The account it names: the workerpool (`initialize`), else the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Address>,
    /// The value it carries: the result hash of a contribution, the consensus, the revealed
    /// digest, or the reward of an accurate contribution (a decimal string of nRLC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The result location a finalize published (as text when it is UTF-8, else hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<String>,
}

/// The workers of a workerpool (`GET /workerpools/{address}/workers`): every account that
/// contributed to a task of its indexed deals, with how its contributions ended and its latest
/// score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolWorkers {
    /// The workerpool.
    pub workerpool: Address,
    /// Its workers, most accurate first.
    pub workers: Vec<PoolWorker>,
    /// Its members (the workers bonded to sit on its committees), each with where its
    /// membership stands, in the order they joined.
    #[serde(default)]
    pub members: Vec<PoolMember>,
    /// How its indexed deals' tasks ended.
    #[serde(default)]
    pub tasks: PoolTasks,
}

/// A member of a workerpool, as its membership events tell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolMember {
    /// The worker.
    pub worker: Address,
    /// `active`, `left` (its bond frozen a while), `expelled` (a penalty taken from its bond)
    /// or `released` (its bond back in its balance).
    pub status: String,
    /// The block of that last change.
    pub since: u64,
    /// What remains of its bond in the pool, a decimal string of nRLC.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub bond: U256,
}

/// How many tasks of a workerpool's indexed deals completed, and how many failed (claimed
/// past their final deadline).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolTasks {
    /// Finalized.
    pub completed: u64,
    /// Claimed: the sponsor refunded, the scheduler's stake seized.
    pub failed: u64,
}

/// A worker of a workerpool, as its contributions to the pool's tasks tell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolWorker {
    /// The worker.
    pub worker: Address,
    /// Its contributions to the pool's tasks.
    pub contributions: u64,
    /// Those proved right: stake back, reward paid.
    pub accurate: u64,
    /// Those proved wrong: stake seized.
    pub faulty: u64,
    /// Its latest score the market read, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u64>,
}

/// A worker's scores over time (`GET /accounts/{address}/scores`), newest first: its score
/// after each block whose events proved it right or wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scores {
    /// The worker.
    pub account: Address,
    /// Its scores, newest first.
    pub scores: Vec<ScoreAt>,
}

/// A worker's score after a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreAt {
    /// The block.
    pub block: u64,
    /// The score.
    pub score: u64,
}

/// What the chain said of an account (`GET /accounts/{address}/events`), newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountEvents {
    /// The account.
    pub account: Address,
    /// Its events, newest first.
    pub events: Vec<AccountEvent>,
    /// Where the next page starts (`before=` this), when there may be more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

/// One event of an account's history: a movement of its own (`deposit`, `withdraw`,
/// `member_joined`, `member_left`, `member_expelled`, `bond_released`), or an event of a task
/// that names it (a [`TaskEvent`] kind, with the task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountEvent {
    /// What happened.
    pub kind: String,
    /// The block it happened in.
    pub block: u64,
    /// Its transaction.
    pub transaction: B256,
    /// Its place in the block.
    pub log_index: u64,
    /// The task, for a task's event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<B256>,
    /// The workerpool of a membership or a bond.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workerpool: Option<Address>,
    /// The amount moved (a deposit, a withdrawal, a penalty, a bond, a reward), a decimal
    /// string of nRLC; or the hash a task's event carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// An account's funds in the protocol (`GET /accounts/{address}`), as the chain held them at
/// the market's confirmed head: what a block a reorganisation may still replace says does not
/// show yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountFunds {
    /// The account.
    pub account: Address,
    /// The block read.
    pub block: u64,
    /// Its free balance: what it can withdraw or spend, a decimal string of nRLC.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub balance: U256,
    /// What the protocol holds of it (the price of a requester's unfinished tasks, a
    /// scheduler's and a worker's stakes, a member's bond), a decimal string of nRLC.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub frozen: U256,
}

/// What an address is in the registries (`GET /assets/{address}`), as the chain held it at
/// the market's confirmed head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetView {
    /// The asset.
    pub address: Address,
    /// The block read.
    pub block: u64,
    /// Its owner, who sells it.
    pub owner: Address,
    /// What its registry records of it; `kind` says which registry.
    #[serde(flatten)]
    pub record: AssetRecord,
}

/// An asset's registry record. Byte strings its owner chose (`multiaddr`, `mrenclave`) are
/// given as text when they are UTF-8, as `0x` hexadecimal otherwise: a reader shows them as
/// text, never as markup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", rename_all_fields = "camelCase")]
pub enum AssetRecord {
    /// An app.
    App {
        /// Its name.
        name: String,
        /// Its execution format (`WASM`, `PYTHON`...).
        app_type: String,
        /// Where workers fetch it.
        multiaddr: String,
        /// The sha256 of what workers run.
        checksum: B256,
        /// Its enclave metadata; empty for a standard app.
        mrenclave: String,
    },
    /// A dataset.
    Dataset {
        /// Its name.
        name: String,
        /// Where workers fetch it.
        multiaddr: String,
        /// The sha256 of the file (of the encrypted file for a confidential dataset).
        checksum: B256,
    },
    /// A workerpool.
    Workerpool {
        /// Its description.
        description: String,
        /// Its workers' stake, in percent of the workerpool price.
        worker_stake_ratio: u64,
        /// The scheduler's share of the workers' reward, in percent.
        scheduler_reward_ratio: u64,
    },
}

/// `bytes` as text when they are UTF-8, as `0x` hexadecimal otherwise.
pub fn text_or_hex(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => alloy::primitives::hex::encode_prefixed(bytes),
    }
}

/// What happened to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEventType {
    /// Put in the book.
    Published,
    /// Its remaining volume changed and it stays open.
    Updated,
    /// Its whole volume was matched.
    Filled,
    /// Closed on-chain.
    Cancelled,
    /// No longer matchable (transfer of the asset, stake no longer covered).
    Dead,
    /// Taken out by its owner.
    Unpublished,
}

impl OrderEventType {
    /// The event a transition to `status` is.
    pub fn for_status(status: Status) -> Self {
        match status {
            Status::Open => Self::Updated,
            Status::Filled => Self::Filled,
            Status::Cancelled => Self::Cancelled,
            Status::Dead => Self::Dead,
            Status::Unpublished => Self::Unpublished,
        }
    }
}

/// An event streamed on `/ws`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MarketEvent {
    /// An order changed.
    Order {
        /// What happened.
        event: OrderEventType,
        /// The order after the change.
        order: Box<OrderView>,
    },
    /// A deal was created on-chain, or a chain reorganisation undid it.
    Deal {
        /// `deal_created`, or `deal_removed`.
        event: DealEventType,
        /// The deal.
        deal: Box<DealView>,
    },
}

/// What happened to a deal: it was created, or undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DealEventType {
    /// Created by `matchOrders`.
    DealCreated,
    /// The block of its `matchOrders` was replaced by a chain reorganisation: the deal does not
    /// exist on the chain as it is now (it comes back with a `deal_created` if the new chain
    /// matches it again).
    DealRemoved,
}

impl MarketEvent {
    /// The event of an order after `event`.
    pub fn order(event: OrderEventType, order: OrderView) -> Self {
        Self::Order { event, order: Box::new(order) }
    }

    /// The event of a new deal.
    pub fn deal(deal: DealView) -> Self {
        Self::Deal { event: DealEventType::DealCreated, deal: Box::new(deal) }
    }

    /// The event of a deal a chain reorganisation undid.
    pub fn deal_removed(deal: DealView) -> Self {
        Self::Deal { event: DealEventType::DealRemoved, deal: Box::new(deal) }
    }
}

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
    ) -> poco_primitives::Result<Self> {
        let digest = Self::digest(domain, order_hash, expiry, nonce);
        let sign = signature::sign_hash(signer, digest)?;
        Ok(Self { expiry, nonce, sign })
    }
}

/// Prices of a match, per task and in total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceBreakdown {
    /// App price per task.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub app: U256,
    /// Dataset price per task.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub dataset: U256,
    /// Workerpool price per task.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub workerpool: U256,
    /// Sum of the three.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub per_task: U256,
    /// What the requester pays for the deal's volume.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub total: U256,
    /// What the scheduler stakes for the deal's volume.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub scheduler_stake: U256,
}

/// The answer of a best-match query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BestMatch {
    /// Whether a set was found.
    pub found: bool,
    /// The app order.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub apporder: Option<OrderView>,
    /// The dataset order (none without a dataset).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub datasetorder: Option<OrderView>,
    /// The workerpool order.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub workerpoolorder: Option<OrderView>,
    /// The request order to sign (zero salt, empty params: set them, then sign).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub requestorder: Option<serde_json::Value>,
    /// Tasks the deal would have.
    #[serde(skip_serializing_if = "Option::is_none", default, with = "optional_uint256")]
    pub volume: Option<U256>,
    /// What it costs.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub price: Option<PriceBreakdown>,
    /// Why nothing matches (empty when found).
    pub explanation: Vec<String>,
}

mod optional_uint256 {
    use alloy::primitives::U256;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Option<U256>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => s.serialize_str(&value.to_string()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<U256>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| poco_primitives::serde_helpers::uint256::parse(&t))
            .transpose()
            .map_err(serde::de::Error::custom)
    }
}

impl BestMatch {
    /// The answer when nothing matches, and why.
    pub fn not_found(explanation: Vec<String>) -> Self {
        Self {
            found: false,
            apporder: None,
            datasetorder: None,
            workerpoolorder: None,
            requestorder: None,
            volume: None,
            price: None,
            explanation,
        }
    }
}

/// A page of orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPage {
    /// The orders, best first.
    pub orders: Vec<OrderView>,
    /// How many orders this page has.
    pub count: usize,
    /// The cursor of the next page (absent on the last).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub next_cursor: Option<String>,
}

/// What can go wrong talking to a market.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The market could not be reached, or its answer could not be read to the end.
    #[error("cannot reach the market at {url}")]
    Unreachable {
        /// The market's URL.
        url: String,
        /// Why (the transport's causes).
        cause: String,
    },
    /// The market refused the request (its JSON error body).
    #[error("the market refused: {message} ({code})")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Its stable error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The market answered something this client does not understand.
    #[error("unexpected answer from the market: {0}")]
    UnexpectedAnswer(String),
}

/// A client of one market.
#[derive(Debug, Clone)]
pub struct MarketClient {
    url: String,
    http: reqwest::Client,
}

impl MarketClient {
    /// A client of the market at `url`.
    pub fn new(url: &str) -> Self {
        let http = crate::http::client(crate::http::REQUEST_TIMEOUT);
        Self { url: url.trim_end_matches('/').to_owned(), http }
    }

    /// The market's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn answer<T: DeserializeOwned>(
        &self,
        response: reqwest::Result<reqwest::Response>,
    ) -> Result<T, Error> {
        Ok(self.answer_with_status(response).await?.1)
    }

    /// [`answer`](Self::answer), with the HTTP status of a success.
    async fn answer_with_status<T: DeserializeOwned>(
        &self,
        response: reqwest::Result<reqwest::Response>,
    ) -> Result<(reqwest::StatusCode, T), Error> {
        let down = |error: reqwest::Error| Error::Unreachable {
            url: self.url.clone(),
            cause: poco_primitives::error::causes(&error),
        };
        let response = response.map_err(down)?;
        let status = response.status();
        let body = response.bytes().await.map_err(down)?;
        if !status.is_success() {
            let refusal = Refusal::read(status, &body);
            return Err(Error::Refused {
                status: refusal.status,
                code: refusal.code,
                message: refusal.message,
            });
        }
        let value =
            serde_json::from_slice(&body).map_err(|e| Error::UnexpectedAnswer(e.to_string()))?;
        Ok((status, value))
    }

    /// Publishes a signed order (its JSON); returns the order as the market stores it.
    pub async fn publish<T: Serialize>(
        &self,
        kind: OrderKind,
        signed: &T,
    ) -> Result<OrderView, Error> {
        Ok(self.publish_new(kind, signed).await?.0)
    }

    /// [`publish`](Self::publish), saying whether the order is new to the book (`false`: the
    /// book held it already, and answered it as it is).
    pub async fn publish_new<T: Serialize>(
        &self,
        kind: OrderKind,
        signed: &T,
    ) -> Result<(OrderView, bool), Error> {
        let url = format!("{}/{}orders", self.url, kind_name(kind));
        let (status, view) =
            self.answer_with_status(self.http.post(url).json(signed).send().await).await?;
        Ok((view, status == reqwest::StatusCode::CREATED))
    }

    /// One order by hash (any status).
    pub async fn order(&self, kind: OrderKind, hash: B256) -> Result<OrderView, Error> {
        let url = format!("{}/{}orders/{hash}", self.url, kind_name(kind));
        self.answer(self.http.get(url).send().await).await
    }

    /// Unpublishes an order with its owner's signed authorization.
    pub async fn unpublish(
        &self,
        kind: OrderKind,
        hash: B256,
        request: &Unpublish,
    ) -> Result<OrderView, Error> {
        let url = format!("{}/{}orders/{hash}/unpublish", self.url, kind_name(kind));
        self.answer(self.http.post(url).json(request).send().await).await
    }

    /// A page of the orderbook of `kind`, filtered by `query` (the API's parameters).
    pub async fn orderbook(
        &self,
        kind: OrderKind,
        query: &[(&str, String)],
    ) -> Result<OrderPage, Error> {
        let url = format!("{}/{}orders", self.url, kind_name(kind));
        self.answer(self.http.get(url).query(query).send().await).await
    }

    /// The cheapest compatible orders for what a requester wants (the API's parameters).
    pub async fn best_match(&self, query: &[(&str, String)]) -> Result<BestMatch, Error> {
        let url = format!("{}/bestmatch", self.url);
        self.answer(self.http.get(url).query(query).send().await).await
    }

    /// One indexed deal (`GET /deals/{dealId}`).
    pub async fn deal(&self, deal_id: B256) -> Result<DealView, Error> {
        let url = format!("{}/deals/{deal_id}", self.url);
        self.answer(self.http.get(url).send().await).await
    }

    /// A page of indexed deals, newest first, filtered by `query` (the API's parameters:
    /// `requester`, `app`, ..., `cursor`, `limit`).
    pub async fn deals(&self, query: &[(&str, String)]) -> Result<DealPage, Error> {
        let url = format!("{}/deals", self.url);
        self.answer(self.http.get(url).query(query).send().await).await
    }

    /// The deal of a task and the task's index (`GET /tasks/{taskId}`), when the market's
    /// task index has it.
    pub async fn task(&self, task_id: B256) -> Result<IndexedTask, Error> {
        let url = format!("{}/tasks/{task_id}", self.url);
        self.answer(self.http.get(url).send().await).await
    }

    /// What the chain said of an account, newest first (`GET /accounts/{address}/events`);
    /// `query` may hold `limit` and `before`.
    pub async fn account_events(
        &self,
        account: Address,
        query: &[(&str, String)],
    ) -> Result<AccountEvents, Error> {
        let url = format!("{}/accounts/{account}/events", self.url);
        self.answer(self.http.get(url).query(query).send().await).await
    }

    /// What the chain said of a task, as the market indexed it (`GET /tasks/{taskId}/events`).
    pub async fn task_events(&self, task_id: B256) -> Result<TaskEvents, Error> {
        let url = format!("{}/tasks/{task_id}/events", self.url);
        self.answer(self.http.get(url).send().await).await
    }
}
