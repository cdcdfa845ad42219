//! Chain reorganisations: the rows the replaced blocks changed, and the rollback that brings
//! the mirror, the book and the deals back to the state of the block before them; and the dump
//! of everything the store derived from the chain.
//!
//! A rollback to a fork point `F`, whose parent `F - 1` the new chain still holds:
//! - deals indexed at `F` or later are removed (tables referencing deals go with them, by
//!   their foreign keys), each with a `deal_removed` event;
//! - consumed volumes the chain changed since are those `viewConsumed` said at `F - 1`; a
//!   closing since is undone, one before is kept; a volume nothing consumed then is forgotten;
//! - registry entries changed since are those read at `F - 1` (an asset not registered then is
//!   forgotten); categories created since are forgotten; balances read since are read again at
//!   `F - 1`;
//! - every order whose status the chain gave at `F` or later, or whose consumed volume, asset
//!   or covering balance was read again, is decided again by [`after_rollback`]: open again
//!   with its volume when the match that filled it is undone, and checked as the chain at
//!   `F - 1` would check it;
//! - the recent blocks from `F` on are forgotten, and the checkpoint moves to `F`.
//!
//! A reorganisation deeper than the recent blocks the store keeps is a re-sync: the mirror and
//! the deals start again from nothing, every order not unpublished is open again with its whole
//! volume unless the cached balances (read again at the confirmed head) no longer cover it,
//! and the follower applies the chain again from the deployment's block, which fills, cancels
//! and kills them again as its events say.

use std::collections::{BTreeSet, HashMap};

use alloy::primitives::{Address, B256, U256};
use poco_primitives::OrderKind;

use super::{Backend, Columns, RowOf, WriteTx, deal_from_row, keyed, order_from_row, unsigned};
use crate::{
    error::{Error, Result},
    model::{MarketEvent, OrderEventType, OrderRecord, Status, StorageCode as _, kind_from_code},
    store::{
        AssetEntry, ChainDump, ORDER_COLUMNS, Param, Rollback, RollbackTargets, Sql, clamp_i64,
        rules::{RolledBack, after_rollback, coverage_refusal},
        to_address, to_hash, to_word,
    },
};

/// A block number as stored.
fn stored(block: u64) -> i64 {
    clamp_i64(U256::from(block))
}

/// The registry entry of an `assets` row.
fn asset_from_row(row: &impl Columns) -> Result<AssetEntry> {
    let ratio = |column: &str| -> Result<u8> {
        u8::try_from(row.int(column)?).map_err(|_| Error::Corrupt(format!("{column} out of range")))
    };
    Ok(AssetEntry {
        kind: kind_from_code(i16::try_from(row.int("kind")?).unwrap_or(-1))?,
        owner: to_address(&row.bytes("owner")?)?,
        worker_stake_ratio: ratio("worker_stake_ratio")?,
        scheduler_reward_ratio: ratio("scheduler_reward_ratio")?,
        active_members: u64::try_from(row.int("active_members")?)
            .map_err(|_| Error::Corrupt("active_members below zero".into()))?,
    })
}

/// The rows a rollback to `fork_point` reads again from the chain.
pub(super) async fn targets<B: Backend>(backend: &B, fork_point: u64) -> Result<RollbackTargets> {
    let mut connection = backend.reader().acquire().await?;
    let at = stored(fork_point);
    let mut targets = RollbackTargets::default();
    let sql =
        Sql::new("SELECT hash FROM consumed WHERE block >= $1 OR closed_block >= $1 ORDER BY hash")
            .arg(at);
    for row in B::fetch(&mut connection, &sql).await? {
        targets.consumed.push(to_hash(&row.bytes("hash")?)?);
    }
    let sql = Sql::new("SELECT asset, kind FROM assets WHERE block >= $1 ORDER BY asset").arg(at);
    for row in B::fetch(&mut connection, &sql).await? {
        let kind = kind_from_code(i16::try_from(row.int("kind")?).unwrap_or(-1))?;
        targets.assets.push((to_address(&row.bytes("asset")?)?, kind));
    }
    let sql = Sql::new("SELECT address FROM accounts WHERE as_of >= $1 ORDER BY address").arg(at);
    for row in B::fetch(&mut connection, &sql).await? {
        targets.accounts.push(to_address(&row.bytes("address")?)?);
    }
    Ok(targets)
}

