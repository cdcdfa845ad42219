//! Network profiles: where a marketplace runs, by name. `poco protocol deploy` and
//! `poco network add` write them; `--network NAME` (or `POCO_NETWORK`, or `network = "NAME"` in
//! the configuration file) selects one for any command.
//!
//! A profile is `<home>/networks/<NAME>.toml` (the folder 0700, the file 0600): the chain's
//! JSON-RPC endpoint and chain id, the protocol's address and deployment block, the
//! confirmation depth its services use, and the URLs of its market, SMS and result store when
//! they are known. The running devnet of the home is the profile `devnet`, read from the
//! running devnet itself (never from a file it may have left behind).

use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use serde::Deserialize;

use crate::Failure;

/// The name of the running devnet's profile.
pub(crate) const DEVNET: &str = "devnet";

/// The confirmation depth of services on a chain whose profile names none (a devnet's is 0).
pub(crate) const DEFAULT_CONFIRMATIONS: u64 = 2;

/// A network profile, as its file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    /// The chain's JSON-RPC endpoint.
    pub rpc_url: String,
    /// The chain id the endpoint must serve: a profile never sends to another chain.
    pub chain_id: u64,
    /// The protocol's entry point.
    pub poco_address: Address,
    /// The block the protocol was deployed at: events are searched from there.
    pub from_block: u64,
    /// Blocks on top of an event before services act on it (default: [`DEFAULT_CONFIRMATIONS`]).
    #[serde(default)]
    pub confirmations: Option<u64>,
    /// The market.
    #[serde(default)]
    pub market_url: Option<String>,
    /// The SMS of confidential tasks.
    #[serde(default)]
    pub sms_url: Option<String>,
    /// A result store of the network.
    #[serde(default)]
    pub results_url: Option<String>,
    /// The other contracts of the deployment, when it was made by `poco protocol deploy`.
    #[serde(default)]
    pub contracts: Option<Contracts>,
}

/// The contracts of a deployment besides its entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Contracts {
    /// The RLC (ERC-20) token.
    pub token: Address,
    /// The registry of apps.
    pub app_registry: Address,
    /// The registry of datasets.
    pub dataset_registry: Address,
    /// The registry of workerpools.
    pub workerpool_registry: Address,
    /// The task-lifecycle module.
    pub tasks_module: Address,
}

impl Profile {
    /// The confirmation depth services use on this network.
    pub(crate) fn confirmations(&self) -> u64 {
        self.confirmations.unwrap_or(DEFAULT_CONFIRMATIONS)
    }

    /// The profile as its file holds it (TOML), with a first line saying what wrote it.
    pub(crate) fn to_toml(&self, written_by: &str) -> String {
        let string = |value: &str| serde_json::to_string(value).expect("a string is JSON");
        let mut text = format!("# {written_by}\n");
        text.push_str(&format!("rpc_url = {}\n", string(&self.rpc_url)));
        text.push_str(&format!("chain_id = {}\n", self.chain_id));
        text.push_str(&format!("poco_address = \"{}\"\n", self.poco_address));
        text.push_str(&format!("from_block = {}\n", self.from_block));
        if let Some(confirmations) = self.confirmations {
            text.push_str(&format!("confirmations = {confirmations}\n"));
        }
        for (key, value) in [
            ("market_url", &self.market_url),
            ("sms_url", &self.sms_url),
            ("results_url", &self.results_url),
        ] {
            if let Some(value) = value {
                text.push_str(&format!("{key} = {}\n", string(value)));
            }
        }
        if let Some(contracts) = &self.contracts {
            text.push_str("\n[contracts]\n");
            text.push_str(&format!("token = \"{}\"\n", contracts.token));
            text.push_str(&format!("app_registry = \"{}\"\n", contracts.app_registry));
            text.push_str(&format!("dataset_registry = \"{}\"\n", contracts.dataset_registry));
            text.push_str(&format!(
                "workerpool_registry = \"{}\"\n",
                contracts.workerpool_registry
            ));
            text.push_str(&format!("tasks_module = \"{}\"\n", contracts.tasks_module));
        }
        text
    }
}

/// Where a profile comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A profile file.
    File(PathBuf),
    /// The running devnet of the home.
    Devnet,
}

