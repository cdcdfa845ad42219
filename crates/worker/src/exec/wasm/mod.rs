//! The WebAssembly backend: [`WasmExecutor`], wasmtime configured for deterministic execution.

mod capture;
mod determinism;
mod disk_cache;
mod quota;
mod sleep;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use tracing::{Instrument, debug, info_span, warn};
use wasmtime::{
    Config, Engine, ExternType, InstancePre, Linker, Module, OptLevel, ResourceLimiter, Store,
    Trap, WasmFeatures,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use self::capture::CaptureStream;
use self::determinism::{FrozenMonotonicClock, FrozenWallClock, SeededRng, insecure_seed};
use self::disk_cache::{DiskCache, Lookup};
use self::quota::OutputMeter;
use super::{
    ARGV0, ExecError, ExecFuture, ExecOutcome, ExecSpec, Executor, ExitStatus, GUEST_APP, GUEST_IN,
    GUEST_OUT, GUEST_PYTHON_LIB, PYTHON_ARGV0, PythonLaunch, Result, TrapKind,
};

/// Fuel burnt between two yields to the async runtime: a few milliseconds of computation, so
/// the timeout can fire and other tasks run while an app computes.
const FUEL_YIELD_INTERVAL: u64 = 10_000_000;
/// The most native stack WebAssembly code may use before it traps with a stack overflow.
const MAX_WASM_STACK: usize = 1 << 20;
/// The most elements a table may have.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;
/// How many compiled modules [`WasmExecutor::new`] keeps.
const DEFAULT_CACHE_CAPACITY: usize = 32;

/// The sha256 of a module: its app checksum, and the key of the compiled-module cache.
pub fn module_sha256(module: &[u8]) -> [u8; 32] {
    Sha256::digest(module).into()
}

/// Runs WebAssembly apps (WASI preview 1 commands) in a deterministic sandbox: see the
/// [module documentation](super) for what the sandbox guarantees.
///
/// One wasmtime engine is shared by every run, and compiled modules are cached by their sha256
/// (compiling is the slow part): in memory, and on disk with
/// [`with_module_cache`](Self::with_module_cache); clones share the engine and the caches. The app runs on the
/// calling task, yielding to the runtime every few milliseconds of computation; compiling runs
/// on tokio's blocking pool. Needs a tokio runtime with the time driver enabled.
#[derive(Clone)]
pub struct WasmExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<Sandbox>,
    cache: Mutex<ModuleCache>,
    disk: Option<DiskCache>,
    disk_stats: Mutex<DiskCacheStats>,
}

/// What the disk cache of compiled modules answered since the executor was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiskCacheStats {
    /// Modules loaded from a file instead of compiled.
    pub hits: u64,
    /// Modules with no file yet: compiled, then written.
    pub misses: u64,
    /// Files that failed a check (owner, mode, links, checksum, engine): deleted, and the
    /// module compiled and written again.
    pub refused: u64,
}

/// The per-run state of a store.
struct Sandbox {
    wasi: WasiP1Ctx,
    limiter: MemoryLimiter,
    meter: OutputMeter,
    /// The frozen clock, in nanoseconds since the Unix epoch.
    clock_ns: u64,
}

impl std::fmt::Debug for WasmExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmExecutor")
            .field("cached_modules", &self.cached_modules())
            .finish_non_exhaustive()
    }
}

impl WasmExecutor {
    /// An executor keeping up to 32 compiled modules.
    ///
    /// # Errors
    ///
    /// [`ExecError::Engine`] if wasmtime cannot be set up on this host.
    pub fn new() -> Result<Self> {
        Self::with_cache_capacity(DEFAULT_CACHE_CAPACITY)
    }

    /// An executor keeping up to `capacity` compiled modules (at least one); the least
    /// recently used one goes first.
    ///
    /// # Errors
    ///
    /// [`ExecError::Engine`] if wasmtime cannot be set up on this host.
    pub fn with_cache_capacity(capacity: usize) -> Result<Self> {
        Self::build(capacity, None)
    }

