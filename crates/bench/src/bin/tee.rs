//! TEE benchmark: what running a task in the (INSECURE, simulated) enclave costs over running
//! the same app on the same data on the plain WebAssembly path. Both parts run on the devnet
//! harness (`poco_devnet::cluster::tee::TeeCluster`: anvil with the contracts, the result store, the
//! scheduler, an SMS in simulation mode, all real, the services in this process), with the
//! confidential example app (`apps/confidential`: it reads the whole dataset and both secrets)
//! and a generated CSV dataset.
//!
//! - (i) stages: one task's work on each path, made by this program with the worker's own
//!   components (`poco_worker::runtime::task_spec`, the `WasmExecutor`, the enclave's
//!   `EnclaveMode::quote` and `EnclaveWorkspace`, `SmsClient`, `poco_sms`'s dataset and result
//!   crypto, `poco_results`'s archive, `poco_primitives`' digest and enclave signature), in
//!   the order the worker's TEE path runs them, timed stage by stage:
//!   - attestation / session (TEE only): open a session with the SMS (signed request, deal,
//!     task and authorization checked on-chain), generate the session key, quote the app with
//!     the session's nonce and key, attest (the SMS verifies the quote, checks the app's
//!     measurement on-chain, unseals and encrypts the secrets to the session key), open them;
//!   - dataset: plain, the dataset written into the task's input directory (the worker's data
//!     directory, on disk); TEE, a RAM-backed enclave workspace created, the dataset key
//!     parsed, the dataset decrypted (XChaCha20-Poly1305) and written into the workspace;
//!   - execution: the app in the sandbox (compiled module cached, as in a running worker);
//!   - result: plain, the digest of the output directory; TEE, the output packed, encrypted for
//!     the beneficiary (age X25519), written out, digested, signed with the challenge key and
//!     the signature checked, the workspace wiped.
//!
//!   Fetching the app and the dataset is left out: the worker does it the same way on both
//!   paths, from its cache once the checksum is known. Runs alternate plain and TEE, one task
//!   of one TEE deal (a fresh session and quote per run) after one warm-up run of each. For
//!   reference, the SMS's verification of one quote alone follows: the simulated quote the
//!   attestation above includes, and real SGX and TDX DCAP quotes (Intel's samples of
//!   `crates/sms/tests/data/dcap`, collateral offline) that a hardware enclave would send.
//! - (ii) end to end: from the moment the requester sends `matchOrders` to the moment its
//!   result is downloaded from the result store, trust 1, one task per deal, one worker of one
//!   slot that serves both kinds: plain deals of a plain app registered with the same module
//!   and the plaintext dataset, TEE deals of the TEE app with the encrypted dataset, a
//!   requester secret, an app developer secret and result encryption. The TEE side includes the
//!   scheduler asking the SMS for the task's enclave challenge.
//!
//! Run with `cargo run --release -p poco-bench --bin tee [-- options]`:
//! - `--runs 20`: measured runs of each path in (i);
//! - `--e2e-runs 20`: measured deals of each kind in (ii);
//! - `--dataset-kib 1024`: the dataset's size;
//! - `--skip-stages`, `--skip-e2e`.
//!
//! Prints the conditions (machine, build, versions, where each path writes) with the median and
//! p90 of every stage and their difference.

use poco_bench::{Milestones, cpu_model, percentile, watch_task};
use std::{
    path::Path,
    process::Command,
    str::FromStr,
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256},
    signers::local::PrivateKeySigner,
};
use clap::{Parser, builder::RangedU64ValueParser};
use eyre::{Result, WrapErr, bail, ensure, eyre};
use poco_api::{
    results::{ArchiveLimits, archive::pack_dir, archive::unpack_to_dir},
    sms::{
        AttestRequest, DatasetKey, ENCRYPTED_RESULT_FILE, ResultKeyPair, SessionRequest,
        SimulatedQuote, SmsClient, dataset_checksum, decrypt_dataset, decrypt_result,
        encrypt_dataset, encrypt_result, open_session_secrets, session_report_data,
        simulated_measurement,
    },
};
use poco_chain::{ChainClient, ClientConfig};
use poco_contracts::bindings::IPocoTypes;
use poco_devnet::cluster::tee::TeeCluster;
use poco_primitives::{
    Deal, ResultCommitment, Tag, WorkerpoolAuthorization,
    authorization::{is_enclave_signature, sign_enclave_message},
    result::result_digest_of_dir,
};
use poco_sms::{
    DcapConfig,
    attestation::{parse_collateral, verify_dcap, verify_simulated},
};
use poco_test_utils::{OrderSpec, app_module, deal_of};
use poco_worker::{
    WorkerConfig,
    exec::{ExecOutcome, Executor, Limits, WasmExecutor, module_sha256},
    runtime::{TaskParams, task_spec},
    tee::{EnclaveWorkspace, TeeConfig},
};

