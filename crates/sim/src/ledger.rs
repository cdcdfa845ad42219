//! What a simulation needs of a chain: send a transaction, read a view, let time pass. Two
//! ledgers run the same compiled contracts: [`crate::InProcess`] (an EVM in this process, for
//! speed) and [`crate::Node`] (a real node over JSON-RPC, to check that both agree).
//!
//! Both follow one clock: every transaction is mined alone in the next block, one second after
//! the block before it, plus whatever [`Ledger::warp`] added; the first block comes at
//! [`GENESIS_TIME`]. So a scenario's blocks, timestamps and therefore its outcome are the same
//! on either ledger.

use alloy::{
    primitives::{Address, Bytes, Log},
    sol_types::SolCall,
};
use poco_contracts::Revert;

/// The chain id of a simulated chain (a devnet's).
pub const CHAIN_ID: u64 = 31337;

/// The timestamp of the first block a scenario mines, in unix seconds (in 2033: later than any
/// node's own genesis, so a node can be set to it).
pub const GENESIS_TIME: u64 = 2_000_000_000;

/// The gas every transaction is given (a limit, not a cost: gas is priced at zero in process).
pub const TX_GAS_LIMIT: u64 = 15_000_000;

/// A mined transaction that succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The gas it used.
    pub gas_used: u64,
    /// What it returned.
    pub output: Bytes,
    /// The events it emitted.
    pub logs: Vec<Log>,
    /// The contract it created, if it was a creation.
    pub created: Option<Address>,
}

/// Why a transaction or a view failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The contract reverted (and the transaction was mined, its gas spent).
    #[error(
        "reverted: {}",
        revert.as_ref().map_or("(a node's receipt gives no reason)".to_owned(), ToString::to_string)
    )]
    Reverted {
        /// The revert, decoded (a node's receipt does not carry it: `None`).
        revert: Option<Revert>,
        /// The gas it used.
        gas_used: u64,
    },
    /// The EVM stopped the call (out of gas, invalid opcode...).
    #[error("halted: {0}")]
    Halted(String),
    /// The ledger itself failed (the node did not answer, the EVM refused the transaction).
    #[error("ledger: {0}")]
    Backend(String),
    /// The protocol could not be deployed.
    #[error(transparent)]
    Deployment(#[from] poco_contracts::Error),
    /// The call's answer could not be decoded.
    #[error("unexpected answer of {call}: {error}")]
    Decode {
        /// The function called.
        call: &'static str,
        /// The decoding error.
        error: alloy::sol_types::Error,
    },
}

/// A `Result` with a [`LedgerError`].
pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// A chain a simulation runs on.
pub trait Ledger {
    /// Mines a transaction of `from` calling `to` (creating a contract when `None`) with
    /// `data`, alone in the next block.
    fn transact(&mut self, from: Address, to: Option<Address>, data: Bytes) -> Result<Outcome>;

    /// Runs a view call of `to` with `data` on the last block; nothing is mined.
    fn view(&mut self, to: Address, data: Bytes) -> Result<Bytes>;

    /// Lets `seconds` pass before the next block.
    fn warp(&mut self, seconds: u64);

    /// The timestamp the next block will have.
    fn next_time(&self) -> u64;

    /// The number of the last block mined.
    fn block(&self) -> u64;

    /// Sends `call` from `from` to `to`. (What it returns is not read: a node's receipt does
    /// not carry it. Scenarios read events and views.)
    fn send<C: SolCall>(&mut self, from: Address, to: Address, call: &C) -> Result<Outcome>
    where
        Self: Sized,
    {
        self.transact(from, Some(to), call.abi_encode().into())
    }

    /// Reads `call` of `to`.
    fn read<C: SolCall>(&mut self, to: Address, call: &C) -> Result<C::Return>
    where
        Self: Sized,
    {
        let output = self.view(to, call.abi_encode().into())?;
        C::abi_decode_returns(&output)
            .map_err(|error| LedgerError::Decode { call: C::SIGNATURE, error })
    }
}