    /// An executor keeping up to `capacity` compiled modules in memory and every compiled
    /// module in the folder `dir` (created `0700` if missing), so another process of this user
    /// with the same engine finds them compiled. A file of the folder is used only if it is
    /// exactly as this executor wrote it; anything else is deleted and compiled again.
    ///
    /// # Errors
    ///
    /// [`ExecError::ModuleCache`] if `dir` cannot be created, is a link, is another user's or
    /// is open to others; [`ExecError::Engine`] if wasmtime cannot be set up on this host.
    pub fn with_module_cache(capacity: usize, dir: impl Into<PathBuf>) -> Result<Self> {
        Self::build(capacity, Some(dir.into()))
    }

    fn build(capacity: usize, disk: Option<PathBuf>) -> Result<Self> {
        let engine = Engine::new(&engine_config())
            .map_err(|e| ExecError::Engine { reason: format!("{e:#}") })?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |sandbox: &mut Sandbox| {
            &mut sandbox.wasi
        })
        .map_err(|e| ExecError::Engine { reason: format!("cannot link WASI: {e:#}") })?;
        quota::add_to_linker(&mut linker).map_err(|e| ExecError::Engine {
            reason: format!("cannot link the output quota: {e:#}"),
        })?;
        sleep::add_to_linker(&mut linker)
            .map_err(|e| ExecError::Engine { reason: format!("cannot link poll_oneoff: {e:#}") })?;
        // The Python runtime imports a door to its embedder; a poco app has no embedder to
        // talk to, so every call answers "no host" (-1).
        linker
            .func_wrap("host", "call", |_: i32, _: i32, _: i32, _: i32| -> i32 { -1 })
            .map_err(|e| ExecError::Engine { reason: format!("cannot link host::call: {e:#}") })?;
        let disk = disk.map(|dir| DiskCache::open(&dir, &engine)).transpose()?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache: Mutex::new(ModuleCache::new(capacity)),
                disk,
                disk_stats: Mutex::default(),
            }),
        })
    }

    /// What the disk cache answered so far (all zero without one).
    pub fn disk_cache_stats(&self) -> DiskCacheStats {
        *self.inner.disk_stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many compiled modules the cache holds.
    pub fn cached_modules(&self) -> usize {
        self.cache().entries.len()
    }

    /// Compiles `module` into the cache without running it, for instance while the dataset
    /// downloads. Returns how long compiling took, or `None` if the module was already cached.
    ///
    /// # Errors
    ///
    /// [`ExecError::Compile`], [`ExecError::MissingStart`] or [`ExecError::Link`] for a module
    /// that cannot run here.
    pub async fn precompile(&self, module: &[u8]) -> Result<Option<Duration>> {
        let module: Arc<[u8]> = Arc::from(module);
        let (_, _, compile_time) = self.compiled(&module).await?;
        Ok(compile_time)
    }

    /// Runs the task `spec` describes. See [`Executor::execute`].
    ///
    /// # Errors
    ///
    /// See [`ExecError`]: an invalid module, argument or environment variable, a directory that
    /// cannot be mounted, or an internal failure.
    pub async fn run(&self, spec: ExecSpec) -> Result<ExecOutcome> {
        let span = info_span!(
            target: "poco_worker::exec",
            "wasm_exec",
            module_len = spec.module.len(),
            fuel = spec.limits.fuel,
        );
        self.run_in_span(spec).instrument(span).await
    }

    async fn run_in_span(&self, spec: ExecSpec) -> Result<ExecOutcome> {
        let env = guest_env(&spec.env, spec.python.is_some())?;
        if spec.args.iter().any(|arg| arg.contains('\0')) {
            return Err(ExecError::InvalidArgs(poco_primitives::args::ArgsError {
                reason: "an argument contains a NUL byte".to_owned(),
            }));
        }
        check_dir("input directory", &spec.input_dir)?;
        check_dir("output directory", &spec.output_dir)?;
        if let Some(launch) = &spec.python {
            check_dir("Python standard library", &launch.stdlib_dir)?;
            check_dir("app code directory", &launch.app_dir)?;
            check_entry(&launch.entry)?;
        }
        let (compiled, module_sha256, compile_time) = self.compiled(&spec.module).await?;
        let Compiled { pre, entry } = compiled;
        match (entry, spec.python.is_some()) {
            (Entry::Command, false) | (Entry::Reactor, true) => {}
            (Entry::Reactor, false) => return Err(ExecError::MissingStart),
            (Entry::Command, true) => {
                return Err(ExecError::Link {
                    reason: "a Python runtime must export `run` (a WASI reactor)".to_owned(),
                });
            }
        }
        let quota = spec.limits.files;
        let start = match quota::measure(&spec.output_dir, &quota) {
            Ok(Ok(usage)) => usage,
            Ok(Err(exceeded)) => {
                return Err(ExecError::Io {
                    what: "output directory",
                    path: spec.output_dir.clone(),
                    source: io::Error::other(format!("it already {exceeded}")),
                });
            }
            Err(source) => {
                return Err(ExecError::Io {
                    what: "output directory",
                    path: spec.output_dir.clone(),
                    source,
                });
            }
        };

        let stdout = CaptureStream::new(spec.limits.output_bytes);
        let stderr = CaptureStream::new(spec.limits.output_bytes);
        let wasi = wasi_ctx(&spec, &env, &stdout, &stderr)?;
        let memory_limit = usize::try_from(spec.limits.memory_bytes).unwrap_or(usize::MAX);
        let mut store = Store::new(
            &self.inner.engine,
            Sandbox {
                wasi,
                limiter: MemoryLimiter::new(memory_limit),
                meter: OutputMeter::new(quota, start),
                clock_ns: u64::try_from(spec.clock.as_nanos()).unwrap_or(u64::MAX),
            },
        );
        store.limiter(|sandbox| &mut sandbox.limiter);
        store.set_fuel(spec.limits.fuel).map_err(|e| internal(&e))?;
        store.fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL)).map_err(|e| internal(&e))?;

        let started = Instant::now();
        let run = async {
            let instance = pre.instantiate_async(&mut store).await?;
            match entry {
                Entry::Command => {
                    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
                    start.call_async(&mut store, ()).await
                }
                Entry::Reactor => {
                    if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
                        init.call_async(&mut store, ()).await?;
                    }
                    let run = instance.get_typed_func::<(), i32>(&mut store, "run")?;
                    match run.call_async(&mut store, ()).await? {
                        0 => Ok(()),
                        code => Err(wasmtime::Error::new(I32Exit(code))),
                    }
                }
            }
        };
        let result = tokio::time::timeout(spec.limits.timeout, run).await;
        let wall_time = started.elapsed();

        let fuel_left = store.get_fuel().unwrap_or(0);
        let memory_exhausted = store.data().limiter.exhausted;
        let peak_memory_bytes = store.data().limiter.peak as u64;
        let stopped_at_quota = store.data().meter.exceeded();
        let mut status = match (result, stopped_at_quota) {
            (_, Some(exceeded)) => ExitStatus::OutputQuotaExceeded(exceeded),
            (Err(_elapsed), None) => ExitStatus::TimedOut,
            (Ok(Ok(())), None) => ExitStatus::Exited(0),
            (Ok(Err(error)), None) => classify(&error, memory_exhausted),
        };
        drop(store);
        if stopped_at_quota.is_none() && status != ExitStatus::TimedOut {
            // The second line: the tree as it is, whatever the calls did to it.
            match quota::measure(&spec.output_dir, &quota) {
                Ok(Ok(_)) => {}
                Ok(Err(exceeded)) => {
                    warn!(target: "poco_worker::exec", %exceeded, "the app's output is over its quota");
                    status = ExitStatus::OutputQuotaExceeded(exceeded);
                }
                Err(error) => {
                    return Err(internal_io("cannot measure the output directory", &error));
                }
            }
        }
        if matches!(status, ExitStatus::OutputQuotaExceeded(_)) {
            quota::clear(&spec.output_dir)
                .map_err(|error| internal_io("cannot clear the output directory", &error))?;
        }
        let fuel_consumed = spec.limits.fuel.saturating_sub(fuel_left);
        debug!(
            target: "poco_worker::exec",
            %status,
            fuel_consumed,
            wall_time_ms = wall_time.as_millis(),
            "app finished"
        );
        Ok(ExecOutcome {
            status,
            stdout: stdout.snapshot(),
            stderr: stderr.snapshot(),
            fuel_consumed,
            wall_time,
            compile_time,
            module_sha256,
            peak_memory_bytes,
        })
    }

    fn cache(&self) -> MutexGuard<'_, ModuleCache> {
        // The cache stays consistent even if a holder panicked: every update is one call.
        self.inner.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The module ready to instantiate, from the cache or compiled now (with the time it took).
    async fn compiled(&self, module: &Arc<[u8]>) -> Result<(Compiled, [u8; 32], Option<Duration>)> {
        let digest = module_sha256(module);
        let cell = self.cache().slot(digest);
        let mut compile_time = None;
        let result = cell
            .get_or_try_init(|| async {
                let started = Instant::now();
                let pre = self.compile(Arc::clone(module), digest).await?;
                let elapsed = started.elapsed();
                debug!(
                    target: "poco_worker::exec",
                    sha256 = %hex::encode(digest),
                    compile_ms = elapsed.as_millis(),
                    "module compiled"
                );
                compile_time = Some(elapsed);
                Ok::<_, ExecError>(pre)
            })
            .await;
        match result {
            Ok(pre) => Ok((pre.clone(), digest, compile_time)),
            Err(error) => {
                self.cache().forget_failed(&digest);
                Err(error)
            }
        }
    }

    /// The module compiled, or loaded from the disk cache (and written there once compiled).
    async fn compile(&self, bytes: Arc<[u8]>, digest: [u8; 32]) -> Result<Compiled> {
        let inner = Arc::clone(&self.inner);
        let module = tokio::task::spawn_blocking(move || {
            let disk = inner.disk.as_ref();
            // Held while compiling: another process of this machine that needs the module
            // waits, then loads what this one wrote.
            let mut _compiling = None;
            if let Some(disk) = disk {
                // The first answer is the one counted, unless waiting for another compile
                // turned a miss into a hit.
                let first = disk.load(&inner.engine, &digest);
                let refused = matches!(first, Lookup::Refused);
                let found = match first {
                    Lookup::Hit(module) => Lookup::Hit(module),
                    _ => {
                        _compiling = disk.compile_lock(&digest);
                        disk.load(&inner.engine, &digest)
                    }
                };
                match found {
                    Lookup::Hit(module) if !refused => {
                        inner.count_disk(|stats| stats.hits += 1);
                        return Ok(module);
                    }
                    Lookup::Hit(module) => {
                        inner.count_disk(|stats| stats.refused += 1);
                        return Ok(module);
                    }
                    _ if refused => inner.count_disk(|stats| stats.refused += 1),
                    _ => inner.count_disk(|stats| stats.misses += 1),
                }
            }
            let module = Module::new(&inner.engine, &bytes)?;
            if let Some(disk) = disk {
                disk.store(&module, &digest);
            }
            Ok::<_, wasmtime::Error>(module)
        })
        .await
        .map_err(|e| ExecError::Internal { reason: format!("the compile task failed: {e}") })?
        .map_err(|e| ExecError::Compile { reason: format!("{e:#}") })?;
        let entry = Entry::of(&module)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&module)
            .map_err(|e| ExecError::Link { reason: format!("{e:#}") })?;
        Ok(Compiled { pre, entry })
    }
}

