//! Compiled modules on disk, so a module (the 99 MB Python runtime above all) is compiled once
//! per worker rather than once per process.
//!
//! A compiled module is native code that wasmtime maps and runs as it finds it, so the cache
//! trusts only what it wrote itself:
//! - the folder is this user's, mode `0700`, and not a symbolic link; anything else is refused
//!   when the executor is built;
//! - each file is named by the module's sha256 and the engine's configuration (wasmtime's
//!   compatibility hash: another wasmtime version or setting never reads it), is this user's,
//!   mode `0600`, a regular file with one link, opened without following links;
//! - its content starts with a magic and the sha256 of the rest, checked before wasmtime sees a
//!   byte. A file that fails any check is deleted and the module compiled again.
//!
//! Files are written under a temporary name and renamed into place, so a reader never sees
//! half a file and two processes sharing a folder never corrupt each other. A module missing
//! from the folder is compiled under an exclusive lock of its own (`flock` on a lock file
//! beside it): workers of one machine that need it at the same time compile it once, the
//! others wait and load what the first wrote.

use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tracing::warn;
use wasmtime::{Engine, Module};

use crate::exec::{ExecError, Result};

/// The longest a compile waits for another process's compile of the same module: the Python
/// runtime takes a minute or two; a holder slower than this is stopped or stuck.
const COMPILE_LOCK_WAIT: Duration = Duration::from_secs(600);

/// The first bytes of every cache file.
const MAGIC: &[u8; 8] = b"pococwm1";
/// The header: the magic, then the sha256 of the serialized module.
const HEADER_LEN: usize = MAGIC.len() + 32;

/// A folder of compiled modules. See the [module documentation](self).
#[derive(Debug)]
pub(super) struct DiskCache {
    dir: PathBuf,
    /// Folds the engine's configuration into every key.
    engine_key: [u8; 32],
}

/// What [`DiskCache::load`] found.
pub(super) enum Lookup {
    /// The module, deserialized from a checked file.
    Hit(Module),
    /// No file for this module and engine.
    Miss,
    /// A file that failed a check, now deleted; the reason is logged.
    Refused,
}

