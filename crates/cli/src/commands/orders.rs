//! `poco order` and `poco orderbook`.

use alloy::primitives::{Address, U256};
use poco_api::market::OrderView;
use poco_primitives::{AppOrder, DatasetOrder, OrderKind, RequestOrder, WorkerpoolOrder};
use poco_sdk::{AnySigned, Poco, orders::new_salt};

use crate::{
    Failure,
    cli::{Kind, OrderCommand, OrderFields, OrderbookArgs},
    commands::{amount, tag},
    context::Context,
    output::{Output, fields, table},
};

fn kind(kind: Kind) -> OrderKind {
    match kind {
        Kind::App => OrderKind::App,
        Kind::Dataset => OrderKind::Dataset,
        Kind::Workerpool => OrderKind::Workerpool,
        Kind::Request => OrderKind::Request,
    }
}

/// Builds and signs the order `fields` describe.
fn build(client: &Poco, order_kind: Kind, f: &OrderFields) -> Result<AnySigned, Failure> {
    let asset =
        f.asset.ok_or_else(|| Failure::config("pass --asset (the app, dataset or pool)"))?;
    let price = amount(&f.price)?.nrlc();
    let volume = U256::from(f.volume);
    let tag = tag(&f.tag)?.0;
    let none = Address::ZERO;
    Ok(match order_kind {
        Kind::App => AnySigned::App(client.sign(AppOrder {
            app: asset,
            appprice: price,
            volume,
            tag,
            datasetrestrict: f.dataset_restrict.unwrap_or(none),
            workerpoolrestrict: f.workerpool_restrict.unwrap_or(none),
            requesterrestrict: f.requester_restrict.unwrap_or(none),
            salt: new_salt(),
        })?),
        Kind::Dataset => AnySigned::Dataset(client.sign(DatasetOrder {
            dataset: asset,
            datasetprice: price,
            volume,
            tag,
            apprestrict: f.app_restrict.unwrap_or(none),
            workerpoolrestrict: f.workerpool_restrict.unwrap_or(none),
            requesterrestrict: f.requester_restrict.unwrap_or(none),
            salt: new_salt(),
        })?),
        Kind::Workerpool => AnySigned::Workerpool(client.sign(WorkerpoolOrder {
            workerpool: asset,
            workerpoolprice: price,
            volume,
            tag,
            category: U256::from(f.category),
            trust: U256::from(f.trust),
            apprestrict: f.app_restrict.unwrap_or(none),
            datasetrestrict: f.dataset_restrict.unwrap_or(none),
            requesterrestrict: f.requester_restrict.unwrap_or(none),
            salt: new_salt(),
        })?),
        Kind::Request => {
            let requester = client.address()?;
            AnySigned::Request(client.sign(RequestOrder {
                app: asset,
                appmaxprice: price,
                workerpool: f.workerpool_restrict.unwrap_or(none),
                workerpoolmaxprice: price,
                requester,
                volume,
                tag,
                category: U256::from(f.category),
                trust: U256::from(f.trust),
                beneficiary: requester,
                salt: new_salt(),
                ..Default::default()
            })?)
        }
    })
}

fn read_signed(order_kind: Kind, path: &std::path::Path) -> Result<AnySigned, Failure> {
    let json = std::fs::read_to_string(path)
        .map_err(|e| Failure::config(format!("{}: {e}", path.display())))?;
    Ok(poco_sdk::orders::parse_order(kind(order_kind), &json)?)
}

fn print_order(output: Output, view: &OrderView) {
    output.result(view, || {
        fields(&[
            ("order", view.order_hash.to_string()),
            ("kind", view.kind.clone()),
            ("status", format!("{:?}", view.status).to_lowercase()),
            ("remaining", view.remaining.to_string()),
            ("owner", view.owner.to_string()),
        ])
    });
}

