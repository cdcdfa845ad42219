//! Assets: apps, datasets and workerpools, their registration, metadata, ownership and, for
//! workerpools, policy.

use std::path::{Path, PathBuf};

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    sol_types::SolEvent,
};
use poco_api::results::{CodeReceipt, ResultStoreClient};
use poco_chain::files;
use poco_contracts::bindings::{AppRegistry, DatasetRegistry, WorkerpoolRegistry};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Error, Poco, Result};

/// The three kinds of asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetKind {
    /// An application.
    App,
    /// A dataset.
    Dataset,
    /// A workerpool.
    Workerpool,
}

impl AssetKind {
    /// Its name, as in commands.
    pub fn name(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Dataset => "dataset",
            Self::Workerpool => "workerpool",
        }
    }
}

/// What an asset is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Asset {
    /// Its kind.
    pub kind: AssetKind,
    /// Its address.
    pub address: Address,
    /// Its current owner.
    pub owner: Address,
    /// Its name (or the workerpool's description).
    pub name: String,
    /// Where it is fetched from (apps, datasets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiaddr: Option<String>,
    /// Its sha256 (apps, datasets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<B256>,
    /// The enclave measurement a TEE app registered (`mrenclave`), as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mrenclave: Option<String>,
    /// Worker stake per contribution, % of the pool price (workerpools).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_stake_ratio: Option<u64>,
    /// Scheduler share of the workers' reward, % (workerpools).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler_reward_ratio: Option<u64>,
}

/// The sha256 of a file, as registered for apps and datasets.
pub fn file_checksum(path: &Path) -> Result<B256> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(checksum_of(&bytes))
}

/// The checksum an app or a dataset with these bytes is registered with: their sha256.
pub fn checksum_of(bytes: &[u8]) -> B256 {
    B256::from(<[u8; 32]>::from(Sha256::digest(bytes)))
}

/// The `mrenclave` a TEE app registers to run in the worker's simulated enclave: the
/// measurement that enclave reports for the module in `path` (its sha256), in the JSON form
/// the SMS reads.
pub fn simulated_mrenclave(path: &Path) -> Result<Bytes> {
    let module = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let measurement = poco_api::sms::simulated_measurement(&module);
    Ok(poco_api::sms::AppMeasurement::encode(measurement.as_slice()))
}

/// The `mrenclave` bytes of a measurement given as text: a JSON object (`{"measurement":
/// "0x..."}`, with TDX `rtmr0`..`rtmr3` if needed) or the measurement in hexadecimal (32
/// bytes for MRENCLAVE, 48 for MRTD). Checked as the SMS will read it.
pub fn parse_mrenclave(text: &str) -> Result<Bytes> {
    let text = text.trim();
    let bytes = if text.starts_with('{') {
        Bytes::from(text.as_bytes().to_vec())
    } else {
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let raw = Bytes::from(alloy::primitives::hex::decode(digits).map_err(|_| {
            Error::Config(format!("{text:?} is not a measurement: hexadecimal or JSON"))
        })?);
        poco_api::sms::AppMeasurement::encode(&raw)
    };
    poco_api::sms::AppMeasurement::parse(&bytes).map_err(|e| Error::Config(e.to_string()))?;
    Ok(bytes)
}

/// The directory of a home's staged files: what a devnet's workers may fetch `file://` URLs
/// from (their fetch policy allows it, and no other directory).
pub fn files_dir(home: &Path) -> PathBuf {
    home.join("files")
}

/// Copies a local file into the home's staged files, named by its sha256 (its extension
/// kept), and returns a `file://` URL of the copy: a URL the workers of a devnet of this home
/// fetch. Workers on other machines cannot: give those a URL they can reach instead.
pub fn stage_file(home: &Path, path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let digest = alloy::primitives::hex::encode(Sha256::digest(&bytes));
    let name = match path.extension().and_then(|e| e.to_str()) {
        Some(extension) => format!("{digest}.{extension}"),
        None => digest,
    };
    let dir = files_dir(home);
    files::create_private_dirs(&dir).map_err(|e| Error::io(&dir, e))?;
    let staged = dir.join(name);
    if !staged.exists() {
        files::write_private(&staged, &bytes).map_err(|e| Error::io(&staged, e))?;
    }
    let absolute = std::fs::canonicalize(&staged).map_err(|e| Error::io(&staged, e))?;
    Ok(format!("file://{}", absolute.display()))
}

