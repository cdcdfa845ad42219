//! The chain's events, applied to the mirror, the book and the deals in the transaction that
//! moves the follower's checkpoint: one function per [`ChainEvent`], called by
//! [`WriteTx::apply_event`].

use std::collections::HashMap;

use alloy::primitives::{Address, B256, U256};
use poco_primitives::{Deal, OrderKind};

use super::{Backend, Columns, WriteTx, order_from_row, store_balance_sql, unsigned};
use crate::model::StorageCode as _;
use crate::store::Param;
use crate::{
    error::{Error, Result},
    model::{DealView, MarketEvent, OrderEventType, Status, kind_code, kind_name},
    store::{
        ChainBatch, ChainEvent, LocatedChainEvent, ORDER_COLUMNS, Sql, TASKS_INDEXED_PER_DEAL,
        clamp_i64,
        rules::{after_consumption, coverage_refusal},
        to_word,
    },
};

/// Rows of the task index one statement inserts (three parameters each).
const TASK_ROWS_PER_STATEMENT: usize = 250;

/// The orders an `OrdersMatched` event consumed, for the `DealCreated` event that follows it
/// in the same transaction.
#[derive(Debug, Clone, Copy)]
struct MatchedOrders {
    app_hash: B256,
    dataset_hash: B256,
    workerpool_hash: B256,
    request_hash: B256,
    volume: U256,
}

/// The matches of a batch so far, by deal id.
type Matches = HashMap<B256, MatchedOrders>;

impl<B: Backend> WriteTx<B> {
    /// Applies `batch` and moves the checkpoint to `batch.next`, if the checkpoint is
    /// `batch.from` (or was never set); returns false otherwise, having changed nothing. With a
    /// `tip` (the hash of the batch's last block, and how many such blocks to keep), records
    /// that block among the recent ones.
    pub(super) async fn apply_batch(
        &mut self,
        batch: &ChainBatch,
        tip: Option<(B256, usize)>,
    ) -> Result<bool> {
        let checkpoint = Sql::new("SELECT next_block FROM follower WHERE id = 1");
        match self.fetch_optional(&checkpoint).await? {
            Some(row) if unsigned(row.int("next_block")?) != batch.from => return Ok(false),
            Some(_) => {}
            None => {
                let sql = Sql::new(
                    "INSERT INTO follower (id, next_block, updated_at) VALUES (1, $1, $2)",
                )
                .arg(clamp_i64(U256::from(batch.from)))
                .arg(self.now);
                self.execute(&sql).await?;
            }
        }
        let mut matches = Matches::new();
        for located in &batch.events {
            self.apply_event(located, &mut matches).await?;
        }
        for (account, balance) in &batch.balances {
            self.apply_balance(*account, *balance, batch.balance_block).await?;
        }
        let sql = Sql::new("UPDATE follower SET next_block = $1, updated_at = $2 WHERE id = 1")
            .arg(clamp_i64(U256::from(batch.next)))
            .arg(self.now);
        self.execute(&sql).await?;
        if let Some((hash, window)) = tip {
            self.record_block(batch.next.saturating_sub(1), hash, window).await?;
        }
        Ok(true)
    }

    /// Records block `number` (of hash `hash`) as applied, keeping the `window` newest.
    async fn record_block(&mut self, number: u64, hash: B256, window: usize) -> Result<()> {
        let sql = Sql::new(
            "INSERT INTO chain_blocks (number, hash) VALUES ($1, $2) \
             ON CONFLICT (number) DO UPDATE SET hash = excluded.hash",
        )
        .arg(clamp_i64(U256::from(number)))
        .arg(hash);
        self.execute(&sql).await?;
        let sql = Sql::new(
            "DELETE FROM chain_blocks WHERE number < (SELECT number FROM chain_blocks \
             ORDER BY number DESC LIMIT 1 OFFSET $1)",
        )
        .arg(clamp_i64(U256::from(window.max(1) - 1)));
        self.execute(&sql).await?;
        Ok(())
    }

