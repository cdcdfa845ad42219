//! The SMS's storage, in SQLite (default) or PostgreSQL through one set of portable statements:
//! sealed secrets, sealed challenge keys, sessions, accepted signed requests and seen quotes.
//! Secret values and challenge keys only ever reach the database sealed ([`crate::seal`]).

use alloy::primitives::{Address, B256};
use poco_storage::{Legacy, Migration, Options, Schema, SqliteSync};
use sqlx::{AnyPool, Row};

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
        // SQLite syncs every commit (its default), as the SMS always did.
        let options = Options { postgres_connections: 8, sqlite_sync: SqliteSync::Full };
        Ok(Self { pool: poco_storage::open(url, &SCHEMA, options).await? })
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
        let signer = signer.to_string();
        Ok(poco_storage::replay::accept_once(
            &self.pool,
            "signer",
            &signer,
            &hex(&hash),
            fresh_until,
        )
        .await?)
    }

    /// Forgets what no longer matters: accepted requests stale since before `now_secs` (they
    /// would be refused as stale anyway), sessions expired before `sessions_before_ms`.
    pub(crate) async fn prune(&self, now_secs: u64, sessions_before_ms: i64) -> Result<()> {
        poco_storage::replay::forget_stale(&self.pool, now_secs).await?;
        sqlx::query("DELETE FROM sessions WHERE expires_ms < $1")
            .bind(sessions_before_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The SMS's schema: its migrations (`migrations/`, the same SQL for SQLite and
/// PostgreSQL), and how it migrated before it used sqlx's migrator.
const SCHEMA: Schema = Schema {
    migrations: &[Migration {
        version: 1,
        description: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    }],
    legacy: Some(Legacy {
        service: "SMS",
        version_table: "sms_schema",
        migrations: LEGACY_MIGRATIONS,
        // The first migration folds them all.
        equivalent: 1,
    }),
};

/// The schema's migrations as the SMS ran them before it used sqlx's migrator, in order, each
/// once, their count recorded in `sms_schema`. Kept only to adopt the databases they made
/// ([`Legacy`]): never change them. The second replaced the millisecond request stamps by the
/// signing hashes of accepted requests, remembered until they go stale (`expires`, unix
/// seconds).
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

#[cfg(test)]
mod tests {
    use poco_test_utils::storage::StoreUnderTest;

    use super::*;

    const SCOPE: Address = Address::repeat_byte(0x11);
    const TASK: B256 = B256::repeat_byte(0x22);
    const DEAL: B256 = B256::repeat_byte(0x33);
    const CHALLENGE: Address = Address::repeat_byte(0x44);
    const SESSION: B256 = B256::repeat_byte(0x55);
    const WORKER: Address = Address::repeat_byte(0x66);
    const NONCE: B256 = B256::repeat_byte(0x77);

    impl StoreUnderTest for Store {
        const VERSION_TABLE: &'static str = "sms_schema";
        /// The schema as released before the switch to sqlx's migrator: the legacy migrations,
        /// which are never changed, make databases exactly as that release did.
        const RELEASED_MIGRATIONS: &'static [&'static str] = LEGACY_MIGRATIONS;

        /// A secret, a challenge and a session, stored as the released SMS stored them.
        async fn store_released_data(pool: &AnyPool, _upto: usize) {
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
                    "INSERT INTO sessions (session_id, task_id, worker, nonce, request, \
                     expires_ms, used) VALUES ('{SESSION:#x}', '{TASK:#x}', '{WORKER}', \
                     '{NONCE:#x}', '{{}}', 4, 0)"
                ),
            ];
            for statement in statements {
                sqlx::query(sqlx::AssertSqlSafe(statement)).execute(pool).await.unwrap();
            }
        }

        async fn check_released_data(&self) {
            let secret = self.secret(Kind::AppSecret, SCOPE, "api-key").await.unwrap();
            assert_eq!(secret.as_deref(), Some("sealed-secret"));
            let challenge = self.challenge(TASK).await.unwrap();
            assert_eq!(challenge, Some((CHALLENGE, "sealed-key".to_owned())));
            let session = self.session(SESSION).await.unwrap().unwrap();
            assert_eq!((session.task_id, session.worker, session.nonce), (TASK, WORKER, NONCE));
            assert_eq!((session.request.as_str(), session.expires_ms), ("{}", 4));
        }

        async fn use_adopted(&self) {
            assert!(self.accept_request(WORKER, NONCE, u64::MAX).await.unwrap());
            assert!(!self.accept_request(WORKER, NONCE, u64::MAX).await.unwrap());
            assert!(self.use_session(SESSION).await.unwrap());
        }

        async fn write(&self) {
            assert!(self.insert_secret(Kind::ResultKey, SCOPE, "", "sealed", 1).await.unwrap());
        }

        async fn check_written(&self) {
            let secret = self.secret(Kind::ResultKey, SCOPE, "").await.unwrap();
            assert_eq!(secret.as_deref(), Some("sealed"));
        }
    }

    poco_test_utils::store_tests! {
        store: Store,
        error: Error,
        migrator: SCHEMA.migrator(),
        migration_error: Error::Migration,
        postgres: "sms_store",
    }
}
