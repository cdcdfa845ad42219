//! The worker's TEE backend: how it runs a task of a TEE deal inside an enclave boundary.
//!
//! A task of a deal with the TEE tag runs in three stages, all inside the boundary:
//! 1. **pre-compute**: the worker opens a session with the SMS (with the scheduler's
//!    authorization, for the task's enclave challenge); the enclave generates a session key,
//!    quotes the app it measured with the session's nonce and key in the report data, and gets
//!    the secrets encrypted to that key: the dataset key, the requester secrets, the app
//!    developer secret, the beneficiary's result key and the challenge private key. It then
//!    fetches the encrypted dataset (checked against its on-chain checksum), decrypts it into
//!    the enclave's workspace, and fetches the input files there;
//! 2. the **app** runs in the WebAssembly sandbox on that workspace, with the requester
//!    secrets as `IEXEC_REQUESTER_SECRET_<n>` and the developer secret as
//!    `IEXEC_APP_DEVELOPER_SECRET`;
//! 3. **post-compute**: the output is packed and, when the deal asks for it
//!    (`"iexec_result_encryption": true`), encrypted for the beneficiary with age
//!    ([`poco_api::sms::ENCRYPTED_RESULT_FILE`]); the digest of that result, the result hash and seal
//!    follow, and the challenge key signs `keccak256(resultHash ‖ resultSeal)` (the enclave
//!    signature the contracts check). The workspace is then wiped.
//!
//! Only the encrypted result leaves the boundary, to the worker's task directory; the dataset
//! plaintext and the secrets never touch the worker's data directory and are never logged.
//!
//! # The enclave boundary
//!
//! Real SGX/TDX enclaves are future work for this worker: [`EnclaveMode`] has one mode, the
//! **INSECURE simulation**, switched on explicitly, for machines without SGX or TDX. Its
//! boundary is a RAM-backed workspace (under `/dev/shm` by default, never the worker's data
//! directory) and its quotes are signed with a simulation key the SMS is configured to trust.
//! It protects nothing from the machine's owner: it exercises the protocol, not the hardware.
//! Every log line of a simulated task says so, and deals that ask for a hardware framework
//! (Scone, Gramine, TDX) are refused.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use alloy::signers::local::PrivateKeySigner;
use poco_api::sms::{Evidence, SIMULATION_LABEL, SimulatedQuote, simulated_measurement};

use crate::{Error, Result};

/// How a worker runs TEE tasks.
#[derive(Clone)]
pub struct TeeConfig {
    /// The SMS's URL.
    pub sms_url: String,
    /// The enclave technology.
    pub enclave: EnclaveMode,
    /// Where enclave workspaces are created: RAM-backed (`/dev/shm` by default), and never
    /// inside the worker's data directory.
    pub workspace_root: PathBuf,
}

impl TeeConfig {
    /// The INSECURE simulated enclave, quoting with `attestation_key`, with workspaces under
    /// `/dev/shm`.
    pub fn simulation(sms_url: impl Into<String>, attestation_key: PrivateKeySigner) -> Self {
        Self {
            sms_url: sms_url.into(),
            enclave: EnclaveMode::Simulation { attestation_key },
            workspace_root: PathBuf::from("/dev/shm"),
        }
    }
}

impl fmt::Debug for TeeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeeConfig")
            .field("sms_url", &self.sms_url)
            .field("enclave", &self.enclave)
            .field("workspace_root", &self.workspace_root)
            .finish()
    }
}

/// The enclave technology a worker offers.
#[derive(Clone)]
#[non_exhaustive]
pub enum EnclaveMode {
    /// The INSECURE simulation: a RAM-backed workspace and quotes signed by a simulation key.
    Simulation {
        /// The simulation key the SMS trusts.
        attestation_key: PrivateKeySigner,
    },
}

impl fmt::Debug for EnclaveMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Simulation { attestation_key } => f
                .debug_struct("Simulation (INSECURE)")
                .field("attestation_key", &attestation_key.address())
                .finish(),
        }
    }
}

impl EnclaveMode {
    /// How the mode is named in logs: the simulation always says it is insecure.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Simulation { .. } => SIMULATION_LABEL,
        }
    }

    /// Whether this is the INSECURE simulation.
    pub fn is_simulation(&self) -> bool {
        matches!(self, Self::Simulation { .. })
    }

    /// The enclave's evidence that it runs `module`, with `report_data`.
    pub fn quote(&self, module: &[u8], report_data: [u8; 64]) -> Result<Evidence> {
        match self {
            Self::Simulation { attestation_key } => {
                let measurement = simulated_measurement(module);
                let quote =
                    SimulatedQuote::sign(attestation_key, measurement.as_slice(), report_data)
                        .map_err(Error::Sms)?;
                Ok(Evidence::Simulated(quote))
            }
        }
    }
}

/// An enclave's workspace: `in/` and `out/` in a private directory (mode 0700) of a RAM-backed
/// file system, removed with everything in it when dropped.
#[derive(Debug)]
pub struct EnclaveWorkspace {
    root: PathBuf,
}

impl EnclaveWorkspace {
    /// Creates a fresh workspace under `parent`.
    pub fn create(parent: &Path) -> Result<Self> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let count = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("poco-enclave-{}-{unique:x}-{count}", std::process::id());
        let root = parent.join(name);
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&root).map_err(|e| Error::io(&root, e))?;
        let workspace = Self { root };
        for dir in [workspace.input(), workspace.output()] {
            std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        Ok(workspace)
    }

    /// The workspace's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The app's input directory.
    pub fn input(&self) -> PathBuf {
        self.root.join("in")
    }

    /// The app's output directory.
    pub fn output(&self) -> PathBuf {
        self.root.join("out")
    }
}

impl Drop for EnclaveWorkspace {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.root)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(path = %self.root.display(), %error, "could not wipe an enclave workspace");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspaces_are_private_and_wiped() {
        let parent = tempfile::tempdir().unwrap();
        let workspace = EnclaveWorkspace::create(parent.path()).unwrap();
        std::fs::write(workspace.input().join("secret"), b"plaintext").unwrap();
        let root = workspace.root().to_path_buf();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&root).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        drop(workspace);
        assert!(!root.exists());
    }

    #[test]
    fn debug_hides_the_simulation_key() {
        let key = PrivateKeySigner::random();
        let secret = hex::encode(key.to_bytes());
        let config = TeeConfig::simulation("http://sms", key);
        let shown = format!("{config:?}");
        assert!(shown.contains("INSECURE"), "{shown}");
        assert!(!shown.contains(&secret), "{shown}");
    }
}
