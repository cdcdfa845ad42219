//! DCAP verification on real Intel quotes and collateral (`tests/data/dcap`, see its README):
//! genuine SGX and TDX quotes verify offline and yield what the SMS checks (measurement, RTMRs,
//! report data); a flipped byte in a quote's signed body or in its signature, altered or
//! foreign collateral, expired collateral and a TCB status outside the accepted list are all
//! refused. Then the same quotes go through a running SMS's session path, where a genuine quote
//! of the wrong enclave, or one that does not bind the session, is refused.
//!
//! # Verification time
//!
//! Collateral is valid for about a month, so the tests verify at a fixed time inside the
//! samples' validity windows (the intersection of the TCB info's and the QE identity's
//! `issueDate`..`nextUpdate` and of the two CRLs' `thisUpdate`..`nextUpdate`):
//!
//! * SGX sample: 2025-06-19T10:56:11Z to 2025-07-19T10:01:18Z;
//! * TDX sample: 2025-06-19T10:32:27Z to 2025-07-19T10:00:35Z;
//! * outdated TDX sample: 2026-02-18T10:58:51Z to 2026-03-20T10:41:15Z.
//!
//! [`SAMPLES_VALID_AT`], 2025-07-01T00:00:00Z, sits well inside the first two, and
//! [`OUTDATED_SAMPLE_VALID_AT`], 2026-03-01T00:00:00Z, inside the third.

use std::{path::PathBuf, time::Duration};

use alloy::primitives::{Address, B256, Bytes};
use dcap_qvl::QuoteCollateralV3;
use poco_api::sms::{AppMeasurement, AttestRequest, Evidence, ResultKeyPair, SmsClient};
use poco_primitives::{Tag, TeeFramework};
use poco_sms::{
    DcapConfig, Error, SmsConfig,
    attestation::{Attested, parse_collateral, verify_dcap},
};
use poco_test_utils::wait_until;
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::common::{Fixture, PARAMS, refused};

const SGX_QUOTE: &[u8] = include_bytes!("../data/dcap/sgx_quote");
const SGX_COLLATERAL: &[u8] = include_bytes!("../data/dcap/sgx_quote_collateral.json");
const TDX_QUOTE: &[u8] = include_bytes!("../data/dcap/tdx_quote");
const TDX_COLLATERAL: &[u8] = include_bytes!("../data/dcap/tdx_quote_collateral.json");
const OUTDATED_TDX_QUOTE: &[u8] = include_bytes!("../data/dcap/tdx_quote_outdated");
const OUTDATED_TDX_COLLATERAL: &[u8] =
    include_bytes!("../data/dcap/tdx_quote_outdated_collateral.json");

/// 2025-07-01T00:00:00Z: inside the validity windows of the SGX and TDX samples' collateral.
const SAMPLES_VALID_AT: u64 = 1_751_328_000;
/// 2026-03-01T00:00:00Z: inside the validity window of the outdated TDX sample's collateral.
const OUTDATED_SAMPLE_VALID_AT: u64 = 1_772_323_200;
/// One day, in seconds.
const DAY: u64 = 86_400;

// The layout of the quotes (Intel's SGX ECDSA Quote Library reference, and the TDX DCAP
// Quoting Library API): a 48-byte header, then the report body the attestation key signs, then
// the 4-byte length of the signature data, whose first 64 bytes are the ECDSA signature of
// header and body.

/// SGX quote v3: the 384-byte enclave report follows the header.
const SGX_BODY: usize = 48;
/// MRENCLAVE: 32 bytes at offset 64 of the enclave report.
const SGX_MRENCLAVE: std::ops::Range<usize> = SGX_BODY + 64..SGX_BODY + 96;
/// Report data: 64 bytes at offset 320 of the enclave report.
const SGX_REPORT_DATA: std::ops::Range<usize> = SGX_BODY + 320..SGX_BODY + 384;
/// The quote's ECDSA signature, after the report and the signature data length.
const SGX_SIGNATURE: std::ops::Range<usize> = SGX_BODY + 384 + 4..SGX_BODY + 384 + 4 + 64;

