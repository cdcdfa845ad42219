//! A fixed scenario that exercises every way a plain task ends, used to check that two ledgers
//! agree and to measure how fast a ledger runs tasks.
//!
//! A requester buys `tasks` tasks in trust-4 deals (of 50 tasks at most) from a pool with six
//! workers, one of which answers wrong on every third task; every fifth task gets a single
//! contribution and is claimed once its deadline passed; the others reach a consensus, are
//! revealed and finalized.
//! Then a trust-1 deal of two tasks is computed and finalized in one step each.

use alloy::primitives::{Address, B256, U256, keccak256};

use crate::{
    Actor, DealTerms, Ledger, World,
    ledger::{LedgerError, Result},
    world::{RLC_UNIT, task_id},
};

/// What a run shows: the gas of each of its transactions, every task's final status, and what
/// every account (the burn account included) holds at the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// Each transaction of the run, in order: what it did, and its gas.
    pub steps: Vec<(String, u64)>,
    /// Each task's final status (3 completed, 4 failed).
    pub statuses: Vec<u8>,
    /// Each account's name, free and frozen balance at the end.
    pub holdings: Vec<(String, U256, U256)>,
}

/// The most tasks of one deal.
const DEAL_TASKS: u64 = 50;

/// The `TaskStatus` of a task that reached a consensus.
const REVEALING: u8 = 2;

/// Runs the scenario with a first deal of `tasks` tasks on `ledger`.
pub fn run<L: Ledger>(ledger: L, tasks: u64) -> Result<Trace> {
    let mut world = World::new(ledger)?;
    let mut steps = Vec::new();
    let app_owner = Actor::new("app owner");
    let scheduler = Actor::new("scheduler");
    let requester = Actor::new("requester");
    let workers: Vec<Actor> = (0..6).map(|i| Actor::new(format!("worker {i}"))).collect();
    let liar = &workers[0];
    // Enough for the deals' prices (3 RLC a task), the scheduler's stake on them, and the
    // stakes the liar loses.
    let deals = tasks + 2;
    for (actor, amount) in [(&requester, 3 * deals + 10), (&scheduler, deals + 10)]
        .into_iter()
        .chain(workers.iter().map(|worker| (worker, tasks + 1_000)))
    {
        let outcome = world.fund(actor.address(), amount * RLC_UNIT)?;
        steps.push((format!("fund {}", actor.name()), outcome.gas_used));
    }
    let app = world.create_app(&app_owner, "echo")?;
    let pool = world.create_workerpool(&scheduler)?;
    let terms = |trust: u64, volume: u64, salt: u64| DealTerms {
        app: (app, &app_owner),
        app_price: RLC_UNIT,
        pool: (pool, &scheduler),
        pool_price: 2 * RLC_UNIT,
        requester: &requester,
        trust,
        volume,
        tag: B256::ZERO,
        salt: B256::from(U256::from(salt)),
    };

    // The tasks go in deals of at most `DEAL_TASKS`: a deal's tasks must be done within its
    // deadlines, and every transaction takes a second.
    let mut deals = Vec::new();
    for first in (0..tasks).step_by(DEAL_TASKS as usize) {
        let volume = DEAL_TASKS.min(tasks - first);
        let (deal, outcome) = world.match_deal(&terms(4, volume, first + 10))?;
        steps.push(("matchOrders".into(), outcome.gas_used));
        let mut claimable = Vec::new();
        for idx in 0..volume {
            let number = first + idx;
            let (taskid, outcome) = world.initialize(&scheduler, &deal, idx)?;
            steps.push(("initialize".into(), outcome.gas_used));
            let honest = keccak256(format!("the result of task {number}"));
            let mut contributors: Vec<&Actor> = Vec::new();
            if number % 3 == 0 {
                let outcome =
                    world.contribute(&scheduler, liar, &deal, idx, B256::repeat_byte(0x66))?;
                steps.push(("contribute (wrong)".into(), outcome.gas_used));
                contributors.push(liar);
            }
            for worker in &workers[1..] {
                let outcome = world.contribute(&scheduler, worker, &deal, idx, honest)?;
                steps.push(("contribute".into(), outcome.gas_used));
                contributors.push(worker);
                if number % 5 == 4 || world.task(taskid)?.status == REVEALING {
                    break;
                }
            }
            let addresses: Vec<Address> =
                contributors.iter().map(|actor| actor.address()).collect();
            if number % 5 != 4 && world.task(taskid)?.status != REVEALING {
                return Err(LedgerError::Backend(format!(
                    "task {number} reached no consensus with {} contributions",
                    addresses.len()
                )));
            }
            if number % 5 == 4 {
                claimable.push((idx, addresses));
                continue;
            }
            for worker in contributors.iter().filter(|actor| actor.address() != liar.address()) {
                let outcome = world.reveal(worker, taskid, honest)?;
                steps.push(("reveal".into(), outcome.gas_used));
            }
            let outcome = world.finalize(&scheduler, &deal, idx, honest, addresses)?;
            steps.push(("finalize".into(), outcome.gas_used));
        }
        if !claimable.is_empty() {
            // Past every deadline of the deal (ten times the largest category's time reference).
            world.ledger.warp(30 * 24 * 3600);
            for (idx, contributors) in claimable {
                let outcome = world.claim(&requester, &deal, idx, contributors)?;
                steps.push(("claim".into(), outcome.gas_used));
            }
        }
        deals.push((deal, volume));
    }

    let (quick, outcome) = world.match_deal(&terms(1, 2, 1))?;
    steps.push(("matchOrders (trust 1)".into(), outcome.gas_used));
    for idx in 0..2 {
        let (_, outcome) = world.initialize(&scheduler, &quick, idx)?;
        steps.push(("initialize".into(), outcome.gas_used));
        let digest = keccak256(format!("the result of quick task {idx}"));
        let outcome =
            world.contribute_and_finalize(&scheduler, &workers[1], &quick, idx, digest)?;
        steps.push(("contributeAndFinalize".into(), outcome.gas_used));
    }

    let mut statuses = Vec::new();
    deals.push((quick, 2));
    for (deal, volume) in &deals {
        for idx in 0..*volume {
            statuses.push(world.task(task_id(deal, idx))?.status);
        }
    }
    let mut holdings = Vec::new();
    let burn = world.burn_account()?;
    for (name, account) in [app_owner, scheduler, requester]
        .into_iter()
        .chain(workers)
        .map(|actor| (actor.name().to_owned(), actor.address()))
        .chain([("burn account".to_owned(), burn)])
    {
        let (free, frozen) = world.account(account)?;
        holdings.push((name, free, frozen));
    }
    Ok(Trace { steps, statuses, holdings })
}