/// The example app both paths run.
const APP: &str = "confidential";
/// The TEE deals' params: requester secret 1 and result encryption.
const TEE_PARAMS: &str = r#"{"iexec_secrets":{"1":"bench-token"},"iexec_result_encryption":true}"#;
/// The requester secret the TEE deals name.
const SECRET_NAME: &str = "bench-token";
/// How often the end-to-end part looks for the result.
const PROBE: Duration = Duration::from_millis(10);

/// The confidential path in simulation against the plain one.
#[derive(Debug, Parser)]
struct Options {
    /// Runs of the stage-by-stage comparison.
    #[arg(long, default_value_t = 20, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    runs: usize,
    /// Runs of the end-to-end comparison.
    #[arg(long, default_value_t = 20, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    e2e_runs: usize,
    /// Size of the generated dataset, in KiB.
    #[arg(long, default_value_t = 1024, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    dataset_kib: usize,
    /// Skips the stage-by-stage comparison.
    #[arg(long = "skip-stages", action = clap::ArgAction::SetFalse)]
    stages: bool,
    /// Skips the end-to-end comparison.
    #[arg(long = "skip-e2e", action = clap::ArgAction::SetFalse)]
    e2e: bool,
}

// ------------------------------------------------------------------------ figures

/// Median and p90 (nearest rank) of a set of durations.
#[derive(Clone, Copy)]
struct Summary {
    median: Duration,
    p90: Duration,
}

impl Summary {
    fn of(times: &[Duration]) -> Self {
        let mut sorted = times.to_vec();
        sorted.sort_unstable();
        Self { median: percentile(&sorted, 0.5), p90: percentile(&sorted, 0.9) }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// `a - b` in milliseconds, signed.
fn delta(a: Duration, b: Duration) -> String {
    format!("{:+.2} ms", (a.as_secs_f64() - b.as_secs_f64()) * 1e3)
}

/// A row of the table: a stage's median and p90 on each path (`None`: the path has no such
/// stage), and the difference of the medians.
fn row(name: &str, plain: Option<Summary>, tee: Option<Summary>) {
    let cell = |s: Option<Summary>| match s {
        Some(s) => format!("{:>10} {:>10}", ms(s.median), ms(s.p90)),
        None => format!("{:>10} {:>10}", "-", "-"),
    };
    let zero = Summary { median: Duration::ZERO, p90: Duration::ZERO };
    let overhead = delta(tee.unwrap_or(zero).median, plain.unwrap_or(zero).median);
    println!("  {name:<34} {}   {}   {overhead:>11}", cell(plain), cell(tee));
}

fn header() {
    println!(
        "  {:<34} {:>10} {:>10}   {:>10} {:>10}   {:>11}",
        "stage", "plain p50", "p90", "TEE p50", "p90", "TEE - plain"
    );
}

// ------------------------------------------------------------------------ conditions

/// The 1, 5 and 15-minute load averages (other processes share the cores).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The version of the anvil the devnet runs (the harness's own lookup).
fn anvil_version() -> String {
    let anvil = poco_chain::devnet::find_anvil();
    Command::new(&anvil)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| format!("{} (version unknown)", anvil.display()))
}

/// The versions `Cargo.lock` pins for `crates`.
fn locked_versions(crates: &[&str]) -> String {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    let text = std::fs::read_to_string(lock).unwrap_or_default();
    let mut found = Vec::new();
    for name in crates {
        let entry = format!("name = \"{name}\"\nversion = \"");
        let version = text
            .find(&entry)
            .map(|at| &text[at + entry.len()..])
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("?");
        found.push(format!("{name} {version}"));
    }
    found.join(", ")
}

/// The file system a path lives on (its `/proc/mounts` entry with the longest mount point).
fn file_system(path: &Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(point).then(|| (point.len(), format!("{kind} at {point}")))
        })
        .max_by_key(|(length, _)| *length)
        .map_or_else(|| "unknown".into(), |(_, kind)| kind)
}

