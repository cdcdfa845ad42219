//! Cross-checks of the Rust protocol core against the contracts, on a real anvil: order
//! hashing, the matching rules, ids, result commitments, authorizations, the consensus maths,
//! the committee draw, and the event follower.

mod client;
mod committee;
mod credibility;
mod follower;
mod hashing;
mod lifecycle;
mod matching;

/// A runtime for tests that drive the chain from synchronous property tests.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
