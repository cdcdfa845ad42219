//! Best match: the cheapest app, dataset and workerpool orders a requester can match now.
//!
//! Candidates come from the book's indexes, best price first, filtered by everything a
//! request states (app, dataset, category, trust, tag, prices, volume, requester and the
//! orders' restrictions). Each candidate set is then run through
//! [`poco_primitives::match_orders`] against a [`ChainSnapshot`] built from the mirror, so a
//! proposed set is one `matchOrders` accepts (as of the market's view of the chain). When no
//! set matches, the answer says why, side by side: which filter emptied which book, and what
//! the closest order offers.
//!
//! Restrictions naming an ERC-734 group are not resolved (that needs the chain per order):
//! such orders are only proposed to their exact restriction.
//!
//! A committee request (tag `committee`) must name its workerpool: when the requester names
//! none, each candidate pool is tried with a request naming it, and the proposed request
//! names the pool found. A pool whose active members are too few for the committee's seats
//! (the mirror counts them from the membership events) is never proposed.

use std::collections::HashMap;

use alloy::primitives::{Address, B256, U256};
use poco_primitives::{
    Category, ChainSnapshot, DatasetOrder, MatchError, OrderKind, RequestOrder, Signed, Tag,
    match_orders,
    matching::{RegisteredWorkerpool, WorkerpoolPolicy},
};

use poco_api::market::{BestMatch, PriceBreakdown};

use crate::{
    error::Result,
    market::Market,
    model::{AnySigned, OrderRecord, now_s},
    store::{OrderQuery, RoleFilter},
};

/// How many candidates of each side are tried, best price first.
const CANDIDATES: u32 = 8;

/// What a requester wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The app to run.
    pub app: Address,
    /// The dataset to use, if any.
    pub dataset: Option<Address>,
    /// Only this workerpool, if given.
    pub workerpool: Option<Address>,
    /// Who signs the request and pays.
    pub requester: Address,
    /// Who gets the results (default: the requester).
    pub beneficiary: Option<Address>,
    /// The category.
    pub category: u64,
    /// The trust wanted.
    pub trust: u64,
    /// The features wanted.
    pub tag: Tag,
    /// Highest app price per task.
    pub app_max_price: U256,
    /// Highest dataset price per task.
    pub dataset_max_price: U256,
    /// Highest workerpool price per task.
    pub workerpool_max_price: U256,
    /// Tasks wanted: every proposed order has at least this much volume left.
    pub volume: U256,
}

impl Wanted {
    /// The request order these wishes describe (unsigned, zero salt): what the requester
    /// signs to match the proposed orders.
    pub fn request(&self) -> RequestOrder {
        RequestOrder {
            app: self.app,
            appmaxprice: self.app_max_price,
            dataset: self.dataset.unwrap_or_default(),
            datasetmaxprice: self.dataset_max_price,
            workerpool: self.workerpool.unwrap_or_default(),
            workerpoolmaxprice: self.workerpool_max_price,
            requester: self.requester,
            volume: self.volume,
            tag: self.tag.0,
            category: U256::from(self.category),
            trust: U256::from(self.trust),
            beneficiary: self.beneficiary.unwrap_or(self.requester),
            callback: Address::ZERO,
            params: String::new(),
            salt: B256::ZERO,
        }
    }

    /// The request to sign for a match with `workerpool`, whose deal would demand `demand`:
    /// [`Self::request`], naming the pool when the requester named none and the deal is a
    /// committee deal (whose request must name its pool).
    pub fn request_for(&self, workerpool: Address, demand: Tag) -> RequestOrder {
        let mut request = self.request();
        if request.workerpool.is_zero() && demand.is_superset_of(Tag::COMMITTEE) {
            request.workerpool = workerpool;
        }
        request
    }
}

/// A candidate set that passed `match_orders`.
struct Found {
    app: OrderRecord,
    dataset: Option<OrderRecord>,
    workerpool: OrderRecord,
    volume: U256,
    total_per_task: U256,
    scheduler_stake: U256,
    /// The deal's demand tag.
    demand: Tag,
}

