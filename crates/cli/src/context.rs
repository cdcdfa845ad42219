//! Configuration, resolved once in layers: defaults < configuration file < environment <
//! flags (clap merges the last two). A network profile (`--network NAME`, `POCO_NETWORK` or
//! `network = "NAME"` in the file) comes between the file and the environment for the values it
//! holds (endpoint, protocol, market, SMS): flags and environment variables still override them
//! one by one. When nothing names a chain, the running devnet of the home directory is used,
//! and the devnet's file is read only then.
//!
//! The services' options (`[market]`, `[scheduler]`, `[worker]`, `[results]`, `[sms]` sections
//! of the file) are the same structures as their flags: the command line's value wins, else the
//! file's, else the default.

use std::path::{Path, PathBuf};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use poco_chain::wallet::{KeystoreDir, KeystoreEntry, Wallet};
use poco_sdk::{
    Endpoints, Poco,
    confidential::{LocalKeys, SecretsClient},
    devnet::DevnetInfo,
};
use serde::Deserialize;

use crate::{
    Failure,
    cli::{Global, MarketServe, ResultsServe, SchedulerRun, SmsServe, WorkerRun},
    network::{self, Network},
    password::PasswordSource,
};

/// The configuration file (`<home>/config.toml`): every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    network: Option<String>,
    rpc_url: Option<String>,
    market_url: Option<String>,
    sms_url: Option<String>,
    poco_address: Option<Address>,
    from_block: Option<u64>,
    tx_timeout: Option<u64>,
    account: Option<String>,
    wallet: Option<PathBuf>,
    password_file: Option<PathBuf>,
    fetch: Option<poco_fetch::FetchPolicy>,
    market: Option<MarketServe>,
    scheduler: Option<SchedulerRun>,
    worker: Option<WorkerRun>,
    results: Option<ResultsServe>,
    sms: Option<SmsServe>,
}

/// Where the chain, the protocol and the services are, as one layer gives them.
#[derive(Debug, Default, Clone)]
struct Chain {
    rpc_url: Option<String>,
    market_url: Option<String>,
    sms_url: Option<String>,
    poco_address: Option<Address>,
}

/// The sections of the services in the configuration file.
#[derive(Debug, Default)]
pub(crate) struct Sections {
    /// `[market]`.
    pub market: MarketServe,
    /// `[scheduler]`.
    pub scheduler: SchedulerRun,
    /// `[worker]`.
    pub worker: WorkerRun,
    /// `[results]`.
    pub results: ResultsServe,
    /// `[sms]`.
    pub sms: SmsServe,
}

/// Everything a command needs to know about its environment.
#[derive(Debug)]
pub(crate) struct Context {
    /// The poco home.
    pub home: PathBuf,
    /// Print JSON.
    pub json: bool,
    /// Skip confirmations.
    pub yes: bool,
    /// Results and errors only (`-q`).
    pub quiet: bool,
    /// Whole hashes in tables (`--wide`).
    pub wide: bool,
    /// What the flags and the environment say.
    flags: Chain,
    /// What the configuration file says.
    file: Chain,
    file_from_block: Option<u64>,
    /// Most time a transaction is waited for (`--tx-timeout`, else `tx_timeout` in the file).
    receipt_timeout: std::time::Duration,
    /// The network named (`--network`, `POCO_NETWORK`, `network` in the file).
    network_name: Option<String>,
    /// Its profile, when it exists.
    network: Option<Network>,
    /// Who signs, as named (not yet looked up nor unlocked).
    signer: Option<SignerName>,
    password_file: Option<PathBuf>,
    /// The wallet once unlocked: a command asks for the password once at most.
    unlocked: std::sync::OnceLock<PrivateKeySigner>,
    /// The configuration file named on the command line, if any.
    pub config_file: Option<PathBuf>,
    /// The configuration file read (or that would have been).
    config_path: PathBuf,
    fetch: poco_fetch::FetchPolicy,
    /// The services' sections of the configuration file.
    pub sections: Sections,
}

/// Who signs, as the flags, the environment or the configuration file name it.
#[derive(Debug, Clone)]
enum SignerName {
    /// An account of the running devnet, by role.
    Devnet(String),
    /// A keystore of the keystore directories, by file name or by address.
    Account(String),
    /// A keystore file, by path.
    Keystore(PathBuf),
}

