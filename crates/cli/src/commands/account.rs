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

/// `poco wallet ...`.
pub(crate) async fn wallet(
    context: &Context,
    output: Output,
    command: WalletCommand,
) -> Result<(), Failure> {
    match command {
        WalletCommand::Create { out } => {
            let dir = KeystoreDir::new(out.unwrap_or_else(|| context.wallets_dir()));
            let password = password_source(context).read_new()?;
            let (wallet, path) = dir.create(&password)?;
            print_wallet(output, &wallet, &path);
        }
        WalletCommand::Import { private_key_file, mnemonic_file, index, out } => {
            let dir = KeystoreDir::new(out.unwrap_or_else(|| context.wallets_dir()));
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
            let path = dir.save(&wallet, &password)?;
            print_wallet(output, &wallet, &path);
        }
        WalletCommand::Show => {
            let client = context.signing_client().await?;
            let address = client.address()?;
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
            output.progress(format!("sending {value} to {to}..."));
            let sent = client.send(to, value).await?;
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
            output.progress(format!("depositing {value}..."));
            print_balance(output, &client.deposit(value).await?);
        }
        AccountCommand::Withdraw { amount: text } => {
            let value = amount(&text)?;
            let client = context.signing_client().await?;
            output.progress(format!("withdrawing {value}..."));
            print_balance(output, &client.withdraw(value).await?);
        }
        AccountCommand::Balance { address } => {
            let client = context.client().await?;
            let address = match address {
                Some(address) => address,
                None => client.address()?,
            };
            print_balance(output, &client.balance(address).await?);
        }
    }
    Ok(())
}
