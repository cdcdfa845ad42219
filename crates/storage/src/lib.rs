//! The services' SQL databases (the scheduler's, the SMS's): opening one from the URL a service
//! is configured with, bringing its schema up to date, and taking over a database made before
//! the services used sqlx's migrator.
//!
//! [`open`] connects to an SQLite file or a PostgreSQL server, whichever the URL names. An
//! SQLite file is created if needed, private to its owner, in write-ahead-log mode, behind one
//! connection (its single writer); a PostgreSQL database gets a pool of
//! [`Options::postgres_connections`]. The database is then migrated to the service's
//! [`Schema`] by sqlx's migrator, which records every migration with its checksum in
//! `_sqlx_migrations`, refuses a database where one it recorded was changed since, and holds a
//! PostgreSQL advisory lock while it works, so that instances starting together migrate once.
//!
//! A service whose releases counted their migrations in a table of their own describes that
//! runner ([`Legacy`]); [`open`] adopts such a database before it migrates.
//!
//! [`replay`] keeps the record that makes a signed request count once.
//!
//! Everything here fails with a [`StorageError`], which each service turns into its own error.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod error;
mod legacy;
pub mod replay;

use std::borrow::Cow;

use sqlx::{
    AnyPool, SqlSafeStr as _,
    any::AnyPoolOptions,
    migrate::{MigrationType, Migrator},
};

pub use error::StorageError;

/// One migration of a schema: an SQL script, the same for SQLite and PostgreSQL.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Its number: migrations run in increasing order, each once.
    pub version: i64,
    /// What it does, in a word or two, recorded with it.
    pub description: &'static str,
    /// Its statements. Never change a released migration: the migrator refuses a database where
    /// it ran with other SQL (its checksum differs).
    pub sql: &'static str,
}

/// The schema of a service's database: how to make it, and how it was made before.
#[derive(Clone, Copy, Debug)]
pub struct Schema {
    /// The migrations, in order.
    pub migrations: &'static [Migration],
    /// The migration runner of the service's earlier releases, whose databases are adopted.
    pub legacy: Option<Legacy>,
}

impl Schema {
    /// sqlx's migrator of [`Schema::migrations`].
    pub fn migrator(&self) -> Migrator {
        let migrations = self.migrations.iter().map(|migration| {
            sqlx::migrate::Migration::new(
                migration.version,
                Cow::Borrowed(migration.description),
                MigrationType::Simple,
                migration.sql.into_sql_str(),
                false,
            )
        });
        Migrator::with_migrations(migrations.collect())
    }
}

/// How a service migrated its database before it used sqlx's migrator: its migrations, in
/// order, each once in a transaction of its own (statements split at `;`), their count recorded
/// in a version table (one row per migration run, holding its number).
///
/// [`open`] adopts such a database, once: the legacy migrations it lacks run first, as they
/// always ran, which leaves it with exactly the schema of migration [`Legacy::equivalent`];
/// that migration and those before it are then recorded in `_sqlx_migrations` as applied (with
/// their checksums) without running, and the version table is dropped, in one transaction.
/// Dropped, not left behind: `_sqlx_migrations` is from then on the one record of the schema,
/// and a release from before the switch refuses the database (its next migration fails) rather
/// than take a schema that may have moved on for the one it knows. On PostgreSQL this happens
/// under sqlx's migration lock: of instances starting together on a legacy database, one
/// adopts it and the others then find it adopted. A database without the version table is left
/// alone.
#[derive(Clone, Copy, Debug)]
pub struct Legacy {
    /// The service, as its messages name it (`scheduler`, `SMS`).
    pub service: &'static str,
    /// The table where it counted its migrations (`scheduler_schema`).
    pub version_table: &'static str,
    /// Its migrations, as it ran them. Never change them.
    pub migrations: &'static [&'static str],
    /// The last migration of [`Schema::migrations`] whose schema is the one the legacy
    /// migrations left, all of them run.
    pub equivalent: i64,
}

