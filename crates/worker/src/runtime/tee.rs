//! Running a task of a TEE deal: pre-compute (attested session, dataset decryption, inputs),
//! the app in the sandbox on the enclave's workspace, post-compute (result encryption, digest,
//! enclave signature). See [`crate::tee`].

use std::{path::Path, str::FromStr};

use alloy::{
    primitives::{Bytes, keccak256},
    signers::local::PrivateKeySigner,
};
use poco_api::pool::Report;
use poco_api::results::archive::{ArchiveLimits, pack_dir, unpack_to_dir};
use poco_api::sms::{
    AttestRequest, DatasetKey, ENCRYPTED_RESULT_FILE, ResultKeyPair, SessionRequest, SmsClient,
    decrypt_dataset, encrypt_result, open_session_secrets, session_report_data,
};
use poco_contracts::bindings::{AppRegistry, DatasetRegistry, IPocoTypes};
use poco_fetch::Source;
use poco_primitives::{
    ResultCommitment, Tag,
    authorization::{is_enclave_signature, sign_enclave_message},
    result::{FAILURE_FILE, FailureRecord, result_digest_of_dir},
};
use tracing::{info, warn};

use super::{
    Worker, callback_data,
    state::{Stage, TaskDir, TaskState},
    task_spec, write_file,
};
use crate::{
    Error, Result,
    tee::{EnclaveWorkspace, TeeConfig},
};

/// Refuses a TEE configuration whose enclave workspace would sit in the worker's data
/// directory, and says loudly when the enclave is a simulation.
pub(super) fn check_config(tee: &TeeConfig, data_dir: &Path) -> Result<()> {
    let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if absolute(&tee.workspace_root).starts_with(absolute(data_dir)) {
        return Err(Error::Tee(format!(
            "the enclave workspace root {} is inside the worker's data directory",
            tee.workspace_root.display()
        )));
    }
    if tee.enclave.is_simulation() {
        warn!(
            tee = tee.enclave.label(),
            workspace = %tee.workspace_root.display(),
            "INSECURE simulated enclave: TEE tasks run in a RAM-backed workspace of this \
             machine, readable by its owner; for tests and demonstrations only"
        );
    }
    Ok(())
}

