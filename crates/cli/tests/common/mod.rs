//! What the CLI tests share: running the built `poco` binary under a home of their own, its
//! JSON results and failures, and devnets stopped when dropped.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::{
    io::{BufRead, Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::Value;
use tempfile::TempDir;

/// The repository root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// Runs `poco --home <home> <args>` with the extra environment `env`.
pub(crate) fn poco_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_poco"));
    command.arg("--home").arg(home).args(args);
    test_environment(&mut command);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the poco binary runs")
}

/// Runs `poco --home <home> <args>` on a pseudo-terminal (through util-linux's `script`), as
/// in a person's terminal: returns all it wrote there, escape sequences included.
pub(crate) fn poco_in_terminal(home: &Path, args: &[&str]) -> String {
    let quote = |word: &str| format!("'{}'", word.replace('\'', r"'\''"));
    let mut line =
        vec![quote(env!("CARGO_BIN_EXE_poco")), "--home".into(), quote(home.to_str().unwrap())];
    line.extend(args.iter().map(|arg| quote(arg)));
    let mut command = Command::new("script");
    // -q no banner, -e the command's exit status, -f flush as written, -c the command.
    command
        .args(["-qefc", &line.join(" "), "/dev/null"])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR");
    test_environment(&mut command);
    let out = command.output().expect("util-linux's `script` runs (apt install util-linux)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "poco {args:?} in a terminal: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The environment of a test's `poco`: none of the caller's poco settings.
fn test_environment(command: &mut Command) {
    command
        .env_remove("POCO_WALLET")
        .env_remove("POCO_ACCOUNT")
        .env_remove("POCO_LOG")
        .env_remove("POCO_DEVNET_ACCOUNT")
        .env_remove("POCO_RPC_URL")
        .env_remove("POCO_MARKET_URL")
        .env_remove("POCO_SMS_URL")
        .env_remove("POCO_WALLET_PASSWORD")
        .env_remove("POCO_NETWORK")
        .env_remove("POCO_PRIVATE_KEY")
        // Compiled modules (the Python runtime takes a minute or more) shared by every test.
        .env("POCO_MODULE_CACHE", root().join("target/test-module-cache"))
        .current_dir(root());
}

/// Runs `poco --home <home> <args>`.
pub(crate) fn poco(home: &Path, args: &[&str]) -> Output {
    poco_env(home, args, &[])
}

/// Both output streams of a run, as text.
pub(crate) fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Runs a command that must succeed and returns its JSON result.
pub(crate) fn json(home: &Path, args: &[&str]) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let out = poco(home, &full);
    assert!(out.status.success(), "poco {args:?} failed: {}", text(&out));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Runs a command that must fail with `code`; returns its one error line.
pub(crate) fn failure(home: &Path, args: &[&str], code: i32) -> String {
    failure_with_cause(home, args, code).0
}

/// Runs a command that must fail with `code`; returns its one error line and the cause told
/// after it, if any.
pub(crate) fn failure_with_cause(
    home: &Path,
    args: &[&str],
    code: i32,
) -> (String, Option<String>) {
    let out = poco(home, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "poco {args:?}: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one clear message: {stderr}");
    let after = &stderr[stderr.find(errors[0]).unwrap() + errors[0].len()..];
    let cause = after.trim().strip_prefix("cause: ").map(str::to_owned);
    assert!(
        after.trim().is_empty() || (cause.is_some() && !after.trim().contains('\n')),
        "the message comes last, then its cause on one line: {stderr}"
    );
    assert!(!stderr.contains("panicked") && !stderr.contains("0x08c379a0"), "{stderr}");
    (errors[0].to_owned(), cause)
}

/// `who` followed by `args`.
pub(crate) fn with<'a>(who: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
    [who, args].concat()
}

/// A devnet under a temporary home, stopped when dropped.
pub(crate) struct DevnetHome {
    pub(crate) home: TempDir,
    /// What `devnet up` printed: its endpoints, deployment and accounts.
    pub(crate) info: Value,
}

impl DevnetHome {
    pub(crate) fn start(args: &[&str]) -> Self {
        let home = tempfile::tempdir().unwrap();
        let mut full = vec!["devnet", "up", "--detach"];
        full.extend_from_slice(args);
        let info = json(home.path(), &full);
        assert!(info["rpcUrl"].as_str().unwrap().starts_with("http://127.0.0.1:"));
        Self { home, info }
    }

    /// Calls the devnet's chain node directly (JSON-RPC over HTTP/1.1): what a test does to
    /// the chain that no poco command does, such as moving its clock.
    pub(crate) fn rpc(&self, method: &str, params: &Value) -> Value {
        rpc(self.info["rpcUrl"].as_str().unwrap(), method, params)
    }

    pub(crate) fn path(&self) -> &Path {
        self.home.path()
    }
}

impl Drop for DevnetHome {
    fn drop(&mut self) {
        let _ = poco(self.home.path(), &["devnet", "down"]);
    }
}

/// The pi app deployed by the devnet's app provider and sold by an app order of `volume`
/// tasks at no price; returns its address.
pub(crate) fn pi_on_sale(home: &Path, volume: &str) -> String {
    let provider = ["--devnet-account", "app-provider"];
    let app = json(
        home,
        &with(&provider, &["app", "deploy", "--name", "pi", "--file", "apps/pi/pi.wasm"]),
    );
    let app = app["address"].as_str().unwrap().to_owned();
    json(home, &with(&provider, &["order", "publish", "app", "--asset", &app, "--volume", volume]));
    app
}

/// Calls the chain node at `url` directly (JSON-RPC over HTTP/1.1); the call must succeed.
pub(crate) fn rpc(url: &str, method: &str, params: &Value) -> Value {
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string();
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (_, json) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let reply: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert!(reply.get("error").is_none(), "{method}: {reply}");
    reply["result"].clone()
}

/// A bare chain: the pinned anvil on a free port of 127.0.0.1, with nothing deployed (its
/// development accounts hold ETH only). Killed when dropped.
pub(crate) struct Anvil {
    child: std::process::Child,
    /// Its JSON-RPC endpoint.
    pub(crate) url: String,
}

impl Anvil {
    /// Starts anvil with `args` added (`--block-time 1`, `--chain-id 4242`).
    pub(crate) fn start(args: &[&str]) -> Self {
        let mut child = Command::new(poco_chain::devnet::find_anvil())
            .args(["--host", "127.0.0.1", "--port", "0", "--hardfork", "prague"])
            .args(["--mnemonic", poco_chain::devnet::DEV_MNEMONIC])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("anvil starts (npm ci installs it)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("Listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(address.trim().to_owned());
                }
            }
        });
        let address =
            rx.recv_timeout(std::time::Duration::from_secs(30)).expect("anvil listens within 30 s");
        Self { child, url: format!("http://{address}") }
    }

    /// The transactions `address` has had mined.
    pub(crate) fn nonce(&self, address: &str) -> u64 {
        let count =
            rpc(&self.url, "eth_getTransactionCount", &serde_json::json!([address, "latest"]));
        u64::from_str_radix(count.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }

    /// Whether a contract is at `address`.
    pub(crate) fn has_code(&self, address: &str) -> bool {
        let code = rpc(&self.url, "eth_getCode", &serde_json::json!([address, "latest"]));
        code.as_str().is_some_and(|code| code.len() > 2)
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every folder and file under `root` (symbolic links not followed) that its group or other
/// users can read, write or open, with its mode.
pub(crate) fn open_to_others(root: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut open = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let metadata = entry.metadata().unwrap();
            if metadata.is_symlink() {
                continue;
            }
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                open.push(format!("{:o} {}", mode, entry.path().display()));
            }
            if metadata.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    open
}

/// A service started in the background; killed when dropped.
pub(crate) struct Service {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Service {
    pub(crate) fn start(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_poco"));
        command
            .arg("--home")
            .arg(home)
            .args(args)
            .env_remove("POCO_NETWORK")
            .env_remove("POCO_RPC_URL")
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines, log: Vec::new() }
    }

    /// The first line of its output that contains `needle` (bounded: 60 s).
    pub(crate) fn line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => {
                    self.log.push(line.clone());
                    return line;
                }
                Ok(line) => self.log.push(line),
                Err(_) => break,
            }
        }
        panic!("no line with {needle:?}; the service said: {:#?}", self.log);
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line it wrote so far (those [`Service::line`] went through included).
    pub(crate) fn lines(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        &self.log
    }

    /// Sends it a signal (`STOP`, `CONT`, `KILL`...).
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name}");
    }

    /// The exit code of a service that stops by itself (bounded: 60 s).
    pub(crate) fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the service did not stop");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address a service's startup line names: `... listening on 127.0.0.1:PORT, ...`.
