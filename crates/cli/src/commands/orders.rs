//! `poco order` and `poco orderbook`.

use alloy::primitives::{Address, U256};
use poco_api::market::{OrderView, kind_name};
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

/// One line of a `poco market export` file: a signed order and its book.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ExportedOrder {
    kind: String,
    order: serde_json::Value,
}

/// The restrictions each book is filtered by: `any` lists every order, restricted or not.
fn restriction_roles(kind: OrderKind) -> &'static [&'static str] {
    match kind {
        OrderKind::App => &["dataset", "workerpool", "requester"],
        OrderKind::Dataset => &["app", "workerpool", "requester"],
        OrderKind::Workerpool => &["app", "dataset", "requester"],
        OrderKind::Request => &["workerpool"],
    }
}

/// The largest page the market serves by default.
const EXPORT_PAGE: usize = 1000;

/// `poco market export`.
pub(crate) async fn export(
    context: &Context,
    output: Output,
    out: Option<&std::path::Path>,
) -> Result<(), Failure> {
    use std::io::Write as _;
    let client = context.client().await?;
    let market = client.market()?;
    let mut lines = Vec::new();
    let mut counts = Vec::new();
    for kind in [OrderKind::App, OrderKind::Dataset, OrderKind::Workerpool, OrderKind::Request] {
        let spinner = output.spinner(&format!("reading the {} orders", kind_name(kind)));
        let mut cursor: Option<String> = None;
        let mut count = 0_usize;
        loop {
            let mut query: Vec<(&str, String)> = vec![("limit", EXPORT_PAGE.to_string())];
            query.extend(restriction_roles(kind).iter().map(|role| (*role, "any".to_owned())));
            query.extend(cursor.take().map(|c| ("cursor", c)));
            let page = market.orderbook(kind, &query).await?;
            for view in page.orders {
                let line = ExportedOrder { kind: kind_name(kind).to_owned(), order: view.order };
                lines.push(serde_json::to_string(&line).expect("JSON values serialize"));
                count += 1;
            }
            spinner.set_message(format!("reading the {} orders: {count}", kind_name(kind)));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        spinner.finish_and_clear();
        counts.push((kind_name(kind), count));
    }
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    match out {
        Some(path) => std::fs::write(path, &text)
            .map_err(|e| Failure::config(format!("cannot write {}: {e}", path.display())))?,
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| Failure::config(format!("cannot write the orders: {e}")))?,
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    output.progress(format!("exported {} open orders ({})", lines.len(), summary.join(", ")));
    Ok(())
}

/// What `poco market import` did.
#[derive(Debug, Default, serde::Serialize)]
struct ImportSummary {
    /// Published anew.
    published: usize,
    /// Already in the book, as they were.
    already: usize,
    /// Refused by the market, each with its line and the market's reason.
    refused: Vec<ImportRefusal>,
}

#[derive(Debug, serde::Serialize)]
struct ImportRefusal {
    line: usize,
    kind: String,
    code: String,
    reason: String,
}

/// `poco market import FILE`.
pub(crate) async fn import(
    context: &Context,
    output: Output,
    file: &std::path::Path,
) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::config(format!("cannot read {}: {e}", file.display())))?;
    // Every line is read before anything is published: a malformed file publishes nothing.
    let mut orders = Vec::new();
    for (index, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = || format!("{}:{}", file.display(), index + 1);
        let entry: ExportedOrder = serde_json::from_str(line).map_err(|e| {
            Failure::usage(format!("{}: not a line of `poco market export`: {e}", at()))
        })?;
        let kind = poco_api::market::kind_from_name(&entry.kind).ok_or_else(|| {
            Failure::usage(format!("{}: unknown kind of order {:?}", at(), entry.kind))
        })?;
        orders.push((index + 1, kind, entry.order));
    }
    let client = context.client().await?;
    let market = client.market()?;
    let bar = output.spinner(&format!("importing {} orders", orders.len()));
    let mut summary = ImportSummary::default();
    let total = orders.len();
    for (done, (line, kind, order)) in orders.into_iter().enumerate() {
        match market.publish_new(kind, &order).await {
            Ok((_, true)) => summary.published += 1,
            Ok((_, false)) => summary.already += 1,
            Err(poco_api::market::Error::Refused { code, message, .. }) => {
                summary.refused.push(ImportRefusal {
                    line,
                    kind: kind_name(kind).to_owned(),
                    code,
                    reason: message,
                });
            }
            Err(other) => return Err(other.into()),
        }
        bar.set_message(format!("importing orders: {}/{total}", done + 1));
    }
    bar.finish_and_clear();
    output.result(&summary, || {
        let mut text = format!(
            "{} published, {} already in the book, {} refused\n",
            summary.published,
            summary.already,
            summary.refused.len()
        );
        for refusal in &summary.refused {
            text.push_str(&format!(
                "  line {} ({} order): {} ({})\n",
                refusal.line, refusal.kind, refusal.reason, refusal.code
            ));
        }
        text
    });
    Ok(())
}
