//! The store's implementation, written once and instantiated for each backend by
//! [`sql_store!`]: every statement uses `$n` placeholders, BLOB/BYTEA, BIGINT and the SQL both
//! databases share (`ON CONFLICT`, `RETURNING`, row values, partial indexes).
//!
//! A backend provides `reader()` (the pool for reads), `begin_write()` (a transaction holding
//! the write lock), `record_events()` (inside the transaction) and `after_commit()` (once it
//! is committed) for event delivery, and `lead_impl()`.

use crate::{
    error::{Error, Result},
    model::{AnyOrder, DealView, OrderRecord, SignatureKind, Status, kind_from_code},
    store::{Page, Param, to_address, to_hash, to_word},
};

/// Typed column access, the same for both backends' rows.
pub(crate) trait RowExt {
    fn bytes(&self, column: &str) -> Result<Vec<u8>>;
    fn int(&self, column: &str) -> Result<i64>;
    fn text(&self, column: &str) -> Result<String>;
    fn opt_text(&self, column: &str) -> Result<Option<String>>;
}

/// Implements [`RowExt`] for a backend's row type.
macro_rules! row_ext {
    ($row:ty) => {
        impl crate::store::sql::RowExt for $row {
            fn bytes(&self, column: &str) -> crate::error::Result<Vec<u8>> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn int(&self, column: &str) -> crate::error::Result<i64> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn text(&self, column: &str) -> crate::error::Result<String> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn opt_text(&self, column: &str) -> crate::error::Result<Option<String>> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
        }
    };
}
pub(crate) use row_ext;

/// An order row ([`super::ORDER_COLUMNS`]) as a record.
pub(crate) fn order_from_row<R: RowExt>(row: &R) -> Result<OrderRecord> {
    let kind = kind_from_code(narrow(row.int("kind")?)?)?;
    let body = row.text("body")?;
    let order = AnyOrder::from_json(kind, body.as_bytes())
        .map_err(|e| Error::Corrupt(format!("stored order: {e}")))?;
    Ok(OrderRecord {
        hash: to_hash(&row.bytes("hash")?)?,
        order,
        status: Status::from_code(narrow(row.int("status")?)?)?,
        remaining: to_word(&row.bytes("remaining")?)?,
        owner: to_address(&row.bytes("owner")?)?,
        signature: SignatureKind::from_code(narrow(row.int("sign_kind")?)?)?,
        published_at: row.int("published_at")?,
        updated_at: row.int("updated_at")?,
        reason: row.opt_text("reason")?,
    })
}

/// A deal row (`body`) as a deal.
pub(crate) fn deal_from_row<R: RowExt>(row: &R) -> Result<DealView> {
    serde_json::from_str(&row.text("body")?)
        .map_err(|e| Error::Corrupt(format!("stored deal: {e}")))
}

fn narrow(value: i64) -> Result<i16> {
    i16::try_from(value).map_err(|_| Error::Corrupt(format!("small integer {value}")))
}

/// Splits `items + 1` fetched rows into a page and its next cursor.
pub(crate) fn paginate<T>(mut items: Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next }
}

/// The columns of a new order row, in [`insert_params`] order.
pub(crate) const INSERT_COLUMNS: &str = "hash, kind, status, owner, asset, app, dataset, \
    workerpool, requester, price, volume, remaining, category, trust, tag0, tag1, tag2, tag3, \
    sign_kind, published_at, updated_at, body";

/// The values of a new order row.
pub(crate) fn insert_params(record: &OrderRecord) -> Vec<Param> {
    use crate::model::{kind_code, tag_words};
    use crate::store::{address_bytes, clamp_i64, hash_bytes, word_bytes};
    let order = &record.order;
    let roles = order.roles();
    let tag = tag_words(order.tag());
    vec![
        Param::Bytes(hash_bytes(record.hash)),
        Param::Int(kind_code(order.kind()).into()),
        Param::Int(record.status.code().into()),
        Param::Bytes(address_bytes(record.owner)),
        Param::Bytes(address_bytes(order.asset())),
        Param::Bytes(address_bytes(roles.app)),
        Param::Bytes(address_bytes(roles.dataset)),
        Param::Bytes(address_bytes(roles.workerpool)),
        Param::Bytes(address_bytes(roles.requester)),
        Param::Bytes(order.sort_key().to_vec()),
        Param::Bytes(word_bytes(order.volume())),
        Param::Bytes(word_bytes(record.remaining)),
        Param::Int(clamp_i64(order.category())),
        Param::Int(clamp_i64(order.trust())),
        Param::Int(tag[0]),
        Param::Int(tag[1]),
        Param::Int(tag[2]),
        Param::Int(tag[3]),
        Param::Int(record.signature.code().into()),
        Param::Int(record.published_at),
        Param::Int(record.updated_at),
        Param::Text(record.order.to_value().to_string()),
    ]
}

