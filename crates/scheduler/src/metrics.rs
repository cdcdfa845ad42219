//! Prometheus metrics of the scheduler.

use std::{
    fmt::Write as _,
    sync::atomic::{AtomicU64, Ordering},
};

/// A monotonic counter.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The scheduler's counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) assignments: Counter,
    pub(crate) transactions: Counter,
    pub(crate) failures: Counter,
    pub(crate) requests: Counter,
    pub(crate) refused: Counter,
    pub(crate) reorgs: Counter,
    pub(crate) hand_backs: Counter,
}

impl Metrics {
    /// The Prometheus text exposition of the counters and of the given gauges.
    pub(crate) fn render(
        &self,
        tasks: &[(String, i64)],
        workers_alive: i64,
        workers_unhealthy: i64,
        checkpoint: u64,
    ) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        counter(
            "poco_scheduler_assignments_total",
            "Replicas handed to workers.",
            self.assignments.get(),
        );
        counter(
            "poco_scheduler_transactions_total",
            "Transactions mined.",
            self.transactions.get(),
        );
        counter(
            "poco_scheduler_transaction_failures_total",
            "Transaction steps that failed.",
            self.failures.get(),
        );
        counter("poco_scheduler_requests_total", "Worker API requests.", self.requests.get());
        counter(
            "poco_scheduler_requests_refused_total",
            "Worker API requests refused.",
            self.refused.get(),
        );
        counter(
            "poco_scheduler_reorgs_total",
            "Chain reorganisations repaired: replaced blocks undone.",
            self.reorgs.get(),
        );
        counter(
            "poco_scheduler_hand_backs_total",
            "Tasks handed back by their workers (a disk full...) and given to the next one.",
            self.hand_backs.get(),
        );
        let _ = writeln!(
            out,
            "# HELP poco_scheduler_tasks Tasks by stage.\n# TYPE poco_scheduler_tasks gauge"
        );
        for (stage, count) in tasks {
            let _ = writeln!(out, "poco_scheduler_tasks{{stage=\"{stage}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP poco_scheduler_workers_alive Workers heard from recently.\n\
             # TYPE poco_scheduler_workers_alive gauge\npoco_scheduler_workers_alive {workers_alive}"
        );
        let _ = writeln!(
            out,
            "# HELP poco_scheduler_workers_unhealthy Workers heard from recently whose last \
             heartbeat said they take no new work (a data folder short of space...).\n\
             # TYPE poco_scheduler_workers_unhealthy gauge\n\
             poco_scheduler_workers_unhealthy {workers_unhealthy}"
        );
        let _ = writeln!(
            out,
            "# HELP poco_scheduler_checkpoint_block Next block to follow.\n\
             # TYPE poco_scheduler_checkpoint_block gauge\npoco_scheduler_checkpoint_block {checkpoint}"
        );
        out
    }
}