/// TDX quote v4: the 584-byte TD report follows the header.
const TDX_BODY: usize = 48;
/// MRTD: 48 bytes at offset 136 of the TD report.
const TDX_MRTD: std::ops::Range<usize> = TDX_BODY + 136..TDX_BODY + 184;
/// RTMR0: 48 bytes at offset 328 of the TD report, RTMR1..3 right after it.
const TDX_RTMR0: usize = TDX_BODY + 328;
/// Report data: 64 bytes at offset 520 of the TD report.
const TDX_REPORT_DATA: std::ops::Range<usize> = TDX_BODY + 520..TDX_BODY + 584;
/// The quote's ECDSA signature.
const TDX_SIGNATURE: std::ops::Range<usize> = TDX_BODY + 584 + 4..TDX_BODY + 584 + 4 + 64;

/// The SGX sample's MRENCLAVE, as read from its report body.
const SGX_SAMPLE_MRENCLAVE: &str =
    "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb";
/// The TDX sample's MRTD.
const TDX_SAMPLE_MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407\
                               de03ae6dc5f87f27428b2538873118b7";
/// The TDX sample's RTMR0..3.
const TDX_SAMPLE_RTMRS: [&str; 4] = [
    "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0",
    "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378",
    "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132",
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
];
/// The TDX sample's report data.
const TDX_SAMPLE_REPORT_DATA: &str = "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9\
                                      eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20";

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

fn collateral(json: &[u8]) -> QuoteCollateralV3 {
    parse_collateral(json).unwrap()
}

/// Seconds since the Unix epoch of a UTC timestamp `YYYY-MM-DDTHH:MM:SSZ`, the form of the
/// collateral's dates.
fn unix_time(text: &str) -> u64 {
    let number = |range: std::ops::Range<usize>| -> i64 { text[range].parse().unwrap() };
    assert!(text.len() == 20 && text.ends_with('Z'), "{text}");
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    // Days from the civil date (a proleptic Gregorian calendar with years starting in March).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    (days * DAY as i64 + number(11..13) * 3600 + number(14..16) * 60 + number(17..19)) as u64
}

/// The collateral's TCB info and QE identity window: the later `issueDate`, the earlier
/// `nextUpdate`.
fn signed_window(collateral: &QuoteCollateralV3) -> (u64, u64) {
    let dates = |json: &str| {
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        let date = |name: &str| unix_time(value[name].as_str().unwrap());
        (date("issueDate"), date("nextUpdate"))
    };
    let (tcb_issued, tcb_next) = dates(&collateral.tcb_info);
    let (qe_issued, qe_next) = dates(&collateral.qe_identity);
    (tcb_issued.max(qe_issued), tcb_next.min(qe_next))
}

/// Asserts that `outcome` is an attestation refusal (403, `attestation_refused`) and returns its
/// message.
#[track_caller]
fn attestation_refused(outcome: poco_sms::Result<Attested>) -> String {
    match outcome {
        Err(error @ Error::Attestation(_)) => {
            assert_eq!((error.status().as_u16(), error.code()), (403, "attestation_refused"));
            let message = error.to_string();
            assert!(message.starts_with("attestation refused: "), "{message}");
            message
        }
        other => panic!("expected an attestation refusal, got {other:?}"),
    }
}

/// `quote` with byte `index` flipped.
fn flipped(quote: &[u8], index: usize) -> Vec<u8> {
    let mut quote = quote.to_vec();
    quote[index] ^= 0x01;
    quote
}

/// The fixed verification times are the dates they stand for, a day or more inside each
/// sample's TCB info and QE identity window.
#[test]
fn the_fixed_verification_times_are_the_documented_dates_inside_the_collateral_windows() {
    assert_eq!(unix_time("1970-01-01T00:00:00Z"), 0);
    assert_eq!(unix_time("2025-07-01T00:00:00Z"), SAMPLES_VALID_AT);
    assert_eq!(unix_time("2026-03-01T00:00:00Z"), OUTDATED_SAMPLE_VALID_AT);
    for (json, at) in [
        (SGX_COLLATERAL, SAMPLES_VALID_AT),
        (TDX_COLLATERAL, SAMPLES_VALID_AT),
        (OUTDATED_TDX_COLLATERAL, OUTDATED_SAMPLE_VALID_AT),
    ] {
        let (issued, next) = signed_window(&collateral(json));
        assert!(issued + DAY < at && at + DAY < next, "{at} not well inside {issued}..{next}");
    }
}

