//! The PostgreSQL backend: several market instances may share one database.
//!
//! Writers of every instance serialize on a transaction-scoped advisory lock; the chain
//! follower runs in the one instance that holds a session-level advisory lock; events are
//! written to the `events` table in the transaction of their effects and announced with
//! `NOTIFY`, so every instance streams every event to its WebSocket clients.

use std::{
    borrow::Cow,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
};

use futures::future::BoxFuture;
use sqlx::{
    Connection, Postgres, Transaction,
    migrate::{Migration, MigrationType, Migrator},
    postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow},
};
use tokio::{sync::broadcast, task::JoinHandle};
use tracing::{debug, warn};

use crate::{
    error::{Error, Result},
    model::{MarketEvent, now_ms},
    store::{
        LEADER_LOCK_KEY, Leadership, Sql, WRITE_LOCK_KEY,
        sql::{Backend, bind},
    },
};

/// The NOTIFY channel of market events.
const CHANNEL: &str = "poco_market_events";
/// How long events stay in the `events` table.
const EVENT_RETENTION_MS: i64 = 3_600_000;

/// The market's [`Store`](super::Store) in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    options: PgConnectOptions,
    events: broadcast::Sender<MarketEvent>,
    _listener: Arc<AbortOnDrop>,
    last_prune: Arc<AtomicI64>,
}

#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PostgresStore {
    /// Connects to `url`, brings the schema up to date and starts listening for events.
    pub async fn connect(url: &str, connections: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(connections.max(2))
            .connect_with(options.clone())
            .await?;
        migrator().run(&pool).await?;
        let (events, _) = broadcast::channel(4_096);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let task = tokio::spawn(relay_events(listener, pool.clone(), events.clone()));
        Ok(Self {
            pool,
            options,
            events,
            _listener: Arc::new(AbortOnDrop(task)),
            last_prune: Arc::new(AtomicI64::new(0)),
        })
    }

    /// The connection pool (for tests and tools).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Writes `events` to the `events` table and announces their ids with `NOTIFY`, both
    /// taking effect when `tx` commits; now and then, forgets the old ones.
    async fn record_events(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        events: &[MarketEvent],
    ) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let bodies = events
            .iter()
            .map(|event| serde_json::to_string(event).map_err(|e| Error::Internal(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO events (created_at, body) SELECT $1, body FROM UNNEST($2::text[]) \
             WITH ORDINALITY AS t(body, n) ORDER BY n RETURNING id",
        )
        .bind(now)
        .bind(bodies)
        .fetch_all(&mut **tx)
        .await?;
        let mut ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        ids.sort_by_key(|id| id.parse::<i64>().unwrap_or_default());
        for chunk in ids.chunks(400) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(chunk.join(","))
                .execute(&mut **tx)
                .await?;
        }
        if now - self.last_prune.load(Ordering::Relaxed) > 60_000 {
            self.last_prune.store(now, Ordering::Relaxed);
            sqlx::query("DELETE FROM events WHERE created_at < $1")
                .bind(now - EVENT_RETENTION_MS)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

impl Backend for PostgresStore {
    type Db = Postgres;

    const NAME: &'static str = "postgres";

    fn events(&self) -> &broadcast::Sender<MarketEvent> {
        &self.events
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// Takes the transaction-scoped advisory lock every instance's writers share.
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// The events are delivered through `NOTIFY`, to this instance as to the others.
    async fn commit(
        &self,
        mut tx: Transaction<'static, Postgres>,
        events: Vec<MarketEvent>,
    ) -> Result<()> {
        self.record_events(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Holds a session-level advisory lock on a connection of its own.
    async fn try_lead(&self) -> Result<Option<Leadership>> {
        let mut connection = PgConnection::connect_with(&self.options).await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_LOCK_KEY)
            .fetch_one(&mut connection)
            .await?;
        if locked {
            // The lock lives as long as this session: dropping the connection releases it.
            Ok(Some(Leadership::new(LeaderConnection(Some(connection)))))
        } else {
            connection.close().await?;
            Ok(None)
        }
    }

    /// With the `$n` placeholders as they are: PostgreSQL binds them by number.
    fn fetch<'c>(
        connection: &'c mut PgConnection,
        sql: &'c Sql,
    ) -> BoxFuture<'c, Result<Vec<PgRow>>> {
        let query = bind::<Postgres>(sql.text.clone(), sql.params.iter().collect());
        Box::pin(async move { Ok(query.fetch_all(connection).await?) })
    }

    /// With the `$n` placeholders as they are: PostgreSQL binds them by number.
    fn execute<'c>(connection: &'c mut PgConnection, sql: &'c Sql) -> BoxFuture<'c, Result<u64>> {
        let query = bind::<Postgres>(sql.text.clone(), sql.params.iter().collect());
        Box::pin(async move { Ok(query.execute(connection).await?.rows_affected()) })
    }
}

/// The session that holds the follower's advisory lock.
struct LeaderConnection(Option<PgConnection>);

impl Drop for LeaderConnection {
    fn drop(&mut self) {
        if let Some(connection) = self.0.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                let _ = connection.close().await;
            });
        }
    }
}

/// Reads the events announced on the channel and hands them to this instance's subscribers.
async fn relay_events(
    mut listener: PgListener,
    pool: PgPool,
    events: broadcast::Sender<MarketEvent>,
) {
    loop {
        let notification = match listener.recv().await {
            Ok(notification) => notification,
            Err(error) => {
                warn!(target: "poco_market::store", %error, "event listener failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                continue;
            }
        };
        let ids: Vec<i64> =
            notification.payload().split(',').filter_map(|id| id.parse().ok()).collect();
        let rows: Result<Vec<(i64, String)>, _> =
            sqlx::query_as("SELECT id, body FROM events WHERE id = ANY($1) ORDER BY id")
                .bind(&ids)
                .fetch_all(&pool)
                .await;
        match rows {
            Ok(rows) => {
                for (id, body) in rows {
                    match serde_json::from_str(&body) {
                        Ok(event) => {
                            let _ = events.send(event);
                        }
                        Err(error) => {
                            debug!(id, %error, "skipped an event this version cannot read")
                        }
                    }
                }
            }
            Err(error) => warn!(target: "poco_market::store", %error, "could not read events"),
        }
    }
}

/// A migrator of `(version, description, sql)` steps.
pub(crate) fn migrations(steps: &[(i64, &'static str, &'static str)]) -> Migrator {
    let migrations = steps
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                sqlx::SqlSafeStr::into_sql_str(sql),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// The PostgreSQL schema's migrations.
fn migrator() -> Migrator {
    migrations(&[
        (1, "init", include_str!("../../migrations/postgres/0001_init.sql")),
        (2, "members", include_str!("../../migrations/postgres/0002_members.sql")),
        (3, "reorg", include_str!("../../migrations/postgres/0003_reorg.sql")),
        (4, "deal tasks", include_str!("../../migrations/postgres/0004_deal_tasks.sql")),
        (5, "task events", include_str!("../../migrations/postgres/0005_task_events.sql")),
        (6, "account events", include_str!("../../migrations/postgres/0006_account_events.sql")),
        (7, "worker scores", include_str!("../../migrations/postgres/0007_worker_scores.sql")),
        (8, "pool members", include_str!("../../migrations/postgres/0008_pool_members.sql")),
    ])
}
