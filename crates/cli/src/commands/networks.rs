//! `poco network list|show|add`: the network profiles of the home.

use alloy::{primitives::Address, providers::Provider};
use poco_chain::ClientConfig;
use serde_json::{Value, json};

use crate::{
    Failure,
    cli::NetworkCommand,
    context::Context,
    network::{self, Contracts, Network, Profile, Source},
    output::{Output, fields, table},
};

/// A profile as `--json` shows it.
fn describe(network: &Network) -> Value {
    let profile = &network.profile;
    json!({
        "name": network.name,
        "source": match &network.source {
            Source::File(path) => path.display().to_string(),
            Source::Devnet => "the running devnet".to_owned(),
        },
        "rpcUrl": profile.rpc_url,
        "chainId": profile.chain_id,
        "pocoAddress": profile.poco_address,
        "fromBlock": profile.from_block,
        "confirmations": network.confirmations(),
        "marketUrl": profile.market_url,
        "smsUrl": profile.sms_url,
        "resultsUrl": profile.results_url,
        "contracts": profile.contracts,
    })
}

/// `poco network ...`.
pub(crate) async fn network(
    context: &Context,
    output: Output,
    command: NetworkCommand,
) -> Result<(), Failure> {
    match command {
        NetworkCommand::List => {
            let networks = network::list(&context.home)?;
            let json: Vec<Value> = networks.iter().map(describe).collect();
            output.result(&json, || {
                if networks.is_empty() {
                    return "none: `poco protocol deploy --network NAME` or `poco network add \
                            NAME` makes one\n"
                        .into();
                }
                let rows: Vec<Vec<String>> = networks
                    .iter()
                    .map(|n| {
                        vec![
                            n.name.clone(),
                            n.profile.chain_id.to_string(),
                            n.profile.poco_address.to_string(),
                            n.profile.rpc_url.clone(),
                        ]
                    })
                    .collect();
                table(&["name", "chain", "protocol", "endpoint"], &rows)
            });
        }
        NetworkCommand::Show { name } => {
            let name =
                name.or_else(|| context.network_name().map(str::to_owned)).ok_or_else(|| {
                    Failure::usage("which network? `poco network show NAME` (`poco network list`)")
                })?;
            let network = network::load(&context.home, &name)?;
            let json = describe(&network);
            output.result(&json, || {
                let profile = &network.profile;
                let mut lines = vec![
                    ("network", network.name.clone()),
                    ("from", json["source"].as_str().unwrap_or_default().to_owned()),
                    ("endpoint", profile.rpc_url.clone()),
                    ("chain id", profile.chain_id.to_string()),
                    ("protocol", profile.poco_address.to_string()),
                    ("from block", profile.from_block.to_string()),
                    ("confirmations", network.confirmations().to_string()),
                ];
                for (label, value) in [
                    ("market", &profile.market_url),
                    ("SMS", &profile.sms_url),
                    ("result store", &profile.results_url),
                ] {
                    if let Some(value) = value {
                        lines.push((label, value.clone()));
                    }
                }
                if let Some(contracts) = &profile.contracts {
                    lines.push(("token", contracts.token.to_string()));
                }
                fields(&lines)
            });
        }
        NetworkCommand::Add { name, from_block, confirmations, results_url, force } => {
            network::check_name(&name)?;
            if name == network::DEVNET {
                return Err(Failure::usage(
                    "`devnet` names the running devnet: choose another name",
                ));
            }
            let path = network::profile_path(&context.home, &name);
            if path.exists() && !force {
                return Err(Failure::config(format!(
                    "the network {name:?} exists ({}): pass --force to replace it",
                    path.display()
                )));
            }
            let rpc_url = context
                .rpc_url_flag()
                .ok_or_else(|| Failure::usage("pass the chain's endpoint: --rpc.url URL"))?
                .to_owned();
            let poco = context
                .poco_address_flag()
                .ok_or_else(|| Failure::usage("pass the protocol's address: --poco.address"))?;
            let config = ClientConfig { max_retries: 1, ..ClientConfig::default() };
            let (chain, chain_id) = poco_sdk::connect_chain(&rpc_url, None, config).await?;
            // The protocol answers at that address: its token and registries are read.
            let deployment = poco_sdk::discover(chain.provider(), poco, chain_id, 0).await?;
            let tasks_module = poco_contracts::bindings::poco_deployable::Poco::new(
                poco,
                chain.provider().clone(),
            )
            .tasksModule()
            .call()
            .await
            .unwrap_or(Address::ZERO);
            let from_block = match from_block {
                Some(block) => block,
                None => {
                    // The earliest of the protocol's contracts: a registry may hold assets
                    // registered before its entry point was deployed.
                    let mut earliest = u64::MAX;
                    for contract in [
                        poco,
                        deployment.app_registry,
                        deployment.dataset_registry,
                        deployment.workerpool_registry,
                    ] {
                        earliest =
                            earliest.min(deployment_block(chain.provider(), contract).await?);
                    }
                    earliest
                }
            };
            let profile = Profile {
                rpc_url,
                chain_id,
                poco_address: poco,
                from_block,
                confirmations: Some(confirmations.unwrap_or(network::DEFAULT_CONFIRMATIONS)),
                market_url: context.market_url_flag().map(str::to_owned),
                sms_url: context.sms_url_flag().map(str::to_owned),
                results_url,
                contracts: Some(Contracts {
                    token: deployment.token,
                    app_registry: deployment.app_registry,
                    dataset_registry: deployment.dataset_registry,
                    workerpool_registry: deployment.workerpool_registry,
                    tasks_module,
                }),
            };
            network::save(&context.home, &name, &profile, "written by `poco network add`")?;
            let network = network::load(&context.home, &name)?;
            let json = describe(&network);
            output.result(&json, || {
                fields(&[
                    ("network", name.clone()),
                    ("chain id", chain_id.to_string()),
                    ("protocol", poco.to_string()),
                    ("token", deployment.token.to_string()),
                    ("from block", from_block.to_string()),
                    ("profile", path.display().to_string()),
                ])
            });
        }
    }
    Ok(())
}

/// The first block at which `contract` holds code, found by halving the range (the node must
/// keep the state of past blocks: an archive node, or a young chain).
async fn deployment_block(
    provider: &alloy::providers::DynProvider,
    contract: Address,
) -> Result<u64, Failure> {
    let no_history = |e: alloy::transports::TransportError| {
        Failure::config(format!(
            "cannot find the block the protocol was deployed at (the node does not answer for \
             past blocks: {e}): pass --from-block BLOCK"
        ))
    };
    let head = provider.get_block_number().await.map_err(no_history)?;
    let (mut low, mut high) = (0, head);
    while low < high {
        let middle = low + (high - low) / 2;
        let code = provider.get_code_at(contract).number(middle).await.map_err(no_history)?;
        if code.is_empty() {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    Ok(low)
}
