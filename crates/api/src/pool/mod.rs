//! The workerpool protocol: what a scheduler and its workers say to each other over HTTP.
//!
//! Workers pull: they register, send heartbeats (whose answers carry the actions the scheduler
//! wants: reveal, upload, abort; and which say when the worker is unhealthy), ask for work up to
//! their free slots, report what they did, and hand back at once a task they cannot keep (its
//! files could not be written: [`HandBack`]).
//! Every request is signed by the worker's wallet, as every signed request to a poco service
//! ([`poco_primitives::request`]); the scheduler accepts a request only from a registered worker, fresh
//! (its timestamp, in seconds, close to the scheduler's clock) and once, so a captured request
//! cannot be replayed.

mod client;

use alloy::primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};

use poco_primitives::Deal;

pub use client::{
    Error, FAILOVER_PATIENCE, FAILOVER_REQUEST_TIMEOUT, HAND_BACK_PATH, LogEntry, Result,
    STANDBY_CODE, SchedulerClient, TaskLogs,
};

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

/// A worker's heartbeat: the tasks it is working on, and whether it can take more.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Heartbeat {
    /// Tasks in progress on the worker.
    pub running: Vec<B256>,
    /// Why the worker takes no new work now; `None` (and then absent from the JSON, as
    /// schedulers from before this field expect) when it is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy: Option<Unhealthy>,
}

/// Why a worker asks for no new work: it says so in its heartbeats until it is healthy again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "camelCase", rename_all_fields = "camelCase")]
#[non_exhaustive]
pub enum Unhealthy {
    /// Its data folder has less free space than the worker keeps in reserve: a task's files
    /// (its state, inputs and result) might not fit.
    LowDisk {
        /// The bytes free for the worker in its data folder.
        free_bytes: u64,
        /// The least it takes new work with.
        min_free_bytes: u64,
    },
}

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LowDisk { free_bytes, min_free_bytes } => write!(
                f,
                "its data folder has {free_bytes} bytes free, under the {min_free_bytes} it \
                 takes new work with"
            ),
        }
    }
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

/// Why a worker hands a task back (what the task's log says; the worker's own log has the
/// details, such as the file that could not be written).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum HandBackCause {
    /// The worker's disk is full (or under the free space it keeps in reserve).
    DiskFull,
    /// The worker's storage failed otherwise.
    StorageFailed,
}

impl std::fmt::Display for HandBackCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::DiskFull => "the worker's disk is full",
            Self::StorageFailed => "the worker's storage failed",
        })
    }
}

/// A worker giving a task back, at once, because it cannot keep it: the task's files could not
/// be written on its machine. Only a task the worker has neither computed nor contributed to
/// can be handed back; the scheduler gives it to the next worker that asks (to this one too,
/// later, a few times at most).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HandBack {
    /// The task.
    pub task_id: B256,
    /// Why.
    pub cause: HandBackCause,
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

    #[test]
    fn a_healthy_heartbeat_says_nothing_of_its_health() {
        let healthy = Heartbeat { running: vec![B256::repeat_byte(1)], unhealthy: None };
        let json = serde_json::to_value(&healthy).unwrap();
        assert_eq!(json, serde_json::json!({ "running": [B256::repeat_byte(1)] }));
        assert_eq!(serde_json::from_value::<Heartbeat>(json).unwrap(), healthy);

        let low = Unhealthy::LowDisk { free_bytes: 10, min_free_bytes: 20 };
        let beat = Heartbeat { running: vec![], unhealthy: Some(low.clone()) };
        let json = serde_json::to_value(&beat).unwrap();
        assert_eq!(
            json["unhealthy"],
            serde_json::json!({ "reason": "lowDisk", "freeBytes": 10, "minFreeBytes": 20 })
        );
        assert_eq!(serde_json::from_value::<Heartbeat>(json).unwrap(), beat);
        assert!(low.to_string().contains("10 bytes free"), "{low}");
    }

    #[test]
    fn a_hand_back_names_its_task_and_a_known_cause() {
        let hand_back = HandBack { task_id: B256::repeat_byte(2), cause: HandBackCause::DiskFull };
        let json = serde_json::to_value(&hand_back).unwrap();
        assert_eq!(json["cause"], "diskFull");
        assert_eq!(serde_json::from_value::<HandBack>(json).unwrap(), hand_back);
        for malformed in [
            r#"{"taskId":"0x00","cause":"diskFull"}"#,
            r#"{"taskId":"0x0202020202020202020202020202020202020202020202020202020202020202","cause":"bored"}"#,
            r#"{"taskId":"0x0202020202020202020202020202020202020202020202020202020202020202"}"#,
        ] {
            assert!(serde_json::from_str::<HandBack>(malformed).is_err(), "{malformed}");
        }
    }
}
