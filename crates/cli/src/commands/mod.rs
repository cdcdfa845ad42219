//! The commands, each a thin call into the SDK or a service crate.

mod account;
mod app_kit;
mod assets;
mod confidential;
mod devnet;
mod networks;
mod orders;
mod protocol;
mod run;
mod services;

use std::io::{BufRead, IsTerminal, Write};

use crate::{
    Failure,
    cli::{Cli, Command, MarketCommand, ProtocolCommand, SmsCommand},
    context::Context,
    output::Output,
};

/// Whether the command runs long-lived services (their logs are shown at `info`).
pub(crate) fn runs_services(command: &Command) -> bool {
    matches!(
        command,
        Command::Devnet(_)
            | Command::Market(MarketCommand::Run(_) | MarketCommand::Serve(_))
            | Command::Scheduler(_)
            | Command::Worker(_)
            | Command::ResultStore(_)
            | Command::Results(_)
            | Command::Sms(SmsCommand::Run(_) | SmsCommand::Serve(_))
    )
}

/// Runs a parsed command line.
pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    let quiet = cli.global.quiet;
    for (old, new) in deprecated_spellings(&cli.command) {
        if !quiet {
            eprintln!(
                "warning: `{old}` is now `{new}`; the former spelling goes away in the next \
                 release"
            );
        }
    }
    // What describes the command line itself needs no configuration, even a broken one.
    match &cli.command {
        Command::Completions { shell } => return completions(*shell),
        Command::Man { out_dir } => {
            return write_manual(
                out_dir,
                Output::new(cli.global.json, cli.global.quiet, cli.global.wide),
            );
        }
        _ => {}
    }
    // The commands that create a profile name a network that may not exist yet.
    let network_may_be_new =
        matches!(cli.command, Command::Protocol(ProtocolCommand::Deploy(_)) | Command::Network(_));
    let context = Context::load(&cli.global, network_may_be_new)?;
    let output = Output::new(context.json, context.quiet, context.wide);
    match cli.command {
        Command::Devnet(command) => Box::pin(devnet::run(&context, output, command)).await,
        Command::Wallet(command) => account::wallet(&context, output, command).await,
        Command::Account(command) => account::account(&context, output, command).await,
        Command::App(command) => assets::app(&context, output, command).await,
        Command::Dataset(command) => assets::dataset(&context, output, command).await,
        Command::Workerpool(command) => assets::workerpool(&context, output, command).await,
        Command::Order(command) => orders::order(&context, output, command).await,
        Command::Orderbook(args) => orders::orderbook(&context, output, args).await,
        Command::Run(args) => Box::pin(run::run(&context, output, args)).await,
        Command::Deal(command) => run::deal(&context, output, command).await,
        Command::Task(command) => Box::pin(run::task(&context, output, command)).await,
        Command::Result(command) => run::result(&context, output, command).await,
        Command::Secret(command) => confidential::secret(&context, output, command).await,
        Command::Protocol(command) => protocol::protocol(&context, output, command).await,
        Command::Network(command) => networks::network(&context, output, command).await,
        Command::Market(MarketCommand::Export { out }) => {
            orders::export(&context, output, out.as_deref()).await
        }
        Command::Market(MarketCommand::Import { file }) => {
            orders::import(&context, output, &file).await
        }
        Command::Market(MarketCommand::Run(flags) | MarketCommand::Serve(flags)) => {
            services::market(&context, flags).await
        }
        Command::Scheduler(command) => Box::pin(services::scheduler(&context, command)).await,
        Command::Worker(command) => Box::pin(services::worker(&context, command)).await,
        Command::ResultStore(command) | Command::Results(command) => {
            services::results(&context, command).await
        }
        Command::Sms(command @ (SmsCommand::Run(_) | SmsCommand::Serve(_))) => {
            services::sms(&context, command).await
        }
        Command::Sms(SmsCommand::Status) => confidential::sms_status(&context, output).await,
        // Answered before the configuration is read (above).
        Command::Completions { .. } | Command::Man { .. } => Ok(()),
    }
}