/// Every cached account, for a re-sync.
pub(super) async fn accounts<B: Backend>(backend: &B) -> Result<Vec<Address>> {
    let mut connection = backend.reader().acquire().await?;
    let sql = Sql::new("SELECT address FROM accounts ORDER BY address");
    B::fetch(&mut connection, &sql)
        .await?
        .iter()
        .map(|row| to_address(&row.bytes("address")?))
        .collect()
}

/// The recent blocks the follower applied, oldest first.
pub(super) async fn recent_blocks<B: Backend>(backend: &B) -> Result<Vec<(u64, B256)>> {
    let mut connection = backend.reader().acquire().await?;
    let sql = Sql::new("SELECT number, hash FROM chain_blocks ORDER BY number");
    B::fetch(&mut connection, &sql)
        .await?
        .iter()
        .map(|row| Ok((unsigned(row.int("number")?), to_hash(&row.bytes("hash")?)?)))
        .collect()
}

/// The rows of the statement `text`, which has no parameters.
async fn rows<B: Backend>(
    connection: &mut <B::Db as sqlx::Database>::Connection,
    text: &str,
) -> Result<Vec<RowOf<B>>> {
    B::fetch(connection, &Sql::new(text)).await
}

/// What the store derived from the chain, in a fixed order.
pub(super) async fn dump<B: Backend>(backend: &B) -> Result<ChainDump> {
    let mut connection = backend.reader().acquire().await?;
    let connection = &mut *connection;
    let mut dump = ChainDump::default();
    let assets = rows::<B>(
        connection,
        "SELECT asset, kind, owner, worker_stake_ratio, scheduler_reward_ratio, active_members \
         FROM assets ORDER BY asset",
    )
    .await?;
    for row in &assets {
        dump.assets.push((to_address(&row.bytes("asset")?)?, asset_from_row(row)?));
    }
    for row in
        &rows::<B>(connection, "SELECT hash, amount, closed FROM consumed ORDER BY hash").await?
    {
        let hash = to_hash(&row.bytes("hash")?)?;
        dump.consumed.push((hash, to_word(&row.bytes("amount")?)?, row.int("closed")? != 0));
    }
    for row in &rows::<B>(connection, "SELECT id, timeref FROM categories ORDER BY id").await? {
        dump.categories.push((unsigned(row.int("id")?), unsigned(row.int("timeref")?)));
    }
    for row in
        &rows::<B>(connection, "SELECT address, balance FROM accounts ORDER BY address").await?
    {
        let balance = to_word(&row.bytes("balance")?)?;
        dump.balances.push((to_address(&row.bytes("address")?)?, balance));
    }
    for row in &rows::<B>(connection, "SELECT body FROM deals ORDER BY block, log_index").await? {
        dump.deals.push(deal_from_row(row)?);
    }
    for row in
        &rows::<B>(connection, "SELECT hash, status, remaining FROM orders ORDER BY hash").await?
    {
        let status = Status::from_code(i16::try_from(row.int("status")?).unwrap_or(-1))?;
        let hash = to_hash(&row.bytes("hash")?)?;
        dump.orders.push((hash, status, to_word(&row.bytes("remaining")?)?));
    }
    let task_events = "SELECT block, log_index, task_id, kind FROM task_events \
                       ORDER BY block, log_index";
    for row in &rows::<B>(connection, task_events).await? {
        let kind = i16::try_from(row.int("kind")?).unwrap_or(-1);
        dump.task_events.push((
            unsigned(row.int("block")?),
            unsigned(row.int("log_index")?),
            to_hash(&row.bytes("task_id")?)?,
            kind,
        ));
    }
    let account_events = "SELECT block, log_index, account, kind FROM account_events \
                          ORDER BY block, log_index";
    for row in &rows::<B>(connection, account_events).await? {
        let kind = i16::try_from(row.int("kind")?).unwrap_or(-1);
        dump.account_events.push((
            unsigned(row.int("block")?),
            unsigned(row.int("log_index")?),
            to_address(&row.bytes("account")?)?,
            kind,
        ));
    }
    let scores = "SELECT account, block, score FROM worker_scores ORDER BY account, block";
    for row in &rows::<B>(connection, scores).await? {
        dump.scores.push((
            to_address(&row.bytes("account")?)?,
            unsigned(row.int("block")?),
            unsigned(row.int("score")?),
        ));
    }
    Ok(dump)
}