// ------------------------------------------------------------------------ the setup

/// A CSV of about `kib` KiB: `row<i>,<visits>,<amount>` lines.
fn dataset(kib: usize) -> Vec<u8> {
    let mut text = String::from("name,visits,amount\n");
    let mut i = 0u64;
    while text.len() < kib * 1024 {
        text.push_str(&format!("row{i},{},{}\n", i % 97, (i * 7919) % 100_000));
        i += 1;
    }
    text.into_bytes()
}

/// The lines of `result.txt` about the dataset (the app's figures, without the secrets').
fn dataset_figures(result: &str) -> String {
    result.lines().filter(|l| !l.contains("secret")).collect::<Vec<_>>().join(" ")
}

/// A TEE cluster with the confidential app (TEE) and the same module as a plain app, the dataset
/// in plaintext and encrypted, and every secret pushed.
struct Bench {
    tee: TeeCluster,
    /// The module both apps run.
    module: Vec<u8>,
    /// The plain app (no `mrenclave`), same module and URL as the TEE app.
    plain_app: Address,
    plaintext: Vec<u8>,
    encrypted: Vec<u8>,
    plain_dataset: Address,
    encrypted_dataset: Address,
    /// The beneficiary's key pair (the requester is the beneficiary of every deal).
    beneficiary: ResultKeyPair,
    salt: u64,
}

impl Bench {
    async fn start(options: &Options) -> Result<Self> {
        let tee = Box::pin(TeeCluster::start(1, APP)).await;
        let accounts = tee.cluster.net.accounts().clone();
        let module = app_module(APP);
        let app_url = format!(
            "file://{}",
            poco_test_utils::apps_dir().join(APP).join(format!("{APP}.wasm")).display()
        );
        let plain_app = tee
            .cluster
            .net
            .create_app_at(
                &accounts.app_provider,
                "plain-confidential",
                &app_url,
                B256::from(module_sha256(&module)),
            )
            .await;

        let plaintext = dataset(options.dataset_kib);
        let key = DatasetKey::generate();
        let encrypted = encrypt_dataset(&plaintext, &key)?;
        let scratch = tee.cluster.scratch();
        std::fs::create_dir_all(&scratch)?;
        let publish = |name: &str, bytes: &[u8]| -> Result<String> {
            let path = scratch.join(name);
            std::fs::write(&path, bytes)?;
            Ok(format!("file://{}", path.display()))
        };
        let net = &tee.cluster.net;
        let plain_url = publish("records.csv", &plaintext)?;
        // The checksum of the published file, here the plaintext itself.
        let checksum = dataset_checksum(&plaintext);
        let plain_dataset = net
            .create_dataset_at(&accounts.dataset_provider, "records", &plain_url, checksum)
            .await;
        let encrypted_url = publish("records.enc", &encrypted)?;
        let encrypted_dataset = net
            .create_dataset_at(
                &accounts.dataset_provider,
                "records (encrypted)",
                &encrypted_url,
                dataset_checksum(&encrypted),
            )
            .await;

        let sms = tee.sms();
        sms.push_dataset_key(&accounts.dataset_provider, encrypted_dataset, &key).await?;
        sms.push_requester_secret(&accounts.requester, SECRET_NAME, "requester-token-0c9a").await?;
        sms.push_app_secret(&accounts.app_provider, tee.cluster.app, "developer-licence-77e1")
            .await?;
        let beneficiary = ResultKeyPair::generate();
        sms.push_result_key(&accounts.requester, &beneficiary.recipient()).await?;
        Ok(Self {
            tee,
            module,
            plain_app,
            plaintext,
            encrypted,
            plain_dataset,
            encrypted_dataset,
            beneficiary,
            salt: 0,
        })
    }