/// The former spellings a command line used, each with what replaced it.
fn deprecated_spellings(command: &Command) -> Vec<(&'static str, &'static str)> {
    use crate::cli::{DatasetCommand, ResultCommand, ResultsCommand, WalletCommand};
    let mut found = Vec::new();
    match command {
        Command::Market(MarketCommand::Serve(_)) => {
            found.push(("poco market serve", "poco market run"))
        }
        Command::Results(_) => found.push(("poco results", "poco result-store")),
        Command::Sms(SmsCommand::Serve(_)) => found.push(("poco sms serve", "poco sms run")),
        Command::Wallet(WalletCommand::Create { dir, .. } | WalletCommand::Import { dir, .. })
            if dir.out.is_some() =>
        {
            found.push(("--out DIR", "--out-dir DIR"));
        }
        Command::Result(ResultCommand::Download { out: Some(_), .. }) => {
            found.push(("--out DIR", "--out-dir DIR"));
        }
        Command::Dataset(
            DatasetCommand::PushKey { dataset, .. } | DatasetCommand::CheckKey { dataset },
        ) if dataset.flag.is_some() => found.push(("--dataset ADDRESS", "DATASET")),
        _ => {}
    }
    if let Command::Results(ResultsCommand::Serve(_))
    | Command::ResultStore(ResultsCommand::Serve(_)) = command
    {
        found.push(("serve", "run"));
    }
    found
}

/// `poco completions SHELL`.
fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut crate::cli::command(), "poco", &mut script);
    std::io::stdout()
        .write_all(&script)
        .map_err(|e| Failure::config(format!("cannot write to stdout: {e}")))
}

/// Writes a manual page per command into `dir`: `poco.1`, `poco-run.1`, `poco-wallet-list.1`...
fn write_manual(dir: &std::path::Path, output: Output) -> Result<(), Failure> {
    fn pages(command: &clap::Command, prefix: &str, out: &mut Vec<(String, clap::Command)>) {
        let name = if prefix.is_empty() {
            command.get_name().to_owned()
        } else {
            format!("{prefix}-{}", command.get_name())
        };
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            pages(sub, &name, out);
        }
        out.push((name, command.clone()));
    }
    let mut command = crate::cli::command();
    command.build();
    let mut found = Vec::new();
    pages(&command, "", &mut found);
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::config(format!("cannot create {}: {e}", dir.display())))?;
    let mut written = Vec::new();
    for (name, page) in found {
        let path = dir.join(format!("{name}.1"));
        let mut roff = Vec::new();
        clap_mangen::Man::new(page.name(name.clone()))
            .render(&mut roff)
            .and_then(|()| std::fs::write(&path, roff))
            .map_err(|e| Failure::config(format!("cannot write {}: {e}", path.display())))?;
        written.push(path);
    }
    written.sort();
    let count = written.len();
    output.result(&written, || format!("{count} manual pages written in {}", dir.display()));
    Ok(())
}

/// Asks `question` on the terminal unless `--yes`; refuses when there is no terminal to ask.
pub(crate) fn confirm(context: &Context, question: &str) -> Result<(), Failure> {
    if context.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::config(format!("{question} Pass --yes to confirm without a prompt.")));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| Failure::config(e.to_string()))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Failure::config("cancelled"))
    }
}

/// Parses an amount with its unit (`2 RLC`, `500 nRLC`).
pub(crate) fn amount(text: &str) -> Result<poco_primitives::Amount, Failure> {
    text.parse::<poco_primitives::Amount>().map_err(|e| match e {
        poco_primitives::Error::AmountWithoutUnit { .. } => Failure::usage(e.to_string()),
        _ => Failure::usage(format!(
            "{text:?} is not an amount: {e} (write e.g. \"2 RLC\" or \"500 nRLC\")"
        )),
    })
}

/// Parses a tag: names (`tee,gpu`) or hex; empty for none.
pub(crate) fn tag(text: &str) -> Result<poco_primitives::Tag, Failure> {
    if text.trim().is_empty() {
        return Ok(poco_primitives::Tag::NONE);
    }
    text.parse::<poco_primitives::Tag>()
        .map_err(|e| Failure::usage(format!("{text:?} is not a tag: {e}")))
}
