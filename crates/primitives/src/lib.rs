//! Protocol types and rules of poco, without I/O.
//!
//! The first crate of the data flow (primitives -> contracts -> chain -> market | scheduler |
//! worker | results -> sdk -> cli). Everything that must agree bit for bit with the contracts
//! lives here, once; the services and the SDK call it and never re-implement it:
//!
//! * [`order`]: the four orders, their EIP-712 hashing, signing, presign/close digests, JSON;
//! * [`signature`]: ECDSA signatures as the contracts accept them (low `s`, 65 or 64 bytes);
//! * [`matching`]: the rules of `matchOrders` as one pure function over a view of the chain;
//! * [`deal`]: the deal the contract writes, deal and task ids, deadlines;
//! * [`tag`], [`category`], [`amount`]: feature masks, time budgets, nRLC amounts;
//! * [`result`]: the result digest of an output tree, the result hash and seal;
//! * [`authorization`]: the scheduler's worker authorization and the enclave signature;
//! * [`credibility`]: the consensus maths, reputation scores, contributions still needed;
//! * [`payout`]: what finalizing a replicated task pays each worker and the scheduler;
//! * [`committee`]: committee deals: sizes, the members a pool needs, the seat draw;
//! * [`args`]: a deal's `iexec_args` split into argv, as every worker splits them;
//! * [`request`]: signed HTTP requests, one scheme for every service (scheduler, SMS, result
//!   store);
//! * [`serde_helpers`]: the JSON conventions of the protocol (decimal `uint256`, checksummed
//!   addresses).
//!
//! No async, no network. The only I/O is reading a result directory to digest it
//! ([`result::result_digest_of_dir`]), and the system clock and random source that stamp a
//! request to sign ([`request::SignedRequest::fresh`]).

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod amount;
pub mod app_bundle;
pub mod args;
pub mod authorization;
pub mod category;
pub mod committee;
pub mod credibility;
pub mod deal;
pub mod error;
pub mod matching;
pub mod order;
pub mod payout;
pub mod request;
pub mod result;
pub mod serde_helpers;
pub mod signature;
pub mod tag;

pub use amount::{Amount, Ether};
pub use authorization::WorkerpoolAuthorization;
pub use category::Category;
pub use credibility::{Consensus, contributions_needed};
pub use deal::Deal;
pub use error::{Error, MatchError, Result};
pub use matching::{ChainSnapshot, ChainState, MatchOutcome, match_orders};
pub use order::{
    AnySigned, AppOrder, DatasetOrder, Order, OrderKind, OrderOperation, PocoDomain, RequestOrder,
    Roles, Signed, WorkerpoolOrder,
};
pub use result::{ResultCommitment, result_digest};
pub use tag::{Tag, TeeFramework};
