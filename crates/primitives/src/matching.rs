//! The rules of `matchOrders`, as one pure function: [`match_orders`].
//!
//! Given the four signed orders, who pays, and a [`ChainState`] (what the contract would read:
//! categories, registries, pool policies, consumed volumes, presignatures, contract-signature
//! and group-membership answers, balances, the block timestamp and the EIP-712 domain),
//! [`match_orders`] returns what the contract would do ([`MatchOutcome`]: the deal it writes,
//! the volume, the funds it locks, the four order hashes) or the **first** rule that fails, in
//! the contract's own order, as a [`MatchError`] mirroring the Solidity error:
//!
//! 1. compatibility: `0x00` category, `0x01` category exists, `0x02` trust offered, `0x08`
//!    trust at most 2^64 - 1, `0x03`–`0x05` prices within the request's maxima, `0x09` prices
//!    at most 2^96 - 1 (app, dataset, workerpool), `0x06` the pool offers every demanded tag
//!    bit, `0x07` a TEE demand needs the app order's TEE bit; for a committee deal, `0x0a` the
//!    trust a committee serves and `0x0b` the request names the workerpool itself;
//! 2. restrictions: `0x10` app, `0x11` dataset, `0x12` the request's workerpool restriction,
//!    `0x13`–`0x1b` the restrictions of the app, dataset and workerpool orders;
//! 3. authenticity: `0x20`/`0x21` app registered and its order signed by the app's owner,
//!    `0x30`/`0x31` the same for a dataset (only when there is one), `0x40`/`0x41` for the
//!    workerpool, `0x50` the request signed by its requester;
//! 4. `0x60` some volume left in every order;
//! 5. `0x70` the sponsor can pay, then `0x71` the scheduler can stake;
//! 6. `0x80` a committee deal's pool has enough active members.
//!
//! The market runs it before proposing a match, the SDK before sending one, and tests compare
//! it with the contract.

use alloy::primitives::{Address, B256, U256, keccak256};
use std::collections::{HashMap, HashSet};

use crate::{
    category::Category,
    committee,
    deal::Deal,
    error::MatchError,
    order::{AppOrder, DatasetOrder, Order, PocoDomain, RequestOrder, Signed, WorkerpoolOrder},
    signature,
    tag::Tag,
};

/// The highest trust a request may ask for (rule 0x08).
pub const MAX_TRUST: U256 = U256::from_limbs([u64::MAX, 0, 0, 0]);
/// The highest price an order may carry, in nRLC (rule 0x09): what an account can hold.
pub const MAX_PRICE: U256 = U256::from_limbs([u64::MAX, u32::MAX as u64, 0, 0]);
/// Percentage of the workerpool price the scheduler stakes per task.
pub const WORKERPOOL_STAKE_RATIO: u64 = 30;

/// A workerpool's policy, read live at match time and snapshotted into the deal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WorkerpoolPolicy {
    /// Percentage of the workerpool price each contributing worker stakes (at most 100).
    pub worker_stake_ratio: u8,
    /// Percentage of the workers' reward the scheduler keeps (at most 50).
    pub scheduler_reward_ratio: u8,
}

impl Default for WorkerpoolPolicy {
    /// The policy of a new workerpool: 30% stake, 1% for the scheduler.
    fn default() -> Self {
        Self { worker_stake_ratio: 30, scheduler_reward_ratio: 1 }
    }
}

/// A registered workerpool: its owner (the scheduler) and its policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegisteredWorkerpool {
    /// The current owner of the workerpool NFT.
    pub owner: Address,
    /// The current policy.
    pub policy: WorkerpoolPolicy,
}

/// The chain state `matchOrders` reads, as of the block the match would be mined in.
pub trait ChainState {
    /// The EIP-712 domain of the Poco contract.
    fn domain(&self) -> PocoDomain;
    /// The block timestamp: the deal's start time.
    fn timestamp(&self) -> u64;
    /// The time reference of `category`, or `None` when no such category exists.
    fn category_timeref(&self, category: U256) -> Option<u64>;
    /// The current owner of a registered app, or `None` when `app` is not registered.
    fn app_owner(&self, app: Address) -> Option<Address>;
    /// The current owner of a registered dataset, or `None` when `dataset` is not registered.
    fn dataset_owner(&self, dataset: Address) -> Option<Address>;
    /// A registered workerpool's owner and policy, or `None` when it is not registered.
    fn workerpool(&self, workerpool: Address) -> Option<RegisteredWorkerpool>;
    /// The volume consumed so far from the order whose hash is `order_hash` (its whole volume
    /// once closed).
    fn consumed(&self, order_hash: B256) -> U256;
    /// Who presigned the order `order_hash`, if anyone.
    fn presigner(&self, order_hash: B256) -> Option<Address>;
    /// Whether the contract `signer` accepts `signature` for `hash` (ERC-1271
    /// `isValidSignature`). False for an account without code and when the call reverts.
    fn is_valid_contract_signature(&self, signer: Address, hash: B256, signature: &[u8]) -> bool;
    /// Whether `account` is a member of the ERC-734 group `group` (`keyHasPurpose(account, 4)`).
    /// False for an account without code and when the call reverts.
    fn is_group_member(&self, group: Address, account: Address) -> bool;
    /// The free (unlocked) balance of `account`, in nRLC.
    fn balance(&self, account: Address) -> U256;
    /// How many members `workerpool` has in its active set (the members a committee deal
    /// matched now would draw from).
    fn active_members(&self, workerpool: Address) -> u64;
}

/// The hashes (EIP-712 digests) of the four orders of a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrderHashes {
    /// The app order's hash.
    pub app: B256,
    /// The dataset order's hash; `None` for a deal without dataset (the `OrdersMatched` event
    /// then carries zero).
    pub dataset: Option<B256>,
    /// The workerpool order's hash.
    pub workerpool: B256,
    /// The request order's hash.
    pub request: B256,
}

/// What a successful `matchOrders` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchOutcome {
    /// The new deal's id.
    pub deal_id: B256,
    /// The deal the contract writes (its hash) and emits.
    pub deal: Deal,
    /// The number of tasks of the deal, consumed from each order.
    pub volume: U256,
    /// The amount locked from the sponsor: the deal's price for all its tasks.
    pub sponsor_lock: U256,
    /// The amount locked from the scheduler: its stake for all the deal's tasks.
    pub scheduler_lock: U256,
    /// The four order hashes.
    pub hashes: OrderHashes,
}

/// `amount × ratio / 100`, rounded down, as the contracts compute percentages. (The product
/// saturates instead of overflowing; protocol amounts stay below 2^96.)
pub fn percent(amount: U256, ratio: u64) -> U256 {
    amount.saturating_mul(U256::from(ratio)) / U256::from(100)
}

