//! Result digests, result hashes and seals: what a worker commits to and reveals.
//!
//! # The result digest
//!
//! The digest of a task's output tree is a SHA-256 over its files in a canonical order, so
//! that honest workers that produce the same files get the same digest, whatever their file
//! system lists first:
//!
//! * only **regular files** count; directories only give the paths (an empty directory adds
//!   nothing), and a symbolic link or any special file (fifo, socket, device) is refused;
//! * a file's path is relative to the output root, its components joined by `/` (no leading
//!   `/`, no empty, `.` or `..` component) and UTF-8;
//! * files are sorted by the bytes of their paths;
//! * for each file, in that order, the hash takes `u64_be(path length) ‖ path bytes ‖
//!   u64_be(content length) ‖ content bytes`.
//!
//! An empty tree is valid: its digest is SHA-256 of nothing. [`result_digest`] computes the
//! digest over in-memory entries, [`result_digest_of_dir`] over a directory (the only I/O of
//! this crate: it reads, never writes).
//!
//! For a deal with a callback, the digest is instead `keccak256(callback data)`
//! ([`callback_digest`]), which finalize checks on-chain.
//!
//! # Hash and seal
//!
//! From the digest, for task `taskid` and worker `worker`:
//! `resultHash = keccak256(taskid ‖ digest)`, the vote, the same for every honest worker; and
//! `resultSeal = keccak256(worker ‖ taskid ‖ digest)` (the address as 20 bytes), a commitment
//! proper to the worker, so that nobody can copy a vote without knowing the digest.
//!
//! # Failed tasks
//!
//! A task that fails because of its request (the app ends in error on its inputs, an input
//! file is refused or missing) still has a result, agreed and paid like any other: its output
//! tree holds a [`FailureRecord`] in [`FAILURE_FILE`], written the same way by every worker,
//! which says what failed and, to the result's beneficiary only, the end of the app's error
//! output.

use alloy::primitives::{Address, B256, keccak256};
use sha2::{Digest, Sha256};
use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
};

use crate::error::{Error, Result};

/// The file of a failed task's output tree that says why it failed.
pub const FAILURE_FILE: &str = "poco-failure.json";
/// The most bytes of an app's error output a [`FailureRecord`] keeps (its end).
pub const STDERR_TAIL_BYTES: usize = 4096;

/// Why a task's outcome is a failure, as its result holds it (in [`FAILURE_FILE`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailureRecord {
    /// What failed.
    pub stage: FailureStage,
    /// The cause, in words every worker writes alike (no path, address or message of a
    /// worker's own machine).
    pub cause: String,
    /// The app's exit status, when it exited with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The end of what the app wrote on its error output (at most [`STDERR_TAIL_BYTES`]);
    /// always empty for TEE tasks, whose error output stays in the enclave.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr_tail: String,
}

/// The stage of a task that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureStage {
    /// An input of the request could not be obtained: the app never ran.
    Input,
    /// The app ran and ended in error (exit status, trap, out of memory or fuel).
    Run,
}

impl FailureRecord {
    /// A failure to obtain an input of the request.
    pub fn input(cause: impl Into<String>) -> Self {
        Self {
            stage: FailureStage::Input,
            cause: cause.into(),
            exit_code: None,
            stderr_tail: String::new(),
        }
    }

    /// An app that ended in error: `status` describes how, `stderr` is all it wrote there
    /// (its end is kept).
    pub fn run(status: impl Into<String>, exit_code: Option<i32>, stderr: &str) -> Self {
        Self {
            stage: FailureStage::Run,
            cause: status.into(),
            exit_code,
            stderr_tail: tail_of(stderr, STDERR_TAIL_BYTES).to_owned(),
        }
    }

    /// The record as its file holds it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a failure record serializes")
    }

    /// A record read from its file.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| Error::InvalidFailureRecord(e.to_string()))
    }
}