/// What the checks of one best-match search read from the mirror, read once.
struct CheckMirror {
    categories: Vec<Category>,
    policies: HashMap<Address, WorkerpoolPolicy>,
    members: HashMap<Address, u64>,
    balances: HashMap<Address, U256>,
}

impl CheckMirror {
    fn new(categories: Vec<(u64, u64)>) -> Self {
        let mut categories: Vec<Category> = categories
            .into_iter()
            .map(|(id, timeref)| Category { id, name: String::new(), timeref })
            .collect();
        categories.sort_by_key(|c| c.id);
        Self {
            categories,
            policies: HashMap::new(),
            members: HashMap::new(),
            balances: HashMap::new(),
        }
    }
}

impl Market {
    /// The cheapest set of orders that `matchOrders` would accept for `wanted`, or why there
    /// is none.
    pub async fn best_match(&self, wanted: &Wanted) -> Result<BestMatch> {
        // The books and the mirror's categories, read at once.
        let dataset_query = wanted
            .dataset
            .filter(|dataset| !dataset.is_zero())
            .map(|_| self.dataset_query(wanted, CANDIDATES));
        let (apps, datasets, floor, categories) = futures::future::try_join4(
            self.orders(self.app_query(wanted, CANDIDATES)),
            async {
                match dataset_query {
                    Some(query) => self.orders(query).await.map(|page| Some(page.items)),
                    None => Ok(None),
                }
            },
            // The cheapest pool any combination can get: a floor to stop early.
            self.orders(self.pool_query(wanted, wanted.tag, None, 1)),
            self.categories(),
        )
        .await?;
        let apps = apps.items;
        if apps.is_empty() {
            return Ok(BestMatch::not_found(vec![self.explain_app(wanted).await?]));
        }
        let datasets = match datasets {
            None => vec![None],
            Some(items) if items.is_empty() => {
                return Ok(BestMatch::not_found(vec![self.explain_dataset(wanted).await?]));
            }
            Some(items) => items.into_iter().map(Some).collect(),
        };
        let Some(floor) = floor.items.first().map(|r| r.order.price()) else {
            return Ok(BestMatch::not_found(vec![self.explain_pool(wanted).await?]));
        };

        let mut combos: Vec<(&OrderRecord, Option<&OrderRecord>)> = Vec::new();
        for app in &apps {
            for dataset in &datasets {
                combos.push((app, dataset.as_ref()));
            }
        }
        combos.sort_by_key(|(app, dataset)| {
            app.order.price().saturating_add(dataset.map(|d| d.order.price()).unwrap_or_default())
        });

        let requester_balance = self.balance(wanted.requester).await?;
        let mut mirror = CheckMirror::new(categories);
        let mut best: Option<Found> = None;
        let mut failures: Vec<String> = Vec::new();
        let mut pools_by_need: HashMap<(Tag, Option<Address>), Vec<OrderRecord>> = HashMap::new();
        for (app, dataset) in combos {
            let sellers = app
                .order
                .price()
                .saturating_add(dataset.map(|d| d.order.price()).unwrap_or_default());
            if let Some(best) = &best
                && sellers.saturating_add(floor) >= best.total_per_task
            {
                break;
            }
            let AnySigned::App(app_order) = &app.order else { continue };
            let dataset_order = match dataset.map(|d| &d.order) {
                Some(AnySigned::Dataset(order)) => Some(order),
                _ => None,
            };
            let dataset_tag = dataset_order.map(|d| Tag(d.tag)).unwrap_or_default();
            let demand = Tag::deal_demand(Tag(app_order.tag), dataset_tag, wanted.tag);
            let Some(only) = pool_restriction(
                wanted.workerpool,
                [
                    app_order.workerpoolrestrict,
                    dataset_order.map(|d| d.workerpoolrestrict).unwrap_or_default(),
                ],
            ) else {
                failures.push(format!(
                    "app order {} and the dataset order restrict the workerpool in ways no pool satisfies",
                    app.hash
                ));
                continue;
            };
            let key = (demand, only);
            if let std::collections::hash_map::Entry::Vacant(slot) = pools_by_need.entry(key) {
                let query = self.pool_query(wanted, demand, only, CANDIDATES);
                slot.insert(self.orders(query).await?.items);
            }
            for pool in &pools_by_need[&key] {
                if let Some(best) = &best
                    && sellers.saturating_add(pool.order.price()) >= best.total_per_task
                {
                    break;
                }
                let request = Signed::presigned(wanted.request_for(pool.order.asset(), demand));
                match self
                    .check(app, dataset, pool, &request, requester_balance, &mut mirror)
                    .await?
                {
                    Ok(found) => {
                        best = Some(found);
                        break;
                    }
                    Err(error) => failures.push(format!(
                        "apporder {}{}, workerpoolorder {}: matchOrders would fail: {error}",
                        app.hash,
                        dataset.map(|d| format!(", datasetorder {}", d.hash)).unwrap_or_default(),
                        pool.hash
                    )),
                }
            }
        }
        let Some(found) = best else {
            if failures.is_empty() {
                failures.push(
                    "the workerpool orders that fit the request do not fit the cheapest app and \
                     dataset orders' tags or workerpool restrictions"
                        .into(),
                );
            }
            failures.truncate(8);
            return Ok(BestMatch::not_found(failures));
        };
        Ok(BestMatch {
            found: true,
            volume: Some(found.volume),
            price: Some(PriceBreakdown {
                app: found.app.order.price(),
                dataset: found.dataset.as_ref().map(|d| d.order.price()).unwrap_or_default(),
                workerpool: found.workerpool.order.price(),
                per_task: found.total_per_task,
                total: found.total_per_task.saturating_mul(found.volume),
                scheduler_stake: found.scheduler_stake,
            }),
            apporder: Some(found.app.view()),
            datasetorder: found.dataset.as_ref().map(OrderRecord::view),
            workerpoolorder: Some(found.workerpool.view()),
            requestorder: Some(
                serde_json::to_value(
                    wanted.request_for(found.workerpool.order.asset(), found.demand),
                )
                .expect("orders serialize"),
            ),
            explanation: vec![],
        })
    }