/// Implements [`super::Store`] for `$store`, whose database is `$db`.
macro_rules! sql_store {
    ($store:ty, $db:ty, $row:ty) => {
        crate::store::sql::row_ext!($row);

        type Tx = sqlx::Transaction<'static, $db>;

        fn bind_params(
            sql: &crate::store::Sql,
        ) -> sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments> {
            let (text, params) = placeholders(sql);
            let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
            for param in params {
                query = match param {
                    crate::store::Param::Bytes(bytes) => query.bind(bytes.clone()),
                    crate::store::Param::Int(int) => query.bind(*int),
                    crate::store::Param::Text(text) => query.bind(text.clone()),
                };
            }
            query
        }

        async fn fetch_order(
            tx: &mut Tx,
            hash: alloy::primitives::B256,
        ) -> crate::error::Result<Option<crate::model::OrderRecord>> {
            use crate::store::{ORDER_COLUMNS, hash_bytes, sql::order_from_row};
            let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE hash = $1");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(hash_bytes(hash))
                .fetch_optional(&mut **tx)
                .await?;
            row.as_ref().map(order_from_row).transpose()
        }

        /// Sets an order's status, remaining volume and reason.
        async fn update_order(
            tx: &mut Tx,
            record: &crate::model::OrderRecord,
        ) -> crate::error::Result<()> {
            use crate::store::{hash_bytes, word_bytes};
            sqlx::query(
                "UPDATE orders SET status = $2, remaining = $3, updated_at = $4, reason = $5 \
                 WHERE hash = $1",
            )
            .bind(hash_bytes(record.hash))
            .bind(i64::from(record.status.code()))
            .bind(word_bytes(record.remaining))
            .bind(record.updated_at)
            .bind(record.reason.clone())
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// Adds `volume` to the consumed volume of `hash` and updates its order, if known.
        async fn consume(
            tx: &mut Tx,
            hash: alloy::primitives::B256,
            volume: alloy::primitives::U256,
            closed: bool,
            now: i64,
            events: &mut Vec<crate::model::MarketEvent>,
        ) -> crate::error::Result<()> {
            use crate::store::{hash_bytes, to_word, word_bytes, rules::after_consumption};
            use alloy::primitives::U256;
            let row = sqlx::query("SELECT amount, closed FROM consumed WHERE hash = $1")
                .bind(hash_bytes(hash))
                .fetch_optional(&mut **tx)
                .await?;
            let (before, was_closed) = match &row {
                Some(row) => (to_word(&row.bytes("amount")?)?, row.int("closed")? != 0),
                None => (U256::ZERO, false),
            };
            let consumed = before.saturating_add(volume);
            let closed = closed || was_closed;
            sqlx::query(
                "INSERT INTO consumed (hash, amount, closed) VALUES ($1, $2, $3) \
                 ON CONFLICT (hash) DO UPDATE SET amount = excluded.amount, closed = excluded.closed",
            )
            .bind(hash_bytes(hash))
            .bind(word_bytes(consumed))
            .bind(i64::from(closed))
            .execute(&mut **tx)
            .await?;
            if let Some(mut record) = fetch_order(tx, hash).await?
                && let Some((status, remaining, event)) =
                    after_consumption(&record, consumed, closed)
            {
                record.status = status;
                record.remaining = remaining;
                record.updated_at = now;
                if status == crate::model::Status::Cancelled {
                    record.reason = Some("closed on-chain by its owner".into());
                }
                update_order(tx, &record).await?;
                events.push(crate::model::MarketEvent::order(event, &record));
            }
            Ok(())
        }

        /// Rows whose `column` is one of `keys`, read in chunks.
        async fn rows_in(
            tx: &mut Tx,
            select: &str,
            column: &str,
            keys: Vec<Vec<u8>>,
        ) -> crate::error::Result<Vec<$row>> {
            use crate::store::{Param, Sql};
            let mut rows = Vec::new();
            for chunk in keys.chunks(500) {
                let mut sql = Sql::default();
                let placeholders: Vec<String> =
                    chunk.iter().map(|key| sql.bind(Param::Bytes(key.clone()))).collect();
                sql.text = format!("{select} WHERE {column} IN ({})", placeholders.join(", "));
                rows.extend(bind_params(&sql).fetch_all(&mut **tx).await?);
            }
            Ok(rows)
        }

        /// Checks publications against the mirror and writes those accepted, in a few
        /// statements for the whole batch; the inner results are the business outcomes.
        async fn publish_batch(
            tx: &mut Tx,
            batch: Vec<crate::store::Publication>,
            now: i64,
        ) -> crate::error::Result<Vec<crate::error::Result<crate::store::Published>>> {
            use std::collections::{HashMap, HashSet};
            use crate::{
                model::kind_code,
                store::{
                    ORDER_COLUMNS, Published, Sql, address_bytes, clamp_i64, hash_bytes,
                    to_address, to_hash, to_word, word_bytes,
                    rules::{Mirror, decide},
                    sql::{order_from_row, insert_params, INSERT_COLUMNS},
                },
            };
            use alloy::primitives::U256;
            let hashes: HashSet<_> = batch.iter().map(|p| p.record.hash).collect();
            let assets: HashSet<_> =
                batch.iter().filter(|p| p.owner_of.is_some()).map(|p| p.record.order.asset()).collect();
            let accounts: HashSet<_> = batch.iter().filter_map(|p| p.coverage.map(|c| c.0)).collect();
            let mut mirror = Mirror::default();
            let select = format!("SELECT {ORDER_COLUMNS} FROM orders");
            for row in rows_in(tx, &select, "hash", hashes.iter().map(|h| hash_bytes(*h)).collect()).await? {
                let record = order_from_row(&row)?;
                mirror.existing.insert(record.hash, record);
            }
            for row in rows_in(tx, "SELECT asset, kind, owner FROM assets", "asset",
                assets.iter().map(|a| address_bytes(*a)).collect()).await?
            {
                let asset = to_address(&row.bytes("asset")?)?;
                mirror.owners.insert((asset, row.int("kind")?), to_address(&row.bytes("owner")?)?);
            }
            for row in rows_in(tx, "SELECT hash, amount, closed FROM consumed", "hash",
                hashes.iter().map(|h| hash_bytes(*h)).collect()).await?
            {
                let consumed = (to_word(&row.bytes("amount")?)?, row.int("closed")? != 0);
                mirror.consumed.insert(to_hash(&row.bytes("hash")?)?, consumed);
            }
            for row in rows_in(tx, "SELECT address, balance FROM accounts", "address",
                accounts.iter().map(|a| address_bytes(*a)).collect()).await?
            {
                mirror.balances.insert(to_address(&row.bytes("address")?)?, to_word(&row.bytes("balance")?)?);
            }
            let mut outcomes = Vec::with_capacity(batch.len());
            let mut inserts = Vec::new();
            let mut reopens = Vec::new();
            let mut counted: HashMap<(alloy::primitives::Address, i64), u64> = HashMap::new();
            for publication in batch {
                let key = (publication.record.owner, i64::from(kind_code(publication.record.order.kind())));
                if publication.cap != u64::MAX && !counted.contains_key(&key) {
                    let row = sqlx::query(
                        "SELECT COUNT(*) AS n FROM (SELECT 1 FROM orders \
                         WHERE owner = $1 AND kind = $2 AND status = 0 LIMIT $3) capped",
                    )
                    .bind(address_bytes(key.0))
                    .bind(key.1)
                    .bind(clamp_i64(U256::from(publication.cap)))
                    .fetch_one(&mut **tx)
                    .await?;
                    counted.insert(key, row.int("n")?.max(0) as u64);
                }
                let open = counted.get(&key).copied().unwrap_or_default();
                let outcome = decide(&mut mirror, &publication, open, now);
                match &outcome {
                    Ok(Published::Created(record)) => {
                        inserts.push(record.clone());
                        *counted.entry(key).or_default() += 1;
                    }
                    Ok(Published::Reopened(record)) => {
                        reopens.push(record.clone());
                        *counted.entry(key).or_default() += 1;
                    }
                    _ => {}
                }
                outcomes.push(outcome);
            }
            for chunk in inserts.chunks(400) {
                let mut sql = Sql::default();
                let mut rows = Vec::with_capacity(chunk.len());
                for record in chunk {
                    let placeholders: Vec<String> =
                        insert_params(record).into_iter().map(|p| sql.bind(p)).collect();
                    rows.push(format!("({})", placeholders.join(", ")));
                }
                sql.text = format!("INSERT INTO orders ({INSERT_COLUMNS}) VALUES {}", rows.join(", "));
                bind_params(&sql).execute(&mut **tx).await?;
            }
            for record in &reopens {
                sqlx::query(
                    "UPDATE orders SET status = 0, owner = $2, remaining = $3, sign_kind = $4, \
                     published_at = $5, updated_at = $5, reason = NULL, body = $6 WHERE hash = $1",
                )
                .bind(hash_bytes(record.hash))
                .bind(address_bytes(record.owner))
                .bind(word_bytes(record.remaining))
                .bind(i64::from(record.signature.code()))
                .bind(now)
                .bind(record.order.to_value().to_string())
                .execute(&mut **tx)
                .await?;
            }
            Ok(outcomes)
        }

        /// Applies one chain event.
        async fn apply_event(
            tx: &mut Tx,
            located: &crate::store::LocatedChainEvent,
            matched: &mut std::collections::HashMap<
                alloy::primitives::B256,
                [alloy::primitives::B256; 5],
            >,
            now: i64,
            events: &mut Vec<crate::model::MarketEvent>,
        ) -> crate::error::Result<()> {
            use crate::{
                model::{
                    DealView, MarketEvent, OrderEventType, Status, kind_code, kind_name,
                },
                store::{ChainEvent, ORDER_COLUMNS, address_bytes, clamp_i64, hash_bytes,
                    sql::order_from_row},
            };
            use alloy::primitives::B256;
            match &located.event {
                ChainEvent::AssetTransfer { kind, asset, from, to } => {
                    sqlx::query(
                        "INSERT INTO assets (asset, kind, owner, worker_stake_ratio, \
                         scheduler_reward_ratio) VALUES ($1, $2, $3, 30, 1) \
                         ON CONFLICT (asset) DO UPDATE SET owner = excluded.owner",
                    )
                    .bind(address_bytes(*asset))
                    .bind(i64::from(kind_code(*kind)))
                    .bind(address_bytes(*to))
                    .execute(&mut **tx)
                    .await?;
                    if !from.is_zero() && from != to {
                        let reason = format!(
                            "the {} was transferred from {from} to {to}: its orders signed by the previous owner are void",
                            kind_name(*kind)
                        );
                        let sql = format!(
                            "UPDATE orders SET status = $1, reason = $2, updated_at = $3 \
                             WHERE kind = $4 AND asset = $5 AND owner = $6 AND status = 0 \
                             RETURNING {ORDER_COLUMNS}"
                        );
                        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(i64::from(Status::Dead.code()))
                            .bind(reason)
                            .bind(now)
                            .bind(i64::from(kind_code(*kind)))
                            .bind(address_bytes(*asset))
                            .bind(address_bytes(*from))
                            .fetch_all(&mut **tx)
                            .await?;
                        for row in &rows {
                            events.push(MarketEvent::order(OrderEventType::Dead, &order_from_row(row)?));
                        }
                    }
                }
                ChainEvent::PolicyUpdate { workerpool, worker_stake_ratio, scheduler_reward_ratio } => {
                    sqlx::query(
                        "UPDATE assets SET worker_stake_ratio = $2, scheduler_reward_ratio = $3 \
                         WHERE asset = $1",
                    )
                    .bind(address_bytes(*workerpool))
                    .bind(i64::from(*worker_stake_ratio))
                    .bind(i64::from(*scheduler_reward_ratio))
                    .execute(&mut **tx)
                    .await?;
                }
                ChainEvent::Membership { workerpool, joined } => {
                    let change = if *joined { 1_i64 } else { -1_i64 };
                    sqlx::query(
                        "UPDATE assets SET active_members = active_members + $2 WHERE asset = $1",
                    )
                    .bind(address_bytes(*workerpool))
                    .bind(change)
                    .execute(&mut **tx)
                    .await?;
                }
                ChainEvent::OrdersMatched {
                    deal_id,
                    app_hash,
                    dataset_hash,
                    workerpool_hash,
                    request_hash,
                    volume,
                } => {
                    for hash in [*app_hash, *dataset_hash, *workerpool_hash, *request_hash] {
                        if !hash.is_zero() {
                            consume(tx, hash, *volume, false, now, events).await?;
                        }
                    }
                    matched.insert(
                        *deal_id,
                        [*app_hash, *dataset_hash, *workerpool_hash, *request_hash, B256::from(*volume)],
                    );
                }
                ChainEvent::DealCreated { deal_id, deal, params } => {
                    let [app_hash, dataset_hash, workerpool_hash, request_hash, volume] =
                        matched.get(deal_id).copied().unwrap_or([
                            B256::ZERO,
                            B256::ZERO,
                            B256::ZERO,
                            deal.requestHash,
                            B256::from(deal.botSize),
                        ]);
                    let view = DealView {
                        deal_id: *deal_id,
                        deal: (**deal).clone(),
                        params: params.clone(),
                        volume: alloy::primitives::U256::from_be_bytes(volume.0),
                        app_hash,
                        dataset_hash,
                        workerpool_hash,
                        request_hash,
                        block: located.block,
                        transaction: located.transaction,
                        log_index: located.log_index,
                    };
                    let body = serde_json::to_string(&view)
                        .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
                    let inserted = sqlx::query(
                        "INSERT INTO deals (deal_id, block, log_index, app, dataset, workerpool, \
                         requester, beneficiary, sponsor, app_owner, dataset_owner, scheduler, \
                         category, request_hash, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                         $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (deal_id) DO NOTHING",
                    )
                    .bind(hash_bytes(*deal_id))
                    .bind(clamp_i64(alloy::primitives::U256::from(located.block)))
                    .bind(clamp_i64(alloy::primitives::U256::from(located.log_index)))
                    .bind(address_bytes(deal.app))
                    .bind(address_bytes(deal.dataset))
                    .bind(address_bytes(deal.workerpool))
                    .bind(address_bytes(deal.requester))
                    .bind(address_bytes(deal.beneficiary))
                    .bind(address_bytes(deal.sponsor))
                    .bind(address_bytes(deal.appOwner))
                    .bind(address_bytes(deal.datasetOwner))
                    .bind(address_bytes(deal.scheduler))
                    .bind(clamp_i64(deal.category))
                    .bind(hash_bytes(deal.requestHash))
                    .bind(body)
                    .execute(&mut **tx)
                    .await?;
                    if inserted.rows_affected() == 1 {
                        events.push(MarketEvent::deal(view));
                    }
                }
                ChainEvent::Closed { hash } => {
                    consume(tx, *hash, alloy::primitives::U256::ZERO, true, now, events).await?;
                }
                ChainEvent::Category { id, timeref } => {
                    sqlx::query(
                        "INSERT INTO categories (id, timeref) VALUES ($1, $2) \
                         ON CONFLICT (id) DO UPDATE SET timeref = excluded.timeref",
                    )
                    .bind(clamp_i64(alloy::primitives::U256::from(*id)))
                    .bind(clamp_i64(alloy::primitives::U256::from(*timeref)))
                    .execute(&mut **tx)
                    .await?;
                }
            }
            Ok(())
        }

        /// Kills the open workerpool and request orders of `account` that `balance` no longer
        /// covers.
        async fn check_coverage(
            tx: &mut Tx,
            account: alloy::primitives::Address,
            balance: alloy::primitives::U256,
            now: i64,
            events: &mut Vec<crate::model::MarketEvent>,
        ) -> crate::error::Result<()> {
            use crate::{
                model::{MarketEvent, OrderEventType, Status},
                store::{ORDER_COLUMNS, address_bytes, rules::coverage_refusal, sql::order_from_row},
            };
            let sql = format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE owner = $1 AND status = 0 \
                 AND kind IN (2, 3) ORDER BY published_at, hash"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(address_bytes(account))
                .fetch_all(&mut **tx)
                .await?;
            for row in &rows {
                let mut record = order_from_row(row)?;
                let Some(per_task) = record.order.coverage_per_task() else { continue };
                if let Some(refusal) = coverage_refusal(
                    record.order.kind(),
                    account,
                    per_task,
                    record.remaining,
                    balance,
                ) {
                    record.status = Status::Dead;
                    record.updated_at = now;
                    record.reason = Some(format!("no longer covered: {refusal}"));
                    update_order(tx, &record).await?;
                    events.push(MarketEvent::order(OrderEventType::Dead, &record));
                }
            }
            Ok(())
        }

        impl crate::store::Store for $store {
            fn backend(&self) -> &'static str {
                Self::BACKEND
            }

            fn subscribe(
                &self,
            ) -> tokio::sync::broadcast::Receiver<crate::model::MarketEvent> {
                self.events.subscribe()
            }

            fn order(
                &self,
                hash: alloy::primitives::B256,
            ) -> crate::store::StoreFuture<'_, Option<crate::model::OrderRecord>> {
                Box::pin(async move {
                    use crate::store::{ORDER_COLUMNS, hash_bytes, sql::order_from_row};
                    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE hash = $1");
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(hash_bytes(hash))
                        .fetch_optional(self.reader())
                        .await?;
                    row.as_ref().map(order_from_row).transpose()
                })
            }

            fn orders(
                &self,
                query: crate::store::OrderQuery,
            ) -> crate::store::StoreFuture<'_, crate::store::Page<crate::model::OrderRecord>> {
                Box::pin(async move {
                    use crate::store::{OrderCursor, order_query_sql, sql::{order_from_row, paginate}};
                    let sql = order_query_sql(&query)?;
                    let rows = bind_params(&sql).fetch_all(self.reader()).await?;
                    let records =
                        rows.iter().map(order_from_row).collect::<crate::error::Result<Vec<_>>>()?;
                    Ok(paginate(records, query.limit, |r| OrderCursor::of(r).encode()))
                })
            }

            fn open_counts(&self) -> crate::store::StoreFuture<'_, [u64; 4]> {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT kind, COUNT(*) AS n FROM orders WHERE status = 0 GROUP BY kind",
                    )
                    .fetch_all(self.reader())
                    .await?;
                    let mut counts = [0u64; 4];
                    for row in &rows {
                        if let Some(slot) = usize::try_from(row.int("kind")?)
                            .ok()
                            .and_then(|kind| counts.get_mut(kind))
                        {
                            *slot = row.int("n")?.max(0) as u64;
                        }
                    }
                    Ok(counts)
                })
            }

            fn publish(
                &self,
                batch: Vec<crate::store::Publication>,
            ) -> crate::store::StoreFuture<'_, Vec<crate::error::Result<crate::store::Published>>>
            {
                Box::pin(async move {
                    use crate::{model::{MarketEvent, OrderEventType}, store::Published};
                    let now = crate::model::now_ms();
                    let mut tx = self.begin_write().await?;
                    let outcomes = publish_batch(&mut tx, batch, now).await?;
                    let events: Vec<MarketEvent> = outcomes
                        .iter()
                        .filter_map(|outcome| match outcome {
                            Ok(Published::Created(record) | Published::Reopened(record)) => {
                                Some(MarketEvent::order(OrderEventType::Published, record))
                            }
                            _ => None,
                        })
                        .collect();
                    self.record_events(&mut tx, &events).await?;
                    tx.commit().await?;
                    self.after_commit(events);
                    Ok(outcomes)
                })
            }

            fn unpublish(
                &self,
                hash: alloy::primitives::B256,
                authorization: alloy::primitives::B256,
                expiry: u64,
            ) -> crate::store::StoreFuture<'_, crate::model::OrderRecord> {
                Box::pin(async move {
                    use crate::{
                        error::Error,
                        model::{MarketEvent, OrderEventType, Status},
                        store::{clamp_i64, hash_bytes},
                    };
                    let now = crate::model::now_ms();
                    let mut tx = self.begin_write().await?;
                    let used = sqlx::query("SELECT expiry FROM used_authorizations WHERE digest = $1")
                        .bind(hash_bytes(authorization))
                        .fetch_optional(&mut *tx)
                        .await?;
                    if used.is_some() {
                        return Err(Error::AuthorizationReplayed);
                    }
                    let Some(mut record) = fetch_order(&mut tx, hash).await? else {
                        return Err(Error::NotFound(format!("order {hash}")));
                    };
                    if record.status != Status::Open {
                        return Err(Error::NotOpen(record.status.name().to_owned()));
                    }
                    record.status = Status::Unpublished;
                    record.updated_at = now;
                    record.reason = None;
                    update_order(&mut tx, &record).await?;
                    sqlx::query("INSERT INTO used_authorizations (digest, expiry) VALUES ($1, $2)")
                        .bind(hash_bytes(authorization))
                        .bind(clamp_i64(alloy::primitives::U256::from(expiry)))
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM used_authorizations WHERE expiry < $1")
                        .bind(now / 1000)
                        .execute(&mut *tx)
                        .await?;
                    let events = vec![MarketEvent::order(OrderEventType::Unpublished, &record)];
                    self.record_events(&mut tx, &events).await?;
                    tx.commit().await?;
                    self.after_commit(events);
                    Ok(record)
                })
            }

            fn asset(
                &self,
                asset: alloy::primitives::Address,
            ) -> crate::store::StoreFuture<'_, Option<crate::store::AssetEntry>> {
                Box::pin(async move {
                    use crate::store::{AssetEntry, address_bytes, to_address};
                    let row = sqlx::query(
                        "SELECT kind, owner, worker_stake_ratio, scheduler_reward_ratio, \
                         active_members FROM assets WHERE asset = $1",
                    )
                    .bind(address_bytes(asset))
                    .fetch_optional(self.reader())
                    .await?;
                    let Some(row) = row else { return Ok(None) };
                    let ratio = |column: &str| -> crate::error::Result<u8> {
                        u8::try_from(row.int(column)?).map_err(|_| {
                            crate::error::Error::Corrupt(format!("{column} out of range"))
                        })
                    };
                    Ok(Some(AssetEntry {
                        kind: crate::model::kind_from_code(
                            i16::try_from(row.int("kind")?).unwrap_or(-1),
                        )?,
                        owner: to_address(&row.bytes("owner")?)?,
                        worker_stake_ratio: ratio("worker_stake_ratio")?,
                        scheduler_reward_ratio: ratio("scheduler_reward_ratio")?,
                        active_members: u64::try_from(row.int("active_members")?).map_err(|_| {
                            crate::error::Error::Corrupt("active_members below zero".into())
                        })?,
                    }))
                })
            }

            fn balance(
                &self,
                account: alloy::primitives::Address,
            ) -> crate::store::StoreFuture<'_, Option<(alloy::primitives::U256, u64)>> {
                Box::pin(async move {
                    use crate::store::{address_bytes, to_word};
                    let row = sqlx::query("SELECT balance, as_of FROM accounts WHERE address = $1")
                        .bind(address_bytes(account))
                        .fetch_optional(self.reader())
                        .await?;
                    row.map(|row| {
                        Ok((to_word(&row.bytes("balance")?)?, row.int("as_of")?.max(0) as u64))
                    })
                    .transpose()
                })
            }

            fn store_balance(
                &self,
                account: alloy::primitives::Address,
                balance: alloy::primitives::U256,
                as_of: u64,
            ) -> crate::store::StoreFuture<'_, ()> {
                Box::pin(async move {
                    use crate::store::{address_bytes, clamp_i64, word_bytes};
                    sqlx::query(
                        "INSERT INTO accounts (address, balance, as_of) VALUES ($1, $2, $3) \
                         ON CONFLICT (address) DO UPDATE SET balance = excluded.balance, \
                         as_of = excluded.as_of WHERE accounts.as_of <= excluded.as_of",
                    )
                    .bind(address_bytes(account))
                    .bind(word_bytes(balance))
                    .bind(clamp_i64(alloy::primitives::U256::from(as_of)))
                    .execute(self.writer())
                    .await?;
                    Ok(())
                })
            }

            fn watched_accounts(
                &self,
                accounts: Vec<alloy::primitives::Address>,
            ) -> crate::store::StoreFuture<'_, Vec<alloy::primitives::Address>> {
                Box::pin(async move {
                    use crate::store::{Param, Sql, address_bytes, to_address};
                    let mut watched = Vec::new();
                    for chunk in accounts.chunks(500) {
                        let mut sql = Sql::default();
                        let placeholders: Vec<String> = chunk
                            .iter()
                            .map(|a| sql.bind(Param::Bytes(address_bytes(*a))))
                            .collect();
                        sql.text = format!(
                            "SELECT address FROM accounts WHERE address IN ({})",
                            placeholders.join(", ")
                        );
                        for row in bind_params(&sql).fetch_all(self.reader()).await? {
                            watched.push(to_address(&row.bytes("address")?)?);
                        }
                    }
                    Ok(watched)
                })
            }

            fn categories(&self) -> crate::store::StoreFuture<'_, Vec<(u64, u64)>> {
                Box::pin(async move {
                    let rows = sqlx::query("SELECT id, timeref FROM categories ORDER BY id")
                        .fetch_all(self.reader())
                        .await?;
                    rows.iter()
                        .map(|row| Ok((row.int("id")?.max(0) as u64, row.int("timeref")?.max(0) as u64)))
                        .collect()
                })
            }

            fn checkpoint(&self) -> crate::store::StoreFuture<'_, Option<u64>> {
                Box::pin(async move {
                    let row = sqlx::query("SELECT next_block FROM follower WHERE id = 1")
                        .fetch_optional(self.reader())
                        .await?;
                    row.map(|row| Ok(row.int("next_block")?.max(0) as u64)).transpose()
                })
            }

            fn apply_batch(
                &self,
                batch: crate::store::ChainBatch,
            ) -> crate::store::StoreFuture<'_, bool> {
                Box::pin(async move {
                    use crate::store::clamp_i64;
                    use alloy::primitives::U256;
                    let now = crate::model::now_ms();
                    let mut tx = self.begin_write().await?;
                    let stored = sqlx::query("SELECT next_block FROM follower WHERE id = 1")
                        .fetch_optional(&mut *tx)
                        .await?;
                    match stored {
                        Some(row) if row.int("next_block")?.max(0) as u64 != batch.from => {
                            return Ok(false);
                        }
                        Some(_) => {}
                        None => {
                            sqlx::query(
                                "INSERT INTO follower (id, next_block, updated_at) VALUES (1, $1, $2)",
                            )
                            .bind(clamp_i64(U256::from(batch.from)))
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                    let mut events = Vec::new();
                    let mut matched = std::collections::HashMap::new();
                    for located in &batch.events {
                        apply_event(&mut tx, located, &mut matched, now, &mut events).await?;
                    }
                    for (account, balance) in &batch.balances {
                        use crate::store::{address_bytes, clamp_i64, to_word, word_bytes};
                        sqlx::query(
                            "INSERT INTO accounts (address, balance, as_of) VALUES ($1, $2, $3) \
                             ON CONFLICT (address) DO UPDATE SET balance = excluded.balance, \
                             as_of = excluded.as_of WHERE accounts.as_of <= excluded.as_of",
                        )
                        .bind(address_bytes(*account))
                        .bind(word_bytes(*balance))
                        .bind(clamp_i64(U256::from(batch.balance_block)))
                        .execute(&mut *tx)
                        .await?;
                        let row = sqlx::query("SELECT balance FROM accounts WHERE address = $1")
                            .bind(address_bytes(*account))
                            .fetch_one(&mut *tx)
                            .await?;
                        let current = to_word(&row.bytes("balance")?)?;
                        check_coverage(&mut tx, *account, current, now, &mut events).await?;
                    }
                    sqlx::query("UPDATE follower SET next_block = $1, updated_at = $2 WHERE id = 1")
                        .bind(clamp_i64(U256::from(batch.next)))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    self.record_events(&mut tx, &events).await?;
                    tx.commit().await?;
                    self.after_commit(events);
                    Ok(true)
                })
            }

            fn lead(&self) -> crate::store::StoreFuture<'_, Option<crate::store::Leadership>> {
                Box::pin(self.lead_impl())
            }

            fn deal(
                &self,
                deal_id: alloy::primitives::B256,
            ) -> crate::store::StoreFuture<'_, Option<crate::model::DealView>> {
                Box::pin(async move {
                    use crate::store::{hash_bytes, sql::deal_from_row};
                    let row = sqlx::query("SELECT body FROM deals WHERE deal_id = $1")
                        .bind(hash_bytes(deal_id))
                        .fetch_optional(self.reader())
                        .await?;
                    row.as_ref().map(deal_from_row).transpose()
                })
            }

            fn deals(
                &self,
                query: crate::store::DealQuery,
            ) -> crate::store::StoreFuture<'_, crate::store::Page<crate::model::DealView>> {
                Box::pin(async move {
                    use crate::store::{deal_query_sql, encode_deal_cursor, sql::{deal_from_row, paginate}};
                    let sql = deal_query_sql(&query)?;
                    let rows = bind_params(&sql).fetch_all(self.reader()).await?;
                    let deals =
                        rows.iter().map(deal_from_row).collect::<crate::error::Result<Vec<_>>>()?;
                    Ok(paginate(deals, query.limit, |d| encode_deal_cursor(d.block, d.log_index)))
                })
            }
        }
    };
}
pub(crate) use sql_store;
