//! [`open`] on a small schema of two migrations, the first of which folds a legacy runner's two.

use poco_test_utils::storage::{
    Databases, RecordedMigration, recorded_migrations, run_legacy_migrations, schema,
};
use sqlx::AnyPool;

use super::*;

const LEGACY_MIGRATIONS: &[&str] = &[
    "CREATE TABLE items (name TEXT PRIMARY KEY)",
    "ALTER TABLE items ADD COLUMN size BIGINT NOT NULL DEFAULT 0",
];

const LEGACY: Legacy = Legacy {
    service: "test service",
    version_table: "items_schema",
    migrations: LEGACY_MIGRATIONS,
    equivalent: 1,
};

const SCHEMA: Schema = Schema {
    migrations: &[
        Migration {
            version: 1,
            description: "items",
            sql: "CREATE TABLE items (name TEXT PRIMARY KEY, size BIGINT NOT NULL DEFAULT 0)",
        },
        Migration { version: 2, description: "index", sql: "CREATE INDEX by_size ON items (size)" },
    ],
    legacy: Some(LEGACY),
};

const OPTIONS: Options = Options { postgres_connections: 2, sqlite_sync: SqliteSync::Normal };

async fn items(pool: &AnyPool) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT name, size FROM items ORDER BY name").fetch_all(pool).await.unwrap()
}

/// A legacy database at each of its versions is brought to the schema of a new one, keeps
/// its data, has the folded migration recorded without running and the later one run, and
/// loses its version table.
async fn legacy_databases_are_adopted(mut databases: Databases) {
    let sqlite = databases.is_sqlite();
    let fresh = open(&databases.url("fresh").await, &SCHEMA, OPTIONS).await.unwrap();
    let fresh_schema = schema(&fresh, sqlite).await;
    fresh.close().await;
    for upto in 1..=LEGACY_MIGRATIONS.len() {
        let url = databases.url(&format!("legacy{upto}")).await;
        let legacy = run_legacy_migrations(&url, "items_schema", LEGACY_MIGRATIONS, upto).await;
        sqlx::query("INSERT INTO items (name) VALUES ('kept')").execute(&legacy).await.unwrap();
        legacy.close().await;

        let pool = open(&url, &SCHEMA, OPTIONS).await.unwrap();
        assert_eq!(schema(&pool, sqlite).await, fresh_schema, "legacy at {upto}");
        assert_eq!(items(&pool).await, [("kept".to_owned(), 0)]);
        let recorded: Vec<RecordedMigration> = recorded_migrations(&pool).await;
        let migrator = SCHEMA.migrator();
        assert_eq!(
            recorded[0],
            (1, "items".into(), 1, migrator.migrations[0].checksum.to_vec(), -1)
        );
        assert_eq!(recorded[1].0, 2);
        assert!(recorded[1].4 >= 0, "migration 2 ran: {:?}", recorded[1]);
        pool.close().await;

        let again = open(&url, &SCHEMA, OPTIONS).await.unwrap();
        assert_eq!(recorded_migrations(&again).await, recorded);
        assert!(!schema(&again, sqlite).await.iter().any(|line| line.contains("items_schema")));
        again.close().await;
    }
    databases.finish().await;
}

/// A legacy database that counts more migrations than the service knows was made by a later
/// release: it is refused, and left as it is.
async fn legacy_database_ahead_is_refused(mut databases: Databases) {
    let url = databases.url("ahead").await;
    run_legacy_migrations(&url, "items_schema", LEGACY_MIGRATIONS, 2).await.close().await;
    let behind =
        Schema { legacy: Some(Legacy { migrations: &LEGACY_MIGRATIONS[..1], ..LEGACY }), ..SCHEMA };
    let error = open(&url, &behind, OPTIONS).await.unwrap_err();
    assert!(matches!(error, StorageError::LegacyVersion { recorded: 2, known: 1, .. }));
    assert_eq!(error.to_string(), "items_schema records 2 migrations, this test service knows 1");

    let pool = AnyPool::connect(&url).await.unwrap();
    let version: i64 =
        sqlx::query_scalar("SELECT MAX(version) FROM items_schema").fetch_one(&pool).await.unwrap();
    assert_eq!(version, 2);
    pool.close().await;
    databases.finish().await;
}

#[tokio::test]
async fn legacy_sqlite_databases_are_adopted() {
    legacy_databases_are_adopted(Databases::sqlite()).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn legacy_postgres_databases_are_adopted() {
    legacy_databases_are_adopted(Databases::postgres("storage")).await;
}

#[tokio::test]
async fn legacy_sqlite_database_ahead_is_refused() {
    legacy_database_ahead_is_refused(Databases::sqlite()).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn legacy_postgres_database_ahead_is_refused() {
    legacy_database_ahead_is_refused(Databases::postgres("storage")).await;
}

/// A new SQLite file, and the folders on its path, are private to their owner; it is in
/// write-ahead-log mode, synced as asked.
#[tokio::test]
async fn sqlite_file_is_private_in_wal_mode_and_synced_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    for (name, sync, pragma) in [("normal", SqliteSync::Normal, 1), ("full", SqliteSync::Full, 2)] {
        let path = dir.path().join(name).join("store.db");
        let options = Options { postgres_connections: 2, sqlite_sync: sync };
        let pool = open(&format!("sqlite://{}", path.display()), &SCHEMA, options).await.unwrap();
        let journal: String =
            sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&pool).await.unwrap();
        let synchronous: i64 =
            sqlx::query_scalar("PRAGMA synchronous").fetch_one(&pool).await.unwrap();
        assert_eq!((journal.as_str(), synchronous), ("wal", pragma), "{name}");
        pool.close().await;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |path: &std::path::Path| path.metadata().unwrap().permissions().mode();
            assert_eq!(mode(&path) & 0o777, 0o600);
            assert_eq!(mode(path.parent().unwrap()) & 0o777, 0o700);
        }
    }
}

/// A URL that has a query gets `mode=rwc` after it, not a second query.
#[tokio::test]
async fn sqlite_url_query_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?cache=private", dir.path().join("store.db").display());
    open(&url, &SCHEMA, OPTIONS).await.unwrap().close().await;
}