    /// The policy and the active members of `pool`'s workerpool and its owner's balance,
    /// read into `mirror` the first time a search needs them.
    async fn pool_facts(
        &self,
        pool: &OrderRecord,
        mirror: &mut CheckMirror,
    ) -> Result<(WorkerpoolPolicy, u64, U256)> {
        let workerpool = pool.order.asset();
        if let (Some(policy), Some(members), Some(balance)) = (
            mirror.policies.get(&workerpool),
            mirror.members.get(&workerpool),
            mirror.balances.get(&pool.owner),
        ) {
            return Ok((*policy, *members, *balance));
        }
        let (entry, balance) =
            futures::future::try_join(self.store().asset(workerpool), self.balance(pool.owner))
                .await?;
        let policy =
            entry.as_ref().map_or_else(WorkerpoolPolicy::default, |entry| WorkerpoolPolicy {
                worker_stake_ratio: entry.worker_stake_ratio,
                scheduler_reward_ratio: entry.scheduler_reward_ratio,
            });
        let members = entry.map_or(0, |entry| entry.active_members);
        mirror.policies.insert(workerpool, policy);
        mirror.members.insert(workerpool, members);
        mirror.balances.insert(pool.owner, balance);
        Ok((policy, members, balance))
    }

    /// Runs `match_orders` on a candidate set against the mirror.
    async fn check(
        &self,
        app: &OrderRecord,
        dataset: Option<&OrderRecord>,
        pool: &OrderRecord,
        request: &Signed<RequestOrder>,
        requester_balance: U256,
        mirror: &mut CheckMirror,
    ) -> Result<Result<Found, MatchError>> {
        let (AnySigned::App(app_order), AnySigned::Workerpool(pool_order)) =
            (&app.order, &pool.order)
        else {
            return Ok(Err(MatchError::NoVolumeLeft));
        };
        let dataset_order = match dataset.map(|d| &d.order) {
            Some(AnySigned::Dataset(order)) => order.clone(),
            _ => Signed::presigned(DatasetOrder::default()),
        };
        let mut chain = ChainSnapshot::new(*self.domain(), now_s());
        chain.categories = mirror.categories.clone();
        chain.apps.insert(app_order.app, app.owner);
        if let Some(dataset) = dataset {
            chain.datasets.insert(dataset.order.asset(), dataset.owner);
        }
        let (policy, members, owner_balance) = self.pool_facts(pool, mirror).await?;
        chain
            .workerpools
            .insert(pool_order.workerpool, RegisteredWorkerpool { owner: pool.owner, policy });
        chain.members.insert(pool_order.workerpool, members);
        // Every signature in the book was checked at publication (and an owner's change kills
        // its orders): the check takes them as authentic instead of recovering them again.
        for record in [Some(app), dataset, Some(pool)].into_iter().flatten() {
            let consumed = record.order.volume().saturating_sub(record.remaining);
            chain.consumed.insert(record.hash, consumed);
            chain.presigned.insert(record.hash, record.owner);
        }
        let app_order = Signed::presigned(app_order.order.clone());
        let pool_order = Signed::presigned(pool_order.order.clone());
        let dataset_order = Signed::presigned(dataset_order.order);
        let request_hash = request.digest(self.domain());
        chain.presigned.insert(request_hash, request.requester);
        if pool.owner == request.requester {
            chain.balances.insert(request.requester, requester_balance);
        } else {
            // The requester's own balance is no reason to refuse an offer: clients deposit
            // what is missing before they match (and say how much when they cannot).
            chain.balances.insert(request.requester, U256::MAX);
            chain.balances.insert(pool.owner, owner_balance);
        }
        let outcome =
            match match_orders(&app_order, &dataset_order, &pool_order, request, None, &chain) {
                Ok(outcome) => outcome,
                Err(error) => return Ok(Err(error)),
            };
        let per_task =
            outcome.deal.appPrice + outcome.deal.datasetPrice + outcome.deal.workerpoolPrice;
        Ok(Ok(Found {
            app: app.clone(),
            dataset: dataset.cloned(),
            workerpool: pool.clone(),
            volume: outcome.volume,
            total_per_task: per_task,
            scheduler_stake: outcome.scheduler_lock,
            demand: Tag(outcome.deal.tag),
        }))
    }

