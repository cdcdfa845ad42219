//! The poco client library: everything a user does, as one API over the chain, the market and
//! the result store. The `poco` CLI is a thin layer over it; tests use it too.
//!
//! It is a client: it talks to the market, the result store and the SMS through their clients
//! in `poco-api`, and depends on no service (see `docs/ARCHITECTURE.md`), so a program that uses
//! it builds no server, database or sandbox. [`Poco`] connects to a chain (and optionally a market) with a wallet, and offers
//! - accounts: balances, deposit (one `approveAndCall` transaction), withdraw;
//! - assets: deploy, show, list and transfer apps, datasets and workerpools, pool policies;
//! - orders: sign, publish, unpublish, cancel on-chain;
//! - running an app ([`RunSpec`] -> [`Plan`] -> deal): the cheapest compatible orders from
//!   the market, the costs and who gets what, the match, then following the tasks;
//! - deals and tasks: their on-chain status, claims, result downloads verified against the
//!   digest certified on-chain (and decrypted with the beneficiary's key when encrypted);
//!   found at the block a market's index names when there is a market (a hint, checked
//!   against the chain), else by a search back from the head, so that a read costs a few
//!   requests however long the chain; a watch reads tasks again only when a block comes;
//! - the confidential path ([`confidential`]): datasets encrypted with their key kept locally,
//!   the beneficiary's result key, and what the secret management service (SMS) holds for TEE
//!   tasks (dataset keys, requester and app developer secrets, result keys).
//!
//! [`devnet`] is a running devnet as its clients see it (its endpoints, the roles' keys,
//! stopping it); `poco-devnet` starts one.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod account;
pub mod app_project;
pub mod assets;
mod client;
pub mod confidential;
pub mod devnet;
mod error;
pub mod market;
pub mod orders;
pub mod run;
pub mod tasks;

pub use account::{Balance, Sent, Transfer};
pub use assets::{Asset, AssetKind};
pub use client::{Endpoints, LOG_RANGE, Poco, connect_chain, discover};
pub use error::{Error, ErrorKind, Result};
pub use orders::AnySigned;
pub use poco_chain::DEFAULT_RECEIPT_TIMEOUT;
pub use run::{Costs, Plan, RunSpec};
pub use tasks::{DealView, Decryption, DownloadedResult, TaskStatus, TaskView};
