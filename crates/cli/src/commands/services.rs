//! The services: `poco market serve`, `poco scheduler run`, `poco worker run`,
//! `poco results serve`, `poco sms serve`. Each runs until Ctrl-C or SIGTERM.

use std::{collections::HashSet, path::Path, str::FromStr, sync::Arc};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use tokio::net::TcpListener;

use crate::{
    Failure,
    cli::{AdmitRule, MarketCommand, ResultsCommand, SchedulerCommand, SmsCommand, WorkerCommand},
    context::Context,
};

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

async fn listen(address: &str) -> Result<TcpListener, Failure> {
    TcpListener::bind(address)
        .await
        .map_err(|e| Failure::config(format!("cannot listen on {address}: {e}")))
}

fn service(name: &str, error: impl std::fmt::Display) -> Failure {
    Failure::config(format!("{name}: {error}"))
}

/// `poco market serve`.
pub(crate) async fn market(context: &Context, command: MarketCommand) -> Result<(), Failure> {
    let MarketCommand::Serve {
        listen: address,
        data_dir,
        database_url,
        trusted_proxies,
        header_timeout,
        idle_timeout,
        max_connections_per_client,
        max_websockets_per_client,
    } = command;
    if database_url.is_none() {
        private_data_dir(&data_dir)?;
    }
    let client = context.client().await?;
    let mut config =
        poco_market::MarketConfig::new(data_dir, client.rpc_url(), *client.deployment());
    config.database_url = database_url;
    config.trusted_proxies = trusted_proxies;
    config.server.header_read_timeout = std::time::Duration::from_secs(header_timeout.max(1));
    config.server.idle_timeout = std::time::Duration::from_secs(idle_timeout.max(1));
    config.server.max_connections_per_client = max_connections_per_client.max(1);
    config.limits.max_websocket_clients_per_client = max_websockets_per_client.max(1);
    let market = poco_market::Service::open(config).await.map_err(|e| service("market", e))?;
    let listener = listen(&address).await?;
    eprintln!("market listening on http://{address}");
    market.run(listener, shutdown_signal()).await.map_err(|e| service("market", e))
}

/// `poco scheduler run`.
pub(crate) async fn scheduler(context: &Context, command: SchedulerCommand) -> Result<(), Failure> {
    let SchedulerCommand::Run {
        workerpool,
        listen: address,
        database_url,
        results_urls,
        admit,
        admit_workers,
        admit_file,
    } = command;
    let admission = admission(admit, admit_workers, admit_file.as_deref())?;
    let mut results_urls = results_urls.into_iter();
    let first = results_urls.next().ok_or_else(|| Failure::config("--results.url is required"))?;
    let client = context.signing_client().await?;
    let mut config = poco_scheduler::SchedulerConfig::new(
        client.rpc_url(),
        *client.deployment(),
        workerpool,
        client.wallet()?.clone(),
        database_url,
        first,
    );
    config.result_stores.extend(results_urls);
    config.sms_url = context.sms_url();
    config.admission = admission;
    let listener = listen(&address).await?;
    eprintln!("scheduler of {workerpool} listening on http://{address}");
    match &config.sms_url {
        Some(sms) => eprintln!("TEE deals get their enclave challenges from the SMS at {sms}"),
        None => eprintln!("no SMS (--sms.url): TEE deals are not served"),
    }
    match &config.admission {
        poco_scheduler::Admission::Open => eprintln!(
            "WARNING: admission is open (--admit open): any stranger can register and be \
             handed this pool's tasks"
        ),
        rule => eprintln!("admission: {} ({})", rule.name(), rule.requirement()),
    }
    poco_scheduler::run(config, listener, shutdown_signal())
        .await
        .map_err(|e| service("scheduler", e))
}

/// The admission rule the flags describe: an allow-list needs at least one worker, and the
/// other rules take none.
fn admission(
    rule: AdmitRule,
    workers: Vec<Address>,
    file: Option<&Path>,
) -> Result<poco_scheduler::Admission, Failure> {
    let listed = !workers.is_empty() || file.is_some();
    match rule {
        AdmitRule::Bonded | AdmitRule::Open if listed => {
            Err(Failure::config("--admit.worker and --admit.file go with --admit allow-list only"))
        }
        AdmitRule::Bonded => Ok(poco_scheduler::Admission::Bonded),
        AdmitRule::Open => Ok(poco_scheduler::Admission::Open),
        AdmitRule::AllowList => {
            let mut allowed: HashSet<Address> = workers.into_iter().collect();
            if let Some(path) = file {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Failure::config(format!("{}: {e}", path.display())))?;
                for (number, line) in text.lines().enumerate() {
                    let line = line.split('#').next().unwrap_or_default().trim();
                    if line.is_empty() {
                        continue;
                    }
                    let address = Address::from_str(line).map_err(|_| {
                        Failure::config(format!(
                            "{}:{}: {line:?} is not an address",
                            path.display(),
                            number + 1
                        ))
                    })?;
                    allowed.insert(address);
                }
            }
            if allowed.is_empty() {
                return Err(Failure::config(
                    "--admit allow-list needs workers: --admit.worker ADDRESS or --admit.file FILE",
                ));
            }
            Ok(poco_scheduler::Admission::AllowList(allowed))
        }
    }
}

