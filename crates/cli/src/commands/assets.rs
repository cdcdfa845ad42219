//! `poco app`, `poco dataset`, `poco workerpool`.

use std::path::Path;

use alloy::primitives::{Address, Bytes};
use poco_api::results::ResultStoreClient;
use poco_sdk::{Asset, AssetKind, assets};

use crate::{
    Failure,
    cli::{AppCommand, AssetCommand, DatasetCommand, DeployArgs, WorkerpoolCommand},
    commands::{account::print_balance, app_kit, confidential},
    context::Context,
    output::{Output, fields, table},
};

fn print_asset(output: Output, asset: &Asset) {
    output.result(asset, || {
        let mut lines = vec![
            (asset.kind.name(), asset.address.to_string()),
            ("owner", asset.owner.to_string()),
            (
                if asset.kind == AssetKind::Workerpool { "description" } else { "name" },
                asset.name.clone(),
            ),
        ];
        if let Some(multiaddr) = &asset.multiaddr {
            lines.push(("multiaddr", multiaddr.clone()));
        }
        if let Some(checksum) = asset.checksum {
            lines.push(("checksum", checksum.to_string()));
        }
        if let Some(mrenclave) = &asset.mrenclave {
            lines.push(("TEE measurement", mrenclave.clone()));
        }
        if let (Some(stake), Some(share)) = (asset.worker_stake_ratio, asset.scheduler_reward_ratio)
        {
            lines.push(("worker stake", format!("{stake}% of the pool price")));
            lines.push(("scheduler share", format!("{share}% of the workers' reward")));
        }
        fields(&lines)
    });
}

fn print_list(output: Output, assets: &[Asset]) {
    output.result(&assets, || {
        if assets.is_empty() {
            return "none\n".into();
        }
        let rows: Vec<Vec<String>> =
            assets.iter().map(|a| vec![a.address.to_string(), a.name.clone()]).collect();
        table(&["address", "name"], &rows)
    });
}

/// Registers an app (with its enclave measurement, for a TEE app) or a dataset; with
/// `publish`, an app whose code the network's result store serves.
async fn deploy(
    context: &Context,
    output: Output,
    kind: AssetKind,
    args: DeployArgs,
    mrenclave: Bytes,
    publish: bool,
) -> Result<(), Failure> {
    let DeployArgs { name, file, url } = args;
    let client = context.signing_client().await?;
    let checksum = assets::file_checksum(&file)?;
    let results_url = if publish { Some(publishing_store(context)?) } else { None };
    let url = match (url, &results_url) {
        (Some(url), _) => url,
        (None, Some(store)) => ResultStoreClient::new(store)
            .map_err(|e| Failure::config(format!("the network's result store: {e}")))?
            .code_url(checksum),
        (None, None) => assets::stage_file(&context.home, &file)?,
    };
    let registering = format!("registering {} {name} (sha256 {checksum})", kind.name());
    let address = match kind {
        AssetKind::App => {
            output
                .during(&registering, client.deploy_tee_app(&name, &url, checksum, mrenclave))
                .await?
        }
        _ => output.during(&registering, client.deploy_dataset(&name, &url, checksum)).await?,
    };
    if let Some(store) = results_url {
        publish_code(&client, output, &store, address, &file).await.map_err(|failure| {
            failure.context(&format!(
                "app {address} is registered, but its code is not published; publish it with \
                 `poco app publish {address} {}`",
                file.display()
            ))
        })?;
    }
    print_asset(output, &client.asset(kind, address).await?);
    Ok(())
}

/// The result store apps' code is published on.
fn publishing_store(context: &Context) -> Result<String, Failure> {
    context.publishing_results_url().ok_or_else(|| {
        Failure::config(
            "no result store to publish the code on: name one as results_url in the network's \
             profile (`poco network add`), or serve the file elsewhere and pass --url",
        )
    })
}

/// Publishes `file` as `app`'s code on the result store at `store`.
async fn publish_code(
    client: &poco_sdk::Poco,
    output: Output,
    store: &str,
    app: Address,
    file: &Path,
) -> Result<(), Failure> {
    let code =
        std::fs::read(file).map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    let publishing = format!("publishing its code ({} bytes) on {store}", code.len());
    let receipt = output.during(&publishing, client.publish_app_code(store, app, code)).await?;
    output.progress(format!("served at {store}{}", receipt.path));
    Ok(())
}

