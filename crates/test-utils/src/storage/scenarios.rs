//! The tests every service's store on `poco-storage` passes, on SQLite and on PostgreSQL: a new
//! database is migrated, a database of a release from before sqlx's migrator is adopted (by one
//! of two instances starting together, on PostgreSQL), a database whose recorded migration was
//! changed since it ran is refused. A store declares them with [`store_tests!`](crate::store_tests)
//! from what is its own ([`StoreUnderTest`]).

use std::future::Future;

use sqlx::{
    AnyPool,
    migrate::{MigrateError, Migrator},
};

use super::{Databases, RecordedMigration, recorded_migrations, run_legacy_migrations, schema};

/// How the storage tests reach a service's store: [`store_tests!`](crate::store_tests)
/// implements it.
pub trait StoreAccess: Sized {
    /// What opening the store fails with.
    type Error: std::fmt::Debug + std::fmt::Display;
    /// Opens the database at `url` as the service does.
    fn open(url: &str) -> impl Future<Output = Result<Self, Self::Error>>;
    /// The store's pool.
    fn pool(&self) -> &AnyPool;
    /// The service's migrator.
    fn migrator() -> Migrator;
    /// The migrator's error in an error of opening the store, if it is one.
    fn migration_error(error: &Self::Error) -> Option<&MigrateError>;
}

/// What is the service's own in its storage tests: the migrations of its releases from before
/// sqlx's migrator and the data they stored, and what the store reads back.
pub trait StoreUnderTest: StoreAccess {
    /// The table where those releases counted their migrations (`scheduler_schema`).
    const VERSION_TABLE: &'static str;
    /// Their migrations, copied here as they were released, to make databases exactly as they
    /// did (never the service's own legacy list: a test of it against itself proves nothing).
    const RELEASED_MIGRATIONS: &'static [&'static str];

    /// Stores data in a database released up to legacy migration `upto`, as that release
    /// stored it.
    fn store_released_data(pool: &AnyPool, upto: usize) -> impl Future<Output = ()>;
    /// Checks that the data [`StoreUnderTest::store_released_data`] stored reads back.
    fn check_released_data(&self) -> impl Future<Output = ()>;
    /// Uses, in an adopted database, what the later legacy migrations brought (last: it may
    /// change the released data).
    fn use_adopted(&self) -> impl Future<Output = ()>;

    /// Writes to a new database, for [`StoreUnderTest::check_written`] once it is reopened.
    fn write(&self) -> impl Future<Output = ()>;
    /// Checks what [`StoreUnderTest::write`] wrote.
    fn check_written(&self) -> impl Future<Output = ()>;
}

/// What the adoption of a legacy database records: migration 1, applied without running (no
/// execution time), then the service's later migrations, run (their execution times, which
/// vary, as 0: see [`ran_as_zero`]).
fn adopted<S: StoreAccess>() -> Vec<RecordedMigration> {
    let migrator = S::migrator();
    let recorded = migrator.iter().enumerate().map(|(index, migration)| {
        let time = if index == 0 { -1 } else { 0 };
        (migration.version, migration.description.to_string(), 1, migration.checksum.to_vec(), time)
    });
    recorded.collect()
}

/// The migrations recorded in the database, the execution time of those that ran as 0.
async fn ran_as_zero(pool: &AnyPool) -> Vec<RecordedMigration> {
    let mut recorded = recorded_migrations(pool).await;
    for (.., time) in &mut recorded {
        if *time >= 0 {
            *time = 0;
        }
    }
    recorded
}

/// Makes the database at `url` as the releases before sqlx's migrator did, up to their
/// migration `upto`, with their data in it.
async fn create_as_released<S: StoreUnderTest>(url: &str, upto: usize) {
    let pool = run_legacy_migrations(url, S::VERSION_TABLE, S::RELEASED_MIGRATIONS, upto).await;
    S::store_released_data(&pool, upto).await;
    pool.close().await;
}

/// A database released at each legacy version opens, is brought forward to the schema of a
/// fresh one, keeps its data, and opens again without any change; what the later legacy
/// migrations brought works.
pub async fn released_databases_are_adopted<S: StoreUnderTest>(mut databases: Databases) {
    let sqlite = databases.is_sqlite();
    let fresh = S::open(&databases.url("fresh").await).await.unwrap();
    let fresh_schema = schema(fresh.pool(), sqlite).await;
    fresh.pool().close().await;
    for upto in 1..=S::RELEASED_MIGRATIONS.len() {
        let url = databases.url(&format!("released{upto}")).await;
        create_as_released::<S>(&url, upto).await;
        let store = S::open(&url).await.unwrap();
        store.check_released_data().await;
        assert_eq!(schema(store.pool(), sqlite).await, fresh_schema, "released at {upto}");
        assert_eq!(ran_as_zero(store.pool()).await, adopted::<S>());
        store.pool().close().await;

        let again = S::open(&url).await.unwrap();
        again.check_released_data().await;
        assert_eq!(schema(again.pool(), sqlite).await, fresh_schema);
        assert_eq!(ran_as_zero(again.pool()).await, adopted::<S>());
        again.use_adopted().await;
        again.pool().close().await;
    }
    databases.finish().await;
}

