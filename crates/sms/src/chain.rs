//! What the SMS reads from the chain: deals (checked against the hash the contract stores), task
//! statuses, the current owners of apps and datasets, and apps' registered measurements.

use alloy::{
    primitives::{Address, B256, Bytes, keccak256},
    providers::DynProvider,
};
use poco_chain::{ChainClient, ClientConfig};
use poco_contracts::bindings::{AppRegistry, DatasetRegistry, IPoco::IPocoInstance};
use poco_primitives::Deal;

use crate::error::{Error, Result};

/// `IPocoTypes.TaskStatus.ACTIVE`.
pub(crate) const ACTIVE: u8 = 1;

/// Read-only access to the protocol.
#[derive(Debug, Clone)]
pub(crate) struct ChainView {
    poco: IPocoInstance<DynProvider>,
    apps: AppRegistry::AppRegistryInstance<DynProvider>,
    datasets: DatasetRegistry::DatasetRegistryInstance<DynProvider>,
}

impl ChainView {
    pub(crate) async fn connect(rpc_url: &str, poco: Address) -> Result<Self> {
        let client = ChainClient::connect(rpc_url, None, ClientConfig::default()).await?;
        let poco = client.poco(poco);
        let apps = poco.appregistry().call().await.map_err(poco_chain::Error::from)?;
        let datasets = poco.datasetregistry().call().await.map_err(poco_chain::Error::from)?;
        let provider = client.provider().clone();
        Ok(Self {
            apps: AppRegistry::new(apps, provider.clone()),
            datasets: DatasetRegistry::new(datasets, provider),
            poco,
        })
    }

    /// Checks that `deal` is on-chain as presented (and `params` are its params, if given);
    /// returns its id.
    pub(crate) async fn check_deal(&self, deal: &Deal, params: Option<&str>) -> Result<B256> {
        let deal_id = deal.id();
        let stored =
            self.poco.viewDealHash(deal_id).call().await.map_err(poco_chain::Error::from)?;
        if stored.is_zero() || stored != deal.hash() {
            return Err(Error::UnknownDeal(deal_id));
        }
        if let Some(params) = params
            && keccak256(params.as_bytes()) != deal.paramsHash
        {
            return Err(Error::BadRequest(format!("the params are not those of deal {deal_id}")));
        }
        Ok(deal_id)
    }

    /// A task's on-chain status.
    pub(crate) async fn task_status(&self, task_id: B256) -> Result<u8> {
        let task = self.poco.viewTask(task_id).call().await.map_err(poco_chain::Error::from)?;
        Ok(task.status)
    }

    /// The current owner of a dataset.
    pub(crate) async fn dataset_owner(&self, dataset: Address) -> Result<Address> {
        let owner =
            self.datasets.ownerOrZero(dataset).call().await.map_err(poco_chain::Error::from)?;
        if owner.is_zero() {
            return Err(Error::UnknownAsset { what: "dataset", address: dataset });
        }
        Ok(owner)
    }

    /// The current owner of an app.
    pub(crate) async fn app_owner(&self, app: Address) -> Result<Address> {
        let owner = self.apps.ownerOrZero(app).call().await.map_err(poco_chain::Error::from)?;
        if owner.is_zero() {
            return Err(Error::UnknownAsset { what: "app", address: app });
        }
        Ok(owner)
    }

    /// An app's registered `mrenclave`.
    pub(crate) async fn app_mrenclave(&self, app: Address) -> Result<Bytes> {
        let data = self.apps.viewApp(app).call().await.map_err(poco_chain::Error::from)?;
        Ok(data.mrenclave)
    }
}