    fn app_query(&self, wanted: &Wanted, limit: u32) -> OrderQuery {
        let mut query = OrderQuery::new(OrderKind::App, limit);
        query.asset = Some(wanted.app);
        query.dataset = RoleFilter::AllowedFor(wanted.dataset.unwrap_or_default());
        query.requester = RoleFilter::AllowedFor(wanted.requester);
        if let Some(pool) = wanted.workerpool {
            query.workerpool = RoleFilter::AllowedFor(pool);
        }
        query.price_limit = Some(wanted.app_max_price);
        query.min_remaining = Some(wanted.volume);
        if wanted.tag.is_tee() {
            query.required_tag = Some(Tag::TEE);
        }
        query
    }

    fn dataset_query(&self, wanted: &Wanted, limit: u32) -> OrderQuery {
        let mut query = OrderQuery::new(OrderKind::Dataset, limit);
        query.asset = wanted.dataset;
        query.app = RoleFilter::AllowedFor(wanted.app);
        query.requester = RoleFilter::AllowedFor(wanted.requester);
        if let Some(pool) = wanted.workerpool {
            query.workerpool = RoleFilter::AllowedFor(pool);
        }
        query.price_limit = Some(wanted.dataset_max_price);
        query.min_remaining = Some(wanted.volume);
        query
    }

