//! The contracts run in this process, on revm: no node, no JSON-RPC, no signing of
//! transactions (the sender is given), gas metered but priced at zero.

use alloy::primitives::{Address, Bytes, U256};
use revm::{
    Context, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext,
    context::{
        TxEnv,
        result::{ExecutionResult, Output},
    },
    database::{CacheDB, EmptyDB},
    handler::{MainnetContext, MainnetEvm},
    primitives::{TxKind, hardfork::SpecId},
};

use crate::ledger::{CHAIN_ID, GENESIS_TIME, Ledger, LedgerError, Outcome, Result, TX_GAS_LIMIT};

type Machine = MainnetEvm<MainnetContext<CacheDB<EmptyDB>>>;

/// An empty chain in this process (the Prague rules, as the devnet's anvil runs them).
pub struct InProcess {
    evm: Machine,
    /// The last block mined.
    block: u64,
    /// The timestamp of the next block.
    next_time: u64,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("block", &self.block)
            .field("next_time", &self.next_time)
            .finish_non_exhaustive()
    }
}

impl Default for InProcess {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcess {
    /// An empty chain: no account holds anything, the next block is block 1 at
    /// [`GENESIS_TIME`].
    pub fn new() -> Self {
        let evm = Context::mainnet()
            .with_db(CacheDB::<EmptyDB>::default())
            .modify_cfg_chained(|cfg| {
                cfg.spec = SpecId::PRAGUE;
                cfg.chain_id = CHAIN_ID;
                // The sender is given, not recovered from a signature: its nonce is not checked
                // (the account's own nonce still counts, for the addresses it creates).
                cfg.disable_nonce_check = true;
            })
            .modify_block_chained(|block| {
                block.basefee = 0;
                block.gas_limit = TX_GAS_LIMIT * 2;
            })
            .build_mainnet();
        Self { evm, block: 0, next_time: GENESIS_TIME }
    }

    fn tx(&self, from: Address, to: Option<Address>, data: Bytes) -> Result<TxEnv> {
        TxEnv::builder()
            .caller(from)
            .kind(to.map_or(TxKind::Create, TxKind::Call))
            .data(data)
            .gas_limit(TX_GAS_LIMIT)
            .gas_price(0)
            .chain_id(Some(CHAIN_ID))
            .build()
            .map_err(|error| LedgerError::Backend(format!("{error:?}")))
    }
}

impl Ledger for InProcess {
    fn transact(&mut self, from: Address, to: Option<Address>, data: Bytes) -> Result<Outcome> {
        self.block += 1;
        let block = &mut self.evm.ctx.block;
        block.number = U256::from(self.block);
        block.timestamp = U256::from(self.next_time);
        self.next_time += 1;
        let tx = self.tx(from, to, data)?;
        let result = self
            .evm
            .transact_commit(tx)
            .map_err(|error| LedgerError::Backend(error.to_string()))?;
        match result {
            ExecutionResult::Success { gas, logs, output, .. } => {
                let (output, created) = match output {
                    Output::Call(bytes) => (bytes, None),
                    Output::Create(bytes, address) => (bytes, address),
                };
                Ok(Outcome { gas_used: gas.tx_gas_used(), output, logs, created })
            }
            ExecutionResult::Revert { gas, output, .. } => Err(LedgerError::Reverted {
                revert: Some(poco_contracts::Revert::decode(&output)),
                gas_used: gas.tx_gas_used(),
            }),
            ExecutionResult::Halt { reason, .. } => Err(LedgerError::Halted(format!("{reason:?}"))),
        }
    }

    fn view(&mut self, to: Address, data: Bytes) -> Result<Bytes> {
        let tx = self.tx(Address::ZERO, Some(to), data)?;
        let result =
            self.evm.transact(tx).map_err(|error| LedgerError::Backend(error.to_string()))?.result;
        match result {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            ExecutionResult::Revert { gas, output, .. } => Err(LedgerError::Reverted {
                revert: Some(poco_contracts::Revert::decode(&output)),
                gas_used: gas.tx_gas_used(),
            }),
            ExecutionResult::Halt { reason, .. } => Err(LedgerError::Halted(format!("{reason:?}"))),
        }
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
