//! The pool's lease: which of the scheduler processes sharing this database is active, and the
//! fencing token that makes every write of the others fail.
//!
//! A lease row per workerpool names its holder (a random id per process), the URL workers reach
//! it at, a token that grows by one at each acquisition, and when it expires, on the database's
//! clock: every instance compares times on that one clock, so their own clocks need not agree.
//! A lease is taken only once it expired (or was released); its holder renews it while it lives.
//!
//! A [`Fence`] makes a store's writes conditional on the lease: each write transaction first
//! locks the lease row, only while it still carries the fence's holder and token, until the
//! transaction ends; so a takeover (which updates the row) waits for the writes in progress
//! and every later write of the former holder fails with [`Error::Fenced`].

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use alloy::primitives::Address;
use sqlx::{Any, AnyConnection, Row, Transaction, any::AnyQueryResult};

use super::{Store, hex};
use crate::{Error, Result};

/// The lease of a pool as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The holder's id (random per process).
    pub holder: String,
    /// The URL workers reach the holder at ('' when it did not say).
    pub url: String,
    /// The fencing token of its acquisition.
    pub token: i64,
    /// When it expires, unix milliseconds on the database's clock.
    pub expires_ms: i64,
    /// The database's clock when it was read, unix milliseconds.
    pub now_ms: i64,
}

impl LeaseRecord {
    /// Whether it is still held (not expired nor released) as of [`LeaseRecord::now_ms`].
    pub fn is_held(&self) -> bool {
        self.expires_ms > self.now_ms
    }
}

/// What a store's writes must find in the lease row: the holder and the token of the lease it
/// acquired. The token is 0 until then, and no lease carries 0: every write fails.
#[derive(Debug)]
pub struct Fence {
    workerpool: String,
    holder: String,
    token: AtomicI64,
}

impl Fence {
    /// A fence for `holder`'s lease of `workerpool`, with no token yet.
    pub fn new(workerpool: Address, holder: impl Into<String>) -> Arc<Self> {
        Arc::new(Self { workerpool: hex(&workerpool), holder: holder.into(), token: 0.into() })
    }

    /// The token of the lease acquired.
    pub fn set_token(&self, token: i64) {
        self.token.store(token, Ordering::SeqCst);
    }

    /// The token writes must find (0: none yet).
    pub fn token(&self) -> i64 {
        self.token.load(Ordering::SeqCst)
    }

    /// The holder's id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Checks, first in a write transaction, that the lease is still the fence's, and keeps
    /// anyone from taking it over until the transaction ends.
    ///
    /// On PostgreSQL the row is locked in share mode: the instance's own writes run side by
    /// side, and a takeover (which updates the row) waits for those in progress. A process
    /// paused in the middle of one (SIGSTOP, a frozen machine) would keep that lock; the
    /// server ends such a transaction, and frees the row, once it is idle for
    /// [`IDLE_WRITE_TIMEOUT`]. On SQLite, where writes are serialized anyway, the row is
    /// updated in place.
    async fn hold(&self, connection: &mut AnyConnection, postgres: bool) -> Result<()> {
        let token = self.token();
        let held = if postgres {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SET LOCAL idle_in_transaction_session_timeout = {}",
                IDLE_WRITE_TIMEOUT.as_millis()
            )))
            .execute(&mut *connection)
            .await?;
            sqlx::query(
                "SELECT token FROM scheduler_lease \
                 WHERE workerpool = $1 AND holder = $2 AND token = $3 FOR SHARE",
            )
            .bind(self.workerpool.clone())
            .bind(self.holder.clone())
            .bind(token)
            .fetch_optional(connection)
            .await?
            .is_some()
        } else {
            sqlx::query(
                "UPDATE scheduler_lease SET token = token \
                 WHERE workerpool = $1 AND holder = $2 AND token = $3",
            )
            .bind(self.workerpool.clone())
            .bind(self.holder.clone())
            .bind(token)
            .execute(connection)
            .await?
            .rows_affected()
                == 1
        };
        if !held {
            return Err(Error::Fenced { token });
        }
        Ok(())
    }
}

