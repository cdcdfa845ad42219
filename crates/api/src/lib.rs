//! What poco's services say on the wire, in one place: the request and answer types of every
//! service's HTTP API, and the typed clients that speak them.
//!
//! | Module | Service | Who calls it |
//! | --- | --- | --- |
//! | [`market`] | the orderbook | the SDK (publish, query, best match) |
//! | [`pool`] | a workerpool's scheduler, as its workers see it | the worker |
//! | [`results`] | the result store | the worker (upload), the scheduler (check), the SDK (download) |
//! | [`sms`] | the secret management service | the SDK, the scheduler, the worker's enclave |
//!
//! Every client is set up the same way ([`http::client`]), every service refuses with the same
//! body ([`http::ErrorBody`]), and every signed request uses the one scheme of
//! [`poco_primitives::request`]. The servers depend on this crate for their wire types; this
//! crate depends on no server framework, database or sandbox, so a program that only talks to
//! poco's services builds small.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod http;
pub mod market;
pub mod pool;
pub mod results;
pub mod sms;
