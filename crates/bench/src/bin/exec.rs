//! Execution benchmark: the compute-bound example app (`apps/pi`, a Monte-Carlo estimate of pi)
//! run in the WebAssembly sandbox, against the same C source built natively with the system's
//! C compiler at the same optimisation level.
//!
//! Run with `cargo run --release -p poco-bench --bin exec [-- --samples N --runs N --seed N]`.
//! Prints the machine, the sizes, the module compile time, the median and p90 of the runs on
//! each side and their ratio, and the fuel burnt per second (the figure behind
//! `Limits::REFERENCE_FUEL_PER_SECOND`). Without a C compiler (`$CC`, `cc`, `gcc` or `clang`)
//! the native side is skipped, and said so.

use poco_bench::{cpu_model, percentile};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, builder::RangedU64ValueParser};
use eyre::{Result, WrapErr, bail};
use poco_worker::exec::{ExecSpec, Limits, WasmExecutor, module_sha256};

/// The pi app in the WebAssembly sandbox against the same C source built natively.
#[derive(Debug, Parser)]
struct Options {
    /// Monte-Carlo samples of each run.
    #[arg(long, default_value_t = 20_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    samples: u64,
    /// Runs on each side.
    #[arg(long, default_value_t = 11, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    runs: usize,
    /// Seed of the app's generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where the example apps are.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../apps"))]
    apps_dir: PathBuf,
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
    let options = Options::parse();
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
