//! `poco`: the command line of the poco marketplace, one binary with a subcommand per role.
//!
//! A thin layer over `poco-sdk` (user commands) and the service crates (`market run`,
//! `scheduler run`, `worker run`, `result-store run`, `sms run`, `devnet up`): parse, resolve the
//! configuration, call the library, print, and map errors to documented exit codes.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]
// The doc comments of the command line are its `--help` text, where `<home>` is a placeholder,
// not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

mod cli;
mod commands;
mod context;
mod network;
mod output;
mod password;

use std::process::ExitCode;

use clap::FromArgMatches;

use crate::{cli::Cli, output::Output};

/// A failed command: what to tell the user, and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    /// What caused it, told after the message: a transport's error, an endpoint's answer.
    cause: Option<String>,
    kind: &'static str,
    code: u8,
}

impl Failure {
    /// A configuration problem (exit code 1).
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self { message: message.into(), cause: None, kind: "config", code: 1 }
    }

    /// A malformed value on the command line (exit code 2, as clap's own usage errors).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self { message: message.into(), cause: None, kind: "usage", code: 2 }
    }

    /// A wallet that cannot be opened, or a password that cannot be read (exit code 3).
    pub(crate) fn wallet(message: impl Into<String>) -> Self {
        Self { message: message.into(), cause: None, kind: "wallet", code: 3 }
    }

    /// What went wrong, as told to the user.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// This failure, with what it means for the command put first.
    pub(crate) fn context(mut self, context: &str) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Tasks that were followed to their end and failed (exit code 10).
    pub(crate) fn tasks_failed(message: impl Into<String>) -> Self {
        Self { message: message.into(), cause: None, kind: "tasks_failed", code: 10 }
    }
}

impl From<poco_sdk::Error> for Failure {
    fn from(error: poco_sdk::Error) -> Self {
        let kind = error.kind();
        let cause = error.cause().map(str::to_owned);
        Self { message: describe(&error), cause, kind: kind.code(), code: exit_code(kind) }
    }
}

/// The documented exit code of each kind of SDK failure. Every kind is named: a new one must be
/// given its code here.
fn exit_code(kind: poco_sdk::ErrorKind) -> u8 {
    use poco_sdk::ErrorKind;
    match kind {
        ErrorKind::Input => 2,
        ErrorKind::Wallet => 3,
        ErrorKind::Funds => 4,
        ErrorKind::NoMatch => 5,
        ErrorKind::NotFound => 6,
        ErrorKind::ChainUnreachable | ErrorKind::MarketUnreachable | ErrorKind::SmsUnreachable => 7,
        ErrorKind::Refused => 8,
        ErrorKind::Result => 9,
        ErrorKind::Chain
        | ErrorKind::NotMined
        | ErrorKind::Market
        | ErrorKind::Config
        | ErrorKind::Fetch
        | ErrorKind::RunCheck
        | ErrorKind::Devnet
        | ErrorKind::Io
        | ErrorKind::Sms => 1,
    }
}

/// An SDK error as the command line words it: the SDK says what is wrong, and the command line
/// adds the flags and commands that fix it.
fn describe(error: &poco_sdk::Error) -> String {
    use poco_sdk::Error;
    match error {
        Error::NoWallet => {
            "no wallet: pass --account <name> (`poco wallet list`; create one with `poco wallet \
             create --name <name>`) or --wallet <keystore>, or use a devnet account with \
             --devnet-account <role>"
                .to_owned()
        }
        Error::ChainDown { .. } => format!(
            "{error}: is the node (or `poco devnet up`) running? Set another endpoint with \
             --rpc.url"
        ),
        Error::ChainRefused { status: 401 | 403, .. } => format!(
            "{error}: it wants credentials, which the URL (--rpc.url, or the network's profile) \
             lacks or has wrong: most providers take an API key in the URL's path"
        ),
        Error::ChainRefused { status: 429, .. } => format!(
            "{error}: it limits how often it is asked; try again later, or use another endpoint \
             with --rpc.url"
        ),
        Error::ChainRefused { .. } => format!("{error}: set another endpoint with --rpc.url"),
        Error::MarketDown { .. } => format!(
            "{error}: is it running (`poco devnet up` starts one)? Set another with --market.url"
        ),
        Error::SmsDown { .. } => format!(
            "{error}: is it running (`poco devnet up` starts one)? Set another with --sms.url"
        ),
        Error::RunCheck(_) => format!("{error} (--no-check skips this check)"),
        _ => error.to_string(),
    }
}

