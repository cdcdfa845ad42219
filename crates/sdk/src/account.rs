//! Accounts: ETH and RLC in the wallet, sent from one address to another, and the poco
//! account (free balance, frozen, score); a worker's bond to the workerpools it is a member of.

use std::{fmt, str::FromStr};

use alloy::{
    primitives::{Address, B256, Bytes},
    providers::Provider,
};
use poco_primitives::{Amount, Ether};
use serde::Serialize;

use crate::{Error, Poco, Result, client::amount};

/// What an address holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    /// The address.
    pub address: Address,
    /// RLC tokens in the wallet (not deposited).
    pub wallet: Amount,
    /// Free balance of the poco account: usable to pay, stake or withdraw.
    pub free: Amount,
    /// Frozen in running deals and contributions.
    pub frozen: Amount,
    /// Worker reputation score.
    pub score: u64,
}

/// What a wallet sends: ETH (for gas) or RLC tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Transfer {
    /// ETH, in wei.
    Ether(Ether),
    /// RLC tokens, in nRLC.
    Rlc(Amount),
}

impl fmt::Display for Transfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ether(value) => value.fmt(f),
            Self::Rlc(value) => value.fmt(f),
        }
    }
}

impl FromStr for Transfer {
    type Err = poco_primitives::Error;

    /// `"0.1 ETH"`, `"20 gwei"`, `"1 wei"`, `"5 RLC"`, `"500 nRLC"`: the unit says which.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let unit = trimmed.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.').trim();
        if unit.is_empty() && !trimmed.is_empty() {
            return Err(poco_primitives::Error::AmountWithoutUnit {
                input: trimmed.to_owned(),
                units: vec!["RLC", "nRLC", "ETH"],
            });
        }
        if ["eth", "gwei", "wei"].iter().any(|name| unit.eq_ignore_ascii_case(name)) {
            text.parse().map(Self::Ether)
        } else {
            text.parse().map(Self::Rlc)
        }
    }
}

/// A transfer made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sent {
    /// The sender.
    pub from: Address,
    /// The recipient.
    pub to: Address,
    /// What was sent.
    pub value: Transfer,
    /// The transaction.
    pub transaction: B256,
}

impl Poco {
    /// The ETH `address` holds.
    pub async fn ether(&self, address: Address) -> Result<Ether> {
        let wei = self
            .chain()
            .provider()
            .get_balance(address)
            .await
            .map_err(|e| Error::Chain(e.into()))?;
        Ok(Ether::from_wei(wei))
    }

    /// Sends ETH or RLC tokens from the wallet to `to` (the wallet, not the poco account: see
    /// [`Poco::withdraw`] to move RLC from the account first). Refused before any transaction
    /// when `to` is the zero address, the wallet itself, or more than the wallet holds.
    pub async fn send(&self, to: Address, value: Transfer) -> Result<Sent> {
        let from = self.address()?;
        if to == Address::ZERO {
            return Err(Error::InvalidInput(
                "refusing to send to the zero address: what is sent there is lost".into(),
            ));
        }
        if to == from {
            return Err(Error::InvalidInput(format!("{to} is the wallet itself")));
        }
        let receipt = match value {
            Transfer::Ether(wei) => {
                let held = self.ether(from).await?;
                if held < wei {
                    return Err(Error::CannotSend {
                        account: from,
                        available: held.to_string(),
                        needed: wei.to_string(),
                    });
                }
                self.chain().send_value(to, wei.wei()).await?
            }
            Transfer::Rlc(nrlc) => {
                let token = self.token();
                let held =
                    token.balanceOf(from).call().await.map_err(|e| Error::Chain(e.into()))?;
                if held < nrlc.nrlc() {
                    return Err(Error::CannotSend {
                        account: from,
                        available: amount(held).to_string(),
                        needed: nrlc.to_string(),
                    });
                }
                self.chain().send(token.transfer(to, nrlc.nrlc())).await?
            }
        };
        Ok(Sent { from, to, value, transaction: receipt.transaction_hash })
    }