/// The last `max` bytes of `text` at most, cut at a character boundary.
fn tail_of(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The digest of an output tree given as `(relative path, content)` entries, in any order.
///
/// Refuses an unclean path, the same path twice, and a path that is both a file and a
/// directory (`a` and `a/b`): entries must describe a tree a file system could hold.
pub fn result_digest<P, C>(entries: impl IntoIterator<Item = (P, C)>) -> Result<B256>
where
    P: AsRef<str>,
    C: AsRef<[u8]>,
{
    let mut entries: Vec<(P, C)> = entries.into_iter().collect();
    for (path, _) in &entries {
        check_path(path.as_ref())?;
    }
    entries.sort_by(|a, b| a.0.as_ref().as_bytes().cmp(b.0.as_ref().as_bytes()));
    check_tree(entries.iter().map(|(path, _)| path.as_ref()))?;
    let mut hasher = Sha256::new();
    for (path, content) in &entries {
        let content = content.as_ref();
        hash_header(&mut hasher, path.as_ref(), content.len() as u64);
        hasher.update(content);
    }
    Ok(B256::from(<[u8; 32]>::from(hasher.finalize())))
}

/// The digest of the output tree under the directory `root`, read from the file system.
///
/// Files are streamed, not loaded whole. Refuses symbolic links and special files, non-UTF-8
/// names, and a file whose size changes while it is read.
pub fn result_digest_of_dir(root: &Path) -> Result<B256> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let mut files = Vec::new();
    collect_files(root, "", &mut files)?;
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    for (relative, path, length) in files {
        hash_header(&mut hasher, &relative, length);
        let mut file = fs::File::open(&path).map_err(io_error(&path))?;
        let mut read = 0u64;
        loop {
            let count = file.read(&mut buffer).map_err(io_error(&path))?;
            if count == 0 {
                break;
            }
            read += count as u64;
            if read > length {
                return Err(Error::FileChanged { path });
            }
            hasher.update(&buffer[..count]);
        }
        if read != length {
            return Err(Error::FileChanged { path });
        }
    }
    Ok(B256::from(<[u8; 32]>::from(hasher.finalize())))
}

/// The result digest of a callback deal: `keccak256(callback data)`.
pub fn callback_digest(callback_data: &[u8]) -> B256 {
    keccak256(callback_data)
}

/// `keccak256(taskid ‖ digest)`: the vote a worker contributes.
pub fn result_hash(task_id: B256, digest: B256) -> B256 {
    let mut message = [0u8; 64];
    message[..32].copy_from_slice(task_id.as_slice());
    message[32..].copy_from_slice(digest.as_slice());
    keccak256(message)
}

/// `keccak256(worker ‖ taskid ‖ digest)`, the worker address as 20 bytes: the worker's own
/// commitment to the digest.
pub fn result_seal(worker: Address, task_id: B256, digest: B256) -> B256 {
    let mut message = [0u8; 84];
    message[..20].copy_from_slice(worker.as_slice());
    message[20..52].copy_from_slice(task_id.as_slice());
    message[52..].copy_from_slice(digest.as_slice());
    keccak256(message)
}

/// What a worker commits for a task: the result hash and its own seal of one digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResultCommitment {
    /// `keccak256(taskid ‖ digest)`.
    pub result_hash: B256,
    /// `keccak256(worker ‖ taskid ‖ digest)`.
    pub result_seal: B256,
}

impl ResultCommitment {
    /// The commitment of `worker` to `digest` for task `task_id`.
    pub fn new(worker: Address, task_id: B256, digest: B256) -> Self {
        Self {
            result_hash: result_hash(task_id, digest),
            result_seal: result_seal(worker, task_id, digest),
        }
    }

    /// Whether revealing `digest` opens this commitment of `worker` for task `task_id`, as
    /// `reveal` checks on-chain.
    pub fn is_opened_by(&self, worker: Address, task_id: B256, digest: B256) -> bool {
        *self == Self::new(worker, task_id, digest)
    }
}

fn hash_header(hasher: &mut Sha256, path: &str, content_length: u64) {
    hasher.update((path.len() as u64).to_be_bytes());
    hasher.update(path.as_bytes());
    hasher.update(content_length.to_be_bytes());
}

fn check_path(path: &str) -> Result<()> {
    let invalid = |reason| Err(Error::InvalidResultPath { path: path.to_owned(), reason });
    if path.is_empty() {
        return invalid("empty path");
    }
    if path.contains('\0') {
        return invalid("NUL byte in path");
    }
    if path.starts_with('/') {
        return invalid("absolute path: paths are relative to the output root");
    }
    for component in path.split('/') {
        match component {
            "" => return invalid("empty component (doubled or trailing '/')"),
            "." | ".." => return invalid("'.' and '..' components are not allowed"),
            _ => {}
        }
    }
    Ok(())
}

