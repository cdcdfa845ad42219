//! The SQLite backend: one file, one writer connection, several read-only readers (WAL).

use std::{str::FromStr, time::Duration};

use sqlx::{
    Sqlite,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
        SqliteSynchronous,
    },
};
use tokio::sync::broadcast;

use crate::{
    error::Result,
    model::MarketEvent,
    store::{Leadership, sql::RowExt as _},
};

/// The market's store in a SQLite file.
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
}

impl SqliteStore {
    const BACKEND: &'static str = "sqlite";

    /// Opens (creating if needed) the database at `url` (`sqlite://path`) and brings its
    /// schema up to date.
    pub async fn open(url: &str, readers: u32) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory");
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| crate::error::Error::io(dir, e))?;
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await?;
        migrator().run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .connect_with(options.read_only(true))
            .await?;
        let (events, _) = broadcast::channel(4_096);
        Ok(Self { reader, writer, events })
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn record_events(
        &self,
        _tx: &mut sqlx::Transaction<'static, Sqlite>,
        _events: &[MarketEvent],
    ) -> Result<()> {
        Ok(())
    }

    fn after_commit(&self, events: Vec<MarketEvent>) {
        for event in events {
            // No subscriber is fine: nobody is listening.
            let _ = self.events.send(event);
        }
    }

    async fn lead_impl(&self) -> Result<Option<Leadership>> {
        Ok(Some(Leadership::new(())))
    }
}

/// The SQLite schema's migrations.
fn migrator() -> sqlx::migrate::Migrator {
    super::postgres::migrations(&[(
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    )])
}

/// Statements built at run time, with anonymous placeholders (see [`super::Sql::anonymous`]).
fn placeholders(sql: &super::Sql) -> (String, Vec<&super::Param>) {
    sql.anonymous()
}

super::sql::sql_store!(SqliteStore, Sqlite, SqliteRow);
