//! Attestation: what an enclave shows the SMS before it gets any secret.
//!
//! Evidence is either a real Intel **DCAP quote** (SGX or TDX), verified with the `dcap-qvl`
//! crate against Intel's root of trust and collateral handled offline (cached files, or sent
//! by the enclave's host: collateral is signed by Intel), or an **INSECURE simulated quote**: a
//! structure signed by a simulation key the SMS is configured to trust, for machines without
//! SGX or TDX. Either way the SMS then checks, for the session:
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
use dcap_qvl::{QuoteCollateralV3, quote::Report, verify::QuoteVerifier};
use poco_primitives::{TeeFramework, signature};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    config::DcapConfig,
    error::{Error, Result},
};

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

/// What a verified piece of evidence says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attested {
    /// `dcap-sgx`, `dcap-tdx` or [`SIMULATION_LABEL`].
    pub kind: &'static str,
    /// Whether it is the INSECURE simulation.
    pub simulated: bool,
    /// MRENCLAVE, MRTD or the simulated measurement.
    pub measurement: Vec<u8>,
    /// TDX RTMR0..3 (empty otherwise).
    pub rtmrs: Vec<Vec<u8>>,
    /// The 64 bytes of report data.
    pub report_data: [u8; 64],
    /// The TCB status (DCAP only).
    pub tcb_status: Option<String>,
}