impl<B: Backend> WriteTx<B> {
    /// Undoes the effects of the blocks from `rollback.fork_point` on, if the checkpoint is
    /// `rollback.checkpoint`; returns false otherwise, having changed nothing.
    pub(super) async fn rollback(&mut self, rollback: &Rollback) -> Result<bool> {
        let checkpoint = Sql::new("SELECT next_block FROM follower WHERE id = 1");
        match self.fetch_optional(&checkpoint).await? {
            Some(row) if unsigned(row.int("next_block")?) == rollback.checkpoint => {}
            _ => return Ok(false),
        }
        let fork = stored(rollback.fork_point);
        let removed = match rollback.common {
            Some(_) => {
                Sql::new("SELECT body FROM deals WHERE block >= $1 ORDER BY block, log_index")
                    .arg(fork)
            }
            None => Sql::new("SELECT body FROM deals ORDER BY block, log_index"),
        };
        for row in self.fetch(&removed).await? {
            self.emit(MarketEvent::deal_removed(deal_from_row(&row)?));
        }
        match rollback.common {
            Some(common) => self.roll_back_to(rollback, stored(common)).await?,
            None => self.start_again(rollback).await?,
        }
        let sql = Sql::new("DELETE FROM chain_blocks WHERE number >= $1").arg(fork);
        self.execute(&sql).await?;
        let sql = Sql::new("UPDATE follower SET next_block = $1, updated_at = $2 WHERE id = 1")
            .arg(fork)
            .arg(self.now);
        self.execute(&sql).await?;
        Ok(true)
    }