/// The SGX sample verifies against Intel's root with its collateral and no network, and the
/// SMS reads from it the MRENCLAVE and report data that sit in its signed report body.
#[test]
fn a_genuine_sgx_quote_verifies_offline_and_yields_its_mrenclave_and_report_data() {
    let attested = verify_dcap(
        SGX_QUOTE,
        &collateral(SGX_COLLATERAL),
        SAMPLES_VALID_AT,
        &DcapConfig::default(),
    )
    .unwrap();
    assert_eq!(attested.kind, "dcap-sgx");
    assert!(!attested.simulated);
    assert_eq!(attested.measurement, unhex(SGX_SAMPLE_MRENCLAVE));
    assert_eq!(attested.measurement, SGX_QUOTE[SGX_MRENCLAVE]);
    let mut report_data = [0u8; 64];
    report_data[..13].copy_from_slice(b"Hello, world!");
    assert_eq!(attested.report_data, report_data);
    assert_eq!(attested.report_data, SGX_QUOTE[SGX_REPORT_DATA]);
    assert!(attested.rtmrs.is_empty());
    // A status the default configuration accepts (hardening advised, platform not outdated).
    assert_eq!(attested.tcb_status.as_deref(), Some("ConfigurationAndSWHardeningNeeded"));

    // An SGX quote serves SGX frameworks, not TDX.
    attested.check_framework(Some(TeeFramework::Scone)).unwrap();
    attested.check_framework(Some(TeeFramework::Gramine)).unwrap();
    let message = attested.check_framework(Some(TeeFramework::Tdx)).unwrap_err().to_string();
    assert!(message.contains("dcap-sgx"), "{message}");
}

/// The TDX sample verifies, and yields its MRTD, its four RTMRs and its report data.
#[test]
fn a_genuine_tdx_quote_verifies_and_yields_its_mrtd_and_rtmrs() {
    let attested = verify_dcap(
        TDX_QUOTE,
        &collateral(TDX_COLLATERAL),
        SAMPLES_VALID_AT,
        &DcapConfig::default(),
    )
    .unwrap();
    assert_eq!(attested.kind, "dcap-tdx");
    assert!(!attested.simulated);
    assert_eq!(attested.measurement, unhex(TDX_SAMPLE_MRTD));
    assert_eq!(attested.measurement, TDX_QUOTE[TDX_MRTD]);
    assert_eq!(attested.rtmrs.len(), 4);
    for (index, expected) in TDX_SAMPLE_RTMRS.iter().enumerate() {
        assert_eq!(attested.rtmrs[index], unhex(expected), "RTMR{index}");
        let at = TDX_RTMR0 + 48 * index;
        assert_eq!(attested.rtmrs[index], TDX_QUOTE[at..at + 48], "RTMR{index}");
    }
    assert_eq!(attested.report_data.as_slice(), unhex(TDX_SAMPLE_REPORT_DATA));
    assert_eq!(attested.report_data, TDX_QUOTE[TDX_REPORT_DATA]);
    assert_eq!(attested.tcb_status.as_deref(), Some("UpToDate"));
    attested.check_framework(Some(TeeFramework::Tdx)).unwrap();
    assert!(attested.check_framework(Some(TeeFramework::Scone)).is_err());

    // An app that registered its MRTD and RTMRs accepts it; one RTMR off and it is refused.
    let registered = |rtmr1: &str| {
        let json = serde_json::json!({
            "mrtd": format!("0x{TDX_SAMPLE_MRTD}"),
            "rtmr0": TDX_SAMPLE_RTMRS[0],
            "rtmr1": rtmr1,
        });
        AppMeasurement::parse(json.to_string().as_bytes()).unwrap()
    };
    let report_data = attested.report_data;
    attested.check(&registered(TDX_SAMPLE_RTMRS[1]), &report_data).unwrap();
    let message =
        attested.check(&registered(TDX_SAMPLE_RTMRS[2]), &report_data).unwrap_err().to_string();
    assert!(message.contains("RTMR1"), "{message}");
}

