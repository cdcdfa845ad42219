//! The SMS's configuration.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use alloy::primitives::Address;

/// Everything [`crate::serve`] needs.
#[derive(Debug, Clone)]
pub struct SmsConfig {
    /// The chain's JSON-RPC endpoint.
    pub rpc_url: String,
    /// The protocol contract.
    pub poco: Address,
    /// `sqlite://<file>` (default, under the data directory) or `postgres://...`.
    pub database_url: String,
    /// The file holding the master key that seals every secret at rest; created (mode 0600)
    /// with a random key on first start.
    pub master_key_file: PathBuf,
    /// How enclaves prove themselves.
    pub attestation: AttestationConfig,
    /// How long an enclave has to attest after its worker opened a session.
    pub session_ttl: Duration,
    /// How far a signed request's timestamp may be from the SMS's clock (either way), counted
    /// in whole seconds.
    pub max_request_age: Duration,
    /// Largest secret accepted, in bytes.
    pub max_secret_bytes: usize,
    /// The SMS's clock (the system's, or a manual one in tests).
    pub clock: Clock,
    /// The URL clients and schedulers reach the SMS at, told by `GET /status`; `None` tells
    /// none.
    pub public_url: Option<String>,
}

impl SmsConfig {
    /// A configuration with the defaults: real DCAP attestation only (no simulation), sessions
    /// valid 60 s, requests within 5 min, secrets up to 4096 bytes.
    pub fn new(
        rpc_url: impl Into<String>,
        poco: Address,
        database_url: impl Into<String>,
        master_key_file: impl Into<PathBuf>,
    ) -> Self {
        Self {
            rpc_url: rpc_url.into(),
            poco,
            database_url: database_url.into(),
            master_key_file: master_key_file.into(),
            attestation: AttestationConfig::default(),
            session_ttl: Duration::from_secs(60),
            max_request_age: Duration::from_secs(300),
            max_secret_bytes: 4096,
            clock: Clock::system(),
            public_url: None,
        }
    }
}

/// How enclaves prove themselves to the SMS.
#[derive(Debug, Clone, Default)]
pub struct AttestationConfig {
    /// Real Intel SGX/TDX quotes, verified with DCAP.
    pub dcap: DcapConfig,
    /// The INSECURE simulation: `None` (the default) refuses every simulated quote.
    pub simulation: Option<SimulationConfig>,
}

/// DCAP verification of SGX and TDX quotes, with collateral handled offline.
#[derive(Debug, Clone)]
pub struct DcapConfig {
    /// A directory of cached collateral files (`*.json`, the `QuoteCollateralV3` JSON a PCCS
    /// serves), tried in turn when an enclave sends none. Collateral is signed by Intel, so the
    /// SMS also accepts it from the enclave's host; it never fetches any itself.
    pub collateral_dir: Option<PathBuf>,
    /// The verification time, in seconds since the Unix epoch: `None` for the clock's time.
    /// Fixed in tests, so that sample collateral stays valid.
    pub verification_time: Option<u64>,
    /// TCB statuses accepted (`UpToDate`, `SWHardeningNeeded`, ...). `OutOfDate`, `Revoked`
    /// and anything unlisted are refused.
    pub accepted_tcb_statuses: Vec<String>,
}

impl Default for DcapConfig {
    fn default() -> Self {
        Self {
            collateral_dir: None,
            verification_time: None,
            accepted_tcb_statuses: vec![
                "UpToDate".into(),
                "SWHardeningNeeded".into(),
                "ConfigurationNeeded".into(),
                "ConfigurationAndSWHardeningNeeded".into(),
            ],
        }
    }
}

/// The INSECURE simulation mode, for machines without SGX or TDX: a "quote" is a structure
/// signed by a simulation key this SMS trusts. It proves nothing about the hardware: whoever
/// holds a trusted simulation key can impersonate an enclave. It is refused for deals that ask
/// for a hardware framework (Scone, Gramine, TDX); plain TEE-tagged deals may use it.
#[derive(Debug, Clone)]
pub struct SimulationConfig {
    /// The addresses whose simulated quotes are accepted.
    pub trusted_signers: Vec<Address>,
}

/// A clock, in milliseconds since the Unix epoch (what the SMS stores) and in seconds (what it
/// says and reads on the wire): the system's, or a manual one for tests.
#[derive(Debug, Clone)]
pub struct Clock(Option<Arc<AtomicU64>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that shows `start_ms` until moved with [`Clock::advance`].
    pub fn manual(start_ms: u64) -> Self {
        Self(Some(Arc::new(AtomicU64::new(start_ms))))
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance(&self, by: Duration) {
        if let Some(now) = &self.0 {
            now.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
        }
    }

    /// The time, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        match &self.0 {
            Some(now) => now.load(Ordering::SeqCst),
            None => system_ms(),
        }
    }

    /// The time, in whole seconds since the Unix epoch: the unit of every time on the SMS's
    /// wire (request timestamps, session expiries).
    pub fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// The system time, in milliseconds since the Unix epoch.
fn system_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
