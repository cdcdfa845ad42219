//! Attestation: how the SMS verifies what an enclave shows before it gets any secret.
//!
//! A real Intel **DCAP quote** (SGX or TDX) is verified with the `dcap-qvl` crate against
//! Intel's root of trust and collateral handled offline (cached files, or sent by the
//! enclave's host: collateral is signed by Intel); an **INSECURE simulated quote** is accepted
//! only when signed by a simulation key the SMS is configured to trust. The formats are
//! [`poco_api::sms::attestation`]; this module checks the measurement, the report data and
//! the framework the deal asks for.

use alloy::primitives::Address;
use dcap_qvl::{QuoteCollateralV3, quote::Report, verify::QuoteVerifier};
use poco_api::sms::attestation::{AppMeasurement, SIMULATION_LABEL, SimulatedQuote};
use poco_primitives::TeeFramework;

use crate::{
    config::DcapConfig,
    error::{Error, Result},
};

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
    use alloy::{
        primitives::{B256, Bytes},
        signers::local::PrivateKeySigner,
    };
    use poco_api::sms::attestation::session_report_data;

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