    fn pool_query(
        &self,
        wanted: &Wanted,
        demand: Tag,
        only: Option<Address>,
        limit: u32,
    ) -> OrderQuery {
        let mut query = OrderQuery::new(OrderKind::Workerpool, limit);
        query.category = Some(wanted.category);
        query.min_trust = Some(wanted.trust);
        query.required_tag = (!demand.is_empty()).then_some(demand);
        query.asset = only.or(wanted.workerpool);
        query.app = RoleFilter::AllowedFor(wanted.app);
        query.dataset = RoleFilter::AllowedFor(wanted.dataset.unwrap_or_default());
        query.requester = RoleFilter::AllowedFor(wanted.requester);
        query.price_limit = Some(wanted.workerpool_max_price);
        query.min_remaining = Some(wanted.volume);
        query
    }

    /// Why no app order fits.
    async fn explain_app(&self, wanted: &Wanted) -> Result<String> {
        let mut query = OrderQuery::new(OrderKind::App, 1);
        query.asset = Some(wanted.app);
        let what = format!("app {}", wanted.app);
        let steps = vec![
            Step::price(wanted.app_max_price, "appmaxprice"),
            Step::volume(wanted.volume),
            Step::tag(wanted.tag.is_tee().then_some(Tag::TEE), "the TEE bit the request needs"),
            Step::restrictions(wanted),
        ];
        self.explain(query, &what, steps).await
    }

    /// Why no dataset order fits.
    async fn explain_dataset(&self, wanted: &Wanted) -> Result<String> {
        let mut query = OrderQuery::new(OrderKind::Dataset, 1);
        query.asset = wanted.dataset;
        let what = format!("dataset {}", wanted.dataset.unwrap_or_default());
        let steps = vec![
            Step::price(wanted.dataset_max_price, "datasetmaxprice"),
            Step::volume(wanted.volume),
            Step::restrictions(wanted),
        ];
        self.explain(query, &what, steps).await
    }

    /// Why no workerpool order fits.
    async fn explain_pool(&self, wanted: &Wanted) -> Result<String> {
        let mut query = OrderQuery::new(OrderKind::Workerpool, 1);
        query.category = Some(wanted.category);
        query.asset = wanted.workerpool;
        let what = match wanted.workerpool {
            Some(pool) => format!("workerpool {pool} in category {}", wanted.category),
            None => format!("category {}", wanted.category),
        };
        let steps = vec![
            Step::trust(wanted.trust),
            Step::tag(Some(wanted.tag).filter(|t| !t.is_empty()), "the requested tag"),
            Step::price(wanted.workerpool_max_price, "workerpoolmaxprice"),
            Step::volume(wanted.volume),
            Step::restrictions(wanted),
        ];
        self.explain(query, &what, steps).await
    }

    /// Adds the steps' filters one by one and reports the first that empties the book.
    async fn explain(&self, mut query: OrderQuery, what: &str, steps: Vec<Step>) -> Result<String> {
        let kind = crate::model::kind_name(query.kind);
        let Some(mut closest) = self.orders(query.clone()).await?.items.into_iter().next() else {
            return Ok(format!("no open {kind} order for {what}"));
        };
        for step in steps {
            let mut narrowed = query.clone();
            (step.apply)(&mut narrowed);
            match self.orders(narrowed.clone()).await?.items.into_iter().next() {
                Some(record) => {
                    closest = record;
                    query = narrowed;
                }
                None => {
                    return Ok(format!(
                        "no {kind} order for {what} {}; the closest is {} ({})",
                        step.description,
                        closest.hash,
                        describe(&closest)
                    ));
                }
            }
        }
        Ok(format!("the {kind} orders for {what} do not fit the other orders"))
    }
}

/// One filter of an explanation and how to say it failed.
struct Step {
    description: String,
    apply: Box<dyn Fn(&mut OrderQuery) + Send + Sync>,
}