    /// The orders of one trust-1 task: the TEE app and the encrypted dataset with the TEE tag,
    /// or the plain app and the plaintext dataset, on `workerpool`.
    fn spec(&mut self, tee: bool, workerpool: Address) -> OrderSpec {
        self.salt += 1;
        OrderSpec {
            app: if tee { self.tee.cluster.app } else { self.plain_app },
            dataset: Some(if tee { self.encrypted_dataset } else { self.plain_dataset }),
            workerpool,
            trust: 1,
            volume: 1,
            tag: if tee { Tag::TEE.0 } else { Tag::NONE.0 },
            params: if tee { TEE_PARAMS.into() } else { String::new() },
            salt: self.salt,
            ..OrderSpec::default()
        }
    }
}

// ------------------------------------------------------------------------ (i) stages

/// The durations of one run, by stage (plain: no attestation).
#[derive(Default)]
struct Stages {
    open_session: Duration,
    quote: Duration,
    attest: Duration,
    open_secrets: Duration,
    dataset: Duration,
    execution: Duration,
    result: Duration,
    total: Duration,
    /// The dataset lines of the result, to check that both paths computed the same.
    figures: String,
}

impl Stages {
    fn attestation(&self) -> Duration {
        self.open_session + self.quote + self.attest + self.open_secrets
    }
}

/// What one TEE run needs: the task, the session request, the worker and its enclave.
struct TeeTask {
    deal: Deal,
    task_id: B256,
    /// The task's enclave challenge (the address of the key the SMS releases).
    challenge: Address,
    request: SessionRequest,
    worker: WorkerConfig,
    enclave: TeeConfig,
    sms: SmsClient,
}

/// A TEE deal on a workerpool of its own (the cluster's scheduler ignores it), its task
/// initialized with an enclave challenge, and worker 0's session request for it.
async fn tee_task(bench: &mut Bench) -> Result<TeeTask> {
    let net = &bench.tee.cluster.net;
    let scheduler = net.accounts().scheduler.clone();
    let workerpool = net.create_workerpool(&scheduler, "bench stages pool").await;
    let spec = bench.spec(true, workerpool);
    let net = &bench.tee.cluster.net;
    let (deal, _) = net.match_orders(&net.accounts().requester, &net.orders(&spec)).await?;
    let sms = bench.tee.sms();
    let challenge = sms.challenge(&scheduler, &deal, deal.botFirst).await?.address;
    let (client, poco) = net.poco(&scheduler);
    client.send(poco.initialize(IPocoTypes::Deal::from(&deal), deal.botFirst)).await?;
    let task_id = deal.task_id(deal.botFirst)?;
    let worker = bench.tee.tee_worker_config(0);
    let authorization = WorkerpoolAuthorization {
        worker: worker.wallet.address(),
        task_id,
        enclave_challenge: challenge,
    }
    .sign(&scheduler)?;
    let request = SessionRequest {
        deal: deal.clone(),
        index: deal.botFirst,
        params: TEE_PARAMS.into(),
        authorization,
    };
    let enclave = worker.tee.clone().ok_or_else(|| eyre!("the TEE worker has no TEE config"))?;
    Ok(TeeTask { deal, task_id, challenge, request, worker, enclave, sms })
}

/// The limits the worker gives a task of `deal` (no fuel cap).
fn limits(deal: &Deal, worker: &WorkerConfig) -> Limits {
    Limits::for_max_time(Duration::from_secs(deal.timeref.saturating_to()))
        .with_memory_bytes(worker.memory_bytes)
}

fn check_ran(outcome: &ExecOutcome) -> Result<()> {
    if !outcome.status.success() {
        bail!("the app failed: {}: {}", outcome.status, outcome.stderr.to_string_lossy());
    }
    Ok(())
}

