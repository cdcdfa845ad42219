//! The SMS's storage, in SQLite (default) or PostgreSQL through one set of portable statements:
//! sealed secrets, sealed challenge keys, sessions, accepted signed requests and seen quotes.
//! Secret values and challenge keys only ever reach the database sealed ([`crate::seal`]).

use std::borrow::Cow;

use alloy::primitives::{Address, B256};
use sqlx::{
    AnyConnection, AnyPool, Connection as _, Row, SqlSafeStr as _,
    any::AnyPoolOptions,
    migrate::{Migrate as _, Migration, MigrationType, Migrator},
};

use crate::error::{Error, Result};

/// What a secret is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A dataset's key (scope: the dataset).
    DatasetKey,
    /// An app developer's secret (scope: the app).
    AppSecret,
    /// A requester's named secret (scope: the requester).
    RequesterSecret,
    /// A beneficiary's result encryption key (scope: the beneficiary).
    ResultKey,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::DatasetKey => "dataset-key",
            Self::AppSecret => "app-secret",
            Self::RequesterSecret => "requester-secret",
            Self::ResultKey => "result-key",
        }
    }
}

/// An open session as stored.
#[derive(Clone, Debug)]
pub(crate) struct SessionRecord {
    pub(crate) task_id: B256,
    pub(crate) worker: Address,
    pub(crate) nonce: B256,
    /// The session request (deal, index, params, authorization), JSON.
    pub(crate) request: String,
    pub(crate) expires_ms: i64,
    pub(crate) used: bool,
}

/// The database.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pool: AnyPool,
}

fn hex<T: std::fmt::LowerHex>(value: &T) -> String {
    format!("{value:#x}")
}