/// One flipped bit in the signed report body (the measurement, the report data) breaks the
/// attestation key's signature: a forged measurement or binding does not pass.
#[test]
fn a_quote_with_one_byte_flipped_in_its_signed_report_body_is_refused() {
    let sgx = collateral(SGX_COLLATERAL);
    let tdx = collateral(TDX_COLLATERAL);
    let config = DcapConfig::default();
    let cases = [
        ("SGX MRENCLAVE", flipped(SGX_QUOTE, SGX_MRENCLAVE.start), &sgx),
        ("SGX report data", flipped(SGX_QUOTE, SGX_REPORT_DATA.start), &sgx),
        ("TDX MRTD", flipped(TDX_QUOTE, TDX_MRTD.start + 7), &tdx),
        ("TDX RTMR3", flipped(TDX_QUOTE, TDX_RTMR0 + 3 * 48), &tdx),
        ("TDX report data", flipped(TDX_QUOTE, TDX_REPORT_DATA.end - 1), &tdx),
    ];
    for (case, quote, collateral) in cases {
        let message =
            attestation_refused(verify_dcap(&quote, collateral, SAMPLES_VALID_AT, &config));
        assert!(message.contains("DCAP verification failed"), "{case}: {message}");
    }
}

/// A flipped byte of the quote's ECDSA signature is refused.
#[test]
fn a_quote_with_a_flipped_signature_byte_is_refused() {
    let config = DcapConfig::default();
    for (case, quote, collateral) in [
        ("SGX", flipped(SGX_QUOTE, SGX_SIGNATURE.start + 5), collateral(SGX_COLLATERAL)),
        ("TDX", flipped(TDX_QUOTE, TDX_SIGNATURE.end - 1), collateral(TDX_COLLATERAL)),
    ] {
        let message =
            attestation_refused(verify_dcap(&quote, &collateral, SAMPLES_VALID_AT, &config));
        assert!(message.contains("DCAP verification failed"), "{case}: {message}");
    }
    // Neither is a truncated quote, nor bytes that are no quote at all.
    let collateral = collateral(SGX_COLLATERAL);
    for quote in [&SGX_QUOTE[..SGX_SIGNATURE.end], &[0u8; 16][..], &[][..]] {
        attestation_refused(verify_dcap(quote, &collateral, SAMPLES_VALID_AT, &config));
    }
}

/// The TCB info is signed by Intel: raising the platform's status, extending the validity, or
/// flipping a byte of the signature is refused; so is the collateral of another platform.
#[test]
fn collateral_whose_tcb_info_was_altered_is_refused() {
    let genuine = collateral(SGX_COLLATERAL);
    let config = DcapConfig::default();
    assert!(genuine.tcb_info.contains("\"ConfigurationAndSWHardeningNeeded\""));
    assert!(genuine.tcb_info.contains("\"2025-07-19T10:56:11Z\""));
    verify_dcap(SGX_QUOTE, &genuine, SAMPLES_VALID_AT, &config).unwrap();

    let mut upgraded = genuine.clone();
    upgraded.tcb_info = genuine
        .tcb_info
        .replace("\"ConfigurationAndSWHardeningNeeded\"", "\"UpToDate\"")
        .replace("\"OutOfDate\"", "\"UpToDate\"");
    let mut extended = genuine.clone();
    extended.tcb_info =
        genuine.tcb_info.replace("\"2025-07-19T10:56:11Z\"", "\"2035-07-19T10:56:11Z\"");
    let mut resigned = genuine;
    resigned.tcb_info_signature[10] ^= 0x01;
    for (case, collateral) in
        [("status raised", upgraded), ("validity extended", extended), ("signature", resigned)]
    {
        let message =
            attestation_refused(verify_dcap(SGX_QUOTE, &collateral, SAMPLES_VALID_AT, &config));
        assert!(message.contains("DCAP verification failed"), "{case}: {message}");
        assert!(message.to_lowercase().contains("tcb"), "{case}: {message}");
    }

    // Genuine collateral, but of a TDX platform: the SGX quote does not verify against it.
    attestation_refused(verify_dcap(
        SGX_QUOTE,
        &collateral(TDX_COLLATERAL),
        SAMPLES_VALID_AT,
        &config,
    ));
    // Bytes that are no collateral at all.
    let message = parse_collateral(b"{\"tcb_info\": 1}").unwrap_err().to_string();
    assert!(message.contains("QuoteCollateralV3"), "{message}");
}