/// The plain path: dataset into the task's input directory, the app, the digest.
async fn plain_run(
    bench: &Bench,
    task: &TeeTask,
    executor: &WasmExecutor,
    dir: &Path,
) -> Result<Stages> {
    let mut stages = Stages::default();
    let (input, output) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&input)?;
    std::fs::create_dir_all(&output)?;
    let name = format!("{:#x}", bench.plain_dataset);
    let params = TaskParams::parse("")?;
    let start = Instant::now();

    std::fs::write(input.join(&name), &bench.plaintext)?;
    stages.dataset = start.elapsed();

    let mark = Instant::now();
    let spec = task_spec(
        bench.module.clone(),
        &input,
        &output,
        &task.deal,
        task.task_id,
        &params,
        Some(name),
        &[],
    )?
    .with_limits(limits(&task.deal, &task.worker));
    let outcome = executor.execute(spec).await?;
    check_ran(&outcome)?;
    stages.execution = mark.elapsed();

    let mark = Instant::now();
    let digest = result_digest_of_dir(&output)?;
    ensure!(digest != B256::ZERO, "an empty digest");
    stages.result = mark.elapsed();
    stages.total = start.elapsed();
    stages.figures = dataset_figures(&std::fs::read_to_string(output.join("result.txt"))?);
    Ok(stages)
}

/// The TEE path, as the worker runs it: attested session, dataset decrypted in the enclave's
/// workspace, the app with the secrets, the result encrypted, digested and signed.
async fn tee_run(
    bench: &Bench,
    task: &TeeTask,
    executor: &WasmExecutor,
    dir: &Path,
) -> Result<Stages> {
    let mut stages = Stages::default();
    let wallet = &task.worker.wallet;
    let output_dir = dir.join("out");
    std::fs::create_dir_all(&output_dir)?;
    let params = TaskParams::parse(TEE_PARAMS)?;
    let start = Instant::now();

    // Attestation and session.
    let session = task.sms.open_session(wallet, &task.request).await?;
    stages.open_session = start.elapsed();
    let mark = Instant::now();
    let session_key = ResultKeyPair::generate();
    let enclave_key = session_key.recipient();
    let report_data = session_report_data(task.task_id, session.nonce, &enclave_key);
    let evidence = task.enclave.enclave.quote(&bench.module, report_data)?;
    stages.quote = mark.elapsed();
    let mark = Instant::now();
    let response = task
        .sms
        .attest(wallet, session.session_id, &AttestRequest { evidence, enclave_key })
        .await?;
    stages.attest = mark.elapsed();
    let mark = Instant::now();
    let secrets = open_session_secrets(&response, &session_key.identity())?;
    drop(session_key);
    let challenge = PrivateKeySigner::from_str(secrets.challenge_key.expose())?;
    ensure!(challenge.address() == task.challenge, "not the task's challenge key");
    stages.open_secrets = mark.elapsed();

    // The dataset, decrypted inside the enclave's workspace.
    let mark = Instant::now();
    let workspace = EnclaveWorkspace::create(&task.enclave.workspace_root)?;
    let key = secrets.dataset_key.as_ref().ok_or_else(|| eyre!("no dataset key released"))?;
    let plaintext = decrypt_dataset(&bench.encrypted, &DatasetKey::from_hex(key.expose())?)?;
    let name = format!("{:#x}", bench.encrypted_dataset);
    std::fs::write(workspace.input().join(&name), plaintext.as_slice())?;
    drop(plaintext);
    stages.dataset = mark.elapsed();

    // The app, with the secrets.
    let mark = Instant::now();
    let mut spec = task_spec(
        bench.module.clone(),
        &workspace.input(),
        &workspace.output(),
        &task.deal,
        task.task_id,
        &params,
        Some(name),
        &[],
    )?
    .with_limits(limits(&task.deal, &task.worker));
    for (index, value) in &secrets.requester_secrets {
        spec = spec.with_env(format!("IEXEC_REQUESTER_SECRET_{index}"), value.expose());
    }
    if let Some(value) = &secrets.app_developer_secret {
        spec = spec.with_env("IEXEC_APP_DEVELOPER_SECRET", value.expose());
    }
    let outcome = executor.execute(spec).await?;
    check_ran(&outcome)?;
    stages.execution = mark.elapsed();

    // The result: packed, encrypted for the beneficiary, digested, signed by the enclave.
    let mark = Instant::now();
    let recipient =
        secrets.result_encryption_key.as_ref().ok_or_else(|| eyre!("no result key released"))?;
    let archive = zeroize::Zeroizing::new(pack_dir(&workspace.output())?);
    let sealed = encrypt_result(&archive, recipient)?;
    std::fs::write(output_dir.join(ENCRYPTED_RESULT_FILE), &sealed)?;
    drop(archive);
    drop(workspace);
    let digest = result_digest_of_dir(&output_dir)?;
    let commitment = ResultCommitment::new(wallet.address(), task.task_id, digest);
    let signature = sign_enclave_message(&challenge, &commitment)?;
    ensure!(
        is_enclave_signature(challenge.address(), &commitment, &signature),
        "the enclave signature does not verify"
    );
    stages.result = mark.elapsed();
    stages.total = start.elapsed();

    // Not timed: the beneficiary opens the result.
    let tar = decrypt_result(&sealed, bench.beneficiary.identity().expose())?;
    let opened = dir.join("opened");
    unpack_to_dir(&tar, &opened, &ArchiveLimits::default())?;
    stages.figures = dataset_figures(&std::fs::read_to_string(opened.join("result.txt"))?);
    Ok(stages)
}