/// A named profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Network {
    /// Its name.
    pub name: String,
    /// Its values.
    pub profile: Profile,
    /// Where it was read.
    pub source: Source,
}

impl Network {
    /// Whether it is the running devnet.
    pub(crate) fn is_devnet(&self) -> bool {
        self.source == Source::Devnet
    }

    /// The confirmation depth its services use: the profile's (0 on the devnet).
    pub(crate) fn confirmations(&self) -> u64 {
        if self.is_devnet() { 0 } else { self.profile.confirmations() }
    }
}

/// The folder of a home's profiles and deployment journals.
pub(crate) fn dir(home: &Path) -> PathBuf {
    home.join("networks")
}

/// The file of the profile `name`.
pub(crate) fn profile_path(home: &Path, name: &str) -> PathBuf {
    dir(home).join(format!("{name}.toml"))
}

/// The journal of the deployment of the network `name`.
pub(crate) fn journal_path(home: &Path, name: &str) -> PathBuf {
    dir(home).join(format!("{name}.deploy.json"))
}

/// Checks that `name` can name a profile: 1 to 64 lowercase letters, digits, `-` and `_`,
/// starting with a letter or a digit (so that it is a file name and nothing else: no path, no
/// hidden file).
pub(crate) fn check_name(name: &str) -> Result<(), Failure> {
    let valid = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "{name:?} cannot name a network: use 1 to 64 lowercase letters, digits, `-` and `_`, \
             starting with a letter or a digit"
        )))
    }
}

/// The profile of the running devnet of `home`.
fn devnet(home: &Path) -> Option<Network> {
    let info = poco_sdk::devnet::running(home)?;
    let deployment = info.deployment;
    Some(Network {
        name: DEVNET.to_owned(),
        profile: Profile {
            rpc_url: info.rpc_url,
            chain_id: deployment.chain_id,
            poco_address: deployment.poco,
            from_block: deployment.block,
            confirmations: Some(0),
            market_url: Some(info.market_url),
            sms_url: info.sms_url,
            results_url: Some(info.results_url),
            contracts: Some(Contracts {
                token: deployment.token,
                app_registry: deployment.app_registry,
                dataset_registry: deployment.dataset_registry,
                workerpool_registry: deployment.workerpool_registry,
                tasks_module: deployment.tasks_module,
            }),
        },
        source: Source::Devnet,
    })
}

/// Reads the profile file at `path`; `None` when there is none.
fn read(path: &Path) -> Result<Option<Profile>, Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure::config(format!("network profile {}: {e}", path.display()))),
    };
    toml::from_str(&text).map(Some).map_err(|e| {
        let line = e.span().map_or(1, |span| text[..span.start].matches('\n').count() + 1);
        Failure::config(format!(
            "network profile {}, line {line}: {}",
            path.display(),
            e.message().trim_end()
        ))
    })
}

/// The profile `name` of `home`, if it exists (`devnet` when a devnet runs there).
pub(crate) fn find(home: &Path, name: &str) -> Result<Option<Network>, Failure> {
    if name == DEVNET {
        return Ok(devnet(home));
    }
    check_name(name)?;
    let path = profile_path(home, name);
    Ok(read(&path)?.map(|profile| Network {
        name: name.to_owned(),
        profile,
        source: Source::File(path),
    }))
}

/// The profile `name` of `home`; an unknown name is an error that lists the known ones.
pub(crate) fn load(home: &Path, name: &str) -> Result<Network, Failure> {
    if let Some(network) = find(home, name)? {
        return Ok(network);
    }
    if name == DEVNET {
        return Err(Failure::config(format!(
            "no devnet runs in {}: start one with `poco devnet up --detach`",
            home.display()
        )));
    }
    let known: Vec<String> = list(home)?.into_iter().map(|network| network.name).collect();
    let known = if known.is_empty() {
        "none yet".to_owned()
    } else {
        format!("known networks: {}", known.join(", "))
    };
    Err(Failure::config(format!(
        "unknown network {name:?} ({known}): deploy the protocol with `poco protocol deploy \
         --network {name} --rpc.url URL`, or add a deployment with `poco network add {name} \
         --rpc.url URL --poco.address ADDRESS`"
    )))
}

