//! What to run: [`ExecSpec`] and its [`Limits`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use poco_api::results::UploadLimits;

/// The guest path where the input directory is mounted, read-only.
pub const GUEST_IN: &str = "/iexec_in";
/// The guest path where the output directory is mounted, read-write.
pub const GUEST_OUT: &str = "/iexec_out";
/// The `argv[0]` every app gets, whatever its file was called: nothing of the host leaks.
pub const ARGV0: &str = "app";
/// The guest folder where a Python app's code is mounted, read-only.
pub const GUEST_APP: &str = "/app";
/// The guest folder where the Python runtime's standard library zip is mounted, read-only.
pub const GUEST_PYTHON_LIB: &str = "/usr/local/lib";
/// The `argv[0]` of the Python runtime: the interpreter finds its standard library from it.
pub const PYTHON_ARGV0: &str = "/usr/local/bin/python3";

/// Everything needed to run one task: the app, its arguments, its files, its environment, its
/// limits, and the values that make the run deterministic (the random seed and the clock).
///
/// Built with [`ExecSpec::new`] and the `with_*` methods; the fields stay public to read.
///
/// ```
/// use poco_worker::exec::{split_args, ExecSpec, Limits};
///
/// let module: Vec<u8> = std::fs::read("../../apps/pi/pi.wasm").unwrap();
/// let spec = ExecSpec::new(module, "/tmp/task/in", "/tmp/task/out")
///     .with_args(split_args("1000000 7").unwrap())
///     .with_env("IEXEC_TASK_ID", "0xabc")
///     .with_limits(Limits::default().with_fuel(10_000_000_000))
///     .with_seed([7; 32]);
/// assert_eq!(spec.args, ["1000000", "7"]);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ExecSpec {
    /// The app: a WebAssembly module (a WASI preview 1 command, exporting `_start`).
    pub module: Arc<[u8]>,
    /// The arguments, without `argv[0]` (which is always [`ARGV0`]). See
    /// [`split_args`](super::split_args) for the deal's `iexec_args`.
    pub args: Vec<String>,
    /// The host directory mounted read-only at [`GUEST_IN`]: the dataset and input files.
    pub input_dir: PathBuf,
    /// The host directory mounted read-write at [`GUEST_OUT`], where the app writes its result.
    pub output_dir: PathBuf,
    /// Environment variables given to the app besides `IEXEC_IN` and `IEXEC_OUT`. Every name
    /// starts with `IEXEC_` (task id, dataset file name, input file names, ...). Sorted, so the
    /// app sees them in the same order on every worker.
    pub env: BTreeMap<String, String>,
    /// Memory, fuel, time and output limits.
    pub limits: Limits,
    /// The seed of every random source the app can read (`random_get`): replicas of a task
    /// must get the same seed, for instance one derived from the task id.
    pub seed: [u8; 32],
    /// The time the app's clocks show, as a duration since the Unix epoch, frozen for the whole
    /// run (for instance the deal's start time). The monotonic clock shows the same value.
    pub clock: Duration,
    /// For a Python app, what the runtime in [`module`](Self::module) runs; `None` for a WASI
    /// command.
    pub python: Option<PythonLaunch>,
}

/// How the Python runtime runs a Python app: its standard library and the app's code, both
/// mounted read-only, and the script to run.
///
/// The runtime is a WebAssembly reactor (it exports `run`, not `_start`): the sandbox calls
/// `_initialize`, then `run`, whose result is the exit code. It is run as
/// `python3 /app/<entry> ARGS...`, with `PYTHONHASHSEED=0` and `PYTHONDONTWRITEBYTECODE=1`
/// besides the task's `IEXEC_*` variables, and the same clocks, random sources, limits and
/// mounts as any app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PythonLaunch {
    /// The host folder mounted at [`GUEST_PYTHON_LIB`]: the standard library zip (and the
    /// packages compiled with it).
    pub stdlib_dir: PathBuf,
    /// The host folder mounted at [`GUEST_APP`]: the app's code.
    pub app_dir: PathBuf,
    /// The script to run, relative to the app folder (`main.py`, `src/job.py`).
    pub entry: String,
}

