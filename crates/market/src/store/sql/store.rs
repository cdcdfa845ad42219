//! Every [`Backend`] is a [`Store`]: reads run on a reader connection, writes in a
//! [`WriteTx`].

use alloy::primitives::{Address, B256, U256};
use tokio::sync::broadcast;

use super::{
    Backend, Columns, RowOf, WriteTx, deal_from_row, keyed, order_from_row, order_sql, reorg,
    store_balance_sql, unsigned,
};
use crate::{
    error::{Error, Result},
    model::{DealView, MarketEvent, OrderRecord, kind_from_code},
    store::{
        AssetEntry, ChainBatch, ChainDump, DealQuery, Leadership, OrderCursor, OrderQuery, Page,
        Param, Publication, Published, Rollback, RollbackTargets, Sql, Store, StoreFuture,
        deal_query_sql, encode_deal_cursor, order_query_sql, to_address, to_word,
    },
};

/// Runs `sql` on a reader connection.
async fn read<B: Backend>(backend: &B, sql: &Sql) -> Result<Vec<RowOf<B>>> {
    let mut connection = backend.reader().acquire().await?;
    B::fetch(&mut connection, sql).await
}

/// The first row of `sql` (which selects by key), read on a reader connection.
async fn read_optional<B: Backend>(backend: &B, sql: &Sql) -> Result<Option<RowOf<B>>> {
    Ok(read(backend, sql).await?.into_iter().next())
}

/// Splits `limit + 1` fetched items into a page and its next cursor.
fn paginate<T>(mut items: Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next }
}

impl<B: Backend> Store for B {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    fn subscribe(&self) -> broadcast::Receiver<MarketEvent> {
        self.events().subscribe()
    }

