//! The command line: every command, its options and its examples.

use std::path::PathBuf;

use alloy::primitives::{Address, B256};
use clap::{Args, Parser, Subcommand, ValueEnum};

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

Exit codes: 0 success, 1 error, 2 bad usage, 3 wallet, 4 funds, 5 no matching orders,
6 not found, 7 chain or market unreachable, 8 refused by the contracts, 9 result."
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
    /// The chain's JSON-RPC endpoint (default: the running devnet's).
    #[arg(long = "rpc.url", global = true, env = "POCO_RPC_URL", value_name = "URL")]
    pub rpc_url: Option<String>,
    /// The market's URL (default: the running devnet's).
    #[arg(long = "market.url", global = true, env = "POCO_MARKET_URL", value_name = "URL")]
    pub market_url: Option<String>,
    /// The protocol's address on the chain (default: the running devnet's).
    #[arg(long = "poco.address", global = true, env = "POCO_ADDRESS", value_name = "ADDRESS")]
    pub poco_address: Option<Address>,
    /// The wallet: a keystore file.
    #[arg(long, global = true, env = "POCO_WALLET", value_name = "KEYSTORE")]
    pub wallet: Option<PathBuf>,
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
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
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
    App(AssetCommand),
    /// Datasets.
    #[command(subcommand)]
    Dataset(AssetCommand),
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
    /// Results.
    #[command(subcommand)]
    Result(ResultCommand),
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
    #[command(subcommand)]
    Results(ResultsCommand),
}

/// `poco devnet`.
#[derive(Debug, Subcommand)]
pub(crate) enum DevnetCommand {
    /// Start a devnet (or resume the one in the home directory).
    #[command(
        after_help = "Examples:\n  poco devnet up\n  poco devnet up --detach --workers 4 --byzantine-workers 1"
    )]
    Up {
        /// Honest workers.
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Workers that commit wrong results.
        #[arg(long = "byzantine-workers", default_value_t = 0)]
        byzantine_workers: usize,
        /// Task slots per worker.
        #[arg(long, default_value_t = 2)]
        slots: u32,
        /// Run in the background and return once it is ready.
        #[arg(long)]
        detach: bool,
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

/// `poco wallet`.
#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// Create a new wallet (a keystore file protected by a password).
    #[command(after_help = "Example:\n  poco wallet create --out ~/.poco/wallets")]
    Create {
        /// Directory of the keystore (default: <home>/wallets).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
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
        /// Directory of the keystore (default: <home>/wallets).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Show the wallet's address and balances.
    #[command(after_help = "Example:\n  poco --wallet ~/.poco/wallets/UTC--... wallet show")]
    Show,
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

/// `poco app` and `poco dataset`.
#[derive(Debug, Subcommand)]
pub(crate) enum AssetCommand {
    /// Register an asset owned by the wallet.
    #[command(
        after_help = "Examples:\n  poco app deploy --name pi --file apps/pi/pi.wasm\n  poco dataset deploy --name prices --file prices.csv --url https://example.com/prices.csv"
    )]
    Deploy {
        /// Its name.
        #[arg(long)]
        name: String,
        /// The file (its sha256 becomes the registered checksum).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// Where workers fetch it (default: a file:// URL of --file, for devnets).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
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
    /// Features: names (tee, scone, gramine, tdx, gpu) or hex.
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
    /// Category (time budget): 0 XS (5 min) ... 4 XL (10 h).
    #[arg(long, default_value_t = 0)]
    pub category: u64,
    /// Trust: 1 for one worker, more for replication until that confidence.
    #[arg(long, default_value_t = 1)]
    pub trust: u64,
    /// Features needed: names (tee, gpu...) or hex.
    #[arg(long, default_value = "")]
    pub tag: String,
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
}

/// `poco result`.
#[derive(Debug, Subcommand)]
pub(crate) enum ResultCommand {
    /// Download a task's result, checked against the digest certified on-chain.
    #[command(after_help = "Example:\n  poco result download 0xTaskId --out result/")]
    Download {
        /// The task id.
        task: B256,
        /// Where to unpack it (default: ./<task id>).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// `poco market`.
#[derive(Debug, Subcommand)]
pub(crate) enum MarketCommand {
    /// Serve the orderbook.
    #[command(
        after_help = "Example:\n  poco market serve --listen 127.0.0.1:8080 --rpc.url http://127.0.0.1:8545 --poco.address 0x..."
    )]
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Data directory (SQLite database).
        #[arg(long = "data.dir", default_value = "market-data")]
        data_dir: PathBuf,
        /// PostgreSQL URL instead of SQLite.
        #[arg(long = "db.url", env = "POCO_MARKET_DATABASE_URL")]
        database_url: Option<String>,
    },
}

/// `poco scheduler`.
#[derive(Debug, Subcommand)]
pub(crate) enum SchedulerCommand {
    /// Run the scheduler of a workerpool (the wallet must own it).
    #[command(
        after_help = "Example:\n  poco --wallet pool-owner.json scheduler run --workerpool 0xPool --results.url http://127.0.0.1:8090"
    )]
    Run {
        /// The workerpool.
        #[arg(long)]
        workerpool: Address,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8070")]
        listen: String,
        /// Database URL (sqlite://... or postgres://...).
        #[arg(
            long = "db.url",
            default_value = "sqlite://scheduler.db",
            env = "POCO_SCHEDULER_DATABASE_URL"
        )]
        database_url: String,
        /// The result store workers upload to.
        #[arg(long = "results.url")]
        results_url: String,
    },
}

/// `poco worker`.
#[derive(Debug, Subcommand)]
pub(crate) enum WorkerCommand {
    /// Run a worker for a scheduler.
    #[command(
        after_help = "Example:\n  poco --wallet worker.json worker run --scheduler.url http://127.0.0.1:8070 --slots 2"
    )]
    Run {
        /// The scheduler's URL.
        #[arg(long = "scheduler.url")]
        scheduler_url: String,
        /// Tasks at once.
        #[arg(long, default_value_t = 2)]
        slots: u32,
        /// Data directory (tasks in flight, app cache).
        #[arg(long = "data.dir", default_value = "worker-data")]
        data_dir: PathBuf,
    },
}

/// `poco results`.
#[derive(Debug, Subcommand)]
pub(crate) enum ResultsCommand {
    /// Serve the result store.
    #[command(
        after_help = "Example:\n  poco results serve --listen 127.0.0.1:8090 --storage results/"
    )]
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: String,
        /// Where results are kept: a directory, file://... or s3://bucket/prefix.
        #[arg(long, default_value = "results")]
        storage: String,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example() {
        fn check(command: &clap::Command, path: &str) {
            let path = format!("{path} {}", command.get_name());
            if command.get_subcommands().next().is_none() {
                let help = command.get_after_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(help.contains("poco "), "`{path}` has no example in its help");
            }
            for sub in command.get_subcommands() {
                check(sub, &path);
            }
        }
        check(&Cli::command(), "");
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
}