    /// The mirror as it was at block `common`, from the rows read there.
    async fn roll_back_to(&mut self, rollback: &Rollback, common: i64) -> Result<()> {
        let fork = stored(rollback.fork_point);
        self.execute(&Sql::new("DELETE FROM deals WHERE block >= $1").arg(fork)).await?;
        self.execute(&Sql::new("DELETE FROM categories WHERE block >= $1").arg(fork)).await?;
        self.execute(&Sql::new("DELETE FROM task_events WHERE block >= $1").arg(fork)).await?;
        self.execute(&Sql::new("DELETE FROM account_events WHERE block >= $1").arg(fork)).await?;
        self.execute(&Sql::new("DELETE FROM worker_scores WHERE block >= $1").arg(fork)).await?;
        let mut affected = BTreeSet::new();
        for (hash, amount) in &rollback.consumed {
            let sql =
                Sql::new("SELECT closed, closed_block FROM consumed WHERE hash = $1").arg(*hash);
            let Some(row) = self.fetch_optional(&sql).await? else { continue };
            let closed_before = row.int("closed")? != 0
                && row.opt_int("closed_block")?.is_none_or(|block| block < fork);
            let sql = if closed_before {
                // Closed before the fork: nothing was consumed since, the closing stays.
                Sql::new("UPDATE consumed SET block = $2 WHERE hash = $1").arg(*hash).arg(common)
            } else if amount.is_zero() {
                Sql::new("DELETE FROM consumed WHERE hash = $1").arg(*hash)
            } else {
                Sql::new(
                    "UPDATE consumed SET amount = $2, closed = 0, closed_block = NULL, \
                     block = $3 WHERE hash = $1",
                )
                .arg(*hash)
                .arg(*amount)
                .arg(common)
            };
            self.execute(&sql).await?;
            affected.insert(*hash);
        }
        self.check_repaired("consumed", "block >= $1 OR closed_block >= $1", fork).await?;
        let mut assets = Vec::new();
        for (asset, entry) in &rollback.assets {
            let sql = match entry {
                None => Sql::new("DELETE FROM assets WHERE asset = $1").arg(*asset),
                // Apps and datasets have an owner only.
                Some(entry) if entry.kind != OrderKind::Workerpool => {
                    Sql::new("UPDATE assets SET owner = $2, block = $3 WHERE asset = $1")
                        .arg(*asset)
                        .arg(entry.owner)
                        .arg(common)
                }
                Some(entry) => Sql::new(
                    "UPDATE assets SET owner = $2, worker_stake_ratio = $3, \
                     scheduler_reward_ratio = $4, active_members = $5, block = $6 \
                     WHERE asset = $1",
                )
                .arg(*asset)
                .arg(entry.owner)
                .arg(i64::from(entry.worker_stake_ratio))
                .arg(i64::from(entry.scheduler_reward_ratio))
                .arg(clamp_i64(U256::from(entry.active_members)))
                .arg(common),
            };
            self.execute(&sql).await?;
            assets.push(Param::from(*asset));
        }
        self.check_repaired("assets", "block >= $1", fork).await?;
        self.restore_balances(rollback).await?;
        let accounts: Vec<Param> =
            rollback.balances.iter().map(|(account, _)| Param::from(*account)).collect();
        // The orders whose status the replaced blocks gave, and those that depend on a row
        // read again.
        let sql = Sql::new("SELECT hash FROM orders WHERE chain_block >= $1").arg(fork);
        for row in self.fetch(&sql).await? {
            affected.insert(to_hash(&row.bytes("hash")?)?);
        }
        for sql in keyed("SELECT hash, kind FROM orders", "asset", assets) {
            for row in self.fetch(&sql).await? {
                if row.int("kind")? != 3 {
                    affected.insert(to_hash(&row.bytes("hash")?)?);
                }
            }
        }
        for sql in keyed("SELECT hash, kind FROM orders", "owner", accounts) {
            for row in self.fetch(&sql).await? {
                if matches!(row.int("kind")?, 2 | 3) {
                    affected.insert(to_hash(&row.bytes("hash")?)?);
                }
            }
        }
        for hash in affected {
            self.decide_again(hash, fork, common).await?;
        }
        Ok(())
    }

    /// Fails when rows of `table` still say the chain changed them at the fork point or later:
    /// the rollback was planned before they were written, and must be planned again.
    async fn check_repaired(&mut self, table: &str, changed: &str, fork: i64) -> Result<()> {
        let sql = Sql::new(&format!("SELECT COUNT(*) AS n FROM {table} WHERE {changed}")).arg(fork);
        let left = self.fetch_one(&sql).await?.int("n")?;
        if left > 0 {
            return Err(Error::Internal(format!(
                "{left} rows of {table} changed after the rollback was planned"
            )));
        }
        Ok(())
    }

