//! What the chain says, in the store: its changes applied with the checkpoint, each task's
//! events recorded in chain order, the recent blocks the follower checks the chain against, and
//! the rollback that undoes the changes of blocks a chain reorganisation replaced.
//!
//! A rollback to a fork point `F` (the first replaced block):
//! - withdraws the deals whose `DealCreated` is at `F` or later: their tasks, replicas (those
//!   handed to workers too: a worker asking about them is told to abort), events and logs are
//!   deleted. If the new chain holds the deal again, it comes back as new.
//! - sets every other task a replaced block changed (its `chain_block` is `F` or later) back to
//!   the start of its deal, then applies again its recorded events from before `F`: its stage,
//!   initialization, consensus and digest, and the replicas' contributions, reveals and
//!   rejections are what the chain said at `F - 1`. A contribution that was undone leaves its
//!   replica pending (`computed`, its result hash kept), renewed as of now: the worker's
//!   transaction may come back in a block of the new chain, so the worker keeps its seat, and
//!   no other worker is handed the task for it unless the replica expires as any silent one
//!   does. A consensus undone forgets the uploader and the upload.
//! - forgets the recent blocks from `F` on, and moves the checkpoint to `F`.
//!
//! A reorganisation deeper than the recent blocks withdraws every deal: the follower applies
//! the chain again from the deployment's block.

use alloy::primitives::{Address, B256};
use poco_primitives::Deal;
use sqlx::{AnyConnection, Row};

use super::{ReplicaState, Stage, Store, hex, now_ms, parse};
use crate::{Error, Result};

/// A change learned from the chain, applied with the checkpoint in one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainChange {
    /// A deal of this pool: its tasks become open.
    Deal {
        /// The deal.
        deal: Box<Deal>,
        /// Its request parameters.
        params: String,
    },
    /// A task was initialized.
    Initialized(B256),
    /// A worker contributed.
    Contributed {
        /// The task.
        task_id: B256,
        /// The worker.
        worker: Address,
        /// Its result hash.
        result_hash: B256,
    },
    /// Consensus was reached.
    Consensus {
        /// The task.
        task_id: B256,
        /// The consensus result hash.
        result_hash: B256,
    },
    /// A worker revealed.
    Revealed {
        /// The task.
        task_id: B256,
        /// The worker.
        worker: Address,
        /// The digest revealed.
        digest: B256,
    },
    /// The consensus was rejected: the task is open again.
    Reopened(B256),
    /// The task was finalized.
    Finalized(B256),
    /// The task was claimed.
    Claimed(B256),
}

impl ChainChange {
    /// The task it is about, unless it is a deal.
    fn task(&self) -> Option<B256> {
        match self {
            Self::Deal { .. } => None,
            Self::Initialized(task)
            | Self::Reopened(task)
            | Self::Finalized(task)
            | Self::Claimed(task)
            | Self::Contributed { task_id: task, .. }
            | Self::Consensus { task_id: task, .. }
            | Self::Revealed { task_id: task, .. } => Some(*task),
        }
    }

    /// How a task event is recorded: its kind, the worker it names ('' for none) and the hash
    /// it carries ('' for none).
    fn record(&self) -> (&'static str, String, String) {
        match self {
            Self::Deal { .. } => ("deal", String::new(), String::new()),
            Self::Initialized(_) => ("initialized", String::new(), String::new()),
            Self::Contributed { worker, result_hash, .. } => {
                ("contributed", hex(worker), hex(result_hash))
            }
            Self::Consensus { result_hash, .. } => ("consensus", String::new(), hex(result_hash)),
            Self::Revealed { worker, digest, .. } => ("revealed", hex(worker), hex(digest)),
            Self::Reopened(_) => ("reopened", String::new(), String::new()),
            Self::Finalized(_) => ("finalized", String::new(), String::new()),
            Self::Claimed(_) => ("claimed", String::new(), String::new()),
        }
    }