impl Executor for WasmExecutor {
    fn backend(&self) -> &'static str {
        "wasm"
    }

    fn execute(&self, spec: ExecSpec) -> ExecFuture<'_> {
        Box::pin(self.run(spec))
    }
}

/// A compiled module, ready to instantiate, and how to start it.
#[derive(Clone)]
struct Compiled {
    pre: InstancePre<Sandbox>,
    entry: Entry,
}

/// How a module is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// A WASI command: `_start`, and the exit code from `proc_exit` (0 if it returns).
    Command,
    /// A WASI reactor (the Python runtime): `_initialize` if exported, then `run`, whose
    /// result is the exit code.
    Reactor,
}

impl Entry {
    fn of(module: &Module) -> Result<Self> {
        let exports = |name, results: &[bool]| {
            matches!(
                module.get_export(name),
                Some(ExternType::Func(ty)) if ty.params().len() == 0
                    && ty.results().len() == results.len()
            )
        };
        if exports("_start", &[]) {
            Ok(Self::Command)
        } else if exports("run", &[true]) {
            Ok(Self::Reactor)
        } else {
            Err(ExecError::MissingStart)
        }
    }
}

/// The engine configuration: fuel metering, canonical NaNs, no threads, no relaxed SIMD;
/// exceptions (which the Python runtime's C++ libraries use) are on.
fn engine_config() -> Config {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .cranelift_nan_canonicalization(true)
        .cranelift_opt_level(OptLevel::Speed)
        .wasm_relaxed_simd(false)
        .relaxed_simd_deterministic(true)
        .wasm_exceptions(true)
        // Stated even where the crate features already leave them out.
        .wasm_features(WasmFeatures::THREADS, false)
        .wasm_features(WasmFeatures::SHARED_EVERYTHING_THREADS, false)
        .max_wasm_stack(MAX_WASM_STACK);
    config
}

