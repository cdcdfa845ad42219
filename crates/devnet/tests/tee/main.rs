//! End-to-end tests of the confidential path on a devnet, with the INSECURE simulated enclave:
//! the SMS, the scheduler asking it for enclave challenges, a worker running a TEE app on an
//! encrypted dataset with a requester secret, the result encrypted for the beneficiary.

mod confidential;
mod placement;

use std::path::{Path, PathBuf};

/// Every file under `dir`, recursively (nothing if it does not exist).
pub(crate) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Whether `needle` occurs in `haystack`.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|window| window == needle)
}