async fn stages(bench: &mut Bench, options: &Options) -> Result<()> {
    let task = tee_task(bench).await?;
    let executor = WasmExecutor::new()?;
    let compile = executor.precompile(&bench.module).await?;
    let work = tempfile::tempdir()?;
    println!(
        "\n(i) stages of one task, app {APP} ({} bytes, compiled once: {}), dataset {} bytes \
         ({} encrypted), {} runs of each path after 1 warm-up, alternating",
        bench.module.len(),
        compile.map_or_else(|| "cached".into(), ms),
        bench.plaintext.len(),
        bench.encrypted.len(),
        options.runs,
    );
    println!(
        "  plain task directory: {} ({}); enclave workspace: {} ({})",
        work.path().display(),
        file_system(work.path()),
        task.enclave.workspace_root.display(),
        file_system(&task.enclave.workspace_root),
    );
    println!(
        "  SMS: SQLite, INSECURE simulated quotes, on this process's runtime; the chain reads of \
         the session and attestation go to anvil over HTTP"
    );
    let (mut plain, mut tee) = (Vec::new(), Vec::new());
    for run in 0..=options.runs {
        let plain_run =
            plain_run(bench, &task, &executor, &work.path().join(format!("plain-{run}")))
                .await
                .wrap_err("a plain run")?;
        let tee_run = tee_run(bench, &task, &executor, &work.path().join(format!("tee-{run}")))
            .await
            .wrap_err("a TEE run")?;
        if plain_run.figures != tee_run.figures {
            bail!(
                "the paths disagree on the dataset: plain {:?}, TEE {:?}",
                plain_run.figures,
                tee_run.figures
            );
        }
        if run > 0 {
            plain.push(plain_run);
            tee.push(tee_run);
        }
    }
    let summary = |runs: &[Stages], pick: fn(&Stages) -> Duration| {
        Summary::of(&runs.iter().map(pick).collect::<Vec<_>>())
    };
    header();
    row("attestation / session", None, Some(summary(&tee, Stages::attestation)));
    row("  open session (signed, chain)", None, Some(summary(&tee, |s| s.open_session)));
    row("  session key + simulated quote", None, Some(summary(&tee, |s| s.quote)));
    row("  attest (verify, chain, seal)", None, Some(summary(&tee, |s| s.attest)));
    row("  open the secrets (age)", None, Some(summary(&tee, |s| s.open_secrets)));
    row(
        "dataset (write | decrypt + write)",
        Some(summary(&plain, |s| s.dataset)),
        Some(summary(&tee, |s| s.dataset)),
    );
    row("execution", Some(summary(&plain, |s| s.execution)), Some(summary(&tee, |s| s.execution)));
    row(
        "result (digest | seal + sign)",
        Some(summary(&plain, |s| s.result)),
        Some(summary(&tee, |s| s.result)),
    );
    let (plain_total, tee_total) = (summary(&plain, |s| s.total), summary(&tee, |s| s.total));
    row("total", Some(plain_total), Some(tee_total));
    println!(
        "  ratio TEE / plain: median {:.2}x, p90 {:.2}x; both paths computed the same figures \
         over the dataset ({})",
        tee_total.median.as_secs_f64() / plain_total.median.as_secs_f64(),
        tee_total.p90.as_secs_f64() / plain_total.p90.as_secs_f64(),
        tee[0].figures,
    );
    quote_verification(bench, &task, options.runs)
}