/// The scheduler's stake per task: 30% of the workerpool price, rounded down.
pub fn scheduler_stake(workerpool_price: U256) -> U256 {
    percent(workerpool_price, WORKERPOOL_STAKE_RATIO)
}

/// Matches four orders as `matchOrders` (sponsor `None`: the requester pays) or
/// `sponsorMatchOrders` (sponsor `Some(payer)`) would, against `chain`.
///
/// Returns what the contract would write and lock, or the first rule that fails, in the
/// contract's order. Nothing is changed: see [`ChainSnapshot::record_match`] to apply the
/// outcome to a snapshot.
pub fn match_orders<C: ChainState + ?Sized>(
    app: &Signed<AppOrder>,
    dataset: &Signed<DatasetOrder>,
    workerpool: &Signed<WorkerpoolOrder>,
    request: &Signed<RequestOrder>,
    sponsor: Option<Address>,
    chain: &C,
) -> Result<MatchOutcome, MatchError> {
    let (tag, timeref) = check_compatibility(app, dataset, workerpool, request, chain)?;
    check_restrictions(app, dataset, workerpool, request, chain)?;
    let authentic = check_authenticity(app, dataset, workerpool, request, chain)?;
    let hashes = authentic.hashes;
    let volume = volume_left(app, dataset, workerpool, request, &hashes, chain);
    if volume.is_zero() {
        return Err(MatchError::NoVolumeLeft);
    }

    let has_dataset = !dataset.dataset.is_zero();
    let bot_first = chain.consumed(hashes.request);
    let deal = Deal {
        requestHash: hashes.request,
        app: app.app,
        appOwner: authentic.app_owner,
        appPrice: app.appprice,
        dataset: dataset.dataset,
        datasetOwner: authentic.dataset_owner,
        datasetPrice: if has_dataset { dataset.datasetprice } else { U256::ZERO },
        workerpool: workerpool.workerpool,
        scheduler: authentic.workerpool.owner,
        workerpoolPrice: workerpool.workerpoolprice,
        requester: request.requester,
        sponsor: sponsor.unwrap_or(request.requester),
        beneficiary: request.beneficiary,
        callback: request.callback,
        tag: tag.0,
        category: request.category,
        trust: request.trust.max(U256::from(1)),
        startTime: U256::from(chain.timestamp()),
        timeref: U256::from(timeref),
        botFirst: bot_first,
        botSize: volume,
        workerStake: percent(
            workerpool.workerpoolprice,
            authentic.workerpool.policy.worker_stake_ratio.into(),
        ),
        schedulerRewardRatio: U256::from(authentic.workerpool.policy.scheduler_reward_ratio),
        paramsHash: keccak256(request.params.as_bytes()),
    };
    let (sponsor_lock, scheduler_lock) = check_funds(&deal, chain)?;
    if tag.is_superset_of(Tag::COMMITTEE) {
        // Rule 0x80: checked last, as the contract does, since orders do not say who the
        // members are. The trust is served (rule 0x0a passed).
        let needed = committee::min_committee_members(request.trust).unwrap_or(u64::MAX);
        let active = chain.active_members(workerpool.workerpool);
        if active < needed {
            return Err(MatchError::CommitteeTooSmall {
                workerpool: workerpool.workerpool,
                active_members: active,
                needed,
            });
        }
    }
    Ok(MatchOutcome { deal_id: deal.id(), deal, volume, sponsor_lock, scheduler_lock, hashes })
}

/// The volume the four orders still have in common (`computeDealVolume`), without checking
/// anything else; zero means rule 0x60 fails.
pub fn available_volume<C: ChainState + ?Sized>(
    app: &AppOrder,
    dataset: &DatasetOrder,
    workerpool: &WorkerpoolOrder,
    request: &RequestOrder,
    chain: &C,
) -> U256 {
    let domain = chain.domain();
    let hashes = OrderHashes {
        app: app.digest(&domain),
        dataset: (!dataset.dataset.is_zero()).then(|| dataset.digest(&domain)),
        workerpool: workerpool.digest(&domain),
        request: request.digest(&domain),
    };
    volume_left(app, dataset, workerpool, request, &hashes, chain)
}

/// Rules 0x00 to 0x09. Returns the deal's demand tag and the category's time reference.
fn check_compatibility<C: ChainState + ?Sized>(
    app: &AppOrder,
    dataset: &DatasetOrder,
    workerpool: &WorkerpoolOrder,
    request: &RequestOrder,
    chain: &C,
) -> Result<(Tag, u64), MatchError> {
    if request.category != workerpool.category {
        return Err(MatchError::CategoryMismatch {
            requested: request.category,
            offered: workerpool.category,
        });
    }
    let Some(timeref) = chain.category_timeref(request.category) else {
        return Err(MatchError::UnknownCategory { category: request.category });
    };
    if request.trust > workerpool.trust {
        return Err(MatchError::TrustNotOffered {
            requested: request.trust,
            offered: workerpool.trust,
        });
    }
    if request.trust > MAX_TRUST {
        return Err(MatchError::TrustOutOfRange { trust: request.trust });
    }
    if request.appmaxprice < app.appprice {
        return Err(MatchError::AppPriceTooHigh {
            price: app.appprice,
            max_price: request.appmaxprice,
        });
    }
    if request.datasetmaxprice < dataset.datasetprice {
        return Err(MatchError::DatasetPriceTooHigh {
            price: dataset.datasetprice,
            max_price: request.datasetmaxprice,
        });
    }
    if request.workerpoolmaxprice < workerpool.workerpoolprice {
        return Err(MatchError::WorkerpoolPriceTooHigh {
            price: workerpool.workerpoolprice,
            max_price: request.workerpoolmaxprice,
        });
    }
    for price in [app.appprice, dataset.datasetprice, workerpool.workerpoolprice] {
        if price > MAX_PRICE {
            return Err(MatchError::PriceOutOfRange { price });
        }
    }
    let app_tag = Tag(app.tag);
    let demand = Tag::deal_demand(app_tag, Tag(dataset.tag), Tag(request.tag));
    let missing = demand.missing_in(Tag(workerpool.tag));
    if !missing.is_empty() {
        return Err(MatchError::TagNotOffered { missing });
    }
    if (demand ^ app_tag).is_tee() {
        return Err(MatchError::TeeAppRequired);
    }
    if demand.is_superset_of(Tag::COMMITTEE) {
        if committee::committee_size(request.trust).is_none() {
            return Err(MatchError::TrustBeyondCommittee {
                trust: request.trust,
                max_trust: U256::from(committee::MAX_COMMITTEE_TRUST),
            });
        }
        // A committee is as honest as its pool's members: only the requester chooses them.
        if request.workerpool != workerpool.workerpool {
            return Err(MatchError::CommitteePoolNotChosen {
                requested: request.workerpool,
                workerpool: workerpool.workerpool,
            });
        }
    }
    Ok((demand, timeref))
}