/// Two instances starting together on a released database (PostgreSQL): one adopts it, the
/// other finds it adopted.
pub async fn released_database_is_adopted_once_by_two_at_once<S: StoreUnderTest>(
    mut databases: Databases,
) {
    let url = databases.url("released").await;
    create_as_released::<S>(&url, 1).await;
    let (first, second) = tokio::join!(S::open(&url), S::open(&url));
    for store in [first.unwrap(), second.unwrap()] {
        store.check_released_data().await;
        assert_eq!(ran_as_zero(store.pool()).await, adopted::<S>());
        store.pool().close().await;
    }
    databases.finish().await;
}

/// A new database gets the schema and the record of every migration, with its checksum;
/// opening it again changes nothing.
pub async fn fresh_database_migrates<S: StoreUnderTest>(mut databases: Databases) {
    let url = databases.url("fresh").await;
    let store = S::open(&url).await.unwrap();
    let record = recorded_migrations(store.pool()).await;
    let migrator = S::migrator();
    assert_eq!(record.len(), migrator.migrations.len());
    for (recorded, migration) in record.iter().zip(migrator.iter()) {
        let (version, description, success, checksum, _) = recorded;
        assert_eq!(
            (*version, description.as_str(), *success),
            (migration.version, &*migration.description, 1)
        );
        assert_eq!(checksum, &migration.checksum.to_vec());
    }
    store.write().await;
    store.pool().close().await;

    let again = S::open(&url).await.unwrap();
    assert_eq!(recorded_migrations(again.pool()).await, record);
    again.check_written().await;
    again.pool().close().await;
    databases.finish().await;
}

/// A database whose recorded migration is not the one the service has is refused, with an
/// error that says so.
pub async fn tampered_migration_is_refused<S: StoreAccess>(mut databases: Databases) {
    let url = databases.url("tampered").await;
    let store = S::open(&url).await.unwrap();
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 1")
        .bind(vec![0_u8; 48])
        .execute(store.pool())
        .await
        .unwrap();
    store.pool().close().await;
    let Err(error) = S::open(&url).await else { panic!("a tampered database opened") };
    assert!(
        matches!(S::migration_error(&error), Some(MigrateError::VersionMismatch(1))),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "database migration failed: migration 1 was previously applied but has been modified"
    );
    databases.finish().await;
}

/// Declares the storage tests of a service's store (see [`scenarios`](crate::storage::scenarios)),
/// each on SQLite and on PostgreSQL (`#[ignore = "needs PostgreSQL"]`, in databases named after
/// `postgres`), under the names the services have always given them.
///
/// `store` implements [`StoreUnderTest`]; it opens with its own `async fn open(url: &str)`,
/// failing with `error`, and keeps its pool in a field `pool`. `migrator` is the service's
/// migrator, `migration_error` the variant of `error` that holds the migrator's error. The
/// calling crate's tests use `tokio` and `sqlx`.
#[macro_export]
macro_rules! store_tests {
    (
        store: $store:ident,
        error: $error:ty,
        migrator: $migrator:expr,
        migration_error: $variant:path,
        postgres: $purpose:literal $(,)?
    ) => {
        impl $crate::storage::scenarios::StoreAccess for $store {
            type Error = $error;

            async fn open(url: &str) -> Result<Self, $error> {
                $store::open(url).await
            }

            fn pool(&self) -> &::sqlx::AnyPool {
                &self.pool
            }

            fn migrator() -> ::sqlx::migrate::Migrator {
                $migrator
            }

            fn migration_error(error: &$error) -> Option<&::sqlx::migrate::MigrateError> {
                if let $variant(error) = error { Some(error) } else { None }
            }
        }

        #[tokio::test]
        async fn released_sqlite_databases_are_adopted() {
            let databases = $crate::storage::Databases::sqlite();
            $crate::storage::scenarios::released_databases_are_adopted::<$store>(databases).await;
        }

        #[tokio::test]
        #[ignore = "needs PostgreSQL"]
        async fn released_postgres_databases_are_adopted() {
            let databases = $crate::storage::Databases::postgres($purpose);
            $crate::storage::scenarios::released_databases_are_adopted::<$store>(databases).await;
        }

        #[tokio::test]
        #[ignore = "needs PostgreSQL"]
        async fn released_postgres_database_is_adopted_once_by_two_at_once() {
            let databases = $crate::storage::Databases::postgres($purpose);
            $crate::storage::scenarios::released_database_is_adopted_once_by_two_at_once::<$store>(
                databases,
            )
            .await;
        }

        #[tokio::test]
        async fn fresh_sqlite_database_migrates() {
            let databases = $crate::storage::Databases::sqlite();
            $crate::storage::scenarios::fresh_database_migrates::<$store>(databases).await;
        }

        #[tokio::test]
        #[ignore = "needs PostgreSQL"]
        async fn fresh_postgres_database_migrates() {
            let databases = $crate::storage::Databases::postgres($purpose);
            $crate::storage::scenarios::fresh_database_migrates::<$store>(databases).await;
        }

        #[tokio::test]
        async fn tampered_sqlite_migration_is_refused() {
            let databases = $crate::storage::Databases::sqlite();
            $crate::storage::scenarios::tampered_migration_is_refused::<$store>(databases).await;
        }

        #[tokio::test]
        #[ignore = "needs PostgreSQL"]
        async fn tampered_postgres_migration_is_refused() {
            let databases = $crate::storage::Databases::postgres($purpose);
            $crate::storage::scenarios::tampered_migration_is_refused::<$store>(databases).await;
        }
    };
}
