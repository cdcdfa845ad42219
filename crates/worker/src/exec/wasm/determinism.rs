//! The deterministic sources the sandbox gives an app in place of the host's: frozen clocks and
//! seeded random generators.

use std::convert::Infallible;
use std::time::Duration;

use rand_core::TryRng;
use sha2::{Digest, Sha256};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// A wall clock stopped at a given time (a duration since the Unix epoch).
pub(crate) struct FrozenWallClock(pub(crate) Duration);

impl HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        self.0
    }
}

/// A monotonic clock stopped at a given number of nanoseconds.
pub(crate) struct FrozenMonotonicClock(pub(crate) u64);

impl HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.0
    }
}

/// A deterministic random generator: SHA-256 in counter mode. Block `i` is
/// `sha256(key || i as u64 little-endian)` with `key = sha256(domain || seed)`, and bytes are
/// handed out in order. Simple to specify, so any implementation (another worker version, a
/// verifier) can reproduce the stream.
pub(crate) struct SeededRng {
    key: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl SeededRng {
    /// The stream for `seed`, separated from other streams of the same seed by `domain`.
    pub(crate) fn new(seed: &[u8; 32], domain: &str) -> Self {
        let key =
            Sha256::new().chain_update(domain.as_bytes()).chain_update(seed).finalize().into();
        Self { key, counter: 0, block: [0; 32], used: 32 }
    }

    fn fill(&mut self, dst: &mut [u8]) {
        let mut written = 0;
        while written < dst.len() {
            if self.used == self.block.len() {
                self.block = Sha256::new()
                    .chain_update(self.key)
                    .chain_update(self.counter.to_le_bytes())
                    .finalize()
                    .into();
                self.counter = self.counter.wrapping_add(1);
                self.used = 0;
            }
            let n = (dst.len() - written).min(self.block.len() - self.used);
            dst[written..written + n].copy_from_slice(&self.block[self.used..self.used + n]);
            written += n;
            self.used += n;
        }
    }
}

impl TryRng for SeededRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0; 4];
        self.fill(&mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0; 8];
        self.fill(&mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.fill(dst);
        Ok(())
    }
}

/// The value of WASI's `insecure-seed` for `seed`.
pub(crate) fn insecure_seed(seed: &[u8; 32]) -> u128 {
    let mut bytes = [0; 16];
    SeededRng::new(seed, "poco-wasm/insecure-seed").fill(&mut bytes);
    u128::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    #[test]
    fn same_seed_same_stream_whatever_the_chunking() {
        let seed = [9; 32];
        let mut whole = [0u8; 100];
        SeededRng::new(&seed, "d").fill_bytes(&mut whole);
        let mut pieces = SeededRng::new(&seed, "d");
        let mut chunked = Vec::new();
        for len in [1, 31, 2, 40, 26] {
            let mut buf = vec![0u8; len];
            pieces.fill_bytes(&mut buf);
            chunked.extend(buf);
        }
        assert_eq!(whole.as_slice(), chunked.as_slice());
    }

    #[test]
    fn stream_is_the_specified_one() {
        let seed = [1; 32];
        let key: [u8; 32] = Sha256::new().chain_update(b"d").chain_update(seed).finalize().into();
        let block0: [u8; 32] =
            Sha256::new().chain_update(key).chain_update(0u64.to_le_bytes()).finalize().into();
        let mut rng = SeededRng::new(&seed, "d");
        assert_eq!(rng.next_u64(), u64::from_le_bytes(block0[..8].try_into().unwrap()));
    }

    #[test]
    fn seeds_and_domains_separate_streams() {
        let a = SeededRng::new(&[1; 32], "x").next_u64();
        assert_ne!(a, SeededRng::new(&[2; 32], "x").next_u64());
        assert_ne!(a, SeededRng::new(&[1; 32], "y").next_u64());
        assert_eq!(insecure_seed(&[3; 32]), insecure_seed(&[3; 32]));
        assert_ne!(insecure_seed(&[3; 32]), insecure_seed(&[4; 32]));
    }
}