impl DiskCache {
    /// Opens `dir`, creating it (and its parents) if needed.
    ///
    /// # Errors
    ///
    /// [`ExecError::ModuleCache`] if the folder cannot be created, is a link, is not this user's
    /// or is open to others.
    pub(super) fn open(dir: &Path, engine: &Engine) -> Result<Self> {
        let refuse = |reason: String| ExecError::ModuleCache { path: dir.to_owned(), reason };
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(|e| refuse(format!("cannot create it: {e}")))?;
        }
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(refuse(format!("cannot create it: {e}"))),
        }
        let metadata =
            fs::symlink_metadata(dir).map_err(|e| refuse(format!("cannot read it: {e}")))?;
        if !metadata.is_dir() {
            return Err(refuse("it is not a folder (a link is refused)".to_owned()));
        }
        if metadata.uid() != current_uid() {
            return Err(refuse(format!("it belongs to uid {}, not to this user", metadata.uid())));
        }
        let mode = metadata.permissions().mode() & 0o7777;
        if mode != 0o700 {
            return Err(refuse(format!(
                "its mode is {mode:04o}; it holds native code, so it must be 0700 \
                 (chmod 700 {})",
                dir.display()
            )));
        }
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self { dir: dir.to_owned(), engine_key: hasher.0.finalize().into() })
    }

    /// The file of the module with sha256 `digest`.
    pub(super) fn path(&self, digest: &[u8; 32]) -> PathBuf {
        let key: [u8; 32] = Sha256::new()
            .chain_update(b"poco-module-cache/v1")
            .chain_update(self.engine_key)
            .chain_update(digest)
            .finalize()
            .into();
        self.dir.join(format!("{}.cwasm", hex::encode(key)))
    }

    /// The compiled module with sha256 `digest`, if a checked file holds it.
    pub(super) fn load(&self, engine: &Engine, digest: &[u8; 32]) -> Lookup {
        let path = self.path(digest);
        match read_checked(&path) {
            Ok(None) => Lookup::Miss,
            Ok(Some(serialized)) => {
                // SAFETY: the bytes are what `store` wrote from `Module::serialize` of this
                // engine's configuration: the file is this user's, 0600, in a 0700 folder of
                // this user, and its sha256 matches the header written with it.
                match unsafe { Module::deserialize(engine, &serialized) } {
                    Ok(module) => Lookup::Hit(module),
                    Err(e) => self.refuse(&path, &format!("wasmtime refused it: {e:#}")),
                }
            }
            Err(reason) => self.refuse(&path, &reason),
        }
    }

    /// Waits for, then holds until the returned file is dropped, the right to compile the
    /// module with sha256 `digest` into this folder. `None` (logged) when the lock cannot be
    /// taken, or is held longer than [`COMPILE_LOCK_WAIT`] (a holder stopped or stuck): the
    /// caller compiles anyway, as it would without a cache.
    pub(super) fn compile_lock(&self, digest: &[u8; 32]) -> Option<File> {
        self.compile_lock_within(digest, COMPILE_LOCK_WAIT)
    }

    fn compile_lock_within(&self, digest: &[u8; 32], wait: Duration) -> Option<File> {
        let path = self.path(digest);
        let lock = self
            .dir
            .join(format!(".{}.lock", path.file_stem().unwrap_or_default().to_string_lossy()));
        let taken = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock)
            .and_then(|file| {
                let deadline = Instant::now() + wait;
                loop {
                    // SAFETY: flock on a descriptor this function owns; it does not block.
                    let status =
                        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
                    if status == 0 {
                        return Ok(file);
                    }
                    let error = io::Error::last_os_error();
                    if error.kind() != io::ErrorKind::WouldBlock {
                        return Err(error);
                    }
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("another compile held it for {} s", wait.as_secs()),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        match taken {
            Ok(file) => Some(file),
            Err(e) => {
                warn!(
                    target: "poco_worker::exec",
                    lock = %lock.display(),
                    error = %e,
                    "cannot lock the compile of a module: compiling without"
                );
                None
            }
        }
    }

    /// Writes the compiled `module` with sha256 `digest`; a failure is logged, not returned (the
    /// module is compiled again next time).
    pub(super) fn store(&self, module: &Module, digest: &[u8; 32]) {
        if let Err(e) = self.try_store(module, digest) {
            warn!(
                target: "poco_worker::exec",
                dir = %self.dir.display(),
                error = %e,
                "cannot write a compiled module to the cache"
            );
        }
    }

    fn try_store(&self, module: &Module, digest: &[u8; 32]) -> io::Result<()> {
        let serialized = module.serialize().map_err(|e| io::Error::other(format!("{e:#}")))?;
        let path = self.path(digest);
        let temp = self.dir.join(format!(
            ".{}.{}.tmp",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&temp)?;
            file.write_all(MAGIC)?;
            file.write_all(&Sha256::digest(&serialized))?;
            file.write_all(&serialized)?;
            file.sync_all()?;
            fs::rename(&temp, &path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written
    }

    fn refuse(&self, path: &Path, reason: &str) -> Lookup {
        warn!(
            target: "poco_worker::exec",
            path = %path.display(),
            reason,
            "refusing a compiled module in the cache; compiling it again"
        );
        let _ = fs::remove_file(path);
        Lookup::Refused
    }
}

/// The serialized module of a cache file, `None` if there is none, or why the file is refused.
fn read_checked(path: &Path) -> std::result::Result<Option<Vec<u8>>, String> {
    let mut file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open it (a link is refused): {e}")),
    };
    check_file(&file)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err("it does not start with the cache's header".to_owned());
    }
    let serialized = bytes.split_off(HEADER_LEN);
    if Sha256::digest(&serialized)[..] != bytes[MAGIC.len()..] {
        return Err("its content does not match the sha256 written with it".to_owned());
    }
    Ok(Some(serialized))
}

fn check_file(file: &File) -> std::result::Result<(), String> {
    let metadata = file.metadata().map_err(|e| format!("cannot read its metadata: {e}"))?;
    if !metadata.is_file() {
        return Err("it is not a regular file".to_owned());
    }
    if metadata.uid() != current_uid() {
        return Err(format!("it belongs to uid {}, not to this user", metadata.uid()));
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if mode != 0o600 {
        return Err(format!("its mode is {mode:04o}, not 0600"));
    }
    if metadata.nlink() != 1 {
        return Err(format!("it has {} links, not one", metadata.nlink()));
    }
    Ok(())
}

fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Feeds a [`Hash`] value into sha256 (wasmtime gives its configuration's key as one).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// While one holder compiles a module, another that needs it waits; a different module
    /// does not.
    #[test]
    fn a_compile_lock_makes_others_wait_for_the_same_module_only() {
        let root = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = std::sync::Arc::new(DiskCache::open(&root.path().join("m"), &engine).unwrap());
        let held = cache.compile_lock(&[1; 32]).expect("the lock");
        assert!(cache.compile_lock(&[2; 32]).is_some(), "another module is not held up");

        let (granted, waiting) = mpsc::channel();
        let other = std::sync::Arc::clone(&cache);
        let waiter = std::thread::spawn(move || {
            let lock = other.compile_lock(&[1; 32]);
            granted.send(lock.is_some()).unwrap();
        });
        assert!(
            waiting.recv_timeout(Duration::from_millis(300)).is_err(),
            "the second holder waits while the first compiles"
        );
        drop(held);
        assert_eq!(waiting.recv_timeout(Duration::from_secs(10)), Ok(true), "then it goes on");
        waiter.join().unwrap();
        let lock = root.path().join("m").read_dir().unwrap().find_map(|entry| {
            let path = entry.unwrap().path();
            path.to_string_lossy().ends_with(".lock").then_some(path)
        });
        let mode = fs::metadata(lock.expect("a lock file")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// A holder that never lets go (stopped, stuck) holds others up for a bounded time only:
    /// they then compile without the lock.
    #[test]
    fn a_compile_lock_held_too_long_is_given_up() {
        let root = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(&root.path().join("m"), &Engine::default()).unwrap();
        let _held = cache.compile_lock(&[1; 32]).expect("the lock");
        let started = Instant::now();
        assert!(cache.compile_lock_within(&[1; 32], Duration::from_millis(200)).is_none());
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
}