impl ExecSpec {
    /// A specification with no argument, no extra environment variable, default [`Limits`], an
    /// all-zero seed and a clock at the Unix epoch.
    pub fn new(
        module: impl Into<Arc<[u8]>>,
        input_dir: impl Into<PathBuf>,
        output_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            module: module.into(),
            args: Vec::new(),
            input_dir: input_dir.into(),
            output_dir: output_dir.into(),
            env: BTreeMap::new(),
            limits: Limits::default(),
            seed: [0; 32],
            clock: Duration::ZERO,
            python: None,
        }
    }

    /// Runs `launch` in the Python runtime `module` instead of `module` as a WASI command.
    #[must_use]
    pub fn with_python(mut self, launch: PythonLaunch) -> Self {
        self.python = Some(launch);
        self
    }

    /// Sets the arguments (without `argv[0]`).
    #[must_use]
    pub fn with_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an environment variable (its name must start with `IEXEC_`; checked when run).
    #[must_use]
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Sets the limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the seed of the random sources.
    #[must_use]
    pub fn with_seed(mut self, seed: [u8; 32]) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the time the clocks show, as a duration since the Unix epoch.
    #[must_use]
    pub fn with_clock(mut self, since_unix_epoch: Duration) -> Self {
        self.clock = since_unix_epoch;
        self
    }
}

/// Never prints the module bytes nor the environment's values (they may hold secrets).
impl fmt::Debug for ExecSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecSpec")
            .field("module_len", &self.module.len())
            .field("args", &self.args)
            .field("input_dir", &self.input_dir)
            .field("output_dir", &self.output_dir)
            .field("env_names", &self.env.keys().collect::<Vec<_>>())
            .field("limits", &self.limits)
            .field("clock", &self.clock)
            .field("python", &self.python)
            .finish_non_exhaustive()
    }
}

/// The limits of one run.
///
/// Fuel is the deterministic limit: every WebAssembly instruction burns fuel, so an app that
/// runs out does so at the same instruction on every machine. The wall-clock timeout is only a
/// safety net (for host calls such as `sleep`, or a machine far slower than expected); a run
/// that hits it is not deterministic and should not be contributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The most linear memory the app may have, in bytes. A `memory.grow` beyond it fails
    /// (returns -1 to the app, whose `malloc` then returns NULL).
    pub memory_bytes: u64,
    /// The instruction budget.
    pub fuel: u64,
    /// The wall-clock safety net.
    pub timeout: Duration,
    /// How many bytes of stdout, and as many of stderr, are kept; the rest is counted and
    /// dropped.
    pub output_bytes: usize,
    /// What the app may leave in its output directory: bytes, entries, path length and depth,
    /// enforced while it runs.
    pub files: OutputQuota,
}

impl Limits {
    /// How much fuel one second of computation is worth: the `exec` benchmark
    /// (`cargo run --release -p poco-bench --bin exec`) measured 4.97e9 fuel/s for the `pi` app
    /// on a 2-core Xeon VM. A rough figure (it depends on the machine and on the mix of
    /// instructions) to turn a category's maximum time into a fuel budget: see
    /// [`Limits::for_max_time`].
    pub const REFERENCE_FUEL_PER_SECOND: u64 = 5_000_000_000;

    /// Limits for a task whose category allows `max_time`: fuel for `max_time` at
    /// [`REFERENCE_FUEL_PER_SECOND`](Self::REFERENCE_FUEL_PER_SECOND), and a wall-clock
    /// timeout of twice `max_time` plus 30 s, so the deterministic fuel limit is what stops a
    /// long task on any reasonable machine. Memory and output use the defaults.
    pub fn for_max_time(max_time: Duration) -> Self {
        let fuel = u64::try_from(
            max_time.as_nanos() * u128::from(Self::REFERENCE_FUEL_PER_SECOND) / 1_000_000_000,
        )
        .unwrap_or(u64::MAX);
        Self {
            fuel,
            timeout: max_time.saturating_mul(2).saturating_add(Duration::from_secs(30)),
            ..Self::default()
        }
    }

    /// Sets the memory limit, in bytes.
    #[must_use]
    pub fn with_memory_bytes(mut self, memory_bytes: u64) -> Self {
        self.memory_bytes = memory_bytes;
        self
    }

    /// Sets the fuel budget.
    #[must_use]
    pub fn with_fuel(mut self, fuel: u64) -> Self {
        self.fuel = fuel;
        self
    }

    /// Sets the wall-clock timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many bytes of stdout (and of stderr) are kept.
    #[must_use]
    pub fn with_output_bytes(mut self, output_bytes: usize) -> Self {
        self.output_bytes = output_bytes;
        self
    }

    /// Sets the quota of the output directory.
    #[must_use]
    pub fn with_files(mut self, files: OutputQuota) -> Self {
        self.files = files;
        self
    }
}