impl Step {
    fn price(max: U256, field: &str) -> Self {
        Self {
            description: format!("at a price within {field} = {max} nRLC"),
            apply: Box::new(move |q| q.price_limit = Some(max)),
        }
    }

    fn volume(volume: U256) -> Self {
        Self {
            description: format!("with at least {volume} tasks left"),
            apply: Box::new(move |q| q.min_remaining = Some(volume)),
        }
    }

    fn trust(trust: u64) -> Self {
        Self {
            description: format!("with trust >= {trust}"),
            apply: Box::new(move |q| q.min_trust = Some(trust)),
        }
    }

    fn tag(tag: Option<Tag>, what: &str) -> Self {
        Self {
            description: match tag {
                Some(tag) => format!("offering {what} ({tag})"),
                None => "offering the tag".into(),
            },
            apply: Box::new(move |q| q.required_tag = tag),
        }
    }

    fn restrictions(wanted: &Wanted) -> Self {
        let (app, dataset, requester) =
            (wanted.app, wanted.dataset.unwrap_or_default(), wanted.requester);
        let pool = wanted.workerpool;
        Self {
            description: format!(
                "whose restrictions allow requester {requester}, app {app} and dataset {dataset}"
            ),
            apply: Box::new(move |q| {
                if q.kind != OrderKind::App {
                    q.app = RoleFilter::AllowedFor(app);
                }
                if q.kind != OrderKind::Dataset {
                    q.dataset = RoleFilter::AllowedFor(dataset);
                }
                if q.kind != OrderKind::Workerpool
                    && let Some(pool) = pool
                {
                    q.workerpool = RoleFilter::AllowedFor(pool);
                }
                q.requester = RoleFilter::AllowedFor(requester);
            }),
        }
    }
}

/// What an order offers, in a few words.
fn describe(record: &OrderRecord) -> String {
    let mut text = format!("price {} nRLC, {} tasks left", record.order.price(), record.remaining);
    if let AnySigned::Workerpool(order) = &record.order {
        text.push_str(&format!(", trust {}, tag {}", order.trust, Tag(order.tag)));
    } else if !record.order.tag().is_empty() {
        text.push_str(&format!(", tag {}", record.order.tag()));
    }
    let roles = record.order.roles();
    let restrictions: Vec<String> = [
        ("app", roles.app, record.order.kind() != OrderKind::App),
        ("dataset", roles.dataset, record.order.kind() != OrderKind::Dataset),
        ("workerpool", roles.workerpool, record.order.kind() != OrderKind::Workerpool),
        ("requester", roles.requester, true),
    ]
    .into_iter()
    .filter(|(_, address, relevant)| *relevant && !address.is_zero())
    .map(|(role, address, _)| format!("{role} {address}"))
    .collect();
    if !restrictions.is_empty() {
        text.push_str(&format!(", restricted to {}", restrictions.join(", ")));
    }
    text
}

/// The one workerpool a set may use given the request's and the orders' restrictions:
/// `Some(None)` for any, `Some(Some(pool))` for one, `None` when they contradict.
fn pool_restriction(
    requested: Option<Address>,
    restrictions: [Address; 2],
) -> Option<Option<Address>> {
    let mut only = requested.filter(|pool| !pool.is_zero());
    for restriction in restrictions.into_iter().filter(|r| !r.is_zero()) {
        match only {
            Some(pool) if pool != restriction => return None,
            _ => only = Some(restriction),
        }
    }
    Some(only)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_restrictions_combine() {
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        assert_eq!(pool_restriction(None, [Address::ZERO; 2]), Some(None));
        assert_eq!(pool_restriction(Some(a), [Address::ZERO, a]), Some(Some(a)));
        assert_eq!(pool_restriction(None, [b, Address::ZERO]), Some(Some(b)));
        assert_eq!(pool_restriction(Some(a), [b, Address::ZERO]), None);
    }
}
