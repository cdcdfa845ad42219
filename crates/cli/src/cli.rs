//! The command line: every command, its options and its examples.

use std::path::PathBuf;

use alloy::primitives::{Address, B256};
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

/// poco: a decentralized marketplace for computing.
///
/// Providers sell computing power (workerpools), applications and datasets; anyone can buy
/// them. `poco devnet up` starts a whole marketplace on this machine to try it.
#[derive(Debug, Parser)]
#[command(
    name = "poco",
    version,
    propagate_version = true,
    after_help = "\
Examples:
  poco devnet up --detach             start a marketplace on this machine
  poco --devnet-account requester account balance
  poco --devnet-account requester run 0xApp --args \"1000000 42\" --trust 4 --watch
  poco --network consortium --wallet me.json account balance

Exit codes: 0 success, 1 error, 2 bad usage, 3 wallet, 4 funds, 5 no matching orders,
6 not found, 7 chain, market or SMS unreachable, 8 refused by the contracts or the SMS,
9 no verified result, 10 tasks failed."
)]
pub(crate) struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes; each has an environment variable.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The poco home: configuration, wallets, the devnet.
    #[arg(long, global = true, env = "POCO_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Configuration file (default: <home>/config.toml).
    #[arg(long, global = true, env = "POCO_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The network profile to use (`poco network list`): its chain, protocol, market and SMS,
    /// unless a flag says otherwise; `devnet` is the running devnet.
    #[arg(long, global = true, env = "POCO_NETWORK", value_name = "NAME")]
    pub network: Option<String>,
    /// The chain's JSON-RPC endpoint (default: the network's, else the running devnet's).
    #[arg(long = "rpc.url", global = true, env = "POCO_RPC_URL", value_name = "URL")]
    pub rpc_url: Option<String>,
    /// The market's URL (default: the network's, else the running devnet's).
    #[arg(long = "market.url", global = true, env = "POCO_MARKET_URL", value_name = "URL")]
    pub market_url: Option<String>,
    /// The secret management service (SMS) of confidential tasks (default: the network's, else
    /// the running devnet's).
    #[arg(long = "sms.url", global = true, env = "POCO_SMS_URL", value_name = "URL")]
    pub sms_url: Option<String>,
    /// The protocol's address on the chain (default: the network's, else the running devnet's).
    #[arg(long = "poco.address", global = true, env = "POCO_ADDRESS", value_name = "ADDRESS")]
    pub poco_address: Option<Address>,
    /// The wallet: a keystore file, by path.
    #[arg(long, global = true, env = "POCO_WALLET", value_name = "KEYSTORE")]
    pub wallet: Option<PathBuf>,
    /// The wallet: a keystore by name or by address, in <home>/wallets or Foundry's
    /// ~/.foundry/keystores (`poco wallet list`). Beats --wallet.
    #[arg(long, global = true, env = "POCO_ACCOUNT", value_name = "NAME|ADDRESS")]
    pub account: Option<String>,
    /// Read the wallet's password from this file (else POCO_WALLET_PASSWORD, else a prompt).
    #[arg(long = "password-file", global = true, env = "POCO_PASSWORD_FILE", value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Act as an account of the running devnet: owner, requester, app-provider,
    /// dataset-provider, scheduler or worker-<n>.
    #[arg(
        long = "devnet-account",
        global = true,
        env = "POCO_DEVNET_ACCOUNT",
        value_name = "ROLE"
    )]
    pub devnet_account: Option<String>,
    /// Most seconds a transaction is waited for (mined, then confirmed) before the command
    /// fails saying so [default: 600].
    #[arg(
        long = "tx-timeout",
        global = true,
        env = "POCO_TX_TIMEOUT",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub tx_timeout: Option<u64>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Show whole hashes in tables (they are shortened to 0x1a2b3c…4d5e otherwise).
    #[arg(long, global = true)]
    pub wide: bool,
    /// Print results and errors only: no progress, no warnings.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More log output on stderr: -v info, -vv debug, -vvv trace (beats POCO_LOG, which takes
    /// a filter such as `poco=debug`).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// What may be fetched on others' behalf, beyond public http(s) addresses.
    #[command(flatten)]
    pub fetch: FetchArgs,
}

/// Widenings of the fetch policy: what workers (and clients checking a run) may fetch on
/// others' behalf beyond public `http(s)` addresses. Each adds to the `[fetch]` section of
/// the configuration file.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct FetchArgs {
    /// Let every URL fetched on others' behalf reach this network (CIDR, e.g. 127.0.0.0/8 for
    /// a local server of input files). Repeatable.
    #[arg(long = "fetch.allow", alias = "fetch-allow", global = true, value_name = "CIDR")]
    pub allow: Vec<poco_fetch::IpNet>,
    /// Let apps and datasets be file:// URLs inside this directory. Repeatable.
    #[arg(long = "fetch.allow-dir", global = true, value_name = "DIR")]
    pub allow_dir: Vec<PathBuf>,
    /// Let requesters' input files be file:// URLs inside this directory (a worker that
    /// allows it hands those files to strangers' apps). Repeatable.
    #[arg(long = "fetch.input-dir", global = true, value_name = "DIR")]
    pub input_dir: Vec<PathBuf>,
    /// Let apps be fetched from this origin (http://IP:PORT) although its address is not
    /// public: a result store serving apps' code on this network. Repeatable.
    #[arg(long = "fetch.app-origin", global = true, value_name = "URL")]
    pub app_origin: Vec<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// A whole marketplace on this machine.
    #[command(subcommand)]
    Devnet(DevnetCommand),
    /// Wallets: keystore files.
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// The poco account: deposit, withdraw, balance.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Applications.
    #[command(subcommand)]
    App(AppCommand),
    /// Datasets, plain or encrypted for confidential tasks.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Workerpools.
    #[command(subcommand)]
    Workerpool(WorkerpoolCommand),
    /// Orders: sign, publish, unpublish, cancel, show.
    #[command(subcommand)]
    Order(OrderCommand),
    /// The orderbook of the market.
    #[command(
        after_help = "Examples:\n  poco orderbook workerpool --category 0\n  poco orderbook app --app 0xApp"
    )]
    Orderbook(OrderbookArgs),
    /// Run an app: find the best orders, pay, follow the tasks, get the results.
    #[command(after_help = "\
Examples:
  poco run 0xApp --args \"1000000 42\" --watch
  poco run 0xApp --trust 4 --max-price \"5 RLC\" --yes --download results/")]
    Run(RunArgs),
    /// Deals.
    #[command(subcommand)]
    Deal(DealCommand),
    /// Tasks.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Results: download, and the key of results encrypted for you.
    #[command(subcommand)]
    Result(ResultCommand),
    /// Secrets of confidential (TEE) tasks, kept by the SMS.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Deploy the protocol on a chain.
    #[command(subcommand)]
    Protocol(ProtocolCommand),
    /// Network profiles: where a marketplace runs.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Run the market (orderbook service).
    #[command(subcommand)]
    Market(MarketCommand),
    /// Run a workerpool's scheduler.
    #[command(subcommand)]
    Scheduler(SchedulerCommand),
    /// Run a worker.
    #[command(subcommand)]
    Worker(WorkerCommand),
    /// Run the result store.
    #[command(subcommand, name = "result-store")]
    ResultStore(ResultsCommand),
    /// Former name of `result-store`.
    #[command(subcommand, hide = true)]
    Results(ResultsCommand),
    /// Run the secret management service (SMS) of confidential tasks, or ask it its status.
    #[command(subcommand)]
    Sms(SmsCommand),
    /// Print a shell's completion script for poco.
    #[command(after_help = "\
Examples:
  source <(poco completions bash)
  poco completions zsh > ~/.zfunc/_poco
  poco completions fish > ~/.config/fish/completions/poco.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages of poco and of each of its commands (roff, section 1).
    #[command(after_help = "\
Example:
  poco man --out-dir man/ && man -l man/poco-run.1")]
    Man {
        /// The directory to write them in (created if needed).
        #[arg(long = "out-dir", value_name = "DIR")]
        out_dir: PathBuf,
    },
}

/// The top-level commands of operators (who run the marketplace's services); the others are
/// users' (who buy and sell on it).
pub(crate) const OPERATOR_COMMANDS: &[&str] =
    &["protocol", "network", "market", "scheduler", "worker", "result-store", "results", "sms"];

/// The command line, its top-level help listing users' and operators' commands apart.
pub(crate) fn command() -> clap::Command {
    use clap::CommandFactory;
    let command = Cli::command();
    let entries: Vec<(String, String, bool)> = command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .map(|sub| {
            let name = sub.get_name().to_owned();
            let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
            let operator = OPERATOR_COMMANDS.contains(&name.as_str());
            (name, about, operator)
        })
        .chain([(
            "help".to_owned(),
            "Print this message or the help of the given command(s)".to_owned(),
            false,
        )])
        .collect();
    let width = entries.iter().map(|(name, ..)| name.len()).max().unwrap_or(0);
    let list = |operators: bool| -> String {
        entries
            .iter()
            .filter(|(.., operator)| *operator == operators)
            .map(|(name, about, _)| format!("  {name:<width$}  {about}\n"))
            .collect()
    };
    let template = format!(
        "{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\nUser commands:\n{}\n\
         Operator commands:\n{}\nOptions:\n{{options}}{{after-help}}",
        list(false),
        list(true),
    );
    command.help_template(template)
}

