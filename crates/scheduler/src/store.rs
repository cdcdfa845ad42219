//! The scheduler's persistent state: deals, tasks, replicas, workers and the chain checkpoint,
//! in SQLite (default) or PostgreSQL, through one set of portable SQL statements.
//!
//! Everything the chain knows is re-derived from its events (applied in the same transaction
//! as the checkpoint, so a restart neither loses nor repeats one); each task's events are
//! recorded with it, so that a chain reorganisation can be undone (see `chain`:
//! [`Store::rollback`]). What only the scheduler
//! knows is stored before it is acted upon: a replica is recorded before its authorization is
//! handed out, an uploader before its ticket. A scheduler killed at any moment restarts from
//! here and from the chain.

use std::str::FromStr;

use alloy::primitives::{Address, B256, Bytes, U256};
use poco_api::pool::Unhealthy;
use poco_primitives::Deal;
use poco_storage::{Legacy, Migration, Options, Schema, SqliteSync};
use sqlx::{AnyPool, Row, any::AnyRow};

use crate::{Error, Result};

mod chain;
mod lease;

pub use chain::{ChainChange, ChainDump, LocatedChange, RolledBack, TaskFacts};
pub use lease::{Fence, IDLE_WRITE_TIMEOUT, LeaseRecord};

use lease::FencedWrite as _;

/// The stage of a task, as the scheduler drives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Open to contributions (on-chain UNSET or ACTIVE).
    Open,
    /// Consensus reached: waiting for reveals, an upload, then finalize.
    Revealing,
    /// Finalized: paid.
    Completed,
    /// Claimed after its final deadline: refunded.
    Failed,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Revealing => "revealing",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    /// Whether the task is over.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

impl FromStr for Stage {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "open" => Self::Open,
            "revealing" => Self::Revealing,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            other => return Err(Error::corrupt(format!("task stage {other:?}"))),
        })
    }
}

/// What a replica (one worker's copy of a task) is at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplicaState {
    /// Handed out with an authorization; nothing heard since.
    Assigned,
    /// The worker computed a result and is committing it.
    Computed,
    /// The contribution is on-chain.
    Contributed,
    /// The contribution is revealed on-chain.
    Revealed,
    /// The contribution was rejected by a reopen.
    Rejected,
    /// The worker gave up.
    Failed,
    /// The worker went silent before contributing.
    Expired,
    /// The worker handed the task back before computing it (its disk was full, say): the task
    /// goes to the next worker, and may come back to this one later.
    Released,
}

impl ReplicaState {
    /// Its name, as stored (`assigned`, `released`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assigned => "assigned",
            Self::Computed => "computed",
            Self::Contributed => "contributed",
            Self::Revealed => "revealed",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Released => "released",
        }
    }

    /// Whether the replica may still produce a contribution.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Assigned | Self::Computed)
    }
}

impl FromStr for ReplicaState {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "assigned" => Self::Assigned,
            "computed" => Self::Computed,
            "contributed" => Self::Contributed,
            "revealed" => Self::Revealed,
            "rejected" => Self::Rejected,
            "failed" => Self::Failed,
            "expired" => Self::Expired,
            "released" => Self::Released,
            other => return Err(Error::corrupt(format!("replica state {other:?}"))),
        })
    }
}

/// A task as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    /// The task id.
    pub task_id: B256,
    /// Its deal.
    pub deal_id: B256,
    /// Its index in the deal's bag of tasks.
    pub index: U256,
    /// Where the scheduler is with it.
    pub stage: Stage,
    /// Whether `initialize` was mined (or a contribution initialized it).
    pub initialized: bool,
    /// The consensus result hash, once reached.
    pub consensus: Option<B256>,
    /// The worker asked to upload the result.
    pub uploader: Option<Address>,
    /// When the uploader was asked (ms).
    pub upload_asked_ms: i64,
    /// Where the uploaded result is.
    pub location: Option<String>,
    /// The callback data of the result, for deals with a callback.
    pub callback_data: Option<Bytes>,
    /// The revealed result digest.
    pub result_digest: Option<B256>,
}

/// A replica as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaRecord {
    /// The task.
    pub task_id: B256,
    /// The worker.
    pub worker: Address,
    /// Where it is.
    pub state: ReplicaState,
    /// The result hash it committed (or announced).
    pub result_hash: Option<B256>,
    /// When it was handed out (ms).
    pub assigned_ms: i64,
    /// How many times its worker handed the task back.
    pub hand_backs: u32,
    /// When its worker last handed the task back (ms; 0 if never).
    pub released_ms: i64,
}

/// A registered worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerRecord {
    /// The worker's address.
    pub address: Address,
    /// How many tasks it runs at once.
    pub slots: u32,
    /// Whether it runs TEE tasks.
    pub tee: bool,
    /// Last time it was heard from (ms).
    pub last_seen_ms: i64,
    /// Why it takes no new work, as its last heartbeat said; `None` when healthy.
    pub unhealthy: Option<Unhealthy>,
}

/// The scheduler's database. Its writes may be fenced by the pool's lease ([`Store::fenced`]):
/// each then fails with [`Error::Fenced`] once another instance took the lease.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// Whether the database is PostgreSQL.
    postgres: bool,
    /// The lease the writes need, if any.
    fence: Option<std::sync::Arc<Fence>>,
}

fn hex<T: std::fmt::LowerHex>(value: &T) -> String {
    format!("{value:#x}")
}

