//! The formats of attestation: what an enclave shows the SMS before it gets any secret, and
//! what an app registers as its measurement. The SMS verifies them (`poco-sms`).
//!
//! Evidence is either a real Intel **DCAP quote** (SGX or TDX), or an **INSECURE simulated
//! quote**: a structure signed by a simulation key the SMS is configured to trust, for
//! machines without SGX or TDX. Either way the SMS then checks, for the session:
//!
//! * the **measurement**: MRENCLAVE for SGX, MRTD (and the RTMRs the app registered, if any)
//!   for TDX, the measured module for a simulation, against the app's registered `mrenclave`
//!   ([`AppMeasurement`]);
//! * the **report data**: its first 32 bytes must be [`session_report_data`] of the task, the
//!   session's single-use nonce and the enclave's session key, so a quote is good for one
//!   session only and the secrets go to the key the enclave holds;
//! * the framework: a deal tagged Scone or Gramine needs an SGX quote, a TDX deal a TDX quote,
//!   and a simulation is refused for all three.

use alloy::{
    primitives::{Address, B256, Bytes, keccak256},
    signers::SignerSync,
};
use poco_primitives::signature;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{Error, Result};

/// The label of a simulated attestation, in statuses and logs.
pub const SIMULATION_LABEL: &str = "simulation (INSECURE)";

/// The evidence an enclave presents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Evidence {
    /// A DCAP quote (SGX v3, TDX v4/v5), with its collateral if the host fetched it.
    Dcap {
        /// The raw quote.
        quote: Bytes,
        /// The collateral (`QuoteCollateralV3` JSON); `None`: the SMS's cached files.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        collateral: Option<serde_json::Value>,
    },
    /// An INSECURE simulated quote.
    Simulated(SimulatedQuote),
}

impl Evidence {
    /// A digest of the evidence: the SMS refuses to see the same quote twice.
    pub fn digest(&self) -> B256 {
        match self {
            Self::Dcap { quote, .. } => keccak256(quote),
            Self::Simulated(quote) => keccak256(
                [quote.measurement.as_ref(), quote.report_data.as_ref(), quote.signature.as_ref()]
                    .concat(),
            ),
        }
    }
}

/// The INSECURE simulation of a quote: a measurement and report data signed by a simulation
/// key. Whoever holds the key can forge one; it only stands in for hardware in tests and
/// demonstrations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulatedQuote {
    /// What the simulated enclave measured: the sha256 of the app module it runs.
    pub measurement: Bytes,
    /// 64 bytes of report data.
    pub report_data: Bytes,
    /// The simulation key's signature of [`SimulatedQuote::signing_hash`].
    pub signature: Bytes,
}

impl SimulatedQuote {
    /// `keccak256("poco-simulated-quote-v1" ‖ u32_be(len) ‖ measurement ‖ report data)`.
    pub fn signing_hash(measurement: &[u8], report_data: &[u8]) -> B256 {
        let mut message = b"poco-simulated-quote-v1".to_vec();
        message.extend_from_slice(&(measurement.len() as u32).to_be_bytes());
        message.extend_from_slice(measurement);
        message.extend_from_slice(report_data);
        keccak256(message)
    }

    /// A simulated quote of `measurement` and `report_data`, signed with `key`.
    pub fn sign<S: SignerSync + ?Sized>(
        key: &S,
        measurement: &[u8],
        report_data: [u8; 64],
    ) -> Result<Self> {
        let signature = signature::sign_hash(key, Self::signing_hash(measurement, &report_data))?;
        Ok(Self {
            measurement: Bytes::copy_from_slice(measurement),
            report_data: Bytes::copy_from_slice(&report_data),
            signature,
        })
    }

    /// The simulation key that signed it.
    pub fn signer(&self) -> Result<Address> {
        Ok(signature::recover_signer(
            Self::signing_hash(&self.measurement, &self.report_data),
            &self.signature,
        )?)
    }
}

/// The report data binding a quote to one session: `sha256("poco-sms-session-v1" ‖ taskid ‖
/// nonce ‖ enclave key)`, then 32 zero bytes.
pub fn session_report_data(task_id: B256, nonce: B256, enclave_key: &str) -> [u8; 64] {
    let mut hasher = Sha256::new();
    hasher.update(b"poco-sms-session-v1");
    hasher.update(task_id);
    hasher.update(nonce);
    hasher.update(enclave_key.as_bytes());
    let mut data = [0u8; 64];
    data[..32].copy_from_slice(&hasher.finalize());
    data
}

/// The measurement a simulated enclave reports for a WASM app: the sha256 of its module. A TEE
/// app meant for simulation registers it as its `mrenclave`.
pub fn simulated_measurement(module: &[u8]) -> B256 {
    B256::from(<[u8; 32]>::from(Sha256::digest(module)))
}

/// What an app registered as its enclave measurement (the registry's `mrenclave` bytes).
///
/// Accepted forms: a JSON object `{"measurement": "0x..."}` (`mrenclave`, `mrtd` and
/// `fingerprint` are synonyms of `measurement`), optionally with `"rtmr0"`..`"rtmr3"` for TDX;
/// or the raw measurement bytes (32 for MRENCLAVE or a simulation, 48 for MRTD).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppMeasurement {
    /// MRENCLAVE, MRTD or the simulated measurement.
    pub measurement: Vec<u8>,
    /// TDX runtime measurement registers to check, by index.
    pub rtmrs: Vec<(usize, Vec<u8>)>,
}

impl AppMeasurement {
    /// Parses an app's registered `mrenclave`.
    pub fn parse(mrenclave: &[u8]) -> Result<Self> {
        let refuse = |reason: &str| Error::Attestation(format!("the app's mrenclave {reason}"));
        if mrenclave.is_empty() {
            return Err(refuse("is empty: it is not a TEE app"));
        }
        if mrenclave.first() == Some(&b'{') {
            let json: serde_json::Value =
                serde_json::from_slice(mrenclave).map_err(|_| refuse("is not valid JSON"))?;
            let field = |name: &str| json.get(name).and_then(|v| v.as_str());
            let text = ["measurement", "mrenclave", "mrtd", "fingerprint"]
                .iter()
                .find_map(|name| field(name))
                .ok_or_else(|| refuse("has no measurement"))?;
            let decode = |text: &str| hex::decode(text.trim_start_matches("0x"));
            let measurement = decode(text).map_err(|_| refuse("measurement is not hex"))?;
            let mut rtmrs = Vec::new();
            for index in 0..4 {
                if let Some(text) = field(&format!("rtmr{index}")) {
                    rtmrs.push((index, decode(text).map_err(|_| refuse("rtmr is not hex"))?));
                }
            }
            return Ok(Self { measurement, rtmrs });
        }
        if matches!(mrenclave.len(), 32 | 48) {
            return Ok(Self { measurement: mrenclave.to_vec(), rtmrs: Vec::new() });
        }
        Err(refuse("is neither JSON nor a 32- or 48-byte measurement"))
    }

    /// The `mrenclave` bytes to register for `measurement` (the JSON form).
    pub fn encode(measurement: &[u8]) -> Bytes {
        Bytes::from(
            serde_json::json!({ "measurement": format!("0x{}", hex::encode(measurement)) })
                .to_string()
                .into_bytes(),
        )
    }
}
