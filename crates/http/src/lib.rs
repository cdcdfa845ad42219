//! HTTP server plumbing shared by the poco services (market, scheduler, result store, SMS).
//!
//! `axum::serve` reads request headers for as long as a client cares to send them, keeps idle
//! connections forever and accepts any number of them from one host. [`Server`] serves an
//! axum [`Router`](axum::Router) the same way, with the limits a public service needs:
//!
//! * a header-read timeout (a client that opens a connection and sends nothing, or trickles
//!   its headers, is disconnected; it also bounds the wait between keep-alive requests);
//! * an idle timeout (a connection on which no byte moves either way is closed);
//! * a cap of open connections per client, and one for all clients ([`ClientSlots`]);
//!
//! each a field of [`ServerLimits`] with a default. A client is an IPv4 address or an IPv6
//! /64 ([`client_of`]): one host owns a whole /64. The server still gives handlers
//! [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo) and shuts down gracefully.
//!
//! When a limit acts, the server counts it ([`ServerStats`]) and logs it, at most once per
//! client per minute ([`LogGate`]), so that an attack is visible without flooding the log.
//! [`forwarded_client`] finds the client behind a reverse proxy the operator trusts.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod client;
mod server;
mod slots;

pub use client::{LogGate, client_of, forwarded_client};
pub use server::{
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_CLIENT, Server, ServerLimits, ServerStats, serve,
};
pub use slots::{ClientSlots, Slot, SlotRefusal};