/// Collateral is good until its `nextUpdate`: after it (a day after, or today on the machine's
/// clock), and before it was issued, the same genuine quotes are refused.
#[test]
fn verification_after_the_collateral_expired_is_refused() {
    let config = DcapConfig::default();
    for (case, quote, json) in
        [("SGX", SGX_QUOTE, SGX_COLLATERAL), ("TDX", TDX_QUOTE, TDX_COLLATERAL)]
    {
        let collateral = collateral(json);
        verify_dcap(quote, &collateral, SAMPLES_VALID_AT, &config).unwrap();
        let (issued, next_update) = signed_window(&collateral);
        let message =
            attestation_refused(verify_dcap(quote, &collateral, next_update + DAY, &config));
        assert!(message.to_lowercase().contains("expired"), "{case}: {message}");
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert!(now > next_update, "the machine's clock is before the samples expired");
        attestation_refused(verify_dcap(quote, &collateral, now, &config));
        attestation_refused(verify_dcap(quote, &collateral, issued - DAY, &config));
    }
}

/// A genuine quote whose TCB status is not in `accepted_tcb_statuses` is refused, and the
/// refusal names the status: the SGX sample (`ConfigurationAndSWHardeningNeeded`) under a
/// configuration that accepts nothing, or only `UpToDate`. Accepting its status lets the same
/// quote pass: the refusal is the policy's, not a broken signature.
#[test]
fn a_tcb_status_not_accepted_by_the_configuration_is_refused() {
    let sgx = collateral(SGX_COLLATERAL);
    for accepted in [vec![], vec!["UpToDate".to_owned()]] {
        let config = DcapConfig { accepted_tcb_statuses: accepted, ..DcapConfig::default() };
        let message = attestation_refused(verify_dcap(SGX_QUOTE, &sgx, SAMPLES_VALID_AT, &config));
        assert!(
            message.contains("ConfigurationAndSWHardeningNeeded")
                && message.contains("not accepted"),
            "{message}"
        );
    }
    let exactly = DcapConfig {
        accepted_tcb_statuses: vec!["ConfigurationAndSWHardeningNeeded".into()],
        ..DcapConfig::default()
    };
    verify_dcap(SGX_QUOTE, &sgx, SAMPLES_VALID_AT, &exactly).unwrap();
}

/// The outdated TDX platform's TCB is older than every level its (genuine, current) TCB info
/// lists: it has no status to accept, and is refused whatever the configuration accepts,
/// `OutOfDate` and `Revoked` included.
#[test]
fn a_platform_below_every_tcb_level_is_refused_whatever_the_accepted_statuses() {
    let outdated = collateral(OUTDATED_TDX_COLLATERAL);
    let everything = DcapConfig {
        accepted_tcb_statuses: [
            "UpToDate",
            "SWHardeningNeeded",
            "ConfigurationNeeded",
            "ConfigurationAndSWHardeningNeeded",
            "OutOfDate",
            "OutOfDateConfigurationNeeded",
            "Revoked",
        ]
        .map(str::to_owned)
        .to_vec(),
        ..DcapConfig::default()
    };
    for config in [DcapConfig::default(), everything] {
        let message = attestation_refused(verify_dcap(
            OUTDATED_TDX_QUOTE,
            &outdated,
            OUTDATED_SAMPLE_VALID_AT,
            &config,
        ));
        assert!(message.contains("DCAP verification failed"), "{message}");
        assert!(message.contains("TCB"), "{message}");
    }
}

// ------------------------------------------------------------------------ through the SMS

/// The directory of the sample quotes and collateral: the DCAP SMS's cached collateral (it
/// reads the `*.json` files).
fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/dcap")
}

/// A second SMS beside the fixture's, on the same chain: real DCAP only (no simulation),
/// verifying at [`SAMPLES_VALID_AT`], with the samples' collateral cached.
struct DcapSms {
    url: String,
    _dir: TempDir,
    running: (JoinHandle<()>, oneshot::Sender<()>),
}

