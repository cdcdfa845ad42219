//! A TEE workerpool on a devnet: a [`Cluster`] with an SMS in INSECURE simulation mode, a TEE
//! app registered with its simulated measurement, and workers running TEE tasks in simulated
//! enclaves whose workspaces live in a RAM-backed directory of their own.

use std::{path::Path, sync::Arc, time::Duration};

use alloy::{primitives::B256, signers::local::PrivateKeySigner};
use poco_api::sms::{AppMeasurement, SmsClient, simulated_measurement};
use poco_sms::{SimulationConfig, SmsConfig};
use poco_worker::{WorkerConfig, exec::WasmExecutor, tee::TeeConfig};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use poco_test_utils::{app_module, apps_dir};

use super::Cluster;

/// A [`Cluster`] whose scheduler gets enclave challenges from an SMS, whose app is a TEE app,
/// and whose workers can run TEE tasks in simulated enclaves.
pub struct TeeCluster {
    /// The cluster (devnet, result store, scheduler, workers).
    pub cluster: Cluster,
    /// The SMS's URL.
    pub sms_url: String,
    /// The simulation key the SMS trusts and the workers' enclaves quote with.
    pub simulation_key: PrivateKeySigner,
    sms_address: String,
    sms: Option<(JoinHandle<()>, oneshot::Sender<()>)>,
    workspaces: TempDir,
}

impl TeeCluster {
    /// A devnet with `workers` worker accounts, the example app `app` registered as a TEE app
    /// (its `mrenclave` is the simulated measurement of its module), an SMS trusting a fresh
    /// simulation key, and the scheduler using it. No worker runs yet.
    pub async fn start(workers: usize, app: &str) -> Self {
        let mut cluster = Cluster::start(workers, app).await;
        let module = app_module(app);
        let checksum = B256::from(<[u8; 32]>::from(Sha256::digest(&module)));
        let file = Path::new(app).file_name().unwrap().to_string_lossy().into_owned();
        let url = format!("file://{}", apps_dir().join(app).join(format!("{file}.wasm")).display());
        let mrenclave = AppMeasurement::encode(simulated_measurement(&module).as_slice());
        let accounts = cluster.net.accounts().clone();
        cluster.app = cluster
            .net
            .create_tee_app(
                &accounts.app_provider,
                &format!("tee-{file}"),
                &url,
                checksum,
                mrenclave,
            )
            .await;
        let workspaces = tempfile::Builder::new()
            .prefix("poco-enclaves-")
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("a directory for enclave workspaces");
        let mut tee = Self {
            cluster,
            sms_url: String::new(),
            simulation_key: PrivateKeySigner::random(),
            sms_address: "127.0.0.1:0".into(),
            sms: None,
            workspaces,
        };
        tee.start_sms().await;
        tee.cluster.sms_url = Some(tee.sms_url.clone());
        tee.cluster.kill_scheduler().await;
        tee.cluster.start_scheduler().await;
        tee
    }

    /// The SMS's configuration: SQLite and its master key under the cluster's data directory,
    /// INSECURE simulation trusting [`Self::simulation_key`].
    pub fn sms_config(&self) -> SmsConfig {
        let dir = self.sms_dir();
        let mut config = SmsConfig::new(
            self.cluster.net.devnet().rpc_url(),
            self.cluster.net.deployment().poco,
            format!("sqlite://{}", dir.join("sms.db").display()),
            dir.join("master.key"),
        );
        config.attestation.simulation =
            Some(SimulationConfig { trusted_signers: vec![self.simulation_key.address()] });
        config
    }

    /// Where the SMS keeps its database and master key.
    pub fn sms_dir(&self) -> std::path::PathBuf {
        self.cluster.data_dir().join("sms")
    }

    /// Starts the SMS (again, on the same address and data after [`Self::kill_sms`]).
    pub async fn start_sms(&mut self) {
        let listener = TcpListener::bind(&self.sms_address).await.expect("the SMS address");
        self.sms_address = listener.local_addr().unwrap().to_string();
        self.sms_url = format!("http://{}", self.sms_address);
        let config = self.sms_config();
        let (stop, stopped) = oneshot::channel();
        let handle = tokio::spawn(async move {
            let outcome = poco_sms::serve(config, listener, async {
                let _ = stopped.await;
            })
            .await;
            if let Err(error) = outcome {
                panic!("the SMS stopped: {error}");
            }
        });
        self.sms = Some((handle, stop));
        let client = SmsClient::new(&self.sms_url);
        poco_test_utils::wait_until("the SMS answers", Duration::from_secs(30), || async {
            client.status().await.is_ok()
        })
        .await;
    }

    /// Kills the SMS at once.
    pub async fn kill_sms(&mut self) {
        if let Some((handle, _stop)) = self.sms.take() {
            handle.abort();
            let _ = handle.await;
        }
    }

    /// A client of the SMS.
    pub fn sms(&self) -> SmsClient {
        SmsClient::new(&self.sms_url)
    }

    /// The RAM-backed directory under which the workers' enclave workspaces are created.
    pub fn workspace_root(&self) -> &Path {
        self.workspaces.path()
    }

    /// The configuration of worker `index` with a simulated enclave.
    pub fn tee_worker_config(&self, index: usize) -> WorkerConfig {
        let mut config = self.cluster.worker_config(index);
        let mut tee = TeeConfig::simulation(&self.sms_url, self.simulation_key.clone());
        tee.workspace_root = self.workspace_root().to_path_buf();
        config.tee = Some(tee);
        config
    }

    /// Starts worker `index` with a simulated enclave.
    pub fn start_tee_worker(&mut self, index: usize) {
        let config = self.tee_worker_config(index);
        let executor = WasmExecutor::new().expect("the WebAssembly engine");
        self.cluster.start_worker_with(index, config, Arc::new(executor));
    }
}

impl Drop for TeeCluster {
    fn drop(&mut self) {
        if let Some((handle, _)) = self.sms.take() {
            handle.abort();
        }
    }
}
