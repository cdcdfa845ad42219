//! The services: `poco market serve`, `poco scheduler run`, `poco worker run`,
//! `poco results serve`, `poco sms serve`. Each runs until Ctrl-C or SIGTERM.

use std::{str::FromStr, sync::Arc};

use alloy::signers::local::PrivateKeySigner;
use tokio::net::TcpListener;

use crate::{
    Failure,
    cli::{MarketCommand, ResultsCommand, SchedulerCommand, SmsCommand, WorkerCommand},
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
    let MarketCommand::Serve { listen: address, data_dir, database_url } = command;
    let client = context.client().await?;
    let mut config =
        poco_market::MarketConfig::new(data_dir, client.rpc_url(), *client.deployment());
    config.database_url = database_url;
    let market = poco_market::Service::open(config).await.map_err(|e| service("market", e))?;
    let listener = listen(&address).await?;
    eprintln!("market listening on http://{address}");
    market.run(listener, shutdown_signal()).await.map_err(|e| service("market", e))
}

/// `poco scheduler run`.
pub(crate) async fn scheduler(context: &Context, command: SchedulerCommand) -> Result<(), Failure> {
    let SchedulerCommand::Run { workerpool, listen: address, database_url, results_url } = command;
    let client = context.signing_client().await?;
    let mut config = poco_scheduler::SchedulerConfig::new(
        client.rpc_url(),
        *client.deployment(),
        workerpool,
        client.wallet()?.clone(),
        database_url,
        results_url,
    );
    config.sms_url = context.sms_url();
    let listener = listen(&address).await?;
    eprintln!("scheduler of {workerpool} listening on http://{address}");
    match &config.sms_url {
        Some(sms) => eprintln!("TEE deals get their enclave challenges from the SMS at {sms}"),
        None => eprintln!("no SMS (--sms.url): TEE deals are not served"),
    }
    poco_scheduler::run(config, listener, shutdown_signal())
        .await
        .map_err(|e| service("scheduler", e))
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
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| Failure::config(format!("{}: {e}", data_dir.display())))?;
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