/// What the Python runtime runs first: the runtime starts in isolated mode (no script folder nor
/// `PYTHONPATH` on `sys.path`), so this puts the app's folder on the path, gives the script
/// the `argv` it expects (`/app/<entry>` then the task's arguments) and runs it as `__main__`.
fn python_prelude() -> String {
    format!(
        "import sys, runpy; sys.argv = sys.argv[1:]; sys.path.insert(0, {GUEST_APP:?}); \
         runpy.run_path(sys.argv[0], run_name='__main__')"
    )
}

/// The app's environment: `IEXEC_IN`, `IEXEC_OUT` and the caller's `IEXEC_*`, in name order;
/// for a Python app, also the variables that fix the interpreter's behaviour.
fn guest_env(extra: &BTreeMap<String, String>, python: bool) -> Result<Vec<(String, String)>> {
    let mut env = BTreeMap::new();
    for (name, value) in extra {
        let refuse = |reason| Err(ExecError::InvalidEnv { name: name.clone(), reason });
        if !name.starts_with("IEXEC_") {
            return refuse("only IEXEC_* variables are given to apps");
        }
        if name == "IEXEC_IN" || name == "IEXEC_OUT" {
            return refuse("set by the sandbox to the mount points");
        }
        if name.contains(['=', '\0']) {
            return refuse("a name cannot contain '=' or a NUL byte");
        }
        if value.contains('\0') {
            return refuse("a value cannot contain a NUL byte");
        }
        env.insert(name.clone(), value.clone());
    }
    env.insert("IEXEC_IN".to_owned(), GUEST_IN.to_owned());
    env.insert("IEXEC_OUT".to_owned(), GUEST_OUT.to_owned());
    if python {
        // The same string hashes (and so set and dict orders) for every task and worker.
        env.insert("PYTHONHASHSEED".to_owned(), "0".to_owned());
        env.insert("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned());
        // zoneinfo reads the time zones packed in the standard library, never the host's.
        env.insert("PYTHONTZPATH".to_owned(), String::new());
    }
    Ok(env.into_iter().collect())
}

/// A Python app's entry: a relative path of plain components, without `..`.
fn check_entry(entry: &str) -> Result<()> {
    let plain = !entry.is_empty()
        && !entry.contains('\0')
        && entry.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
    if plain {
        Ok(())
    } else {
        Err(ExecError::InvalidArgs(poco_primitives::args::ArgsError {
            reason: format!("the Python entry {entry:?} is not a relative path inside the app"),
        }))
    }
}

fn check_dir(what: &'static str, path: &Path) -> Result<()> {
    let io_error = |source| ExecError::Io { what, path: path.to_owned(), source };
    let metadata = std::fs::metadata(path).map_err(io_error)?;
    if !metadata.is_dir() {
        return Err(io_error(io::Error::new(io::ErrorKind::NotADirectory, "not a directory")));
    }
    Ok(())
}

fn wasi_ctx(
    spec: &ExecSpec,
    env: &[(String, String)],
    stdout: &CaptureStream,
    stderr: &CaptureStream,
) -> Result<WasiP1Ctx> {
    let clock_ns = u64::try_from(spec.clock.as_nanos()).unwrap_or(u64::MAX);
    let mut builder = WasiCtxBuilder::new();
    match &spec.python {
        None => builder.arg(ARGV0),
        Some(launch) => builder
            .arg(PYTHON_ARGV0)
            .arg("-c")
            .arg(python_prelude())
            .arg(format!("{GUEST_APP}/{}", launch.entry)),
    };
    builder
        .args(&spec.args)
        .envs(env)
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .wall_clock(FrozenWallClock(spec.clock))
        .monotonic_clock(FrozenMonotonicClock(clock_ns))
        .secure_random(SeededRng::new(&spec.seed, "poco-wasm/random"))
        .insecure_random(SeededRng::new(&spec.seed, "poco-wasm/insecure-random"))
        .insecure_random_seed(insecure_seed(&spec.seed))
        // File calls run on the app's own thread instead of a round trip through tokio's
        // blocking pool each: an app reading or writing in small pieces ran up to 30 times
        // slower than natively (the `exec` benchmark's wordcount). The mounts are local
        // folders of the worker, so a call blocks for the time of a local disk access.
        .allow_blocking_current_thread(true)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    let mut mounts = vec![
        ("input directory", &spec.input_dir, GUEST_IN, FsPerms::ReadOnly),
        ("output directory", &spec.output_dir, GUEST_OUT, FsPerms::ReadWrite),
    ];
    if let Some(PythonLaunch { stdlib_dir, app_dir, .. }) = &spec.python {
        mounts.push(("Python standard library", stdlib_dir, GUEST_PYTHON_LIB, FsPerms::ReadOnly));
        mounts.push(("app code directory", app_dir, GUEST_APP, FsPerms::ReadOnly));
    }
    for (what, host, guest, perms) in mounts {
        builder.preopened_dir(host, guest, perms).map_err(|e| ExecError::Io {
            what,
            path: host.clone(),
            source: io::Error::other(format!("{e:#}")),
        })?;
    }
    Ok(builder.build_p1())
}

/// How a run that returned an error ended.
fn classify(error: &wasmtime::Error, memory_exhausted: bool) -> ExitStatus {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return if exit.0 != 0 && memory_exhausted {
            ExitStatus::OutOfMemory
        } else {
            ExitStatus::Exited(exit.0)
        };
    }
    let trap = error.downcast_ref::<Trap>();
    if trap == Some(&Trap::OutOfFuel) {
        return ExitStatus::OutOfFuel;
    }
    if memory_exhausted {
        return ExitStatus::OutOfMemory;
    }
    ExitStatus::Trapped(match trap {
        Some(trap) => trap_kind(*trap),
        None => TrapKind::Host(format!("{error:#}")),
    })
}