impl Attested {
    /// Checks the measurement against the app's, and the report data against `expected`.
    pub fn check(&self, app: &AppMeasurement, expected_report_data: &[u8; 64]) -> Result<()> {
        if self.measurement != app.measurement {
            return Err(Error::Attestation(format!(
                "the enclave's measurement 0x{} is not the app's registered 0x{}",
                hex::encode(&self.measurement),
                hex::encode(&app.measurement)
            )));
        }
        for (index, expected) in &app.rtmrs {
            if self.rtmrs.get(*index) != Some(expected) {
                return Err(Error::Attestation(format!(
                    "RTMR{index} is not the app's registered value"
                )));
            }
        }
        if &self.report_data != expected_report_data {
            return Err(Error::Attestation(
                "the report data does not bind this task, session nonce and enclave key \
                 (stale, replayed or foreign quote)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Checks that this kind of evidence may serve a deal asking for `framework`.
    pub fn check_framework(&self, framework: Option<TeeFramework>) -> Result<()> {
        let name = |framework| match framework {
            TeeFramework::Scone => "Scone",
            TeeFramework::Gramine => "Gramine",
            TeeFramework::Tdx => "TDX",
        };
        match (framework, self.kind) {
            (None, _) => Ok(()),
            (Some(framework), _) if self.simulated => {
                Err(Error::SimulationRefused(name(framework)))
            }
            (Some(TeeFramework::Scone | TeeFramework::Gramine), "dcap-sgx")
            | (Some(TeeFramework::Tdx), "dcap-tdx") => Ok(()),
            (Some(framework), kind) => Err(Error::Attestation(format!(
                "the deal asks for {}, but the quote is {kind}",
                name(framework)
            ))),
        }
    }
}

/// Verifies a DCAP quote with `collateral` at `now_secs`: Intel's chain, the collateral's
/// signatures and validity, the QE and the quote's signatures, the TCB status among the
/// accepted ones, no debug enclave.
pub fn verify_dcap(
    quote: &[u8],
    collateral: &QuoteCollateralV3,
    now_secs: u64,
    config: &DcapConfig,
) -> Result<Attested> {
    let verifier = QuoteVerifier::new_prod().with_config::<dcap_qvl::configs::RustCryptoConfig>();
    let report = verifier
        .verify(quote, collateral, now_secs)
        .map_err(|e| Error::Attestation(format!("DCAP verification failed: {e:#}")))?;
    if !config.accepted_tcb_statuses.contains(&report.status) {
        return Err(Error::Attestation(format!(
            "the platform's TCB status {} is not accepted",
            report.status
        )));
    }
    let tcb_status = Some(report.status.clone());
    Ok(match &report.report {
        Report::SgxEnclave(enclave) => Attested {
            kind: "dcap-sgx",
            simulated: false,
            measurement: enclave.mr_enclave.to_vec(),
            rtmrs: Vec::new(),
            report_data: enclave.report_data,
            tcb_status,
        },
        other => {
            let td =
                other.as_td10().ok_or_else(|| Error::Attestation("unknown report type".into()))?;
            Attested {
                kind: "dcap-tdx",
                simulated: false,
                measurement: td.mr_td.to_vec(),
                rtmrs: [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3]
                    .iter()
                    .map(|r| r.to_vec())
                    .collect(),
                report_data: td.report_data,
                tcb_status,
            }
        }
    })
}

/// Verifies a simulated quote: signed by one of `trusted` simulation keys.
pub fn verify_simulated(quote: &SimulatedQuote, trusted: &[Address]) -> Result<Attested> {
    let signer = quote
        .signer()
        .map_err(|e| Error::Attestation(format!("simulated quote signature: {e}")))?;
    if !trusted.contains(&signer) {
        return Err(Error::Attestation(format!(
            "the simulated quote is signed by {signer}, not a trusted simulation key"
        )));
    }
    let report_data: [u8; 64] = quote
        .report_data
        .as_ref()
        .try_into()
        .map_err(|_| Error::Attestation("report data must be 64 bytes".into()))?;
    Ok(Attested {
        kind: SIMULATION_LABEL,
        simulated: true,
        measurement: quote.measurement.to_vec(),
        rtmrs: Vec::new(),
        report_data,
        tcb_status: None,
    })
}

/// Parses collateral JSON (`QuoteCollateralV3`).
pub fn parse_collateral(json: &[u8]) -> Result<QuoteCollateralV3> {
    serde_json::from_slice(json)
        .map_err(|e| Error::Attestation(format!("collateral is not QuoteCollateralV3 JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use alloy::signers::local::PrivateKeySigner;

    use super::*;

    #[test]
    fn simulated_quotes_recover_their_key_and_refuse_others() {
        let key = PrivateKeySigner::random();
        let data = session_report_data(B256::repeat_byte(1), B256::repeat_byte(2), "age1xyz");
        let quote = SimulatedQuote::sign(&key, &[9; 32], data).unwrap();
        let attested = verify_simulated(&quote, &[key.address()]).unwrap();
        assert!(attested.simulated);
        assert_eq!(attested.report_data, data);
        assert!(verify_simulated(&quote, &[PrivateKeySigner::random().address()]).is_err());
        let mut forged = quote;
        forged.measurement = Bytes::from(vec![8; 32]);
        assert!(verify_simulated(&forged, &[key.address()]).is_err());
    }

    #[test]
    fn measurements_and_bindings_are_checked() {
        let app = AppMeasurement::parse(&AppMeasurement::encode(&[9; 32])).unwrap();
        assert_eq!(app.measurement, vec![9; 32]);
        assert_eq!(AppMeasurement::parse(&[9; 32]).unwrap(), app);
        assert!(AppMeasurement::parse(b"").is_err());
        assert!(AppMeasurement::parse(b"junk").is_err());
        let data = session_report_data(B256::ZERO, B256::ZERO, "k");
        let attested = Attested {
            kind: SIMULATION_LABEL,
            simulated: true,
            measurement: vec![9; 32],
            rtmrs: vec![],
            report_data: data,
            tcb_status: None,
        };
        attested.check(&app, &data).unwrap();
        let other = session_report_data(B256::ZERO, B256::repeat_byte(1), "k");
        assert!(attested.check(&app, &other).is_err());
        let wrong = AppMeasurement { measurement: vec![1; 32], rtmrs: vec![] };
        assert!(attested.check(&wrong, &data).is_err());
        attested.check_framework(None).unwrap();
        for framework in [TeeFramework::Scone, TeeFramework::Gramine, TeeFramework::Tdx] {
            assert!(matches!(
                attested.check_framework(Some(framework)),
                Err(Error::SimulationRefused(_))
            ));
        }
    }
}