    /// Applies one chain event.
    async fn apply_event(
        &mut self,
        located: &LocatedChainEvent,
        matches: &mut Matches,
    ) -> Result<()> {
        let block = located.block;
        match &located.event {
            ChainEvent::AssetTransfer { kind, asset, from, to } => {
                self.apply_asset_transfer(*kind, *asset, *from, *to, block).await
            }
            ChainEvent::PolicyUpdate { workerpool, worker_stake_ratio, scheduler_reward_ratio } => {
                let ratios = (*worker_stake_ratio, *scheduler_reward_ratio);
                self.apply_policy_update(*workerpool, ratios, block).await
            }
            ChainEvent::Membership { workerpool, joined } => {
                self.apply_membership(*workerpool, *joined, block).await
            }
            ChainEvent::OrdersMatched {
                deal_id,
                app_hash,
                dataset_hash,
                workerpool_hash,
                request_hash,
                volume,
            } => {
                let matched = MatchedOrders {
                    app_hash: *app_hash,
                    dataset_hash: *dataset_hash,
                    workerpool_hash: *workerpool_hash,
                    request_hash: *request_hash,
                    volume: *volume,
                };
                self.apply_orders_matched(*deal_id, matched, matches, block).await
            }
            ChainEvent::DealCreated { deal_id, deal, params } => {
                self.apply_deal_created(located, *deal_id, deal, params, matches).await
            }
            ChainEvent::Closed { hash } => self.apply_order_closed(*hash, block).await,
            ChainEvent::Category { id, timeref } => self.apply_category(*id, *timeref, block).await,
            ChainEvent::Task { task_id, kind, account, word, results } => {
                let sql = Sql::new(
                    "INSERT INTO task_events (block, log_index, tx_hash, task_id, kind, account, \
                     word, results) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (block, log_index) DO NOTHING",
                )
                .arg(clamp_i64(U256::from(block)))
                .arg(clamp_i64(U256::from(located.log_index)))
                .arg(located.transaction)
                .arg(*task_id)
                .arg(i64::from(kind.code()))
                .arg(account.map(|a| a.to_vec()))
                .arg(word.map(|w| w.to_vec()))
                .arg(results.as_ref().map(|r| r.to_vec()));
                self.execute(&sql).await.map(|_| ())
            }
            ChainEvent::Score { worker, score } => {
                let sql = Sql::new(
                    "INSERT INTO worker_scores (account, block, score) VALUES ($1, $2, $3) \
                     ON CONFLICT (account, block) DO UPDATE SET score = excluded.score",
                )
                .arg(*worker)
                .arg(clamp_i64(U256::from(block)))
                .arg(clamp_i64(U256::from(*score)));
                self.execute(&sql).await.map(|_| ())
            }
            ChainEvent::Account { account, kind, workerpool, amount } => {
                let sql = Sql::new(
                    "INSERT INTO account_events (block, log_index, tx_hash, account, kind, \
                     workerpool, amount) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (block, log_index) DO NOTHING",
                )
                .arg(clamp_i64(U256::from(block)))
                .arg(clamp_i64(U256::from(located.log_index)))
                .arg(located.transaction)
                .arg(*account)
                .arg(i64::from(kind.code()))
                .arg(workerpool.map(|a| a.to_vec()))
                .arg(amount.map(|a| a.to_be_bytes::<32>().to_vec()));
                self.execute(&sql).await.map(|_| ())
            }
        }
    }

    /// A registry token moved: the mirror records its owner; on a change of owner, the open
    /// orders the previous owner signed for it die.
    async fn apply_asset_transfer(
        &mut self,
        kind: OrderKind,
        asset: Address,
        from: Address,
        to: Address,
        block: u64,
    ) -> Result<()> {
        let sql = Sql::new(
            "INSERT INTO assets (asset, kind, owner, worker_stake_ratio, scheduler_reward_ratio, \
             block) VALUES ($1, $2, $3, 30, 1, $4) ON CONFLICT (asset) DO UPDATE SET \
             owner = excluded.owner, block = excluded.block",
        )
        .arg(asset)
        .arg(i64::from(kind_code(kind)))
        .arg(to)
        .arg(clamp_i64(U256::from(block)));
        self.execute(&sql).await?;
        if from.is_zero() || from == to {
            return Ok(());
        }
        let reason = format!(
            "the {} was transferred from {from} to {to}: its orders signed by the previous owner \
             are void",
            kind_name(kind)
        );
        let sql = Sql::new(&format!(
            "UPDATE orders SET status = $1, reason = $2, updated_at = $3, chain_block = $7 \
             WHERE kind = $4 AND asset = $5 AND owner = $6 AND status = 0 \
             RETURNING {ORDER_COLUMNS}"
        ))
        .arg(i64::from(Status::Dead.code()))
        .arg(reason)
        .arg(self.now)
        .arg(i64::from(kind_code(kind)))
        .arg(asset)
        .arg(from)
        .arg(clamp_i64(U256::from(block)));
        for row in self.fetch(&sql).await? {
            self.emit(MarketEvent::order(OrderEventType::Dead, order_from_row(&row)?.view()));
        }
        Ok(())
    }

