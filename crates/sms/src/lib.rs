//! The secret management service (SMS): holds dataset keys, requester secrets, app developer
//! secrets and beneficiaries' result keys, and releases them only to an attested enclave
//! running the right app for an active task of an authorized TEE deal.
//!
//! It sits beside the scheduler, the worker and the result store in the data flow, on top of
//! `poco-chain` (it reads deals, tasks and asset owners) and `poco-primitives` (authorizations,
//! signed requests, tags). The crate also holds what the CLI, the scheduler and the worker's
//! enclave need to talk to it (its typed client, wire types, attestation formats and crypto)
//! are in [`poco_api::sms`].
//!
//! # Trust model
//!
//! * **Writes** are signed requests (the workerpool protocol's request signature:
//!   [`poco_primitives::request`]), fresh (within 5 minutes) and accepted once per signer and timestamp, so
//!   a captured request cannot be replayed. Each is checked against the chain: a dataset key
//!   only from the dataset's current on-chain owner, an app developer secret only from the
//!   app's owner, a requester secret or a result key only from that address itself. Dataset
//!   keys, app secrets and requester secrets are **write-once** (409 after): a task's inputs
//!   cannot change under it, and the replicas of a task always see the same values; a new
//!   value goes under a new name. A result key (a public key) can be replaced by its owner.
//! * **At rest**, every secret and challenge key is sealed with XChaCha20-Poly1305 under a
//!   master key kept in its own file (mode 0600, created on first start), the row's identity as
//!   associated data. The database (SQLite by default, PostgreSQL by URL) holds no plaintext.
//! * **Release**: per task, the deal's scheduler gets an **enclave challenge** (a fresh key pair
//!   whose address goes in the worker's authorization and on-chain with the contribution). A
//!   worker opens a **session** with the scheduler's authorization for (itself, the task, that
//!   challenge), for an ACTIVE task of an on-chain deal with the TEE tag; the session gets a
//!   single-use nonce valid for a short time. Its enclave then presents a **quote** whose
//!   measurement is the app's registered `mrenclave` and whose report data binds the task, the
//!   nonce and the enclave's session key; only then does the SMS release the dataset key, the
//!   requester secrets the deal's `iexec_secrets` name, the app developer secret, the
//!   beneficiary's result key and the challenge private key, encrypted to the enclave's
//!   session key. A quote is accepted once; an expired session refuses it (stale).
//! * **Attestation** is real Intel SGX/TDX DCAP verification ([`attestation::verify_dcap`],
//!   the `dcap-qvl` crate, collateral offline), or, when switched on explicitly, the
//!   **INSECURE simulation**: a quote signed by a simulation key the SMS trusts. A simulation
//!   proves nothing about hardware, is named as insecure in every log line and status that
//!   touches it, and is refused for deals that ask for a hardware framework (Scone, Gramine,
//!   TDX).
//!
//! # HTTP API
//!
//! | Route | Who (signature) | What |
//! | --- | --- | --- |
//! | `PUT /datasets/{dataset}/key` | dataset owner | the dataset key, hex (write-once) |
//! | `PUT /apps/{app}/secret` | app owner | the app developer secret (write-once) |
//! | `PUT /requesters/{requester}/secrets/{name}` | the requester | a named secret (write-once) |
//! | `PUT /beneficiaries/{beneficiary}/result-key` | the beneficiary | its age recipient |
//! | `HEAD` on each of the four | anyone | 200 if set, 404 if not; never the value |
//! | `POST /challenges` | the deal's scheduler | the task's enclave challenge address |
//! | `POST /sessions` | the authorized worker | a session: id, nonce, expiry |
//! | `POST /sessions/{id}/attest` | the same worker, for its enclave | the secrets, encrypted to the enclave |
//! | `GET /status`, `GET /health` | anyone | attestation modes (with the insecurity warning), liveness |
//!
//! Refusals are 4xx with a JSON body `{"error", "code"}` ([`Error::code`]); a 5xx never leaks
//! internals.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod attestation;
mod chain;
pub mod config;
mod error;
mod seal;
mod server;
mod store;

pub use config::{AttestationConfig, Clock, DcapConfig, SimulationConfig, SmsConfig};
pub use error::{Error, Result};
pub use server::{Sms, serve};