/// Rules 0x10 to 0x1b.
fn check_restrictions<C: ChainState + ?Sized>(
    app: &AppOrder,
    dataset: &DatasetOrder,
    workerpool: &WorkerpoolOrder,
    request: &RequestOrder,
    chain: &C,
) -> Result<(), MatchError> {
    let allows = |restriction: Address, account: Address| {
        restriction.is_zero()
            || restriction == account
            || chain.is_group_member(restriction, account)
    };
    let (app_address, dataset_address) = (app.app, dataset.dataset);
    let (pool, requester) = (workerpool.workerpool, request.requester);
    if request.app != app_address {
        return Err(MatchError::AppMismatch { requested: request.app, offered: app_address });
    }
    if request.dataset != dataset_address {
        return Err(MatchError::DatasetMismatch {
            requested: request.dataset,
            offered: dataset_address,
        });
    }
    type Refusal = fn(Address, Address) -> MatchError;
    let checks: [(Address, Address, Refusal); 10] = [
        (request.workerpool, pool, |restriction, workerpool| {
            MatchError::RequestWorkerpoolRestricted { restriction, workerpool }
        }),
        (app.datasetrestrict, dataset_address, |restriction, dataset| {
            MatchError::AppDatasetRestricted { restriction, dataset }
        }),
        (app.workerpoolrestrict, pool, |restriction, workerpool| {
            MatchError::AppWorkerpoolRestricted { restriction, workerpool }
        }),
        (app.requesterrestrict, requester, |restriction, requester| {
            MatchError::AppRequesterRestricted { restriction, requester }
        }),
        (dataset.apprestrict, app_address, |restriction, app| MatchError::DatasetAppRestricted {
            restriction,
            app,
        }),
        (dataset.workerpoolrestrict, pool, |restriction, workerpool| {
            MatchError::DatasetWorkerpoolRestricted { restriction, workerpool }
        }),
        (dataset.requesterrestrict, requester, |restriction, requester| {
            MatchError::DatasetRequesterRestricted { restriction, requester }
        }),
        (workerpool.apprestrict, app_address, |restriction, app| {
            MatchError::WorkerpoolAppRestricted { restriction, app }
        }),
        (workerpool.datasetrestrict, dataset_address, |restriction, dataset| {
            MatchError::WorkerpoolDatasetRestricted { restriction, dataset }
        }),
        (workerpool.requesterrestrict, requester, |restriction, requester| {
            MatchError::WorkerpoolRequesterRestricted { restriction, requester }
        }),
    ];
    for (restriction, account, error) in checks {
        if !allows(restriction, account) {
            return Err(error(restriction, account));
        }
    }
    Ok(())
}

/// What the authenticity rules learn on the way: owners, policy and order hashes.
struct Authentic {
    app_owner: Address,
    dataset_owner: Address,
    workerpool: RegisteredWorkerpool,
    hashes: OrderHashes,
}

/// Rules 0x20 to 0x50.
fn check_authenticity<C: ChainState + ?Sized>(
    app: &Signed<AppOrder>,
    dataset: &Signed<DatasetOrder>,
    workerpool: &Signed<WorkerpoolOrder>,
    request: &Signed<RequestOrder>,
    chain: &C,
) -> Result<Authentic, MatchError> {
    let domain = chain.domain();

    let app_owner = chain
        .app_owner(app.app)
        .filter(|owner| !owner.is_zero())
        .ok_or(MatchError::AppNotRegistered { app: app.app })?;
    let app_hash = app.digest(&domain);
    if !is_authentic(app_owner, app_hash, &app.sign, chain) {
        return Err(MatchError::InvalidAppOrderSignature { owner: app_owner });
    }

    let (mut dataset_owner, mut dataset_hash) = (Address::ZERO, None);
    if !dataset.dataset.is_zero() {
        let owner = chain
            .dataset_owner(dataset.dataset)
            .filter(|owner| !owner.is_zero())
            .ok_or(MatchError::DatasetNotRegistered { dataset: dataset.dataset })?;
        let hash = dataset.digest(&domain);
        if !is_authentic(owner, hash, &dataset.sign, chain) {
            return Err(MatchError::InvalidDatasetOrderSignature { owner });
        }
        (dataset_owner, dataset_hash) = (owner, Some(hash));
    }

    let registered =
        chain
            .workerpool(workerpool.workerpool)
            .filter(|pool| !pool.owner.is_zero())
            .ok_or(MatchError::WorkerpoolNotRegistered { workerpool: workerpool.workerpool })?;
    let workerpool_hash = workerpool.digest(&domain);
    if !is_authentic(registered.owner, workerpool_hash, &workerpool.sign, chain) {
        return Err(MatchError::InvalidWorkerpoolOrderSignature { owner: registered.owner });
    }

    let request_hash = request.digest(&domain);
    if !is_authentic(request.requester, request_hash, &request.sign, chain) {
        return Err(MatchError::InvalidRequestOrderSignature { requester: request.requester });
    }

    Ok(Authentic {
        app_owner,
        dataset_owner,
        workerpool: registered,
        hashes: OrderHashes {
            app: app_hash,
            dataset: dataset_hash,
            workerpool: workerpool_hash,
            request: request_hash,
        },
    })
}

/// Signed by `signer` (ECDSA, then ERC-1271), or presigned by it; never by the zero address.
fn is_authentic<C: ChainState + ?Sized>(
    signer: Address,
    hash: B256,
    sign: &[u8],
    chain: &C,
) -> bool {
    if signer.is_zero() {
        return false;
    }
    let signed = !sign.is_empty()
        && (signature::is_signed_by(signer, hash, sign)
            || chain.is_valid_contract_signature(signer, hash, sign));
    signed || chain.presigner(hash) == Some(signer)
}

/// The volume left in common. The contract's subtraction cannot underflow on-chain (a
/// consumed volume never exceeds its order's); an inconsistent view counts as nothing left.
fn volume_left<C: ChainState + ?Sized>(
    app: &AppOrder,
    dataset: &DatasetOrder,
    workerpool: &WorkerpoolOrder,
    request: &RequestOrder,
    hashes: &OrderHashes,
    chain: &C,
) -> U256 {
    let left = |volume: U256, hash: B256| volume.saturating_sub(chain.consumed(hash));
    let mut volume = left(app.volume, hashes.app);
    if let Some(dataset_hash) = hashes.dataset {
        volume = volume.min(left(dataset.volume, dataset_hash));
    }
    volume.min(left(workerpool.volume, hashes.workerpool)).min(left(request.volume, hashes.request))
}