/// `poco devnet`.
#[derive(Debug, Subcommand)]
pub(crate) enum DevnetCommand {
    /// Start a devnet (or resume the one in the home directory). Its SMS runs in the INSECURE
    /// simulation mode: confidential tasks on a devnet protect nothing from this machine.
    #[command(
        after_help = "Examples:\n  poco devnet up\n  poco devnet up --detach --workers 4 --byzantine-workers 1\n  poco devnet up --detach --workers 2 --tee-workers 1\n  poco devnet up --detach --postgres postgres://postgres@127.0.0.1:5432/devnet --s3 s3://results --s3-settings s3.env"
    )]
    Up {
        /// Honest workers.
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Workers that commit wrong results.
        #[arg(long = "byzantine-workers", default_value_t = 0)]
        byzantine_workers: usize,
        /// Workers that also run TEE tasks, in INSECURE simulated enclaves.
        #[arg(long = "tee-workers", default_value_t = 0)]
        tee_workers: usize,
        /// Task slots per worker.
        #[arg(long, default_value_t = 2)]
        slots: u32,
        /// Run in the background and return once it is ready.
        #[arg(long)]
        detach: bool,
        /// A folder of Python runtime parts named by sha256, from which the workers fetch the
        /// runtime of Python apps (scripts/python-runtime.sh fills target/runtimes/sha256).
        #[arg(long = "python-runtime", env = "POCO_PYTHON_RUNTIME_SOURCE", value_name = "DIR")]
        python_runtime: Option<PathBuf>,
        /// Where compiled modules are kept (mode 0700) [default: <home>/modules].
        #[arg(long = "module-cache", env = "POCO_MODULE_CACHE", value_name = "DIR")]
        module_cache: Option<PathBuf>,
        /// A PostgreSQL server for the market, the scheduler and the SMS: the URL of a database
        /// there, beside which each gets a database of its own (`<database>_market`,
        /// `_scheduler`, `_sms`). Chosen when the devnet is created and kept with it [default:
        /// SQLite files in the devnet's folder].
        #[arg(long, env = "POCO_DEVNET_POSTGRES", value_name = "URL")]
        postgres: Option<String>,
        /// An S3 bucket for the result store (`s3://bucket/prefix`), its credentials, region
        /// and endpoint from `AWS_*` variables or --s3-settings. Chosen when the devnet is
        /// created and kept with it [default: a folder of the devnet].
        #[arg(long, value_name = "URL")]
        s3: Option<String>,
        /// A mode-600 file of `AWS_*` settings for --s3 (never credentials on the command line).
        #[arg(long = "s3-settings", value_name = "FILE")]
        s3_settings: Option<PathBuf>,
    },
    /// Stop the running devnet (its state is kept).
    #[command(after_help = "Example:\n  poco devnet down")]
    Down,
    /// Stop the devnet and delete it.
    #[command(after_help = "Example:\n  poco devnet reset")]
    Reset,
    /// Whether a devnet runs, with its endpoints and accounts.
    #[command(after_help = "Example:\n  poco devnet status --json")]
    Status,
    /// The balances of every devnet account; with `--since`, what each gained or lost since a
    /// snapshot saved by `--json` (who paid and who earned).
    #[command(after_help = "\
Examples:
  poco devnet balances --json > before.json
  poco devnet balances --since before.json")]
    Balances {
        /// A snapshot printed earlier by `poco devnet balances --json`.
        #[arg(long, value_name = "FILE")]
        since: Option<std::path::PathBuf>,
    },
}

/// Where a new keystore goes.
#[derive(Debug, Args)]
pub(crate) struct KeystoreDirArgs {
    /// Directory of the keystore (default: <home>/wallets).
    #[arg(long = "out-dir", value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Former spelling of --out-dir.
    #[arg(long = "out", value_name = "DIR", hide = true, conflicts_with = "out_dir")]
    pub out: Option<PathBuf>,
}

/// `poco wallet`.
#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// Create a new wallet (a keystore file protected by a password).
    #[command(after_help = "\
Examples:
  poco wallet create --name alice
  poco --account alice account balance")]
    Create {
        /// The keystore's name, for `--account NAME` (default: geth's
        /// UTC--<time>--<address>).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Where to keep the keystore.
        #[command(flatten)]
        dir: KeystoreDirArgs,
    },
    /// List the keystores of <home>/wallets and of Foundry's ~/.foundry/keystores, with their
    /// names (for `--account NAME`) and addresses, without unlocking any.
    #[command(after_help = "Examples:\n  poco wallet list\n  poco wallet list --json")]
    List,
    /// Import a private key or a mnemonic into a keystore file.
    #[command(
        after_help = "Examples:\n  poco wallet import --private-key-file key.txt\n  poco wallet import --mnemonic-file words.txt --index 2"
    )]
    Import {
        /// A file holding the private key (hex).
        #[arg(long, value_name = "FILE", conflicts_with = "mnemonic_file")]
        private_key_file: Option<PathBuf>,
        /// A file holding a BIP-39 mnemonic.
        #[arg(long, value_name = "FILE")]
        mnemonic_file: Option<PathBuf>,
        /// Derivation index for a mnemonic (m/44'/60'/0'/0/<index>).
        #[arg(long, default_value_t = 0)]
        index: u32,
        /// The keystore's name, for `--account NAME` (default: geth's
        /// UTC--<time>--<address>).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Where to keep the keystore.
        #[command(flatten)]
        dir: KeystoreDirArgs,
    },
    /// Show the wallet's address and balances (ETH for gas, RLC, the poco account), without
    /// unlocking it.
    #[command(
        after_help = "Examples:\n  poco --account alice wallet show\n  poco --wallet ~/.poco/wallets/UTC--... wallet show"
    )]
    Show,
    /// Send ETH or RLC tokens from the wallet to another address (RLC from the wallet, not
    /// the poco account: `poco account withdraw` first).
    #[command(
        after_help = "Examples:\n  poco wallet send \"0.5 ETH\" --to 0xFriend\n  poco wallet send \"100 RLC\" --to 0xFriend"
    )]
    Send {
        /// Amount, with its unit: `ETH`, `gwei`, `wei`, `RLC` or `nRLC`.
        amount: String,
        /// The recipient.
        #[arg(long, value_name = "ADDRESS")]
        to: Address,
    },
}

/// `poco account`.
#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Move RLC from the wallet into the poco account.
    #[command(
        after_help = "Examples:\n  poco account deposit \"10 RLC\"\n  poco account deposit \"500 nRLC\""
    )]
    Deposit {
        /// Amount, with its unit (`2 RLC`, `0.5 RLC`, `500 nRLC`).
        amount: String,
    },
    /// Move RLC from the poco account back to the wallet.
    #[command(after_help = "Example:\n  poco account withdraw \"2 RLC\"")]
    Withdraw {
        /// Amount, with its unit.
        amount: String,
    },
    /// Balances: wallet, free and frozen in the poco account, score.
    #[command(
        after_help = "Examples:\n  poco account balance\n  poco account balance 0xAddress --json"
    )]
    Balance {
        /// Whose balance (default: the wallet's).
        address: Option<Address>,
    },
}