pub(crate) fn bound(line: &str) -> String {
    let rest = line.split("listening on ").nth(1).unwrap();
    rest.split([',', ' ']).next().unwrap().to_owned()
}

/// A plain HTTP GET on loopback: the JSON body.
pub(crate) fn get(address: &str, path: &str) -> Value {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

/// Reads one HTTP/1.1 message (headers and a `content-length` body); `None` at the end.
pub(crate) fn read_message(reader: &mut impl BufRead) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// Serves `routes` (path, body) over HTTP on a port of 127.0.0.1, one request per connection;
/// returns the base URL.
pub(crate) fn serve_files(routes: Vec<(&'static str, Vec<u8>)>) -> String {
    serve_files_on("127.0.0.1", routes)
}

/// Serves `routes` (path, body) over HTTP on a port of the loopback address `host`, one
/// request per connection; returns the base URL.
pub(crate) fn serve_files_on(host: &str, routes: Vec<(&'static str, Vec<u8>)>) -> String {
    let listener = std::net::TcpListener::bind((host, 0)).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let Some((head, _)) = read_message(&mut reader) else { continue };
            let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
            let found = routes.iter().find(|(p, _)| *p == path).map(|(_, b)| b.clone());
            let (status, body) = found.map_or(("404 Not Found", vec![]), |b| ("200 OK", b));
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    base
}
