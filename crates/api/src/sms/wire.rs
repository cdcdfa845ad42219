//! The wire types of the SMS's HTTP API, shared by the server and [`super::SmsClient`].

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256, Bytes, U256};
use poco_primitives::Deal;
use serde::{Deserialize, Serialize};

use super::{
    attestation::Evidence,
    crypto::Secret,
    error::{Error, Result},
};

/// The body of a secret push (`PUT`): the value, at most the SMS's size limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    /// The value: a dataset key in hexadecimal, an app developer secret, a requester secret, or
    /// a beneficiary's age recipient.
    pub value: Secret,
}

/// The scheduler asking for a task's enclave challenge (`POST /challenges`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChallengeRequest {
    /// The deal, as on-chain.
    pub deal: Deal,
    /// The task's index in the deal's bag of tasks.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub index: U256,
}

/// A task's enclave challenge: the address the scheduler puts in the authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeResponse {
    /// The task.
    pub task_id: B256,
    /// The address of the task's challenge key pair.
    pub address: Address,
}

/// A worker opening an enclave session for a task (`POST /sessions`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionRequest {
    /// The deal, as on-chain.
    pub deal: Deal,
    /// The task's index.
    #[serde(with = "poco_primitives::serde_helpers::uint256")]
    pub index: U256,
    /// The request's parameters (their keccak256 is `deal.paramsHash`): they name the
    /// requester secrets to release (`iexec_secrets`) and ask for result encryption.
    pub params: String,
    /// The scheduler's signature of the authorization `(worker, taskid, challenge)`.
    pub authorization: Bytes,
}

/// An open session: the enclave now has until `expires_at` to attest with a quote whose report
/// data binds the task, this nonce and its session key ([`super::attestation::session_report_data`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionResponse {
    /// The session.
    pub session_id: B256,
    /// The task.
    pub task_id: B256,
    /// The single-use nonce the quote must bind.
    pub nonce: B256,
    /// The last second of the session, in seconds since the Unix epoch: a quote presented
    /// after it is refused.
    pub expires_at: u64,
}

/// The enclave's evidence (`POST /sessions/{id}/attest`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttestRequest {
    /// The quote.
    pub evidence: Evidence,
    /// The enclave's session key: an age X25519 recipient (`age1...`) generated inside the
    /// enclave. The secrets are encrypted to it.
    pub enclave_key: String,
}

/// The secrets of a session, encrypted to the enclave's session key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestResponse {
    /// The age ciphertext of the JSON [`SessionSecrets`].
    pub secrets: Bytes,
    /// How the enclave was attested (`dcap-sgx`, `dcap-tdx` or
    /// `simulation (INSECURE)`).
    pub attestation: String,
}

/// What an attested enclave gets for its task. `Debug` shows no value.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSecrets {
    /// The task.
    pub task_id: B256,
    /// How the enclave was attested.
    pub attestation: String,
    /// The dataset's key, for a deal with a dataset.
    pub dataset_key: Option<Secret>,
    /// The requester secrets the deal's `iexec_secrets` map to the app, by their index
    /// (`IEXEC_REQUESTER_SECRET_<index>`).
    pub requester_secrets: BTreeMap<u32, Secret>,
    /// The app developer's secret (`IEXEC_APP_DEVELOPER_SECRET`), if any.
    pub app_developer_secret: Option<Secret>,
    /// The beneficiary's age recipient, when the deal asks for result encryption.
    pub result_encryption_key: Option<String>,
    /// The task's enclave challenge private key (hexadecimal): it signs the result.
    pub challenge_key: Secret,
}

/// What the SMS says about itself (`GET /status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmsStatus {
    /// The software version.
    pub version: String,
    /// Whether real DCAP quotes are verified (always).
    pub dcap: bool,
    /// Whether the INSECURE simulation attestation is on.
    pub simulation: bool,
    /// A warning to show wherever the status is shown, when simulation is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// The URL the SMS's operator says it is reached at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

/// The `iexec_secrets` of a deal's params: app-side index → requester secret name.
pub fn requester_secret_names(params: &str) -> Result<BTreeMap<u32, String>, String> {
    if params.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let value: serde_json::Value =
        serde_json::from_str(params).map_err(|e| format!("params are not JSON: {e}"))?;
    let Some(secrets) = value.get("iexec_secrets") else { return Ok(BTreeMap::new()) };
    let map = secrets.as_object().ok_or("iexec_secrets must be an object")?;
    let mut names = BTreeMap::new();
    for (index, name) in map {
        let index: u32 = index
            .parse()
            .ok()
            .filter(|i| *i >= 1)
            .ok_or_else(|| format!("iexec_secrets key {index:?} is not a positive index"))?;
        let name = name.as_str().ok_or("iexec_secrets values must be secret names")?;
        check_secret_name(name).map_err(|e| e.to_string())?;
        names.insert(index, name.to_owned());
    }
    Ok(names)
}

/// Whether a deal's params ask for the result to be encrypted for the beneficiary
/// (`"iexec_result_encryption": true`).
pub fn wants_result_encryption(params: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(params)
        .ok()
        .and_then(|v| v.get(super::crypto::RESULT_ENCRYPTION_PARAM)?.as_bool())
        .unwrap_or(false)
}

/// Checks a requester secret's name: 1 to 64 characters among letters, digits, `.`, `_`, `-`.
pub fn check_secret_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "invalid secret name {name:?}: 1 to 64 letters, digits, '.', '_' or '-'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_name_secrets_and_result_encryption() {
        let params =
            r#"{"iexec_secrets":{"1":"api-key","2":"db.password"},"iexec_result_encryption":true}"#;
        let names = requester_secret_names(params).unwrap();
        assert_eq!(names[&1], "api-key");
        assert_eq!(names[&2], "db.password");
        assert!(wants_result_encryption(params));
        assert!(!wants_result_encryption(""));
        assert!(requester_secret_names("").unwrap().is_empty());
        assert!(requester_secret_names(r#"{"iexec_secrets":{"0":"x"}}"#).is_err());
        assert!(requester_secret_names(r#"{"iexec_secrets":{"1":"bad name"}}"#).is_err());
    }
}