/// What registers an app or a dataset.
#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// Its name.
    #[arg(long)]
    pub name: String,
    /// The file (its sha256 becomes the registered checksum).
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Where workers fetch it (default: a file:// URL of --file, for devnets).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// `poco app`.
#[derive(Debug, Subcommand)]
pub(crate) enum AppCommand {
    /// Register an app owned by the wallet; with --tee or --mrenclave, a TEE app whose tasks
    /// run in an enclave that proves it runs this app.
    #[command(after_help = "\
Examples:
  poco app deploy --name pi --file apps/pi/pi.wasm
  poco app deploy --name sales --file sales/build/sales.app --publish
  poco app deploy --name confidential --file apps/confidential/confidential.wasm --tee")]
    Deploy {
        /// The app.
        #[command(flatten)]
        asset: DeployArgs,
        /// Serve the app's code from the network's result store: the app is registered with
        /// the store's URL for it, then the file is published there.
        #[arg(long, conflicts_with = "url")]
        publish: bool,
        /// A TEE app, measured as the worker's enclave measures it: the sha256 of its module.
        #[arg(long, conflicts_with = "mrenclave")]
        tee: bool,
        /// A TEE app with this enclave measurement: hexadecimal (MRENCLAVE, MRTD) or JSON
        /// (`{"measurement": "0x...", "rtmr3": "0x..."}`).
        #[arg(long, value_name = "MEASUREMENT")]
        mrenclave: Option<String>,
    },
    /// Publish an app's code on the network's result store (signed by the app's owner), which
    /// then serves it to anyone at <store>/code/<sha256>: for an app registered with that URL
    /// whose publication did not finish.
    #[command(after_help = "Example:\n  poco app publish 0xApp sales/build/sales.app")]
    Publish {
        /// The app.
        app: Address,
        /// The file it was registered with.
        file: PathBuf,
    },
    /// Create an app project: a manifest (poco.toml), a first program in src/, a sample
    /// dataset in test/.
    #[command(after_help = "\
Examples:
  poco app new sales
  poco app new lines --lang c --dir apps/lines")]
    New {
        /// The app's name (letters, digits, '-', '_').
        name: String,
        /// Its language: python or c.
        #[arg(long, default_value = "python", value_name = "LANG")]
        lang: String,
        /// The new project's folder [default: ./NAME].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Build a project into the file its app is registered with (build/NAME.app for Python,
    /// build/NAME.wasm for C). The same sources give the same checksum on any machine.
    #[command(after_help = "Example:\n  poco app build sales")]
    Build {
        /// The project's folder.
        #[arg(default_value = ".", value_name = "PROJECT")]
        project: PathBuf,
    },
    /// Build a project and run its app twice in the worker's sandbox with its [test] inputs:
    /// prints the fuel and memory used and the result digest, and fails if the two runs
    /// disagree (the app is not deterministic).
    #[command(after_help = "\
Example:
  poco app test sales --python-runtime target/runtimes/sha256")]
    Test {
        /// The project's folder.
        #[arg(default_value = ".", value_name = "PROJECT")]
        project: PathBuf,
        /// A folder of Python runtime parts named by sha256, for Python apps
        /// (scripts/python-runtime.sh fills target/runtimes/sha256).
        #[arg(long = "python-runtime", env = "POCO_PYTHON_RUNTIME_SOURCE", value_name = "DIR")]
        python_runtime: Option<PathBuf>,
        /// Where compiled modules are kept (mode 0700) [default: <home>/modules].
        #[arg(long = "module-cache", env = "POCO_MODULE_CACHE", value_name = "DIR")]
        module_cache: Option<PathBuf>,
    },
    /// Showing, listing and transferring apps.
    #[command(flatten)]
    Common(AssetCommand),
}

/// `poco dataset`.
#[derive(Debug, Subcommand)]
pub(crate) enum DatasetCommand {
    /// Register a dataset owned by the wallet (for a confidential one, its encrypted file).
    #[command(after_help = "\
Examples:
  poco dataset deploy --name prices --file prices.csv --url https://example.com/prices.csv
  poco dataset deploy --name records --file records.enc")]
    Deploy {
        /// The dataset.
        #[command(flatten)]
        asset: DeployArgs,
    },
    /// Encrypt a file for a confidential dataset, with a new key kept under the poco home
    /// (mode 0600, never printed unless --show-key); prints the checksum it registers with.
    #[command(after_help = "\
Example:
  poco dataset encrypt records.csv --out records.enc
  poco dataset deploy --name records --file records.enc
  poco dataset push-key 0xDataset")]
    Encrypt {
        /// The plaintext file (read, never copied).
        file: PathBuf,
        /// Where to write the encrypted file (what workers fetch).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Also print the key (hexadecimal). Whoever sees it can read the dataset.
        #[arg(long)]
        show_key: bool,
    },
    /// Push a dataset's key to the SMS, signed by the dataset's owner (write-once); the SMS
    /// releases it only to attested enclaves running tasks of deals that bought the dataset.
    #[command(after_help = "\
Examples:
  poco --devnet-account dataset-provider dataset push-key 0xDataset
  poco dataset push-key 0xDataset --key-file records.key")]
    PushKey {
        /// The dataset.
        #[command(flatten)]
        dataset: DatasetArg,
        /// The key file (default: the one `poco dataset encrypt` kept for the dataset's
        /// registered checksum).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
    /// Whether the SMS holds a dataset's key (never the key).
    #[command(after_help = "Example:\n  poco dataset check-key 0xDataset")]
    CheckKey {
        /// The dataset.
        #[command(flatten)]
        dataset: DatasetArg,
    },
    /// Showing, listing and transferring datasets.
    #[command(flatten)]
    Common(AssetCommand),
}

/// The dataset a `poco dataset` command is about: named first, as every command names its
/// subject (`--dataset ADDRESS`, the former spelling, still works).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct DatasetArg {
    /// The dataset.
    #[arg(value_name = "DATASET")]
    pub address: Option<Address>,
    /// Former spelling of DATASET.
    #[arg(long = "dataset", value_name = "ADDRESS", hide = true)]
    pub flag: Option<Address>,
}

impl DatasetArg {
    /// The dataset, however it was given.
    pub(crate) fn get(&self) -> Address {
        self.address.or(self.flag).expect("clap requires one of them")
    }
}

/// What `poco app` and `poco dataset` share.
#[derive(Debug, Subcommand)]
pub(crate) enum AssetCommand {
    /// Show an asset.
    #[command(after_help = "Example:\n  poco app show 0xApp")]
    Show {
        /// Its address.
        address: Address,
    },
    /// List the assets an account owns.
    #[command(after_help = "Example:\n  poco app list --owner 0xOwner")]
    List {
        /// The owner (default: the wallet).
        #[arg(long)]
        owner: Option<Address>,
    },
    /// Hand an asset to someone else (its owner's orders stop matching).
    #[command(after_help = "Example:\n  poco app transfer 0xApp 0xNewOwner")]
    Transfer {
        /// The asset.
        address: Address,
        /// The new owner.
        to: Address,
    },
}

/// `poco workerpool`.
#[derive(Debug, Subcommand)]
pub(crate) enum WorkerpoolCommand {
    /// Register a workerpool owned by the wallet.
    #[command(after_help = "Example:\n  poco workerpool deploy --description \"my pool\"")]
    Deploy {
        /// Its description.
        #[arg(long)]
        description: String,
    },
    /// Show a workerpool.
    #[command(after_help = "Example:\n  poco workerpool show 0xPool")]
    Show {
        /// Its address.
        address: Address,
    },
    /// List the workerpools an account owns.
    #[command(after_help = "Example:\n  poco workerpool list")]
    List {
        /// The owner (default: the wallet).
        #[arg(long)]
        owner: Option<Address>,
    },
    /// Hand a workerpool to someone else.
    #[command(after_help = "Example:\n  poco workerpool transfer 0xPool 0xNewOwner")]
    Transfer {
        /// The workerpool.
        address: Address,
        /// The new owner.
        to: Address,
    },
    /// Show or set the policy: worker stake and scheduler share, in % of the pool price.
    #[command(
        after_help = "Examples:\n  poco workerpool policy 0xPool\n  poco workerpool policy 0xPool --worker-stake 30 --scheduler-share 5"
    )]
    Policy {
        /// The workerpool.
        address: Address,
        /// Stake each worker locks per contribution, % of the pool price (at most 100).
        #[arg(long, requires = "scheduler_share")]
        worker_stake: Option<u64>,
        /// Share of the workers' reward the scheduler keeps, % (at most 50).
        #[arg(long, requires = "worker_stake")]
        scheduler_share: Option<u64>,
    },
    /// Become a member of a workerpool, bonding 10 RLC of the free balance: committee deals
    /// (tag `committee`) draw their contributors from the members.
    #[command(after_help = "Example:\n  poco --wallet worker.json workerpool join 0xPool")]
    Join {
        /// The workerpool.
        address: Address,
    },
    /// Stop being drawn for the workerpool's committee deals; the bond stays frozen 7 days.
    #[command(after_help = "Example:\n  poco --wallet worker.json workerpool leave 0xPool")]
    Leave {
        /// The workerpool.
        address: Address,
    },
    /// Take back the bond of a workerpool left at least 7 days ago.
    #[command(after_help = "Example:\n  poco --wallet worker.json workerpool release-bond 0xPool")]
    ReleaseBond {
        /// The workerpool.
        address: Address,
    },
}

/// The four kinds of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Kind {
    /// An app order.
    App,
    /// A dataset order.
    Dataset,
    /// A workerpool order.
    Workerpool,
    /// A request order.
    Request,
}

/// What an order says, from options.
#[derive(Debug, Args, Clone)]
pub(crate) struct OrderFields {
    /// The asset sold (app, dataset, workerpool) or the app requested.
    #[arg(long, value_name = "ADDRESS")]
    pub asset: Option<Address>,
    /// Price per task (sell orders) or maximum price per task (requests), with its unit.
    #[arg(long, default_value = "0 RLC")]
    pub price: String,
    /// How many tasks.
    #[arg(long, default_value_t = 1)]
    pub volume: u64,
    /// Features: names (tee, scone, gramine, tdx, gpu, committee) or hex.
    #[arg(long, default_value = "")]
    pub tag: String,
    /// Category (workerpool and request orders).
    #[arg(long, default_value_t = 0)]
    pub category: u64,
    /// Trust (workerpool: most it delivers; request: what it wants).
    #[arg(long, default_value_t = 1)]
    pub trust: u64,
    /// Only this app (or group).
    #[arg(long)]
    pub app_restrict: Option<Address>,
    /// Only this dataset (or group).
    #[arg(long)]
    pub dataset_restrict: Option<Address>,
    /// Only this workerpool (or group).
    #[arg(long)]
    pub workerpool_restrict: Option<Address>,
    /// Only this requester (or group).
    #[arg(long)]
    pub requester_restrict: Option<Address>,
}

