//! Chain access for poco: a JSON-RPC client with a local wallet, transaction sending,
//! a resumable event follower and the devnet launcher. Every service reaches the chain here.
