//! The contracts on a real node (anvil), over JSON-RPC: slower by orders of magnitude than
//! [`crate::InProcess`], and there to show that a scenario ends the same on both.
//!
//! The node mines each transaction alone at the ledger's clock (`evm_setNextBlockTimestamp`),
//! and sends it from the account the scenario names, impersonated (`anvil_impersonateAccount`)
//! and given the ether its gas costs: what the accounts hold in RLC is what is compared.

use std::collections::HashSet;

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
    rpc::types::TransactionRequest,
};

use crate::ledger::{GENESIS_TIME, Ledger, LedgerError, Outcome, Result, TX_GAS_LIMIT};

/// A node at a JSON-RPC endpoint that accepts anvil's methods, driven from synchronous code.
#[derive(Debug)]
pub struct Node {
    runtime: tokio::runtime::Runtime,
    provider: DynProvider,
    impersonated: HashSet<Address>,
    block: u64,
    next_time: u64,
}

fn backend(error: impl std::fmt::Display) -> LedgerError {
    LedgerError::Backend(error.to_string())
}

impl Node {
    /// The node at `rpc_url`, which must have mined nothing yet.
    pub fn connect(rpc_url: &str) -> Result<Self> {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(backend)?;
        let url = rpc_url.parse().map_err(backend)?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let block = runtime.block_on(provider.get_block_number()).map_err(backend)?;
        if block != 0 {
            return Err(LedgerError::Backend(format!(
                "the node at {rpc_url} mined {block} blocks already: a scenario starts on a new chain"
            )));
        }
        Ok(Self {
            runtime,
            provider,
            impersonated: HashSet::new(),
            block: 0,
            next_time: GENESIS_TIME,
        })
    }

    fn impersonate(&mut self, account: Address) -> Result<()> {
        if self.impersonated.insert(account) {
            let provider = &self.provider;
            self.runtime
                .block_on(async {
                    provider.anvil_impersonate_account(account).await?;
                    provider.anvil_set_balance(account, U256::from(10u128.pow(24))).await
                })
                .map_err(backend)?;
        }
        Ok(())
    }
}

impl Ledger for Node {
    fn transact(&mut self, from: Address, to: Option<Address>, data: Bytes) -> Result<Outcome> {
        self.impersonate(from)?;
        let mut request = TransactionRequest::default()
            .with_from(from)
            .with_input(data)
            .with_gas_limit(TX_GAS_LIMIT);
        request = match to {
            Some(to) => request.with_to(to),
            None => request.into_create(),
        };
        let time = self.next_time;
        let provider = &self.provider;
        let receipt = self
            .runtime
            .block_on(async {
                provider.anvil_set_next_block_timestamp(time).await?;
                let pending = provider.send_transaction(request).await?;
                Ok::<_, alloy::transports::TransportError>(pending.get_receipt().await)
            })
            .map_err(backend)?
            .map_err(backend)?;
        self.block += 1;
        self.next_time += 1;
        if receipt.block_number != Some(self.block) {
            return Err(LedgerError::Backend(format!(
                "the transaction was mined in block {:?}, not alone in block {}",
                receipt.block_number, self.block
            )));
        }
        if !receipt.status() {
            return Err(LedgerError::Reverted { revert: None, gas_used: receipt.gas_used });
        }
        // What a call returns is not in its receipt: the simulation reads views instead.
        Ok(Outcome {
            gas_used: receipt.gas_used,
            output: Bytes::new(),
            logs: receipt.inner.logs().iter().map(|log| log.inner.clone()).collect(),
            created: receipt.contract_address,
        })
    }

    fn view(&mut self, to: Address, data: Bytes) -> Result<Bytes> {
        let request = TransactionRequest::default().with_to(to).with_input(data);
        self.runtime.block_on(async { self.provider.call(request).await }).map_err(|error| {
            match poco_contracts::Revert::from_transport_error(&error) {
                Some(revert) => LedgerError::Reverted { revert: Some(revert), gas_used: 0 },
                None => backend(error),
            }
        })
    }

    fn warp(&mut self, seconds: u64) {
        self.next_time += seconds;
    }

    fn next_time(&self) -> u64 {
        self.next_time
    }

    fn block(&self) -> u64 {
        self.block
    }
}
