//! The SQLite backend: one file, one writer connection, several read-only readers (WAL) and a
//! checkpointing connection.

use std::{str::FromStr, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use sqlx::{
    Sqlite, Transaction,
    sqlite::{
        SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
        SqliteRow, SqliteSynchronous,
    },
};
use tokio::sync::{broadcast, oneshot};
use tracing::warn;

use crate::{
    error::Result,
    model::MarketEvent,
    store::{
        Leadership, Sql,
        sql::{Backend, bind},
    },
};

/// The market's [`Store`](super::Store) in a SQLite file.
///
/// Writes go through a pool of one connection, so write transactions never contend;
/// reads use their own read-only connections and see committed data (WAL mode). Events go to
/// the in-process subscribers once their transaction is committed. One market instance per
/// file: leadership of the chain follower is always granted.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    events: broadcast::Sender<MarketEvent>,
    _checkpoints: Arc<CheckpointGuard>,
}

/// How often committed pages are copied from the write-ahead log into the database.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(50);

/// Checkpoints the write-ahead log on its own connection until `stopped`.
///
/// The writer never checkpoints (`wal_autocheckpoint = 0`): a checkpoint copies pages and
/// waits for the disk, and on the writer it would stall every publication behind it. Passive
/// checkpoints here run beside the writer and its readers without blocking either; the log is
/// rewound from its start once a checkpoint has caught up.
async fn checkpoint_until(connection: SqlitePool, mut stopped: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            () = tokio::time::sleep(CHECKPOINT_INTERVAL) => {}
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&connection).await
        {
            warn!(target: "poco_market::store", %error, "a checkpoint of the SQLite log failed");
        }
    }
    connection.close().await;
}

/// Stops the checkpoints when the last handle on the store goes.
#[derive(Debug)]
struct CheckpointGuard(Option<oneshot::Sender<()>>);

impl Drop for CheckpointGuard {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            let _ = stop.send(());
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path`) and brings its
    /// schema up to date.
    pub async fn open(url: &str, readers: u32) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .pragma("page_size", "2048")
            .pragma("cache_size", "-8192")
            .pragma("temp_store", "memory")
            .pragma("mmap_size", "1073741824")
            .pragma("journal_size_limit", "67108864");
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            poco_chain::files::create_private_dirs(dir)
                .map_err(|e| crate::error::Error::io(dir, e))?;
        }
        // SQLite gives its journal and write-ahead log the mode of the database file.
        poco_chain::files::private_sqlite_file(url)
            .map_err(|e| crate::error::Error::io(options.get_filename(), e))?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        migrator().run(&writer).await?;
        let checkpointer =
            SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .connect_with(options.read_only(true))
            .await?;
        let (events, _) = broadcast::channel(4_096);
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(checkpoint_until(checkpointer, stopped));
        Ok(Self { reader, writer, events, _checkpoints: Arc::new(CheckpointGuard(Some(stop))) })
    }
}

impl Backend for SqliteStore {
    type Db = Sqlite;

    const NAME: &'static str = "sqlite";

    fn events(&self) -> &broadcast::Sender<MarketEvent> {
        &self.events
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// On the one writer connection, `IMMEDIATE`: the transaction takes SQLite's write lock as
    /// it begins.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The events go to the subscribers of this process, the only one using the file.
    async fn commit(
        &self,
        tx: Transaction<'static, Sqlite>,
        events: Vec<MarketEvent>,
    ) -> Result<()> {
        tx.commit().await?;
        for event in events {
            // No subscriber is fine: nobody is listening.
            let _ = self.events.send(event);
        }
        Ok(())
    }

    /// One market instance per file: leadership is always granted.
    async fn try_lead(&self) -> Result<Option<Leadership>> {
        Ok(Some(Leadership::new(())))
    }

    /// With anonymous placeholders (see [`Sql::anonymous`]).
    fn fetch<'c>(
        connection: &'c mut SqliteConnection,
        sql: &'c Sql,
    ) -> BoxFuture<'c, Result<Vec<SqliteRow>>> {
        let (text, params) = sql.anonymous();
        let query = bind::<Sqlite>(text, params);
        Box::pin(async move { Ok(query.fetch_all(connection).await?) })
    }

    /// With anonymous placeholders (see [`Sql::anonymous`]).
    fn execute<'c>(
        connection: &'c mut SqliteConnection,
        sql: &'c Sql,
    ) -> BoxFuture<'c, Result<u64>> {
        let (text, params) = sql.anonymous();
        let query = bind::<Sqlite>(text, params);
        Box::pin(async move { Ok(query.execute(connection).await?.rows_affected()) })
    }
}

/// The SQLite schema's migrations.
fn migrator() -> sqlx::migrate::Migrator {
    super::postgres::migrations(&[
        (1, "init", include_str!("../../migrations/sqlite/0001_init.sql")),
        (2, "members", include_str!("../../migrations/sqlite/0002_members.sql")),
        (3, "reorg", include_str!("../../migrations/sqlite/0003_reorg.sql")),
        (4, "deal tasks", include_str!("../../migrations/sqlite/0004_deal_tasks.sql")),
        (5, "task events", include_str!("../../migrations/sqlite/0005_task_events.sql")),
        (6, "account events", include_str!("../../migrations/sqlite/0006_account_events.sql")),
        (7, "worker scores", include_str!("../../migrations/sqlite/0007_worker_scores.sql")),
        (8, "pool members", include_str!("../../migrations/sqlite/0008_pool_members.sql")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store as _;
    use alloy::primitives::{Address, U256};
    use sqlx::{Connection as _, Row as _, SqliteConnection};

    /// The rows in the database file itself, the write-ahead log ignored (`immutable`); none
    /// while the schema is still only in the log.
    async fn accounts_in_the_file(path: &std::path::Path) -> i64 {
        let url = format!("sqlite://{}?immutable=1", path.display());
        let mut connection = SqliteConnection::connect(&url).await.unwrap();
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM accounts").fetch_one(&mut connection).await;
        row.map_or(0, |row| row.get("n"))
    }

    #[tokio::test]
    async fn committed_writes_reach_the_database_file_without_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("market.sqlite");
        let store = SqliteStore::open(&format!("sqlite://{}", path.display()), 1).await.unwrap();
        for i in 0..100u64 {
            store.store_balance(Address::with_last_byte(i as u8), U256::from(i), i).await.unwrap();
        }
        // The writer never checkpoints: the rows are in the log until the checkpointer runs.
        let mut copied = 0;
        for _ in 0..50 {
            copied = accounts_in_the_file(&path).await;
            if copied == 100 {
                break;
            }
            tokio::time::sleep(CHECKPOINT_INTERVAL).await;
        }
        assert_eq!(copied, 100);
        drop(store);
    }
}