impl From<poco_api::market::Error> for Failure {
    fn from(error: poco_api::market::Error) -> Self {
        poco_sdk::Error::from(error).into()
    }
}

impl From<poco_chain::Error> for Failure {
    fn from(error: poco_chain::Error) -> Self {
        poco_sdk::Error::from(error).into()
    }
}

impl From<poco_chain::WalletError> for Failure {
    fn from(error: poco_chain::WalletError) -> Self {
        poco_sdk::Error::from(error).into()
    }
}

/// The environment variable holding the log filter (`info`, `poco=debug,warn`...), which `-q`
/// and `-v` beat.
const LOG_ENV: &str = "POCO_LOG";

/// Logs on stderr: services at `info`, other commands at `warn`; `-q` errors only, each `-v` a
/// level more; else [`LOG_ENV`] when set.
fn init_tracing(services: bool, quiet: bool, verbose: u8) {
    const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];
    let default = usize::from(services) + 1;
    let chosen = match (quiet, verbose) {
        (true, _) => Some(0),
        (false, 0) => None,
        (false, more) => Some((default + usize::from(more)).min(LEVELS.len() - 1)),
    };
    let filter = match chosen {
        Some(level) => tracing_subscriber::EnvFilter::new(LEVELS[level]),
        None => tracing_subscriber::EnvFilter::try_from_env(LOG_ENV)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(LEVELS[default])),
    };
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Flags beat the environment for who signs too: when the command line names a signer
/// (`--devnet-account`, `--account`, `--wallet`), those its environment variables name step
/// aside, whatever their own order of precedence.
fn prefer_signers_on_the_command_line(matches: &clap::ArgMatches, global: &mut cli::Global) {
    use clap::parser::ValueSource;
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    if !(given("devnet_account") || given("account") || given("wallet")) {
        return;
    }
    if !given("devnet_account") {
        global.devnet_account = None;
    }
    if !given("account") {
        global.account = None;
    }
    if !given("wallet") {
        global.wallet = None;
    }
}

fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    prefer_signers_on_the_command_line(&matches, &mut cli.global);
    let services = commands::runs_services(&cli.command);
    if services {
        // What the services write (databases, archives, secrets, the chain's state, logs) is
        // theirs alone, whichever library writes it.
        poco_chain::files::keep_new_files_private();
    }
    init_tracing(services, cli.global.quiet, cli.global.verbose);
    let output = Output::new(cli.global.json, cli.global.quiet, cli.global.wide);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    let outcome = match runtime {
        Ok(runtime) => runtime.block_on(commands::run(cli)),
        Err(error) => Err(Failure::config(format!("cannot start the async runtime: {error}"))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if output.is_json() {
                let body = serde_json::json!({
                    "error": failure.message,
                    "code": failure.kind,
                    "cause": failure.cause,
                });
                output::stdout_line(&body.to_string());
            } else {
                eprintln!("error: {}", failure.message);
                if let Some(cause) = &failure.cause {
                    eprintln!("  cause: {cause}");
                }
            }
            ExitCode::from(failure.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use poco_sdk::Error;

    use super::*;

    #[test]
    fn sdk_errors_are_told_with_the_flags_that_fix_them() {
        let url = || "http://127.0.0.1:9".to_owned();
        let cases = [
            (
                Error::NoWallet,
                "no wallet: pass --account <name> (`poco wallet list`; create one with `poco \
                 wallet create --name <name>`) or --wallet <keystore>, or use a devnet account \
                 with --devnet-account <role>",
            ),
            (
                Error::ChainDown { url: url(), cause: "refused".to_owned() },
                "cannot reach the chain at http://127.0.0.1:9: is the node (or `poco devnet up`) \
                 running? Set another endpoint with --rpc.url",
            ),
            (
                Error::MarketDown { url: url(), cause: "refused".to_owned() },
                "cannot reach the market at http://127.0.0.1:9: is it running (`poco devnet up` \
                 starts one)? Set another with --market.url",
            ),
            (
                Error::SmsDown { url: url(), cause: "refused".to_owned() },
                "cannot reach the SMS at http://127.0.0.1:9: is it running (`poco devnet up` \
                 starts one)? Set another with --sms.url",
            ),
            (
                Error::RunCheck("the app cannot be fetched".to_owned()),
                "the app cannot be fetched; nothing was paid (--no-check skips this check)",
            ),
            (Error::Config("a message of its own".to_owned()), "a message of its own"),
        ];
        for (error, expected) in cases {
            let failure = Failure::from(error);
            assert_eq!(failure.message, expected);
        }
        assert_eq!(Failure::from(Error::NoWallet).code, 3);
    }
}
