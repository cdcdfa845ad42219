//! Chain access for poco: a JSON-RPC client with a local wallet, the event follower, wallets
//! and the devnet.
//!
//! Every service reaches the chain through this crate. It sits on `poco-contracts` (bindings,
//! deployment, revert decoding) and under the services (market, scheduler, worker, result
//! store), the SDK and the CLI:
//! - [`ChainClient`] sends transactions from one wallet without nonce clashes, retries transient
//!   RPC failures, estimates gas with a margin and waits for a configurable confirmation depth;
//! - [`EventFollower`] delivers the protocol's events in bounded, confirmed block ranges from a
//!   checkpoint, exactly once for a consumer that stores the checkpoint with its effects, and
//!   reports a [`Reorg`] (with its fork point) when the chain replaced blocks it delivered;
//! - [`devnet`] launches the pinned anvil with the protocol deployed and funded accounts;
//! - [`files`] keeps a service's folders and files to their owner (0700, 0600).

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod client;
pub mod devnet;
mod error;
pub mod files;
pub mod follower;
pub mod wallet;

pub use client::{ChainClient, ClientConfig, DEFAULT_RECEIPT_TIMEOUT};
pub use devnet::{Devnet, DevnetAccounts, DevnetConfig};
pub use error::Error;
pub use follower::{
    BlockRef, EventBatch, EventFollower, Followed, FollowerConfig, LocatedEvent, ProtocolEvent,
    Reorg,
};
pub use wallet::{
    KeystoreDir, KeystoreEntry, Mnemonic, Password, ScryptParams, Wallet, WalletError,
};