/// The default home: `$HOME/.poco`.
fn default_home() -> PathBuf {
    std::env::var_os("HOME")
        .map_or_else(|| PathBuf::from(".poco"), |h| PathBuf::from(h).join(".poco"))
}

impl Context {
    /// Resolves the configuration. A network that is named must exist, unless
    /// `network_may_be_new` (the commands that create profiles).
    pub(crate) fn load(global: &Global, network_may_be_new: bool) -> Result<Self, Failure> {
        let home = global.home.clone().unwrap_or_else(default_home);
        let file = global.config.clone().unwrap_or_else(|| home.join("config.toml"));
        let config = read_config(&file, global.config.is_some())?;
        let network_name = global.network.clone().or(config.network);
        let network = match &network_name {
            Some(name) if network_may_be_new => network::find(&home, name)?,
            Some(name) => Some(network::load(&home, name)?),
            None => None,
        };
        Ok(Self {
            json: global.json,
            yes: global.yes,
            quiet: global.quiet,
            wide: global.wide,
            flags: Chain {
                rpc_url: global.rpc_url.clone(),
                market_url: global.market_url.clone(),
                sms_url: global.sms_url.clone(),
                poco_address: global.poco_address,
            },
            file: Chain {
                rpc_url: config.rpc_url,
                market_url: config.market_url,
                sms_url: config.sms_url,
                poco_address: config.poco_address,
            },
            file_from_block: config.from_block,
            receipt_timeout: global
                .tx_timeout
                .or(config.tx_timeout)
                .map_or(poco_sdk::DEFAULT_RECEIPT_TIMEOUT, std::time::Duration::from_secs),
            network_name,
            network,
            signer: signer_name(global, config.account, config.wallet),
            password_file: global.password_file.clone().or(config.password_file),
            unlocked: std::sync::OnceLock::new(),
            config_file: global.config.clone(),
            config_path: file,
            fetch: fetch_policy(config.fetch.unwrap_or_default(), &global.fetch),
            sections: Sections {
                market: config.market.unwrap_or_default(),
                scheduler: config.scheduler.unwrap_or_default(),
                worker: config.worker.unwrap_or_default(),
                results: config.results.unwrap_or_default(),
                sms: config.sms.unwrap_or_default(),
            },
            home,
        })
    }

    /// The network named, if any (it may not exist yet, for the commands that create it).
    pub(crate) fn network_name(&self) -> Option<&str> {
        self.network_name.as_deref()
    }

    /// What the flags and the environment give (not the profile nor the file): the endpoint.
    pub(crate) fn rpc_url_flag(&self) -> Option<&str> {
        self.flags.rpc_url.as_deref()
    }

    /// What the flags and the environment give: the protocol's address.
    pub(crate) fn poco_address_flag(&self) -> Option<Address> {
        self.flags.poco_address
    }

    /// What the flags and the environment give: the market.
    pub(crate) fn market_url_flag(&self) -> Option<&str> {
        self.flags.market_url.as_deref()
    }

    /// What the flags and the environment give: the SMS.
    pub(crate) fn sms_url_flag(&self) -> Option<&str> {
        self.flags.sms_url.as_deref()
    }

    /// The chain's endpoint: a flag's, else the network's, else the file's.
    fn rpc_url(&self) -> Option<String> {
        self.flags
            .rpc_url
            .clone()
            .or_else(|| self.network.as_ref().map(|n| n.profile.rpc_url.clone()))
            .or_else(|| self.file.rpc_url.clone())
    }

    /// The protocol's address: a flag's, else the network's, else the file's.
    fn poco_address(&self) -> Option<Address> {
        self.flags
            .poco_address
            .or_else(|| self.network.as_ref().map(|n| n.profile.poco_address))
            .or(self.file.poco_address)
    }

    /// Whether the running devnet fills in what is not configured: when no network is named
    /// and the chain is not fully named (endpoint and protocol) by flags or the file.
    fn devnet_fills_in(&self) -> bool {
        self.network.is_none() && (self.rpc_url().is_none() || self.poco_address().is_none())
    }

    /// Whether the chain in use is the running devnet's: `--network devnet`, or nothing
    /// naming a chain at all.
    fn on_devnet(&self) -> bool {
        match &self.network {
            Some(network) => network.is_devnet(),
            None => self.rpc_url().is_none(),
        }
    }

