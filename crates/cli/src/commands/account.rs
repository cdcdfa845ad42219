//! `poco wallet` and `poco account`.

use poco_chain::wallet::{KeystoreDir, Mnemonic, Wallet};
use poco_sdk::{Balance, Transfer};

use crate::{
    Failure,
    cli::{AccountCommand, WalletCommand},
    commands::amount,
    context::Context,
    output::{Output, fields},
    password::PasswordSource,
};

/// Where the password of a new keystore comes from: `--password-file`, else
/// `POCO_WALLET_PASSWORD`, else a prompt (asked twice).
fn password_source(context: &Context) -> PasswordSource {
    PasswordSource::choose(context.password_file().cloned())
}

/// Saves a new keystore under `name`, else under geth's name for it.
fn save(
    dir: &KeystoreDir,
    wallet: &Wallet,
    password: &poco_chain::wallet::Password,
    name: Option<&str>,
) -> Result<std::path::PathBuf, Failure> {
    Ok(match name {
        Some(name) => dir.save_as(wallet, password, name)?,
        None => dir.save(wallet, password)?,
    })
}

/// `poco wallet ...`.
pub(crate) async fn wallet(
    context: &Context,
    output: Output,
    command: WalletCommand,
) -> Result<(), Failure> {
    match command {
        WalletCommand::Create { name, dir } => {
            let dir =
                KeystoreDir::new(dir.out_dir.or(dir.out).unwrap_or_else(|| context.wallets_dir()));
            let wallet = Wallet::random();
            let password = password_source(context).read_new()?;
            let path = save(&dir, &wallet, &password, name.as_deref())?;
            print_wallet(output, &wallet, &path);
        }
        WalletCommand::List => {
            let mut found = Vec::new();
            for dir in context.keystore_dirs() {
                found.extend(dir.list()?);
            }
            let json: Vec<_> = found
                .iter()
                .map(
                    |e| serde_json::json!({"name": e.name(), "address": e.address, "path": e.path}),
                )
                .collect();
            output.result(&json, || {
                if found.is_empty() {
                    let dirs: Vec<String> = context
                        .keystore_dirs()
                        .iter()
                        .map(|d| d.path().display().to_string())
                        .collect();
                    return format!(
                        "no keystore in {}: create one with `poco wallet create --name NAME`",
                        dirs.join(" or ")
                    );
                }
                let rows: Vec<Vec<String>> = found
                    .iter()
                    .map(|e| {
                        vec![
                            e.name(),
                            e.address.map_or_else(
                                || "(known once unlocked)".to_owned(),
                                |a| a.to_string(),
                            ),
                            e.path.parent().map_or_else(String::new, |p| p.display().to_string()),
                        ]
                    })
                    .collect();
                crate::output::table(&["NAME", "ADDRESS", "DIRECTORY"], &rows)
            });
        }
        WalletCommand::Import { private_key_file, mnemonic_file, index, name, dir } => {
            let dir =
                KeystoreDir::new(dir.out_dir.or(dir.out).unwrap_or_else(|| context.wallets_dir()));
            let read = |path: &std::path::Path| {
                std::fs::read_to_string(path)
                    .map_err(|e| Failure::config(format!("{}: {e}", path.display())))
            };
            let wallet = match (private_key_file, mnemonic_file) {
                (Some(file), _) => Wallet::from_private_key(read(&file)?.trim()),
                (None, Some(file)) => Wallet::from_mnemonic(&Mnemonic::new(&read(&file)?), index),
                (None, None) => {
                    return Err(Failure::config("pass --private-key-file or --mnemonic-file"));
                }
            }?;
            let password = password_source(context).read_new()?;
            let path = save(&dir, &wallet, &password, name.as_deref())?;
            print_wallet(output, &wallet, &path);
        }
        WalletCommand::Show => {
            let client = context.client().await?;
            let address = context.my_address()?;
            let balance = client.balance(address).await?;
            let ether = client.ether(address).await?;
            // The account's balances, with the ETH that pays for gas.
            let mut json = serde_json::to_value(&balance).expect("a balance is JSON");
            json["eth"] = serde_json::to_value(ether).expect("an amount is JSON");
            output.result(&json, || {
                fields(&[
                    ("address", address.to_string()),
                    ("eth", ether.to_string()),
                    ("wallet", balance.wallet.to_string()),
                    ("free", balance.free.to_string()),
                    ("frozen", balance.frozen.to_string()),
                    ("score", balance.score.to_string()),
                ])
            });
        }
        WalletCommand::Send { amount: text, to } => {
            let value: Transfer =
                text.parse().map_err(|e: poco_primitives::Error| Failure::usage(e.to_string()))?;
            let client = context.signing_client().await?;
            let sent =
                output.during(&format!("sending {value} to {to}"), client.send(to, value)).await?;
            output.result(&sent, || {
                fields(&[
                    ("from", sent.from.to_string()),
                    ("to", sent.to.to_string()),
                    ("sent", sent.value.to_string()),
                    ("transaction", sent.transaction.to_string()),
                ])
            });
        }
    }
    Ok(())
}

fn print_wallet(output: Output, wallet: &Wallet, path: &std::path::Path) {
    let json = serde_json::json!({"address": wallet.address(), "keystore": path});
    output.result(&json, || {
        fields(&[
            ("address", wallet.address().to_string()),
            ("keystore", path.display().to_string()),
        ])
    });
}

pub(crate) fn print_balance(output: Output, balance: &Balance) {
    output.result(balance, || {
        fields(&[
            ("address", balance.address.to_string()),
            ("wallet", balance.wallet.to_string()),
            ("free", balance.free.to_string()),
            ("frozen", balance.frozen.to_string()),
            ("score", balance.score.to_string()),
        ])
    });
}

/// `poco account ...`.
pub(crate) async fn account(
    context: &Context,
    output: Output,
    command: AccountCommand,
) -> Result<(), Failure> {
    match command {
        AccountCommand::Deposit { amount: text } => {
            let value = amount(&text)?;
            let client = context.signing_client().await?;
            let balance =
                output.during(&format!("depositing {value}"), client.deposit(value)).await?;
            print_balance(output, &balance);
        }
        AccountCommand::Withdraw { amount: text } => {
            let value = amount(&text)?;
            let client = context.signing_client().await?;
            let balance =
                output.during(&format!("withdrawing {value}"), client.withdraw(value)).await?;
            print_balance(output, &balance);
        }
        AccountCommand::Balance { address } => {
            let client = context.client().await?;
            let address = match address {
                Some(address) => address,
                None => context.my_address()?,
            };
            print_balance(output, &client.balance(address).await?);
        }
    }
    Ok(())
}