fn trap_kind(trap: Trap) -> TrapKind {
    match trap {
        Trap::UnreachableCodeReached => TrapKind::Unreachable,
        Trap::MemoryOutOfBounds => TrapKind::MemoryOutOfBounds,
        Trap::StackOverflow => TrapKind::StackOverflow,
        Trap::IntegerDivisionByZero => TrapKind::IntegerDivisionByZero,
        Trap::IntegerOverflow => TrapKind::IntegerOverflow,
        Trap::BadConversionToInteger => TrapKind::BadConversionToInteger,
        Trap::IndirectCallToNull => TrapKind::IndirectCallToNull,
        Trap::BadSignature => TrapKind::BadSignature,
        Trap::TableOutOfBounds => TrapKind::TableOutOfBounds,
        Trap::HeapMisaligned => TrapKind::HeapMisaligned,
        other => TrapKind::Other(other.to_string()),
    }
}

fn internal_io(what: &str, error: &io::Error) -> ExecError {
    ExecError::Internal { reason: format!("{what}: {error}") }
}

fn internal(error: &wasmtime::Error) -> ExecError {
    ExecError::Internal { reason: format!("{error:#}") }
}

/// Denies memory growth beyond the limit, and remembers that it did.
struct MemoryLimiter {
    limit: usize,
    exhausted: bool,
    /// The largest memory granted.
    peak: usize,
}

