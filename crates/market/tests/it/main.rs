//! Integration tests of the market: the router without a chain (`oneshot`), and the real
//! service against a real anvil with the deployed contracts, on SQLite and (ignored unless
//! asked, see the crate's README) PostgreSQL.

mod api;
mod bad_input;
mod harness;
mod lifecycle;
mod multi;
mod reorg;
mod restart;
mod rollback;
mod tasks;