    /// The confirmation depth of the services when none is given: the network's, 0 on the
    /// devnet, else [`network::DEFAULT_CONFIRMATIONS`].
    pub(crate) fn default_confirmations(&self) -> u64 {
        match &self.network {
            Some(network) => network.confirmations(),
            None if self.on_devnet() => 0,
            None => network::DEFAULT_CONFIRMATIONS,
        }
    }

    /// The network's result store, if its profile names one.
    pub(crate) fn network_results_url(&self) -> Option<String> {
        self.network.as_ref().and_then(|n| n.profile.results_url.clone())
    }

    /// The result store apps' code is published on: the network's, else the running devnet's
    /// when it is the chain in use.
    pub(crate) fn publishing_results_url(&self) -> Option<String> {
        self.network_results_url().or_else(|| {
            if self.devnet_fills_in() { self.devnet().map(|d| d.results_url) } else { None }
        })
    }

    /// The configuration file read (or that would have been).
    pub(crate) fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The fetch policy of this machine's services (a worker's): the `[fetch]` section of the
    /// configuration file, widened by the `--fetch.*` flags.
    pub(crate) fn fetch_policy(&self) -> &poco_fetch::FetchPolicy {
        &self.fetch
    }

    /// What a client checks a run's URLs and fetches results with: this machine's policy,
    /// widened by the running devnet's own (its staged files and its result store) when the
    /// devnet is the chain in use.
    pub(crate) fn client_fetch_policy(&self) -> poco_fetch::FetchPolicy {
        match self.devnet() {
            Some(devnet) if self.on_devnet() => self.fetch.clone().widened_by(&devnet.client_fetch),
            _ => self.fetch.clone(),
        }
    }

    /// The running devnet of the home directory.
    pub(crate) fn devnet(&self) -> Option<DevnetInfo> {
        poco_sdk::devnet::running(&self.home)
    }

    /// Where the protocol is: the flags, else the network's profile, else the configuration
    /// file, else the running devnet's (read only when nothing else names the chain).
    pub(crate) fn endpoints(&self) -> Result<Endpoints, Failure> {
        let devnet = if self.devnet_fills_in() { self.devnet() } else { None };
        let rpc_url = self
            .rpc_url()
            .or_else(|| devnet.as_ref().map(|d| d.rpc_url.clone()))
            .ok_or_else(|| {
                Failure::config(
                    "no chain configured: start one with `poco devnet up --detach`, select a \
                     network with --network NAME (`poco network list`), or pass --rpc.url and \
                     --poco.address",
                )
            })?;
        let configured = self.poco_address();
        let poco = configured
            .or_else(|| devnet.as_ref().map(|d| d.deployment.poco))
            .ok_or_else(|| Failure::config("no protocol address: pass --poco.address"))?;
        let from_block = match (&self.network, configured) {
            (Some(network), _) if network.profile.poco_address == poco => {
                network.profile.from_block
            }
            (_, None) => devnet.as_ref().map_or(0, |d| d.deployment.block),
            _ => self.file_from_block.unwrap_or(0),
        };
        let market_url = self
            .flags
            .market_url
            .clone()
            .or_else(|| self.network.as_ref().and_then(|n| n.profile.market_url.clone()))
            .or_else(|| self.file.market_url.clone())
            .or_else(|| devnet.map(|d| d.market_url));
        // A command's transactions are done once the network's services can see them.
        let confirmations = match &self.network {
            Some(network) if network.profile.poco_address == poco => network.confirmations(),
            _ => 0,
        };
        let receipt_timeout = self.receipt_timeout;
        Ok(Endpoints { rpc_url, market_url, poco, from_block, confirmations, receipt_timeout })
    }

    /// The SMS: the configured one, else the running devnet's; `None` when there is none.
    pub(crate) fn sms_url(&self) -> Option<String> {
        self.flags
            .sms_url
            .clone()
            .or_else(|| self.network.as_ref().and_then(|n| n.profile.sms_url.clone()))
            .or_else(|| self.file.sms_url.clone())
            .or_else(|| {
                if self.devnet_fills_in() { self.devnet().and_then(|d| d.sms_url) } else { None }
            })
    }

    /// A client of the SMS; with the wallet (which must be configured) when `signing`.
    pub(crate) fn secrets(&self, signing: bool) -> Result<SecretsClient, Failure> {
        let url = self.sms_url().ok_or_else(|| {
            Failure::config(
                "no SMS configured: pass --sms.url, or start a devnet (`poco devnet up --detach`), \
                 which runs one",
            )
        })?;
        let wallet =
            if signing { Some(self.wallet()?.ok_or(poco_sdk::Error::NoWallet)?) } else { None };
        Ok(SecretsClient::new(&url, wallet))
    }

    /// The local keys of the home (dataset keys, the result key).
    pub(crate) fn keys(&self) -> LocalKeys {
        LocalKeys::new(&self.home)
    }

    /// The keystore directories `--account NAME|ADDRESS` looks in, in order: poco's
    /// (`<home>/wallets`), then Foundry's (`~/.foundry/keystores`, where `cast wallet import`
    /// saves).
    pub(crate) fn keystore_dirs(&self) -> Vec<KeystoreDir> {
        let mut dirs = vec![KeystoreDir::new(self.wallets_dir())];
        if let Some(home) = std::env::var_os("HOME") {
            dirs.push(KeystoreDir::new(PathBuf::from(home).join(".foundry/keystores")));
        }
        dirs
    }

    /// The keystore of `--account NAME|ADDRESS`: a file of that name, else one stating that
    /// address, in the first keystore directory that has one.
    fn find_account(&self, account: &str) -> Result<KeystoreEntry, Failure> {
        let dirs = self.keystore_dirs();
        let by_address = account.parse::<Address>().ok();
        for dir in &dirs {
            let found = match by_address {
                Some(address) => match dir.find(address) {
                    Ok(entry) => Some(entry),
                    Err(poco_chain::WalletError::NoKeystoreFor { .. }) => None,
                    Err(error) => return Err(error.into()),
                },
                None => dir.named(account)?,
            };
            if let Some(entry) = found {
                return Ok(entry);
            }
        }
        let searched: Vec<String> = dirs.iter().map(|d| d.path().display().to_string()).collect();
        Err(Failure::wallet(format!(
            "no keystore {} {account} in {}: `poco wallet list` shows the wallets there",
            if by_address.is_some() { "for" } else { "named" },
            searched.join(" or "),
        )))
    }

    /// The keystore that signs, when the signer is one: found and read, not unlocked.
    fn keystore(&self) -> Result<Option<KeystoreEntry>, Failure> {
        match &self.signer {
            Some(SignerName::Account(account)) => self.find_account(account).map(Some),
            Some(SignerName::Keystore(path)) => Ok(Some(KeystoreEntry::read(path.clone())?)),
            Some(SignerName::Devnet(_)) | None => Ok(None),
        }
    }

    /// The signer's address, without unlocking anything when it can be helped: a keystore
    /// states its address in clear (files written by Foundry's `cast` do not, and are unlocked
    /// to learn it). `None` when no signer is configured.
    pub(crate) fn address(&self) -> Result<Option<Address>, Failure> {
        if let Some(signer) = self.unlocked.get() {
            return Ok(Some(signer.address()));
        }
        if let Some(SignerName::Devnet(role)) = &self.signer {
            return Ok(Some(poco_sdk::devnet::role_key(role)?.address()));
        }
        match self.keystore()? {
            Some(KeystoreEntry { address: Some(address), .. }) => Ok(Some(address)),
            Some(_) => Ok(self.wallet()?.map(|signer| signer.address())),
            None => Ok(None),
        }
    }

    /// The signer's address, which must be configured: what "mine" means to read-only
    /// commands.
    pub(crate) fn my_address(&self) -> Result<Address, Failure> {
        self.address()?.ok_or_else(|| poco_sdk::Error::NoWallet.into())
    }

    /// The wallet: a devnet account, or an unlocked keystore (the password is asked once per
    /// command); `None` when none is configured.
    pub(crate) fn wallet(&self) -> Result<Option<PrivateKeySigner>, Failure> {
        if let Some(signer) = self.unlocked.get() {
            return Ok(Some(signer.clone()));
        }
        let signer = match &self.signer {
            None => return Ok(None),
            Some(SignerName::Devnet(role)) => poco_sdk::devnet::role_key(role)?,
            Some(_) => {
                let entry = self.keystore()?.expect("a keystore signer has a keystore");
                let password = PasswordSource::choose(self.password_file.clone()).read()?;
                Wallet::unlock(&entry.path, &password)?.into_signer()
            }
        };
        Ok(Some(self.unlocked.get_or_init(|| signer).clone()))
    }

    /// A client that reads: no wallet, so nothing is unlocked.
    pub(crate) async fn client(&self) -> Result<Poco, Failure> {
        self.connect(None).await
    }

    /// A client that must have a wallet (unlocked now).
    pub(crate) async fn signing_client(&self) -> Result<Poco, Failure> {
        let wallet = self.wallet()?.ok_or(poco_sdk::Error::NoWallet)?;
        self.connect(Some(wallet)).await
    }

    async fn connect(&self, wallet: Option<PrivateKeySigner>) -> Result<Poco, Failure> {
        let endpoints = self.endpoints()?;
        self.check_chain(&endpoints.rpc_url).await?;
        let client = Poco::connect(&endpoints, wallet).await?;
        Ok(client.with_fetch_policy(self.client_fetch_policy()))
    }

    /// Refuses an endpoint that serves another chain than the selected network's, before
    /// anything else is asked of it: an operator whose endpoint points at another chain than
    /// the profile's must not send a single transaction there.
    async fn check_chain(&self, rpc_url: &str) -> Result<(), Failure> {
        let Some(network) = &self.network else { return Ok(()) };
        let config = poco_chain::ClientConfig { max_retries: 1, ..Default::default() };
        let (_, served) = poco_sdk::connect_chain(rpc_url, None, config).await?;
        if served == network.profile.chain_id {
            return Ok(());
        }
        let source = match &network.source {
            network::Source::File(path) => path.display().to_string(),
            network::Source::Devnet => "the running devnet".to_owned(),
        };
        Err(Failure::config(format!(
            "the network {:?} is chain {} ({source}), but the endpoint {rpc_url} serves chain \
             {served}: refusing to use it, so that nothing meant for one chain is sent to \
             another. Fix the endpoint (--rpc.url, or the profile)",
            network.name, network.profile.chain_id,
        )))
    }

    /// The password file given, if any.
    pub(crate) fn password_file(&self) -> Option<&PathBuf> {
        self.password_file.as_ref()
    }

    /// The default directory of keystores.
    pub(crate) fn wallets_dir(&self) -> PathBuf {
        self.home.join("wallets")
    }
}