    /// A workerpool's policy changed.
    async fn apply_policy_update(
        &mut self,
        workerpool: Address,
        (worker_stake_ratio, scheduler_reward_ratio): (u8, u8),
        block: u64,
    ) -> Result<()> {
        let sql = Sql::new(
            "UPDATE assets SET worker_stake_ratio = $2, scheduler_reward_ratio = $3, block = $4 \
             WHERE asset = $1",
        )
        .arg(workerpool)
        .arg(i64::from(worker_stake_ratio))
        .arg(i64::from(scheduler_reward_ratio))
        .arg(clamp_i64(U256::from(block)));
        self.execute(&sql).await?;
        Ok(())
    }

    /// A worker joined or left a workerpool's active set.
    async fn apply_membership(
        &mut self,
        workerpool: Address,
        joined: bool,
        block: u64,
    ) -> Result<()> {
        let sql = Sql::new(
            "UPDATE assets SET active_members = active_members + $2, block = $3 WHERE asset = $1",
        )
        .arg(workerpool)
        .arg(if joined { 1_i64 } else { -1_i64 })
        .arg(clamp_i64(U256::from(block)));
        self.execute(&sql).await?;
        Ok(())
    }

    /// `OrdersMatched`: the deal's volume is consumed from each of its orders, and the match
    /// is kept for the deal's `DealCreated`.
    async fn apply_orders_matched(
        &mut self,
        deal_id: B256,
        matched: MatchedOrders,
        matches: &mut Matches,
        block: u64,
    ) -> Result<()> {
        let MatchedOrders { app_hash, dataset_hash, workerpool_hash, request_hash, volume } =
            matched;
        for hash in [app_hash, dataset_hash, workerpool_hash, request_hash] {
            if !hash.is_zero() {
                self.consume(hash, volume, false, block).await?;
            }
        }
        matches.insert(deal_id, matched);
        Ok(())
    }

    /// `DealCreated`: the deal is indexed, with the orders its `OrdersMatched` consumed (when
    /// that event is not in the same batch: its request and its size only).
    async fn apply_deal_created(
        &mut self,
        located: &LocatedChainEvent,
        deal_id: B256,
        deal: &Deal,
        params: &str,
        matches: &Matches,
    ) -> Result<()> {
        let matched = matches.get(&deal_id).copied().unwrap_or(MatchedOrders {
            app_hash: B256::ZERO,
            dataset_hash: B256::ZERO,
            workerpool_hash: B256::ZERO,
            request_hash: deal.requestHash,
            volume: deal.botSize,
        });
        let view = DealView {
            deal_id,
            deal: deal.clone(),
            params: params.to_owned(),
            volume: matched.volume,
            app_hash: matched.app_hash,
            dataset_hash: matched.dataset_hash,
            workerpool_hash: matched.workerpool_hash,
            request_hash: matched.request_hash,
            block: located.block,
            transaction: located.transaction,
            log_index: located.log_index,
        };
        let body = serde_json::to_string(&view).map_err(|e| Error::Internal(e.to_string()))?;
        let sql = Sql::new(
            "INSERT INTO deals (deal_id, block, log_index, app, dataset, workerpool, requester, \
             beneficiary, sponsor, app_owner, dataset_owner, scheduler, category, request_hash, \
             body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (deal_id) DO NOTHING",
        )
        .arg(deal_id)
        .arg(clamp_i64(U256::from(located.block)))
        .arg(clamp_i64(U256::from(located.log_index)))
        .arg(deal.app)
        .arg(deal.dataset)
        .arg(deal.workerpool)
        .arg(deal.requester)
        .arg(deal.beneficiary)
        .arg(deal.sponsor)
        .arg(deal.appOwner)
        .arg(deal.datasetOwner)
        .arg(deal.scheduler)
        .arg(clamp_i64(deal.category))
        .arg(deal.requestHash)
        .arg(body);
        if self.execute(&sql).await? == 1 {
            self.index_tasks(deal_id, deal).await?;
            self.emit(MarketEvent::deal(view));
        }
        Ok(())
    }

    /// Indexes the first [`TASKS_INDEXED_PER_DEAL`] tasks of a deal just inserted: task id →
    /// deal and index. A deal of a larger volume costs the market no more than that (a match
    /// can ask for any volume, at any price, zero included).
    async fn index_tasks(&mut self, deal_id: B256, deal: &Deal) -> Result<()> {
        let tasks: Vec<(U256, B256)> = deal.tasks().take(TASKS_INDEXED_PER_DEAL as usize).collect();
        for chunk in tasks.chunks(TASK_ROWS_PER_STATEMENT) {
            let mut sql = Sql::new("INSERT INTO deal_tasks (task_id, deal_id, idx) VALUES ");
            let deal = sql.bind(deal_id.into());
            let rows: Vec<String> = chunk
                .iter()
                .map(|(index, task_id)| {
                    let task = sql.bind((*task_id).into());
                    let index = sql.bind((*index).into());
                    format!("({task}, {deal}, {index})")
                })
                .collect();
            sql.push(&rows.join(", "));
            sql.push(" ON CONFLICT (task_id) DO NOTHING");
            self.execute(&sql).await?;
        }
        Ok(())
    }