    /// The balances of `address`.
    pub async fn balance(&self, address: Address) -> Result<Balance> {
        let poco = self.poco();
        let chain = |e: alloy::contract::Error| Error::Chain(e.into());
        let account = poco.viewAccount(address).call().await.map_err(chain)?;
        let score = poco.viewScore(address).call().await.map_err(chain)?;
        let wallet = self.token().balanceOf(address).call().await.map_err(chain)?;
        Ok(Balance {
            address,
            wallet: amount(wallet),
            free: amount(account.stake),
            frozen: amount(account.locked),
            score: score.saturating_to(),
        })
    }

    /// Deposits `value` RLC from the wallet into the poco account, in one transaction
    /// (`approveAndCall`).
    pub async fn deposit(&self, value: Amount) -> Result<Balance> {
        let address = self.address()?;
        let held =
            self.token().balanceOf(address).call().await.map_err(|e| Error::Chain(e.into()))?;
        if held < value.nrlc() {
            return Err(Error::InsufficientTokens {
                account: address,
                available: amount(held),
                needed: value,
            });
        }
        let token = self.token();
        self.chain()
            .send(token.approveAndCall(self.deployment().poco, value.nrlc(), Bytes::new()))
            .await?;
        self.balance(address).await
    }

    /// Withdraws `value` from the poco account to the wallet.
    pub async fn withdraw(&self, value: Amount) -> Result<Balance> {
        let address = self.address()?;
        self.require_free(address, value).await?;
        self.chain().send(self.poco().withdraw(value.nrlc())).await?;
        self.balance(address).await
    }

    /// Bonds the protocol's member bond (10 RLC) of the wallet's free balance to `workerpool`:
    /// the worker may then be drawn for the seats of the pool's committee deals (tag
    /// `committee`). Returns the balances after.
    pub async fn join_workerpool(&self, workerpool: Address) -> Result<Balance> {
        let address = self.address()?;
        let bond = self.poco().memberBond().call().await.map_err(|e| Error::Chain(e.into()))?;
        self.require_free(address, amount(bond)).await?;
        self.chain().send(self.poco().joinWorkerpool(workerpool)).await?;
        self.balance(address).await
    }

    /// Stops being drawn for the committee deals of `workerpool` matched from now on; the bond
    /// can be released once the exit delay (7 days) has passed.
    pub async fn leave_workerpool(&self, workerpool: Address) -> Result<Balance> {
        let address = self.address()?;
        self.chain().send(self.poco().leaveWorkerpool(workerpool)).await?;
        self.balance(address).await
    }

    /// Moves the bond of a workerpool the wallet left back to its free balance.
    pub async fn release_bond(&self, workerpool: Address) -> Result<Balance> {
        let address = self.address()?;
        self.chain().send(self.poco().releaseBond(workerpool)).await?;
        self.balance(address).await
    }

    /// Fails with a readable [`Error::InsufficientFunds`] unless `account` has `needed` free.
    pub async fn require_free(&self, account: Address, needed: Amount) -> Result<()> {
        let free =
            self.poco().balanceOf(account).call().await.map_err(|e| Error::Chain(e.into()))?;
        if free < needed.nrlc() {
            let missing = amount(needed.nrlc() - free);
            return Err(Error::InsufficientFunds {
                account,
                available: amount(free),
                needed,
                missing,
            });
        }
        Ok(())
    }

    /// Deposits what is missing for `account` to have `needed` free; returns what was
    /// deposited.
    pub async fn top_up(&self, needed: Amount) -> Result<Amount> {
        let address = self.address()?;
        let free =
            self.poco().balanceOf(address).call().await.map_err(|e| Error::Chain(e.into()))?;
        if free >= needed.nrlc() {
            return Ok(Amount::ZERO);
        }
        let missing = amount(needed.nrlc() - free);
        self.deposit(missing).await?;
        Ok(missing)
    }
}