/// No path twice, and no file under another file.
fn check_tree<'a>(sorted_paths: impl Iterator<Item = &'a str> + Clone) -> Result<()> {
    let mut previous: Option<&str> = None;
    for path in sorted_paths.clone() {
        if previous == Some(path) {
            return Err(Error::DuplicateResultPath { path: path.to_owned() });
        }
        previous = Some(path);
    }
    let files: std::collections::HashSet<&str> = sorted_paths.clone().collect();
    for path in sorted_paths {
        let mut parents = path.match_indices('/').map(|(end, _)| &path[..end]);
        if parents.any(|parent| files.contains(parent)) {
            return Err(Error::InvalidResultPath {
                path: path.to_owned(),
                reason: "its parent is a file",
            });
        }
    }
    Ok(())
}

/// Collects `(relative path, absolute path, length)` of every regular file under `dir`.
fn collect_files(dir: &Path, prefix: &str, files: &mut Vec<(String, PathBuf, u64)>) -> Result<()> {
    let io_error = |source| Error::Io { path: dir.to_path_buf(), source };
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(Error::NonUtf8Path { path });
        };
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        // `DirEntry::metadata` does not follow symbolic links.
        let metadata =
            entry.metadata().map_err(|source| Error::Io { path: path.clone(), source })?;
        let file_type = metadata.file_type();
        if file_type.is_symlink() {
            return Err(Error::UnsupportedFileType { path, kind: "symbolic link" });
        } else if file_type.is_dir() {
            collect_files(&path, &relative, files)?;
        } else if file_type.is_file() {
            files.push((relative, path, metadata.len()));
        } else {
            return Err(Error::UnsupportedFileType { path, kind: "special file" });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, b256};
    use proptest::prelude::*;

    fn sha256(bytes: &[u8]) -> B256 {
        B256::from(<[u8; 32]>::from(Sha256::digest(bytes)))
    }

    #[test]
    fn empty_tree_is_sha256_of_nothing() {
        let empty: [(&str, &[u8]); 0] = [];
        assert_eq!(
            result_digest(empty).unwrap(),
            b256!("0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }

    #[test]
    fn digest_layout() {
        let digest = result_digest([("b.txt", "2"), ("a/x", "hello")]).unwrap();
        let mut expected = Vec::new();
        for (path, content) in [("a/x", "hello"), ("b.txt", "2")] {
            expected.extend_from_slice(&(path.len() as u64).to_be_bytes());
            expected.extend_from_slice(path.as_bytes());
            expected.extend_from_slice(&(content.len() as u64).to_be_bytes());
            expected.extend_from_slice(content.as_bytes());
        }
        assert_eq!(digest, sha256(&expected));
    }

    #[test]
    fn sorting_is_bytewise() {
        // 'B' (0x42) < 'a' (0x61) < 'a/' ... and "a-b" < "a/b" ('-' = 0x2d < '/' = 0x2f).
        let entries = [("a/b", "1"), ("a-b", "2"), ("B", "3")];
        let mut expected = Vec::new();
        for (path, content) in [("B", "3"), ("a-b", "2"), ("a/b", "1")] {
            expected.extend_from_slice(&(path.len() as u64).to_be_bytes());
            expected.extend_from_slice(path.as_bytes());
            expected.extend_from_slice(&1u64.to_be_bytes());
            expected.extend_from_slice(content.as_bytes());
        }
        assert_eq!(result_digest(entries).unwrap(), sha256(&expected));
    }

    #[test]
    fn unclean_paths_are_refused() {
        for path in ["", "/abs", "a//b", "a/", "./a", "a/../b", "..", "a\0b"] {
            assert!(
                matches!(result_digest([(path, "")]), Err(Error::InvalidResultPath { .. })),
                "{path:?}"
            );
        }
        assert!(matches!(
            result_digest([("a", "1"), ("b", "2"), ("a", "3")]),
            Err(Error::DuplicateResultPath { path }) if path == "a"
        ));
        assert!(matches!(
            result_digest([("a/b/c", "1"), ("a-b", "2"), ("a/b", "3")]),
            Err(Error::InvalidResultPath { path, reason: "its parent is a file" }) if path == "a/b/c"
        ));
    }

    #[test]
    fn directory_digest_equals_the_in_memory_one() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        fs::create_dir_all(dir.join("empty")).unwrap();
        fs::write(dir.join("result.txt"), "42\n").unwrap();
        fs::write(dir.join("sub/data.bin"), [0u8, 1, 2, 255]).unwrap();
        fs::write(dir.join("sub/deeper/z"), "").unwrap();
        let expected = result_digest([
            ("result.txt", &b"42\n"[..]),
            ("sub/data.bin", &[0, 1, 2, 255][..]),
            ("sub/deeper/z", &b""[..]),
        ])
        .unwrap();
        assert_eq!(result_digest_of_dir(dir).unwrap(), expected);

        let empty = tempfile::tempdir().unwrap();
        let nothing: [(&str, &[u8]); 0] = [];
        assert_eq!(result_digest_of_dir(empty.path()).unwrap(), result_digest(nothing).unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_and_special_files_are_refused() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("target"), "x").unwrap();
        std::os::unix::fs::symlink(root.path().join("target"), root.path().join("link")).unwrap();
        assert!(matches!(
            result_digest_of_dir(root.path()),
            Err(Error::UnsupportedFileType { kind: "symbolic link", .. })
        ));

        let root = tempfile::tempdir().unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(root.path().join("sock")).unwrap();
        let error = result_digest_of_dir(root.path()).unwrap_err();
        assert!(matches!(error, Error::UnsupportedFileType { kind: "special file", .. }));
        assert!(error.to_string().contains("sock"), "{error}");
    }

    #[test]
    fn missing_directory_names_the_path() {
        let error = result_digest_of_dir(Path::new("/nonexistent/poco-results")).unwrap_err();
        assert!(matches!(error, Error::Io { .. }));
        assert!(error.to_string().starts_with("/nonexistent/poco-results"), "{error}");
    }

    #[test]
    fn hash_and_seal() {
        let task = B256::repeat_byte(0x11);
        let digest = B256::repeat_byte(0x22);
        let worker = address!("0x3333333333333333333333333333333333333333");
        let mut packed = task.to_vec();
        packed.extend_from_slice(digest.as_slice());
        assert_eq!(result_hash(task, digest), keccak256(&packed));
        let mut packed = worker.to_vec();
        packed.extend_from_slice(task.as_slice());
        packed.extend_from_slice(digest.as_slice());
        assert_eq!(packed.len(), 84);
        assert_eq!(result_seal(worker, task, digest), keccak256(&packed));

        let commitment = ResultCommitment::new(worker, task, digest);
        assert!(commitment.is_opened_by(worker, task, digest));
        assert!(!commitment.is_opened_by(Address::ZERO, task, digest));
        assert!(!commitment.is_opened_by(worker, task, B256::ZERO));
        assert_eq!(callback_digest(b"abc"), keccak256(b"abc"));
    }

    fn tree() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
        proptest::collection::btree_map(
            "([a-c]{1,2}/){0,2}[a-c]{1,3}\\.f",
            proptest::collection::vec(any::<u8>(), 0..16),
            0..8,
        )
        .prop_map(|map| map.into_iter().collect())
    }

    proptest! {
        #[test]
        fn listing_order_does_not_matter(entries in tree(), seed in any::<u64>()) {
            let mut shuffled = entries.clone();
            // A deterministic shuffle driven by the seed.
            let len = shuffled.len();
            for i in (1..len).rev() {
                let j = (seed.wrapping_mul(i as u64 + 7) % (i as u64 + 1)) as usize;
                shuffled.swap(i, j);
            }
            shuffled.reverse();
            prop_assert_eq!(result_digest(entries).unwrap(), result_digest(shuffled).unwrap());
        }

        #[test]
        fn any_byte_change_changes_the_digest(
            entries in tree().prop_filter("needs a file", |e| !e.is_empty()),
            pick in any::<prop::sample::Index>(),
            position in any::<prop::sample::Index>(),
            delta in 1u8..=255,
        ) {
            let digest = result_digest(entries.clone()).unwrap();
            let mut changed = entries;
            let file = pick.index(changed.len());
            let content = &mut changed[file].1;
            if content.is_empty() {
                content.push(delta); // growing a file is a change too
            } else {
                let at = position.index(content.len());
                content[at] = content[at].wrapping_add(delta);
            }
            prop_assert_ne!(result_digest(changed).unwrap(), digest);
        }

        #[test]
        fn moving_bytes_between_path_and_content_changes_the_digest(
            name in "[a-z]{2,6}", content in proptest::collection::vec(any::<u8>(), 0..8)
        ) {
            // The length prefixes make ("ab", "c…") and ("a", "bc…") different.
            let (head, tail) = name.split_at(1);
            let mut shifted = tail.as_bytes().to_vec();
            shifted.extend_from_slice(&content);
            prop_assert_ne!(
                result_digest([(name.as_str(), content.as_slice())]).unwrap(),
                result_digest([(head, shifted.as_slice())]).unwrap()
            );
        }
    }
}