/// `poco order ...`.
pub(crate) async fn order(
    context: &Context,
    output: Output,
    command: OrderCommand,
) -> Result<(), Failure> {
    match command {
        OrderCommand::Sign { kind: order_kind, fields: f, out } => {
            let client = context.signing_client().await?;
            let signed = build(&client, order_kind, &f)?;
            let json = serde_json::to_string_pretty(&signed).expect("serializable");
            if let Some(out) = out {
                std::fs::write(&out, &json)
                    .map_err(|e| Failure::config(format!("{}: {e}", out.display())))?;
                output.progress(format!(
                    "order {} saved to {}",
                    client.order_hash(&signed),
                    out.display()
                ));
            }
            crate::output::stdout_line(&json);
        }
        OrderCommand::Publish { kind: order_kind, file, fields: f } => {
            let client = context.signing_client().await?;
            let signed = match file {
                Some(path) => read_signed(order_kind, &path)?,
                None => build(&client, order_kind, &f)?,
            };
            print_order(output, &client.publish(&signed).await?);
        }
        OrderCommand::Unpublish { kind: order_kind, hash } => {
            let client = context.signing_client().await?;
            print_order(output, &client.unpublish(kind(order_kind), hash).await?);
        }
        OrderCommand::Cancel { kind: order_kind, file } => {
            let client = context.signing_client().await?;
            let signed = read_signed(order_kind, &file)?;
            let hash = client.order_hash(&signed);
            let transaction =
                output.during("cancelling the order on-chain", client.cancel(&signed)).await?;
            let json =
                serde_json::json!({"order": hash, "cancelled": true, "transaction": transaction});
            output.result(&json, || format!("order {hash} cancelled (transaction {transaction})"));
        }
        OrderCommand::Show { kind: order_kind, hash } => {
            let client = context.client().await?;
            print_order(output, &client.market()?.order(kind(order_kind), hash).await?);
        }
    }
    Ok(())
}

/// `poco orderbook ...`.
pub(crate) async fn orderbook(
    context: &Context,
    output: Output,
    args: OrderbookArgs,
) -> Result<(), Failure> {
    let client = context.client().await?;
    let mut query = vec![("limit", args.limit.to_string())];
    let mut add = |name: &'static str, value: Option<String>| {
        if let Some(value) = value {
            query.push((name, value));
        }
    };
    add("app", args.app.map(|a| a.to_string()));
    add("dataset", args.dataset.map(|a| a.to_string()));
    add("workerpool", args.workerpool.map(|a| a.to_string()));
    add("requester", args.requester.map(|a| a.to_string()));
    add("owner", args.owner.map(|a| a.to_string()));
    add("category", args.category.map(|c| c.to_string()));
    add("minTrust", args.min_trust.map(|t| t.to_string()));
    add("minVolume", args.min_volume.map(|v| v.to_string()));
    let page = client.market()?.orderbook(kind(args.kind), &query).await?;
    let asset_field = match args.kind {
        Kind::App | Kind::Request => "app",
        Kind::Dataset => "dataset",
        Kind::Workerpool => "workerpool",
    };
    output.result(&page, || {
        if page.orders.is_empty() {
            return "no open orders\n".into();
        }
        let rows: Vec<Vec<String>> = page
            .orders
            .iter()
            .map(|o| {
                let price = ["appprice", "datasetprice", "workerpoolprice", "workerpoolmaxprice"]
                    .iter()
                    .find_map(|k| o.order.get(*k))
                    .and_then(|v| v.as_str())
                    .and_then(|v| v.parse::<U256>().ok())
                    .map(|p| poco_primitives::Amount::from_nrlc(p).to_string())
                    .unwrap_or_default();
                // What the order is for: its asset, or the app a request asks for.
                let asset = o.order.get(asset_field).and_then(|v| v.as_str()).unwrap_or_default();
                vec![
                    o.order_hash.to_string(),
                    asset.to_owned(),
                    price,
                    o.remaining.to_string(),
                    o.owner.to_string(),
                ]
            })
            .collect();
        table(&["order", asset_field, "price", "remaining", "owner"], &rows)
    });
    Ok(())
}
