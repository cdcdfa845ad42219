//! Accounts: RLC in the wallet, and the poco account (free balance, frozen, score); a
//! worker's bond to the workerpools it is a member of.

use alloy::primitives::{Address, Bytes};
use poco_primitives::Amount;
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

impl Poco {
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
