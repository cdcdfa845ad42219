//! The economic-security simulator: does any way of cheating poco earn more than honest work?
//!
//! It runs the contracts a chain runs (the compiled artifacts of `poco-contracts`, deployed by
//! the same code) on a [`Ledger`]: an EVM in this process ([`InProcess`], revm) for the many
//! tasks a measure needs, or a real node ([`Node`]) to check that a scenario ends the same on
//! both. A [`World`] is the protocol on a ledger, with each step of a deal's life one call made
//! by the actor whose step it is.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod in_process;
pub mod ledger;
mod node;
pub mod scenario;
pub mod world;

pub use in_process::InProcess;
pub use ledger::{Ledger, LedgerError, Outcome};
pub use node::Node;
pub use world::{Actor, DealTerms, World};