/// `poco order`.
#[derive(Debug, Subcommand)]
pub(crate) enum OrderCommand {
    /// Sign an order and print it (JSON) or save it.
    #[command(
        after_help = "Example:\n  poco order sign app --asset 0xApp --price \"1 RLC\" --volume 100 --out app-order.json"
    )]
    Sign {
        /// Which order.
        kind: Kind,
        /// Its fields.
        #[command(flatten)]
        fields: OrderFields,
        /// Save it here.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Publish an order on the market (signing it first unless --file gives a signed one).
    #[command(
        after_help = "Examples:\n  poco order publish app --asset 0xApp --price \"1 RLC\" --volume 100\n  poco order publish app --file app-order.json"
    )]
    Publish {
        /// Which order.
        kind: Kind,
        /// A signed order (JSON).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Its fields, to sign one.
        #[command(flatten)]
        fields: OrderFields,
    },
    /// Take one of your orders off the market (it stays valid on-chain: see cancel).
    #[command(after_help = "Example:\n  poco order unpublish app 0xOrderHash")]
    Unpublish {
        /// Which order.
        kind: Kind,
        /// Its hash.
        hash: B256,
    },
    /// Close one of your orders on-chain: it never matches again.
    #[command(after_help = "Example:\n  poco order cancel app --file app-order.json")]
    Cancel {
        /// Which order.
        kind: Kind,
        /// The signed order (JSON).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Show an order of the market.
    #[command(after_help = "Example:\n  poco order show app 0xOrderHash")]
    Show {
        /// Which order.
        kind: Kind,
        /// Its hash.
        hash: B256,
    },
}

/// `poco orderbook`.
#[derive(Debug, Args)]
pub(crate) struct OrderbookArgs {
    /// Which book.
    pub kind: Kind,
    /// Only orders of (or restricted to) this app.
    #[arg(long)]
    pub app: Option<Address>,
    /// Only orders of (or restricted to) this dataset.
    #[arg(long)]
    pub dataset: Option<Address>,
    /// Only orders of (or restricted to) this workerpool.
    #[arg(long)]
    pub workerpool: Option<Address>,
    /// Only orders of (or restricted to) this requester.
    #[arg(long)]
    pub requester: Option<Address>,
    /// Only orders signed by this owner.
    #[arg(long)]
    pub owner: Option<Address>,
    /// Category (workerpool and request books).
    #[arg(long)]
    pub category: Option<u64>,
    /// At least this trust (workerpool book).
    #[arg(long)]
    pub min_trust: Option<u64>,
    /// At least this volume left.
    #[arg(long)]
    pub min_volume: Option<u64>,
    /// How many orders.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

/// `poco run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The app to run.
    pub app: Address,
    /// A dataset for it.
    #[arg(long)]
    pub dataset: Option<Address>,
    /// Only this workerpool.
    #[arg(long)]
    pub workerpool: Option<Address>,
    /// The app's arguments.
    #[arg(long)]
    pub args: Option<String>,
    /// URLs of input files (repeat for several).
    #[arg(long = "input-file", value_name = "URL")]
    pub input_files: Vec<String>,
    /// Category: its time reference T sets the deadlines, counted from the match: 0 XS
    /// (T = 5 min: contributions close at 7T = 35 min, an unfinished task is refunded from
    /// 10T = 50 min), 1 S (T = 20 min), 2 M (1 h), 3 L (3 h), 4 XL (T = 10 h: refund from
    /// 100 h).
    #[arg(long, default_value_t = 0)]
    pub category: u64,
    /// Trust: 1 for one worker, more for replication until that confidence.
    #[arg(long, default_value_t = 1)]
    pub trust: u64,
    /// Features needed: names (tee, gpu, committee...) or hex.
    #[arg(long, default_value = "")]
    pub tag: String,
    /// A requester secret the app of a TEE task gets, by the name it was pushed under
    /// (`poco secret push`): `[INDEX=]NAME`, read by the app as IEXEC_REQUESTER_SECRET_<INDEX>
    /// (numbered from 1 in order when not given). Repeat for several.
    #[arg(long = "secret", value_name = "[INDEX=]NAME")]
    pub secrets: Vec<String>,
    /// Encrypt each result for the beneficiary, with the result key it pushed to the SMS
    /// (TEE tasks); downloads decrypt it with the local key.
    #[arg(long)]
    pub encrypt_result: bool,
    /// Most you pay per task, all prices together, with its unit.
    #[arg(long)]
    pub max_price: Option<String>,
    /// How many tasks.
    #[arg(long, default_value_t = 1)]
    pub volume: u64,
    /// Who gets the results (default: you).
    #[arg(long)]
    pub beneficiary: Option<Address>,
    /// A contract to call with each result.
    #[arg(long)]
    pub callback: Option<Address>,
    /// Follow the tasks until they are done.
    #[arg(long)]
    pub watch: bool,
    /// Download the results here when done (implies --watch).
    #[arg(long, value_name = "DIR")]
    pub download: Option<PathBuf>,
    /// Do not deposit what the account lacks; fail instead.
    #[arg(long)]
    pub no_deposit: bool,
    /// Pay without first checking that the app, the dataset and the input files can be
    /// fetched (and have their registered checksums) and that the arguments parse.
    #[arg(long)]
    pub no_check: bool,
}

/// `poco deal`.
#[derive(Debug, Subcommand)]
pub(crate) enum DealCommand {
    /// Show a deal and its tasks.
    #[command(after_help = "Example:\n  poco deal show 0xDealId")]
    Show {
        /// The deal id.
        deal: B256,
    },
    /// List your deals: those you requested, or with --as workerpool those of the workerpools
    /// you own. Newest first.
    #[command(after_help = "\
Examples:
  poco deal list
  poco deal list --as workerpool --limit 50")]
    List {
        /// Whose deals: yours as requester, or as owner of workerpools.
        #[arg(long = "as", value_enum, default_value_t = DealRole::Requester)]
        role: DealRole,
        /// Of this account instead of the wallet's.
        #[arg(long, value_name = "ADDRESS")]
        address: Option<Address>,
        /// Most deals listed.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Claim every task of a deal that passed its final deadline unfinished: the requester is
    /// refunded for each.
    #[command(after_help = "Example:\n  poco deal claim 0xDealId")]
    Claim {
        /// The deal id.
        deal: B256,
    },
}

/// Whose deals `poco deal list` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DealRole {
    /// The deals you requested.
    Requester,
    /// The deals of the workerpools you own.
    Workerpool,
}

/// `poco task`.
#[derive(Debug, Subcommand)]
pub(crate) enum TaskCommand {
    /// Show a task (and follow it with --watch).
    #[command(
        after_help = "Examples:\n  poco task show 0xTaskId\n  poco task show 0xTaskId --watch"
    )]
    Show {
        /// The task id.
        task: B256,
        /// Follow it until it is done.
        #[arg(long)]
        watch: bool,
    },
    /// Claim a task past its final deadline: the requester is refunded.
    #[command(after_help = "Example:\n  poco task claim 0xTaskId")]
    Claim {
        /// The task id.
        task: B256,
    },
    /// Show the log the workerpool's scheduler kept of a task: assignments, contributions,
    /// reveals, uploads (readable by the task's requester only: the request is signed).
    #[command(after_help = "\
Examples:
  poco task logs 0xTaskId
  poco task logs 0xTaskId --scheduler.url https://pool.example.org")]
    Logs {
        /// The task id.
        task: B256,
        /// The scheduler of the task's workerpool [default: the running devnet's].
        #[arg(long = "scheduler.url", value_name = "URL")]
        scheduler_url: Option<String>,
    },
}

/// `poco result`.
#[derive(Debug, Subcommand)]
pub(crate) enum ResultCommand {
    /// Download a task's result, checked against the digest certified on-chain; a result
    /// encrypted for you is then decrypted with your result key.
    #[command(after_help = "\
Examples:
  poco result download 0xTaskId --out-dir result/
  poco result download 0xTaskId --out-dir result/ --key-file backup/result.key")]
    Download {
        /// The task id.
        task: B256,
        /// Where to unpack it (default: ./<task id>).
        #[arg(long = "out-dir", value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// Former spelling of --out-dir.
        #[arg(long = "out", value_name = "DIR", hide = true, conflicts_with = "out_dir")]
        out: Option<PathBuf>,
        /// The result key that decrypts it (default: <home>/keys/result.key).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// Write an encrypted result as it is, without decrypting it.
        #[arg(long, conflicts_with = "key_file")]
        no_decrypt: bool,
    },
    /// Create your result key (an age X25519 identity, kept with mode 0600): results of deals
    /// asking for encryption are encrypted for it. Prints its public half.
    #[command(after_help = "\
Example:
  poco result keygen
  poco --devnet-account requester result push-key")]
    Keygen {
        /// Where to keep it (default: <home>/keys/result.key).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Replace an existing key (results encrypted for it can then not be opened with the
        /// new one).
        #[arg(long)]
        force: bool,
    },
    /// Push the public half of your result key to the SMS, signed by the wallet (the
    /// beneficiary); it replaces the one pushed before.
    #[command(after_help = "Example:\n  poco --devnet-account requester result push-key")]
    PushKey {
        /// The result key (default: <home>/keys/result.key).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
    /// Whether the SMS holds a result key for a beneficiary.
    #[command(after_help = "Example:\n  poco result check-key 0xBeneficiary")]
    CheckKey {
        /// The beneficiary (default: the wallet).
        beneficiary: Option<Address>,
    },
}

/// `poco secret`.
#[derive(Debug, Subcommand)]
pub(crate) enum SecretCommand {
    /// Push a secret to the SMS (write-once): a requester secret by name, signed by the
    /// requester, or with --app the app developer secret, signed by the app's owner. The
    /// value comes from a file, an environment variable, or a prompt; it is never printed.
    #[command(
        group(ArgGroup::new("target").required(true).args(["name", "app"])),
        after_help = "\
Examples:
  poco --devnet-account requester secret push warehouse-token --value-file token.txt
  poco --devnet-account app-provider secret push --app 0xApp --value-env LICENSE_KEY"
    )]
    Push {
        /// The requester secret's name: 1 to 64 letters, digits, '.', '_' or '-'.
        name: Option<String>,
        /// Push the developer secret of this app instead.
        #[arg(long, value_name = "ADDRESS")]
        app: Option<Address>,
        /// Read the value from this file (one trailing newline dropped).
        #[arg(long, value_name = "FILE", conflicts_with = "value_env")]
        value_file: Option<PathBuf>,
        /// Read the value from this environment variable.
        #[arg(long, value_name = "VAR")]
        value_env: Option<String>,
    },
    /// Whether the SMS holds a secret (never its value).
    #[command(
        group(ArgGroup::new("target").required(true).args(["name", "app"])),
        after_help = "\
Examples:
  poco --devnet-account requester secret check warehouse-token
  poco secret check --app 0xApp"
    )]
    Check {
        /// The requester secret's name.
        name: Option<String>,
        /// Check the developer secret of this app instead.
        #[arg(long, value_name = "ADDRESS")]
        app: Option<Address>,
        /// Whose requester secret (default: the wallet's).
        #[arg(long, value_name = "ADDRESS", conflicts_with = "app")]
        requester: Option<Address>,
    },
}

