//! The SMS's side of the wire: its request and answer types, the formats of attestation
//! ([`attestation`]), the crypto of the confidential path ([`crypto`]: dataset encryption,
//! result encryption with age, the envelope of session secrets) and its typed client
//! ([`SmsClient`]), used by the CLI (secret pushes and checks), the scheduler (enclave
//! challenges) and the worker's enclave (sessions).

pub mod attestation;
mod client;
pub mod crypto;
mod error;
mod wire;

pub use attestation::{
    AppMeasurement, Evidence, SIMULATION_LABEL, SimulatedQuote, session_report_data,
    simulated_measurement,
};
pub use client::{SmsClient, open_session_secrets};
pub use crypto::{
    DatasetKey, ENCRYPTED_RESULT_FILE, RESULT_ENCRYPTION_PARAM, ResultKeyPair, Secret,
    dataset_checksum, decrypt_dataset, decrypt_result, encrypt_dataset, encrypt_result,
};
pub use error::{Error, Result};
pub use wire::{
    AttestRequest, AttestResponse, ChallengeRequest, ChallengeResponse, SecretValue,
    SessionRequest, SessionResponse, SessionSecrets, SmsStatus, check_secret_name,
    requester_secret_names, wants_result_encryption,
};