/// `poco worker run`.
pub(crate) async fn worker(context: &Context, command: WorkerCommand) -> Result<(), Failure> {
    let WorkerCommand::Run {
        scheduler_url,
        slots,
        data_dir,
        insecure_simulation,
        simulation_key_file,
        enclave_dir,
    } = command;
    let client = context.signing_client().await?;
    let mut config = poco_worker::WorkerConfig::new(
        scheduler_url,
        client.rpc_url(),
        client.wallet()?.clone(),
        data_dir,
    );
    config.slots = slots;
    config.fetch = context.fetch_policy().clone();
    if insecure_simulation && let Some(path) = simulation_key_file {
        let sms = context.sms_url().ok_or_else(|| {
            Failure::config("TEE tasks need the SMS that provisions their enclaves: pass --sms.url")
        })?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Failure::config(format!("{}: {e}", path.display())))?;
        let key = PrivateKeySigner::from_str(text.trim()).map_err(|_| {
            Failure::config(format!("{}: not a private key in hexadecimal", path.display()))
        })?;
        eprintln!(
            "INSECURE simulated enclave: TEE tasks run in {} of this machine, readable by its \
             owner, with quotes signed by {} (for tests and demos only)",
            enclave_dir.display(),
            key.address()
        );
        let mut tee = poco_worker::tee::TeeConfig::simulation(sms, key);
        tee.workspace_root = enclave_dir;
        config.tee = Some(tee);
    }
    let executor = poco_worker::exec::WasmExecutor::new().map_err(|e| service("worker", e))?;
    poco_worker::run(config, Arc::new(executor), shutdown_signal())
        .await
        .map_err(|e| service("worker", e))
}

/// `poco results serve`.
pub(crate) async fn results(context: &Context, command: ResultsCommand) -> Result<(), Failure> {
    let ResultsCommand::Serve { listen: address, storage } = command;
    let client = context.client().await?;
    let mut config = poco_results::Config::new(client.rpc_url(), client.deployment().poco);
    config.storage = storage.parse().map_err(|e| service("result store", e))?;
    config.chain.from_block = client.deployment().block;
    let listener = listen(&address).await?;
    poco_results::serve(config, listener, shutdown_signal())
        .await
        .map_err(|e| service("result store", e))
}

/// `poco sms serve`.
pub(crate) async fn sms(context: &Context, command: SmsCommand) -> Result<(), Failure> {
    let SmsCommand::Serve {
        listen: address,
        data_dir,
        database_url,
        master_key,
        collateral_dir,
        insecure_simulation,
        simulation_signers,
    } = command
    else {
        return Err(Failure::config("not a service command"));
    };
    let client = context.client().await?;
    private_data_dir(&data_dir)?;
    let database_url =
        database_url.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("sms.db").display()));
    let master_key = master_key.unwrap_or_else(|| data_dir.join("master.key"));
    let mut config = poco_sms::SmsConfig::new(
        client.rpc_url(),
        client.deployment().poco,
        database_url,
        master_key,
    );
    config.attestation.dcap.collateral_dir = collateral_dir;
    if insecure_simulation {
        eprintln!(
            "WARNING: INSECURE simulation: quotes signed by {} are trusted as enclaves; they \
             prove nothing about the hardware. Never keep real secrets in this SMS.",
            simulation_signers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        );
        config.attestation.simulation =
            Some(poco_sms::SimulationConfig { trusted_signers: simulation_signers });
    }
    let listener = listen(&address).await?;
    let bound = listener.local_addr().map_or(address, |a| a.to_string());
    eprintln!("SMS listening on http://{bound}");
    poco_sms::serve(config, listener, shutdown_signal()).await.map_err(|e| service("SMS", e))
}

/// Creates a service's data folder (0700), or checks that an existing one is private.
fn private_data_dir(dir: &std::path::Path) -> Result<(), Failure> {
    poco_chain::files::private_dir(dir)
        .map_err(|e| Failure::config(format!("{}: {e}", dir.display())))
}
