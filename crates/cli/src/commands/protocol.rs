//! `poco protocol deploy`: the protocol's contracts on any chain, resumable from a journal,
//! and the network profile that names them.

use std::{path::Path, str::FromStr, time::Duration};

use alloy::{network::EthereumWallet, signers::local::PrivateKeySigner};
use poco_chain::ClientConfig;
use poco_contracts::{DeployOptions, Journal, ResumeOptions};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    Failure,
    cli::{ProtocolCommand, ProtocolDeploy},
    context::Context,
    network::{self, Contracts, Profile},
    output::{Output, fields},
};

/// The environment variable a deployer's private key may be read from.
pub(crate) const PRIVATE_KEY_ENV: &str = "POCO_PRIVATE_KEY";

/// The journal file of a deployment (`<home>/networks/NAME.deploy.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JournalFile {
    /// The format's version.
    version: u32,
    /// The network deployed.
    network: String,
    /// The endpoint last used.
    rpc_url: String,
    /// The deployment's record.
    journal: Journal,
}

/// `poco protocol ...`.
pub(crate) async fn protocol(
    context: &Context,
    output: Output,
    command: ProtocolCommand,
) -> Result<(), Failure> {
    match command {
        ProtocolCommand::Deploy(args) => deploy(context, output, args).await,
    }
}

/// The deployer's key: `--private-key-file`, else the wallet (`--wallet`, `--devnet-account`),
/// else `POCO_PRIVATE_KEY`. A key is never read from a flag's value, and never echoed.
fn deployer(context: &Context, args: &ProtocolDeploy) -> Result<PrivateKeySigner, Failure> {
    if args.private_key.is_some() {
        return Err(Failure::usage(
            "a private key is never taken from a flag's value (it would show in the process \
             list and the shell's history): put it in a file given with --private-key-file, in \
             the environment variable POCO_PRIVATE_KEY, or in a keystore given with --wallet",
        ));
    }
    if let Some(path) = &args.private_key_file {
        if !path.exists() && looks_like_a_key(&path.to_string_lossy()) {
            return Err(Failure::usage(
                "--private-key-file takes the path of a file holding the key, not the key \
                 itself (a key on the command line shows in the process list and the shell's \
                 history): write it to a file, or set POCO_PRIVATE_KEY",
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::wallet(format!("{}: {e}", path.display())))?;
        warn_if_shared(path);
        return PrivateKeySigner::from_str(text.trim()).map_err(|_| {
            Failure::wallet(format!("{}: not a private key in hexadecimal", path.display()))
        });
    }
    if let Some(signer) = context.wallet()? {
        return Ok(signer);
    }
    match std::env::var(PRIVATE_KEY_ENV) {
        Ok(text) => PrivateKeySigner::from_str(text.trim()).map_err(|_| {
            Failure::wallet(format!("{PRIVATE_KEY_ENV} is not a private key in hexadecimal"))
        }),
        Err(_) => Err(Failure::wallet(format!(
            "no deployer: pass --private-key-file FILE, set {PRIVATE_KEY_ENV}, or pass --wallet \
             <keystore>"
        ))),
    }
}

/// Whether `text` has the shape of a private key (64 hexadecimal digits, `0x` or not).
fn looks_like_a_key(text: &str) -> bool {
    let hex = text.trim().trim_start_matches("0x");
    hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// Warns when other users of the machine can read a key file.
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "WARNING: {} (mode {mode:o}) can be read by other users of this machine: \
                 `chmod 600` it",
                path.display()
            );
        }
    }
}

/// A contracts error as the command line tells it; an endpoint that cannot be reached exits
/// with 7, as elsewhere.
fn failure(error: poco_contracts::Error, rpc_url: &str) -> Failure {
    match error {
        poco_contracts::Error::Transport(transport) => {
            let error = poco_chain::Error::Rpc(transport);
            if error.is_transient() {
                poco_sdk::Error::chain_unusable(rpc_url, &error).into()
            } else {
                error.into()
            }
        }
        poco_contracts::Error::Reverted(revert) => poco_chain::Error::Reverted(revert).into(),
        other => Failure::config(other.to_string()),
    }
}

fn read_journal(path: &Path) -> Result<Option<JournalFile>, Failure> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Failure::config(format!("deployment journal {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::config(format!("deployment journal {}: {e}", path.display()))),
    }
}

fn write_journal(path: &Path, file: &JournalFile) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(file).expect("a journal is JSON");
    poco_chain::files::write_private(path, &bytes)
}