fn chain(error: alloy::contract::Error) -> Error {
    Error::Chain(error.into())
}

impl Poco {
    fn registry(&self, kind: AssetKind) -> Address {
        match kind {
            AssetKind::App => self.deployment().app_registry,
            AssetKind::Dataset => self.deployment().dataset_registry,
            AssetKind::Workerpool => self.deployment().workerpool_registry,
        }
    }

    /// Registers an app owned by the wallet and returns its address.
    pub async fn deploy_app(&self, name: &str, multiaddr: &str, checksum: B256) -> Result<Address> {
        self.deploy_tee_app(name, multiaddr, checksum, Bytes::new()).await
    }

    /// Registers an app owned by the wallet with the enclave measurement its TEE tasks must
    /// attest (`mrenclave`; empty for an app that is not a TEE app), and returns its address.
    pub async fn deploy_tee_app(
        &self,
        name: &str,
        multiaddr: &str,
        checksum: B256,
        mrenclave: Bytes,
    ) -> Result<Address> {
        let owner = self.address()?;
        let registry =
            AppRegistry::new(self.deployment().app_registry, self.chain().provider().clone());
        let call = registry.createApp(
            owner,
            name.into(),
            "WASM".into(),
            Bytes::from(multiaddr.as_bytes().to_vec()),
            checksum,
            mrenclave,
        );
        let address = call.call().await.map_err(chain)?;
        self.chain().send(call).await?;
        Ok(address)
    }

    /// Publishes `code` as the code of `app` on the result store at `results_url`, signed by
    /// the wallet (which must own `app`, registered with `code`'s sha256): the store then serves
    /// it to anyone at [`ResultStoreClient::code_url`], the URL the app is registered with.
    pub async fn publish_app_code(
        &self,
        results_url: &str,
        app: Address,
        code: Vec<u8>,
    ) -> Result<CodeReceipt> {
        let store = ResultStoreClient::new(results_url)?;
        match store.publish_code(app, code.into(), self.wallet()?).await {
            Err(poco_api::results::Error::Refused { status, code, message }) => {
                Err(Error::PublishRefused { status, code, message })
            }
            other => Ok(other?),
        }
    }

    /// Registers a dataset owned by the wallet and returns its address.
    pub async fn deploy_dataset(
        &self,
        name: &str,
        multiaddr: &str,
        checksum: B256,
    ) -> Result<Address> {
        let owner = self.address()?;
        let registry = DatasetRegistry::new(
            self.deployment().dataset_registry,
            self.chain().provider().clone(),
        );
        let call = registry.createDataset(
            owner,
            name.into(),
            Bytes::from(multiaddr.as_bytes().to_vec()),
            checksum,
        );
        let address = call.call().await.map_err(chain)?;
        self.chain().send(call).await?;
        Ok(address)
    }

    /// Registers a workerpool owned by the wallet and returns its address.
    pub async fn deploy_workerpool(&self, description: &str) -> Result<Address> {
        let owner = self.address()?;
        let registry = WorkerpoolRegistry::new(
            self.deployment().workerpool_registry,
            self.chain().provider().clone(),
        );
        let call = registry.createWorkerpool(owner, description.into());
        let address = call.call().await.map_err(chain)?;
        self.chain().send(call).await?;
        Ok(address)
    }