/// How long a fenced write transaction may sit idle (its process paused or stuck) before
/// PostgreSQL ends it, freeing the lease for a takeover.
pub const IDLE_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// A statement run as a write of the store: in a transaction of its own, behind the store's
/// fence when it has one.
pub(super) trait FencedWrite {
    /// Runs the statement as a write of `store`.
    async fn fenced(self, store: &Store) -> Result<AnyQueryResult>;
}

impl<'q> FencedWrite for sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    async fn fenced(self, store: &Store) -> Result<AnyQueryResult> {
        let mut tx = store.write().await?;
        let done = self.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done)
    }
}

/// Milliseconds as stored.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// The store, its writes made only while `fence`'s lease holds.
    pub fn fenced(&self, fence: Arc<Fence>) -> Self {
        Self { fence: Some(fence), ..self.clone() }
    }

    /// Whether the database is PostgreSQL (several scheduler processes may share it).
    pub fn is_shared(&self) -> bool {
        self.postgres
    }

    /// A write transaction, behind the fence when the store has one.
    pub(super) async fn write(&self) -> Result<Transaction<'static, Any>> {
        let mut tx = self.pool.begin().await?;
        if let Some(fence) = &self.fence {
            fence.hold(&mut tx, self.postgres).await?;
        }
        Ok(tx)
    }

    /// The database's clock, in unix milliseconds, as an SQL expression.
    fn clock(&self) -> &'static str {
        if self.postgres {
            "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
        } else {
            "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
        }
    }

    /// The lease of `workerpool`, if any instance ever took it.
    pub async fn lease(&self, workerpool: Address) -> Result<Option<LeaseRecord>> {
        let sql = format!(
            "SELECT holder, holder_url, token, expires_ms, {} AS now_ms FROM scheduler_lease \
             WHERE workerpool = $1",
            self.clock()
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(hex(&workerpool))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(LeaseRecord {
                holder: row.try_get(0)?,
                url: row.try_get(1)?,
                token: row.try_get(2)?,
                expires_ms: row.try_get(3)?,
                now_ms: row.try_get(4)?,
            })
        })
        .transpose()
    }

    /// Takes the lease of `workerpool` for `holder` (reached at `url`) for `ttl`, if nobody
    /// holds it (it expired or was released): returns the new fencing token, one more than the
    /// last. `None` while another instance holds it.
    pub async fn acquire_lease(
        &self,
        workerpool: Address,
        holder: &str,
        url: &str,
        ttl: Duration,
    ) -> Result<Option<i64>> {
        let now = self.clock();
        let sql = format!(
            "INSERT INTO scheduler_lease (workerpool, holder, holder_url, token, expires_ms) \
             VALUES ($1, $2, $3, 1, {now} + $4) ON CONFLICT (workerpool) DO UPDATE SET \
             holder = $2, holder_url = $3, token = scheduler_lease.token + 1, \
             expires_ms = {now} + $4 WHERE scheduler_lease.expires_ms <= {now} RETURNING token"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(hex(&workerpool))
            .bind(holder.to_owned())
            .bind(url.to_owned())
            .bind(millis(ttl))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// Extends `holder`'s lease of `workerpool` to `ttl` from now, if it still holds it with
    /// `token`; `false` when another instance took it since.
    pub async fn renew_lease(
        &self,
        workerpool: Address,
        holder: &str,
        token: i64,
        ttl: Duration,
    ) -> Result<bool> {
        let sql = format!(
            "UPDATE scheduler_lease SET expires_ms = {} + $4 \
             WHERE workerpool = $1 AND holder = $2 AND token = $3",
            self.clock()
        );
        let renewed = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(hex(&workerpool))
            .bind(holder.to_owned())
            .bind(token)
            .bind(millis(ttl))
            .execute(&self.pool)
            .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Gives up `holder`'s lease of `workerpool` (with `token`) at once, so that a standby
    /// takes over without waiting for it to expire; `false` when another instance took it
    /// since.
    pub async fn release_lease(
        &self,
        workerpool: Address,
        holder: &str,
        token: i64,
    ) -> Result<bool> {
        let released = sqlx::query(
            "UPDATE scheduler_lease SET expires_ms = 0 \
             WHERE workerpool = $1 AND holder = $2 AND token = $3",
        )
        .bind(hex(&workerpool))
        .bind(holder.to_owned())
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(released.rows_affected() == 1)
    }
}
