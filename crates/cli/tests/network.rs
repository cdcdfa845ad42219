//! The protocol on a chain of its own and the marketplace by network name: `poco protocol
//! deploy` on bare anvil chains (no devnet), resumed after a kill or a dropped connection
//! without deploying anything twice; network profiles, and the refusals that keep a command
//! from acting on the wrong chain; services started from flags, the environment and the
//! configuration file alone, advertising their public URLs; apps served over HTTP.

mod common;

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::common::{
    Anvil, DevnetHome, Service, bound, failure, get, json, poco, poco_env, read_message, root, rpc,
    serve_files, text, with,
};

/// The first development key of anvil (its address holds ETH on a bare chain).
const DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const DEPLOYER: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
/// The second development key: another deployer.
const OTHER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
/// The devnet role `app-provider` (a development key too, with ETH on a bare chain).
const APP_PROVIDER: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

/// The arguments registering the pi app named `name` as the devnet's app provider (a
/// development key, which holds ETH on a bare chain too).
fn register_app(name: &str) -> [&str; 10] {
    let url = "https://apps.example.org/pi.wasm";
    let file = "apps/pi/pi.wasm";
    [
        "--devnet-account",
        "app-provider",
        "app",
        "deploy",
        "--name",
        name,
        "--file",
        file,
        "--url",
        url,
    ]
}

/// Runs `poco --json <args>` with the deployer's key in the environment; it must succeed.
fn deploy(home: &Path, args: &[&str]) -> Value {
    deploy_as(home, DEPLOYER_KEY, args)
}

