//! The JSON bodies of the HTTP API, shared by the server and the client.

use alloy::primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};

/// A task, named the way the store can verify it: its deal and its index in the deal's request
/// order, so that `taskid = keccak256(dealid ‖ idx)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRef {
    /// The deal.
    pub deal_id: B256,
    /// The task's index (request-relative, in `[botFirst, botFirst + botSize)`).
    pub index: U256,
}

impl TaskRef {
    /// The task id: `keccak256(dealid ‖ idx)`.
    pub fn task_id(&self) -> B256 {
        poco_primitives::deal::task_id(self.deal_id, self.index)
    }
}

/// The answer to an accepted upload (`201 Created`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadReceipt {
    /// The task.
    pub task_id: B256,
    /// The archive's result digest (equal to the task's on-chain consensus).
    pub digest: B256,
    /// The SHA-256 of the archive's bytes.
    pub archive_sha256: B256,
    /// The archive's size in bytes.
    pub size: u64,
    /// How many files it holds.
    pub files: usize,
}

/// How a stored result ended (`GET /results/{taskid}/outcome`, for whoever may download it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultOutcome {
    /// The task.
    pub task_id: B256,
    /// Why the task failed, when its result holds a failure record (a result encrypted for
    /// its beneficiary hides it: decrypt the result to read it).
    pub failure: Option<poco_primitives::result::FailureRecord>,
}

/// A download challenge (`GET /results/{taskid}/challenge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Challenge {
    /// The task it is for.
    pub task_id: B256,
    /// The nonce to sign (with the task id, see [`super::auth::download_message_hash`]).
    pub nonce: B256,
    /// When it stops being accepted (unix seconds).
    pub expires_at: u64,
}

/// What `HEAD /results/{taskid}` tells about a stored result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultInfo {
    /// The result digest of the archive.
    pub digest: B256,
    /// The SHA-256 of the archive's bytes.
    pub archive_sha256: B256,
    /// The archive's size in bytes.
    pub size: u64,
    /// Whether anyone may download it.
    pub public: bool,
}

/// The answer to an accepted publication of an app's code (`201 Created` when stored by this
/// request, `200 OK` when the same code was already there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeReceipt {
    /// The app the code was published for.
    pub app: Address,
    /// The code's SHA-256 (the app's registered checksum).
    pub checksum: B256,
    /// Its size in bytes.
    pub size: u64,
    /// The path it is served at (`/code/<checksum>`).
    pub path: String,
}