/// `poco market`.
#[derive(Debug, Subcommand)]
pub(crate) enum MarketCommand {
    /// Run the market: it serves the orderbook.
    ///
    /// Every option also comes from an environment variable or the `[market]` section of the
    /// configuration file (flags beat the environment, which beats the file).
    #[command(after_help = "\
Examples:
  poco --network consortium market run --listen 0.0.0.0:8080 --public-url https://market.example.org
  poco market run --listen 127.0.0.1:8080 --rpc.url http://127.0.0.1:8545 --poco.address 0x... --confirmations 0")]
    Run(MarketServe),
    /// Former spelling of `run`.
    #[command(hide = true)]
    Serve(MarketServe),
    /// Write every open order of the market as JSON lines (a backup of its book).
    ///
    /// The orders are signed: whoever imports them needs to trust nobody.
    #[command(after_help = "\
Examples:
  poco market export --out orders.jsonl
  poco --market.url https://market.example.org market export > orders.jsonl")]
    Export {
        /// Where to write them [default: standard output].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Publish the orders of a `poco market export` file to the market.
    ///
    /// Each is checked again as any publication is (values, signature, the signer's ownership
    /// of the asset, the stake covering it); the summary
    /// says how many were published, how many the book held already, and which were refused
    /// and why. A malformed file publishes nothing.
    #[command(after_help = "\
Example:
  poco --market.url http://127.0.0.1:8080 market import orders.jsonl")]
    Import {
        /// The file `poco market export` wrote.
        file: PathBuf,
    },
}

/// `poco market run`: each option is also a key of the `[market]` section.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct MarketServe {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "POCO_MARKET_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// The URL clients reach the market at (behind a proxy, a name: `https://market.example.org`),
    /// advertised in its OpenAPI document [default: http://<listen address>].
    #[arg(long = "public-url", env = "POCO_MARKET_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Data directory (SQLite database) [default: market-data].
    #[arg(long = "data.dir", env = "POCO_MARKET_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL instead of SQLite.
    #[arg(long = "db.url", env = "POCO_MARKET_DATABASE_URL", value_name = "URL")]
    pub db_url: Option<String>,
    /// Blocks on top of an event before it changes the book [default: the network's depth
    /// (2 unless its profile says otherwise), 0 on the devnet].
    #[arg(long, env = "POCO_MARKET_CONFIRMATIONS", value_name = "BLOCKS")]
    pub confirmations: Option<u64>,
    /// A reverse proxy whose Forwarded / X-Forwarded-For header names the client (for
    /// rate limits and connection shares); repeat for several. Without it such headers
    /// are ignored.
    #[arg(
        long = "trusted-proxy",
        env = "POCO_MARKET_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "ADDR"
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Seconds a client may take to send a request's headers (also the keep-alive wait)
    /// [default: 10].
    #[arg(
        long = "http.header-timeout",
        env = "POCO_MARKET_HEADER_TIMEOUT",
        value_name = "SECONDS"
    )]
    pub header_timeout: Option<u64>,
    /// Seconds a connection may stay without traffic before it is closed [default: 60].
    #[arg(long = "http.idle-timeout", env = "POCO_MARKET_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub idle_timeout: Option<u64>,
    /// Connections one client (IPv4 address, IPv6 /64) may hold open [default: 128].
    #[arg(
        long = "http.max-connections-per-client",
        env = "POCO_MARKET_MAX_CONNECTIONS_PER_CLIENT",
        value_name = "N"
    )]
    pub max_connections_per_client: Option<usize>,
    /// Connections all clients may hold open [default: 10000].
    #[arg(long = "http.max-connections", env = "POCO_MARKET_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// WebSocket streams one client may hold [default: 16].
    #[arg(long = "ws.max-per-client", env = "POCO_MARKET_WS_MAX_PER_CLIENT", value_name = "N")]
    pub max_websockets_per_client: Option<usize>,
    /// WebSocket streams all clients may hold [default: 1000].
    #[arg(long = "ws.max", env = "POCO_MARKET_WS_MAX", value_name = "N")]
    pub max_websockets: Option<usize>,
    /// Requests per second one client may make, sustained [default: 50].
    #[arg(long = "rate.per-client", env = "POCO_MARKET_RATE_PER_CLIENT", value_name = "N")]
    pub rate_per_client: Option<f64>,
    /// Requests one client may make in a burst [default: 200].
    #[arg(long = "rate.client-burst", env = "POCO_MARKET_RATE_CLIENT_BURST", value_name = "N")]
    pub rate_client_burst: Option<f64>,
    /// Publications and unpublications per second of one order owner, sustained [default: 10].
    #[arg(long = "rate.per-owner", env = "POCO_MARKET_RATE_PER_OWNER", value_name = "N")]
    pub rate_per_owner: Option<f64>,
    /// Publications and unpublications of one order owner in a burst [default: 100].
    #[arg(long = "rate.owner-burst", env = "POCO_MARKET_RATE_OWNER_BURST", value_name = "N")]
    pub rate_owner_burst: Option<f64>,
    /// Let web pages of this origin (`https://explorer.example.org`, as browsers write it; `*`
    /// for any page) call the API from a browser. Repeatable; none by default. Nothing is
    /// asked of browsers but what anyone may read: no cookie, no credential.
    #[arg(
        long = "http.cors-origin",
        env = "POCO_MARKET_CORS_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub cors_origins: Vec<String>,
    /// Open orders one wallet may have in the book, per order kind [default: 50].
    #[arg(
        long = "orders.max-open-per-wallet",
        env = "POCO_MARKET_MAX_OPEN_ORDERS_PER_WALLET",
        value_name = "N"
    )]
    pub max_open_orders_per_wallet: Option<u64>,
}

/// `poco scheduler`.
#[derive(Debug, Subcommand)]
pub(crate) enum SchedulerCommand {
    /// Run the scheduler of a workerpool (the wallet must own it). With --sms.url, its TEE
    /// deals get enclave challenges from that SMS; without, they are never assigned.
    ///
    /// Who may work for the pool (--admit): workers holding a bond in it on-chain (`bonded`,
    /// the default: `poco workerpool join`), the workers of an allow-list (`allow-list`, with
    /// --admit.worker and/or --admit.file), or anyone (`open`: strangers get tasks; a warning
    /// is logged). Others are refused at registration and on every request.
    ///
    /// Every option also comes from an environment variable or the `[scheduler]` section of
    /// the configuration file (flags beat the environment, which beats the file).
    #[command(
        after_help = "Examples:\n  poco --wallet pool-owner.json scheduler run --workerpool 0xPool --results.url http://127.0.0.1:8090\n  poco --wallet pool-owner.json scheduler run --workerpool 0xPool --results.url http://127.0.0.1:8090 --admit allow-list --admit.worker 0xWorker1 --admit.worker 0xWorker2\n  poco --network consortium --wallet pool-owner.json scheduler run --workerpool 0xPool --listen 0.0.0.0:8070 --public-url https://pool.example.org --results.url https://results.example.org"
    )]
    Run(SchedulerRun),
}