fn deploy_as(home: &Path, key: &str, args: &[&str]) -> Value {
    let full = with(&["--json", "protocol", "deploy"], args);
    let out = poco_env(home, &full, &[("POCO_PRIVATE_KEY", key)]);
    assert!(out.status.success(), "poco {full:?} failed: {}", text(&out));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Runs a command with the deployer's key in the environment; it must fail with `code`.
fn deploy_fails(home: &Path, key: &str, args: &[&str], code: i32) -> String {
    let full = with(&["protocol", "deploy"], args);
    let out = poco_env(home, &full, &[("POCO_PRIVATE_KEY", key)]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "poco {full:?}: {stderr}");
    stderr.lines().rfind(|l| l.starts_with("error")).unwrap_or_default().to_owned()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn journal(home: &Path, name: &str) -> Value {
    let path = home.join("networks").join(format!("{name}.deploy.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The protocol deployed on a bare chain, then used by the network's name: balances, an app
/// registered; a second run sends nothing; another deployer cannot take the journal over.
#[test]
fn the_protocol_deployed_on_a_bare_chain_is_used_by_name() {
    // Blocks keep coming, as on any network: a command's transaction waits for the profile's
    // two confirmations, which a chain mining only on transactions would never give.
    let chain = Anvil::start(&["--block-time", "1"]);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let deployed = deploy(home, &["--network", "bare", "--rpc.url", &chain.url]);
    assert_eq!(deployed["alreadyDeployed"], false);
    assert_eq!(deployed["sent"].as_array().unwrap().len(), 6, "{deployed}");
    assert_eq!(deployed["deployment"]["chainId"], 31337);
    assert_eq!(deployed["confirmations"], 2, "the default depth off a devnet");
    assert_eq!(chain.nonce(DEPLOYER), 6, "one transaction per contract");
    let poco_address = deployed["deployment"]["poco"].as_str().unwrap().to_owned();
    for contract in ["poco", "token", "appRegistry", "datasetRegistry", "workerpoolRegistry"] {
        assert!(chain.has_code(deployed["deployment"][contract].as_str().unwrap()), "{contract}");
    }
    // The profile and the journal are the operator's alone.
    let networks = home.join("networks");
    assert_eq!(mode(&networks), 0o700);
    assert_eq!(mode(&networks.join("bare.toml")), 0o600);
    assert_eq!(mode(&networks.join("bare.deploy.json")), 0o600);

    let shown = json(home, &["network", "show", "bare"]);
    assert_eq!(shown["rpcUrl"], chain.url.as_str());
    assert_eq!(shown["pocoAddress"].as_str().unwrap().to_lowercase(), poco_address.to_lowercase());
    assert_eq!(shown["fromBlock"], deployed["deployment"]["block"]);
    let listed = json(home, &["network", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "bare");

    // Everything else by the network's name: the deployer holds the new token's supply.
    let balance = json(home, &["--network", "bare", "account", "balance", DEPLOYER]);
    assert_eq!(balance["wallet"], "87000000000000000");
    let env = [("POCO_NETWORK", "bare")];
    let out = poco_env(home, &["--json", "account", "balance", DEPLOYER], &env);
    assert!(out.status.success(), "POCO_NETWORK selects it too: {}", text(&out));
    let app = json(home, &with(&["--network", "bare"], &register_app("pi")));
    assert_eq!(app["owner"].as_str().unwrap().to_lowercase(), APP_PROVIDER.to_lowercase());
    assert_eq!(app["multiaddr"], "https://apps.example.org/pi.wasm");
    let address = app["address"].as_str().unwrap();
    assert_eq!(json(home, &["--network", "bare", "app", "show", address])["name"], "pi");

    // A second run checks the contracts on-chain and sends nothing.
    let again = deploy(home, &["--network", "bare"]);
    assert_eq!(again["alreadyDeployed"], true);
    assert_eq!(again["sent"], serde_json::json!([]));
    assert_eq!(again["deployment"], deployed["deployment"]);
    assert_eq!(chain.nonce(DEPLOYER), 6, "nothing was sent");
    let human = poco_env(
        home,
        &["protocol", "deploy", "--network", "bare"],
        &[("POCO_PRIVATE_KEY", DEPLOYER_KEY)],
    );
    assert!(text(&human).contains("already deployed: nothing sent"), "{}", text(&human));

    // Another deployer cannot resume (or redo) this deployment.
    let message = deploy_fails(home, OTHER_KEY, &["--network", "bare"], 1);
    assert!(message.contains("was started by the deployer"), "{message}");
    let message = deploy_fails(home, DEPLOYER_KEY, &["--network", "bare", "--token", DEPLOYER], 1);
    assert!(message.contains("was started with the token"), "{message}");
    // A profile that was not deployed from this home is not overwritten by a deployment.
    std::fs::copy(networks.join("bare.toml"), networks.join("added.toml")).unwrap();
    let message =
        deploy_fails(home, DEPLOYER_KEY, &["--network", "added", "--rpc.url", &chain.url], 1);
    assert!(message.contains("was not deployed from this home"), "{message}");
    assert_eq!(chain.nonce(DEPLOYER), 6, "nothing was sent");
}

/// A journal is never resumed on another chain, and a profile never acts on another chain
/// than its own, even where the same deployer put the same contracts at the same addresses.
/// An unknown network is named, with the known ones.
#[test]
fn nothing_reaches_another_chain_than_the_networks() {
    let first = Anvil::start(&[]);
    let second = Anvil::start(&["--chain-id", "4242"]);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let deployed = deploy(home, &["--network", "bare", "--rpc.url", &first.url]);

    let message =
        deploy_fails(home, DEPLOYER_KEY, &["--network", "bare", "--rpc.url", &second.url], 1);
    assert!(message.contains("is of chain 31337"), "{message}");
    assert!(message.contains("serves chain 4242"), "{message}");
    assert_eq!(second.nonce(DEPLOYER), 0, "nothing was sent to the other chain");

    // The same deployer on the other chain: the same addresses, told apart by the chain id.
    let other = deploy(home, &["--network", "other", "--rpc.url", &second.url]);
    assert_eq!(other["deployment"]["poco"], deployed["deployment"]["poco"]);
    assert_eq!(other["deployment"]["chainId"], 4242);

    let register = register_app("pi");
    let misdirected = with(&["--network", "bare", "--rpc.url", &second.url], &register);
    let message = failure(home, &misdirected, 1);
    assert!(message.contains("the network \"bare\" is chain 31337"), "{message}");
    assert!(message.contains("serves chain 4242"), "{message}");
    // The same through an edited profile.
    let profile = home.join("networks/bare.toml");
    let edited = std::fs::read_to_string(&profile).unwrap().replace(&first.url, &second.url);
    std::fs::write(&profile, edited).unwrap();
    let message = failure(home, &with(&["--network", "bare"], &register), 1);
    assert!(message.contains("serves chain 4242"), "{message}");
    assert_eq!(second.nonce(APP_PROVIDER), 0, "nothing was sent to the other chain");
    // A chain where the protocol is not even deployed: the chain id is what is refused.
    let third = Anvil::start(&["--chain-id", "7"]);
    let message =
        failure(home, &with(&["--network", "bare", "--rpc.url", &third.url], &register), 1);
    assert!(message.contains("serves chain 7"), "{message}");

    let message = failure(home, &["--network", "nowhere", "account", "balance", DEPLOYER], 1);
    assert!(message.contains("unknown network \"nowhere\""), "{message}");
    assert!(message.contains("known networks: bare, other"), "{message}");
    let out = poco_env(home, &["account", "balance", DEPLOYER], &[("POCO_NETWORK", "nowhere")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("unknown network \"nowhere\""), "{}", text(&out));
    let message = failure(home, &["--network", "devnet", "account", "balance", DEPLOYER], 1);
    assert!(message.contains("no devnet runs"), "{message}");
    let message = failure(home, &["--network", "../bare", "account", "balance", DEPLOYER], 2);
    assert!(message.contains("cannot name a network"), "{message}");
}

/// `poco network add` for a protocol deployed elsewhere: the chain id read, the protocol
/// checked, its deployment block found.
#[test]
fn a_deployment_made_elsewhere_is_added_by_its_address() {
    let chain = Anvil::start(&[]);
    let deployer_home = tempfile::tempdir().unwrap();
    // Some blocks before the deployment, so that finding its block means something.
    for _ in 0..5 {
        common::rpc(&chain.url, "evm_mine", &serde_json::json!([]));
    }
    let deployed = deploy(deployer_home.path(), &["--network", "x", "--rpc.url", &chain.url]);
    let poco_address = deployed["deployment"]["poco"].as_str().unwrap();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let args = ["network", "add", "consortium", "--rpc.url", &chain.url, "--poco.address"];
    let added = json(home, &with(&args, &[poco_address, "--market.url", "https://m.example.org"]));
    assert_eq!(added["chainId"], 31337);
    assert_eq!(added["fromBlock"], deployed["deployment"]["block"]);
    assert_eq!(added["marketUrl"], "https://m.example.org");
    let token = &added["contracts"]["token"];
    assert_eq!(
        token.as_str().unwrap().to_lowercase(),
        deployed["deployment"]["token"].as_str().unwrap().to_lowercase()
    );
    let balance = json(home, &["--network", "consortium", "account", "balance", DEPLOYER]);
    assert_eq!(balance["wallet"], "87000000000000000");
    // An address where no protocol answers is refused; an existing profile is kept.
    let message = failure(home, &with(&args, &[DEPLOYER, "--force"]), 1);
    assert!(message.contains("no poco contract"), "{message}");
    let message = failure(home, &with(&args, &[poco_address]), 1);
    assert!(message.contains("--force"), "{message}");
    let message =
        failure(home, &with(&with(&["network", "add", "devnet"], &args[3..]), &[poco_address]), 2);
    assert!(message.contains("running devnet"), "{message}");
}

/// A deployment with an existing ERC-20 as its token: an address that is not one is refused
/// before anything is sent.
#[test]
fn a_deployment_uses_an_existing_token() {
    let chain = Anvil::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let first = deploy(home, &["--network", "first", "--rpc.url", &chain.url]);
    let token = first["deployment"]["token"].as_str().unwrap().to_owned();
    let registry = first["deployment"]["appRegistry"].as_str().unwrap().to_owned();
    assert_eq!(chain.nonce(DEPLOYER), 6);

    let args = |token: &str| {
        ["--network", "second", "--rpc.url", &chain.url, "--token", token].map(str::to_owned)
    };
    let message =
        deploy_fails(home, DEPLOYER_KEY, &args(APP_PROVIDER).each_ref().map(String::as_str), 1);
    assert!(message.contains("is not an ERC-20 token: no contract"), "{message}");
    // A contract, but an ERC-721 registry: no `decimals()`.
    let message =
        deploy_fails(home, DEPLOYER_KEY, &args(&registry).each_ref().map(String::as_str), 1);
    assert!(message.contains("is not an ERC-20 token"), "{message}");
    assert!(message.contains("decimals()"), "{message}");
    assert_eq!(chain.nonce(DEPLOYER), 6, "nothing was sent");
    assert!(!home.join("networks/second.deploy.json").exists(), "no journal for a refused token");

    let second = deploy(home, &args(&token).each_ref().map(String::as_str));
    assert_eq!(second["sent"].as_array().unwrap().len(), 5, "no token deployed: {second}");
    assert_eq!(second["deployment"]["token"], token.as_str());
    assert_eq!(second["token"]["symbol"], "RLC");
    assert_eq!(second["token"]["decimals"], 9);
    assert_ne!(second["deployment"]["poco"], first["deployment"]["poco"]);
    assert_eq!(chain.nonce(DEPLOYER), 11);
    let balance = json(home, &["--network", "second", "account", "balance", DEPLOYER]);
    assert_eq!(balance["wallet"], "87000000000000000", "the same token, through the new protocol");
}

/// A chain that stops mining does not hold a command forever: past `--tx-timeout` it fails as
/// `not_mined`, naming its transaction, which lands once the chain mines again.
#[test]
fn a_command_on_a_stalled_chain_fails_in_time_naming_its_transaction() {
    let chain = Anvil::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    deploy(home, &["--network", "bare", "--rpc.url", &chain.url, "--confirmations", "0"]);
    rpc(&chain.url, "evm_setAutomine", &serde_json::json!([false]));
    let before = chain.nonce(APP_PROVIDER);
    let register = |name| with(&["--network", "bare", "--tx-timeout", "2"], &register_app(name));

    let started = Instant::now();
    let message = failure(home, &register("pi"), 1);
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    assert!(message.contains("was sent but not mined within 2 s"), "{message}");
    assert!(message.contains("look it up before sending the same thing again"), "{message}");
    let out = poco(home, &with(&["--json"], &register("pi-2")));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("a JSON error on stdout");
    assert_eq!(answer["code"], "not_mined", "{answer}");
    assert_eq!(chain.nonce(APP_PROVIDER), before, "nothing mined yet");

    rpc(&chain.url, "evm_mine", &serde_json::json!([]));
    assert_eq!(chain.nonce(APP_PROVIDER), before + 2, "each transaction sent is mined, once");
}

/// Waits (bounded) until `condition` holds.
fn wait_for(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A deployment killed (SIGKILL) half-way on a chain with a block every second, then run
/// again: it completes, and the deployer's nonce shows one transaction per contract.
#[test]
fn a_deployment_killed_half_way_completes_without_deploying_twice() {
    let chain = Anvil::start(&["--block-time", "1"]);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let mut first = Command::new(env!("CARGO_BIN_EXE_poco"))
        .arg("--home")
        .arg(home)
        .args(["protocol", "deploy", "--network", "slow", "--rpc.url", &chain.url])
        .env("POCO_PRIVATE_KEY", DEPLOYER_KEY)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let path = home.join("networks/slow.deploy.json");
    let steps = || {
        std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .map_or(0, |file| file["journal"]["steps"].as_array().map_or(0, Vec::len))
    };
    wait_for("two creations in the journal", Duration::from_secs(60), || steps() >= 2);
    first.kill().unwrap(); // SIGKILL: nothing is cleaned up
    first.wait().unwrap();
    let interrupted = journal(home, "slow");
    let recorded = interrupted["journal"]["steps"].as_array().unwrap().len();
    assert!(recorded < 6, "killed before the end ({recorded} creations recorded)");

    let resumed = deploy(home, &["--network", "slow"]);
    assert_eq!(resumed["alreadyDeployed"], false);
    assert_eq!(chain.nonce(DEPLOYER), 6, "no contract deployed twice: {resumed}");
    let sent = resumed["sent"].as_array().unwrap().len();
    assert!(sent <= 6 - recorded + 1, "a creation sent before the kill is not sent again");
    let done = journal(home, "slow");
    for step in done["journal"]["steps"].as_array().unwrap() {
        assert!(chain.has_code(step["address"].as_str().unwrap()), "{step}");
    }
    assert_eq!(done["journal"]["steps"].as_array().unwrap().len(), 6);
}

/// A JSON-RPC proxy that forwards requests to `upstream` until `sends` raw transactions went
/// through it: the last of them reaches the chain, but its answer never comes back, and from
/// then on the proxy drops every connection (a node that went away mid-deployment).
struct DroppingProxy {
    url: String,
    sent: Arc<AtomicUsize>,
}

impl DroppingProxy {
    fn start(upstream: &str, sends: usize) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let sent = Arc::new(AtomicUsize::new(0));
        let dead = Arc::new(AtomicBool::new(false));
        let counter = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if dead.load(Ordering::SeqCst) {
                    continue; // dropped at once
                }
                let (upstream, counter, dead) = (upstream.clone(), counter.clone(), dead.clone());
                std::thread::spawn(move || relay(client, &upstream, &counter, &dead, sends));
            }
        });
        Self { url, sent }
    }
}

fn relay(
    client: std::net::TcpStream,
    upstream: &str,
    counter: &AtomicUsize,
    dead: &AtomicBool,
    sends: usize,
) {
    let mut reader = std::io::BufReader::new(client.try_clone().unwrap());
    let mut writer = client;
    while let Some((_, body)) = read_message(&mut reader) {
        if dead.load(Ordering::SeqCst) {
            return;
        }
        let mut node = std::net::TcpStream::connect(upstream).unwrap();
        write!(
            node,
            "POST / HTTP/1.1\r\nhost: {upstream}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        node.write_all(&body).unwrap();
        let Some((head, answer)) = read_message(&mut std::io::BufReader::new(node)) else {
            return;
        };
        let sending = String::from_utf8_lossy(&body).contains("eth_sendRawTransaction");
        if sending && counter.fetch_add(1, Ordering::SeqCst) + 1 >= sends {
            dead.store(true, Ordering::SeqCst);
            return; // sent, but the answer is lost with the connection
        }
        let status = head.lines().next().unwrap_or("HTTP/1.1 200 OK");
        let reply = format!(
            "{status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        );
        if writer.write_all(reply.as_bytes()).and_then(|()| writer.write_all(&answer)).is_err() {
            return;
        }
    }
}

/// A node that goes away right after taking the second creation: the run fails, and the next
/// one (straight to the node) finds that creation on-chain instead of sending it again.
#[test]
fn a_creation_whose_answer_was_lost_is_found_not_sent_again() {
    let chain = Anvil::start(&[]);
    let proxy = DroppingProxy::start(&chain.url, 2);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let out = poco_env(
        home,
        &["protocol", "deploy", "--network", "lossy", "--rpc.url", &proxy.url],
        &[("POCO_PRIVATE_KEY", DEPLOYER_KEY)],
    );
    assert!(!out.status.success(), "the node went away: {}", text(&out));
    assert_eq!(proxy.sent.load(Ordering::SeqCst), 2);
    assert_eq!(chain.nonce(DEPLOYER), 2, "both creations reached the chain");
    let interrupted = journal(home, "lossy");
    let steps = interrupted["journal"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert!(steps[1].get("address").is_none(), "the second one's outcome was not seen");

    let resumed = deploy(home, &["--network", "lossy", "--rpc.url", &chain.url]);
    assert_eq!(resumed["adopted"], serde_json::json!(["AppRegistry"]), "{resumed}");
    assert_eq!(resumed["sent"].as_array().unwrap().len(), 4);
    assert_eq!(chain.nonce(DEPLOYER), 6, "no contract deployed twice");
    let profile = std::fs::read_to_string(home.join("networks/lossy.toml")).unwrap();
    assert!(profile.contains(&chain.url), "the endpoint that worked is the profile's: {profile}");
}

/// Journals that do not fit the chain: a recorded creation the node refuses (it was never
/// mined, its nonce is free) is signed anew; a contract the journal claims and the chain does not
/// hold is refused, nothing sent.
#[test]
fn a_journal_is_checked_against_the_chain() {
    let chain = Anvil::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let networks = home.join("networks");
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&networks)
        .unwrap();
    let crafted = |step: Value| {
        serde_json::json!({
            "version": 1,
            "network": "crafted",
            "rpcUrl": chain.url,
            "journal": {
                "chainId": 31337,
                "deployer": DEPLOYER,
                "owner": DEPLOYER,
                "existingToken": null,
                "committeeSeedDelay": 0,
                "steps": [step],
            },
        })
        .to_string()
    };
    let journal_file = networks.join("crafted.deploy.json");
    let unsent = serde_json::json!({
        "component": "token",
        "nonce": 0,
        "transaction": format!("0x{}", "11".repeat(32)),
        "raw": "0x00",
        "signedAtBlock": 0,
    });
    std::fs::write(&journal_file, crafted(unsent.clone())).unwrap();
    let done = deploy(home, &["--network", "crafted"]);
    assert_eq!(done["replanned"], serde_json::json!(["RLC"]), "{done}");
    assert_eq!(done["sent"].as_array().unwrap().len(), 6);
    assert_eq!(chain.nonce(DEPLOYER), 6);

    // A journal claiming a token where the chain holds none.
    std::fs::remove_file(networks.join("crafted.toml")).unwrap();
    let mut claimed = unsent;
    claimed["address"] = Value::from(APP_PROVIDER);
    claimed["block"] = Value::from(1);
    std::fs::write(&journal_file, crafted(claimed)).unwrap();
    let message = deploy_fails(home, DEPLOYER_KEY, &["--network", "crafted"], 1);
    assert!(message.contains("no contract there on this chain"), "{message}");
    // A journal that is not one.
    std::fs::write(&journal_file, "{\"version\": 1}").unwrap();
    let message = deploy_fails(home, DEPLOYER_KEY, &["--network", "crafted"], 1);
    assert!(message.contains("crafted.deploy.json"), "{message}");
    assert_eq!(chain.nonce(DEPLOYER), 6, "nothing was sent");
}

/// A private key is read from a file or the environment, never from a flag's value, and a
/// key written where a file is expected is refused without being echoed.
#[test]
fn a_private_key_is_never_taken_from_a_flag() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let hex = OTHER_KEY.trim_start_matches("0x");
    let base = ["protocol", "deploy", "--network", "x", "--rpc.url", "http://127.0.0.1:9"];
    for args in [
        with(&base, &["--private-key", OTHER_KEY]),
        with(&base, &[&format!("--private-key={OTHER_KEY}")]),
        with(&base, &["--private-key-file", OTHER_KEY]),
        with(&base, &["--private-key-file", hex]),
    ] {
        let out = poco(home, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let all = text(&out);
        assert!(!all.contains(hex), "the key was echoed: {all}");
        assert!(all.contains("--private-key-file") && all.contains("POCO_PRIVATE_KEY"), "{all}");
    }
    // From a file: it is used (and the chain, here unreachable, is the next thing to fail).
    let key_file = home.join("deployer.key");
    std::fs::write(&key_file, format!("{OTHER_KEY}\n")).unwrap();
    let out = poco(home, &with(&base, &["--private-key-file", key_file.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(!text(&out).contains(hex));
    std::fs::write(&key_file, "not a key\n").unwrap();
    let out = poco(home, &with(&base, &["--private-key-file", key_file.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("not a private key in hexadecimal"), "{}", text(&out));
    let out = poco_env(home, &base, &[("POCO_PRIVATE_KEY", "0xnot-a-key")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("POCO_PRIVATE_KEY is not a private key"), "{}", text(&out));
    assert!(!text(&out).contains("not-a-key"), "the value is not echoed");
}

/// The services from the network's profile and the configuration file alone (no devnet): the
/// file's `[market]` and `[results]` sections, overridden by the environment, overridden by
/// flags; each advertises its public URL, and a scheduler refuses to name a result store by
/// another URL than the one it advertises. A section with a key it does not know is refused
/// with the file and the line.
#[test]
fn services_run_from_the_configuration_and_advertise_their_public_urls() {
    let chain = Anvil::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    deploy(home, &["--network", "consortium", "--rpc.url", &chain.url]);
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        "network = \"consortium\"\n\
         [market]\n\
         listen = \"127.0.0.1:0\"\n\
         public_url = \"https://file.example.org\"\n\
         data_dir = \"{}\"\n\
         [results]\n\
         listen = \"127.0.0.1:0\"\n\
         public_url = \"https://results.example.org/\"\n\
         storage = \"{}\"\n",
        data.path().join("market").display(),
        data.path().join("results").display()
    );
    std::fs::write(home.join("config.toml"), &config).unwrap();

    // The file's settings, the environment's public URL, the network's depth (2).
    let env = [("POCO_MARKET_PUBLIC_URL", "https://env.example.org")];
    let mut market = Service::start(home, &["market", "run"], &env);
    let line = market.line("market listening on");
    assert!(line.ends_with("reached at https://env.example.org"), "{line}");
    market.line("follows the chain 2 block(s) behind");
    let openapi = get(&bound(&line), "/openapi.json");
    assert_eq!(openapi["servers"][0]["url"], "https://env.example.org");
    drop(market);
    // A flag beats the environment.
    let flags =
        ["market", "run", "--public-url", "https://flag.example.org", "--confirmations", "0"];
    let mut market = Service::start(home, &flags, &env);
    let line = market.line("market listening on");
    assert!(line.ends_with("reached at https://flag.example.org"), "{line}");
    market.line("follows the chain 0 block(s) behind");
    assert_eq!(
        get(&bound(&line), "/openapi.json")["servers"][0]["url"],
        "https://flag.example.org"
    );
    drop(market);

    let mut results = Service::start(home, &["result-store", "run"], &[]);
    let line = results.line("result store listening on");
    let store = bound(&line);
    assert_eq!(get(&store, "/health")["publicUrl"], "https://results.example.org");
    // A scheduler naming the store by its private address is refused: results' locations are
    // written on-chain, and requesters could not download from there.
    let scheduler_args = [
        "--devnet-account",
        "scheduler",
        "scheduler",
        "run",
        "--workerpool",
        "0x0000000000000000000000000000000000000001",
        "--listen",
        "127.0.0.1:0",
        "--results.url",
    ];
    let private_url = format!("http://{store}");
    let mut scheduler = Service::start(home, &with(&scheduler_args, &[&private_url]), &[]);
    let line = scheduler.line("error:");
    assert!(line.contains("says it is reached at https://results.example.org"), "{line}");
    assert_eq!(scheduler.exit_code(), Some(1));
    drop(results);

    // An unknown key of a section: refused by every command, with the file and the line.
    std::fs::write(home.join("config.toml"), format!("{config}max_uploads = 3\n")).unwrap();
    let message = failure(home, &["network", "list"], 1);
    assert!(message.contains("config.toml, line 10"), "{message}");
    assert!(message.contains("max_uploads"), "{message}");
    std::fs::write(home.join("config.toml"), "[scheduler]\nadmit = \"everyone\"\n").unwrap();
    let message = failure(home, &["network", "list"], 1);
    assert!(message.contains("config.toml, line 2"), "{message}");
}

/// An app served over HTTP: registered with `--url`, fetched by the devnet's worker (whose
/// fetch policy the operator widened to this machine) and run; an app whose URL serves other
/// bytes than its registered checksum is refused before anything is paid.
#[test]
fn an_app_served_over_http_runs_and_a_wrong_checksum_is_refused() {
    let devnet = DevnetHome::start(&["--workers", "1", "--fetch.allow", "127.0.0.0/8"]);
    let home = devnet.path();
    let pi = std::fs::read(root().join("apps/pi/pi.wasm")).unwrap();
    let base = serve_files(vec![("/pi.wasm", pi), ("/other.wasm", b"not the pi app".to_vec())]);
    let provider = ["--devnet-account", "app-provider"];
    let requester = ["--devnet-account", "requester"];
    let register = |name: &str, path: &str| {
        let url = format!("{base}{path}");
        let args = ["app", "deploy", "--name", name, "--file", "apps/pi/pi.wasm", "--url", &url];
        let app = json(home, &with(&provider, &args));
        assert_eq!(app["multiaddr"], url.as_str(), "registered with its URL");
        let address = app["address"].as_str().unwrap().to_owned();
        json(home, &with(&provider, &["order", "publish", "app", "--asset", &address]));
        address
    };
    let app = register("pi-http", "/pi.wasm");
    let out = tempfile::tempdir().unwrap();
    let download = out.path().join("result");
    // The devnet's clients share the policy it was started with (here: this machine).
    let run = with(
        &requester,
        &["run", &app, "--args", "1000", "--yes", "--download", download.to_str().unwrap()],
    );
    let ran = json(home, &run);
    assert_eq!(ran["tasks"][0]["status"], "COMPLETED", "{ran}");
    let result = std::fs::read_to_string(download.join("result.txt")).unwrap();
    assert!(result.starts_with("samples=1000\n"), "{result}");

    let wrong = register("pi-wrong", "/other.wasm");
    let before = json(home, &with(&requester, &["account", "balance"]));
    let message = failure(home, &with(&requester, &["run", &wrong, "--yes"]), 1);
    assert!(message.contains("but 0x") && message.contains("is registered"), "{message}");
    assert!(message.contains("workers would refuse it"), "{message}");
    assert_eq!(json(home, &with(&requester, &["account", "balance"])), before, "nothing paid");
}
