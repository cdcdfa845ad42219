//! `poco devnet`: a whole marketplace on this machine.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use alloy::primitives::{Address, U256};
use poco_chain::devnet::{NodeState, NodeStatus};
use poco_primitives::Amount;
use serde::{Deserialize, Serialize};

use poco_devnet::DevnetOptions;
use poco_sdk::devnet::{self, DevnetInfo};

use crate::{
    Failure,
    cli::DevnetCommand,
    commands::services::shutdown_signal,
    context::Context,
    output::{Output, fields, table},
};

/// How long `--detach` waits for the devnet to be ready.
const READY_WITHIN: Duration = Duration::from_secs(300);

/// What a devnet with an SMS in simulation mode says, loudly.
const SIMULATION_WARNING: &str = "\
WARNING: INSECURE simulation. This devnet's SMS trusts simulated enclave quotes, and its TEE
workers (--tee-workers) run confidential tasks in plain directories of this machine: datasets,
secrets and results of TEE tasks here are readable by whoever runs it. Try the confidential
path with it; never give it real secrets.
";

/// What `devnet status` says of the chain node: whether it runs, and its restarts.
fn node_summary(node: Option<&NodeStatus>) -> String {
    let Some(node) = node else {
        return "chain node: no status recorded\n".into();
    };
    let state = match node.state {
        NodeState::Running => "running",
        NodeState::Restarting => "RESTARTING (requests wait)",
    };
    let mut text = format!("chain node: {state}, anvil pid {}", node.pid);
    match &node.last_restart {
        Some(last) => {
            text += &format!(
                ", restarted {} time(s); last: {} ({} write(s) sent again)",
                node.restarts, last.cause, last.replayed
            );
        }
        None => text += ", never restarted",
    }
    text + "\n"
}

fn summary(info: &DevnetInfo) -> String {
    let mut lines = vec![
        ("chain (JSON-RPC)", info.rpc_url.clone()),
        ("market", info.market_url.clone()),
        ("explorer", format!("{}/", info.market_url.trim_end_matches('/'))),
        ("scheduler", info.scheduler_url.clone()),
        ("result store", info.results_url.clone()),
    ];
    if let Some(sms) = &info.sms_url {
        let mode = if info.insecure_simulation { " (INSECURE simulation)" } else { "" };
        lines.push(("SMS (secrets)", format!("{sms}{mode}")));
    }
    lines.extend([
        ("protocol", info.deployment.poco.to_string()),
        ("RLC token", info.deployment.token.to_string()),
        ("workerpool", info.workerpool.to_string()),
    ]);
    let mut text = fields(&lines);
    let rows: Vec<Vec<String>> = info
        .accounts
        .iter()
        .map(|(role, address)| vec![role.clone(), address.to_string()])
        .collect();
    text += "\naccounts (use with --devnet-account <role>):\n";
    text += &table(&["role", "address"], &rows);
    if info.byzantine_workers > 0 {
        text += &format!(
            "the last {} worker(s) commit wrong results on purpose\n",
            info.byzantine_workers
        );
    }
    let tee = info.tee_worker_roles();
    if !tee.is_empty() {
        let verb = if tee.len() == 1 { "runs" } else { "run" };
        text += &format!(
            "{} {verb} TEE tasks (`poco run --tag tee`) in simulated enclaves\n",
            tee.join(", ")
        );
    }
    if info.insecure_simulation {
        text += "\n";
        text += SIMULATION_WARNING;
    }
    text
}

/// `poco devnet ...`.
pub(crate) async fn run(
    context: &Context,
    output: Output,
    command: DevnetCommand,
) -> Result<(), Failure> {
    match command {
        DevnetCommand::Up {
            workers,
            byzantine_workers,
            tee_workers,
            slots,
            detach,
            python_runtime,
            module_cache,
            postgres,
            s3,
            s3_settings,
        } => {
            if let Some(url) = &s3
                && !url.starts_with("s3://")
            {
                return Err(Failure::usage(format!(
                    "--s3 takes an S3 bucket URL (s3://bucket/prefix), not {url:?}"
                )));
            }
            if s3.is_none() && s3_settings.is_some() {
                return Err(Failure::usage("--s3-settings goes with --s3 (the bucket it reaches)"));
            }
            let mut options = DevnetOptions::new(&context.home);
            let absolute = |dir: PathBuf| std::path::absolute(&dir).unwrap_or(dir);
            let s3_settings = s3_settings.map(&absolute);
            options.engines = poco_devnet::Engines { postgres, s3, s3_settings };
            options.workers = workers;
            options.byzantine_workers = byzantine_workers;
            options.tee_workers = tee_workers;
            options.slots = slots;
            options.fetch = context.fetch_policy().clone();
            options.python_runtime = python_runtime.map(absolute);
            options.module_cache = module_cache.map(absolute);
            if detach {
                return detached(context, output, &options).await;
            }
            Box::pin(poco_devnet::up(options, shutdown_signal(), |info| {
                output.result(info, || summary(info));
                output.progress("devnet running: Ctrl-C stops it (its state is kept)");
            }))
            .await?;
            output.progress("devnet stopped");
        }
        DevnetCommand::Down => {
            let stopped = devnet::down(&context.home).await?;
            let json = serde_json::json!({"stopped": stopped});
            output.result(&json, || {
                if stopped { "devnet stopped".into() } else { "no devnet running".into() }
            });
        }
        DevnetCommand::Reset => {
            devnet::reset(&context.home).await?;
            let json = serde_json::json!({"reset": true});
            output.result(&json, || "devnet deleted".into());
        }
        DevnetCommand::Balances { since } => balances(context, output, since.as_deref()).await?,
        DevnetCommand::Status => match context.devnet() {
            Some(info) => {
                let node = NodeStatus::read(&devnet::devnet_dir(&context.home).join("chain"));
                let mut json = serde_json::to_value(&info).expect("the devnet info serializes");
                json["chainNode"] = serde_json::to_value(&node).expect("the status serializes");
                output.result(&json, || summary(&info) + &node_summary(node.as_ref()))
            }
            None => {
                let json = serde_json::json!({"running": false});
                output.result(&json, || {
                    "no devnet running (start one with `poco devnet up --detach`)".into()
                });
            }
        },
    }
    Ok(())
}

