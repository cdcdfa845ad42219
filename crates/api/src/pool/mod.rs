//! The workerpool protocol: what a scheduler and its workers say to each other over HTTP.
//!
//! Workers pull: they register, send heartbeats (whose answers carry the actions the scheduler
//! wants: reveal, upload, abort), ask for work up to their free slots, and report what they did.
//! Every request is signed by the worker's wallet, as every signed request to a poco service
//! ([`poco_primitives::request`]); the scheduler accepts a request only from a registered worker, fresh
//! (its timestamp, in seconds, close to the scheduler's clock) and once, so a captured request
//! cannot be replayed.

mod client;

use alloy::primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};

use poco_primitives::Deal;

pub use client::{Error, LogEntry, Result, SchedulerClient, TaskLogs};

/// A worker's registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Registration {
    /// How many tasks the worker runs at once.
    pub slots: u32,
    /// Whether the worker can run TEE tasks.
    pub tee: bool,
    /// The worker's software version.
    pub version: String,
}

/// What a scheduler tells a registered worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolInfo {
    /// The workerpool.
    pub workerpool: Address,
    /// The scheduler's address: it signs authorizations and upload tickets.
    pub scheduler: Address,
    /// The protocol contract.
    pub poco: Address,
    /// The chain id.
    pub chain_id: u64,
    /// Where results are uploaded.
    pub result_store: String,
    /// How often to send a heartbeat, in seconds (fractional: `0.2` is 200 ms). A worker
    /// bounds what it is told: a scheduler is a stranger.
    pub heartbeat_interval_secs: f64,
}

/// A worker's heartbeat: the tasks it is working on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Heartbeat {
    /// Tasks in progress on the worker.
    pub running: Vec<B256>,
}

/// What the scheduler wants a worker to do next about a task it contributed to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Action {
    /// The worker's answer is the consensus: reveal it.
    Reveal {
        /// The task.
        task_id: B256,
    },
    /// Upload the result to the result store, with this ticket.
    Upload {
        /// The task.
        task_id: B256,
        /// The scheduler's signature of the upload ticket ([`crate::results::UploadTicket`]).
        ticket: Bytes,
    },
    /// Stop working on the task and forget it.
    Abort {
        /// The task.
        task_id: B256,
        /// Why.
        reason: String,
    },
}

/// The scheduler's answer to a heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatResponse {
    /// Actions to take, oldest first.
    pub actions: Vec<Action>,
}

/// A worker asking for work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkRequest {
    /// How many more tasks the worker can take now.
    pub free_slots: u32,
}

/// How a worker commits its result on-chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContributionMode {
    /// `contribute`, then reveal when asked (replicated tasks).
    Contribute,
    /// `contributeAndFinalize` in one transaction (trust 1).
    ContributeAndFinalize,
}

/// One task handed to a worker, with the scheduler's authorization to contribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// The task.
    pub task_id: B256,
    /// The task's index in its deal's bag of tasks.
    pub index: U256,
    /// The deal (its hash is on-chain: the worker checks it before working).
    pub deal: Deal,
    /// The request's parameters (their keccak256 is `deal.paramsHash`).
    pub params: String,
    /// The enclave challenge (zero outside a TEE).
    pub enclave_challenge: Address,
    /// The scheduler's signature of the authorization.
    pub authorization: Bytes,
    /// How to commit the result.
    pub mode: ContributionMode,
    /// The `results` to pass to `contributeAndFinalize` (where the result will be).
    pub results_location: String,
    /// For `contributeAndFinalize`, the ticket to upload the result right after.
    pub upload_ticket: Option<Bytes>,
}

/// The scheduler's answer to a work request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkResponse {
    /// Tasks assigned, at most the free slots asked.
    pub assignments: Vec<Assignment>,
}

/// What a worker reports about a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "status", deny_unknown_fields)]
pub enum Report {
    /// The app ran; the worker is about to commit this result hash.
    Computed {
        /// The task.
        task_id: B256,
        /// `keccak256(taskid ‖ digest)`.
        result_hash: B256,
    },
    /// The result was uploaded to the result store.
    Uploaded {
        /// The task.
        task_id: B256,
        /// Where it is.
        location: String,
        /// The callback data, for deals with a callback (its keccak256 is the digest).
        callback_data: Bytes,
    },
    /// The worker gave up on the task.
    Failed {
        /// The task.
        task_id: B256,
        /// Why, for the requester's task log.
        reason: String,
    },
}

impl Report {
    /// The task reported about.
    pub fn task_id(&self) -> B256 {
        match self {
            Self::Computed { task_id, .. }
            | Self::Uploaded { task_id, .. }
            | Self::Failed { task_id, .. } => *task_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_a_stable_json_form() {
        let action = Action::Reveal { task_id: B256::repeat_byte(1) };
        let json = serde_json::to_value(&action).unwrap();
        assert_eq!(json["action"], "reveal");
        assert_eq!(serde_json::from_value::<Action>(json).unwrap(), action);
        let report: Result<Report, _> =
            serde_json::from_str(r#"{"status":"failed","taskId":"0x00","reason":"x","extra":1}"#);
        assert!(report.is_err(), "unknown fields are refused");
    }
}