impl MemoryLimiter {
    fn new(limit: usize) -> Self {
        Self { limit, exhausted: false, peak: 0 }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exhausted = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}

impl Inner {
    fn count_disk(&self, update: impl FnOnce(&mut DiskCacheStats)) {
        update(&mut self.disk_stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    }
}

/// Compiled modules by sha256, least recently used evicted first. Each slot is a cell that the
/// first user fills, so concurrent runs of a new module compile it once.
struct ModuleCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<[u8; 32], CacheSlot>,
}

struct CacheSlot {
    cell: Arc<OnceCell<Compiled>>,
    last_used: u64,
}

impl ModuleCache {
    fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), tick: 0, entries: HashMap::new() }
    }

    /// The slot of `digest`, created if needed, marked as the most recently used.
    fn slot(&mut self, digest: [u8; 32]) -> Arc<OnceCell<Compiled>> {
        self.tick += 1;
        let tick = self.tick;
        let slot = self
            .entries
            .entry(digest)
            .or_insert_with(|| CacheSlot { cell: Arc::new(OnceCell::new()), last_used: tick });
        slot.last_used = tick;
        let cell = Arc::clone(&slot.cell);
        while self.entries.len() > self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, slot)| slot.last_used)
                .map(|(digest, _)| *digest);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        cell
    }

    /// Drops the slot of a module that failed to compile, unless another run filled it.
    fn forget_failed(&mut self, digest: &[u8; 32]) {
        if self.entries.get(digest).is_some_and(|slot| !slot.cell.initialized()) {
            self.entries.remove(digest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_is_sorted_and_restricted() {
        let mut extra = BTreeMap::new();
        extra.insert("IEXEC_TASK_ID".to_owned(), "0x01".to_owned());
        extra.insert("IEXEC_DATASET_FILENAME".to_owned(), "data.csv".to_owned());
        let env = guest_env(&extra, false).unwrap();
        let names: Vec<_> = env.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["IEXEC_DATASET_FILENAME", "IEXEC_IN", "IEXEC_OUT", "IEXEC_TASK_ID"]);

        for (name, value) in
            [("HOME", "/root"), ("IEXEC_IN", "/elsewhere"), ("IEXEC_A=B", "x"), ("IEXEC_X", "a\0b")]
        {
            let mut extra = BTreeMap::new();
            extra.insert(name.to_owned(), value.to_owned());
            let err = guest_env(&extra, false).unwrap_err();
            assert!(matches!(&err, ExecError::InvalidEnv { name: n, .. } if n == name), "{err}");
        }
    }

    #[test]
    fn cache_evicts_the_least_recently_used() {
        let mut cache = ModuleCache::new(2);
        cache.slot([1; 32]);
        cache.slot([2; 32]);
        cache.slot([1; 32]);
        cache.slot([3; 32]);
        let mut kept: Vec<_> = cache.entries.keys().map(|digest| digest[0]).collect();
        kept.sort_unstable();
        assert_eq!(kept, [1, 3]);
        cache.forget_failed(&[3; 32]);
        assert_eq!(cache.entries.len(), 1);
    }
}