impl DcapSms {
    async fn start(fixture: &Fixture) -> Self {
        Self::with_cache(fixture, &samples_dir()).await
    }

    /// The same SMS with the collateral files of `cache`.
    async fn with_cache(fixture: &Fixture, cache: &std::path::Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = fixture.config();
        let mut config = SmsConfig::new(
            base.rpc_url,
            base.poco,
            format!("sqlite://{}", dir.path().join("sms.db").display()),
            dir.path().join("master.key"),
        );
        config.clock = fixture.clock.clone();
        config.attestation.dcap.verification_time = Some(SAMPLES_VALID_AT);
        config.attestation.dcap.collateral_dir = Some(cache.to_path_buf());
        assert!(config.attestation.simulation.is_none());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            poco_sms::serve(config, listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("the DCAP SMS runs");
        });
        let client = SmsClient::new(&url);
        wait_until("the DCAP SMS answers", Duration::from_secs(30), || async {
            client.status().await.is_ok()
        })
        .await;
        Self { url, _dir: dir, running: (handle, stop) }
    }

    fn client(&self) -> SmsClient {
        SmsClient::new(&self.url)
    }
}

impl Drop for DcapSms {
    fn drop(&mut self) {
        self.running.0.abort();
    }
}

/// Registers a TEE app whose `mrenclave` is `measurement`, and makes it the fixture's app.
async fn register_app(fixture: &mut Fixture, name: &str, measurement: &[u8]) -> Address {
    let checksum = B256::from(<[u8; 32]>::from(Sha256::digest(&fixture.module)));
    let owner = fixture.net.accounts().app_provider.clone();
    fixture.app = fixture
        .net
        .create_tee_app(
            &owner,
            name,
            "https://apps.example/enclave.wasm",
            checksum,
            AppMeasurement::encode(measurement),
        )
        .await;
    fixture.app
}

/// A deal of the fixture's app with `tag`, its first task ACTIVE with a challenge of `sms`,
/// and an open session of worker 0 on it.
async fn open_session(fixture: &mut Fixture, sms: &SmsClient, tag: Tag) -> B256 {
    let deal = fixture.deal(tag, PARAMS).await;
    let challenge = sms.challenge(fixture.scheduler(), &deal, deal.botFirst).await.unwrap().address;
    let task_id = fixture.initialize(&deal).await;
    let worker = fixture.worker(0).clone();
    let request = Fixture::session_request(
        &deal,
        PARAMS,
        fixture.authorize(worker.address(), task_id, challenge),
    );
    sms.open_session(&worker, &request).await.unwrap().session_id
}

/// A DCAP attestation of `quote`, with its collateral sent along or not.
fn dcap(quote: &[u8], collateral: Option<&[u8]>) -> AttestRequest {
    AttestRequest {
        evidence: Evidence::Dcap {
            quote: Bytes::copy_from_slice(quote),
            collateral: collateral.map(|json| serde_json::from_slice(json).unwrap()),
        },
        enclave_key: ResultKeyPair::generate().recipient(),
    }
}

/// Through the session path: a genuine, verified SGX quote whose MRENCLAVE is not the app's
/// registered one is refused, and the refusal names both measurements. Its flipped-byte forgery
/// claiming the app's measurement fails verification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sms_refuses_a_genuine_quote_whose_mrenclave_is_not_the_apps() {
    let mut fixture = Fixture::start().await;
    let sms = DcapSms::start(&fixture).await;
    let client = sms.client();
    let status = client.status().await.unwrap();
    assert!(status.dcap && !status.simulation && status.warning.is_none());
    let mut other = unhex(SGX_SAMPLE_MRENCLAVE);
    other[0] ^= 0xff;
    register_app(&mut fixture, "tee-other-enclave", &other).await;
    let session = open_session(&mut fixture, &client, Tag::SCONE).await;
    let worker = fixture.worker(0).clone();

    let message = refused(
        client.attest(&worker, session, &dcap(SGX_QUOTE, Some(SGX_COLLATERAL))).await,
        403,
        "attestation_refused",
    );
    assert!(message.contains("measurement"), "{message}");
    assert!(message.contains(SGX_SAMPLE_MRENCLAVE) && message.contains(&hex::encode(&other)));

    let mut forged = SGX_QUOTE.to_vec();
    forged[SGX_MRENCLAVE].copy_from_slice(&other);
    let message = refused(
        client.attest(&worker, session, &dcap(&forged, Some(SGX_COLLATERAL))).await,
        403,
        "attestation_refused",
    );
    assert!(message.contains("DCAP verification failed"), "{message}");
}