/// Rules 0x70 and 0x71. Returns the sponsor's and the scheduler's locks.
fn check_funds<C: ChainState + ?Sized>(deal: &Deal, chain: &C) -> Result<(U256, U256), MatchError> {
    let price = deal.appPrice + deal.datasetPrice + deal.workerpoolPrice;
    let sponsor_lock = price.saturating_mul(deal.botSize);
    let available = chain.balance(deal.sponsor);
    if available < sponsor_lock {
        return Err(MatchError::SponsorBalanceTooLow {
            sponsor: deal.sponsor,
            needed: sponsor_lock,
            available,
        });
    }
    let scheduler_lock = scheduler_stake(deal.workerpoolPrice).saturating_mul(deal.botSize);
    let mut available = chain.balance(deal.scheduler);
    if deal.scheduler == deal.sponsor {
        available -= sponsor_lock;
    }
    if available < scheduler_lock {
        return Err(MatchError::SchedulerStakeTooLow {
            scheduler: deal.scheduler,
            needed: scheduler_lock,
            available,
        });
    }
    Ok((sponsor_lock, scheduler_lock))
}

/// A [`ChainState`] held in memory: for tests, simulations and services that mirror the chain.
#[derive(Clone, Debug)]
pub struct ChainSnapshot {
    /// The EIP-712 domain.
    pub domain: PocoDomain,
    /// The block timestamp.
    pub timestamp: u64,
    /// The categories, indexed by id.
    pub categories: Vec<Category>,
    /// Registered apps and their owners.
    pub apps: HashMap<Address, Address>,
    /// Registered datasets and their owners.
    pub datasets: HashMap<Address, Address>,
    /// Registered workerpools, their owners and policies.
    pub workerpools: HashMap<Address, RegisteredWorkerpool>,
    /// Consumed volume by order hash (absent: zero).
    pub consumed: HashMap<B256, U256>,
    /// Presigner by order hash.
    pub presigned: HashMap<B256, Address>,
    /// `(contract, hash)` pairs the contract signer accepts, whatever the signature bytes.
    pub contract_signatures: HashSet<(Address, B256)>,
    /// ERC-734 groups and their members.
    pub groups: HashMap<Address, HashSet<Address>>,
    /// Free balances (absent: zero).
    pub balances: HashMap<Address, U256>,
    /// Active member counts of workerpools (absent: zero).
    pub members: HashMap<Address, u64>,
}

impl ChainSnapshot {
    /// A fresh deployment: the default categories and nothing else.
    pub fn new(domain: PocoDomain, timestamp: u64) -> Self {
        Self {
            domain,
            timestamp,
            categories: Category::defaults(),
            apps: HashMap::new(),
            datasets: HashMap::new(),
            workerpools: HashMap::new(),
            consumed: HashMap::new(),
            presigned: HashMap::new(),
            contract_signatures: HashSet::new(),
            groups: HashMap::new(),
            balances: HashMap::new(),
            members: HashMap::new(),
        }
    }

    /// Applies a match: consumes the orders' volume and locks the sponsor's and the
    /// scheduler's funds (free balances only: frozen amounts are not tracked).
    pub fn record_match(&mut self, outcome: &MatchOutcome) {
        let hashes = outcome.hashes;
        for hash in
            [Some(hashes.app), hashes.dataset, Some(hashes.workerpool), Some(hashes.request)]
                .into_iter()
                .flatten()
        {
            *self.consumed.entry(hash).or_default() += outcome.volume;
        }
        let deal = &outcome.deal;
        for (account, lock) in
            [(deal.sponsor, outcome.sponsor_lock), (deal.scheduler, outcome.scheduler_lock)]
        {
            let balance = self.balances.entry(account).or_default();
            *balance = balance.saturating_sub(lock);
        }
    }
}

impl ChainState for ChainSnapshot {
    fn domain(&self) -> PocoDomain {
        self.domain
    }

    fn timestamp(&self) -> u64 {
        self.timestamp
    }

    fn category_timeref(&self, category: U256) -> Option<u64> {
        let index = usize::try_from(category).ok()?;
        self.categories.get(index).map(|category| category.timeref)
    }

    fn app_owner(&self, app: Address) -> Option<Address> {
        self.apps.get(&app).copied()
    }

    fn dataset_owner(&self, dataset: Address) -> Option<Address> {
        self.datasets.get(&dataset).copied()
    }

    fn workerpool(&self, workerpool: Address) -> Option<RegisteredWorkerpool> {
        self.workerpools.get(&workerpool).copied()
    }

    fn consumed(&self, order_hash: B256) -> U256 {
        self.consumed.get(&order_hash).copied().unwrap_or_default()
    }

    fn presigner(&self, order_hash: B256) -> Option<Address> {
        self.presigned.get(&order_hash).copied()
    }

    fn is_valid_contract_signature(&self, signer: Address, hash: B256, _signature: &[u8]) -> bool {
        self.contract_signatures.contains(&(signer, hash))
    }

    fn is_group_member(&self, group: Address, account: Address) -> bool {
        self.groups.get(&group).is_some_and(|members| members.contains(&account))
    }

    fn active_members(&self, workerpool: Address) -> u64 {
        self.members.get(&workerpool).copied().unwrap_or_default()
    }