/// Starts the devnet as a background process and waits until it is ready.
async fn detached(
    context: &Context,
    output: Output,
    options: &DevnetOptions,
) -> Result<(), Failure> {
    if let Some(info) = context.devnet() {
        output.result(&info, || summary(&info));
        output.progress("a devnet was already running");
        return Ok(());
    }
    let dir = devnet::devnet_dir(&context.home);
    poco_chain::files::private_dir(&dir)
        .map_err(|e| Failure::config(format!("{}: {e}", dir.display())))?;
    let log_path = dir.join("devnet.log");
    let log = poco_chain::files::create_private(&log_path)
        .map_err(|e| Failure::config(format!("{}: {e}", log_path.display())))?;
    let program = std::env::current_exe().map_err(|e| Failure::config(e.to_string()))?;
    let mut child = {
        use std::os::unix::process::CommandExt;
        let mut command = std::process::Command::new(program);
        command.arg("--home").arg(&context.home);
        if let Some(config) = &context.config_file {
            command.arg("--config").arg(config);
        }
        // The policy as resolved here (configuration file and flags), as flags.
        for net in &options.fetch.allow {
            command.arg("--fetch.allow").arg(net.to_string());
        }
        for dir in &options.fetch.provided_dirs {
            command.arg("--fetch.allow-dir").arg(dir);
        }
        for dir in &options.fetch.input_dirs {
            command.arg("--fetch.input-dir").arg(dir);
        }
        command
            .args(["devnet", "up", "--workers", &options.workers.to_string()])
            .args(["--byzantine-workers", &options.byzantine_workers.to_string()])
            .args(["--tee-workers", &options.tee_workers.to_string()])
            .args(["--slots", &options.slots.to_string()]);
        if let Some(dir) = &options.python_runtime {
            command.arg("--python-runtime").arg(dir);
        }
        if let Some(dir) = &options.module_cache {
            command.arg("--module-cache").arg(dir);
        }
        // The PostgreSQL URL may hold a password: in the environment, not on a command line
        // other users can read.
        match &options.engines.postgres {
            Some(url) => command.env("POCO_DEVNET_POSTGRES", url),
            None => command.env_remove("POCO_DEVNET_POSTGRES"),
        };
        if let Some(url) = &options.engines.s3 {
            command.arg("--s3").arg(url);
        }
        if let Some(file) = &options.engines.s3_settings {
            command.arg("--s3-settings").arg(file);
        }
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| Failure::config(e.to_string()))?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| Failure::config(format!("cannot start the devnet: {e}")))?
    };
    let starting = format!("starting the devnet (log: {})", log_path.display());
    let spinner = output.spinner(&starting);
    if spinner.is_hidden() {
        output.progress(format!("{starting}..."));
    }
    let started = tokio::time::Instant::now();
    loop {
        if let Some(info) = context.devnet() {
            spinner.finish_and_clear();
            output.result(&info, || summary(&info));
            return Ok(());
        }
        // What it is doing now: the last line of its log.
        if let Some(doing) = last_log_line(&log_path) {
            spinner.set_message(format!("starting the devnet: {doing}"));
        }
        if let Ok(Some(status)) = child.try_wait() {
            spinner.finish_and_clear();
            let log = log_tail(&log_path, 64 * 1024).unwrap_or_default();
            let log = anstream::adapter::strip_str(&log).to_string();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(Failure::config(format!(
                "the devnet exited ({status}):\n{}",
                tail.join("\n")
            )));
        }
        if started.elapsed() > READY_WITHIN {
            spinner.finish_and_clear();
            return Err(Failure::config(format!(
                "the devnet was not ready within {} s: see {}",
                READY_WITHIN.as_secs(),
                log_path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The last line of the log at `path`, its styles and the logger's prefix (time, level,
/// target) dropped, cut to a terminal line's width.
fn last_log_line(path: &std::path::Path) -> Option<String> {
    let log = log_tail(path, 4096)?;
    let line = log.lines().rev().find(|l| !l.trim().is_empty())?;
    let plain = anstream::adapter::strip_str(line).to_string();
    // `2026-12-07T10:00:00.000000Z  INFO poco::devnet: message`: the message.
    let message = plain.split_once(": ").map_or(plain.as_str(), |(_, m)| m).trim();
    Some(message.chars().take(60).collect())
}

/// The last `bytes` of the file at `path` (all of it when shorter), as text: what is shown of
/// a log that may grow large, read without reading it whole.
fn log_tail(path: &std::path::Path, bytes: u64) -> Option<String> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let length = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(bytes))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    Some(String::from_utf8_lossy(&tail).into_owned())
}

/// What one devnet account holds, as `poco devnet balances --json` prints it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleBalance {
    role: String,
    address: Address,
    wallet: Amount,
    free: Amount,
    frozen: Amount,
    score: u64,
}

impl RoleBalance {
    /// Everything the account owns: tokens in the wallet, free and frozen in poco.
    fn total(&self) -> i128 {
        [self.wallet, self.free, self.frozen].iter().map(|a| nrlc(*a)).sum()
    }
}

fn nrlc(amount: Amount) -> i128 {
    i128::try_from(amount.nrlc()).unwrap_or(i128::MAX)
}

/// A signed change, with its unit: `+1.1 RLC`, `-0.3 RLC`, `0 RLC`.
fn change(delta: i128) -> String {
    let magnitude = Amount::from_nrlc(U256::from(delta.unsigned_abs()));
    match delta.signum() {
        1 => format!("+{magnitude}"),
        -1 => format!("-{magnitude}"),
        _ => magnitude.to_string(),
    }
}

/// `poco devnet balances [--since FILE]`.
async fn balances(context: &Context, output: Output, since: Option<&Path>) -> Result<(), Failure> {
    let info = context.devnet().ok_or_else(|| {
        Failure::config("no devnet running: start one with `poco devnet up --detach`")
    })?;
    let before: Option<Vec<RoleBalance>> = match since {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::config(format!("{}: {e}", path.display())))?;
            Some(serde_json::from_str(&text).map_err(|e| {
                Failure::config(format!(
                    "{} is not a snapshot of `poco devnet balances --json`: {e}",
                    path.display()
                ))
            })?)
        }
        None => None,
    };
    let client = context.client().await?;
    let mut now = Vec::with_capacity(info.accounts.len());
    for (role, address) in &info.accounts {
        let balance = client.balance(*address).await?;
        now.push(RoleBalance {
            role: role.clone(),
            address: *address,
            wallet: balance.wallet,
            free: balance.free,
            frozen: balance.frozen,
            score: balance.score,
        });
    }
    let Some(before) = before else {
        let rows: Vec<Vec<String>> = now
            .iter()
            .map(|b| {
                vec![
                    b.role.clone(),
                    b.address.to_string(),
                    b.wallet.to_string(),
                    b.free.to_string(),
                    b.frozen.to_string(),
                    b.score.to_string(),
                ]
            })
            .collect();
        output.result(&now, || {
            table(&["role", "address", "wallet", "free", "frozen", "score"], &rows)
        });
        return Ok(());
    };
    let mut changes = Vec::new();
    let mut rows = Vec::new();
    for after in &now {
        let Some(earlier) = before.iter().find(|b| b.address == after.address) else { continue };
        let gained = after.total() - earlier.total();
        let frozen = nrlc(after.frozen) - nrlc(earlier.frozen);
        let verdict = match gained.signum() {
            1 => "earned",
            -1 if after.role == "requester" => "paid",
            -1 => "lost",
            _ => "",
        };
        let byzantine = info.byzantine_workers > 0
            && info.accounts[info.accounts.len() - info.byzantine_workers..]
                .iter()
                .any(|(_, address)| *address == after.address);
        rows.push(vec![
            if byzantine { format!("{} (byzantine)", after.role) } else { after.role.clone() },
            change(gained),
            verdict.to_owned(),
            change(frozen),
            format!("{} -> {}", earlier.score, after.score),
        ]);
        changes.push(serde_json::json!({
            "role": after.role,
            "address": after.address,
            "changeNrlc": gained.to_string(),
            "frozenChangeNrlc": frozen.to_string(),
            "scoreBefore": earlier.score,
            "scoreAfter": after.score,
        }));
    }
    output.result(&changes, || table(&["role", "change", "", "frozen change", "score"], &rows));
    Ok(())
}