    fn order(&self, hash: B256) -> StoreFuture<'_, Option<OrderRecord>> {
        Box::pin(async move {
            read_optional(self, &order_sql(hash)).await?.as_ref().map(order_from_row).transpose()
        })
    }

    fn orders(&self, query: OrderQuery) -> StoreFuture<'_, Page<OrderRecord>> {
        Box::pin(async move {
            let sql = order_query_sql(&query)?;
            let rows = read(self, &sql).await?;
            let records = rows.iter().map(order_from_row).collect::<Result<Vec<_>>>()?;
            Ok(paginate(records, query.limit, |r| OrderCursor::of(r).encode()))
        })
    }

    fn open_counts(&self) -> StoreFuture<'_, [u64; 4]> {
        Box::pin(async move {
            let sql =
                Sql::new("SELECT kind, COUNT(*) AS n FROM orders WHERE status = 0 GROUP BY kind");
            let mut counts = [0u64; 4];
            for row in &read(self, &sql).await? {
                if let Some(slot) =
                    usize::try_from(row.int("kind")?).ok().and_then(|kind| counts.get_mut(kind))
                {
                    *slot = unsigned(row.int("n")?);
                }
            }
            Ok(counts)
        })
    }

    fn publish(&self, batch: Vec<Publication>) -> StoreFuture<'_, Vec<Result<Published>>> {
        Box::pin(async move {
            let mut tx = WriteTx::begin(self).await?;
            let outcomes = tx.publish(batch).await?;
            tx.commit(self).await?;
            Ok(outcomes)
        })
    }

    fn unpublish(
        &self,
        hash: B256,
        authorization: B256,
        expiry: u64,
    ) -> StoreFuture<'_, OrderRecord> {
        Box::pin(async move {
            let mut tx = WriteTx::begin(self).await?;
            let record = tx.unpublish(hash, authorization, expiry).await?;
            tx.commit(self).await?;
            Ok(record)
        })
    }

    fn asset(&self, asset: Address) -> StoreFuture<'_, Option<AssetEntry>> {
        Box::pin(async move {
            let sql = Sql::new(
                "SELECT kind, owner, worker_stake_ratio, scheduler_reward_ratio, active_members \
                 FROM assets WHERE asset = $1",
            )
            .arg(asset);
            let Some(row) = read_optional(self, &sql).await? else { return Ok(None) };
            let ratio = |column: &str| -> Result<u8> {
                u8::try_from(row.int(column)?)
                    .map_err(|_| Error::Corrupt(format!("{column} out of range")))
            };
            Ok(Some(AssetEntry {
                kind: kind_from_code(i16::try_from(row.int("kind")?).unwrap_or(-1))?,
                owner: to_address(&row.bytes("owner")?)?,
                worker_stake_ratio: ratio("worker_stake_ratio")?,
                scheduler_reward_ratio: ratio("scheduler_reward_ratio")?,
                active_members: u64::try_from(row.int("active_members")?)
                    .map_err(|_| Error::Corrupt("active_members below zero".into()))?,
            }))
        })
    }

    fn balance(&self, account: Address) -> StoreFuture<'_, Option<(U256, u64)>> {
        Box::pin(async move {
            let sql =
                Sql::new("SELECT balance, as_of FROM accounts WHERE address = $1").arg(account);
            read_optional(self, &sql)
                .await?
                .map(|row| Ok((to_word(&row.bytes("balance")?)?, unsigned(row.int("as_of")?))))
                .transpose()
        })
    }

    fn store_balance(&self, account: Address, balance: U256, as_of: u64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut connection = self.writer().acquire().await?;
            B::execute(&mut connection, &store_balance_sql(account, balance, as_of)).await?;
            Ok(())
        })
    }

    fn watched_accounts(&self, accounts: Vec<Address>) -> StoreFuture<'_, Vec<Address>> {
        Box::pin(async move {
            let mut watched = Vec::new();
            let keys = accounts.into_iter().map(Param::from);
            for sql in keyed("SELECT address FROM accounts", "address", keys) {
                for row in read(self, &sql).await? {
                    watched.push(to_address(&row.bytes("address")?)?);
                }
            }
            Ok(watched)
        })
    }

    fn categories(&self) -> StoreFuture<'_, Vec<(u64, u64)>> {
        Box::pin(async move {
            let sql = Sql::new("SELECT id, timeref FROM categories ORDER BY id");
            read(self, &sql)
                .await?
                .iter()
                .map(|row| Ok((unsigned(row.int("id")?), unsigned(row.int("timeref")?))))
                .collect()
        })
    }

    fn checkpoint(&self) -> StoreFuture<'_, Option<u64>> {
        Box::pin(async move {
            let sql = Sql::new("SELECT next_block FROM follower WHERE id = 1");
            read_optional(self, &sql)
                .await?
                .map(|row| Ok(unsigned(row.int("next_block")?)))
                .transpose()
        })
    }

    fn apply_batch(&self, batch: ChainBatch) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let mut tx = WriteTx::begin(self).await?;
            if !tx.apply_batch(&batch, None).await? {
                return Ok(false);
            }
            tx.commit(self).await?;
            Ok(true)
        })
    }

    fn apply_followed(&self, batch: ChainBatch, tip: B256, window: usize) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let mut tx = WriteTx::begin(self).await?;
            if !tx.apply_batch(&batch, Some((tip, window))).await? {
                return Ok(false);
            }
            tx.commit(self).await?;
            Ok(true)
        })
    }

    fn recent_blocks(&self) -> StoreFuture<'_, Vec<(u64, B256)>> {
        Box::pin(reorg::recent_blocks(self))
    }

    fn rollback_targets(&self, fork_point: Option<u64>) -> StoreFuture<'_, RollbackTargets> {
        Box::pin(async move {
            match fork_point {
                Some(fork_point) => reorg::targets(self, fork_point).await,
                None => Ok(RollbackTargets {
                    accounts: reorg::accounts(self).await?,
                    ..RollbackTargets::default()
                }),
            }
        })
    }

    fn rollback(&self, rollback: Rollback) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let mut tx = WriteTx::begin(self).await?;
            if !tx.rollback(&rollback).await? {
                return Ok(false);
            }
            tx.commit(self).await?;
            Ok(true)
        })
    }

    fn dump(&self) -> StoreFuture<'_, ChainDump> {
        Box::pin(reorg::dump(self))
    }

    fn lead(&self) -> StoreFuture<'_, Option<Leadership>> {
        Box::pin(self.try_lead())
    }

    fn deal(&self, deal_id: B256) -> StoreFuture<'_, Option<DealView>> {
        Box::pin(async move {
            let sql = Sql::new("SELECT body FROM deals WHERE deal_id = $1").arg(deal_id);
            read_optional(self, &sql).await?.as_ref().map(deal_from_row).transpose()
        })
    }

    fn deals(&self, query: DealQuery) -> StoreFuture<'_, Page<DealView>> {
        Box::pin(async move {
            let sql = deal_query_sql(&query)?;
            let rows = read(self, &sql).await?;
            let deals = rows.iter().map(deal_from_row).collect::<Result<Vec<_>>>()?;
            Ok(paginate(deals, query.limit, |d| encode_deal_cursor(d.block, d.log_index)))
        })
    }

    fn task(&self, task_id: B256) -> StoreFuture<'_, Option<(DealView, U256)>> {
        Box::pin(async move {
            let sql = Sql::new(
                "SELECT deals.body, deal_tasks.idx FROM deal_tasks \
                 JOIN deals ON deals.deal_id = deal_tasks.deal_id WHERE deal_tasks.task_id = $1",
            )
            .arg(task_id);
            let Some(row) = read_optional(self, &sql).await? else { return Ok(None) };
            Ok(Some((deal_from_row(&row)?, to_word(&row.bytes("idx")?)?)))
        })
    }

    fn deal_tasks(&self, deal_id: B256) -> StoreFuture<'_, Vec<poco_api::market::DealTask>> {
        Box::pin(async move {
            // The index is a 32-byte big-endian word: it sorts as the number does.
            let sql =
                Sql::new("SELECT task_id, idx FROM deal_tasks WHERE deal_id = $1 ORDER BY idx")
                    .arg(deal_id);
            read(self, &sql)
                .await?
                .iter()
                .map(|row| {
                    Ok(poco_api::market::DealTask {
                        task_id: crate::store::to_hash(&row.bytes("task_id")?)?,
                        index: to_word(&row.bytes("idx")?)?,
                    })
                })
                .collect()
        })
    }

    fn task_events(&self, task_id: B256) -> StoreFuture<'_, Vec<poco_api::market::TaskEvent>> {
        Box::pin(async move {
            let sql = Sql::new(
                "SELECT block, log_index, tx_hash, kind, account, word, results FROM task_events \
                 WHERE task_id = $1 ORDER BY block, log_index",
            )
            .arg(task_id);
            read(self, &sql).await?.iter().map(task_event_from_row).collect()
        })
    }

    fn pool_workers(&self, workerpool: Address) -> StoreFuture<'_, poco_api::market::PoolWorkers> {
        use crate::model::{AccountEventKind as Member, StorageCode as _, TaskEventKind as Kind};
        Box::pin(async move {
            // One pass over the pool's task events, counted by worker and kind; the scores
            // after, one indexed read per worker.
            let sql = Sql::new(&format!(
                "SELECT e.account, e.kind, COUNT(*) AS n {POOL_TASK_EVENTS} \
                 AND e.account IS NOT NULL AND e.kind IN ($2, $3, $4) GROUP BY e.account, e.kind"
            ))
            .arg(workerpool)
            .arg(i64::from(Kind::Contribute.code()))
            .arg(i64::from(Kind::Accurate.code()))
            .arg(i64::from(Kind::Faulty.code()));
            let mut workers: Vec<poco_api::market::PoolWorker> = Vec::new();
            for row in read(self, &sql).await? {
                let worker = to_address(&row.bytes("account")?)?;
                let count = unsigned(row.int("n")?);
                let entry = entry_of(
                    &mut workers,
                    |w| w.worker == worker,
                    || poco_api::market::PoolWorker {
                        worker,
                        contributions: 0,
                        accurate: 0,
                        faulty: 0,
                        score: None,
                    },
                );
                match Kind::from_code(i16::try_from(row.int("kind")?).unwrap_or(-1))? {
                    Kind::Contribute => entry.contributions = count,
                    Kind::Accurate => entry.accurate = count,
                    _ => entry.faulty = count,
                }
            }
            for entry in &mut workers {
                entry.score = self.scores(entry.worker, 1).await?.first().map(|(_, s)| *s);
            }
            workers.sort_by_key(|w| (std::cmp::Reverse(w.accurate), w.faulty, w.worker));

            // How the pool's tasks ended: finalized or claimed.
            let sql = Sql::new(&format!(
                "SELECT e.kind, COUNT(*) AS n {POOL_TASK_EVENTS} AND e.kind IN ($2, $3) \
                 GROUP BY e.kind"
            ))
            .arg(workerpool)
            .arg(i64::from(Kind::Finalize.code()))
            .arg(i64::from(Kind::Claimed.code()));
            let mut tasks = poco_api::market::PoolTasks::default();
            for row in read(self, &sql).await? {
                let count = unsigned(row.int("n")?);
                match Kind::from_code(i16::try_from(row.int("kind")?).unwrap_or(-1))? {
                    Kind::Finalize => tasks.completed = count,
                    _ => tasks.failed = count,
                }
            }

            // Its members: each worker's membership events in chain order, folded.
            let sql = Sql::new(
                "SELECT account, kind, block, amount FROM account_events \
                 WHERE workerpool = $1 AND kind IN ($2, $3, $4, $5) ORDER BY block, log_index",
            )
            .arg(workerpool)
            .arg(i64::from(Member::MemberJoined.code()))
            .arg(i64::from(Member::MemberLeft.code()))
            .arg(i64::from(Member::MemberExpelled.code()))
            .arg(i64::from(Member::BondReleased.code()));
            let mut members: Vec<poco_api::market::PoolMember> = Vec::new();
            for row in read(self, &sql).await? {
                let worker = to_address(&row.bytes("account")?)?;
                let amount = row.opt_bytes("amount")?.map(|a| to_word(&a)).transpose()?;
                let since = unsigned(row.int("block")?);
                let kind = Member::from_code(i16::try_from(row.int("kind")?).unwrap_or(-1))?;
                let member = entry_of(
                    &mut members,
                    |m| m.worker == worker,
                    || poco_api::market::PoolMember {
                        worker,
                        status: String::new(),
                        since,
                        bond: U256::ZERO,
                    },
                );
                member.since = since;
                match kind {
                    Member::MemberJoined => {
                        member.status = "active".into();
                        member.bond = U256::from(poco_primitives::committee::MEMBER_BOND);
                    }
                    Member::MemberLeft => member.status = "left".into(),
                    Member::MemberExpelled => {
                        member.status = "expelled".into();
                        member.bond = member.bond.saturating_sub(amount.unwrap_or_default());
                    }
                    _ => {
                        member.status = "released".into();
                        member.bond = U256::ZERO;
                    }
                }
            }
            Ok(poco_api::market::PoolWorkers { workerpool, workers, members, tasks })
        })
    }

    fn scores(&self, worker: Address, limit: u32) -> StoreFuture<'_, Vec<(u64, u64)>> {
        Box::pin(async move {
            let sql = Sql::new(
                "SELECT block, score FROM worker_scores WHERE account = $1 \
                 ORDER BY block DESC LIMIT $2",
            )
            .arg(worker)
            .arg(i64::from(limit));
            read(self, &sql)
                .await?
                .iter()
                .map(|row| Ok((unsigned(row.int("block")?), unsigned(row.int("score")?))))
                .collect()
        })
    }

    fn account_events(
        &self,
        account: Address,
        before: Option<(u64, u64)>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<poco_api::market::AccountEvent>> {
        Box::pin(async move {
            // Newest first, from each table, then merged: each side holds the page's rows.
            let (block, index) = before.unwrap_or((u64::MAX, u64::MAX));
            let page = |table: &str, columns: &str| {
                Sql::new(&format!(
                    "SELECT {columns} FROM {table} WHERE account = $1 AND \
                     (block < $2 OR (block = $2 AND log_index < $3)) \
                     ORDER BY block DESC, log_index DESC LIMIT $4"
                ))
                .arg(account)
                .arg(crate::store::clamp_i64(U256::from(block)))
                .arg(crate::store::clamp_i64(U256::from(index)))
                .arg(i64::from(limit))
            };
            let own = page("account_events", "block, log_index, tx_hash, kind, workerpool, amount");
            let tasks = page(
                "task_events",
                "block, log_index, tx_hash, task_id, kind, account, word, results",
            );
            let mut events: Vec<poco_api::market::AccountEvent> = read(self, &own)
                .await?
                .iter()
                .map(account_event_from_row)
                .collect::<Result<_>>()?;
            for row in read(self, &tasks).await? {
                events.push(task_event_of_account(&row)?);
            }
            events.sort_by_key(|e| std::cmp::Reverse((e.block, e.log_index)));
            events.truncate(limit as usize);
            Ok(events)
        })
    }
}

