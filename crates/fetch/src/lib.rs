//! The one fetch policy of poco, for every URL a stranger chose.
//!
//! A worker opens URLs that other people chose: an app's and a dataset's, registered by
//! their owners, and the input files a requester lists. A client opens the result locations
//! schedulers publish. Any of them could point at the fetcher's own files (`file:///etc/...`,
//! a wallet's keystore) or at services only its machine can reach (`127.0.0.1`, a private
//! network, a cloud metadata endpoint), and hand what they read to a stranger's app. Every
//! such fetch goes through a [`Fetcher`] and its [`FetchPolicy`]:
//!
//! * `http` and `https` URLs of public addresses only, by default, whatever the spelling of
//!   the address (IPv6, IPv4-mapped IPv6, decimal or octal IPv4, a name resolving to it);
//! * checked at the address actually connected to, and again at every redirect, with bounds
//!   on redirects, bytes and time;
//! * `file://` URLs only inside directories the operator lists, after `..` and symbolic links
//!   are resolved, and for requesters' input files only where the operator allows exactly
//!   that;
//! * widened only by the operator, per kind of [`Source`].
//!
//! A refusal is a typed [`FetchError`] that names the rule, and says whether the failure is
//! the URL's own ([`FetchError::is_request_fault`]), the same for everyone who tries it, or
//! the fetcher's (its network), worth trying again elsewhere.
//!
//! It sits beside the chain crates in the data flow: the worker fetches with it, the SDK
//! checks a run's URLs with it before paying.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod error;
mod fetcher;
mod policy;

pub use error::FetchError;
pub use fetcher::Fetcher;
pub use ipnet::IpNet;
pub use policy::{FetchPolicy, Source, embedded_ipv4, non_public};