    /// `Closed*Order`: the order's volume is consumed in full.
    async fn apply_order_closed(&mut self, hash: B256, block: u64) -> Result<()> {
        self.consume(hash, U256::ZERO, true, block).await
    }

    /// `CreateCategory`.
    async fn apply_category(&mut self, id: u64, timeref: u64, block: u64) -> Result<()> {
        let sql = Sql::new(
            "INSERT INTO categories (id, timeref, block) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET timeref = excluded.timeref, block = excluded.block",
        )
        .arg(clamp_i64(U256::from(id)))
        .arg(clamp_i64(U256::from(timeref)))
        .arg(clamp_i64(U256::from(block)));
        self.execute(&sql).await?;
        Ok(())
    }

    /// Adds `volume` to the consumed volume of `hash` (closing it if `closed`) at `block`, and
    /// updates its order, if the book has it.
    async fn consume(&mut self, hash: B256, volume: U256, closed: bool, block: u64) -> Result<()> {
        let sql =
            Sql::new("SELECT amount, closed, closed_block FROM consumed WHERE hash = $1").arg(hash);
        let (before, was_closed, closed_block) = match self.fetch_optional(&sql).await? {
            Some(row) => (
                to_word(&row.bytes("amount")?)?,
                row.int("closed")? != 0,
                row.opt_int("closed_block")?,
            ),
            None => (U256::ZERO, false, None),
        };
        let consumed = before.saturating_add(volume);
        let block = clamp_i64(U256::from(block));
        let closed_block = if closed && !was_closed { Some(block) } else { closed_block };
        let closed = closed || was_closed;
        let sql = Sql::new(
            "INSERT INTO consumed (hash, amount, closed, block, closed_block) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash) DO UPDATE SET \
             amount = excluded.amount, closed = excluded.closed, block = excluded.block, \
             closed_block = excluded.closed_block",
        )
        .arg(hash)
        .arg(consumed)
        .arg(i64::from(closed))
        .arg(block)
        .arg(Param::from_opt_int(closed_block));
        self.execute(&sql).await?;
        let Some(mut record) = self.order(hash).await? else { return Ok(()) };
        let Some((status, remaining, event)) = after_consumption(&record, consumed, closed) else {
            return Ok(());
        };
        let status_changed = status != record.status;
        record.status = status;
        record.remaining = remaining;
        record.updated_at = self.now;
        if status == Status::Cancelled {
            record.reason = Some("closed on-chain by its owner".into());
        }
        self.update_order(&record).await?;
        if status_changed {
            self.set_chain_block(hash, Some(block)).await?;
        }
        self.emit(MarketEvent::order(event, record.view()));
        Ok(())
    }

    /// Caches the free balance of `account` read at block `as_of` (unless a newer one is
    /// cached) and kills the orders that the cached balance no longer covers.
    async fn apply_balance(&mut self, account: Address, balance: U256, as_of: u64) -> Result<()> {
        self.execute(&store_balance_sql(account, balance, as_of)).await?;
        let sql = Sql::new("SELECT balance FROM accounts WHERE address = $1").arg(account);
        let current = to_word(&self.fetch_one(&sql).await?.bytes("balance")?)?;
        self.check_coverage(account, current, as_of).await
    }

    /// Kills the open workerpool and request orders of `account` that `balance`, read at
    /// `block`, no longer covers.
    pub(super) async fn check_coverage(
        &mut self,
        account: Address,
        balance: U256,
        block: u64,
    ) -> Result<()> {
        let sql = Sql::new(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE owner = $1 AND status = 0 \
             AND kind IN (2, 3) ORDER BY published_at, hash"
        ))
        .arg(account);
        for row in self.fetch(&sql).await? {
            let mut record = order_from_row(&row)?;
            let Some(per_task) = record.order.coverage_per_task() else { continue };
            let kind = record.order.kind();
            let Some(refusal) =
                coverage_refusal(kind, account, per_task, record.remaining, balance)
            else {
                continue;
            };
            record.status = Status::Dead;
            record.updated_at = self.now;
            record.reason = Some(format!("no longer covered: {refusal}"));
            self.update_order(&record).await?;
            self.set_chain_block(record.hash, Some(clamp_i64(U256::from(block)))).await?;
            self.emit(MarketEvent::order(OrderEventType::Dead, record.view()));
        }
        Ok(())
    }
}
