//! Configuration, resolved once in layers: defaults < configuration file < environment <
//! flags (clap merges the last two). When nothing names a chain, the running devnet of the
//! home directory is used.

use std::path::{Path, PathBuf};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use poco_chain::wallet::Wallet;
use poco_sdk::{
    Endpoints, Poco,
    confidential::{LocalKeys, SecretsClient},
    devnet::DevnetInfo,
};
use serde::Deserialize;

use crate::{Failure, cli::Global, password::PasswordSource};

/// The configuration file (`<home>/config.toml`): every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    rpc_url: Option<String>,
    market_url: Option<String>,
    sms_url: Option<String>,
    poco_address: Option<Address>,
    from_block: Option<u64>,
    wallet: Option<PathBuf>,
    password_file: Option<PathBuf>,
    fetch: Option<poco_fetch::FetchPolicy>,
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
    rpc_url: Option<String>,
    market_url: Option<String>,
    sms_url: Option<String>,
    poco_address: Option<Address>,
    from_block: u64,
    wallet: Option<PathBuf>,
    password_file: Option<PathBuf>,
    devnet_account: Option<String>,
    /// The configuration file named on the command line, if any.
    pub config_file: Option<PathBuf>,
    fetch: poco_fetch::FetchPolicy,
}

/// The default home: `$HOME/.poco`.
fn default_home() -> PathBuf {
    std::env::var_os("HOME")
        .map_or_else(|| PathBuf::from(".poco"), |h| PathBuf::from(h).join(".poco"))
}

impl Context {
    /// Resolves the configuration.
    pub(crate) fn load(global: &Global) -> Result<Self, Failure> {
        let home = global.home.clone().unwrap_or_else(default_home);
        let file = global.config.clone().unwrap_or_else(|| home.join("config.toml"));
        let config = read_config(&file, global.config.is_some())?;
        Ok(Self {
            json: global.json,
            yes: global.yes,
            rpc_url: global.rpc_url.clone().or(config.rpc_url),
            market_url: global.market_url.clone().or(config.market_url),
            sms_url: global.sms_url.clone().or(config.sms_url),
            poco_address: global.poco_address.or(config.poco_address),
            from_block: config.from_block.unwrap_or(0),
            wallet: global.wallet.clone().or(config.wallet),
            password_file: global.password_file.clone().or(config.password_file),
            devnet_account: global.devnet_account.clone(),
            config_file: global.config.clone(),
            fetch: fetch_policy(config.fetch.unwrap_or_default(), &global.fetch),
            home,
        })
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
            Some(devnet) if self.rpc_url.is_none() => {
                self.fetch.clone().widened_by(&devnet.client_fetch)
            }
            _ => self.fetch.clone(),
        }
    }

    /// The running devnet of the home directory.
    pub(crate) fn devnet(&self) -> Option<DevnetInfo> {
        poco_sdk::devnet::running(&self.home)
    }

    /// Where the protocol is: the configured endpoints, else the running devnet's.
    pub(crate) fn endpoints(&self) -> Result<Endpoints, Failure> {
        let devnet = self.devnet();
        let rpc_url = self
            .rpc_url
            .clone()
            .or_else(|| devnet.as_ref().map(|d| d.rpc_url.clone()))
            .ok_or_else(|| {
            Failure::config(
                "no chain configured: start one with `poco devnet up --detach`, or pass \
                     --rpc.url and --poco.address",
            )
        })?;
        let poco = self
            .poco_address
            .or_else(|| devnet.as_ref().map(|d| d.deployment.poco))
            .ok_or_else(|| Failure::config("no protocol address: pass --poco.address"))?;
        let from_block = if self.poco_address.is_none() {
            devnet.as_ref().map_or(self.from_block, |d| d.deployment.block)
        } else {
            self.from_block
        };
        let market_url = self.market_url.clone().or_else(|| devnet.map(|d| d.market_url));
        Ok(Endpoints { rpc_url, market_url, poco, from_block })
    }

    /// The SMS: the configured one, else the running devnet's; `None` when there is none.
    pub(crate) fn sms_url(&self) -> Option<String> {
        self.sms_url.clone().or_else(|| self.devnet().and_then(|d| d.sms_url))
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

    /// The wallet: a devnet account, or an unlocked keystore; `None` when none is configured.
    pub(crate) fn wallet(&self) -> Result<Option<PrivateKeySigner>, Failure> {
        if let Some(role) = &self.devnet_account {
            return Ok(Some(poco_sdk::devnet::role_key(role)?));
        }
        let Some(path) = &self.wallet else { return Ok(None) };
        let password = PasswordSource::choose(self.password_file.clone()).read()?;
        let wallet = Wallet::unlock(path, &password)?;
        Ok(Some(wallet.into_signer()))
    }

    /// A client, with the wallet if one is configured.
    pub(crate) async fn client(&self) -> Result<Poco, Failure> {
        let endpoints = self.endpoints()?;
        let client = Poco::connect(&endpoints, self.wallet()?).await?;
        Ok(client.with_fetch_policy(self.client_fetch_policy()))
    }

    /// A client that must have a wallet.
    pub(crate) async fn signing_client(&self) -> Result<Poco, Failure> {
        let wallet = self.wallet()?.ok_or(poco_sdk::Error::NoWallet)?;
        let endpoints = self.endpoints()?;
        let client = Poco::connect(&endpoints, Some(wallet)).await?;
        Ok(client.with_fetch_policy(self.client_fetch_policy()))
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
        ..poco_fetch::FetchPolicy::default()
    })
}
