//! The market's SQL, written once for both databases.
//!
//! Every statement is an [`Sql`] with `$n` placeholders over BLOB/BYTEA, BIGINT and TEXT
//! columns, in the SQL both databases share (`ON CONFLICT`, `RETURNING`, row values, partial
//! indexes). A [`Backend`] runs statements and provides the little that differs between the
//! databases: how placeholders are bound, how a write transaction takes the write lock, how
//! the events of a committed transaction reach the subscribers, and leadership. Every backend
//! is a [`Store`](super::Store):
//! * `store`: the [`Store`](super::Store) implementation and the reads;
//! * `publish`: publication and unpublication, decided by [`super::rules`];
//! * `chain`: the chain's events, one function each;
//! * `reorg`: undoing the effects of blocks a chain reorganisation replaced, and the dump of
//!   what the store derived from the chain.
//!
//! Writes run in a [`WriteTx`], which holds the write lock and collects the events its changes
//! cause.

mod chain;
mod publish;
mod reorg;
mod store;

use std::future::Future;

use alloy::primitives::{Address, B256, U256};
use futures::future::BoxFuture;
use sqlx::{ColumnIndex, Database, Decode, Encode, Pool, Row, Transaction, Type, query::Query};
use tokio::sync::broadcast;

use crate::model::StorageCode as _;
use crate::{
    error::{Error, Result},
    model::{
        DealView, MarketEvent, OrderRecord, SignatureKind, Status, kind_from_code, parse_order,
    },
    store::{Leadership, ORDER_COLUMNS, Param, Sql, clamp_i64, to_address, to_hash, to_word},
};

/// A row of a backend's database.
pub(super) type RowOf<B> = <<B as Backend>::Db as Database>::Row;

/// A database the market's SQL runs on, and what it does its own way.
pub(super) trait Backend: Send + Sync + 'static {
    /// The sqlx driver.
    type Db: Database<Row: Columns>;

    /// `sqlite` or `postgres`.
    const NAME: &'static str;

    /// Where this instance's subscribers receive committed events.
    fn events(&self) -> &broadcast::Sender<MarketEvent>;

    /// The connections that read.
    fn reader(&self) -> &Pool<Self::Db>;

    /// The connections that write outside a [`WriteTx`].
    fn writer(&self) -> &Pool<Self::Db>;

    /// Begins a transaction that holds the write lock: no other writer, of any instance
    /// sharing the database, runs until it ends.
    fn begin_write(&self) -> impl Future<Output = Result<Transaction<'static, Self::Db>>> + Send;

    /// Commits `tx` and delivers `events`, which its changes caused, to the subscribers.
    fn commit(
        &self,
        tx: Transaction<'static, Self::Db>,
        events: Vec<MarketEvent>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Tries to become the one instance that follows the chain.
    fn try_lead(&self) -> impl Future<Output = Result<Option<Leadership>>> + Send;

    /// Runs `sql` and returns its rows.
    fn fetch<'c>(
        connection: &'c mut <Self::Db as Database>::Connection,
        sql: &'c Sql,
    ) -> BoxFuture<'c, Result<Vec<<Self::Db as Database>::Row>>>;

    /// Runs `sql` and returns how many rows it changed.
    fn execute<'c>(
        connection: &'c mut <Self::Db as Database>::Connection,
        sql: &'c Sql,
    ) -> BoxFuture<'c, Result<u64>>;
}

/// The statement `text` with `params` bound in order, for a database that stores the types
/// of [`Param`].
pub(super) fn bind<DB>(text: String, params: Vec<&Param>) -> Query<'static, DB, DB::Arguments>
where
    DB: Database,
    Vec<u8>: Encode<'static, DB> + Type<DB>,
    i64: Encode<'static, DB> + Type<DB>,
    String: Encode<'static, DB> + Type<DB>,
    Option<String>: Encode<'static, DB> + Type<DB>,
    Option<i64>: Encode<'static, DB> + Type<DB>,
    Option<Vec<u8>>: Encode<'static, DB> + Type<DB>,
{
    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
    for param in params {
        query = match param {
            Param::Bytes(bytes) => query.bind(bytes.clone()),
            Param::Int(int) => query.bind(*int),
            Param::Text(text) => query.bind(text.clone()),
            Param::Null => query.bind(None::<String>),
            Param::NullInt => query.bind(None::<i64>),
            Param::NullBytes => query.bind(None::<Vec<u8>>),
        };
    }
    query
}

/// Typed access to the columns of a row, whichever the backend.
pub(super) trait Columns {
    /// A BLOB/BYTEA column.
    fn bytes(&self, column: &str) -> Result<Vec<u8>>;
    /// A BIGINT column.
    fn int(&self, column: &str) -> Result<i64>;
    /// A TEXT column.
    fn text(&self, column: &str) -> Result<String>;
    /// A TEXT column that may be NULL.
    fn opt_text(&self, column: &str) -> Result<Option<String>>;
    /// A BIGINT column that may be NULL.
    fn opt_int(&self, column: &str) -> Result<Option<i64>>;
    /// A BLOB/BYTEA column that may be NULL.
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>>;
}

