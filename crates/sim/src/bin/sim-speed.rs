//! How many tasks a second the simulator's in-process EVM runs: the reference scenario
//! (`poco_sim::scenario`) with a deal of N tasks (default 2,000), each task's every
//! transaction executed by the real contracts. Run it in release:
//! `cargo run --release -p poco-sim --bin sim-speed -- 2000`.

use std::time::Instant;

use poco_sim::{InProcess, scenario};

fn main() {
    const USAGE: &str = "usage: sim-speed [TASKS]  (the first deal's tasks; 2000 by default)";
    let tasks: u64 = match std::env::args().nth(1).as_deref() {
        None => 2_000,
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return;
        }
        Some(arg) => match arg.parse() {
            Ok(tasks) if tasks > 0 => tasks,
            _ => {
                eprintln!("not a positive number of tasks: {arg:?}\n{USAGE}");
                std::process::exit(2);
            }
        },
    };
    let started = Instant::now();
    let trace = match scenario::run(InProcess::new(), tasks) {
        Ok(trace) => trace,
        Err(error) => {
            eprintln!("the scenario failed: {error}");
            std::process::exit(1);
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let all = trace.statuses.len();
    let gas: u64 = trace.steps.iter().map(|(_, gas)| gas).sum();
    println!(
        "{all} tasks ({} transactions, {:.1} Mgas) in {elapsed:.2} s: {:.0} tasks/s, {:.0} \
         transactions/s, {:.1} Mgas/s ({}; the protocol deployed anew, orders signed and \
         checked, every transaction run by the compiled contracts)",
        trace.steps.len(),
        gas as f64 / 1e6,
        all as f64 / elapsed,
        trace.steps.len() as f64 / elapsed,
        gas as f64 / 1e6 / elapsed,
        if cfg!(debug_assertions) { "debug build: use --release" } else { "release build" },
    );
}
