//! `poco`: the command line of the poco marketplace, one binary with a subcommand per role.

fn main() {
    println!("poco {}", env!("CARGO_PKG_VERSION"));
}
