//! The worker's in-flight tasks on disk, so that a restarted worker picks them up where it was.
//!
//! Each task has a directory `<data>/tasks/<taskid>/` with `state.json` (the assignment and the
//! stage reached), `in/` (the app's inputs) and `out/` (its outputs, kept until the task is
//! over: they are what gets revealed and uploaded).

use std::path::{Path, PathBuf};

use alloy::primitives::{B256, Bytes};
use poco_api::pool::Assignment;
use poco_chain::files;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How far a task went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "stage")]
pub(crate) enum Stage {
    /// Assigned; nothing done yet (or a run interrupted: it is redone from scratch).
    Received,
    /// The app ran; its result digest is known.
    Computed {
        /// The result digest.
        digest: B256,
        /// The callback data, for a deal with a callback.
        callback_data: Bytes,
        /// The enclave's signature of the commitment, for a TEE task (empty otherwise).
        #[serde(default)]
        enclave_sign: Bytes,
    },
    /// The contribution (or `contributeAndFinalize`) is on-chain.
    Committed {
        /// The result digest.
        digest: B256,
        /// The callback data.
        callback_data: Bytes,
    },
    /// The result was uploaded; only the task's end is awaited.
    Uploaded,
}

/// A task in progress and where it is.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskState {
    pub(crate) assignment: Assignment,
    pub(crate) stage: Stage,
    /// Whether the worker revealed its contribution.
    #[serde(default)]
    pub(crate) revealed: bool,
}

/// The directory of one task.
#[derive(Clone, Debug)]
pub(crate) struct TaskDir(PathBuf);

impl TaskDir {
    pub(crate) fn new(tasks: &Path, task_id: B256) -> Self {
        Self(tasks.join(format!("{task_id:x}")))
    }

    pub(crate) fn input(&self) -> PathBuf {
        self.0.join("in")
    }

    pub(crate) fn output(&self) -> PathBuf {
        self.0.join("out")
    }

    /// Where a Python app's code is laid out.
    pub(crate) fn app(&self) -> PathBuf {
        self.0.join("app")
    }

    fn state_file(&self) -> PathBuf {
        self.0.join("state.json")
    }

    /// Saves the state atomically (write, then rename).
    pub(crate) fn save(&self, state: &TaskState) -> Result<()> {
        files::create_private_dirs(&self.0).map_err(|e| Error::io(&self.0, e))?;
        let json = serde_json::to_vec_pretty(state).expect("a task state serializes");
        files::write_private(&self.state_file(), &json).map_err(|e| Error::io(self.state_file(), e))
    }

    /// Forgets the task.
    pub(crate) fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.0) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&self.0, e)),
            _ => Ok(()),
        }
    }

    /// Empties `dir`, keeping it.
    pub(crate) fn clear_dir(dir: &Path) -> Result<()> {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(dir, e)),
            _ => {}
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
    }

    /// Empties the input and output directories for a fresh run.
    pub(crate) fn reset_io(&self) -> Result<()> {
        for dir in [self.input(), self.output()] {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(&dir, e));
                }
                _ => {}
            }
            files::create_private_dirs(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        Ok(())
    }
}

/// Every task state saved under `tasks`.
pub(crate) fn load_all(tasks: &Path) -> Result<Vec<TaskState>> {
    let entries = match std::fs::read_dir(tasks) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io(tasks, e)),
    };
    let mut states = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(tasks, e))?.path().join("state.json");
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let state = serde_json::from_slice(&bytes)
            .map_err(|e| Error::State { path: path.clone(), reason: e.to_string() })?;
        states.push(state);
    }
    Ok(states)
}