/// A time inside the validity window of the sample DCAP collateral (2025-07-01T00:00:00Z: see
/// `crates/sms/tests/data/dcap/README.md`).
const DCAP_SAMPLES_VALID_AT: u64 = 1_751_328_000;

/// For reference: what the SMS's verification of one quote costs, the simulated one the
/// attestation stage above includes, against real DCAP quotes (Intel's samples, collateral
/// offline) that a hardware enclave would send.
fn quote_verification(bench: &Bench, task: &TeeTask, runs: usize) -> Result<()> {
    let time = |verify: &dyn Fn() -> Result<()>| -> Result<Summary> {
        let mut times = Vec::with_capacity(runs);
        for run in 0..=runs {
            let start = Instant::now();
            verify()?;
            if run > 0 {
                times.push(start.elapsed());
            }
        }
        Ok(Summary::of(&times))
    };
    let key = &bench.tee.simulation_key;
    let report_data = session_report_data(task.task_id, B256::ZERO, "age1bench");
    let simulated =
        SimulatedQuote::sign(key, &simulated_measurement(&bench.module)[..], report_data)?;
    let simulated = time(&|| {
        verify_simulated(&simulated, &[key.address()])?;
        Ok(())
    })?;
    let show = |name: &str, s: Summary| {
        println!("    {name:<46} p50 {:>10}  p90 {:>10}", ms(s.median), ms(s.p90));
    };
    println!("  the SMS's verification of one quote alone, {runs} runs after 1 warm-up:");
    show("simulated quote (signature recovery)", simulated);
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sms/tests/data/dcap");
    let config = DcapConfig::default();
    for (name, quote, collateral) in [
        ("real SGX DCAP quote (collateral offline)", "sgx_quote", "sgx_quote_collateral.json"),
        ("real TDX DCAP quote (collateral offline)", "tdx_quote", "tdx_quote_collateral.json"),
    ] {
        let (Ok(quote), Ok(collateral)) =
            (std::fs::read(samples.join(quote)), std::fs::read(samples.join(collateral)))
        else {
            println!("    {name}: skipped, no sample in {}", samples.display());
            continue;
        };
        let collateral = parse_collateral(&collateral)?;
        show(
            name,
            time(&|| {
                verify_dcap(&quote, &collateral, DCAP_SAMPLES_VALID_AT, &config)?;
                Ok(())
            })?,
        );
    }
    Ok(())
}

// ------------------------------------------------------------------------ (ii) end to end

/// A client of the requester that polls for receipts every few milliseconds, so that the
/// benchmark's own waiting does not blur the figures.
async fn requester(tee: &TeeCluster) -> Result<ChainClient> {
    let config = ClientConfig { poll_interval: PROBE, ..ClientConfig::default() };
    let wallet = tee.cluster.net.accounts().requester.clone();
    Ok(ChainClient::connect(tee.cluster.net.devnet().rpc_url(), Some(wallet), config).await?)
}

async fn e2e_run(bench: &mut Bench, client: &ChainClient, tee: bool) -> Result<Milestones> {
    let spec = bench.spec(tee, bench.tee.cluster.workerpool);
    let cluster = &bench.tee.cluster;
    let orders = cluster.net.orders(&spec);
    let start = Instant::now();
    let receipt = client.send(orders.call(&client.poco(cluster.net.deployment().poco))).await?;
    let deal = deal_of(&receipt).ok_or_else(|| eyre!("matchOrders created no deal"))?;
    let mined = start.elapsed();
    let task_id = deal.task_id(deal.botFirst)?;
    let (completed, downloaded, result) = watch_task(cluster, task_id, start, PROBE).await?;
    let files: Vec<&str> = result.summary.files.iter().map(|(path, _)| path.as_str()).collect();
    if tee && files != [ENCRYPTED_RESULT_FILE] {
        bail!("a TEE result of {files:?}, not only the encrypted result");
    }
    if !tee && !files.contains(&"result.txt") {
        bail!("a plain result of {files:?}, without result.txt");
    }
    Ok(Milestones { mined, completed, downloaded })
}

