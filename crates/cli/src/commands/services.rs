//! The services: `poco market serve`, `poco scheduler run`, `poco worker run`,
//! `poco results serve`. Each runs until Ctrl-C or SIGTERM.

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::{
    Failure,
    cli::{MarketCommand, ResultsCommand, SchedulerCommand, WorkerCommand},
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
    let config = poco_scheduler::SchedulerConfig::new(
        client.rpc_url(),
        *client.deployment(),
        workerpool,
        client.wallet()?.clone(),
        database_url,
        results_url,
    );
    let listener = listen(&address).await?;
    eprintln!("scheduler of {workerpool} listening on http://{address}");
    poco_scheduler::run(config, listener, shutdown_signal())
        .await
        .map_err(|e| service("scheduler", e))
}

/// `poco worker run`.
pub(crate) async fn worker(context: &Context, command: WorkerCommand) -> Result<(), Failure> {
    let WorkerCommand::Run { scheduler_url, slots, data_dir } = command;
    let client = context.signing_client().await?;
    let mut config = poco_worker::WorkerConfig::new(
        scheduler_url,
        client.rpc_url(),
        client.wallet()?.clone(),
        data_dir,
    );
    config.slots = slots;
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
