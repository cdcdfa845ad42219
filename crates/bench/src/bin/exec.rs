//! Execution benchmark: the compute-bound example app (`apps/pi`, a Monte-Carlo estimate of pi)
//! run in the WebAssembly sandbox, against the same C source built natively with the system's
//! C compiler at the same optimisation level.
//!
//! Run with `cargo run --release -p poco-bench --bin exec [-- --samples N --runs N --seed N]`.
//! Prints the machine, the sizes, the module compile time, the median and p90 of the runs on
//! each side and their ratio, and the fuel burnt per second (the figure behind
//! `Limits::REFERENCE_FUEL_PER_SECOND`). Without a C compiler (`$CC`, `cc`, `gcc` or `clang`)
//! the native side is skipped, and said so.

use poco_bench::percentile;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eyre::{Result, WrapErr, bail, eyre};
use poco_worker::exec::{ExecSpec, Limits, WasmExecutor, module_sha256};

struct Options {
    samples: u64,
    runs: usize,
    seed: u64,
    apps_dir: PathBuf,
}

impl Options {
    fn parse() -> Result<Self> {
        let mut options = Self {
            samples: 20_000_000,
            runs: 11,
            seed: 42,
            apps_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../apps"),
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| eyre!("{flag} needs a value"));
            match flag.as_str() {
                "--samples" => options.samples = value()?.parse().wrap_err("--samples")?,
                "--runs" => options.runs = value()?.parse().wrap_err("--runs")?,
                "--seed" => options.seed = value()?.parse().wrap_err("--seed")?,
                "--apps-dir" => options.apps_dir = PathBuf::from(value()?),
                "-h" | "--help" => {
                    println!(
                        "usage: exec [--samples N (20000000)] [--runs N (11)] [--seed N (42)] \
                         [--apps-dir DIR]"
                    );
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other} (try --help)"),
            }
        }
        if options.runs == 0 || options.samples == 0 {
            bail!("--runs and --samples must be positive");
        }
        Ok(options)
    }
}

/// Median and p90 (nearest rank) of a set of durations.
struct Summary {
    median: Duration,
    p90: Duration,
    min: Duration,
}

impl Summary {
    fn of(times: &[Duration]) -> Self {
        let mut sorted = times.to_vec();
        sorted.sort_unstable();
        Self { median: percentile(&sorted, 0.5), p90: percentile(&sorted, 0.9), min: sorted[0] }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The first C compiler found: `$CC`, then `cc`, `gcc`, `clang`.
fn find_c_compiler() -> Option<String> {
    let candidates =
        std::env::var("CC").ok().into_iter().chain(["cc", "gcc", "clang"].map(str::to_owned));
    candidates
        .into_iter()
        .find(|cc| Command::new(cc).arg("--version").output().is_ok_and(|out| out.status.success()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let options = Options::parse()?;
    let source = options.apps_dir.join("pi/pi.c");
    let module_path = options.apps_dir.join("pi/pi.wasm");
    let module: Arc<[u8]> = std::fs::read(&module_path)
        .wrap_err_with(|| format!("reading {}", module_path.display()))?
        .into();
    let args = vec![options.samples.to_string(), options.seed.to_string()];
    let work = tempfile::tempdir()?;
    let input = work.path().join("in");
    std::fs::create_dir(&input)?;

    println!("exec benchmark: apps/pi (Monte-Carlo pi), WebAssembly sandbox vs native");
    println!(
        "machine: {} logical CPUs, {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model()
    );
    println!(
        "sizes: {} samples (seed {}), {} runs per side after one warm-up run",
        options.samples, options.seed, options.runs
    );
    println!("module: {} bytes, sha256 {}", module.len(), hex(&module_sha256(&module)));

    // WebAssembly.
    let executor = WasmExecutor::new()?;
    let started = Instant::now();
    executor.precompile(&module).await?;
    let compile_time = started.elapsed();
    println!("wasm compile (cranelift, once, then cached): {}", ms(compile_time));
    let limits = Limits::default().with_fuel(u64::MAX / 2);
    let mut wasm_times = Vec::new();
    let mut fuel = 0;
    let mut wasm_result = String::new();
    for run in 0..=options.runs {
        let output = work.path().join(format!("wasm-out-{run}"));
        std::fs::create_dir(&output)?;
        let spec = ExecSpec::new(Arc::clone(&module), &input, &output)
            .with_args(args.clone())
            .with_limits(limits);
        let outcome = executor.run(spec).await?;
        if !outcome.status.success() {
            bail!("the wasm run failed: {}: {}", outcome.status, outcome.stderr.to_string_lossy());
        }
        if run > 0 {
            wasm_times.push(outcome.wall_time);
        }
        fuel = outcome.fuel_consumed;
        wasm_result = std::fs::read_to_string(output.join("result.txt"))?;
    }
    let wasm = Summary::of(&wasm_times);
    println!(
        "wasm   (instantiate + run): median {}, p90 {}, min {}",
        ms(wasm.median),
        ms(wasm.p90),
        ms(wasm.min)
    );
    println!(
        "fuel: {} per run, {:.2e} per second at the median",
        fuel,
        fuel as f64 / wasm.median.as_secs_f64()
    );

    // Native.
    let Some(cc) = find_c_compiler() else {
        println!("native: skipped: no C compiler found ($CC, cc, gcc, clang)");
        return Ok(());
    };
    let version = Command::new(&cc).arg("--version").output()?;
    let version = String::from_utf8_lossy(&version.stdout);
    let binary = work.path().join("pi-native");
    let started = Instant::now();
    let status = Command::new(&cc)
        .args(["-O2", "-std=gnu11", "-o"])
        .arg(&binary)
        .arg(&source)
        .arg("-lm")
        .status()
        .wrap_err_with(|| format!("running {cc}"))?;
    if !status.success() {
        bail!("{cc} could not build {}", source.display());
    }
    println!(
        "native compiler: {} (-O2), build {}",
        version.lines().next().unwrap_or(&cc),
        ms(started.elapsed())
    );
    let mut native_times = Vec::new();
    let mut native_result = String::new();
    for run in 0..=options.runs {
        let output = work.path().join(format!("native-out-{run}"));
        std::fs::create_dir(&output)?;
        let started = Instant::now();
        let out = Command::new(&binary)
            .args(&args)
            .env_clear()
            .env("IEXEC_IN", &input)
            .env("IEXEC_OUT", &output)
            .output()?;
        let elapsed = started.elapsed();
        if !out.status.success() {
            bail!("the native run failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        if run > 0 {
            native_times.push(elapsed);
        }
        native_result = std::fs::read_to_string(output.join("result.txt"))?;
    }
    let native = Summary::of(&native_times);
    println!(
        "native (process spawn + run): median {}, p90 {}, min {}",
        ms(native.median),
        ms(native.p90),
        ms(native.min)
    );
    println!(
        "ratio wasm / native: median {:.2}x, p90 {:.2}x",
        wasm.median.as_secs_f64() / native.median.as_secs_f64(),
        wasm.p90.as_secs_f64() / native.p90.as_secs_f64()
    );
    println!(
        "results identical (wasm vs native result.txt): {}",
        if wasm_result == native_result { "yes" } else { "NO" }
    );
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