/// Who signs: `--devnet-account`, else `--account`, else `--wallet` (each a flag or its
/// environment variable), else the configuration file's `account`, else its `wallet`.
fn signer_name(
    global: &Global,
    file_account: Option<String>,
    file_wallet: Option<PathBuf>,
) -> Option<SignerName> {
    global
        .devnet_account
        .clone()
        .map(SignerName::Devnet)
        .or_else(|| global.account.clone().map(SignerName::Account))
        .or_else(|| global.wallet.clone().map(SignerName::Keystore))
        .or_else(|| file_account.map(SignerName::Account))
        .or_else(|| file_wallet.map(SignerName::Keystore))
}

fn read_config(path: &Path, explicit: bool) -> Result<FileConfig, Failure> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            // One line: where, then what (the parser's own text quotes the file over lines).
            let line = e.span().map_or(1, |span| text[..span.start].matches('\n').count() + 1);
            Failure::config(format!(
                "configuration file {}, line {line}: {}",
                path.display(),
                e.message().trim_end()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            Ok(FileConfig::default())
        }
        Err(e) => Err(Failure::config(format!("configuration file {}: {e}", path.display()))),
    }
}

/// The configured policy, widened by the flags.
fn fetch_policy(
    configured: poco_fetch::FetchPolicy,
    flags: &crate::cli::FetchArgs,
) -> poco_fetch::FetchPolicy {
    configured.widened_by(&poco_fetch::FetchPolicy {
        allow: flags.allow.clone(),
        provided_dirs: flags.allow_dir.clone(),
        input_dirs: flags.input_dir.clone(),
        app_origins: flags.app_origin.clone(),
        ..poco_fetch::FetchPolicy::default()
    })
}