    /// A recorded task event again.
    fn recorded(task_id: B256, kind: &str, worker: &str, value: &str) -> Result<Self> {
        let worker = || parse::<Address>(worker, "worker");
        let value = || parse::<B256>(value, "hash");
        Ok(match kind {
            "initialized" => Self::Initialized(task_id),
            "contributed" => {
                Self::Contributed { task_id, worker: worker()?, result_hash: value()? }
            }
            "consensus" => Self::Consensus { task_id, result_hash: value()? },
            "revealed" => Self::Revealed { task_id, worker: worker()?, digest: value()? },
            "reopened" => Self::Reopened(task_id),
            "finalized" => Self::Finalized(task_id),
            "claimed" => Self::Claimed(task_id),
            other => return Err(Error::corrupt(format!("task event {other:?}"))),
        })
    }
}

/// A [`ChainChange`] and where its log is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocatedChange {
    /// The block.
    pub block: u64,
    /// The log's index in the block.
    pub log_index: u64,
    /// The change.
    pub change: ChainChange,
}

/// What a rollback did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RolledBack {
    /// Deals withdrawn: their `DealCreated` was in a replaced block.
    pub withdrawn: Vec<B256>,
    /// Tasks set back to what the chain said of them before the fork point.
    pub reset: Vec<B256>,
}

/// A task as the chain made it (see [`Store::dump`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskFacts {
    /// The task.
    pub task_id: B256,
    /// Its deal.
    pub deal_id: B256,
    /// Its stage.
    pub stage: Stage,
    /// Whether it is initialized.
    pub initialized: bool,
    /// Its consensus.
    pub consensus: Option<B256>,
    /// Its revealed digest.
    pub result_digest: Option<B256>,
}

/// Everything the scheduler derived from the chain, in a fixed order: deals by id, tasks by id,
/// and the contributions (replicas contributed, revealed or rejected) by task and worker.
/// What only the scheduler knows (replicas handed out and not contributed, uploads, workers,
/// times) is left out: a fresh scheduler that followed the same chain dumps the same.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainDump {
    /// Deals and their parameters.
    pub deals: Vec<(B256, Deal, String)>,
    /// Tasks.
    pub tasks: Vec<TaskFacts>,
    /// Contributions: task, worker, replica state, result hash.
    pub contributions: Vec<(B256, Address, ReplicaState, Option<B256>)>,
}

/// A block number as stored.
fn stored(block: u64) -> i64 {
    i64::try_from(block).unwrap_or(i64::MAX)
}

/// Raises a task's `chain_block` to `block`.
async fn touch(connection: &mut AnyConnection, task_id: B256, block: u64) -> Result<()> {
    sqlx::query(
        "UPDATE tasks SET chain_block = CASE WHEN chain_block < $2 THEN $2 ELSE chain_block END \
         WHERE task_id = $1",
    )
    .bind(hex(&task_id))
    .bind(stored(block))
    .execute(connection)
    .await?;
    Ok(())
}