impl Default for Limits {
    /// 256 MiB of memory, 5×10^11 fuel (about 100 s at the reference rate), a 10 min timeout,
    /// 1 MiB of stdout and of stderr, the default [`OutputQuota`].
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            fuel: 500_000_000_000,
            timeout: Duration::from_secs(600),
            output_bytes: 1 << 20,
            files: OutputQuota::default(),
        }
    }
}

/// The quota of the output directory ([`GUEST_OUT`]): what an app may leave there.
///
/// It protects the worker's disk (an app writing without end) and the requester: whatever fits
/// the quota packs into a result archive the result store accepts, so a worker never commits
/// to a result it cannot upload. The sandbox enforces it while the app runs, before the bytes
/// reach the disk, on every WASI call that grows the directory (writes, size changes, file and
/// directory creation, renames); a walk of the directory after the run checks it again. An
/// app that goes past it is stopped with [`ExitStatus::OutputQuotaExceeded`], and what it
/// wrote is removed.
///
/// What counts: the apparent size of every regular file (a sparse file counts for its full
/// length, as it would in the archive), every file and directory under the root, the length
/// in bytes of every path relative to the root, and its number of components.
///
/// [`ExitStatus::OutputQuotaExceeded`]: super::ExitStatus::OutputQuotaExceeded
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutputQuota {
    /// The most bytes of file content, all files together.
    pub max_bytes: u64,
    /// The most entries, files and directories together.
    pub max_entries: u64,
    /// The longest path relative to the root, in bytes.
    pub max_path_bytes: usize,
    /// The most components of a path relative to the root.
    pub max_depth: usize,
}

impl OutputQuota {
    /// The most bytes a tar archive spends on one entry besides its content: its header, the
    /// padding of its content to a block, and a GNU long-name record for a path of up to the
    /// store's longest path (one header and three blocks of name).
    pub const TAR_OVERHEAD_PER_ENTRY: u64 = 512 + 511 + 512 + 1536;
    /// The end-of-archive blocks of a tar archive.
    pub const TAR_END: u64 = 1024;

    /// The quota matching what a result store with `limits` accepts: its entry count and path
    /// length, and as many content bytes as leave room, within both its content and body
    /// limits, for the tar overhead of that many entries.
    pub fn for_store(limits: &UploadLimits) -> Self {
        let entries = limits.archive.max_entries as u64;
        let overhead = entries.saturating_mul(Self::TAR_OVERHEAD_PER_ENTRY) + Self::TAR_END;
        let max_bytes =
            limits.archive.max_content_bytes.min(limits.max_body_bytes.saturating_sub(overhead));
        let max_path_bytes = limits.archive.max_path_bytes;
        Self {
            max_bytes,
            max_entries: entries,
            max_path_bytes,
            // Every component takes at least two bytes of the path (a name and a slash).
            max_depth: max_path_bytes.div_ceil(2),
        }
    }

    /// Sets the most bytes of file content.
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Sets the most entries.
    #[must_use]
    pub fn with_max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// Sets the longest path, in bytes.
    #[must_use]
    pub fn with_max_path_bytes(mut self, max_path_bytes: usize) -> Self {
        self.max_path_bytes = max_path_bytes;
        self
    }

    /// Sets the most path components.
    #[must_use]
    pub fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }
}

impl Default for OutputQuota {
    /// The quota for the result store's default [`UploadLimits`] (64 MiB bodies, 64 MiB of
    /// content, 10,000 entries, 1,024-byte paths): about 34.7 MiB of content, 10,000 entries,
    /// 1,024-byte paths, 512 components.
    fn default() -> Self {
        Self::for_store(&UploadLimits::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_module_and_env_values() {
        let spec = ExecSpec::new(vec![0u8; 1000], "/in", "/out")
            .with_env("IEXEC_REQUESTER_SECRET_1", "hunter2");
        let shown = format!("{spec:?}");
        assert!(shown.contains("module_len: 1000"), "{shown}");
        assert!(shown.contains("IEXEC_REQUESTER_SECRET_1"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn limits_for_max_time() {
        let limits = Limits::for_max_time(Duration::from_secs(300));
        assert_eq!(limits.fuel, 300 * Limits::REFERENCE_FUEL_PER_SECOND);
        assert_eq!(limits.timeout, Duration::from_secs(630));
        assert_eq!(limits.memory_bytes, Limits::default().memory_bytes);
        assert_eq!(Limits::for_max_time(Duration::MAX).fuel, u64::MAX);
    }
}