/// `poco app ...`.
pub(crate) async fn app(
    context: &Context,
    output: Output,
    command: AppCommand,
) -> Result<(), Failure> {
    match command {
        AppCommand::Deploy { asset, tee, mrenclave, publish } => {
            let mrenclave = match (tee, mrenclave) {
                (true, _) => assets::simulated_mrenclave(&asset.file)?,
                (false, Some(text)) => assets::parse_mrenclave(&text)?,
                (false, None) => Bytes::new(),
            };
            deploy(context, output, AssetKind::App, asset, mrenclave, publish).await
        }
        AppCommand::Publish { app, file } => {
            let client = context.signing_client().await?;
            let store = publishing_store(context)?;
            publish_code(&client, output, &store, app, &file).await?;
            print_asset(output, &client.asset(AssetKind::App, app).await?);
            Ok(())
        }
        AppCommand::New { name, lang, dir } => app_kit::new(output, &name, &lang, dir),
        AppCommand::Build { project } => app_kit::build(output, &project),
        AppCommand::Test { project, python_runtime, module_cache } => {
            app_kit::test(context, output, &project, python_runtime, module_cache).await
        }
        AppCommand::Common(command) => asset(context, output, AssetKind::App, command).await,
    }
}

/// `poco dataset ...`.
pub(crate) async fn dataset(
    context: &Context,
    output: Output,
    command: DatasetCommand,
) -> Result<(), Failure> {
    match command {
        DatasetCommand::Deploy { asset } => {
            deploy(context, output, AssetKind::Dataset, asset, Bytes::new(), false).await
        }
        DatasetCommand::Encrypt { file, out, show_key } => {
            confidential::encrypt_dataset(context, output, &file, &out, show_key)
        }
        DatasetCommand::PushKey { dataset, key_file } => {
            confidential::push_dataset_key(context, output, dataset.get(), key_file).await
        }
        DatasetCommand::CheckKey { dataset } => {
            confidential::check_dataset_key(context, output, dataset.get()).await
        }
        DatasetCommand::Common(command) => {
            asset(context, output, AssetKind::Dataset, command).await
        }
    }
}

/// What `poco app ...` and `poco dataset ...` share.
async fn asset(
    context: &Context,
    output: Output,
    kind: AssetKind,
    command: AssetCommand,
) -> Result<(), Failure> {
    match command {
        AssetCommand::Show { address } => {
            let client = context.client().await?;
            print_asset(output, &client.asset(kind, address).await?);
        }
        AssetCommand::List { owner } => {
            let client = context.client().await?;
            let owner = match owner {
                Some(owner) => owner,
                None => context.my_address()?,
            };
            print_list(output, &client.assets_of(kind, owner).await?);
        }
        AssetCommand::Transfer { address, to } => {
            let client = context.signing_client().await?;
            output
                .during(
                    &format!("transferring {address} to {to}"),
                    client.transfer_asset(kind, address, to),
                )
                .await?;
            print_asset(output, &client.asset(kind, address).await?);
        }
    }
    Ok(())
}

/// `poco workerpool ...`.
pub(crate) async fn workerpool(
    context: &Context,
    output: Output,
    command: WorkerpoolCommand,
) -> Result<(), Failure> {
    let kind = AssetKind::Workerpool;
    match command {
        WorkerpoolCommand::Deploy { description } => {
            let client = context.signing_client().await?;
            let address = output
                .during("registering the workerpool", client.deploy_workerpool(&description))
                .await?;
            print_asset(output, &client.asset(kind, address).await?);
        }
        WorkerpoolCommand::Show { address } => {
            let client = context.client().await?;
            print_asset(output, &client.asset(kind, address).await?);
        }
        WorkerpoolCommand::List { owner } => {
            let client = context.client().await?;
            let owner = match owner {
                Some(owner) => owner,
                None => context.my_address()?,
            };
            print_list(output, &client.assets_of(kind, owner).await?);
        }
        WorkerpoolCommand::Transfer { address, to } => {
            let client = context.signing_client().await?;
            output
                .during(
                    &format!("transferring {address} to {to}"),
                    client.transfer_asset(kind, address, to),
                )
                .await?;
            print_asset(output, &client.asset(kind, address).await?);
        }
        WorkerpoolCommand::Policy { address, worker_stake, scheduler_share } => {
            let asset = match (worker_stake, scheduler_share) {
                (Some(stake), Some(share)) => {
                    let client = context.signing_client().await?;
                    output
                        .during("setting the policy", client.set_policy(address, stake, share))
                        .await?
                }
                _ => context.client().await?.asset(kind, address).await?,
            };
            print_asset(output, &asset);
        }
        WorkerpoolCommand::Join { address } => {
            let client = context.signing_client().await?;
            let balance = output
                .during(&format!("joining workerpool {address}"), client.join_workerpool(address))
                .await?;
            print_balance(output, &balance);
        }
        WorkerpoolCommand::Leave { address } => {
            let client = context.signing_client().await?;
            let balance = output
                .during(&format!("leaving workerpool {address}"), client.leave_workerpool(address))
                .await?;
            print_balance(output, &balance);
        }
        WorkerpoolCommand::ReleaseBond { address } => {
            let client = context.signing_client().await?;
            let balance = output
                .during(
                    &format!("releasing the bond of workerpool {address}"),
                    client.release_bond(address),
                )
                .await?;
            print_balance(output, &balance);
        }
    }
    Ok(())
}