/// `poco scheduler run`: each option is also a key of the `[scheduler]` section.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SchedulerRun {
    /// The workerpool.
    #[arg(long, env = "POCO_SCHEDULER_WORKERPOOL", value_name = "ADDRESS")]
    pub workerpool: Option<Address>,
    /// Address to listen on [default: 127.0.0.1:8070].
    #[arg(long, env = "POCO_SCHEDULER_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// The URL workers reach the scheduler at (what they pass as --scheduler.url) [default:
    /// http://<listen address>].
    #[arg(long = "public-url", env = "POCO_SCHEDULER_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Database URL (sqlite://... or postgres://...) [default: sqlite://scheduler.db].
    #[arg(long = "db.url", env = "POCO_SCHEDULER_DATABASE_URL", value_name = "URL")]
    pub db_url: Option<String>,
    /// The pool's result store, by the URL requesters download from (its public URL):
    /// workers upload there. Repeatable: assignments name the first; an upload is accepted at
    /// any of them (exactly `<url>/results/<task>`) [default: the network's result store].
    #[arg(
        long = "results.url",
        env = "POCO_SCHEDULER_RESULTS_URLS",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub results_urls: Vec<String>,
    /// Blocks on top of an event before the scheduler acts on it [default: the network's
    /// depth (2 unless its profile says otherwise), 0 on the devnet].
    #[arg(long, env = "POCO_SCHEDULER_CONFIRMATIONS", value_name = "BLOCKS")]
    pub confirmations: Option<u64>,
    /// Who may work for the pool [default: bonded].
    #[arg(long, value_enum, env = "POCO_SCHEDULER_ADMIT")]
    pub admit: Option<AdmitRule>,
    /// A worker of the allow-list (with --admit allow-list). Repeatable.
    #[arg(
        long = "admit.worker",
        env = "POCO_SCHEDULER_ADMIT_WORKERS",
        value_delimiter = ',',
        value_name = "ADDRESS"
    )]
    pub admit_workers: Vec<Address>,
    /// A file of allow-listed workers, one address a line, `#` starting a comment (with
    /// --admit allow-list).
    #[arg(long = "admit.file", env = "POCO_SCHEDULER_ADMIT_FILE", value_name = "FILE")]
    pub admit_file: Option<PathBuf>,
    /// Seconds between a worker's heartbeats [default: 2].
    #[arg(long = "workers.heartbeat", env = "POCO_SCHEDULER_HEARTBEAT", value_name = "SECONDS")]
    pub heartbeat: Option<u64>,
    /// Seconds of silence after which a worker is lost and its work goes to others
    /// [default: 10].
    #[arg(long = "workers.timeout", env = "POCO_SCHEDULER_WORKER_TIMEOUT", value_name = "SECONDS")]
    pub worker_timeout: Option<u64>,
    /// Seconds a replica may go neither contributed nor reported running before another
    /// worker gets it too [default: 120].
    #[arg(
        long = "replicas.timeout",
        env = "POCO_SCHEDULER_REPLICA_TIMEOUT",
        value_name = "SECONDS"
    )]
    pub replica_timeout: Option<u64>,
    /// Seconds the chosen uploader has before another revealer is asked [default: 30].
    #[arg(long = "uploads.timeout", env = "POCO_SCHEDULER_UPLOAD_TIMEOUT", value_name = "SECONDS")]
    pub upload_timeout: Option<u64>,
    /// Seconds a worker's bond, read from the chain, is trusted [default: 15].
    #[arg(long = "bonds.cache", env = "POCO_SCHEDULER_BOND_CACHE", value_name = "SECONDS")]
    pub bond_cache: Option<u64>,
    /// With a PostgreSQL database (--db.url postgres://...), several instances of the pool's
    /// scheduler may run, one active, the others standing by: seconds the active one's lease
    /// lasts without renewal, the most a standby waits before taking over when the active one
    /// dies [default: 5, at least 2].
    #[arg(long = "lease.ttl", env = "POCO_SCHEDULER_LEASE_TTL", value_name = "SECONDS")]
    pub lease_ttl: Option<u64>,
}

/// A configuration value given as one string or as a list of them.
fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// `poco scheduler run --admit`: who may work for the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum AdmitRule {
    /// Workers holding a bond in the workerpool on-chain (`poco workerpool join`).
    Bonded,
    /// The workers named by --admit.worker and --admit.file only.
    AllowList,
    /// Anyone with a wallet, strangers included.
    Open,
}

/// `poco worker`.
#[derive(Debug, Subcommand)]
pub(crate) enum WorkerCommand {
    /// Run a worker for a scheduler. With --insecure-simulation it also runs TEE tasks, in
    /// a simulated enclave that protects nothing from this machine's owner.
    ///
    /// Every option but the INSECURE simulation also comes from an environment variable or
    /// the `[worker]` section of the configuration file (flags beat the environment, which
    /// beats the file); the fetch policy is the `[fetch]` section and the --fetch.* flags.
    #[command(after_help = "\
Examples:
  poco --wallet worker.json worker run --scheduler.url http://127.0.0.1:8070 --slots 2
  poco --network consortium --wallet worker.json worker run --scheduler.url https://pool.example.org --data.dir /var/lib/poco-worker
  poco --wallet worker.json --sms.url http://127.0.0.1:8060 worker run --scheduler.url http://127.0.0.1:8070 --insecure-simulation --simulation.key-file sim.key")]
    Run(WorkerRun),
}

/// `poco worker run`: each option but the simulation's is also a key of the `[worker]`
/// section.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct WorkerRun {
    /// The URL of the pool's scheduler. Repeatable (or comma-separated) when the pool runs
    /// several scheduler instances: the worker talks to the active one, and moves to the next
    /// when one is unreachable or answers that it is a standby.
    #[arg(
        long = "scheduler.url",
        env = "POCO_WORKER_SCHEDULER_URL",
        value_delimiter = ',',
        value_name = "URL"
    )]
    #[serde(deserialize_with = "one_or_many")]
    pub scheduler_url: Vec<String>,
    /// Tasks fetched and computed at once (one waiting for its block frees its slot) [default: 2].
    #[arg(long, env = "POCO_WORKER_SLOTS", value_name = "N")]
    pub slots: Option<u32>,
    /// Data directory (tasks in flight, app cache) [default: worker-data].
    #[arg(long = "data.dir", env = "POCO_WORKER_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Free space the data directory must have for the worker to take work, in MiB: below
    /// it the worker takes none and tells its scheduler it is unhealthy, until space returns
    /// (its tasks go on); 0 turns the check off [default: 64].
    #[arg(long = "data.min-free-mib", env = "POCO_WORKER_MIN_FREE_MIB", value_name = "MIB")]
    pub min_free_mib: Option<u64>,
    /// Memory one app may use, in MiB [default: 512].
    #[arg(long = "memory.mib", env = "POCO_WORKER_MEMORY_MIB", value_name = "MIB")]
    pub memory_mib: Option<u64>,
    /// Attempts in all at an upload that failed for a reason that may pass [default: 5].
    #[arg(long = "uploads.attempts", env = "POCO_WORKER_UPLOAD_ATTEMPTS", value_name = "N")]
    pub upload_attempts: Option<u32>,
    /// Results uploaded at once; the others wait their turn [default: 2]. Keep it small: the
    /// result store takes a bounded number at once from all its workers
    /// (--uploads.max-concurrent) and answers the others busy.
    #[arg(long = "uploads.concurrent", env = "POCO_WORKER_CONCURRENT_UPLOADS", value_name = "N")]
    pub concurrent_uploads: Option<u32>,
    /// Where to fetch a Python runtime this worker does not have yet: base URLs serving each
    /// part at <URL>/<sha256>, tried in order (file:// within --fetch.allow-dir). Parts are
    /// checked against the hashes the app names, then kept in --data.dir.
    #[arg(
        long = "runtime.source",
        env = "POCO_WORKER_RUNTIME_SOURCES",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub runtime_sources: Option<Vec<String>>,
    /// Where simulated enclaves work (RAM-backed; outside --data.dir) [default: /dev/shm].
    #[arg(long = "enclave.dir", env = "POCO_WORKER_ENCLAVE_DIR", value_name = "DIR")]
    pub enclave_dir: Option<PathBuf>,
    /// Run TEE tasks in an INSECURE simulated enclave, quoting with the simulation key of
    /// --simulation.key-file (the SMS of --sms.url must trust it). For tests and demos; only
    /// ever chosen on the command line.
    #[arg(long, requires = "simulation_key_file")]
    #[serde(skip)]
    pub insecure_simulation: bool,
    /// The simulation key (a private key in hexadecimal) of --insecure-simulation.
    #[arg(long = "simulation.key-file", value_name = "FILE", requires = "insecure_simulation")]
    #[serde(skip)]
    pub simulation_key_file: Option<PathBuf>,
    /// Commit a wrong result for every task, losing the stake of each contribution the
    /// consensus outvotes: a liar, for tests of the consensus on a real network. Hidden from
    /// the help, only ever chosen on the command line.
    #[arg(long = "testing.byzantine", hide = true)]
    #[serde(skip)]
    pub byzantine: bool,
}

/// `poco results`.
#[derive(Debug, Subcommand)]
pub(crate) enum ResultsCommand {
    /// Run the result store.
    ///
    /// Every option also comes from an environment variable or the `[results]` section of the
    /// configuration file (flags beat the environment, which beats the file).
    #[command(after_help = "\
Examples:
  poco result-store run --listen 127.0.0.1:8090 --storage results/
  poco --network consortium result-store run --listen 0.0.0.0:8090 --public-url https://results.example.org --storage s3://results-bucket/poco")]
    Run(ResultsServe),
    /// Former spelling of `run`.
    #[command(hide = true)]
    Serve(ResultsServe),
}