    fn balance(&self, account: Address) -> U256 {
        self.balances.get(&account).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::{primitives::address, signers::local::PrivateKeySigner};
    use proptest::prelude::*;

    const APP: Address = address!("0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa");
    const DATASET: Address = address!("0xdDdDddDdDdddDDddDDddDDDDdDdDDdDDdDDDDDDd");
    const POOL: Address = address!("0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB");
    const GROUP: Address = address!("0x6060606060606060606060606060606060606060");
    const OTHER: Address = address!("0x0000000000000000000000000000000000000bad");
    const RLC: u64 = 1_000_000_000;

    fn key(byte: u8) -> PrivateKeySigner {
        PrivateKeySigner::from_bytes(&B256::repeat_byte(byte)).unwrap()
    }

    fn rlc(amount: u64) -> U256 {
        U256::from(amount * RLC)
    }

    /// Valid orders and a chain on which they match; each test breaks what it checks.
    struct Fixture {
        app: AppOrder,
        dataset: DatasetOrder,
        workerpool: WorkerpoolOrder,
        request: RequestOrder,
        signers: [PrivateKeySigner; 4],
        chain: ChainSnapshot,
        exhaust_request: bool,
        sponsor: Option<Address>,
    }

    fn app_owner() -> Address {
        key(1).address()
    }
    fn dataset_owner() -> Address {
        key(2).address()
    }
    fn scheduler() -> Address {
        key(3).address()
    }
    fn requester() -> Address {
        key(4).address()
    }

    fn fixture() -> Fixture {
        let mut chain = ChainSnapshot::new(
            PocoDomain::new(31337, address!("0x5FbDB2315678afecb367f032d93F642f64180aa3")),
            1_700_000_000,
        );
        chain.apps.insert(APP, app_owner());
        chain.datasets.insert(DATASET, dataset_owner());
        chain.workerpools.insert(
            POOL,
            RegisteredWorkerpool { owner: scheduler(), policy: WorkerpoolPolicy::default() },
        );
        chain.balances.insert(requester(), rlc(100));
        chain.balances.insert(scheduler(), rlc(100));
        Fixture {
            app: AppOrder {
                app: APP,
                appprice: rlc(1),
                volume: U256::from(10),
                ..Default::default()
            },
            dataset: DatasetOrder {
                dataset: DATASET,
                datasetprice: rlc(2),
                volume: U256::from(10),
                ..Default::default()
            },
            workerpool: WorkerpoolOrder {
                workerpool: POOL,
                workerpoolprice: rlc(10),
                volume: U256::from(10),
                trust: U256::from(5),
                ..Default::default()
            },
            request: RequestOrder {
                app: APP,
                appmaxprice: rlc(1),
                dataset: DATASET,
                datasetmaxprice: rlc(2),
                workerpoolmaxprice: rlc(10),
                requester: requester(),
                volume: U256::from(4),
                trust: U256::from(1),
                beneficiary: requester(),
                params: r#"{"iexec_args":"x"}"#.into(),
                ..Default::default()
            },
            signers: [key(1), key(2), key(3), key(4)],
            chain,
            exhaust_request: false,
            sponsor: None,
        }
    }

    type Orders =
        (Signed<AppOrder>, Signed<DatasetOrder>, Signed<WorkerpoolOrder>, Signed<RequestOrder>);

    impl Fixture {
        fn orders(&self) -> Orders {
            let domain = self.chain.domain;
            let [app, dataset, workerpool, request] = &self.signers;
            (
                self.app.clone().sign(app, &domain).unwrap(),
                self.dataset.clone().sign(dataset, &domain).unwrap(),
                self.workerpool.clone().sign(workerpool, &domain).unwrap(),
                self.request.clone().sign(request, &domain).unwrap(),
            )
        }

        fn run_with(&self, orders: &Orders) -> Result<MatchOutcome, MatchError> {
            let mut chain = self.chain.clone();
            if self.exhaust_request {
                chain.consumed.insert(self.request.digest(&chain.domain), self.request.volume);
            }
            match_orders(&orders.0, &orders.1, &orders.2, &orders.3, self.sponsor, &chain)
        }

        fn run(&self) -> Result<MatchOutcome, MatchError> {
            self.run_with(&self.orders())
        }

        fn code(&self) -> u8 {
            self.run().expect_err("the match should fail").code()
        }
    }

    /// Breaks one rule each; each touches its own fields, so any subset can be combined.
    type Fault = (u8, fn(&mut Fixture));

    const FAULTS: [Fault; 30] = [
        (0x00, |f| f.workerpool.category = U256::from(1)),
        (0x02, |f| f.workerpool.trust = U256::ZERO),
        (0x03, |f| f.app.appprice = rlc(50)),
        (0x04, |f| f.dataset.datasetprice = rlc(50)),
        (0x05, |f| f.workerpool.workerpoolprice = rlc(50)),
        (0x06, |f| f.request.tag = Tag::GPU.0),
        (0x07, |f| {
            f.dataset.tag = Tag::SCONE.0;
            f.workerpool.tag = Tag::TEE.0;
        }),
        (0x10, |f| f.request.app = OTHER),
        (0x11, |f| f.request.dataset = OTHER),
        (0x12, |f| f.request.workerpool = OTHER),
        (0x13, |f| f.app.datasetrestrict = OTHER),
        (0x14, |f| f.app.workerpoolrestrict = OTHER),
        (0x15, |f| f.app.requesterrestrict = OTHER),
        (0x16, |f| f.dataset.apprestrict = OTHER),
        (0x17, |f| f.dataset.workerpoolrestrict = OTHER),
        (0x18, |f| f.dataset.requesterrestrict = OTHER),
        (0x19, |f| f.workerpool.apprestrict = OTHER),
        (0x1a, |f| f.workerpool.datasetrestrict = OTHER),
        (0x1b, |f| f.workerpool.requesterrestrict = OTHER),
        (0x20, |f| {
            f.chain.apps.remove(&APP);
        }),
        (0x21, |f| f.signers[0] = key(9)),
        (0x30, |f| {
            f.chain.datasets.remove(&DATASET);
        }),
        (0x31, |f| f.signers[1] = key(9)),
        (0x40, |f| {
            f.chain.workerpools.remove(&POOL);
        }),
        (0x41, |f| f.signers[2] = key(9)),
        (0x50, |f| f.signers[3] = key(9)),
        (0x60, |f| f.exhaust_request = true),
        (0x70, |f| {
            f.chain.balances.remove(&requester());
        }),
        (0x71, |f| {
            f.chain.balances.insert(scheduler(), U256::from(1));
        }),
        (0x50, |f| f.request.requester = Address::ZERO),
    ];

    /// The contract's check order, by rule number.
    const RULE_ORDER: [u8; 32] = [
        0x00, 0x01, 0x02, 0x08, 0x03, 0x04, 0x05, 0x09, 0x06, 0x07, 0x10, 0x11, 0x12, 0x13, 0x14,
        0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x20, 0x21, 0x30, 0x31, 0x40, 0x41, 0x50, 0x60,
        0x70, 0x71,
    ];

    fn rank(code: u8) -> usize {
        RULE_ORDER.iter().position(|&c| c == code).unwrap()
    }

    #[test]
    fn valid_orders_make_the_deal_the_contract_writes() {
        let f = fixture();
        let orders = f.orders();
        let outcome = f.run_with(&orders).unwrap();
        let domain = f.chain.domain;
        let request_hash = orders.3.digest(&domain);
        assert_eq!(
            outcome.hashes,
            OrderHashes {
                app: orders.0.digest(&domain),
                dataset: Some(orders.1.digest(&domain)),
                workerpool: orders.2.digest(&domain),
                request: request_hash,
            }
        );
        assert_eq!(outcome.volume, U256::from(4));
        assert_eq!(outcome.sponsor_lock, rlc(13 * 4));
        assert_eq!(outcome.scheduler_lock, rlc(3 * 4));
        assert_eq!(outcome.deal_id, crate::deal::deal_id(request_hash, U256::ZERO));
        let expected = Deal {
            requestHash: request_hash,
            app: APP,
            appOwner: app_owner(),
            appPrice: rlc(1),
            dataset: DATASET,
            datasetOwner: dataset_owner(),
            datasetPrice: rlc(2),
            workerpool: POOL,
            scheduler: scheduler(),
            workerpoolPrice: rlc(10),
            requester: requester(),
            sponsor: requester(),
            beneficiary: requester(),
            callback: Address::ZERO,
            tag: B256::ZERO,
            category: U256::ZERO,
            trust: U256::from(1),
            startTime: U256::from(1_700_000_000u64),
            timeref: U256::from(300),
            botFirst: U256::ZERO,
            botSize: U256::from(4),
            workerStake: rlc(3),
            schedulerRewardRatio: U256::from(1),
            paramsHash: keccak256(r#"{"iexec_args":"x"}"#),
        };
        assert_eq!(outcome.deal, expected);
        assert_eq!(outcome.deal.id(), outcome.deal_id);
    }

    #[test]
    fn each_rule_reports_its_code_and_solidity_error() {
        for (code, fault) in FAULTS {
            let mut f = fixture();
            fault(&mut f);
            let error = f.run().expect_err("the match should fail");
            assert_eq!(error.code(), code, "{error}");
            assert!(error.to_string().starts_with(&format!("[0x{code:02x}]")), "{error}");
        }
    }

    #[test]
    fn errors_carry_the_contract_arguments() {
        let mut f = fixture();
        f.request.category = U256::from(2);
        assert_eq!(
            f.run(),
            Err(MatchError::CategoryMismatch { requested: U256::from(2), offered: U256::ZERO })
        );
        let mut f = fixture();
        f.request.appmaxprice = U256::from(5);
        assert_eq!(
            f.run(),
            Err(MatchError::AppPriceTooHigh { price: rlc(1), max_price: U256::from(5) })
        );
        let mut f = fixture();
        f.workerpool.requesterrestrict = OTHER;
        assert_eq!(
            f.run(),
            Err(MatchError::WorkerpoolRequesterRestricted {
                restriction: OTHER,
                requester: requester()
            })
        );
        let mut f = fixture();
        f.signers[2] = key(9);
        assert_eq!(
            f.run(),
            Err(MatchError::InvalidWorkerpoolOrderSignature { owner: scheduler() })
        );
        let mut f = fixture();
        f.chain.balances.insert(requester(), rlc(1));
        let error = f.run().unwrap_err();
        assert_eq!(
            error,
            MatchError::SponsorBalanceTooLow {
                sponsor: requester(),
                needed: rlc(52),
                available: rlc(1)
            }
        );
        assert_eq!(error.solidity_name(), "SponsorBalanceTooLow");
        assert!(error.is_funding());
    }

    #[test]
    fn unknown_category() {
        let mut f = fixture();
        f.request.category = U256::from(6);
        f.workerpool.category = U256::from(6);
        assert_eq!(f.run(), Err(MatchError::UnknownCategory { category: U256::from(6) }));
        f.chain.categories.push(Category { id: 5, name: "XXL".into(), timeref: 100_000 });
        assert_eq!(f.code(), 0x01, "ids are positions: category 6 needs seven categories");
        f.chain.categories.push(Category { id: 6, name: "XXXL".into(), timeref: 7 });
        assert_eq!(f.run().unwrap().deal.timeref, U256::from(7));
    }

    #[test]
    fn trust() {
        let mut f = fixture();
        f.request.trust = U256::ZERO;
        assert_eq!(f.run().unwrap().deal.trust, U256::from(1), "trust 0 means 1");
        f.request.trust = U256::from(5);
        assert_eq!(f.run().unwrap().deal.trust, U256::from(5));
        f.request.trust = MAX_TRUST + U256::from(1);
        f.workerpool.trust = U256::MAX;
        assert_eq!(f.run(), Err(MatchError::TrustOutOfRange { trust: MAX_TRUST + U256::from(1) }));
        f.request.trust = MAX_TRUST;
        assert!(f.run().is_ok());
    }

    #[test]
    fn committee_deals_serve_trust_up_to_768() {
        let mut f = fixture();
        f.workerpool.tag = (Tag(f.workerpool.tag) | Tag::COMMITTEE).0;
        f.workerpool.trust = U256::from(1000);
        f.request.tag = (Tag(f.request.tag) | Tag::COMMITTEE).0;
        f.request.trust = U256::from(768);
        f.request.workerpool = POOL;
        f.chain.members.insert(POOL, 31);
        assert!(Tag(f.run().unwrap().deal.tag).is_superset_of(Tag::COMMITTEE));
        f.request.trust = U256::from(769);
        let refused = f.run().unwrap_err();
        assert_eq!(
            refused,
            MatchError::TrustBeyondCommittee {
                trust: U256::from(769),
                max_trust: U256::from(committee::MAX_COMMITTEE_TRUST)
            }
        );
        assert_eq!((refused.code(), refused.solidity_name()), (0x0a, "TrustBeyondCommittee"));
    }

    /// A committee request names its pool (rule 0x0b), and the pool has as many active members
    /// as the committee has seats, at least four (rule 0x80, checked last).
    #[test]
    fn committee_deals_go_to_the_named_pool_with_enough_members() {
        let mut f = fixture();
        f.workerpool.tag = (Tag(f.workerpool.tag) | Tag::COMMITTEE).0;
        f.request.tag = (Tag(f.request.tag) | Tag::COMMITTEE).0;
        f.workerpool.trust = U256::from(20);
        f.request.trust = U256::from(20);
        f.request.workerpool = Address::ZERO;
        assert_eq!(
            f.run(),
            Err(MatchError::CommitteePoolNotChosen { requested: Address::ZERO, workerpool: POOL })
        );
        assert_eq!(f.code(), 0x0b);
        f.request.workerpool = POOL;
        f.chain.members.insert(POOL, 8);
        let refused = f.run().unwrap_err();
        assert_eq!(
            refused,
            MatchError::CommitteeTooSmall { workerpool: POOL, active_members: 8, needed: 9 }
        );
        assert_eq!((refused.code(), refused.solidity_name()), (0x80, "CommitteeTooSmall"));
        // Funding is checked first: a short sponsor hears about its balance.
        f.chain.balances.insert(requester(), rlc(1));
        assert_eq!(f.code(), 0x70);
        f.chain.balances.insert(requester(), rlc(100));
        f.chain.members.insert(POOL, 9);
        assert!(f.run().is_ok());
        // Without the tag, neither rule applies.
        let mut plain = fixture();
        plain.request.workerpool = Address::ZERO;
        assert!(plain.run().is_ok());
    }

    #[test]
    fn prices_above_2_pow_96_are_refused_after_the_maximum_checks() {
        let mut f = fixture();
        f.dataset.datasetprice = MAX_PRICE + U256::from(1);
        assert_eq!(f.code(), 0x04);
        f.request.datasetmaxprice = U256::MAX;
        assert_eq!(f.run(), Err(MatchError::PriceOutOfRange { price: MAX_PRICE + U256::from(1) }));
        let mut f = fixture();
        f.workerpool.workerpoolprice = MAX_PRICE + U256::from(1);
        f.request.workerpoolmaxprice = U256::MAX;
        f.dataset.datasetprice = MAX_PRICE + U256::from(2);
        f.request.datasetmaxprice = U256::MAX;
        assert_eq!(
            f.run(),
            Err(MatchError::PriceOutOfRange { price: MAX_PRICE + U256::from(2) }),
            "the dataset price is checked before the workerpool price"
        );
    }

    #[test]
    fn tags() {
        let mut f = fixture();
        f.request.tag = (Tag::GPU | Tag::bit(20)).0;
        f.workerpool.tag = Tag::GPU.0;
        assert_eq!(f.run(), Err(MatchError::TagNotOffered { missing: Tag::bit(20) }));

        // An app order may ask for a TEE on its own; the pool must offer it.
        let mut f = fixture();
        f.app.tag = Tag::TEE.0;
        assert_eq!(f.run(), Err(MatchError::TagNotOffered { missing: Tag::TEE }));
        f.workerpool.tag = (Tag::TEE | Tag::GPU).0;
        assert_eq!(f.run().unwrap().deal.tag, Tag::TEE.0);

        // The request demands a TEE: the app order must carry the bit.
        let mut f = fixture();
        f.request.tag = Tag::TEE.0;
        f.workerpool.tag = Tag::TEE.0;
        assert_eq!(f.run(), Err(MatchError::TeeAppRequired));
        f.app.tag = Tag::TEE.0;
        assert!(f.run().is_ok());

        // Dataset framework bits are ignored: a Scone dataset runs on a TDX pool.
        let mut f = fixture();
        f.app.tag = Tag::TDX.0;
        f.dataset.tag = (Tag::SCONE | Tag::GPU).0;
        f.workerpool.tag = (Tag::TDX | Tag::GPU).0;
        assert_eq!(f.run().unwrap().deal.tag, (Tag::TDX | Tag::GPU).0);
        // ... but not the request's.
        f.request.tag = Tag::SCONE.0;
        assert_eq!(f.run(), Err(MatchError::TagNotOffered { missing: Tag::bit(1) }));
    }

    #[test]
    fn deal_without_dataset() {
        let mut f = fixture();
        f.dataset = DatasetOrder { datasetprice: rlc(2), ..Default::default() };
        f.request.dataset = Address::ZERO;
        f.signers[1] = key(9); // nobody owns dataset zero: the signature is never checked
        let outcome = f.run().unwrap();
        assert_eq!(outcome.hashes.dataset, None);
        assert_eq!(outcome.volume, U256::from(4), "the dataset order's zero volume is ignored");
        let deal = &outcome.deal;
        assert_eq!(
            (deal.dataset, deal.datasetOwner, deal.datasetPrice),
            (Address::ZERO, Address::ZERO, U256::ZERO)
        );
        assert_eq!(outcome.sponsor_lock, rlc(11 * 4), "no dataset price");

        // The dataset price is still bounded by the request's maximum...
        f.dataset.datasetprice = rlc(3);
        assert_eq!(f.code(), 0x04);
        // ... and a dataset restriction cannot be met without a dataset.
        f.dataset.datasetprice = U256::ZERO;
        f.workerpool.datasetrestrict = DATASET;
        assert_eq!(
            f.run(),
            Err(MatchError::WorkerpoolDatasetRestricted {
                restriction: DATASET,
                dataset: Address::ZERO
            })
        );
        // A dataset order with a zero address in a request that wants one is a mismatch.
        let mut f = fixture();
        f.dataset.dataset = Address::ZERO;
        assert_eq!(
            f.run(),
            Err(MatchError::DatasetMismatch { requested: DATASET, offered: Address::ZERO })
        );
    }

    #[test]
    fn restrictions_accept_the_account_itself_or_a_group_member() {
        let mut f = fixture();
        f.request.workerpool = POOL;
        f.app.requesterrestrict = requester();
        f.workerpool.apprestrict = GROUP;
        f.dataset.workerpoolrestrict = GROUP;
        assert_eq!(f.code(), 0x17, "an unknown group has no member");
        f.chain.groups.insert(GROUP, [POOL].into());
        assert_eq!(
            f.run(),
            Err(MatchError::WorkerpoolAppRestricted { restriction: GROUP, app: APP })
        );
        f.chain.groups.get_mut(&GROUP).unwrap().insert(APP);
        assert!(f.run().is_ok());
    }

    #[test]
    fn presigned_orders() {
        let mut f = fixture();
        let domain = f.chain.domain;
        let (app, dataset, workerpool, request) = f.orders();
        let unsigned = (
            Signed::presigned(app.order.clone()),
            dataset.clone(),
            workerpool.clone(),
            Signed::presigned(request.order.clone()),
        );
        assert_eq!(f.run_with(&unsigned).unwrap_err().code(), 0x21);
        f.chain.presigned.insert(app.digest(&domain), app_owner());
        assert_eq!(f.run_with(&unsigned).unwrap_err().code(), 0x50);
        f.chain.presigned.insert(request.digest(&domain), requester());
        assert!(f.run_with(&unsigned).is_ok());

        // Moving the app NFT invalidates the previous owner's signed and presigned orders.
        f.chain.apps.insert(APP, OTHER);
        assert_eq!(
            f.run_with(&unsigned),
            Err(MatchError::InvalidAppOrderSignature { owner: OTHER })
        );
        let signed = (app, dataset, workerpool, request);
        assert_eq!(f.run_with(&signed).unwrap_err().code(), 0x21);

        // A presignature by someone else is worthless.
        let mut f = fixture();
        let mut orders = f.orders();
        orders.3 = Signed::presigned(orders.3.order.clone());
        f.chain.presigned.insert(orders.3.digest(&domain), OTHER);
        assert_eq!(f.run_with(&orders).unwrap_err().code(), 0x50);
    }

    #[test]
    fn contract_owners_sign_with_erc1271() {
        let mut f = fixture();
        let contract = address!("0xC0C0C0C0C0C0C0C0C0C0C0C0C0C0C0C0C0C0C0C0");
        f.chain.workerpools.get_mut(&POOL).unwrap().owner = contract;
        f.chain.balances.insert(contract, rlc(100));
        let mut orders = f.orders();
        assert_eq!(f.run_with(&orders).unwrap_err().code(), 0x41);
        let hash = orders.2.digest(&f.chain.domain);
        f.chain.contract_signatures.insert((contract, hash));
        assert_eq!(f.run_with(&orders).unwrap().deal.scheduler, contract);
        // ERC-1271 is asked only when a signature is given.
        orders.2.sign = Default::default();
        assert_eq!(f.run_with(&orders).unwrap_err().code(), 0x41);
    }

    #[test]
    fn volume_is_what_every_order_has_left() {
        let mut f = fixture();
        let domain = f.chain.domain;
        f.chain.consumed.insert(f.app.digest(&domain), U256::from(8));
        assert_eq!(f.run().unwrap().volume, U256::from(2));
        f.chain.consumed.insert(f.dataset.digest(&domain), U256::from(9));
        assert_eq!(f.run().unwrap().volume, U256::from(1));
        assert_eq!(
            available_volume(&f.app, &f.dataset, &f.workerpool, &f.request, &f.chain),
            U256::from(1)
        );
        // A closed order (consumed = volume) has nothing left.
        f.chain.consumed.insert(f.workerpool.digest(&domain), U256::from(10));
        assert_eq!(f.run(), Err(MatchError::NoVolumeLeft));
    }

    #[test]
    fn successive_deals_from_one_request_take_disjoint_tasks() {
        let mut f = fixture();
        f.request.volume = U256::from(7);
        f.app.volume = U256::from(3);
        let orders = f.orders();
        let first = f.run_with(&orders).unwrap();
        assert_eq!((first.deal.botFirst, first.deal.botSize), (U256::ZERO, U256::from(3)));
        f.chain.record_match(&first);
        assert_eq!(f.run_with(&orders), Err(MatchError::NoVolumeLeft), "the app order is used up");

        // A fresh app order serves the rest of the request.
        f.app.salt = B256::repeat_byte(1);
        f.app.volume = U256::from(10);
        let orders = f.orders();
        let second = f.run_with(&orders).unwrap();
        assert_eq!((second.deal.botFirst, second.deal.botSize), (U256::from(3), U256::from(4)));
        assert_ne!(second.deal_id, first.deal_id);
        assert_eq!(second.deal.requestHash, first.deal.requestHash);
        f.chain.record_match(&second);
        assert_eq!(f.chain.balance(requester()), rlc(100 - 13 * 7));
        assert_eq!(f.chain.balance(scheduler()), rlc(100 - 3 * 7));
        assert_eq!(f.run_with(&orders), Err(MatchError::NoVolumeLeft));
    }

    #[test]
    fn sponsored_deals_are_paid_by_the_sponsor() {
        let mut f = fixture();
        let sponsor = address!("0x5555555555555555555555555555555555555555");
        f.chain.balances.remove(&requester());
        f.sponsor = Some(sponsor);
        assert_eq!(
            f.run(),
            Err(MatchError::SponsorBalanceTooLow {
                sponsor,
                needed: rlc(52),
                available: U256::ZERO
            })
        );
        f.chain.balances.insert(sponsor, rlc(52));
        let deal = f.run().unwrap().deal;
        assert_eq!((deal.sponsor, deal.requester), (sponsor, requester()));
    }

    #[test]
    fn a_scheduler_paying_its_own_deal_needs_both_amounts() {
        let mut f = fixture();
        f.sponsor = Some(scheduler());
        f.chain.balances.insert(scheduler(), rlc(52 + 11));
        assert_eq!(
            f.run(),
            Err(MatchError::SchedulerStakeTooLow {
                scheduler: scheduler(),
                needed: rlc(12),
                available: rlc(11)
            })
        );
        f.chain.balances.insert(scheduler(), rlc(52 + 12));
        assert!(f.run().is_ok());
    }

    #[test]
    fn huge_volumes_saturate_instead_of_overflowing() {
        let mut f = fixture();
        for volume in [
            &mut f.app.volume,
            &mut f.dataset.volume,
            &mut f.workerpool.volume,
            &mut f.request.volume,
        ] {
            *volume = U256::MAX;
        }
        assert_eq!(
            f.run(),
            Err(MatchError::SponsorBalanceTooLow {
                sponsor: requester(),
                needed: U256::MAX,
                available: rlc(100)
            })
        );
        // Free tasks cost nothing, however many.
        f.app.appprice = U256::ZERO;
        f.dataset.datasetprice = U256::ZERO;
        f.workerpool.workerpoolprice = U256::ZERO;
        let outcome = f.run().unwrap();
        assert_eq!(
            (outcome.volume, outcome.sponsor_lock, outcome.scheduler_lock),
            (U256::MAX, U256::ZERO, U256::ZERO)
        );
    }

    #[test]
    fn pool_policy_is_snapshotted() {
        let mut f = fixture();
        f.chain.workerpools.get_mut(&POOL).unwrap().policy =
            WorkerpoolPolicy { worker_stake_ratio: 35, scheduler_reward_ratio: 5 };
        f.workerpool.workerpoolprice = U256::from(999);
        f.request.workerpoolmaxprice = U256::from(999);
        let outcome = f.run().unwrap();
        assert_eq!(outcome.deal.workerStake, U256::from(349), "floor(999 * 35 / 100)");
        assert_eq!(outcome.deal.schedulerRewardRatio, U256::from(5));
        assert_eq!(outcome.scheduler_lock, U256::from(299 * 4), "floor(999 * 30 / 100) per task");
    }

    proptest! {
        // Each case signs four orders: keep the count modest for debug builds.
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn the_first_failing_rule_in_contract_order_is_reported(
            faults in proptest::sample::subsequence((0..FAULTS.len()).collect::<Vec<_>>(), 1..6)
        ) {
            let mut f = fixture();
            for &index in &faults {
                (FAULTS[index].1)(&mut f);
            }
            let first = faults.iter().map(|&index| FAULTS[index].0).min_by_key(|&code| rank(code)).unwrap();
            prop_assert_eq!(f.code(), first);
        }
    }
}