impl Worker {
    /// Runs a TEE task inside the enclave boundary and signs its result with the challenge key.
    pub(super) async fn compute_tee(&self, mut state: TaskState) -> Result<TaskState> {
        let tee = self
            .config
            .tee
            .as_ref()
            .ok_or_else(|| Error::Tee("this worker is not configured for TEE tasks".into()))?;
        let label = tee.enclave.label();
        let assignment = state.assignment.clone();
        let deal = &assignment.deal;
        let task_id = assignment.task_id;
        let on_chain =
            self.poco.viewDealHash(deal.id()).call().await.map_err(poco_chain::Error::from)?;
        if on_chain != deal.hash() || keccak256(assignment.params.as_bytes()) != deal.paramsHash {
            return Err(Error::ForgedDeal(task_id));
        }
        if let Some(framework) = Tag(deal.tag).tee_framework()
            && tee.enclave.is_simulation()
        {
            return Err(Error::Tee(format!(
                "the deal asks for the {framework:?} framework: an INSECURE simulated enclave \
                 cannot serve it"
            )));
        }
        if assignment.enclave_challenge.is_zero() {
            return Err(Error::Tee("the assignment carries no enclave challenge".into()));
        }
        self.ensure_active(&assignment).await?;

        let apps = AppRegistry::new(self.apps, self.chain.provider().clone());
        let app = apps.viewApp(deal.app).call().await.map_err(poco_chain::Error::from)?;
        let url = String::from_utf8_lossy(&app.multiaddr).into_owned();
        let module = self.fetcher.fetch_checked(Source::App, &url, app.checksum).await?;

        // Pre-compute: an attested session gives the enclave its secrets.
        let sms = SmsClient::new(&tee.sms_url);
        let request = SessionRequest {
            deal: deal.clone(),
            index: assignment.index,
            params: assignment.params.clone(),
            authorization: assignment.authorization.clone(),
        };
        let session = sms.open_session(&self.config.wallet, &request).await?;
        let session_key = ResultKeyPair::generate();
        let enclave_key = session_key.recipient();
        let report_data = session_report_data(task_id, session.nonce, &enclave_key);
        let evidence = tee.enclave.quote(&module, report_data)?;
        let response = sms
            .attest(
                &self.config.wallet,
                session.session_id,
                &AttestRequest { evidence, enclave_key },
            )
            .await?;
        let secrets = open_session_secrets(&response, &session_key.identity())?;
        drop(session_key);
        info!(task = %task_id, tee = label, attestation = %response.attestation, "enclave provisioned");
        let challenge = PrivateKeySigner::from_str(secrets.challenge_key.expose())
            .map_err(|_| Error::Tee("the SMS's challenge key is malformed".into()))?;
        if challenge.address() != assignment.enclave_challenge {
            return Err(Error::Tee(
                "the SMS's challenge key is not the one in the scheduler's authorization".into(),
            ));
        }

        let workspace = EnclaveWorkspace::create(&tee.workspace_root)?;
        let mut dataset_name = None;
        if !deal.dataset.is_zero() {
            let datasets = DatasetRegistry::new(self.datasets, self.chain.provider().clone());
            let dataset =
                datasets.viewDataset(deal.dataset).call().await.map_err(poco_chain::Error::from)?;
            let url = String::from_utf8_lossy(&dataset.multiaddr).into_owned();
            let encrypted =
                self.fetcher.fetch_checked(Source::Dataset, &url, dataset.checksum).await?;
            let key = secrets
                .dataset_key
                .as_ref()
                .ok_or_else(|| Error::Tee("the SMS released no dataset key".into()))?;
            let key = DatasetKey::from_hex(key.expose())?;
            let plaintext = decrypt_dataset(&encrypted, &key)?;
            let name = format!("{:#x}", deal.dataset);
            write_file(&workspace.input().join(&name), &plaintext)?;
            dataset_name = Some(name);
        }
        let failure = match self
            .prepare_inputs(task_id, &assignment.params, &workspace.input())
            .await?
        {
            Err(failure) => Some(failure),
            Ok((params, input_names)) => {
                let mut spec = task_spec(
                    module,
                    &workspace.input(),
                    &workspace.output(),
                    deal,
                    task_id,
                    &params,
                    dataset_name,
                    &input_names,
                )?
                .with_limits(self.limits(deal));
                for (index, value) in &secrets.requester_secrets {
                    spec = spec.with_env(format!("IEXEC_REQUESTER_SECRET_{index}"), value.expose());
                }
                if let Some(value) = &secrets.app_developer_secret {
                    spec = spec.with_env("IEXEC_APP_DEVELOPER_SECRET", value.expose());
                }
                let outcome = self.executor.execute(spec).await?;
                info!(task = %task_id, tee = label, status = %outcome.status, fuel = outcome.fuel_consumed, "app ran in the enclave");
                if !outcome.status.is_deterministic() {
                    // No stderr: inside the enclave the app may print what must not leave it.
                    return Err(Error::NoAgreedResult(format!(
                        "the app {} in the enclave",
                        outcome.status
                    )));
                }
                // No stderr either in the record: it leaves the enclave.
                (!outcome.status.success()).then(|| {
                    FailureRecord::run(outcome.status.to_string(), outcome.status.exit_code(), "")
                })
            }
        };
        if let Some(failure) = failure {
            write_file(&workspace.output().join(FAILURE_FILE), failure.to_json().as_bytes())?;
        }

        // Post-compute: only the (encrypted) result leaves the boundary.
        let callback_data =
            if deal.callback.is_zero() { Bytes::new() } else { callback_data(&workspace.output()) };
        let dir = TaskDir::new(&self.tasks_dir, task_id);
        dir.reset_io()?;
        let archive = zeroize::Zeroizing::new(pack_dir(&workspace.output())?);
        match &secrets.result_encryption_key {
            Some(recipient) => {
                let encrypted = encrypt_result(&archive, recipient)?;
                write_file(&dir.output().join(ENCRYPTED_RESULT_FILE), &encrypted)?;
            }
            None => {
                unpack_to_dir(&archive, &dir.output(), &ArchiveLimits::default())?;
            }
        }
        drop(archive);
        drop(workspace);
        let digest = if deal.callback.is_zero() {
            result_digest_of_dir(&dir.output())?
        } else {
            keccak256(&callback_data)
        };
        let commitment = ResultCommitment::new(self.address(), task_id, digest);
        let enclave_sign = sign_enclave_message(&challenge, &commitment)?;
        if !is_enclave_signature(assignment.enclave_challenge, &commitment, &enclave_sign) {
            return Err(Error::Tee("the enclave signature does not verify".into()));
        }
        info!(
            task = %task_id, tee = label, %digest,
            encrypted = secrets.result_encryption_key.is_some(),
            "result sealed and signed by the enclave"
        );
        state.stage = Stage::Computed { digest, callback_data, enclave_sign };
        self.save(state.clone())?;
        let result_hash = commitment.result_hash;
        self.scheduler.report(&Report::Computed { task_id, result_hash }).await?;
        Ok(state)
    }

    /// Makes sure the task is ACTIVE on-chain (the SMS serves only active tasks): initializes
    /// it if nobody did yet.
    async fn ensure_active(&self, assignment: &poco_api::pool::Assignment) -> Result<()> {
        let task_id = assignment.task_id;
        let status =
            self.poco.viewTask(task_id).call().await.map_err(poco_chain::Error::from)?.status;
        if status != 0 {
            return Ok(());
        }
        let call = self.poco.initialize(IPocoTypes::Deal::from(&assignment.deal), assignment.index);
        if let Err(error) = self.chain.send(call).await {
            // Someone (the scheduler) may have initialized it meanwhile.
            let status =
                self.poco.viewTask(task_id).call().await.map_err(poco_chain::Error::from)?.status;
            if status == 0 {
                return Err(error.into());
            }
        }
        Ok(())
    }
}