fn parse<T: FromStr>(text: &str, what: &str) -> Result<T> {
    text.parse().map_err(|_| Error::corrupt(format!("{what} {text:?}")))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self> {
        // SQLite syncs its log at checkpoints only (`synchronous = NORMAL`), as the scheduler
        // always did.
        let options = Options { postgres_connections: 8, sqlite_sync: SqliteSync::Normal };
        let postgres = url.starts_with("postgres");
        let pool = poco_storage::open(url, &SCHEMA, options).await?;
        Ok(Self { pool, postgres, fence: None })
    }

    /// The first block whose events are not applied yet.
    pub async fn checkpoint(&self) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT next_block FROM checkpoint WHERE name = 'chain'")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?.map(|b| b as u64))
    }

    /// A deal and its parameters.
    pub async fn deal(&self, deal_id: B256) -> Result<Option<(Deal, String)>> {
        let row = sqlx::query("SELECT deal, params FROM deals WHERE deal_id = $1")
            .bind(hex(&deal_id))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let json: String = row.try_get(0)?;
            let deal = serde_json::from_str(&json).map_err(Error::corrupt)?;
            Ok((deal, row.try_get(1)?))
        })
        .transpose()
    }

    fn task_of(row: &AnyRow) -> Result<TaskRecord> {
        let opt = |column: &str| -> Result<Option<String>> { Ok(row.try_get(column)?) };
        Ok(TaskRecord {
            task_id: parse(&row.try_get::<String, _>("task_id")?, "task id")?,
            deal_id: parse(&row.try_get::<String, _>("deal_id")?, "deal id")?,
            index: parse(&row.try_get::<String, _>("idx")?, "task index")?,
            stage: row.try_get::<String, _>("stage")?.parse()?,
            initialized: row.try_get::<i64, _>("initialized")? != 0,
            consensus: opt("consensus")?.map(|v| parse(&v, "consensus")).transpose()?,
            uploader: opt("uploader")?.map(|v| parse(&v, "uploader")).transpose()?,
            upload_asked_ms: row.try_get("upload_asked_ms")?,
            location: opt("location")?,
            callback_data: opt("callback_data")?.map(|v| parse(&v, "callback data")).transpose()?,
            result_digest: opt("result_digest")?.map(|v| parse(&v, "digest")).transpose()?,
        })
    }

    /// One task.
    pub async fn task(&self, task_id: B256) -> Result<Option<TaskRecord>> {
        let row = sqlx::query("SELECT * FROM tasks WHERE task_id = $1")
            .bind(hex(&task_id))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::task_of).transpose()
    }

    /// Tasks at `stage`, earliest final deadline first.
    pub async fn tasks_at(&self, stage: Stage, limit: i64) -> Result<Vec<TaskRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM tasks WHERE stage = $1 ORDER BY final_deadline, created_ms LIMIT $2",
        )
        .bind(stage.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::task_of).collect()
    }

    /// Open tasks not initialized yet, grouped by deal.
    pub async fn uninitialized(&self, limit: i64) -> Result<Vec<TaskRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM tasks WHERE stage = 'open' AND initialized = 0 \
             ORDER BY deal_id, created_ms LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::task_of).collect()
    }

    /// Marks tasks initialized: by this scheduler's transaction mined at `block` (a
    /// reorganisation that replaces it undoes this), or, with no block, because it is too late
    /// for it to matter.
    pub async fn mark_initialized(&self, task_ids: &[B256], block: Option<u64>) -> Result<()> {
        let mut tx = self.write().await?;
        let block = block.map_or(0, |block| i64::try_from(block).unwrap_or(i64::MAX));
        for task_id in task_ids {
            sqlx::query(
                "UPDATE tasks SET initialized = 1, chain_block = CASE WHEN chain_block < $2 \
                 THEN $2 ELSE chain_block END WHERE task_id = $1",
            )
            .bind(hex(task_id))
            .bind(block)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Tasks not over whose final deadline is at or before `now` (chain seconds).
    pub async fn expired(&self, now: u64, limit: i64) -> Result<Vec<TaskRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM tasks WHERE stage IN ('open', 'revealing') AND final_deadline <= $1 \
             ORDER BY final_deadline LIMIT $2",
        )
        .bind(now as i64)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::task_of).collect()
    }

    fn replica_of(row: &AnyRow) -> Result<ReplicaRecord> {
        let result_hash: Option<String> = row.try_get("result_hash")?;
        Ok(ReplicaRecord {
            task_id: parse(&row.try_get::<String, _>("task_id")?, "task id")?,
            worker: parse(&row.try_get::<String, _>("worker")?, "worker")?,
            state: row.try_get::<String, _>("state")?.parse()?,
            result_hash: result_hash.map(|v| parse(&v, "result hash")).transpose()?,
            assigned_ms: row.try_get("assigned_ms")?,
            hand_backs: u32::try_from(row.try_get::<i64, _>("hand_backs")?)
                .map_err(|_| Error::corrupt("a replica's hand-back count"))?,
            released_ms: row.try_get("released_ms")?,
        })
    }

    /// The replicas of a task.
    pub async fn replicas(&self, task_id: B256) -> Result<Vec<ReplicaRecord>> {
        let rows = sqlx::query("SELECT * FROM replicas WHERE task_id = $1 ORDER BY assigned_ms")
            .bind(hex(&task_id))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::replica_of).collect()
    }

    /// The replicas of a worker in tasks that are not over.
    pub async fn worker_replicas(&self, worker: Address) -> Result<Vec<ReplicaRecord>> {
        let rows = sqlx::query(
            "SELECT r.* FROM replicas r JOIN tasks t ON t.task_id = r.task_id \
             WHERE r.worker = $1 AND t.stage IN ('open', 'revealing')",
        )
        .bind(hex(&worker))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::replica_of).collect()
    }

    /// Records a new replica, unless the worker already has one for the task that it did not
    /// hand back: a replica it handed back (`released`) is handed out to it again, on the same
    /// row (its hand-backs still counted). Returns whether it was recorded.
    pub async fn add_replica(&self, task_id: B256, worker: Address) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO replicas (task_id, worker, state, assigned_ms) \
             VALUES ($1, $2, 'assigned', $3) ON CONFLICT (task_id, worker) DO UPDATE SET \
             state = 'assigned', result_hash = NULL, assigned_ms = $3, renewed_ms = 0 \
             WHERE replicas.state = 'released'",
        )
        .bind(hex(&task_id))
        .bind(hex(&worker))
        .bind(now_ms())
        .fenced(self)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Records that `worker` handed the task back, if its replica is still only assigned (not
    /// computed, contributed or expired meanwhile): the replica is `released` and its
    /// hand-backs counted. Returns whether it was.
    pub async fn release_replica(&self, task_id: B256, worker: Address) -> Result<bool> {
        let released = sqlx::query(
            "UPDATE replicas SET state = 'released', hand_backs = hand_backs + 1, \
             released_ms = $3 WHERE task_id = $1 AND worker = $2 AND state = 'assigned'",
        )
        .bind(hex(&task_id))
        .bind(hex(&worker))
        .bind(now_ms())
        .fenced(self)
        .await?;
        Ok(released.rows_affected() == 1)
    }

    /// Moves a pending replica to `state` (a no-op once it is on-chain).
    pub async fn set_replica(
        &self,
        task_id: B256,
        worker: Address,
        state: ReplicaState,
        result_hash: Option<B256>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE replicas SET state = $3, result_hash = COALESCE($4, result_hash) \
             WHERE task_id = $1 AND worker = $2 AND state IN ('assigned', 'computed')",
        )
        .bind(hex(&task_id))
        .bind(hex(&worker))
        .bind(state.as_str())
        .bind(result_hash.map(|h| hex(&h)))
        .fenced(self)
        .await?;
        Ok(())
    }

    /// Records that `worker` still runs these tasks, so their replicas are not expired while
    /// the worker computes (however long the app takes within its category). A replica that
    /// expired while its worker was unreachable comes back if its task is still open: the
    /// worker kept computing, and its contribution still counts.
    pub async fn renew_replicas(&self, worker: Address, task_ids: &[B256]) -> Result<()> {
        let now = now_ms();
        for task_id in task_ids {
            sqlx::query(
                "UPDATE replicas SET renewed_ms = $3, state = CASE WHEN state <> 'expired' \
                 THEN state WHEN result_hash IS NULL THEN 'assigned' ELSE 'computed' END \
                 WHERE task_id = $1 AND worker = $2 AND (state IN ('assigned', 'computed') OR \
                 (state = 'expired' AND EXISTS (SELECT 1 FROM tasks WHERE \
                 tasks.task_id = replicas.task_id AND tasks.stage = 'open')))",
            )
            .bind(hex(task_id))
            .bind(hex(&worker))
            .bind(now)
            .fenced(self)
            .await?;
        }
        Ok(())
    }

    /// Expires pending replicas neither assigned nor renewed since `assigned_before_ms`, or held
    /// by workers not seen since `seen_before_ms`. Returns how many expired.
    pub async fn expire_replicas(
        &self,
        assigned_before_ms: i64,
        seen_before_ms: i64,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE replicas SET state = 'expired' WHERE state IN ('assigned', 'computed') AND \
             ((assigned_ms < $1 AND renewed_ms < $1) OR \
              worker IN (SELECT address FROM workers WHERE last_seen_ms < $2))",
        )
        .bind(assigned_before_ms)
        .bind(seen_before_ms)
        .fenced(self)
        .await?;
        Ok(done.rows_affected())
    }

    /// Moves a task to `stage`, when a transaction of this scheduler mined at `block` put it
    /// there (the chain's event confirms it later; a reorganisation that replaces the block
    /// undoes it).
    pub async fn set_stage(&self, task_id: B256, stage: Stage, block: u64) -> Result<()> {
        sqlx::query(
            "UPDATE tasks SET stage = $2, chain_block = CASE WHEN chain_block < $3 THEN $3 \
             ELSE chain_block END WHERE task_id = $1",
        )
        .bind(hex(&task_id))
        .bind(stage.as_str())
        .bind(i64::try_from(block).unwrap_or(i64::MAX))
        .fenced(self)
        .await?;
        Ok(())
    }

    /// Chooses `worker` to upload the task's result.
    pub async fn set_uploader(&self, task_id: B256, worker: Address) -> Result<()> {
        sqlx::query("UPDATE tasks SET uploader = $2, upload_asked_ms = $3 WHERE task_id = $1")
            .bind(hex(&task_id))
            .bind(hex(&worker))
            .bind(now_ms())
            .fenced(self)
            .await?;
        Ok(())
    }

    /// Forgets a reported upload that is not where it was said to be, so that another revealer
    /// is asked.
    pub async fn clear_upload(&self, task_id: B256) -> Result<()> {
        sqlx::query("UPDATE tasks SET location = NULL, callback_data = NULL WHERE task_id = $1")
            .bind(hex(&task_id))
            .fenced(self)
            .await?;
        Ok(())
    }

    /// Records where the uploaded result is.
    pub async fn set_uploaded(
        &self,
        task_id: B256,
        location: &str,
        callback_data: &Bytes,
    ) -> Result<()> {
        sqlx::query("UPDATE tasks SET location = $2, callback_data = $3 WHERE task_id = $1")
            .bind(hex(&task_id))
            .bind(location.to_owned())
            .bind(hex(callback_data))
            .fenced(self)
            .await?;
        Ok(())
    }

    /// Registers or refreshes a worker, seen now, healthy until a heartbeat says otherwise.
    pub async fn register_worker(
        &self,
        address: Address,
        slots: u32,
        tee: bool,
        version: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO workers (address, slots, tee, version, last_seen_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (address) DO UPDATE SET slots = $2, \
             tee = $3, version = $4, last_seen_ms = $5, unhealthy = NULL",
        )
        .bind(hex(&address))
        .bind(i64::from(slots))
        .bind(i64::from(tee))
        .bind(version.to_owned())
        .bind(now_ms())
        .fenced(self)
        .await?;
        Ok(())
    }

    /// A registered worker.
    pub async fn worker(&self, address: Address) -> Result<Option<WorkerRecord>> {
        let row = sqlx::query("SELECT * FROM workers WHERE address = $1")
            .bind(hex(&address))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let unhealthy: Option<String> = row.try_get("unhealthy")?;
            Ok(WorkerRecord {
                address,
                slots: row.try_get::<i64, _>("slots")? as u32,
                tee: row.try_get::<i64, _>("tee")? != 0,
                last_seen_ms: row.try_get("last_seen_ms")?,
                unhealthy: unhealthy
                    .map(|json| serde_json::from_str(&json).map_err(Error::corrupt))
                    .transpose()?,
            })
        })
        .transpose()
    }

    /// Records what a worker's heartbeat said of its health (`None`: healthy).
    pub async fn set_worker_health(
        &self,
        address: Address,
        unhealthy: Option<&Unhealthy>,
    ) -> Result<()> {
        let json = unhealthy.map(|u| serde_json::to_string(u).expect("a health state serializes"));
        sqlx::query("UPDATE workers SET unhealthy = $2 WHERE address = $1")
            .bind(hex(&address))
            .bind(json)
            .fenced(self)
            .await?;
        Ok(())
    }

    /// How many workers seen since `since_ms` said in their last heartbeat that they take no
    /// new work.
    pub async fn workers_unhealthy(&self, since_ms: i64) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT COUNT(*) FROM workers WHERE last_seen_ms >= $1 AND unhealthy IS NOT NULL",
        )
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?)
    }

    /// Accepts the signed request of `worker` whose signing hash is `hash`, unless it was
    /// accepted before, atomically (two copies of one request cannot both pass); it is
    /// remembered until `fresh_until` (unix seconds), when it goes stale. The worker is seen
    /// now. Returns whether accepted.
    pub async fn accept_request(
        &self,
        worker: Address,
        hash: B256,
        fresh_until: u64,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let accepted = poco_storage::replay::accept_once(
            &mut *tx,
            "worker",
            &hex(&worker),
            &hex(&hash),
            fresh_until,
        )
        .await?;
        if !accepted {
            return Ok(false);
        }
        sqlx::query("UPDATE workers SET last_seen_ms = $2 WHERE address = $1")
            .bind(hex(&worker))
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Forgets the accepted requests stale since before `now_secs` (unix seconds): they would
    /// be refused as stale anyway.
    pub async fn prune_request_nonces(&self, now_secs: u64) -> Result<()> {
        let mut tx = self.write().await?;
        poco_storage::replay::forget_stale(&mut *tx, now_secs).await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many workers were seen since `since_ms`.
    pub async fn workers_alive(&self, since_ms: i64) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM workers WHERE last_seen_ms >= $1")
            .bind(since_ms)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// Counts tasks per stage.
    pub async fn task_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT stage, COUNT(*) FROM tasks GROUP BY stage")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
    }

    /// Appends to a task's log.
    pub async fn log(&self, task_id: B256, message: impl Into<String>) -> Result<()> {
        sqlx::query("INSERT INTO task_logs (task_id, at_ms, message) VALUES ($1, $2, $3)")
            .bind(hex(&task_id))
            .bind(now_ms())
            .bind(message.into())
            .fenced(self)
            .await?;
        Ok(())
    }

    /// A task's log, oldest first.
    pub async fn logs(&self, task_id: B256) -> Result<Vec<(i64, String)>> {
        let rows =
            sqlx::query("SELECT at_ms, message FROM task_logs WHERE task_id = $1 ORDER BY at_ms")
                .bind(hex(&task_id))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
    }
}