async fn e2e(bench: &mut Bench, options: &Options) -> Result<()> {
    bench.tee.start_tee_worker(0);
    let client = requester(&bench.tee).await?;
    // Give the worker a moment to register before the first deal.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let scheduler = bench.tee.cluster.scheduler_config();
    let worker = bench.tee.cluster.worker_config(0);
    println!(
        "\n(ii) end to end, matchOrders sent -> result downloaded, trust 1, one task per deal, \
         1 worker of 1 slot serving both kinds, {} deals of each after 1 warm-up, alternating",
        options.e2e_runs
    );
    println!(
        "  scheduler: SQLite store, engine tick {} ms, heartbeats every {} ms, {} \
         confirmations, asks the SMS for TEE tasks' challenges; worker: asks for work every {} \
         ms, polls for receipts every {} ms, fetches from file:// URLs into its cache",
        scheduler.tick.as_millis(),
        scheduler.heartbeat_interval.as_millis(),
        scheduler.confirmations,
        worker.work_poll.as_millis(),
        ClientConfig::default().poll_interval.as_millis(),
    );
    let (mut plain, mut tee) = (Vec::new(), Vec::new());
    for run in 0..=options.e2e_runs {
        for is_tee in [false, true] {
            let outcome = e2e_run(bench, &client, is_tee).await?;
            if run == 0 {
                println!(
                    "  {} warm-up: {} (first fetch and compile of the app)",
                    if is_tee { "TEE" } else { "plain" },
                    ms(outcome.downloaded)
                );
            } else if is_tee {
                tee.push(outcome);
            } else {
                plain.push(outcome);
            }
            // Let the pool settle (heartbeats free the slot) before the next deal.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let summary = |runs: &[Milestones], pick: fn(&Milestones) -> Duration| {
        Summary::of(&runs.iter().map(pick).collect::<Vec<_>>())
    };
    header();
    row("deal mined", Some(summary(&plain, |r| r.mined)), Some(summary(&tee, |r| r.mined)));
    row(
        "task COMPLETED on-chain",
        Some(summary(&plain, |r| r.completed)),
        Some(summary(&tee, |r| r.completed)),
    );
    let (p, t) = (summary(&plain, |r| r.downloaded), summary(&tee, |r| r.downloaded));
    row("result downloadable", Some(p), Some(t));
    println!(
        "  ratio TEE / plain (downloadable): median {:.2}x, p90 {:.2}x",
        t.median.as_secs_f64() / p.median.as_secs_f64(),
        t.p90.as_secs_f64() / p.p90.as_secs_f64(),
    );
    println!(
        "  (the worker sees its receipts up to {} ms late and asks for work every {} ms: \
         differences below that are within the noise of one run; (i) has the finer split)",
        ClientConfig::default().poll_interval.as_millis(),
        worker.work_poll.as_millis(),
    );
    let every =
        |runs: &[Milestones]| runs.iter().map(|r| ms(r.downloaded)).collect::<Vec<_>>().join(", ");
    println!("  every plain run: {}", every(&plain));
    println!("  every TEE run:   {}", every(&tee));
    Ok(())
}

fn main() -> Result<()> {
    let options = Options::parse();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = cores.max(2);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
    runtime.block_on(async {
        println!("TEE benchmark: INSECURE simulated enclave against the plain WebAssembly path");
        println!(
            "  build: {}; {cores} logical CPUs, {} (tokio: {threads} threads shared by the \
             scheduler, the worker, the SMS, the result store and this client; anvil in its own \
             process)",
            if cfg!(debug_assertions) { "debug" } else { "release" },
            cpu_model(),
        );
        println!(
            "  versions: poco {}; {}; chain: {}, automine",
            env!("CARGO_PKG_VERSION"),
            locked_versions(&["wasmtime", "age", "chacha20poly1305", "alloy", "axum", "sqlx"]),
            anvil_version(),
        );
        println!("  load average before: {}", load());
        let mut bench = Bench::start(&options).await?;
        if options.stages {
            Box::pin(stages(&mut bench, &options)).await?;
        }
        if options.e2e {
            Box::pin(e2e(&mut bench, &options)).await?;
        }
        println!("\n  load average after: {}", load());
        Ok(())
    })
}
