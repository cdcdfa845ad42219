//! Protocol types and rules of poco, without I/O.
//!
//! The first crate of the data flow (primitives -> contracts -> chain -> services -> sdk -> cli):
//! orders and their EIP-712 hashing and signing, deal and task ids, tags, categories, the
//! matching rules, result digests and seals, worker authorizations and the credibility maths of
//! the consensus. Everything that must agree bit for bit with the contracts lives here, once.