/// How a service's database is opened, besides its URL.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The most connections to a PostgreSQL database. An SQLite file always gets one: its
    /// single writer, on which its pragmas are set.
    pub postgres_connections: u32,
    /// When SQLite syncs a commit to disk.
    pub sqlite_sync: SqliteSync,
}

/// When SQLite syncs a commit to disk (its `synchronous` pragma).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqliteSync {
    /// As SQLite does unless told (`FULL`): a commit is on disk when it returns.
    Full,
    /// `NORMAL`: in write-ahead-log mode, the log is synced at checkpoints only. A commit may be
    /// lost to a power cut (not to a crash of the process); the database is never corrupted.
    Normal,
}

/// Opens (creating if needed) the database at `url` (`sqlite:` or `postgres:`) and brings its
/// schema up to date, adopting a database of the [`Legacy`] runner first.
///
/// An SQLite file is created private to its owner (and the folders it needs), with `mode=rwc`
/// added to the URL unless it has a `mode`; it is put in write-ahead-log mode.
pub async fn open(url: &str, schema: &Schema, options: Options) -> Result<AnyPool, StorageError> {
    sqlx::any::install_default_drivers();
    let sqlite = url.starts_with("sqlite:");
    if sqlite {
        poco_chain::files::private_sqlite_file(url)?;
    }
    let url = if sqlite && !url.contains("mode=") {
        format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
    } else {
        url.to_owned()
    };
    let connections = if sqlite { 1 } else { options.postgres_connections };
    let pool = AnyPoolOptions::new().max_connections(connections).connect(&url).await?;
    if sqlite {
        sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        if options.sqlite_sync == SqliteSync::Normal {
            sqlx::query("PRAGMA synchronous = NORMAL").execute(&pool).await?;
        }
    }
    if let Some(legacy) = &schema.legacy {
        let mut connection = pool.acquire().await?;
        legacy::adopt(&mut connection, sqlite, schema, legacy).await?;
    }
    schema.migrator().run(&pool).await?;
    Ok(pool)
}

/// A database of its own on the PostgreSQL server of `server_url`, for one of several services
/// that share the server (each has its own migrations, so each needs its own database):
/// `<the URL's database>_<name>`, created if missing. With `fresh`, one that exists is dropped
/// and made anew (a new devnet starts empty). Returns its URL: `server_url` naming it.
///
/// The URL's database must exist (it is where the server is asked); both names are checked to
/// be plain identifiers (letters, digits, `_`) before they reach any statement.
pub async fn postgres_database(
    server_url: &str,
    name: &str,
    fresh: bool,
) -> Result<String, StorageError> {
    use sqlx::{Connection as _, Executor as _};

    let invalid =
        |reason: String| StorageError::Database(sqlx::Error::Configuration(reason.into()));
    let mut url =
        url::Url::parse(server_url).map_err(|e| invalid(format!("invalid PostgreSQL URL: {e}")))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(invalid(format!("not a PostgreSQL URL: {}", url.scheme())));
    }
    let base = url.path().trim_start_matches('/');
    let base = if base.is_empty() { "postgres" } else { base };
    let database = format!("{base}_{name}");
    let plain = |text: &str| {
        !text.is_empty()
            && text.len() <= 63
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !plain(&database) {
        return Err(invalid(format!(
            "{database:?} is not a plain database name (letters, digits and _, at most 63)"
        )));
    }
    let mut admin = sqlx::PgConnection::connect(server_url).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&database)
            .fetch_one(&mut admin)
            .await?;
    if exists && fresh {
        let drop = format!("DROP DATABASE \"{database}\" WITH (FORCE)");
        admin.execute(sqlx::AssertSqlSafe(drop)).await?;
    }
    if !exists || fresh {
        let create = format!("CREATE DATABASE \"{database}\"");
        admin.execute(sqlx::AssertSqlSafe(create)).await?;
    }
    admin.close().await?;
    url.set_path(&database);
    Ok(url.to_string())
}

#[cfg(test)]
mod tests;