/// Every profile of `home`, by name, and the running devnet's.
pub(crate) fn list(home: &Path) -> Result<Vec<Network>, Failure> {
    let folder = dir(home);
    let mut names = Vec::new();
    match std::fs::read_dir(&folder) {
        Ok(entries) => {
            for entry in entries {
                let entry =
                    entry.map_err(|e| Failure::config(format!("{}: {e}", folder.display())))?;
                let file = entry.file_name();
                let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".toml")) else {
                    continue;
                };
                if check_name(name).is_ok() && name != DEVNET {
                    names.push(name.to_owned());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Failure::config(format!("{}: {e}", folder.display()))),
    }
    names.sort();
    let mut networks = Vec::new();
    for name in names {
        networks.extend(find(home, &name)?);
    }
    networks.extend(devnet(home));
    Ok(networks)
}

/// Writes the profile `name` of `home` (its folder 0700, the file 0600, atomically); returns
/// its path.
pub(crate) fn save(
    home: &Path,
    name: &str,
    profile: &Profile,
    written_by: &str,
) -> Result<PathBuf, Failure> {
    check_name(name)?;
    if name == DEVNET {
        return Err(Failure::usage("`devnet` names the running devnet: choose another name"));
    }
    let folder = dir(home);
    poco_chain::files::private_dir(&folder)
        .map_err(|e| Failure::config(format!("{}: {e}", folder.display())))?;
    let path = profile_path(home, name);
    poco_chain::files::write_private(&path, profile.to_toml(written_by).as_bytes())
        .map_err(|e| Failure::config(format!("{}: {e}", path.display())))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile {
            rpc_url: "https://rpc.example/v1/\"key\"\\path".into(),
            chain_id: 1337,
            poco_address: Address::repeat_byte(0x11),
            from_block: 42,
            confirmations: Some(3),
            market_url: Some("https://market.example".into()),
            sms_url: None,
            results_url: Some("https://results.example".into()),
            contracts: Some(Contracts {
                token: Address::repeat_byte(1),
                app_registry: Address::repeat_byte(2),
                dataset_registry: Address::repeat_byte(3),
                workerpool_registry: Address::repeat_byte(4),
                tasks_module: Address::repeat_byte(5),
            }),
        }
    }

    #[test]
    fn a_profile_reads_back_as_it_was_written() {
        let written = profile();
        let text = written.to_toml("written by a test");
        assert!(text.starts_with("# written by a test\n"), "{text}");
        let read: Profile = toml::from_str(&text).unwrap();
        assert_eq!(read, written);
        let bare = Profile { confirmations: None, contracts: None, ..written };
        assert_eq!(toml::from_str::<Profile>(&bare.to_toml("x")).unwrap(), bare);
        assert_eq!(bare.confirmations(), DEFAULT_CONFIRMATIONS);
    }

    #[test]
    fn names_are_file_names_and_nothing_else() {
        for good in ["consortium", "test-1", "a", "0chain", "my_net"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "../x", "a/b", ".hidden", "-x", "Upper", "a b", "x.toml", &"n".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let home = tempfile::tempdir().unwrap();
        let error = load(home.path(), "nowhere").unwrap_err();
        assert!(error.message.contains("unknown network \"nowhere\" (none yet)"), "{error:?}");
        save(home.path(), "alpha", &profile(), "test").unwrap();
        save(home.path(), "beta", &profile(), "test").unwrap();
        let error = load(home.path(), "gamma").unwrap_err();
        assert!(error.message.contains("known networks: alpha, beta"), "{error:?}");
        assert_eq!(load(home.path(), "beta").unwrap().profile, profile());
        let error = load(home.path(), DEVNET).unwrap_err();
        assert!(error.message.contains("poco devnet up"), "{error:?}");
        assert!(save(home.path(), DEVNET, &profile(), "test").is_err());
        // A profile file with a key it does not know is refused, with its line.
        std::fs::write(profile_path(home.path(), "alpha"), "rpc_url = \"x\"\nrpc = 1\n").unwrap();
        let error = load(home.path(), "alpha").unwrap_err();
        assert!(error.message.contains("alpha.toml, line 2"), "{error:?}");
    }
}