    /// Decides order `hash` again against the mirror rolled back to block `common`.
    async fn decide_again(&mut self, hash: B256, fork: i64, common: i64) -> Result<()> {
        let sql =
            Sql::new(&format!("SELECT {ORDER_COLUMNS}, chain_block FROM orders WHERE hash = $1"))
                .arg(hash);
        let Some(row) = self.fetch_optional(&sql).await? else { return Ok(()) };
        let mut record = order_from_row(&row)?;
        let undone = row.opt_int("chain_block")?.is_some_and(|block| block >= fork);
        let sql = Sql::new("SELECT amount, closed FROM consumed WHERE hash = $1").arg(hash);
        let consumed = match self.fetch_optional(&sql).await? {
            Some(row) => Some((to_word(&row.bytes("amount")?)?, row.int("closed")? != 0)),
            None => None,
        };
        let sql = Sql::new("SELECT owner FROM assets WHERE asset = $1").arg(record.order.asset());
        let owner = match self.fetch_optional(&sql).await? {
            Some(row) => Some(to_address(&row.bytes("owner")?)?),
            None => None,
        };
        let sql = Sql::new("SELECT balance FROM accounts WHERE address = $1").arg(record.owner);
        let balance = match self.fetch_optional(&sql).await? {
            Some(row) => Some(to_word(&row.bytes("balance")?)?),
            None => None,
        };
        let mirror = RolledBack { undone, consumed, owner, balance };
        let Some((status, remaining, reason)) = after_rollback(&record, mirror) else {
            if undone {
                // Its status stands as of the common block.
                self.set_chain_block(hash, (record.status != Status::Open).then_some(common))
                    .await?;
            }
            return Ok(());
        };
        let event = if status == record.status {
            OrderEventType::Updated
        } else {
            OrderEventType::for_status(status)
        };
        record.status = status;
        record.remaining = remaining;
        record.reason = reason;
        record.updated_at = self.now;
        self.update_order(&record).await?;
        self.set_chain_block(hash, (status != Status::Open).then_some(common)).await?;
        self.emit(MarketEvent::order(event, record.view()));
        Ok(())
    }

    /// Writes the balances the rollback read again, as of its block.
    async fn restore_balances(&mut self, rollback: &Rollback) -> Result<()> {
        for (account, balance) in &rollback.balances {
            let sql = Sql::new("UPDATE accounts SET balance = $2, as_of = $3 WHERE address = $1")
                .arg(*account)
                .arg(*balance)
                .arg(stored(rollback.balance_block));
            self.execute(&sql).await?;
        }
        Ok(())
    }

    /// The mirror from nothing, for a re-sync from the deployment's block: every order not
    /// unpublished is open again with its whole volume, unless its stake is not covered.
    async fn start_again(&mut self, rollback: &Rollback) -> Result<()> {
        for table in [
            "deals",
            "consumed",
            "assets",
            "categories",
            "task_events",
            "account_events",
            "worker_scores",
        ] {
            self.execute(&Sql::new(&format!("DELETE FROM {table}"))).await?;
        }
        self.restore_balances(rollback).await?;
        let balances: HashMap<Address, U256> = rollback.balances.iter().copied().collect();
        let sql = Sql::new(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE status <> $1 ORDER BY published_at, hash"
        ))
        .arg(i64::from(Status::Unpublished.code()));
        for row in self.fetch(&sql).await? {
            let mut record: OrderRecord = order_from_row(&row)?;
            let before = (record.status, record.remaining, record.reason.clone());
            record.status = Status::Open;
            record.remaining = record.order.volume();
            record.reason = None;
            let kind = record.order.kind();
            if let (Some(per_task), Some(balance)) =
                (record.order.coverage_per_task(), balances.get(&record.owner))
                && let Some(refusal) =
                    coverage_refusal(kind, record.owner, per_task, record.remaining, *balance)
            {
                record.status = Status::Dead;
                record.reason = Some(format!("no longer covered: {refusal}"));
            }
            let block = (record.status != Status::Open).then_some(stored(rollback.balance_block));
            self.set_chain_block(record.hash, block).await?;
            if before == (record.status, record.remaining, record.reason.clone()) {
                continue;
            }
            let event = if before.0 == record.status {
                OrderEventType::Updated
            } else {
                OrderEventType::for_status(record.status)
            };
            record.updated_at = self.now;
            self.update_order(&record).await?;
            self.emit(MarketEvent::order(event, record.view()));
        }
        Ok(())
    }
}
