//! For the tests of the services' databases (`poco-storage` and the stores built on it): the
//! same test on SQLite and on PostgreSQL ([`Databases`]), a database made as a legacy migration
//! runner made it ([`run_legacy_migrations`]), and what a database says of itself, to compare
//! ([`schema`], [`recorded_migrations`]).
//!
//! A service's store declares the tests every store on `poco-storage` passes with
//! [`store_tests!`](crate::store_tests), from what is its own ([`StoreUnderTest`]): its
//! releases from before sqlx's migrator, the data they stored, what it reads back.

use sqlx::{AnyPool, AssertSqlSafe, Row as _, any::AnyPoolOptions};
use tempfile::TempDir;

use crate::postgres::TestDatabase;

pub mod scenarios;

pub use scenarios::{StoreAccess, StoreUnderTest};

/// The databases of one test: SQLite files in a temporary folder, or databases of their own on
/// the PostgreSQL test server ([`TestDatabase`]), dropped by [`Databases::finish`].
#[derive(Debug)]
pub struct Databases(Place);

#[derive(Debug)]
enum Place {
    Sqlite(TempDir),
    Postgres { purpose: &'static str, databases: Vec<TestDatabase> },
}

impl Databases {
    /// SQLite files, in a temporary folder removed when this is dropped.
    pub fn sqlite() -> Self {
        Self(Place::Sqlite(tempfile::tempdir().expect("a temporary folder")))
    }

    /// Databases on the PostgreSQL test server, named after `purpose` (see
    /// [`TestDatabase::create`]). Tests that use them are `#[ignore = "needs PostgreSQL"]`.
    pub fn postgres(purpose: &'static str) -> Self {
        Self(Place::Postgres { purpose, databases: Vec::new() })
    }

    /// Whether these are SQLite files.
    pub fn is_sqlite(&self) -> bool {
        matches!(self.0, Place::Sqlite(_))
    }

    /// The URL of a new database: the file `name.db` (not created yet), or a new PostgreSQL
    /// database (`name` is only for SQLite's file).
    pub async fn url(&mut self, name: &str) -> String {
        match &mut self.0 {
            Place::Sqlite(dir) => {
                format!("sqlite://{}", dir.path().join(format!("{name}.db")).display())
            }
            Place::Postgres { purpose, databases } => {
                let database = TestDatabase::create(purpose).await;
                databases.push(database.clone());
                database.url
            }
        }
    }

    /// Drops the PostgreSQL databases (SQLite's folder goes when this is dropped).
    pub async fn finish(self) {
        if let Place::Postgres { databases, .. } = self.0 {
            for database in databases {
                database.drop_database().await;
            }
        }
    }
}

/// Makes the database at `url` as a service's legacy migration runner did, up to its migration
/// `upto`: SQLite in write-ahead-log mode, the version table `version_table`, then each of
/// `migrations` not counted there yet, in a transaction of its own (statements split at `;`),
/// its number recorded. Returns the pool (one connection) for the test to store data as that
/// release stored it, then close.
pub async fn run_legacy_migrations(
    url: &str,
    version_table: &str,
    migrations: &[&str],
    upto: usize,
) -> AnyPool {
    sqlx::any::install_default_drivers();
    let sqlite = url.starts_with("sqlite:");
    let url = if sqlite { format!("{url}?mode=rwc") } else { url.to_owned() };
    let pool = AnyPoolOptions::new().max_connections(1).connect(&url).await.expect("connects");
    if sqlite {
        sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await.expect("WAL");
    }
    let create = format!("CREATE TABLE IF NOT EXISTS {version_table} (version BIGINT NOT NULL)");
    sqlx::query(AssertSqlSafe(create)).execute(&pool).await.expect("version table");
    let version: Option<i64> =
        sqlx::query(AssertSqlSafe(format!("SELECT MAX(version) FROM {version_table}")))
            .fetch_one(&pool)
            .await
            .and_then(|row| row.try_get(0))
            .expect("version");
    let insert = format!("INSERT INTO {version_table} (version) VALUES ($1)");
    let pending = migrations.iter().enumerate().take(upto);
    for (number, migration) in pending.skip(version.unwrap_or(0) as usize) {
        let mut tx = pool.begin().await.expect("begin");
        for statement in migration.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let statement = sqlx::query(AssertSqlSafe(statement));
            statement.execute(&mut *tx).await.expect("legacy migration");
        }
        sqlx::query(AssertSqlSafe(insert.as_str()))
            .bind((number + 1) as i64)
            .execute(&mut *tx)
            .await
            .expect("version recorded");
        tx.commit().await.expect("commit");
    }
    pool
}

/// A migration as sqlx's migrator recorded it in `_sqlx_migrations`: version, description,
/// success (1), checksum and execution time (nanoseconds; -1 for one recorded without running).
pub type RecordedMigration = (i64, String, i64, Vec<u8>, i64);

/// The migrations recorded in the database, in order.
pub async fn recorded_migrations(pool: &AnyPool) -> Vec<RecordedMigration> {
    sqlx::query_as(
        "SELECT version, description, CAST(CASE WHEN success THEN 1 ELSE 0 END AS BIGINT), \
         checksum, execution_time FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(pool)
    .await
    .expect("_sqlx_migrations")
}

/// Every table's columns (name, type, nullability, default, key) and every index, as the
/// database (SQLite when `sqlite`, else PostgreSQL) describes them: two databases with the same
/// schema give the same lines.
pub async fn schema(pool: &AnyPool, sqlite: bool) -> Vec<String> {
    let queries: &[&str] = if sqlite {
        &[
            "SELECT m.name || '.' || c.name || ' ' || c.type || ' notnull=' || c.\"notnull\" \
             || ' default=' || COALESCE(c.dflt_value, '-') || ' pk=' || c.pk \
             FROM sqlite_master m, pragma_table_info(m.name) c WHERE m.type = 'table' \
             ORDER BY m.name, c.cid",
            "SELECT m.name || ' index ' || l.name || ' unique=' || l.\"unique\" || ' ' || \
             i.seqno || ' ' || i.name \
             FROM sqlite_master m, pragma_index_list(m.name) l, pragma_index_info(l.name) i \
             WHERE m.type = 'table' ORDER BY m.name, l.name, i.seqno",
        ]
    } else {
        &[
            "SELECT table_name || '.' || column_name || ' ' || data_type || ' nullable=' || \
             is_nullable || ' default=' || COALESCE(column_default, '-') \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             ORDER BY table_name, ordinal_position",
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() \
             ORDER BY indexname",
        ]
    };
    let mut schema = Vec::new();
    for query in queries {
        let rows = sqlx::query_scalar::<_, String>(*query).fetch_all(pool).await;
        schema.extend(rows.expect("schema"));
    }
    schema
}