/// Applies one change's effect. `block` dates a deal and its tasks.
async fn effect(
    connection: &mut AnyConnection,
    change: &ChainChange,
    block: u64,
    now: i64,
) -> Result<()> {
    match change {
        ChainChange::Deal { deal, params } => {
            let deal_id = deal.id();
            let json = serde_json::to_string(deal.as_ref()).map_err(Error::corrupt)?;
            let inserted = sqlx::query(
                "INSERT INTO deals (deal_id, deal, params, block) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (deal_id) DO NOTHING",
            )
            .bind(hex(&deal_id))
            .bind(json)
            .bind(params.clone())
            .bind(stored(block))
            .execute(&mut *connection)
            .await?;
            if inserted.rows_affected() == 0 {
                return Ok(());
            }
            let final_deadline: i64 = deal.final_deadline().saturating_to();
            for (index, task_id) in deal.tasks() {
                sqlx::query(
                    "INSERT INTO tasks (task_id, deal_id, idx, stage, initialized, \
                     upload_asked_ms, final_deadline, created_ms, chain_block) \
                     VALUES ($1, $2, $3, 'open', 0, 0, $4, $5, $6) \
                     ON CONFLICT (task_id) DO NOTHING",
                )
                .bind(hex(&task_id))
                .bind(hex(&deal_id))
                .bind(index.to_string())
                .bind(final_deadline)
                .bind(now)
                .bind(stored(block))
                .execute(&mut *connection)
                .await?;
            }
        }
        ChainChange::Initialized(task_id) => {
            sqlx::query("UPDATE tasks SET initialized = 1 WHERE task_id = $1")
                .bind(hex(task_id))
                .execute(&mut *connection)
                .await?;
        }
        ChainChange::Contributed { task_id, worker, result_hash } => {
            sqlx::query(
                "INSERT INTO replicas (task_id, worker, state, result_hash, assigned_ms) \
                 SELECT $1, $2, 'contributed', $3, $4 \
                 WHERE EXISTS (SELECT 1 FROM tasks WHERE task_id = $1) \
                 ON CONFLICT (task_id, worker) DO UPDATE SET state = 'contributed', \
                 result_hash = $3",
            )
            .bind(hex(task_id))
            .bind(hex(worker))
            .bind(hex(result_hash))
            .bind(now)
            .execute(&mut *connection)
            .await?;
            sqlx::query("UPDATE tasks SET initialized = 1 WHERE task_id = $1")
                .bind(hex(task_id))
                .execute(&mut *connection)
                .await?;
        }
        ChainChange::Consensus { task_id, result_hash } => {
            sqlx::query(
                "UPDATE tasks SET stage = 'revealing', consensus = $2 \
                 WHERE task_id = $1 AND stage = 'open'",
            )
            .bind(hex(task_id))
            .bind(hex(result_hash))
            .execute(&mut *connection)
            .await?;
        }
        ChainChange::Revealed { task_id, worker, digest } => {
            sqlx::query(
                "UPDATE replicas SET state = 'revealed' WHERE task_id = $1 AND worker = $2",
            )
            .bind(hex(task_id))
            .bind(hex(worker))
            .execute(&mut *connection)
            .await?;
            sqlx::query("UPDATE tasks SET result_digest = $2 WHERE task_id = $1")
                .bind(hex(task_id))
                .bind(hex(digest))
                .execute(&mut *connection)
                .await?;
        }
        ChainChange::Reopened(task_id) => {
            sqlx::query(
                "UPDATE replicas SET state = 'rejected' WHERE task_id = $1 AND \
                 result_hash = (SELECT consensus FROM tasks WHERE task_id = $1) \
                 AND state = 'contributed'",
            )
            .bind(hex(task_id))
            .execute(&mut *connection)
            .await?;
            sqlx::query(
                "UPDATE tasks SET stage = 'open', consensus = NULL, uploader = NULL \
                 WHERE task_id = $1",
            )
            .bind(hex(task_id))
            .execute(&mut *connection)
            .await?;
        }
        ChainChange::Finalized(task_id) | ChainChange::Claimed(task_id) => {
            let stage = if matches!(change, ChainChange::Finalized(_)) {
                Stage::Completed
            } else {
                Stage::Failed
            };
            sqlx::query("UPDATE tasks SET stage = $2 WHERE task_id = $1")
                .bind(hex(task_id))
                .bind(stage.as_str())
                .execute(&mut *connection)
                .await?;
        }
    }
    Ok(())
}