    /// What the asset at `address` is.
    pub async fn asset(&self, kind: AssetKind, address: Address) -> Result<Asset> {
        let provider = self.chain().provider().clone();
        let unknown = || Error::UnknownAsset { kind: kind.name(), address };
        let registry = WorkerpoolRegistry::new(self.registry(kind), provider.clone());
        let owner = registry.ownerOrZero(address).call().await.map_err(chain)?;
        if owner.is_zero() {
            return Err(unknown());
        }
        let mut asset = Asset {
            kind,
            address,
            owner,
            name: String::new(),
            multiaddr: None,
            checksum: None,
            mrenclave: None,
            worker_stake_ratio: None,
            scheduler_reward_ratio: None,
        };
        match kind {
            AssetKind::App => {
                let app = AppRegistry::new(self.registry(kind), provider)
                    .viewApp(address)
                    .call()
                    .await
                    .map_err(chain)?;
                asset.name = app.name;
                asset.multiaddr = Some(String::from_utf8_lossy(&app.multiaddr).into_owned());
                asset.checksum = Some(app.checksum);
                if !app.mrenclave.is_empty() {
                    asset.mrenclave = Some(match std::str::from_utf8(&app.mrenclave) {
                        Ok(text) => text.to_owned(),
                        Err(_) => app.mrenclave.to_string(),
                    });
                }
            }
            AssetKind::Dataset => {
                let dataset = DatasetRegistry::new(self.registry(kind), provider)
                    .viewDataset(address)
                    .call()
                    .await
                    .map_err(chain)?;
                asset.name = dataset.name;
                asset.multiaddr = Some(String::from_utf8_lossy(&dataset.multiaddr).into_owned());
                asset.checksum = Some(dataset.checksum);
            }
            AssetKind::Workerpool => {
                let pool = registry.viewWorkerpool(address).call().await.map_err(chain)?;
                asset.name = pool.description;
                asset.worker_stake_ratio = Some(pool.workerStakeRatio.saturating_to());
                asset.scheduler_reward_ratio = Some(pool.schedulerRewardRatio.saturating_to());
            }
        }
        Ok(asset)
    }

    /// The assets of `kind` that `owner` holds now.
    pub async fn assets_of(&self, kind: AssetKind, owner: Address) -> Result<Vec<Asset>> {
        let registry = self.registry(kind);
        let received = self
            .logs(
                registry,
                &[
                    Some(WorkerpoolRegistry::Transfer::SIGNATURE_HASH),
                    None,
                    Some(owner.into_word()),
                ],
            )
            .await?;
        let mut seen = Vec::new();
        let mut assets = Vec::new();
        for log in received {
            let Ok(transfer) = WorkerpoolRegistry::Transfer::decode_log(&log.inner) else {
                continue;
            };
            let address = Address::from_word(transfer.tokenId.into());
            if seen.contains(&address) {
                continue;
            }
            seen.push(address);
            let asset = self.asset(kind, address).await?;
            if asset.owner == owner {
                assets.push(asset);
            }
        }
        Ok(assets)
    }

    /// Hands the asset over to `to`; every order its current owner signed stops matching.
    pub async fn transfer_asset(
        &self,
        kind: AssetKind,
        address: Address,
        to: Address,
    ) -> Result<()> {
        let owner = self.address()?;
        let asset = self.asset(kind, address).await?;
        if asset.owner != owner {
            return Err(Error::Config(format!(
                "{address} is owned by {}, not by {owner}",
                asset.owner
            )));
        }
        let registry =
            WorkerpoolRegistry::new(self.registry(kind), self.chain().provider().clone());
        let call = registry.transferFrom(owner, to, U256::from_be_slice(address.as_slice()));
        self.chain().send(call).await?;
        Ok(())
    }

    /// Sets a workerpool's policy (worker stake %, scheduler share %).
    pub async fn set_policy(
        &self,
        workerpool: Address,
        stake_ratio: u64,
        scheduler_ratio: u64,
    ) -> Result<Asset> {
        let registry = WorkerpoolRegistry::new(
            self.deployment().workerpool_registry,
            self.chain().provider().clone(),
        );
        let call =
            registry.setPolicy(workerpool, U256::from(stake_ratio), U256::from(scheduler_ratio));
        self.chain().send(call).await?;
        self.asset(AssetKind::Workerpool, workerpool).await
    }
}