/// `poco result-store run`: each option is also a key of the `[results]` section.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ResultsServe {
    /// Address to listen on [default: 127.0.0.1:8090].
    #[arg(long, env = "POCO_RESULTS_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// The URL requesters download from (what schedulers name the store by in --results.url),
    /// advertised on /health [default: http://<listen address>].
    #[arg(long = "public-url", env = "POCO_RESULTS_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Where results are kept: a directory, file://... or s3://bucket/prefix [default:
    /// results].
    #[arg(long, env = "POCO_RESULTS_STORAGE", value_name = "LOCATION")]
    pub storage: Option<String>,
    /// For s3:// storage: a file of `AWS_*=value` lines (credentials, region, endpoint), mode
    /// 600, winning over the same variables in the environment; never pass a key as a flag.
    #[arg(long = "storage.s3-settings", env = "POCO_RESULTS_S3_SETTINGS", value_name = "FILE")]
    pub s3_settings: Option<PathBuf>,
    /// Uploads processed at once [default: 8].
    #[arg(long = "uploads.max-concurrent", env = "POCO_RESULTS_MAX_UPLOADS", value_name = "N")]
    pub max_concurrent_uploads: Option<usize>,
    /// Seconds a request may take, its body included [default: 120].
    #[arg(
        long = "http.request-timeout",
        env = "POCO_RESULTS_REQUEST_TIMEOUT",
        value_name = "SECONDS"
    )]
    pub request_timeout: Option<u64>,
    /// Seconds a download challenge stays valid [default: 120].
    #[arg(long = "challenges.ttl", env = "POCO_RESULTS_CHALLENGE_TTL", value_name = "SECONDS")]
    pub challenge_ttl: Option<u64>,
    /// Seconds a signed request's time may be off the store's clock [default: 300].
    #[arg(long = "requests.max-age", env = "POCO_RESULTS_MAX_REQUEST_AGE", value_name = "SECONDS")]
    pub max_request_age: Option<u64>,
}

/// `poco sms`.
#[derive(Debug, Subcommand)]
// Parsed once per run: the size of the serving variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum SmsCommand {
    /// Run the SMS: it keeps dataset keys, requester and app developer secrets and result
    /// keys, sealed at rest, and releases them only to attested enclaves of active TEE tasks.
    ///
    /// Every option but the INSECURE simulation also comes from an environment variable or the
    /// `[sms]` section of the configuration file (flags beat the environment, which beats the
    /// file).
    #[command(after_help = "\
Examples:
  poco sms run --listen 127.0.0.1:8060 --data.dir sms-data --dcap.collateral-dir collateral/
  poco --network consortium sms run --listen 0.0.0.0:8060 --public-url https://sms.example.org --db.url postgres://sms@db/sms
  poco sms run --insecure-simulation --simulation.signer 0xSimulationKeyAddress")]
    Run(SmsServe),
    /// Former spelling of `run`.
    #[command(hide = true)]
    Serve(SmsServe),
    /// What the SMS says about itself: its attestation modes, and whether it runs the INSECURE
    /// simulation.
    #[command(after_help = "Example:\n  poco sms status --json")]
    Status,
}

/// `poco sms run`: each option but the simulation's is also a key of the `[sms]` section.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SmsServe {
    /// Address to listen on [default: 127.0.0.1:8060].
    #[arg(long, env = "POCO_SMS_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// The URL clients and schedulers reach the SMS at (what they pass as --sms.url), shown
    /// by `poco sms status` [default: http://<listen address>].
    #[arg(long = "public-url", env = "POCO_SMS_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Data directory (SQLite database, master key) [default: sms-data].
    #[arg(long = "data.dir", env = "POCO_SMS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL instead of SQLite.
    #[arg(long = "db.url", env = "POCO_SMS_DATABASE_URL", value_name = "URL")]
    pub db_url: Option<String>,
    /// The master key sealing every secret at rest (created, mode 0600, on first start)
    /// [default: <data.dir>/master.key].
    #[arg(long = "master-key", env = "POCO_SMS_MASTER_KEY", value_name = "FILE")]
    pub master_key: Option<PathBuf>,
    /// Cached DCAP collateral files (*.json) to verify SGX and TDX quotes with.
    #[arg(long = "dcap.collateral-dir", env = "POCO_SMS_COLLATERAL_DIR", value_name = "DIR")]
    pub collateral_dir: Option<PathBuf>,
    /// Seconds an enclave has to attest once its worker opened a session [default: 60].
    #[arg(long = "sessions.ttl", env = "POCO_SMS_SESSION_TTL", value_name = "SECONDS")]
    pub session_ttl: Option<u64>,
    /// Seconds a signed request's time may be off the SMS's clock [default: 300].
    #[arg(long = "requests.max-age", env = "POCO_SMS_MAX_REQUEST_AGE", value_name = "SECONDS")]
    pub max_request_age: Option<u64>,
    /// Largest secret accepted, in bytes [default: 4096].
    #[arg(long = "secrets.max-bytes", env = "POCO_SMS_MAX_SECRET_BYTES", value_name = "BYTES")]
    pub max_secret_bytes: Option<usize>,
    /// Also accept INSECURE simulated quotes signed by --simulation.signer keys: they
    /// prove nothing about the hardware. For tests and demos; never with real secrets; only
    /// ever chosen on the command line.
    #[arg(long, requires = "simulation_signers")]
    #[serde(skip)]
    pub insecure_simulation: bool,
    /// The address of a simulation key whose quotes are trusted (repeat for several).
    #[arg(long = "simulation.signer", value_name = "ADDRESS", requires = "insecure_simulation")]
    #[serde(skip)]
    pub simulation_signers: Vec<Address>,
}

/// `poco protocol`.
#[derive(Debug, Subcommand)]
pub(crate) enum ProtocolCommand {
    /// Deploy the protocol's contracts on a chain (any JSON-RPC endpoint) and write the network
    /// profile that names it (`<home>/networks/NAME.toml`).
    ///
    /// The deployer's key comes from --wallet (a keystore, with --password-file,
    /// POCO_WALLET_PASSWORD or a prompt), from --private-key-file, or from the environment
    /// variable POCO_PRIVATE_KEY; never from a flag's value. Each contract creation is signed,
    /// then recorded in `<home>/networks/NAME.deploy.json`, then sent: a deployment that was
    /// interrupted continues where it stopped when run again (a creation already sent is found
    /// by its hash or the deployer's nonce, never sent twice), and a complete one sends
    /// nothing.
    #[command(after_help = "\
Examples:
  POCO_PRIVATE_KEY=0x... poco protocol deploy --network consortium --rpc.url http://10.0.0.2:8545
  poco --wallet deployer.json protocol deploy --network consortium --rpc.url http://10.0.0.2:8545 --token 0xToken --market.url https://market.example.org
  poco protocol deploy --network consortium --private-key-file deployer.key")]
    Deploy(ProtocolDeploy),
}

/// `poco protocol deploy`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ProtocolDeploy {
    /// The network's name (the profile written); the global --network names it too.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// A file holding the deployer's private key (hexadecimal), instead of --wallet.
    #[arg(long = "private-key-file", value_name = "FILE")]
    pub private_key_file: Option<PathBuf>,
    /// Refused: a key given as a flag's value shows in the process list and the shell's
    /// history. Use --private-key-file, POCO_PRIVATE_KEY or --wallet.
    #[arg(long = "private-key", hide = true, num_args = 0..=1, value_name = "KEY")]
    pub private_key: Option<Option<String>>,
    /// An existing ERC-20 token to use as RLC, instead of deploying a new one (checked to be a
    /// contract that answers ERC-20 calls).
    #[arg(long, value_name = "ADDRESS")]
    pub token: Option<Address>,
    /// The protocol's owner, who may add categories [default: the deployer].
    #[arg(long, value_name = "ADDRESS")]
    pub owner: Option<Address>,
    /// Blocks between a committee deal's match and the block whose hash seeds its draw: on a
    /// chain whose block producers may be attackers, more than their lookahead [default: 0].
    #[arg(long = "committee.seed-delay", value_name = "BLOCKS")]
    pub committee_seed_delay: Option<u64>,
    /// The confirmation depth the network's services use, written in the profile
    /// [default: 2].
    #[arg(long, value_name = "BLOCKS")]
    pub confirmations: Option<u64>,
    /// The network's result store, written in the profile.
    #[arg(long = "results.url", value_name = "URL")]
    pub results_url: Option<String>,
    /// Seconds to wait for one creation to be mined.
    #[arg(long = "receipt-timeout", value_name = "SECONDS", default_value_t = 600)]
    pub receipt_timeout: u64,
}

/// `poco network`.
#[derive(Debug, Subcommand)]
pub(crate) enum NetworkCommand {
    /// The network profiles of the home, and the running devnet's (`devnet`).
    #[command(after_help = "Examples:\n  poco network list\n  poco network list --json")]
    List,
    /// A network profile (default: the one --network selects).
    #[command(
        after_help = "Examples:\n  poco network show consortium\n  poco network show devnet --json"
    )]
    Show {
        /// The network.
        name: Option<String>,
    },
    /// Add a profile for a protocol already deployed: its chain id is read from the endpoint,
    /// the protocol is checked to answer at the address, and its deployment block is found
    /// (or given with --from-block).
    #[command(after_help = "\