/// Refuses a rerun whose options differ from the journal's.
fn check_options(journal: &Journal, args: &ProtocolDeploy, path: &Path) -> Result<(), Failure> {
    let differs = |what: &str, given: String, recorded: String| {
        Failure::config(format!(
            "the deployment journal {} was started with {what} {recorded}, and this run gives \
             {given}: a deployment is resumed with the options it started with (or deploy \
             another network, with another --network name)",
            path.display()
        ))
    };
    if let Some(token) = args.token
        && journal.existing_token != Some(token)
    {
        let recorded = journal.existing_token.map_or("a new RLC token".into(), |t| t.to_string());
        return Err(differs("the token", token.to_string(), recorded));
    }
    if let Some(owner) = args.owner
        && owner != journal.owner
    {
        return Err(differs("the owner", owner.to_string(), journal.owner.to_string()));
    }
    if let Some(delay) = args.committee_seed_delay
        && delay != journal.committee_seed_delay
    {
        return Err(differs(
            "the committee seed delay",
            delay.to_string(),
            journal.committee_seed_delay.to_string(),
        ));
    }
    Ok(())
}

/// `poco protocol deploy`.
async fn deploy(context: &Context, output: Output, args: ProtocolDeploy) -> Result<(), Failure> {
    let name = args.name.clone().or_else(|| context.network_name().map(str::to_owned)).ok_or_else(
        || Failure::usage("name the network to deploy: --network NAME (or --name NAME)"),
    )?;
    network::check_name(&name)?;
    if name == network::DEVNET {
        return Err(Failure::usage(
            "`devnet` names the running devnet, which deploys itself: choose another name",
        ));
    }
    let signer = deployer(context, &args)?;
    let home = &context.home;
    let journal_path = network::journal_path(home, &name);
    let profile_path = network::profile_path(home, &name);
    // A journal in which nothing was sent yet holds nothing to resume: it starts afresh.
    let recorded = read_journal(&journal_path)?.filter(|file| !file.journal.steps.is_empty());
    let existing_profile = network::find(home, &name)?.map(|network| network.profile);
    if recorded.is_none() && existing_profile.is_some() {
        return Err(Failure::config(format!(
            "the network {name:?} exists ({}) and was not deployed from this home: choose \
             another name",
            profile_path.display()
        )));
    }
    let rpc_url = context
        .rpc_url_flag()
        .map(str::to_owned)
        .or_else(|| existing_profile.as_ref().map(|profile| profile.rpc_url.clone()))
        .or_else(|| recorded.as_ref().map(|file| file.rpc_url.clone()))
        .ok_or_else(|| {
            Failure::usage("where to deploy? Pass the chain's endpoint: --rpc.url URL")
        })?;
    let config = ClientConfig { max_retries: 2, ..ClientConfig::default() };
    let (chain, chain_id) = poco_sdk::connect_chain(&rpc_url, None, config).await?;
    let provider = chain.provider();
    let deployer = signer.address();

    let mut token_info = None;
    let mut journal = match recorded {
        Some(file) => {
            let journal = file.journal;
            if journal.chain_id != chain_id {
                return Err(Failure::config(format!(
                    "the deployment journal {} is of chain {}, and {rpc_url} serves chain \
                     {chain_id}: a deployment is never resumed on another chain (deploy there \
                     under another --network name)",
                    journal_path.display(),
                    journal.chain_id
                )));
            }
            if journal.deployer != deployer {
                return Err(Failure::config(format!(
                    "the deployment journal {} was started by the deployer {}, and the key given \
                     is {deployer}'s: resume it with the same key (or deploy under another \
                     --network name)",
                    journal_path.display(),
                    journal.deployer
                )));
            }
            check_options(&journal, &args, &journal_path)?;
            journal
        }
        None => {
            if let Some(token) = args.token {
                let info = poco_contracts::check_token(provider, token)
                    .await
                    .map_err(|e| failure(e, &rpc_url))?;
                if info.decimals != 9 {
                    eprintln!(
                        "WARNING: the token {token} ({}) has {} decimals; poco counts amounts \
                         in units of 10^-9 (nRLC): its amounts will read in those units",
                        info.symbol, info.decimals
                    );
                }
                token_info = Some(info);
            }
            let options = DeployOptions {
                owner: args.owner.unwrap_or(deployer),
                token: args.token,
                committee_seed_delay: args.committee_seed_delay.unwrap_or(0),
            };
            Journal::new(chain_id, deployer, options)
        }
    };
    let was_complete = journal.is_complete();
    let folder = network::dir(home);
    poco_chain::files::private_dir(&folder)
        .map_err(|e| Failure::config(format!("{}: {e}", folder.display())))?;
    let file_of = |journal: &Journal| JournalFile {
        version: 1,
        network: name.clone(),
        rpc_url: rpc_url.clone(),
        journal: journal.clone(),
    };
    write_journal(&journal_path, &file_of(&journal))
        .map_err(|e| Failure::config(format!("{}: {e}", journal_path.display())))?;
    if was_complete {
        output.progress(format!(
            "the protocol is already deployed on {name}: checking it on-chain, nothing to send"
        ));
    } else {
        let left = journal
            .components()
            .into_iter()
            .filter(|c| journal.step(*c).is_none_or(|step| step.address.is_none()))
            .count();
        output.progress(format!(
            "deploying the protocol on chain {chain_id} ({rpc_url}) from {deployer}: {left} \
             contract(s) to create; journal {}",
            journal_path.display()
        ));
    }
    let options = ResumeOptions {
        wallet: EthereumWallet::from(signer),
        gas_margin_percent: 20,
        receipt_timeout: Duration::from_secs(args.receipt_timeout.max(1)),
    };
    let report = poco_contracts::resume(provider, &mut journal, &options, |journal| {
        write_journal(&journal_path, &file_of(journal))
    })
    .await
    .map_err(|e| failure(e, &rpc_url))?;
    let deployment = journal.deployment().ok_or_else(|| {
        Failure::config(format!("the deployment is not complete: see {}", journal_path.display()))
    })?;

    let previous = existing_profile.unwrap_or(Profile {
        rpc_url: rpc_url.clone(),
        chain_id,
        poco_address: deployment.poco,
        from_block: deployment.block,
        confirmations: None,
        market_url: None,
        sms_url: None,
        results_url: None,
        contracts: None,
    });
    let profile = Profile {
        rpc_url: rpc_url.clone(),
        chain_id,
        poco_address: deployment.poco,
        from_block: deployment.block,
        confirmations: Some(
            args.confirmations.or(previous.confirmations).unwrap_or(network::DEFAULT_CONFIRMATIONS),
        ),
        market_url: context.market_url_flag().map(str::to_owned).or(previous.market_url),
        sms_url: context.sms_url_flag().map(str::to_owned).or(previous.sms_url),
        results_url: args.results_url.clone().or(previous.results_url),
        contracts: Some(Contracts {
            token: deployment.token,
            app_registry: deployment.app_registry,
            dataset_registry: deployment.dataset_registry,
            workerpool_registry: deployment.workerpool_registry,
            tasks_module: deployment.tasks_module,
        }),
    };
    let written = network::save(home, &name, &profile, "written by `poco protocol deploy`")?;
    let sent: Vec<_> = report
        .sent
        .iter()
        .map(|(component, hash)| json!({"contract": component.name(), "transaction": hash}))
        .collect();
    let adopted: Vec<&str> = report.adopted.iter().map(|c| c.name()).collect();
    let replanned: Vec<&str> = report.replanned.iter().map(|c| c.name()).collect();
    let result = json!({
        "network": name,
        "profile": written,
        "journal": journal_path,
        "rpcUrl": rpc_url,
        "deployer": deployer,
        "deployment": deployment,
        "confirmations": profile.confirmations,
        "alreadyDeployed": was_complete,
        "sent": sent,
        "adopted": adopted,
        "replanned": replanned,
        "token": token_info,
    });
    output.result(&result, || {
        let mut lines = vec![
            ("network", name.clone()),
            ("chain id", chain_id.to_string()),
            ("protocol", deployment.poco.to_string()),
            ("token", deployment.token.to_string()),
            ("app registry", deployment.app_registry.to_string()),
            ("dataset registry", deployment.dataset_registry.to_string()),
            ("workerpool registry", deployment.workerpool_registry.to_string()),
            ("task module", deployment.tasks_module.to_string()),
            ("from block", deployment.block.to_string()),
            ("deployer", deployer.to_string()),
            ("profile", written.display().to_string()),
            ("journal", journal_path.display().to_string()),
        ];
        lines.push((
            "this run",
            if report.sent.is_empty() {
                if was_complete {
                    "already deployed: nothing sent".to_owned()
                } else {
                    format!(
                        "nothing sent: {} creation(s) of an earlier run found on-chain",
                        report.adopted.len()
                    )
                }
            } else {
                format!("{} transaction(s) sent", report.sent.len())
            },
        ));
        fields(&lines)
    });
    Ok(())
}