fn parse<T: std::str::FromStr>(text: &str, what: &str) -> Result<T> {
    text.parse().map_err(|_| Error::corrupt(format!("{what} {text:?}")))
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    pub(crate) async fn open(url: &str) -> Result<Self> {
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
        let pool =
            AnyPoolOptions::new().max_connections(if sqlite { 1 } else { 8 }).connect(&url).await?;
        if sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        let mut connection = pool.acquire().await?;
        adopt_legacy_schema(&mut connection, sqlite).await?;
        drop(connection);
        migrator().run(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes every connection, waiting until they are closed (SQLite checkpoints its
    /// write-ahead log into the database file and removes it).
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Stores a secret unless one is there; returns whether it was stored.
    pub(crate) async fn insert_secret(
        &self,
        kind: Kind,
        scope: Address,
        name: &str,
        sealed: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO secrets (kind, scope, name, sealed, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (kind, scope, name) DO NOTHING",
        )
        .bind(kind.as_str())
        .bind(hex(&scope))
        .bind(name)
        .bind(sealed)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores or replaces a secret.
    pub(crate) async fn upsert_secret(
        &self,
        kind: Kind,
        scope: Address,
        name: &str,
        sealed: &str,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO secrets (kind, scope, name, sealed, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (kind, scope, name) \
             DO UPDATE SET sealed = excluded.sealed, updated_ms = excluded.updated_ms",
        )
        .bind(kind.as_str())
        .bind(hex(&scope))
        .bind(name)
        .bind(sealed)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The sealed value of a secret.
    pub(crate) async fn secret(
        &self,
        kind: Kind,
        scope: Address,
        name: &str,
    ) -> Result<Option<String>> {
        let row =
            sqlx::query("SELECT sealed FROM secrets WHERE kind = $1 AND scope = $2 AND name = $3")
                .bind(kind.as_str())
                .bind(hex(&scope))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|row| row.try_get::<String, _>(0)).transpose()?)
    }

    /// Stores a task's challenge unless one is there; returns the task's challenge address
    /// (the one stored first wins).
    pub(crate) async fn insert_challenge(
        &self,
        task_id: B256,
        deal_id: B256,
        address: Address,
        sealed: &str,
        now_ms: i64,
    ) -> Result<Address> {
        sqlx::query(
            "INSERT INTO challenges (task_id, deal_id, address, sealed, created_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (task_id) DO NOTHING",
        )
        .bind(hex(&task_id))
        .bind(hex(&deal_id))
        .bind(address.to_string())
        .bind(sealed)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        let (address, _) = self
            .challenge(task_id)
            .await?
            .ok_or_else(|| Error::corrupt("a challenge vanished after its insert"))?;
        Ok(address)
    }

    /// A task's challenge: its address and sealed private key.
    pub(crate) async fn challenge(&self, task_id: B256) -> Result<Option<(Address, String)>> {
        let row = sqlx::query("SELECT address, sealed FROM challenges WHERE task_id = $1")
            .bind(hex(&task_id))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let address: String = row.try_get(0)?;
            Ok((parse(&address, "challenge address")?, row.try_get(1)?))
        })
        .transpose()
    }

    /// Records a new session.
    pub(crate) async fn insert_session(
        &self,
        session_id: B256,
        record: &SessionRecord,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (session_id, task_id, worker, nonce, request, expires_ms, used) \
             VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(hex(&session_id))
        .bind(hex(&record.task_id))
        .bind(record.worker.to_string())
        .bind(hex(&record.nonce))
        .bind(&record.request)
        .bind(record.expires_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A session.
    pub(crate) async fn session(&self, session_id: B256) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT task_id, worker, nonce, request, expires_ms, used FROM sessions \
             WHERE session_id = $1",
        )
        .bind(hex(&session_id))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(SessionRecord {
                task_id: parse(&row.try_get::<String, _>(0)?, "task id")?,
                worker: parse(&row.try_get::<String, _>(1)?, "worker")?,
                nonce: parse(&row.try_get::<String, _>(2)?, "nonce")?,
                request: row.try_get(3)?,
                expires_ms: row.try_get(4)?,
                used: row.try_get::<i64, _>(5)? != 0,
            })
        })
        .transpose()
    }

    /// Marks a session used, atomically: returns whether this call did (a session serves once).
    pub(crate) async fn use_session(&self, session_id: B256) -> Result<bool> {
        let done = sqlx::query("UPDATE sessions SET used = 1 WHERE session_id = $1 AND used = 0")
            .bind(hex(&session_id))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a quote; returns whether it is new (a quote is accepted once).
    pub(crate) async fn insert_quote(
        &self,
        digest: B256,
        session_id: B256,
        now_ms: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO quotes (digest, session_id, at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(hex(&digest))
        .bind(hex(&session_id))
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Accepts the signed request of `signer` whose signing hash is `hash`, unless it was
    /// accepted before, atomically (two copies of one request cannot both pass); it is
    /// remembered until `fresh_until` (unix seconds), when it goes stale. Returns whether
    /// accepted.
    pub(crate) async fn accept_request(
        &self,
        signer: Address,
        hash: B256,
        fresh_until: u64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO request_nonces (signer, hash, expires) VALUES ($1, $2, $3) \
             ON CONFLICT (signer, hash) DO NOTHING",
        )
        .bind(signer.to_string())
        .bind(hex(&hash))
        .bind(i64::try_from(fresh_until).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets what no longer matters: accepted requests stale since before `now_secs` (they
    /// would be refused as stale anyway), sessions expired before `sessions_before_ms`.
    pub(crate) async fn prune(&self, now_secs: u64, sessions_before_ms: i64) -> Result<()> {
        sqlx::query("DELETE FROM request_nonces WHERE expires < $1")
            .bind(i64::try_from(now_secs).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE expires_ms < $1")
            .bind(sessions_before_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The schema's migrations (`migrations/`, the same SQL for SQLite and PostgreSQL), run by
/// sqlx's migrator: it records each in `_sqlx_migrations` with its checksum and refuses a
/// database where one it recorded was changed since.
fn migrator() -> Migrator {
    let migration = |version, description, sql: &'static str| {
        let description = Cow::Borrowed(description);
        Migration::new(version, description, MigrationType::Simple, sql.into_sql_str(), false)
    };
    Migrator::with_migrations(vec![migration(
        1,
        "init",
        include_str!("../migrations/0001_init.sql"),
    )])
}

/// The schema's migrations as the SMS ran them before it used sqlx's migrator, in order, each
/// once, their count recorded in `sms_schema`. Kept only for [`adopt_legacy_schema`]: never
/// change them. The second replaced the millisecond request stamps by the signing hashes of
/// accepted requests, remembered until they go stale (`expires`, unix seconds).
const LEGACY_MIGRATIONS: &[&str] = &[
    "
CREATE TABLE IF NOT EXISTS secrets (
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    sealed TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, scope, name)
);
CREATE TABLE IF NOT EXISTS challenges (
    task_id TEXT PRIMARY KEY,
    deal_id TEXT NOT NULL,
    address TEXT NOT NULL,
    sealed TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    worker TEXT NOT NULL,
    nonce TEXT NOT NULL,
    request TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    used BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS request_stamps (
    signer TEXT NOT NULL,
    stamp BIGINT NOT NULL,
    PRIMARY KEY (signer, stamp)
);
CREATE TABLE IF NOT EXISTS quotes (
    digest TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL
)
",
    "
DROP TABLE IF EXISTS request_stamps;
CREATE TABLE IF NOT EXISTS request_nonces (
    signer TEXT NOT NULL,
    hash TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (signer, hash)
);
CREATE INDEX IF NOT EXISTS request_nonces_by_expiry ON request_nonces (expires)
",
];

/// The migration whose schema is the one [`LEGACY_MIGRATIONS`] left: the first folds them all.
const LEGACY_EQUIVALENT: i64 = 1;

/// Where sqlx's migrator records the migrations it applied (its default).
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// Puts a database made before the SMS used sqlx's migrator under it, once: such a database
/// counts its migrations in `sms_schema` and has no `_sqlx_migrations`. The legacy migrations
/// it lacks run first, as they always ran; its schema is then exactly the one migration
/// [`LEGACY_EQUIVALENT`] makes, which is recorded as applied (with its checksum) without
/// running, while `sms_schema` is dropped, in one transaction. Dropped, not left behind:
/// `_sqlx_migrations` is from then on the one record of the schema, and an SMS from before the
/// switch refuses the database (its second migration fails) rather than take a schema that
/// may have moved on for the one it knows. Does nothing to any other database.
async fn adopt_legacy_schema(connection: &mut AnyConnection, sqlite: bool) -> Result<()> {
    if !table_exists(connection, sqlite, "sms_schema").await? {
        return Ok(());
    }
    // On PostgreSQL, sqlx's migration lock (nothing on SQLite): of SMS instances starting together
    // on a legacy database, one adopts it and the others then find it adopted.
    connection.lock().await?;
    let adopted: Result<()> = async {
        if table_exists(connection, sqlite, MIGRATIONS_TABLE).await? {
            return Ok(());
        }
        let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM sms_schema")
            .fetch_one(&mut *connection)
            .await?;
        let version = version.unwrap_or(0) as usize;
        if version > LEGACY_MIGRATIONS.len() {
            let known = LEGACY_MIGRATIONS.len();
            let what = format!("sms_schema records {version} migrations, this SMS knows {known}");
            return Err(Error::corrupt(what));
        }
        for (number, migration) in LEGACY_MIGRATIONS.iter().enumerate().skip(version) {
            let mut tx = connection.begin().await?;
            for statement in migration.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                sqlx::query(statement).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO sms_schema (version) VALUES ($1)")
                .bind((number + 1) as i64)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        let migrator = migrator();
        let mut tx = connection.begin().await?;
        tx.ensure_migrations_table(MIGRATIONS_TABLE).await?;
        for migration in migrator.iter().filter(|m| m.version <= LEGACY_EQUIVALENT) {
            tx.skip(MIGRATIONS_TABLE, migration).await?;
        }
        sqlx::query("DROP TABLE sms_schema").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    let unlocked = connection.unlock().await;
    adopted?;
    Ok(unlocked?)
}

/// Whether `table` exists (where an unqualified name creates it, on PostgreSQL).
async fn table_exists(connection: &mut AnyConnection, sqlite: bool, table: &str) -> Result<bool> {
    let query = if sqlite {
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1"
    } else {
        "SELECT COUNT(*) FROM pg_catalog.pg_tables \
         WHERE schemaname = current_schema() AND tablename = $1"
    };
    let count: i64 = sqlx::query_scalar(query).bind(table).fetch_one(connection).await?;
    Ok(count > 0)
}

#[cfg(test)]
mod tests {
    use poco_test_utils::postgres::TestDatabase;
    use sqlx::migrate::MigrateError;

    use super::*;

    /// The schema as released before the switch to sqlx's migrator: that SMS's migrations,
    /// copied here as they were, to make databases exactly as it did.
    const RELEASED_MIGRATIONS: &[&str] = &[
        "
CREATE TABLE IF NOT EXISTS secrets (
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    sealed TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, scope, name)
);
CREATE TABLE IF NOT EXISTS challenges (
    task_id TEXT PRIMARY KEY,
    deal_id TEXT NOT NULL,
    address TEXT NOT NULL,
    sealed TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    worker TEXT NOT NULL,
    nonce TEXT NOT NULL,
    request TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    used BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS request_stamps (
    signer TEXT NOT NULL,
    stamp BIGINT NOT NULL,
    PRIMARY KEY (signer, stamp)
);
CREATE TABLE IF NOT EXISTS quotes (
    digest TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL
)
",
        "
DROP TABLE IF EXISTS request_stamps;
CREATE TABLE IF NOT EXISTS request_nonces (
    signer TEXT NOT NULL,
    hash TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (signer, hash)
);
CREATE INDEX IF NOT EXISTS request_nonces_by_expiry ON request_nonces (expires)
",
    ];

    const SCOPE: Address = Address::repeat_byte(0x11);
    const TASK: B256 = B256::repeat_byte(0x22);
    const DEAL: B256 = B256::repeat_byte(0x33);
    const CHALLENGE: Address = Address::repeat_byte(0x44);
    const SESSION: B256 = B256::repeat_byte(0x55);
    const WORKER: Address = Address::repeat_byte(0x66);
    const NONCE: B256 = B256::repeat_byte(0x77);

    /// Makes the database at `url` as the released SMS did, up to its migration `upto` (its
    /// version table and loop, as they were), with a secret, a challenge and a session in it,
    /// stored as it stored them.
    async fn create_as_released(url: &str, upto: usize) {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let url = if sqlite { format!("{url}?mode=rwc") } else { url.to_owned() };
        let pool = AnyPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
        if sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await.unwrap();
        }
        sqlx::query("CREATE TABLE IF NOT EXISTS sms_schema (version BIGINT NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        let version: Option<i64> = sqlx::query("SELECT MAX(version) FROM sms_schema")
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        let released = RELEASED_MIGRATIONS.iter().enumerate().take(upto);
        for (number, migration) in released.skip(version.unwrap_or(0) as usize) {
            let mut tx = pool.begin().await.unwrap();
            for statement in migration.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                sqlx::query(statement).execute(&mut *tx).await.unwrap();
            }
            sqlx::query("INSERT INTO sms_schema (version) VALUES ($1)")
                .bind((number + 1) as i64)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        let statements = [
            format!(
                "INSERT INTO secrets (kind, scope, name, sealed, created_ms, updated_ms) \
                 VALUES ('app-secret', '{SCOPE:#x}', 'api-key', 'sealed-secret', 1, 2)"
            ),
            format!(
                "INSERT INTO challenges (task_id, deal_id, address, sealed, created_ms) \
                 VALUES ('{TASK:#x}', '{DEAL:#x}', '{CHALLENGE}', 'sealed-key', 3)"
            ),
            format!(
                "INSERT INTO sessions (session_id, task_id, worker, nonce, request, expires_ms, \
                 used) VALUES ('{SESSION:#x}', '{TASK:#x}', '{WORKER}', '{NONCE:#x}', '{{}}', \
                 4, 0)"
            ),
        ];
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }

    /// Checks that the data [`create_as_released`] stored reads back through the store.
    async fn check_released_data(store: &Store) {
        let secret = store.secret(Kind::AppSecret, SCOPE, "api-key").await.unwrap();
        assert_eq!(secret.as_deref(), Some("sealed-secret"));
        let challenge = store.challenge(TASK).await.unwrap();
        assert_eq!(challenge, Some((CHALLENGE, "sealed-key".to_owned())));
        let session = store.session(SESSION).await.unwrap().unwrap();
        assert_eq!((session.task_id, session.worker, session.nonce), (TASK, WORKER, NONCE));
        assert_eq!((session.request.as_str(), session.expires_ms), ("{}", 4));
    }

    /// The migrations recorded in the database: version, description, success (1), checksum
    /// and execution time.
    async fn recorded(store: &Store) -> Vec<(i64, String, i64, Vec<u8>, i64)> {
        sqlx::query_as(
            "SELECT version, description, CAST(CASE WHEN success THEN 1 ELSE 0 END AS BIGINT), \
             checksum, execution_time FROM _sqlx_migrations ORDER BY version",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap()
    }

    /// Every table's columns (name, type, nullability, default, key) and every index, as the
    /// database describes them.
    async fn schema(store: &Store, sqlite: bool) -> Vec<String> {
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
            let rows = sqlx::query_scalar::<_, String>(*query).fetch_all(&store.pool).await;
            schema.extend(rows.unwrap());
        }
        schema
    }

    /// The migrator's record of migration 1, as applied by [`adopt_legacy_schema`] (which
    /// runs nothing: no execution time).
    fn adopted() -> Vec<(i64, String, i64, Vec<u8>, i64)> {
        let migrator = migrator();
        let init = &migrator.migrations[0];
        vec![(1, "init".to_owned(), 1, init.checksum.to_vec(), -1)]
    }

    /// Databases for one test: SQLite files in a temporary folder, or databases of their own
    /// on the PostgreSQL test server, dropped at the end.
    enum Databases {
        Sqlite(tempfile::TempDir),
        Postgres(Vec<TestDatabase>),
    }

    impl Databases {
        fn sqlite() -> Self {
            Self::Sqlite(tempfile::tempdir().unwrap())
        }

        fn is_sqlite(&self) -> bool {
            matches!(self, Self::Sqlite(_))
        }

        async fn url(&mut self, name: &str) -> String {
            match self {
                Self::Sqlite(dir) => {
                    format!("sqlite://{}", dir.path().join(format!("{name}.db")).display())
                }
                Self::Postgres(databases) => {
                    let database = TestDatabase::create("sms_store").await;
                    databases.push(database.clone());
                    database.url
                }
            }
        }

        async fn finish(self) {
            if let Self::Postgres(databases) = self {
                for database in databases {
                    database.drop_database().await;
                }
            }
        }
    }

    /// A database released at each legacy version opens, is brought forward to the schema of
    /// a fresh one, keeps its data, and opens again without any change.
    async fn released_databases_are_adopted(mut databases: Databases) {
        let sqlite = databases.is_sqlite();
        let fresh = Store::open(&databases.url("fresh").await).await.unwrap();
        let fresh_schema = schema(&fresh, sqlite).await;
        fresh.close().await;
        for upto in 1..=RELEASED_MIGRATIONS.len() {
            let url = databases.url(&format!("released{upto}")).await;
            create_as_released(&url, upto).await;
            let store = Store::open(&url).await.unwrap();
            check_released_data(&store).await;
            assert_eq!(schema(&store, sqlite).await, fresh_schema, "released at {upto}");
            assert_eq!(recorded(&store).await, adopted());
            // What the later legacy migration brought works.
            assert!(store.accept_request(WORKER, NONCE, u64::MAX).await.unwrap());
            assert!(!store.accept_request(WORKER, NONCE, u64::MAX).await.unwrap());
            store.close().await;

            let again = Store::open(&url).await.unwrap();
            check_released_data(&again).await;
            assert_eq!(schema(&again, sqlite).await, fresh_schema);
            assert_eq!(recorded(&again).await, adopted());
            assert!(again.use_session(SESSION).await.unwrap());
            again.close().await;
        }
        databases.finish().await;
    }

    /// A new database gets the schema and its record; opening it again changes nothing.
    async fn fresh_database_migrates(mut databases: Databases) {
        let url = databases.url("fresh").await;
        let store = Store::open(&url).await.unwrap();
        let record = recorded(&store).await;
        assert_eq!(record.len(), 1);
        let (version, description, success, checksum, _) = &record[0];
        assert_eq!((*version, description.as_str(), *success), (1, "init", 1));
        assert_eq!(checksum, &migrator().migrations[0].checksum.to_vec());
        assert!(store.insert_secret(Kind::ResultKey, SCOPE, "", "sealed", 1).await.unwrap());
        store.close().await;

        let again = Store::open(&url).await.unwrap();
        assert_eq!(recorded(&again).await, record);
        let secret = again.secret(Kind::ResultKey, SCOPE, "").await.unwrap();
        assert_eq!(secret.as_deref(), Some("sealed"));
        again.close().await;
        databases.finish().await;
    }

    /// A database whose recorded migration is not the one this SMS has is refused, with an
    /// error that says so.
    async fn tampered_migration_is_refused(mut databases: Databases) {
        let url = databases.url("tampered").await;
        let store = Store::open(&url).await.unwrap();
        sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 1")
            .bind(vec![0_u8; 48])
            .execute(&store.pool)
            .await
            .unwrap();
        store.close().await;
        let error = Store::open(&url).await.unwrap_err();
        assert!(matches!(error, Error::Migration(MigrateError::VersionMismatch(1))), "{error:?}");
        assert_eq!(
            error.to_string(),
            "database migration failed: migration 1 was previously applied but has been modified"
        );
        databases.finish().await;
    }

    #[tokio::test]
    async fn released_sqlite_databases_are_adopted() {
        released_databases_are_adopted(Databases::sqlite()).await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL"]
    async fn released_postgres_databases_are_adopted() {
        released_databases_are_adopted(Databases::Postgres(Vec::new())).await;
    }

    /// Two services starting together on a released database: one adopts it, the other finds
    /// it adopted.
    #[tokio::test]
    #[ignore = "needs PostgreSQL"]
    async fn released_postgres_database_is_adopted_once_by_two_at_once() {
        let mut databases = Databases::Postgres(Vec::new());
        let url = databases.url("released").await;
        create_as_released(&url, 1).await;
        let (first, second) = tokio::join!(Store::open(&url), Store::open(&url));
        for store in [first.unwrap(), second.unwrap()] {
            check_released_data(&store).await;
            assert_eq!(recorded(&store).await, adopted());
            store.close().await;
        }
        databases.finish().await;
    }

    #[tokio::test]
    async fn fresh_sqlite_database_migrates() {
        fresh_database_migrates(Databases::sqlite()).await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL"]
    async fn fresh_postgres_database_migrates() {
        fresh_database_migrates(Databases::Postgres(Vec::new())).await;
    }

    #[tokio::test]
    async fn tampered_sqlite_migration_is_refused() {
        tampered_migration_is_refused(Databases::sqlite()).await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL"]
    async fn tampered_postgres_migration_is_refused() {
        tampered_migration_is_refused(Databases::Postgres(Vec::new())).await;
    }
}