/// The events of the tasks of workerpool `$1`'s indexed deals (`e`), to filter further.
const POOL_TASK_EVENTS: &str = "FROM task_events e JOIN deal_tasks t ON t.task_id = e.task_id \
     JOIN deals d ON d.deal_id = t.deal_id WHERE d.workerpool = $1";

/// The entry of `items` that `matches`, added by `new` when there is none.
fn entry_of<T>(
    items: &mut Vec<T>,
    matches: impl Fn(&T) -> bool,
    new: impl FnOnce() -> T,
) -> &mut T {
    let index = match items.iter().position(matches) {
        Some(index) => index,
        None => {
            items.push(new());
            items.len() - 1
        }
    };
    &mut items[index]
}

/// A `task_events` row naming an account, as its history shows it.
fn task_event_of_account(row: &impl Columns) -> Result<poco_api::market::AccountEvent> {
    let event = task_event_from_row(row)?;
    Ok(poco_api::market::AccountEvent {
        kind: event.kind,
        block: event.block,
        transaction: event.transaction,
        log_index: event.log_index,
        task_id: Some(crate::store::to_hash(&row.bytes("task_id")?)?),
        workerpool: None,
        value: event.value,
    })
}

/// An `account_events` row as the API shows it.
fn account_event_from_row(row: &impl Columns) -> Result<poco_api::market::AccountEvent> {
    use crate::model::{AccountEventKind, StorageCode as _};
    let kind = AccountEventKind::from_code(i16::try_from(row.int("kind")?).unwrap_or(-1))?;
    Ok(poco_api::market::AccountEvent {
        kind: kind.name().to_owned(),
        block: unsigned(row.int("block")?),
        transaction: crate::store::to_hash(&row.bytes("tx_hash")?)?,
        log_index: unsigned(row.int("log_index")?),
        task_id: None,
        workerpool: row.opt_bytes("workerpool")?.map(|a| to_address(&a)).transpose()?,
        value: row.opt_bytes("amount")?.map(|a| to_word(&a)).transpose()?.map(|a| a.to_string()),
    })
}

/// A `task_events` row as the API shows it.
fn task_event_from_row(row: &impl Columns) -> Result<poco_api::market::TaskEvent> {
    use crate::model::{StorageCode as _, TaskEventKind};
    let kind = TaskEventKind::from_code(i16::try_from(row.int("kind")?).unwrap_or(-1))?;
    let word = row.opt_bytes("word")?.map(|w| crate::store::to_hash(&w)).transpose()?;
    // A reward is an amount; the other words are hashes.
    let value = word.map(|w| match kind {
        TaskEventKind::Accurate => U256::from_be_bytes(w.0).to_string(),
        _ => w.to_string(),
    });
    let results = row.opt_bytes("results")?.map(|bytes| poco_api::market::text_or_hex(&bytes));
    Ok(poco_api::market::TaskEvent {
        kind: kind.name().to_owned(),
        block: unsigned(row.int("block")?),
        transaction: crate::store::to_hash(&row.bytes("tx_hash")?)?,
        log_index: unsigned(row.int("log_index")?),
        account: row.opt_bytes("account")?.map(|a| to_address(&a)).transpose()?,
        value,
        results,
    })
}