/// Through the session path, for an app registered with the SGX sample's MRENCLAVE: the quote
/// verifies (collateral sent along or from the SMS's cache) and its measurement matches, but it
/// does not bind this session's task, nonce and enclave key, so no secret is released. A TDX
/// quote for the same Scone deal is refused for its framework; an SMS on the machine's clock
/// refuses the samples' expired collateral, and with no collateral at all, says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sms_refuses_a_genuine_quote_of_the_apps_enclave_that_does_not_bind_the_session() {
    let mut fixture = Fixture::start().await;
    let sms = DcapSms::start(&fixture).await;
    let client = sms.client();
    register_app(&mut fixture, "tee-sgx-sample", &unhex(SGX_SAMPLE_MRENCLAVE)).await;
    let session = open_session(&mut fixture, &client, Tag::SCONE).await;
    let worker = fixture.worker(0).clone();

    for collateral in [Some(SGX_COLLATERAL), None] {
        let message = refused(
            client.attest(&worker, session, &dcap(SGX_QUOTE, collateral)).await,
            403,
            "attestation_refused",
        );
        assert!(message.contains("report data"), "{message}");
    }
    let message = refused(
        client.attest(&worker, session, &dcap(TDX_QUOTE, Some(TDX_COLLATERAL))).await,
        403,
        "attestation_refused",
    );
    assert!(message.contains("Scone") && message.contains("dcap-tdx"), "{message}");

    // The fixture's SMS: DCAP on the machine's clock, no cached collateral.
    let live = fixture.sms();
    let session = open_session(&mut fixture, &live, Tag::SCONE).await;
    let message = refused(
        live.attest(&worker, session, &dcap(SGX_QUOTE, Some(SGX_COLLATERAL))).await,
        403,
        "attestation_refused",
    );
    assert!(message.to_lowercase().contains("expired"), "{message}");
    let message = refused(
        live.attest(&worker, session, &dcap(SGX_QUOTE, None)).await,
        403,
        "attestation_refused",
    );
    assert!(message.contains("no collateral"), "{message}");
}

/// Every cached collateral file is tried: a malformed one does not keep the others from
/// verifying, and when none verifies, the refusal names each file with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_collateral_files_are_each_tried_and_each_refusal_named() {
    let mut fixture = Fixture::start().await;
    let cache = tempfile::tempdir().unwrap();
    std::fs::write(cache.path().join("0-broken.json"), b"{ not json").unwrap();
    std::fs::write(cache.path().join("1-tdx.json"), TDX_COLLATERAL).unwrap();
    let sms = DcapSms::with_cache(&fixture, cache.path()).await;
    let client = sms.client();
    register_app(&mut fixture, "tee-sgx-sample", &unhex(SGX_SAMPLE_MRENCLAVE)).await;
    let session = open_session(&mut fixture, &client, Tag::SCONE).await;
    let worker = fixture.worker(0).clone();

    let message = refused(
        client.attest(&worker, session, &dcap(SGX_QUOTE, None)).await,
        403,
        "attestation_refused",
    );
    assert!(message.contains("0-broken.json: collateral is not QuoteCollateralV3"), "{message}");
    assert!(message.contains("1-tdx.json: "), "{message}");

    // The SGX sample's collateral, after the broken file: the quote verifies, and is refused
    // only because it does not bind this session.
    std::fs::write(cache.path().join("2-sgx.json"), SGX_COLLATERAL).unwrap();
    let message = refused(
        client.attest(&worker, session, &dcap(SGX_QUOTE, None)).await,
        403,
        "attestation_refused",
    );
    assert!(message.contains("report data"), "{message}");
}