/// Sets a task back to the start of its deal and applies again its recorded events (all from
/// before the fork point: the later ones are deleted first).
async fn replay(connection: &mut AnyConnection, task_id: B256, fork: i64, now: i64) -> Result<()> {
    let task = hex(&task_id);
    let before = sqlx::query("SELECT stage, consensus FROM tasks WHERE task_id = $1")
        .bind(task.clone())
        .fetch_one(&mut *connection)
        .await?;
    let (stage, consensus): (String, Option<String>) = (before.try_get(0)?, before.try_get(1)?);
    sqlx::query("DELETE FROM task_events WHERE task_id = $1 AND block >= $2")
        .bind(task.clone())
        .bind(fork)
        .execute(&mut *connection)
        .await?;
    sqlx::query(
        "UPDATE tasks SET stage = 'open', initialized = 0, consensus = NULL, \
         result_digest = NULL WHERE task_id = $1",
    )
    .bind(task.clone())
    .execute(&mut *connection)
    .await?;
    // Contributions become pending again, as if just computed: the chain may show them again.
    sqlx::query(
        "UPDATE replicas SET state = 'computed', assigned_ms = $2, renewed_ms = $2 \
         WHERE task_id = $1 AND state IN ('contributed', 'revealed', 'rejected')",
    )
    .bind(task.clone())
    .bind(now)
    .execute(&mut *connection)
    .await?;
    let events = sqlx::query(
        "SELECT block, worker, kind, value FROM task_events WHERE task_id = $1 \
         ORDER BY block, log_index, worker",
    )
    .bind(task.clone())
    .fetch_all(&mut *connection)
    .await?;
    let mut newest = 0_i64;
    for row in &events {
        let (block, worker, kind, value): (i64, String, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
        newest = newest.max(block);
        match kind.as_str() {
            "base" => restore_task(connection, &task, &value).await?,
            "base_replica" => restore_replica(connection, &task, &worker, &value, now).await?,
            _ => {
                let change = ChainChange::recorded(task_id, &kind, &worker, &value)?;
                effect(connection, &change, 0, now).await?;
            }
        }
    }
    sqlx::query("UPDATE tasks SET chain_block = $2 WHERE task_id = $1")
        .bind(task.clone())
        .bind(newest)
        .execute(&mut *connection)
        .await?;
    // The uploader and the upload were for a consensus that is no more.
    let after = sqlx::query("SELECT stage, consensus FROM tasks WHERE task_id = $1")
        .bind(task.clone())
        .fetch_one(&mut *connection)
        .await?;
    let now_consensus: Option<String> = after.try_get(1)?;
    let still_revealing = after.try_get::<String, _>(0)? == stage && now_consensus == consensus;
    if !still_revealing {
        sqlx::query(
            "UPDATE tasks SET uploader = NULL, upload_asked_ms = 0, location = NULL, \
             callback_data = NULL WHERE task_id = $1",
        )
        .bind(task)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// The task's state when its recording began (`base`): "stage initialized consensus digest".
async fn restore_task(connection: &mut AnyConnection, task: &str, value: &str) -> Result<()> {
    let parts: Vec<&str> = value.split(' ').collect();
    let [stage, initialized, consensus, digest] = parts[..] else {
        return Err(Error::corrupt(format!("task base {value:?}")));
    };
    let stage: Stage = stage.parse()?;
    let optional = |text: &str| (text != "-").then(|| text.to_owned());
    sqlx::query(
        "UPDATE tasks SET stage = $2, initialized = $3, consensus = $4, result_digest = $5 \
         WHERE task_id = $1",
    )
    .bind(task.to_owned())
    .bind(stage.as_str())
    .bind(i64::from(initialized != "0"))
    .bind(optional(consensus))
    .bind(optional(digest))
    .execute(connection)
    .await?;
    Ok(())
}

/// A replica's state when its task's recording began (`base_replica`): "state hash".
async fn restore_replica(
    connection: &mut AnyConnection,
    task: &str,
    worker: &str,
    value: &str,
    now: i64,
) -> Result<()> {
    let Some((state, hash)) = value.split_once(' ') else {
        return Err(Error::corrupt(format!("replica base {value:?}")));
    };
    let state: ReplicaState = state.parse()?;
    sqlx::query(
        "INSERT INTO replicas (task_id, worker, state, result_hash, assigned_ms) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (task_id, worker) DO UPDATE SET \
         state = $3, result_hash = $4",
    )
    .bind(task.to_owned())
    .bind(worker.to_owned())
    .bind(state.as_str())
    .bind((hash != "-").then(|| hash.to_owned()))
    .bind(now)
    .execute(connection)
    .await?;
    Ok(())
}

impl Store {
    /// Applies changes learned from the chain and moves the checkpoint to `next_block`,
    /// atomically. Each task event is recorded with its task. With a `tip` (the hash of block
    /// `next_block - 1`, and how many such blocks to keep), that block is recorded among the
    /// recent ones, and the events of tasks over before all of them are forgotten.
    pub async fn apply(
        &self,
        changes: &[LocatedChange],
        next_block: u64,
        tip: Option<(B256, usize)>,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let now = now_ms();
        for located in changes {
            let change = &located.change;
            if let Some(task_id) = change.task() {
                let (kind, worker, value) = change.record();
                let recorded = sqlx::query(
                    "INSERT INTO task_events (task_id, block, log_index, worker, kind, value) \
                     SELECT $1, $2, $3, $4, $5, $6 \
                     WHERE EXISTS (SELECT 1 FROM tasks WHERE task_id = $1) \
                     ON CONFLICT (task_id, block, log_index, worker) DO NOTHING",
                )
                .bind(hex(&task_id))
                .bind(stored(located.block))
                .bind(stored(located.log_index))
                .bind(worker)
                .bind(kind)
                .bind(value)
                .execute(&mut *tx)
                .await?;
                if recorded.rows_affected() == 0 {
                    // Another pool's task, or an event applied before.
                    continue;
                }
                touch(&mut tx, task_id, located.block).await?;
            }
            effect(&mut tx, change, located.block, now).await?;
        }
        sqlx::query(
            "INSERT INTO checkpoint (name, next_block) VALUES ('chain', $1) \
             ON CONFLICT (name) DO UPDATE SET next_block = $1",
        )
        .bind(stored(next_block))
        .execute(&mut *tx)
        .await?;
        if let Some((hash, window)) = tip {
            sqlx::query(
                "INSERT INTO chain_blocks (number, hash) VALUES ($1, $2) \
                 ON CONFLICT (number) DO UPDATE SET hash = $2",
            )
            .bind(stored(next_block.saturating_sub(1)))
            .bind(hex(&hash))
            .execute(&mut *tx)
            .await?;
            let keep = i64::try_from(window.max(1) - 1).unwrap_or(i64::MAX);
            sqlx::query(
                "DELETE FROM chain_blocks WHERE number < (SELECT number FROM chain_blocks \
                 ORDER BY number DESC LIMIT 1 OFFSET $1)",
            )
            .bind(keep)
            .execute(&mut *tx)
            .await?;
            // No rollback reaches back past the oldest recent block.
            sqlx::query(
                "DELETE FROM task_events WHERE block < (SELECT MIN(number) FROM chain_blocks) \
                 AND task_id IN (SELECT task_id FROM tasks WHERE stage IN ('completed', \
                 'failed') AND chain_block < (SELECT MIN(number) FROM chain_blocks))",
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The last blocks of the batches applied (number, hash), oldest first.
    pub async fn recent_blocks(&self) -> Result<Vec<(u64, B256)>> {
        let rows = sqlx::query("SELECT number, hash FROM chain_blocks ORDER BY number")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let number: i64 = row.try_get(0)?;
                Ok((number.max(0) as u64, parse(&row.try_get::<String, _>(1)?, "block hash")?))
            })
            .collect()
    }

    /// Undoes the changes of the blocks from `fork_point` on and moves the checkpoint there, in
    /// one transaction; with `resync` (a reorganisation deeper than the recent blocks), every
    /// deal is withdrawn. Returns `None`, changing nothing, when the checkpoint is not
    /// `checkpoint`.
    pub async fn rollback(
        &self,
        checkpoint: u64,
        fork_point: u64,
        resync: bool,
    ) -> Result<Option<RolledBack>> {
        let mut tx = self.write().await?;
        let stored_checkpoint: Option<i64> =
            sqlx::query("SELECT next_block FROM checkpoint WHERE name = 'chain'")
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.try_get(0))
                .transpose()?;
        if stored_checkpoint != Some(stored(checkpoint)) {
            return Ok(None);
        }
        let now = now_ms();
        let fork = if resync { i64::MIN } else { stored(fork_point) };
        let mut outcome = RolledBack::default();
        let deals = sqlx::query("SELECT deal_id FROM deals WHERE block >= $1 ORDER BY deal_id")
            .bind(fork)
            .fetch_all(&mut *tx)
            .await?;
        for row in &deals {
            let deal: String = row.try_get(0)?;
            for table in ["replicas", "task_events", "task_logs"] {
                let sql = format!(
                    "DELETE FROM {table} WHERE task_id IN \
                     (SELECT task_id FROM tasks WHERE deal_id = $1)"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(deal.clone()).execute(&mut *tx).await?;
            }
            sqlx::query("DELETE FROM tasks WHERE deal_id = $1")
                .bind(deal.clone())
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM deals WHERE deal_id = $1")
                .bind(deal.clone())
                .execute(&mut *tx)
                .await?;
            outcome.withdrawn.push(parse(&deal, "deal id")?);
        }
        let tasks =
            sqlx::query("SELECT task_id FROM tasks WHERE chain_block >= $1 ORDER BY task_id")
                .bind(fork)
                .fetch_all(&mut *tx)
                .await?;
        for row in &tasks {
            let task_id: B256 = parse(&row.try_get::<String, _>(0)?, "task id")?;
            replay(&mut tx, task_id, fork, now).await?;
            outcome.reset.push(task_id);
        }
        sqlx::query("DELETE FROM chain_blocks WHERE number >= $1")
            .bind(fork)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE checkpoint SET next_block = $1 WHERE name = 'chain'")
            .bind(stored(fork_point))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(outcome))
    }

    /// Everything the scheduler derived from the chain, in a fixed order (see [`ChainDump`]).
    pub async fn dump(&self) -> Result<ChainDump> {
        let mut dump = ChainDump::default();
        let rows = sqlx::query("SELECT deal_id, deal, params FROM deals ORDER BY deal_id")
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            let deal =
                serde_json::from_str(&row.try_get::<String, _>(1)?).map_err(Error::corrupt)?;
            dump.deals.push((
                parse(&row.try_get::<String, _>(0)?, "deal id")?,
                deal,
                row.try_get(2)?,
            ));
        }
        let rows = sqlx::query(
            "SELECT task_id, deal_id, stage, initialized, consensus, result_digest FROM tasks \
             ORDER BY task_id",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let optional = |index: usize| -> Result<Option<B256>> {
                row.try_get::<Option<String>, _>(index)?
                    .map(|value| parse(&value, "hash"))
                    .transpose()
            };
            dump.tasks.push(TaskFacts {
                task_id: parse(&row.try_get::<String, _>(0)?, "task id")?,
                deal_id: parse(&row.try_get::<String, _>(1)?, "deal id")?,
                stage: row.try_get::<String, _>(2)?.parse()?,
                initialized: row.try_get::<i64, _>(3)? != 0,
                consensus: optional(4)?,
                result_digest: optional(5)?,
            });
        }
        let rows = sqlx::query(
            "SELECT task_id, worker, state, result_hash FROM replicas \
             WHERE state IN ('contributed', 'revealed', 'rejected') ORDER BY task_id, worker",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let hash: Option<String> = row.try_get(3)?;
            dump.contributions.push((
                parse(&row.try_get::<String, _>(0)?, "task id")?,
                parse(&row.try_get::<String, _>(1)?, "worker")?,
                row.try_get::<String, _>(2)?.parse()?,
                hash.map(|value| parse(&value, "result hash")).transpose()?,
            ));
        }
        Ok(dump)
    }
}