/// The scheduler's schema: its migrations (`migrations/`, the same SQL for SQLite and
/// PostgreSQL), and how it migrated before it used sqlx's migrator.
const SCHEMA: Schema = Schema {
    migrations: &[
        Migration {
            version: 1,
            description: "init",
            sql: include_str!("../migrations/0001_init.sql"),
        },
        Migration {
            version: 2,
            description: "reorg",
            sql: include_str!("../migrations/0002_reorg.sql"),
        },
        Migration {
            version: 3,
            description: "hand back",
            sql: include_str!("../migrations/0003_hand_back.sql"),
        },
        Migration {
            version: 4,
            description: "lease",
            sql: include_str!("../migrations/0004_lease.sql"),
        },
    ],
    legacy: Some(Legacy {
        service: "scheduler",
        version_table: "scheduler_schema",
        migrations: LEGACY_MIGRATIONS,
        // The first migration folds them all.
        equivalent: 1,
    }),
};

/// The schema's migrations as the scheduler ran them before it used sqlx's migrator, in order,
/// each once, their count recorded in `scheduler_schema`. Kept only to adopt the databases they
/// made ([`Legacy`]): never change them.
const LEGACY_MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE IF NOT EXISTS checkpoint (
    name TEXT PRIMARY KEY,
    next_block BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS deals (
    deal_id TEXT PRIMARY KEY,
    deal TEXT NOT NULL,
    params TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    deal_id TEXT NOT NULL,
    idx TEXT NOT NULL,
    stage TEXT NOT NULL,
    initialized BIGINT NOT NULL,
    consensus TEXT,
    uploader TEXT,
    upload_asked_ms BIGINT NOT NULL,
    location TEXT,
    callback_data TEXT,
    result_digest TEXT,
    final_deadline BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_stage ON tasks (stage, final_deadline);
CREATE TABLE IF NOT EXISTS replicas (
    task_id TEXT NOT NULL,
    worker TEXT NOT NULL,
    state TEXT NOT NULL,
    result_hash TEXT,
    assigned_ms BIGINT NOT NULL,
    PRIMARY KEY (task_id, worker)
);
CREATE INDEX IF NOT EXISTS replicas_by_worker ON replicas (worker, state);
CREATE TABLE IF NOT EXISTS workers (
    address TEXT PRIMARY KEY,
    slots BIGINT NOT NULL,
    tee BIGINT NOT NULL,
    version TEXT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    last_request_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS task_logs (
    task_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS task_logs_by_task ON task_logs (task_id, at_ms);
CREATE TABLE IF NOT EXISTS request_stamps (
    worker TEXT NOT NULL,
    stamp BIGINT NOT NULL,
    PRIMARY KEY (worker, stamp)
);
",
    r"
ALTER TABLE replicas ADD COLUMN renewed_ms BIGINT NOT NULL DEFAULT 0;
",
    // Signed requests are stamped in seconds and carry a nonce: each is accepted once, by its
    // signing hash, remembered until it goes stale (`expires`, unix seconds).
    r"
DROP TABLE IF EXISTS request_stamps;
ALTER TABLE workers DROP COLUMN last_request_ms;
CREATE TABLE IF NOT EXISTS request_nonces (
    worker TEXT NOT NULL,
    hash TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (worker, hash)
);
CREATE INDEX IF NOT EXISTS request_nonces_by_expiry ON request_nonces (expires);
",
];

#[cfg(test)]
mod tests {
    use poco_test_utils::storage::{Databases, StoreUnderTest};

    use super::*;

    const TASK: B256 = B256::repeat_byte(0x11);
    const DEAL: B256 = B256::repeat_byte(0x22);
    const CONSENSUS: B256 = B256::repeat_byte(0x33);
    const WORKER: Address = Address::repeat_byte(0x44);

    impl StoreUnderTest for Store {
        const VERSION_TABLE: &'static str = "scheduler_schema";
        /// The schema as released before the switch to sqlx's migrator: the legacy migrations,
        /// which are never changed, make databases exactly as that release did.
        const RELEASED_MIGRATIONS: &'static [&'static str] = LEGACY_MIGRATIONS;

        /// A checkpoint, a task, a replica and a worker, stored as the released scheduler
        /// stored them.
        async fn store_released_data(pool: &AnyPool, upto: usize) {
            let statements = [
                "INSERT INTO checkpoint (name, next_block) VALUES ('chain', 42)".to_owned(),
                format!(
                    "INSERT INTO tasks (task_id, deal_id, idx, stage, initialized, consensus, \
                     upload_asked_ms, final_deadline, created_ms) \
                     VALUES ('{TASK:#x}', '{DEAL:#x}', '3', 'revealing', 1, '{CONSENSUS:#x}', 0, \
                     1000, 5)"
                ),
                format!(
                    "INSERT INTO replicas (task_id, worker, state, result_hash, assigned_ms) \
                     VALUES ('{TASK:#x}', '{WORKER:#x}', 'computed', '{CONSENSUS:#x}', 8)"
                ),
                // The worker's last request went with the millisecond stamps (migration 3).
                if upto < 3 {
                    format!(
                        "INSERT INTO workers (address, slots, tee, version, last_seen_ms, \
                         last_request_ms) VALUES ('{WORKER:#x}', 2, 1, '0.1.0', 6, 7)"
                    )
                } else {
                    format!(
                        "INSERT INTO workers (address, slots, tee, version, last_seen_ms) \
                         VALUES ('{WORKER:#x}', 2, 1, '0.1.0', 6)"
                    )
                },
            ];
            for statement in statements {
                sqlx::query(sqlx::AssertSqlSafe(statement)).execute(pool).await.unwrap();
            }
        }

        async fn check_released_data(&self) {
            assert_eq!(self.checkpoint().await.unwrap(), Some(42));
            let task = TaskRecord {
                task_id: TASK,
                deal_id: DEAL,
                index: U256::from(3),
                stage: Stage::Revealing,
                initialized: true,
                consensus: Some(CONSENSUS),
                uploader: None,
                upload_asked_ms: 0,
                location: None,
                callback_data: None,
                result_digest: None,
            };
            assert_eq!(self.task(TASK).await.unwrap(), Some(task));
            let replica = ReplicaRecord {
                task_id: TASK,
                worker: WORKER,
                state: ReplicaState::Computed,
                result_hash: Some(CONSENSUS),
                assigned_ms: 8,
                hand_backs: 0,
                released_ms: 0,
            };
            assert_eq!(self.replicas(TASK).await.unwrap(), vec![replica]);
            let worker = WorkerRecord {
                address: WORKER,
                slots: 2,
                tee: true,
                last_seen_ms: 6,
                unhealthy: None,
            };
            assert_eq!(self.worker(WORKER).await.unwrap(), Some(worker));
        }

        async fn use_adopted(&self) {
            self.renew_replicas(WORKER, &[TASK]).await.unwrap();
            assert_eq!(self.expire_replicas(9, 0).await.unwrap(), 0, "renewed");
            assert!(self.accept_request(WORKER, CONSENSUS, u64::MAX).await.unwrap());
            assert!(!self.accept_request(WORKER, CONSENSUS, u64::MAX).await.unwrap());
        }

        async fn write(&self) {
            self.apply(&[], 7, None).await.unwrap();
            self.register_worker(WORKER, 3, false, "0.2.0").await.unwrap();
            assert!(self.add_replica(TASK, WORKER).await.unwrap());
        }

        async fn check_written(&self) {
            assert_eq!(self.checkpoint().await.unwrap(), Some(7));
            assert_eq!(self.worker(WORKER).await.unwrap().map(|w| w.slots), Some(3));
            assert_eq!(self.replicas(TASK).await.unwrap().len(), 1);
        }
    }

    poco_test_utils::store_tests! {
        store: Store,
        error: Error,
        migrator: SCHEMA.migrator(),
        migration_error: Error::Migration,
        postgres: "scheduler_store",
    }

    const OTHER: Address = Address::repeat_byte(0x55);
    const LATE: Address = Address::repeat_byte(0x66);

    /// A deal of `size` tasks.
    fn deal(salt: u8, size: u64) -> Deal {
        Deal {
            requestHash: B256::repeat_byte(salt),
            botSize: U256::from(size),
            startTime: U256::from(1_000),
            timeref: U256::from(10),
            ..Deal::default()
        }
    }

    fn at(block: u64, log_index: u64, change: ChainChange) -> LocatedChange {
        LocatedChange { block, log_index, change }
    }

    /// A chain's story for one pool, block by block: a deal of two tasks at 10; the first task
    /// initialized, contributed by two workers, agreed on, revealed and finalized from 11 to
    /// 15; the second task contributed at 14; another deal at 14.
    fn story() -> (Deal, Deal, Vec<LocatedChange>) {
        let first = deal(1, 2);
        let second = deal(2, 1);
        let task = first.task_id(U256::ZERO).unwrap();
        let other_task = first.task_id(U256::from(1)).unwrap();
        let hash = CONSENSUS;
        let changes = vec![
            at(10, 0, ChainChange::Deal { deal: Box::new(first.clone()), params: "p".into() }),
            at(11, 0, ChainChange::Initialized(task)),
            at(
                12,
                0,
                ChainChange::Contributed { task_id: task, worker: WORKER, result_hash: hash },
            ),
            at(13, 0, ChainChange::Contributed { task_id: task, worker: OTHER, result_hash: hash }),
            at(13, 1, ChainChange::Consensus { task_id: task, result_hash: hash }),
            at(14, 0, ChainChange::Revealed { task_id: task, worker: WORKER, digest: hash }),
            at(
                14,
                1,
                ChainChange::Contributed { task_id: other_task, worker: WORKER, result_hash: hash },
            ),
            at(14, 2, ChainChange::Deal { deal: Box::new(second.clone()), params: "q".into() }),
            at(15, 0, ChainChange::Finalized(task)),
        ];
        (first, second, changes)
    }

    /// Applies `changes` in batches ending at each of `ends`, as the follower would.
    async fn follow(store: &Store, changes: &[LocatedChange], ends: &[u64]) {
        let mut from = 0;
        for &end in ends {
            let batch: Vec<_> =
                changes.iter().filter(|c| c.block >= from && c.block <= end).cloned().collect();
            let tip = Some((B256::with_last_byte(end as u8), 256));
            store.apply(&batch, end + 1, tip).await.unwrap();
            from = end + 1;
        }
    }

    async fn rollback_is_the_prefix(mut databases: Databases) {
        let (first, second, changes) = story();
        let task = first.task_id(U256::ZERO).unwrap();
        let store = Store::open(&databases.url("rolled").await).await.unwrap();
        follow(&store, &changes, &[10, 12, 15]).await;
        // What only the scheduler knows: a replica handed out and not contributed yet, the
        // uploader of the consensus.
        assert!(store.add_replica(task, LATE).await.unwrap());
        store.set_uploader(task, WORKER).await.unwrap();
        assert_eq!(store.recent_blocks().await.unwrap().len(), 3);

        // Blocks 13 and later are replaced: the store is at 12 again.
        assert_eq!(store.rollback(15, 13, false).await.unwrap(), None, "not the checkpoint");
        let outcome = store.rollback(16, 13, false).await.unwrap().expect("rolled back");
        assert_eq!(outcome.withdrawn, vec![second.id()], "the deal of block 14 is withdrawn");
        let other_task = first.task_id(U256::from(1)).unwrap();
        let mut reset = vec![task, other_task];
        reset.sort();
        assert_eq!(outcome.reset, reset);
        assert_eq!(store.checkpoint().await.unwrap(), Some(13));
        let recent = store.recent_blocks().await.unwrap();
        assert_eq!(recent.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![10, 12]);

        let fresh = Store::open(&databases.url("prefix").await).await.unwrap();
        let before: Vec<_> = changes.iter().filter(|c| c.block < 13).cloned().collect();
        follow(&fresh, &before, &[10, 12]).await;
        assert_eq!(store.dump().await.unwrap(), fresh.dump().await.unwrap());

        // The undone contribution is pending again, with its hash; the replica handed out stays;
        // the uploader of an undone consensus is forgotten.
        let replicas = store.replicas(task).await.unwrap();
        let state = |worker| replicas.iter().find(|r| r.worker == worker).map(|r| r.state);
        assert_eq!(state(OTHER), Some(ReplicaState::Computed));
        assert_eq!(
            replicas.iter().find(|r| r.worker == OTHER).unwrap().result_hash,
            Some(CONSENSUS)
        );
        assert_eq!(state(WORKER), Some(ReplicaState::Contributed));
        assert_eq!(state(LATE), Some(ReplicaState::Assigned));
        let record = store.task(task).await.unwrap().unwrap();
        assert_eq!((record.stage, record.uploader), (Stage::Open, None));

        // The new chain: the same events again, from the fork point.
        let after: Vec<_> = changes.iter().filter(|c| c.block >= 13).cloned().collect();
        follow(&store, &after, &[15]).await;
        follow(&fresh, &after, &[15]).await;
        assert_eq!(store.dump().await.unwrap(), fresh.dump().await.unwrap());
        assert_eq!(store.task(task).await.unwrap().unwrap().stage, Stage::Completed);

        // Past the window: every deal is withdrawn.
        let outcome = store.rollback(16, 7, true).await.unwrap().expect("rolled back");
        assert_eq!(outcome.withdrawn.len(), 2);
        assert_eq!(store.dump().await.unwrap(), ChainDump::default());
        assert_eq!(store.recent_blocks().await.unwrap(), vec![]);
        assert_eq!(store.checkpoint().await.unwrap(), Some(7));
        databases.finish().await;
    }

    #[tokio::test]
    async fn a_sqlite_rollback_leaves_what_the_blocks_before_the_fork_make() {
        rollback_is_the_prefix(Databases::sqlite()).await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL"]
    async fn a_postgres_rollback_leaves_what_the_blocks_before_the_fork_make() {
        rollback_is_the_prefix(Databases::postgres("scheduler_store")).await;
    }

    /// A replica its worker hands back is released once, counted, and handed out to the same
    /// worker again on the same row; a replica computed, failed or expired is neither released
    /// nor handed out again. A worker's health, as its heartbeat says it, is kept and counted.
    async fn released_replicas_go_back_to_their_worker(mut databases: Databases) {
        let store = Store::open(&databases.url("released").await).await.unwrap();
        let (first, _, changes) = story();
        follow(&store, &changes, &[10]).await;
        let task = first.task_id(U256::ZERO).unwrap();
        let mine = |store: Store| async move {
            let replicas = store.replicas(task).await.unwrap();
            replicas.into_iter().find(|r| r.worker == WORKER).unwrap()
        };

        assert!(store.add_replica(task, WORKER).await.unwrap());
        assert!(!store.add_replica(task, WORKER).await.unwrap(), "not twice while held");
        assert!(store.release_replica(task, WORKER).await.unwrap());
        assert!(!store.release_replica(task, WORKER).await.unwrap(), "released once");
        let released = mine(store.clone()).await;
        assert_eq!((released.state, released.hand_backs), (ReplicaState::Released, 1));
        assert!(released.released_ms > 0);
        assert!(!store.release_replica(task, OTHER).await.unwrap(), "nobody else's replica");

        assert!(store.add_replica(task, WORKER).await.unwrap(), "handed out again");
        let again = mine(store.clone()).await;
        assert_eq!(
            (again.state, again.hand_backs, again.result_hash),
            (ReplicaState::Assigned, 1, None)
        );
        assert_eq!(store.replicas(task).await.unwrap().len(), 1, "on the same row");
        store.set_replica(task, WORKER, ReplicaState::Computed, Some(CONSENSUS)).await.unwrap();
        assert!(!store.release_replica(task, WORKER).await.unwrap(), "computed: not released");
        assert!(!store.add_replica(task, WORKER).await.unwrap());

        for state in [ReplicaState::Failed, ReplicaState::Expired] {
            let worker = if state == ReplicaState::Failed { OTHER } else { LATE };
            assert!(store.add_replica(task, worker).await.unwrap());
            store.set_replica(task, worker, state, None).await.unwrap();
            assert!(!store.release_replica(task, worker).await.unwrap(), "{state:?}");
            assert!(!store.add_replica(task, worker).await.unwrap(), "{state:?}");
        }

        store.register_worker(WORKER, 1, false, "test").await.unwrap();
        assert_eq!(store.workers_unhealthy(0).await.unwrap(), 0);
        let low = Unhealthy::LowDisk { free_bytes: 1, min_free_bytes: 2 };
        store.set_worker_health(WORKER, Some(&low)).await.unwrap();
        assert_eq!(store.worker(WORKER).await.unwrap().unwrap().unhealthy, Some(low.clone()));
        assert_eq!(store.workers_unhealthy(0).await.unwrap(), 1);
        assert_eq!(store.workers_unhealthy(i64::MAX).await.unwrap(), 0, "not seen since");
        store.set_worker_health(WORKER, None).await.unwrap();
        assert_eq!(store.worker(WORKER).await.unwrap().unwrap().unhealthy, None);
        store.set_worker_health(WORKER, Some(&low)).await.unwrap();
        store.register_worker(WORKER, 1, false, "test").await.unwrap();
        assert_eq!(store.worker(WORKER).await.unwrap().unwrap().unhealthy, None, "registered anew");
        store.pool.close().await;
        databases.finish().await;
    }

    #[tokio::test]
    async fn released_sqlite_replicas_go_back_to_their_worker() {
        released_replicas_go_back_to_their_worker(Databases::sqlite()).await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL"]
    async fn released_postgres_replicas_go_back_to_their_worker() {
        released_replicas_go_back_to_their_worker(Databases::postgres("scheduler_store")).await;
    }

    /// A task followed before the events were recorded: a rollback brings it back to what it
    /// was then, not to the start of its deal.
    async fn released_tasks_roll_back_to_what_they_were(mut databases: Databases) {
        let url = databases.url("released").await;
        let pool = poco_test_utils::storage::run_legacy_migrations(
            &url,
            "scheduler_schema",
            LEGACY_MIGRATIONS,
            LEGACY_MIGRATIONS.len(),
        )
        .await;
        let statements = [
            format!(
                "INSERT INTO tasks (task_id, deal_id, idx, stage, initialized, consensus, \
                 upload_asked_ms, final_deadline, created_ms) \
                 VALUES ('{TASK:#x}', '{DEAL:#x}', '0', 'revealing', 1, '{CONSENSUS:#x}', 0, \
                 1000, 5)"
            ),
            format!(
                "INSERT INTO replicas (task_id, worker, state, result_hash, assigned_ms) \
                 VALUES ('{TASK:#x}', '{WORKER:#x}', 'contributed', '{CONSENSUS:#x}', 8)"
            ),
            "INSERT INTO checkpoint (name, next_block) VALUES ('chain', 40)".to_owned(),
        ];
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await.unwrap();
        }
        pool.close().await;
        let store = Store::open(&url).await.unwrap();
        let before = store.dump().await.unwrap();
        let reveal = ChainChange::Revealed { task_id: TASK, worker: WORKER, digest: CONSENSUS };
        store.apply(&[at(45, 0, reveal)], 46, Some((B256::repeat_byte(1), 8))).await.unwrap();
        assert_ne!(store.dump().await.unwrap(), before);
        store.rollback(46, 45, false).await.unwrap().expect("rolled back");
        assert_eq!(store.dump().await.unwrap(), before);
        let task = store.task(TASK).await.unwrap().unwrap();
        assert_eq!((task.stage, task.consensus), (Stage::Revealing, Some(CONSENSUS)));
        store.pool.close().await;
        databases.finish().await;
    }

    #[tokio::test]
    async fn released_sqlite_tasks_roll_back_to_what_they_were() {
        released_tasks_roll_back_to_what_they_were(Databases::sqlite()).await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL"]
    async fn released_postgres_tasks_roll_back_to_what_they_were() {
        released_tasks_roll_back_to_what_they_were(Databases::postgres("scheduler_store")).await;
    }

    const POOL: Address = Address::repeat_byte(0x77);
    const OTHER_POOL: Address = Address::repeat_byte(0x78);

    /// The pool's lease: taken once free, by one holder at a time, renewed by its holder only,
    /// taken over with the next token once expired, given up on release; the writes of a store
    /// fenced by a lease that is no longer its holder's fail and change nothing.
    async fn the_lease_elects_one_and_fences_the_others(mut databases: Databases) {
        let store = Store::open(&databases.url("lease").await).await.unwrap();
        let long = std::time::Duration::from_secs(60);
        let none = std::time::Duration::ZERO;

        // Acquire: the first holder gets token 1; nobody else while it holds, not even itself.
        assert_eq!(store.lease(POOL).await.unwrap(), None);
        let a = store.acquire_lease(POOL, "a", "http://a", long).await.unwrap().expect("free");
        assert_eq!(a, 1);
        assert_eq!(store.acquire_lease(POOL, "b", "http://b", long).await.unwrap(), None);
        assert_eq!(store.acquire_lease(POOL, "a", "http://a", long).await.unwrap(), None);
        let record = store.lease(POOL).await.unwrap().unwrap();
        assert_eq!(
            (record.holder.as_str(), record.url.as_str(), record.token),
            ("a", "http://a", 1)
        );
        assert!(record.is_held());
        assert!(record.expires_ms - record.now_ms > 50_000, "{record:?}");
        assert_eq!(
            store.acquire_lease(OTHER_POOL, "b", "http://b", long).await.unwrap(),
            Some(1),
            "each pool has its own lease"
        );

        // Renew: by its holder with its token only.
        assert!(store.renew_lease(POOL, "a", a, long).await.unwrap());
        assert!(!store.renew_lease(POOL, "b", a, long).await.unwrap());
        assert!(!store.renew_lease(POOL, "a", a + 1, long).await.unwrap());

        // Fencing: the holder's writes go through; a store without the lease writes nothing.
        let fence_a = Fence::new(POOL, "a");
        fence_a.set_token(a);
        let as_a = store.fenced(fence_a);
        as_a.register_worker(WORKER, 1, false, "test").await.unwrap();
        as_a.log(TASK, "by a").await.unwrap();
        let never = store.fenced(Fence::new(POOL, "b"));
        assert!(matches!(never.log(TASK, "by b").await, Err(Error::Fenced { token: 0 })));

        // Expiry and takeover: a lease renewed for no time is free; the next holder's token
        // is one more, and the former holder can neither renew nor write.
        assert!(store.renew_lease(POOL, "a", a, none).await.unwrap());
        assert!(!store.lease(POOL).await.unwrap().unwrap().is_held());
        let b = store.acquire_lease(POOL, "b", "http://b", long).await.unwrap().expect("expired");
        assert_eq!(b, a + 1);
        assert!(!store.renew_lease(POOL, "a", a, long).await.unwrap());
        let fenced =
            |outcome: Result<()>| matches!(outcome, Err(Error::Fenced { token }) if token == a);
        let (first, _, changes) = story();
        let task = first.task_id(U256::ZERO).unwrap();
        assert!(fenced(as_a.apply(&changes[..1], 11, None).await), "chain changes");
        assert_eq!(store.checkpoint().await.unwrap(), None, "nothing applied");
        assert!(fenced(as_a.add_replica(task, WORKER).await.map(drop)), "replicas");
        assert!(fenced(as_a.set_stage(task, Stage::Completed, 1).await), "stages");
        assert!(fenced(as_a.set_uploader(task, WORKER).await), "uploaders");
        assert!(fenced(as_a.mark_initialized(&[task], None).await), "initializations");
        assert!(fenced(as_a.register_worker(OTHER, 1, false, "t").await), "workers");
        assert!(fenced(as_a.accept_request(WORKER, CONSENSUS, u64::MAX).await.map(drop)));
        assert!(fenced(as_a.expire_replicas(i64::MAX, i64::MAX).await.map(drop)));
        assert!(fenced(as_a.log(TASK, "stale").await), "logs");
        assert!(fenced(as_a.rollback(0, 0, true).await.map(drop)), "rollbacks");
        assert_eq!(store.worker(OTHER).await.unwrap(), None);
        assert_eq!(store.logs(TASK).await.unwrap().len(), 1, "only a's write while it held");

        // The new holder writes.
        let fence_b = Fence::new(POOL, "b");
        fence_b.set_token(b);
        let as_b = store.fenced(fence_b);
        as_b.apply(&changes[..1], 11, None).await.unwrap();
        assert!(as_b.add_replica(task, WORKER).await.unwrap());

        // Release: by the holder only; then the lease is free at once.
        assert!(!store.release_lease(POOL, "a", a).await.unwrap(), "a no longer holds it");
        assert!(store.lease(POOL).await.unwrap().unwrap().is_held(), "a no longer holds it");
        assert!(store.release_lease(POOL, "b", b).await.unwrap());
        assert!(!store.lease(POOL).await.unwrap().unwrap().is_held());
        assert_eq!(store.acquire_lease(POOL, "c", "", long).await.unwrap(), Some(b + 1));
        store.pool.close().await;
        databases.finish().await;
    }

    #[tokio::test]
    async fn the_sqlite_lease_elects_one_and_fences_the_others() {
        the_lease_elects_one_and_fences_the_others(Databases::sqlite()).await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL"]
    async fn the_postgres_lease_elects_one_and_fences_the_others() {
        the_lease_elects_one_and_fences_the_others(Databases::postgres("scheduler_store")).await;
    }

    /// Instances starting at once elect exactly one; a takeover waits for the write the former
    /// holder had begun under its lease (it commits first), and its next write fails.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs PostgreSQL"]
    async fn postgres_instances_starting_at_once_elect_one_and_takeovers_wait_for_writes() {
        use std::time::Duration;
        let mut databases = Databases::postgres("scheduler_store");
        let url = databases.url("election").await;
        let long = std::time::Duration::from_secs(60);
        let mut stores = Vec::new();
        for _ in 0..8 {
            stores.push(Store::open(&url).await.unwrap());
        }
        let mut attempts = tokio::task::JoinSet::new();
        for (index, store) in stores.iter().cloned().enumerate() {
            attempts.spawn(async move {
                let holder = format!("instance-{index}");
                store
                    .acquire_lease(POOL, &holder, "", long)
                    .await
                    .unwrap()
                    .map(|token| (holder, token))
            });
        }
        let winners: Vec<(String, i64)> = attempts.join_all().await.into_iter().flatten().collect();
        assert_eq!(winners.len(), 1, "exactly one instance is elected: {winners:?}");
        let (holder, token) = winners[0].clone();
        assert_eq!(token, 1);

        // The holder begins a write under its lease; meanwhile the lease runs out and another
        // instance tries to take it over.
        let store = stores[0].clone();
        let fence = Fence::new(POOL, holder.clone());
        fence.set_token(token);
        let holder_store = store.fenced(fence);
        assert!(store.renew_lease(POOL, &holder, token, std::time::Duration::ZERO).await.unwrap());
        let mut write = holder_store.write().await.unwrap();
        sqlx::query("INSERT INTO task_logs (task_id, at_ms, message) VALUES ($1, 1, 'late')")
            .bind(hex(&TASK))
            .execute(&mut *write)
            .await
            .unwrap();
        let taker = stores[1].clone();
        let takeover =
            tokio::spawn(
                async move { taker.acquire_lease(POOL, "taker", "", long).await.unwrap() },
            );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!takeover.is_finished(), "the takeover waits for the write in progress");
        write.commit().await.unwrap();
        let taken = tokio::time::timeout(std::time::Duration::from_secs(10), takeover)
            .await
            .expect("the takeover completes once the write is committed")
            .unwrap();
        assert_eq!(taken, Some(token + 1));
        assert_eq!(store.logs(TASK).await.unwrap(), vec![(1, "late".to_owned())]);
        assert!(matches!(holder_store.log(TASK, "stale").await, Err(Error::Fenced { .. })));

        // The holder's own writes do not wait for each other: two are open at once.
        let fence = Fence::new(POOL, "taker");
        fence.set_token(token + 1);
        let taker_store = stores[2].fenced(fence);
        let first = taker_store.write().await.unwrap();
        let second = tokio::time::timeout(Duration::from_secs(5), taker_store.write())
            .await
            .expect("a second write of the holder does not wait for the first")
            .unwrap();
        drop((first, second));

        // A write left idle (its process paused) is ended by the server: the next takeover
        // waits for it no longer than that, and the paused write commits nothing.
        assert!(store.renew_lease(POOL, "taker", token + 1, Duration::ZERO).await.unwrap());
        let mut paused = taker_store.write().await.unwrap();
        sqlx::query("INSERT INTO task_logs (task_id, at_ms, message) VALUES ($1, 2, 'paused')")
            .bind(hex(&TASK))
            .execute(&mut *paused)
            .await
            .unwrap();
        let asked = std::time::Instant::now();
        let taken = tokio::time::timeout(
            Duration::from_secs(10),
            stores[3].acquire_lease(POOL, "third", "", long),
        )
        .await
        .expect("the takeover completes once the idle write is ended")
        .unwrap();
        let waited = asked.elapsed();
        assert_eq!(taken, Some(token + 2));
        assert!(waited >= IDLE_WRITE_TIMEOUT / 2, "it waited for the idle write: {waited:?}");
        assert!(paused.commit().await.is_err(), "the idle write was ended");
        assert_eq!(store.logs(TASK).await.unwrap().len(), 1, "nothing of the idle write stuck");
        for store in stores {
            store.pool.close().await;
        }
        databases.finish().await;
    }
}