impl<R> Columns for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<Vec<u8>>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn bytes(&self, column: &str) -> Result<Vec<u8>> {
        Ok(self.try_get(column)?)
    }

    fn int(&self, column: &str) -> Result<i64> {
        Ok(self.try_get(column)?)
    }

    fn text(&self, column: &str) -> Result<String> {
        Ok(self.try_get(column)?)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        Ok(self.try_get(column)?)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        Ok(self.try_get(column)?)
    }

    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.try_get(column)?)
    }
}

/// The statement that reads one order.
fn order_sql(hash: B256) -> Sql {
    Sql::new(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE hash = $1")).arg(hash)
}

/// An order row ([`ORDER_COLUMNS`]) as a record.
fn order_from_row(row: &impl Columns) -> Result<OrderRecord> {
    let kind = kind_from_code(narrow(row.int("kind")?)?)?;
    let body = row.text("body")?;
    let order = parse_order(kind, body.as_bytes())
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
fn deal_from_row(row: &impl Columns) -> Result<DealView> {
    serde_json::from_str(&row.text("body")?)
        .map_err(|e| Error::Corrupt(format!("stored deal: {e}")))
}

fn narrow(value: i64) -> Result<i16> {
    i16::try_from(value).map_err(|_| Error::Corrupt(format!("small integer {value}")))
}

/// A BIGINT column that holds a block number, a count or a time, never below zero.
fn unsigned(value: i64) -> u64 {
    value.max(0) as u64
}

/// `select` restricted to the rows whose `column` is one of `keys`: one statement per 500
/// keys.
fn keyed(select: &str, column: &str, keys: impl IntoIterator<Item = Param>) -> Vec<Sql> {
    let keys: Vec<Param> = keys.into_iter().collect();
    keys.chunks(500)
        .map(|chunk| {
            let mut sql = Sql::default();
            let placeholders: Vec<String> = chunk.iter().map(|key| sql.bind(key.clone())).collect();
            sql.text = format!("{select} WHERE {column} IN ({})", placeholders.join(", "));
            sql
        })
        .collect()
}

/// The statement that caches a free balance read at block `as_of`, unless a newer one is
/// cached.
fn store_balance_sql(account: Address, balance: U256, as_of: u64) -> Sql {
    Sql::new(
        "INSERT INTO accounts (address, balance, as_of) VALUES ($1, $2, $3) \
         ON CONFLICT (address) DO UPDATE SET balance = excluded.balance, \
         as_of = excluded.as_of WHERE accounts.as_of <= excluded.as_of",
    )
    .arg(account)
    .arg(balance)
    .arg(clamp_i64(U256::from(as_of)))
}

/// A transaction of a backend's writer: it holds the write lock, dates its changes `now`,
/// and collects the events they cause, delivered once it is committed. Dropped without
/// [`commit`](Self::commit), it changes nothing.
pub(super) struct WriteTx<B: Backend> {
    tx: Transaction<'static, B::Db>,
    /// The time of the changes, in milliseconds.
    now: i64,
    events: Vec<MarketEvent>,
}

impl<B: Backend> WriteTx<B> {
    /// Waits for the write lock of `backend`.
    async fn begin(backend: &B) -> Result<Self> {
        let now = crate::model::now_ms();
        let tx = backend.begin_write().await?;
        Ok(Self { tx, now, events: Vec::new() })
    }

    /// Commits the changes and delivers their events.
    async fn commit(self, backend: &B) -> Result<()> {
        backend.commit(self.tx, self.events).await
    }

    /// Reports `event` once the transaction is committed.
    fn emit(&mut self, event: MarketEvent) {
        self.events.push(event);
    }

    async fn fetch(&mut self, sql: &Sql) -> Result<Vec<RowOf<B>>> {
        B::fetch(&mut self.tx, sql).await
    }

    /// The first row of `sql` (which selects by key), if any.
    async fn fetch_optional(&mut self, sql: &Sql) -> Result<Option<RowOf<B>>> {
        Ok(self.fetch(sql).await?.into_iter().next())
    }

    /// The first row of `sql`, which must have one.
    async fn fetch_one(&mut self, sql: &Sql) -> Result<RowOf<B>> {
        self.fetch_optional(sql).await?.ok_or_else(|| sqlx::Error::RowNotFound.into())
    }

    async fn execute(&mut self, sql: &Sql) -> Result<u64> {
        B::execute(&mut self.tx, sql).await
    }

    /// One order, whatever its status.
    async fn order(&mut self, hash: B256) -> Result<Option<OrderRecord>> {
        self.fetch_optional(&order_sql(hash)).await?.as_ref().map(order_from_row).transpose()
    }

    /// Sets an order's status, remaining volume, update time and reason.
    async fn update_order(&mut self, record: &OrderRecord) -> Result<()> {
        let sql = Sql::new(
            "UPDATE orders SET status = $2, remaining = $3, updated_at = $4, reason = $5 \
             WHERE hash = $1",
        )
        .arg(record.hash)
        .arg(i64::from(record.status.code()))
        .arg(record.remaining)
        .arg(record.updated_at)
        .arg(record.reason.clone());
        self.execute(&sql).await?;
        Ok(())
    }

    /// Records the block of the chain's change that gave an order its status (`None`: a status
    /// its owner gave it).
    async fn set_chain_block(&mut self, hash: B256, block: Option<i64>) -> Result<()> {
        let sql = Sql::new("UPDATE orders SET chain_block = $2 WHERE hash = $1")
            .arg(hash)
            .arg(Param::from_opt_int(block));
        self.execute(&sql).await?;
        Ok(())
    }
}