Example:
  poco network add consortium --rpc.url http://10.0.0.2:8545 --poco.address 0x... --market.url https://market.example.org")]
    Add {
        /// The network's name.
        name: String,
        /// The protocol's deployment block [default: found on the chain, when the node keeps
        /// the history to find it].
        #[arg(long = "from-block", value_name = "BLOCK")]
        from_block: Option<u64>,
        /// The confirmation depth the network's services use [default: 2].
        #[arg(long, value_name = "BLOCKS")]
        confirmations: Option<u64>,
        /// The network's result store.
        #[arg(long = "results.url", value_name = "URL")]
        results_url: Option<String>,
        /// Replace a profile of that name.
        #[arg(long)]
        force: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example() {
        fn check(command: &clap::Command, path: &str) {
            let path = format!("{path} {}", command.get_name());
            if command.is_hide_set() {
                return;
            }
            if command.get_subcommands().next().is_none() {
                let help = command.get_after_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(help.contains("poco "), "`{path}` has no example in its help");
            }
            for sub in command.get_subcommands() {
                check(sub, &path);
            }
        }
        check(&command(), "");
    }

    #[test]
    fn scheduler_admission_options_parse() {
        let base = [
            "poco",
            "scheduler",
            "run",
            "--workerpool",
            "0x0000000000000000000000000000000000000001",
        ];
        let parse = |extra: &[&str]| {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            Cli::try_parse_from(args).map(|cli| match cli.command {
                Command::Scheduler(SchedulerCommand::Run(run)) => {
                    (run.results_urls, run.admit, run.admit_workers, run.admit_file)
                }
                _ => panic!("scheduler run"),
            })
        };
        // A result store may come from the configuration file or the network's profile.
        assert_eq!(parse(&[]).unwrap(), (vec![], None, vec![], None));
        let (stores, admit, workers, file) = parse(&["--results.url", "http://a"]).unwrap();
        assert_eq!(
            (stores, admit, workers, file),
            (vec!["http://a".to_owned()], None, vec![], None)
        );
        let (stores, admit, workers, _) = parse(&[
            "--results.url",
            "http://a",
            "--results.url",
            "http://b",
            "--admit",
            "allow-list",
            "--admit.worker",
            "0x0000000000000000000000000000000000000002",
            "--admit.worker",
            "0x0000000000000000000000000000000000000003",
        ])
        .unwrap();
        assert_eq!(stores, ["http://a", "http://b"]);
        assert_eq!((admit, workers.len()), (Some(AdmitRule::AllowList), 2));
        let (_, admit, ..) = parse(&["--results.url", "http://a", "--admit", "open"]).unwrap();
        assert_eq!(admit, Some(AdmitRule::Open));
        assert!(parse(&["--results.url", "http://a", "--admit", "everyone"]).is_err());
    }

    #[test]
    fn service_sections_parse_and_refuse_unknown_keys() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Sections {
            market: MarketServe,
            scheduler: SchedulerRun,
            worker: WorkerRun,
            results: ResultsServe,
            sms: SmsServe,
        }
        let text = r#"
            [market]
            listen = "0.0.0.0:8080"
            public_url = "https://market.example.org"
            confirmations = 3
            trusted_proxies = ["10.0.0.1"]
            rate_per_client = 20.5
            max_open_orders_per_wallet = 10

            [scheduler]
            workerpool = "0x0000000000000000000000000000000000000001"
            results_urls = ["https://results.example.org"]
            admit = "allow-list"
            admit_workers = ["0x0000000000000000000000000000000000000002"]
            worker_timeout = 30

            [worker]
            scheduler_url = "https://pool.example.org"
            slots = 4
            memory_mib = 1024

            [results]
            storage = "s3://bucket/poco"
            max_concurrent_uploads = 2

            [sms]
            db_url = "postgres://sms@db/sms"
            session_ttl = 30
        "#;
        let sections: Sections = toml::from_str(text).unwrap();
        assert_eq!(sections.market.confirmations, Some(3));
        assert_eq!(sections.market.rate_per_client, Some(20.5));
        assert_eq!(sections.scheduler.admit, Some(AdmitRule::AllowList));
        assert_eq!(sections.scheduler.admit_workers.len(), 1);
        assert_eq!(sections.worker.slots, Some(4));
        assert_eq!(sections.worker.scheduler_url, ["https://pool.example.org"]);
        let several: WorkerRun =
            toml::from_str("scheduler_url = [\"http://a\", \"http://b\"]").unwrap();
        assert_eq!(several.scheduler_url, ["http://a", "http://b"]);
        assert_eq!(sections.results.storage.as_deref(), Some("s3://bucket/poco"));
        assert_eq!(sections.sms.session_ttl, Some(30));
        // The INSECURE simulation is never read from a file.
        for (section, key) in [
            ("worker", "insecure_simulation = true"),
            ("worker", "simulation_key_file = \"k\""),
            ("sms", "insecure_simulation = true"),
            ("sms", "simulation_signers = []"),
            ("market", "listne = \"x\""),
        ] {
            let error = match section {
                "worker" => toml::from_str::<WorkerRun>(key).err(),
                "sms" => toml::from_str::<SmsServe>(key).err(),
                _ => toml::from_str::<MarketServe>(key).err(),
            };
            let error = error.unwrap_or_else(|| panic!("[{section}] {key} was accepted"));
            assert!(error.message().contains("unknown field"), "{error}");
        }
    }

    #[test]
    fn a_private_key_is_never_a_flag_value() {
        let cli = Cli::try_parse_from([
            "poco",
            "protocol",
            "deploy",
            "--network",
            "x",
            "--private-key",
            "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        ])
        .unwrap();
        let Command::Protocol(ProtocolCommand::Deploy(deploy)) = cli.command else {
            panic!("protocol deploy")
        };
        // Parsed only to be refused, without the value being shown (see protocol.rs).
        assert!(deploy.private_key.is_some());
        let mut command = command();
        let deploy = command
            .find_subcommand_mut("protocol")
            .and_then(|protocol| protocol.find_subcommand_mut("deploy"))
            .unwrap();
        assert!(!deploy.render_help().to_string().contains("--private-key <"), "hidden");
    }

    #[test]
    fn namespaced_options_parse() {
        let cli = Cli::try_parse_from([
            "poco",
            "--rpc.url",
            "http://127.0.0.1:1",
            "--json",
            "account",
            "balance",
        ])
        .unwrap();
        assert_eq!(cli.global.rpc_url.as_deref(), Some("http://127.0.0.1:1"));
        assert!(cli.global.json);
        assert!(matches!(cli.command, Command::Account(AccountCommand::Balance { address: None })));
    }

    #[test]
    fn confidential_options_parse() {
        let cli = Cli::try_parse_from([
            "poco",
            "--sms.url",
            "http://127.0.0.1:8060",
            "run",
            "0x0000000000000000000000000000000000000001",
            "--tag",
            "tee",
            "--secret",
            "token",
            "--secret",
            "3=db.password",
            "--encrypt-result",
        ])
        .unwrap();
        assert_eq!(cli.global.sms_url.as_deref(), Some("http://127.0.0.1:8060"));
        let Command::Run(run) = cli.command else { panic!("run") };
        assert_eq!(run.secrets, ["token", "3=db.password"]);
        assert!(run.encrypt_result);

        let serve = Cli::try_parse_from(["poco", "sms", "run", "--insecure-simulation"]);
        assert!(serve.is_err(), "the simulation needs its trusted keys");
        let serve = Cli::try_parse_from([
            "poco",
            "sms",
            "run",
            "--insecure-simulation",
            "--simulation.signer",
            "0x0000000000000000000000000000000000000002",
        ])
        .unwrap();
        let Command::Sms(SmsCommand::Run(serve)) = serve.command else { panic!("sms run") };
        assert!(serve.insecure_simulation);
        assert_eq!(serve.simulation_signers.len(), 1);

        let worker =
            ["poco", "worker", "run", "--scheduler.url", "http://s", "--insecure-simulation"];
        assert!(Cli::try_parse_from(worker).is_err(), "the simulated enclave needs its key");
        assert!(Cli::try_parse_from(["poco", "secret", "push"]).is_err(), "a name or --app");
        assert!(
            Cli::try_parse_from([
                "poco",
                "secret",
                "push",
                "x",
                "--app",
                "0x0000000000000000000000000000000000000001"
            ])
            .is_err(),
            "not both"
        );
        let push = Cli::try_parse_from(["poco", "secret", "push", "x", "--value-env", "X"]);
        assert!(push.is_ok());
        let deploy = Cli::try_parse_from([
            "poco", "app", "deploy", "--name", "c", "--file", "c.wasm", "--tee",
        ])
        .unwrap();
        assert!(matches!(deploy.command, Command::App(AppCommand::Deploy { tee: true, .. })));
        let show = Cli::try_parse_from([
            "poco",
            "dataset",
            "show",
            "0x0000000000000000000000000000000000000001",
        ])
        .unwrap();
        assert!(matches!(
            show.command,
            Command::Dataset(DatasetCommand::Common(AssetCommand::Show { .. }))
        ));
    }
}
