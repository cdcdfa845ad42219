//! The result store: keeps the result archives of tasks, accepts each only from the worker the
//! scheduler chose and only if it is the task's on-chain consensus, and serves it only to the
//! deal's beneficiary (or to anyone when the deal says the result is public).
//!
//! # Where it sits
//!
//! In the data flow it comes **after the worker** and **before the SDK's download**: a worker
//! runs a task, commits and reveals the digest of its output tree on-chain, and, when the
//! scheduler picks it as the uploader, packs `/iexec_out` into a tar archive
//! ([`poco_api::results::archive::pack_dir`]) and uploads it here with
//! [`poco_api::results::ResultStoreClient::upload`]; the
//! scheduler asks, with a signed `HEAD` ([`poco_api::results::ResultStoreClient::info`]), whether the result is
//! there with the consensus digest before it finalizes; the beneficiary downloads it with
//! [`poco_api::results::ResultStoreClient::download`] (streamed to a temporary file within a size bound) and checks
//! its digest against the task's on-chain `resultDigest`. The store itself reads the chain through
//! `poco-chain` (deals from their `DealCreated` log, consensus from `viewTask`, `viewGroup` and
//! `viewContribution`) and keeps archives behind `object_store`: a local folder by default, an
//! S3-compatible bucket in production ([`StorageConfig`]).
//!
//! # HTTP API
//!
//! | Route | Who | What |
//! | --- | --- | --- |
//! | `PUT /results/{taskid}` | the chosen worker | upload the tar archive (body) |
//! | `HEAD /results/{taskid}` | anyone | whether a result is stored, nothing more |
//! | `HEAD /results/{taskid}`, signed | the beneficiary, the deal's scheduler | also its digest, SHA-256, size, public flag |
//! | `GET /results/{taskid}/challenge` | anyone | a single-use nonce to sign for a download |
//! | `GET /results/{taskid}` | the beneficiary, or anyone if public | the archive |
//! | `GET /health`, `GET /metrics` | anyone | liveness, Prometheus text |
//!
//! The signatures (upload ticket, request signature, download challenge) are defined in
//! [`poco_api::results::auth`]; refusals are 4xx with a JSON body `{"error", "code"}` ([`Error::code`]).
//!
//! # What strangers cannot use up
//!
//! Issuing a download challenge stores nothing: the nonce carries its expiry and a MAC of the
//! task under the store's key ([`Config::challenge_key`]), so a flood of challenge requests
//! fills no book. A challenge is recorded as used only once the beneficiary's signature of it
//! checks out, and a signed request is remembered against replays only once its signer is shown
//! to be entitled (the chosen uploader, the beneficiary, the deal's scheduler): those bounded
//! records ([`Config::max_used_challenges`], [`Config::max_replay_records`]) only grow with
//! the requests of the people they serve.
//!
//! An upload is accepted only when (a) the request is signed by a worker, fresh and not
//! replayed, and carries an upload ticket signed by the deal's scheduler for that worker and
//! task; (b) no result is stored for the task yet (409 otherwise, even for the same bytes);
//! (c) the archive is a clean tar of regular files and directories within the limits, and its
//! result digest is the task's settled consensus: `viewTask(taskid).resultDigest` once the task
//! is completed, or, while it is revealing, the group of `keccak256(taskid ‖ digest)` is the
//! consensus **and** the uploading worker has revealed it (after a reveal the consensus can no
//! longer be reopened, so a result cannot be swapped after the vote).

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod books;
mod chain;
pub mod config;
mod error;
mod metrics;
mod server;
mod storage;

pub use books::ChallengeKey;
pub use chain::{DealRecord, PUBLIC_RESULT_PARAM, params_make_public};
pub use config::{ChainConfig, Config, StorageConfig};
pub use error::{Error, Result};
pub use server::{ResultStore, serve};
pub use storage::StoredResult;
