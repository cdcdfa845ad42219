//! The `poco` binary driven as a user drives it, against a devnet it starts itself: the whole
//! journey with `--json` checked field by field, human output compared with snapshots, and
//! the error paths with their messages and exit codes.

mod common;

use std::{path::Path, process::Command};

use serde_json::Value;

use crate::common::{DevnetHome, failure, json, poco, root, with};

/// `text` with what changes from run to run masked: hashes and addresses (whole or short),
/// local dates with their distance from now, and URLs' ports.
fn mask(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let hex = |c: &char| c.is_ascii_hexdigit();
    let run_of = |from: usize, pred: &dyn Fn(&char) -> bool| {
        chars[from..].iter().take_while(|c| pred(c)).count()
    };
    while i < chars.len() {
        let rest: String = chars[i..chars.len().min(i + 30)].iter().collect();
        if rest.starts_with("0x") {
            let digits = run_of(i + 2, &hex);
            if chars.get(i + 2 + digits) == Some(&'…') {
                let tail = run_of(i + 3 + digits, &hex);
                out.push_str("<hash>");
                i += 3 + digits + tail;
                continue;
            }
            if digits >= 40 {
                out.push_str(if digits == 40 { "<address>" } else { "<hash>" });
                i += 2 + digits;
                continue;
            }
        }
        let is_date = rest.len() >= 19
            && rest.chars().enumerate().take(19).all(|(k, c)| match k {
                4 | 7 => c == '-',
                10 => c == 'T',
                13 | 16 => c == ':',
                _ => c.is_ascii_digit(),
            });
        if is_date {
            // The date, its offset, and the distance in parentheses.
            let mut end = i + 19;
            while end < chars.len() && !chars[end].is_whitespace() {
                end += 1;
            }
            if chars.get(end + 1) == Some(&'(') {
                while end < chars.len() && chars[end] != ')' {
                    end += 1;
                }
                end += 1;
            }
            out.push_str("<time>");
            i = end;
            continue;
        }
        if rest.starts_with("127.0.0.1:") {
            out.push_str("127.0.0.1:<port>");
            i += 10 + run_of(i + 10, &|c: &char| c.is_ascii_digit());
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Compares `actual` with the snapshot `name` (written when `POCO_UPDATE_SNAPSHOTS=1`).
fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(name);
    if std::env::var_os("POCO_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (POCO_UPDATE_SNAPSHOTS=1 writes it)", path.display()));
    assert_eq!(actual, expected, "human output changed: {}", path.display());
}

#[test]
fn the_whole_journey_on_a_devnet() {
    let devnet = DevnetHome::start(&["--workers", "2"]);
    let home = devnet.path();
    let requester = ["--devnet-account", "requester"];
    let provider = ["--devnet-account", "app-provider"];

    let status = json(home, &["devnet", "status"]);
    assert_eq!(status["deployment"]["chainId"], 31337);
    let roles: Vec<&str> =
        status["accounts"].as_array().unwrap().iter().map(|a| a[0].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        [
            "owner",
            "requester",
            "app-provider",
            "dataset-provider",
            "scheduler",
            "worker-0",
            "worker-1"
        ]
    );

    // A fresh devnet account: 10,000 RLC in the wallet, 1,000 deposited.
    let human = poco(home, &with(&requester, &["account", "balance"]));
    snapshot("account-balance.txt", &String::from_utf8_lossy(&human.stdout));
    let balance = json(home, &with(&requester, &["account", "deposit", "2 RLC"]));
    assert_eq!(balance["address"], "0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
    assert_eq!(balance["wallet"], "9998000000000");
    assert_eq!(balance["free"], "1002000000000");
    assert_eq!(balance["frozen"], "0");
    assert_eq!(balance["score"], 0);
    let balance = json(home, &with(&requester, &["account", "withdraw", "500 nRLC"]));
    assert_eq!(balance["free"], "1001999999500");
    assert_eq!(balance["wallet"], "9998000000500");

    // The provider registers the pi app and sells it.
    let app = json(
        home,
        &with(&provider, &["app", "deploy", "--name", "pi", "--file", "apps/pi/pi.wasm"]),
    );
    let address = app["address"].as_str().unwrap().to_owned();
    assert_eq!(app["kind"], "app");
    assert_eq!(app["name"], "pi");
    assert_eq!(app["owner"], "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc");
    let sums = std::fs::read_to_string(root().join("apps/SHA256SUMS")).unwrap();
    let checksum = sums
        .lines()
        .find(|l| l.ends_with("pi/pi.wasm"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert_eq!(app["checksum"], format!("0x{checksum}"));
    assert_eq!(json(home, &["app", "show", &address])["address"], address.as_str());

    let order = json(
        home,
        &with(
            &provider,
            &[
                "order", "publish", "app", "--asset", &address, "--price", "0.1 RLC", "--volume",
                "10",
            ],
        ),
    );
    assert_eq!(order["kind"], "app");
    assert_eq!(order["status"], "open");
    assert_eq!(order["remaining"], "10");
    assert_eq!(order["order"]["appprice"], "100000000");
    let hash = order["orderHash"].as_str().unwrap().to_owned();
    let book = json(home, &["orderbook", "app", "--app", &address]);
    assert!(book.to_string().contains(&hash), "the published order is in the book: {book}");

    // The requester runs it, waits and downloads the verified result.
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("result");
    let run = json(
        home,
        &with(
            &requester,
            &["run", &address, "--args", "1000", "--yes", "--download", out_dir.to_str().unwrap()],
        ),
    );
    assert_eq!(run["costs"]["volume"], 1);
    assert_eq!(run["costs"]["app"], "100000000");
    assert_eq!(run["costs"]["workerpool"], "1000000000");
    assert_eq!(run["costs"]["total"], "1100000000");
    let task = &run["tasks"][0];
    assert_eq!(task["status"], "COMPLETED");
    assert_eq!(task["contributors"], 1);
    let result = std::fs::read_to_string(out_dir.join("result.txt")).unwrap();
    assert!(result.starts_with("samples=1000\nseed=42\n"), "{result}");

    let deal_id = run["dealId"].as_str().unwrap();
    let deal = json(home, &["deal", "show", deal_id]);
    assert!(deal.to_string().contains(task["taskId"].as_str().unwrap()));
    let shown = json(home, &["task", "show", task["taskId"].as_str().unwrap()]);
    assert_eq!(shown["status"], "COMPLETED");
    assert_eq!(shown["resultDigest"], task["resultDigest"]);
    // Everyday reading: one's deals (as requester, and as the pool's owner), a task as a table
    // shows it, what the scheduler logged of it; claiming a completed deal is refused.
    let task_id = task["taskId"].as_str().unwrap();
    let listed = poco(home, &with(&requester, &["deal", "list"]));
    assert!(listed.status.success(), "{}", common::text(&listed));
    snapshot("deal-list.txt", &mask(&String::from_utf8_lossy(&listed.stdout)));
    let mine = json(home, &with(&requester, &["deal", "list"]));
    assert_eq!(mine[0]["dealId"], deal_id);
    let pools =
        json(home, &["--devnet-account", "scheduler", "deal", "list", "--as", "workerpool"]);
    assert_eq!(pools[0]["dealId"], deal_id, "the pool owner's deals: {pools}");
    let none = json(home, &with(&provider, &["deal", "list"]));
    assert_eq!(none, serde_json::json!([]));
    let shown = poco(home, &with(&requester, &["task", "show", task_id]));
    assert!(shown.status.success(), "{}", common::text(&shown));
    snapshot("task-show.txt", &mask(&String::from_utf8_lossy(&shown.stdout)));
    let logs = json(home, &with(&requester, &["task", "logs", task_id]));
    let messages: Vec<&str> =
        logs["logs"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert!(!messages.is_empty(), "the scheduler logged the task: {logs}");
    let message = failure(home, &with(&provider, &["task", "logs", task_id]), 1);
    assert!(message.contains("only the task's requester"), "{message}");
    let message = failure(home, &with(&requester, &["deal", "claim", deal_id]), 1);
    assert!(message.contains("no task of deal") && message.contains("COMPLETED"), "{message}");

    // The requester paid 1.1 RLC for the task.
    let after = json(home, &with(&requester, &["account", "balance"]));
    assert_eq!(after["free"], "1000899999500");

    // Errors against this devnet: each one message, the right exit code.
    let stranger = tempfile::tempdir().unwrap();
    let password = stranger.path().join("password");
    std::fs::write(&password, "correct horse").unwrap();
    let created = json(
        home,
        &[
            "--password-file",
            password.to_str().unwrap(),
            "wallet",
            "create",
            "--out-dir",
            stranger.path().to_str().unwrap(),
        ],
    );
    let keystore = created["keystore"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned();
    let broke = ["--wallet", keystore.as_str(), "--password-file", password.to_str().unwrap()];
    let message = failure(home, &with(&broke, &["run", &address, "--yes", "--no-deposit"]), 4);
    assert!(
        message.contains("poco account deposit \"1.1 RLC\""),
        "says how to add funds: {message}"
    );
    let message = failure(home, &with(&broke, &["run", &address, "--yes"]), 4);
    assert!(message.contains("get RLC tokens"), "says what is missing: {message}");
    // Funded from the requester's wallet: ETH for gas, then RLC; it can then deposit.
    let stranger_address = created["address"].as_str().unwrap();
    let sent =
        json(home, &with(&requester, &["wallet", "send", "1 ETH", "--to", stranger_address]));
    assert_eq!(sent["to"], stranger_address);
    assert_eq!(sent["value"]["ether"], "1000000000000000000");
    json(home, &with(&requester, &["wallet", "send", "5 RLC", "--to", stranger_address]));
    let shown = json(home, &with(&broke, &["wallet", "show"]));
    assert_eq!(shown["eth"], "1000000000000000000");
    assert_eq!(shown["wallet"], "5000000000");
    read_only_commands_never_unlock(home, &keystore, &password, deal_id, stranger_address);
    let deposited = json(home, &with(&broke, &["account", "deposit", "2 RLC"]));
    assert_eq!(deposited["free"], "2000000000");
    assert_eq!(deposited["wallet"], "3000000000");
    let message =
        failure(home, &with(&broke, &["wallet", "send", "5", "--to", stranger_address]), 2);
    assert!(message.contains("\"5 RLC\" or \"5 nRLC\" or \"5 ETH\""), "{message}");
    let requester_address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let message =
        failure(home, &with(&broke, &["wallet", "send", "4 RLC", "--to", requester_address]), 4);
    assert!(message.contains("holds 3 RLC in its wallet, less than the 4 RLC"), "{message}");
    let message =
        failure(home, &with(&broke, &["wallet", "send", "2 ETH", "--to", requester_address]), 4);
    assert!(message.contains("less than the 2 ETH to send"), "{message}");
    let zero = "0x0000000000000000000000000000000000000000";
    let message = failure(home, &with(&broke, &["wallet", "send", "1 RLC", "--to", zero]), 2);
    assert!(message.contains("zero address"), "{message}");
    std::fs::write(stranger.path().join("wrong"), "wrong horse").unwrap();
    let wrong_password = stranger.path().join("wrong");
    let message = failure(
        home,
        &[
            "--wallet",
            &keystore,
            "--password-file",
            wrong_password.to_str().unwrap(),
            "account",
            "deposit",
            "1 RLC",
        ],
        3,
    );
    assert!(message.to_lowercase().contains("password"), "{message}");
    let message = failure(home, &["account", "deposit", "1 RLC"], 3);
    assert!(message.contains("wallet"), "{message}");
    let message =
        failure(home, &with(&requester, &["run", &address, "--category", "4", "--yes"]), 5);
    assert!(message.contains("match") || message.contains("order"), "{message}");
    let message = failure(
        home,
        &with(&requester, &["run", "0x00000000000000000000000000000000000000aa", "--yes"]),
        6,
    );
    assert!(
        message.contains("0x00000000000000000000000000000000000000aA") || message.contains("app"),
        "{message}"
    );
    let message = failure(home, &["--rpc.url", "http://127.0.0.1:9", "app", "show", &address], 7);
    assert!(message.contains("127.0.0.1:9"), "names the endpoint: {message}");
    let message = failure(home, &["--market.url", "http://127.0.0.1:9", "orderbook", "app"], 7);
    assert!(message.contains("127.0.0.1:9"), "names the endpoint: {message}");

    // Everything the devnet's services wrote (the chain's state, databases, archives, secrets,
    // the workers' tasks, logs) is theirs alone.
    let shared = common::open_to_others(home);
    assert!(shared.is_empty(), "readable by other users of the machine: {shared:#?}");
}

/// A keystore set in the environment, no password anywhere and stdin closed: what only reads
/// works, and `--account` finds keystores by name and by address in poco's and Foundry's
/// keystore directories.
fn read_only_commands_never_unlock(
    home: &Path,
    keystore: &str,
    password: &Path,
    deal: &str,
    address: &str,
) {
    let user_home = tempfile::tempdir().unwrap();
    let user_home = user_home.path().to_str().unwrap();
    let env = [("POCO_WALLET", keystore), ("HOME", user_home)];
    let read = |args: &[&str]| {
        let out = common::poco_env(home, &with(&["--json"], args), &env);
        assert!(out.status.success(), "poco {args:?} without a password: {}", common::text(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(read(&["wallet", "show"])["eth"], "1000000000000000000");
    assert_eq!(read(&["account", "balance"])["address"], address);
    assert!(read(&["orderbook", "app"]).is_object());
    assert_eq!(read(&["deal", "show", deal])["deal"]["dealId"], deal);
    // Signing asks for the password, and without a terminal says where else to give it.
    let out = common::poco_env(home, &["account", "deposit", "1 RLC"], &env);
    assert_eq!(out.status.code(), Some(3), "{}", common::text(&out));
    assert!(common::text(&out).contains("password file"), "{}", common::text(&out));

    // poco's keystores by name, and by the address they state.
    let with_password = [("POCO_WALLET_PASSWORD", "named"), ("HOME", user_home)];
    let created =
        common::poco_env(home, &["--json", "wallet", "create", "--name", "alice"], &with_password);
    assert!(created.status.success(), "{}", common::text(&created));
    let alice: Value = serde_json::from_slice(&created.stdout).unwrap();
    let alice = alice["address"].as_str().unwrap().to_owned();
    let home_env = [("HOME", user_home)];
    let balance = |account: &str| {
        let out = common::poco_env(
            home,
            &["--json", "--account", account, "account", "balance"],
            &home_env,
        );
        assert!(out.status.success(), "--account {account}: {}", common::text(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["address"].clone()
    };
    assert_eq!(balance("alice"), alice.as_str());
    assert_eq!(balance(&alice), alice.as_str());
    // A signer named on the command line beats those of the environment, whichever they are.
    let address_with = |args: &[&str], env: &[(&str, &str)]| {
        let out = common::poco_env(home, &with(&["--json"], args), env);
        assert!(out.status.success(), "{args:?}: {}", common::text(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["address"].clone()
    };
    let devnet_env = [("HOME", user_home), ("POCO_DEVNET_ACCOUNT", "requester")];
    let flag = ["--account", "alice", "account", "balance"];
    assert_eq!(address_with(&flag, &devnet_env), alice.as_str());
    let account_env = [("HOME", user_home), ("POCO_ACCOUNT", "alice")];
    let flag = ["--devnet-account", "requester", "account", "balance"];
    assert_eq!(address_with(&flag, &account_env), "0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
    // Foundry's, written by `cast wallet import bob`: such a file states no address, so it is
    // found by name and unlocked to learn it.
    let foundry = Path::new(user_home).join(".foundry/keystores");
    std::fs::create_dir_all(&foundry).unwrap();
    let mut cast_file: Value =
        serde_json::from_str(&std::fs::read_to_string(keystore).unwrap()).unwrap();
    cast_file.as_object_mut().unwrap().remove("address");
    std::fs::write(foundry.join("bob"), cast_file.to_string()).unwrap();
    let password = password.to_str().unwrap();
    let out = common::poco_env(
        home,
        &["--json", "--account", "bob", "--password-file", password, "wallet", "show"],
        &home_env,
    );
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["address"], address);
    let out = common::poco_env(home, &["--account", "carol", "account", "balance"], &home_env);
    assert_eq!(out.status.code(), Some(3));
    assert!(common::text(&out).contains("no keystore named carol"), "{}", common::text(&out));
    assert!(common::text(&out).contains("poco wallet list"), "{}", common::text(&out));
    let out = common::poco_env(home, &["--account", "../x", "account", "balance"], &home_env);
    assert_eq!(out.status.code(), Some(3), "{}", common::text(&out));

    // `wallet list`: both, without a password.
    let out = common::poco_env(home, &["--json", "wallet", "list"], &home_env);
    assert!(out.status.success(), "{}", common::text(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<(&str, &Value)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["name"].as_str().unwrap(), &w["address"]))
        .collect();
    assert_eq!(names, [("alice", &Value::from(alice.as_str())), ("bob", &Value::Null)]);
}

#[test]
fn a_service_refuses_a_folder_other_users_can_open() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let shared = home.path().join("devnet");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let message = failure(home.path(), &["devnet", "up", "--detach"], 1);
    assert!(message.contains("mode 755"), "{message}");
    assert!(message.contains(&format!("chmod 700 {}", shared.display())), "{message}");
    assert_eq!(
        std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777,
        0o755,
        "the folder is left as the operator made it"
    );
}

#[test]
fn without_a_devnet_commands_say_how_to_start_one() {
    let home = tempfile::tempdir().unwrap();
    let message = failure(home.path(), &["app", "list"], 1);
    assert!(message.contains("poco devnet up"), "{message}");
    let status = json(home.path(), &["devnet", "status"]);
    assert_eq!(status["running"], false);
}

/// An endpoint answering every request with HTTP 401, as a provider does to a URL without its
/// API key; returns its URL.
fn unauthorised_endpoint() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let body = r#"{"error":"invalid API key"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn errors_say_what_failed_and_keep_their_cause() {
    let home = tempfile::tempdir().unwrap();
    let protocol = "0x0000000000000000000000000000000000000001";
    let app = "0x00000000000000000000000000000000000000aa";
    let show = |url: &str, code: i32| {
        let args = ["--rpc.url", url, "--poco.address", protocol, "app", "show", app];
        let (message, cause) = common::failure_with_cause(home.path(), &args, code);
        let json = poco(home.path(), &with(&["--json"], &args));
        let json: Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(json["cause"].as_str(), cause.as_deref(), "--json carries the cause too");
        let text = match cause {
            Some(cause) => format!("{message}\n  cause: {cause}\n"),
            None => format!("{message}\n"),
        };
        text.replace(url, "<URL>")
    };
    let refused = show("http://127.0.0.1:9", 7);
    let unauthorised = show(&unauthorised_endpoint(), 8);
    let unreachable = show("http://poco-no-such-host.invalid:8545", 7);
    assert!(refused.contains("Connection refused"), "{refused}");
    assert!(unauthorised.contains("401") && unauthorised.contains("invalid API key"));
    assert!(unreachable.contains("dns error"), "{unreachable}");
    snapshot(
        "errors.txt",
        &format!("# refused\n{refused}# unauthorised\n{unauthorised}# unreachable\n{unreachable}"),
    );
}

#[test]
fn bad_amounts_are_explained() {
    let home = tempfile::tempdir().unwrap();
    let message = failure(
        home.path(),
        &["--devnet-account", "requester", "account", "deposit", "two RLC"],
        2,
    );
    assert!(message.contains("2 RLC"), "shows the expected form: {message}");
    // A bare number could be either unit, 10^9 apart: refused, with both readings.
    let message =
        failure(home.path(), &["--devnet-account", "requester", "account", "deposit", "1"], 2);
    assert!(message.contains("\"1 RLC\" or \"1 nRLC\""), "{message}");
}

/// `poco <args> --help`, in an environment without any poco variable (help shows their
/// values).
fn help(path: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_poco"))
        .args(path)
        .arg("--help")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(out.status.success(), "poco {path:?} --help: {}", common::text(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn top_level_help_is_stable() {
    let top = help(&[]);
    let users = top.find("User commands:").expect("a section of users' commands");
    let operators = top.find("Operator commands:").expect("a section of operators' commands");
    assert!(users < operators);
    for service in ["market", "scheduler", "worker", "result-store", "sms"] {
        let at = top.find(&format!("\n  {service} ")).unwrap();
        assert!(at > operators, "{service} is an operator's command");
    }
    for command in ["run", "wallet", "deal", "completions"] {
        let at = top.find(&format!("\n  {command} ")).unwrap();
        assert!(users < at && at < operators, "{command} is a user's command");
    }
    snapshot("help.txt", &top);
}

/// The subcommands `poco <path> --help` lists (without `help`).
fn subcommands(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut listing = false;
    for line in text.lines() {
        if line.ends_with("ommands:") {
            listing = true;
        } else if listing && line.starts_with("  ") {
            names.extend(line.split_whitespace().next().map(str::to_owned));
        } else {
            listing = false;
        }
    }
    names.retain(|name| name != "help");
    names
}

#[test]
fn every_command_help_is_stable_and_ends_with_an_example() {
    let mut pending = vec![Vec::<String>::new()];
    let mut leaves = 0;
    let mut all = std::collections::BTreeMap::new();
    while let Some(path) = pending.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        let children = subcommands(&text);
        if children.is_empty() {
            let examples = text.rfind("Example").unwrap_or_else(|| panic!("poco {args:?}: {text}"));
            assert!(
                text[examples..].lines().skip(1).any(|line| line.trim_start().starts_with("poco ")),
                "poco {args:?}: the example is a poco command line"
            );
            leaves += 1;
        }
        all.insert(format!("poco {}", path.join(" ")).trim_end().to_owned(), text);
        for child in children {
            let mut next = path.clone();
            next.push(child);
            pending.push(next);
        }
    }
    assert!(leaves > 30, "every command was visited ({leaves})");
    let joined: String =
        all.iter().map(|(command, text)| format!("===== {command} --help\n{text}\n")).collect();
    snapshot("help-every-command.txt", &joined);
}

#[test]
fn former_spellings_still_work_with_a_warning() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("market-data");
    let task = format!("0x{}", "11".repeat(32));
    let chain = [
        "--rpc.url",
        "http://127.0.0.1:9",
        "--poco.address",
        "0x0000000000000000000000000000000000000001",
    ];
    let cases: [(Vec<&str>, &str); 4] = [
        (
            with(&chain, &["market", "serve", "--data.dir", data.to_str().unwrap()]),
            "`poco market serve` is now `poco market run`",
        ),
        (
            with(&chain, &["results", "serve", "--storage", data.to_str().unwrap()]),
            "`poco results` is now `poco result-store`",
        ),
        (
            vec!["dataset", "check-key", "--dataset", "0x0000000000000000000000000000000000000002"],
            "`--dataset ADDRESS` is now `DATASET`",
        ),
        (vec!["result", "download", &task, "--out", "x"], "`--out DIR` is now `--out-dir DIR`"),
    ];
    for (args, warning) in cases {
        let out = poco(home.path(), &args);
        let text = common::text(&out);
        assert!(text.starts_with(&format!("warning: {warning}")), "poco {args:?}: {text}");
        // The command itself ran, and failed for its own reason (no chain, no SMS here).
        assert!(text.contains("\nerror: "), "poco {args:?}: {text}");
        let quiet = poco(home.path(), &with(&["-q"], &args));
        assert!(!common::text(&quiet).contains("warning"), "-q: {}", common::text(&quiet));
    }
}

#[test]
fn a_cors_origin_browsers_never_send_is_refused_before_anything_starts() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("market-data");
    let args = [
        "--rpc.url",
        "http://127.0.0.1:9",
        "--poco.address",
        "0x0000000000000000000000000000000000000001",
        "market",
        "run",
        "--data.dir",
        data.to_str().unwrap(),
        "--http.cors-origin",
        "https://explorer.example.org/",
    ];
    let message = failure(home.path(), &args, 2);
    assert!(
        message.contains("--http.cors-origin") && message.contains("not an origin"),
        "{message}"
    );
    assert!(
        message.contains("\"https://explorer.example.org\"?"),
        "suggests the origin: {message}"
    );
}

#[test]
fn bash_completes_poco_commands() {
    let out = poco(Path::new("/nonexistent"), &["completions", "bash"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("poco.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    // What bash does on `poco wal<TAB>` and `poco deal <TAB>`: the completion function is
    // called with the words typed so far.
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let program = format!(
            "source {}; COMP_LINE='{line}'; COMP_POINT={}; COMP_WORDS=({}); COMP_CWORD={}; \
             _poco poco '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            line.len(),
            words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
            words.len() - 1,
            words[words.len() - 1],
            words[words.len() - 2],
        );
        let out = Command::new("bash").args(["--norc", "--noprofile", "-c", &program]).output();
        let out = out.expect("bash runs");
        assert!(out.status.success(), "{}", common::text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(complete("poco wal").trim(), "wallet");
    let deal = complete("poco deal ");
    for sub in ["show", "list", "claim"] {
        assert!(deal.lines().any(|l| l.trim() == sub), "{sub} in {deal}");
    }
}

#[test]
fn manual_pages_are_written_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man");
    let written = json(Path::new("/nonexistent"), &["man", "--out-dir", out_dir.to_str().unwrap()]);
    let pages = written.as_array().unwrap();
    assert!(pages.len() > 40, "{written}");
    let run = std::fs::read_to_string(out_dir.join("poco-run.1")).unwrap();
    assert!(run.starts_with(".ie") || run.contains(".TH"), "roff: {run}");
    assert!(run.contains("poco\\-run"), "{run}");
    assert!(out_dir.join("poco-wallet-list.1").is_file());
}

/// Providers' commands on a devnet: wallets imported, datasets and workerpools registered,
/// shown, listed, transferred and configured; orders signed to a file, published from it,
/// shown, unpublished and cancelled on-chain; a trust-4 run watched until done; a task that
/// is over cannot be claimed.
#[test]
fn providers_orders_and_tasks_on_a_devnet() {
    let devnet = DevnetHome::start(&["--workers", "2"]);
    let home = devnet.path();
    let requester = ["--devnet-account", "requester"];
    let data_provider = ["--devnet-account", "dataset-provider"];
    let scheduler = ["--devnet-account", "scheduler"];
    let app_provider = ["--devnet-account", "app-provider"];
    let files = tempfile::tempdir().unwrap();

    // A wallet imported from a private key shows the key's address.
    let key_file = files.path().join("key.txt");
    std::fs::write(&key_file, "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
        .unwrap();
    let password = files.path().join("password");
    std::fs::write(&password, "imported").unwrap();
    let pass = ["--password-file", password.to_str().unwrap()];
    let wallets = files.path().join("wallets");
    let imported = json(
        home,
        &with(
            &pass,
            &[
                "wallet",
                "import",
                "--private-key-file",
                key_file.to_str().unwrap(),
                "--out-dir",
                wallets.to_str().unwrap(),
            ],
        ),
    );
    assert_eq!(imported["address"], "0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
    let keystore = imported["keystore"].as_str().unwrap().to_owned();
    let shown = json(home, &with(&pass, &["--wallet", &keystore, "wallet", "show"]));
    assert_eq!(shown["address"], imported["address"]);
    let key_text = std::fs::read_to_string(&keystore).unwrap();
    assert!(!key_text.contains("59c6995e998f97a5"), "the keystore holds no plain key");

    // A dataset: registered with the file's sha256, listed, transferred.
    let data = files.path().join("prices.csv");
    std::fs::write(&data, "day,price\n1,10\n2,12\n").unwrap();
    let dataset = json(
        home,
        &with(
            &data_provider,
            &["dataset", "deploy", "--name", "prices", "--file", data.to_str().unwrap()],
        ),
    );
    assert_eq!(dataset["kind"], "dataset");
    assert_eq!(dataset["name"], "prices");
    assert_eq!(dataset["owner"], "0x90f79bf6eb2c4f870365e785982e1f101e93b906");
    // sha256 of the file's bytes, as `sha256sum` prints it.
    assert_eq!(
        dataset["checksum"],
        "0x10cde8654a4b42632d682c85571f40414b224e43a93732503e06914fae44c3f1"
    );
    let address = dataset["address"].as_str().unwrap().to_owned();
    assert!(dataset["multiaddr"].as_str().unwrap().starts_with("file://"));
    let listed = json(home, &with(&data_provider, &["dataset", "list"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["address"], address.as_str());
    let moved = json(
        home,
        &with(
            &data_provider,
            &["dataset", "transfer", &address, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"],
        ),
    );
    assert_eq!(moved["owner"], "0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
    assert_eq!(json(home, &with(&data_provider, &["dataset", "list"])), serde_json::json!([]));
    let message = failure(
        home,
        &with(
            &data_provider,
            &["dataset", "transfer", &address, "0x90F79bf6EB2c4f870365E785982E1f101E93b906"],
        ),
        1,
    );
    assert!(
        message.contains("is owned by 0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
        "{message}"
    );

    // A workerpool: registered, its policy shown then changed.
    let pool = json(home, &with(&scheduler, &["workerpool", "deploy", "--description", "second"]));
    let pool_address = pool["address"].as_str().unwrap().to_owned();
    assert_eq!(pool["kind"], "workerpool");
    assert_eq!(pool["name"], "second");
    let policy = json(home, &["workerpool", "policy", &pool_address]);
    assert_eq!(policy["workerStakeRatio"], 30);
    let policy = json(
        home,
        &with(
            &scheduler,
            &[
                "workerpool",
                "policy",
                &pool_address,
                "--worker-stake",
                "40",
                "--scheduler-share",
                "5",
            ],
        ),
    );
    assert_eq!(policy["workerStakeRatio"], 40);
    assert_eq!(policy["schedulerRewardRatio"], 5);

    // A worker joins the pool, bonding 10 RLC of its free balance; joining twice, releasing
    // the bond while still a member or during the exit delay, and joining what is not a pool
    // are refused with the contract's reason.
    let worker = ["--devnet-account", "worker-1"];
    let before = json(home, &with(&worker, &["account", "balance"]));
    let joined = json(home, &with(&worker, &["workerpool", "join", &pool_address]));
    let nrlc = |balance: &Value, field: &str| -> u128 {
        balance[field].as_str().unwrap().parse().unwrap()
    };
    assert_eq!(nrlc(&joined, "frozen"), nrlc(&before, "frozen") + 10_000_000_000);
    assert_eq!(nrlc(&joined, "free"), nrlc(&before, "free") - 10_000_000_000);
    let message = failure(home, &with(&worker, &["workerpool", "join", &pool_address]), 8);
    assert!(message.contains("is already a member of workerpool"), "{message}");
    let message = failure(home, &with(&worker, &["workerpool", "release-bond", &pool_address]), 8);
    assert!(message.contains("leave it first"), "{message}");
    json(home, &with(&worker, &["workerpool", "leave", &pool_address]));
    let message = failure(home, &with(&worker, &["workerpool", "release-bond", &pool_address]), 8);
    assert!(message.contains("stays frozen until"), "{message}");
    let message = failure(home, &with(&worker, &["workerpool", "join", &address]), 8);
    assert!(message.contains("not registered"), "{message}");

    // An app order signed to a file, published from it, shown, unpublished, published again
    // and cancelled on-chain: the market follows the close.
    let app = json(
        home,
        &with(&app_provider, &["app", "deploy", "--name", "pi", "--file", "apps/pi/pi.wasm"]),
    );
    let app_address = app["address"].as_str().unwrap().to_owned();
    let order_file = files.path().join("app-order.json");
    let signed = json(
        home,
        &with(
            &app_provider,
            &[
                "order",
                "sign",
                "app",
                "--asset",
                &app_address,
                "--price",
                "0.2 RLC",
                "--volume",
                "5",
                "--out",
                order_file.to_str().unwrap(),
            ],
        ),
    );
    assert_eq!(signed["appprice"], "200000000");
    assert_eq!(signed["volume"], "5");
    let file = order_file.to_str().unwrap();
    let published = json(home, &with(&app_provider, &["order", "publish", "app", "--file", file]));
    let hash = published["orderHash"].as_str().unwrap().to_owned();
    assert_eq!(published["status"], "open");
    assert_eq!(json(home, &["order", "show", "app", &hash])["remaining"], "5");
    let message = failure(home, &with(&requester, &["order", "unpublish", "app", &hash]), 1);
    assert!(message.contains("owner") || message.contains("sign"), "{message}");
    let unpublished = json(home, &with(&app_provider, &["order", "unpublish", "app", &hash]));
    assert_eq!(unpublished["status"], "unpublished");
    let again = json(home, &with(&app_provider, &["order", "publish", "app", "--file", file]));
    assert_eq!(again["status"], "open");
    let cancelled = json(home, &with(&app_provider, &["order", "cancel", "app", "--file", file]));
    assert_eq!(cancelled["order"], hash.as_str());
    assert_eq!(cancelled["cancelled"], true);
    let mut status = Value::Null;
    for _ in 0..100 {
        status = json(home, &["order", "show", "app", &hash])["status"].clone();
        if status == "cancelled" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(status, "cancelled", "the market saw the on-chain close");
    let book = json(home, &["orderbook", "app", "--app", &app_address]);
    assert!(!book.to_string().contains(&hash), "a cancelled order leaves the book: {book}");

    // A trust-4 run on the devnet's pool: two fresh workers agree; the task is watched.
    json(
        home,
        &with(
            &app_provider,
            &["order", "publish", "app", "--asset", &app_address, "--volume", "5"],
        ),
    );
    let run = json(home, &with(&requester, &["run", &app_address, "--trust", "4", "--yes"]));
    let task = run["tasks"][0]["taskId"].as_str().unwrap().to_owned();
    let watched = json(home, &["task", "show", &task, "--watch"]);
    assert_eq!(watched["status"], "COMPLETED");
    assert_eq!(watched["contributors"], 2, "two fresh workers that agree reach trust 4");
    let message = failure(home, &with(&requester, &["task", "claim", &task]), 1);
    assert!(message.contains("is COMPLETED and cannot be claimed"), "{message}");
}

/// A committee run names its pool: while the devnet's pool has too few bonded members the run
/// is refused with how many it needs; once its four workers bond, `poco run --tag committee`
/// names the pool in its request and the drawn members carry the task.
#[test]
fn a_committee_run_goes_to_a_pool_with_enough_members() {
    let devnet = DevnetHome::start(&["--workers", "4"]);
    let home = devnet.path();
    let requester = ["--devnet-account", "requester"];
    let provider = ["--devnet-account", "app-provider"];
    let scheduler = ["--devnet-account", "scheduler"];
    let pool = json(home, &["devnet", "status"])["workerpool"].as_str().unwrap().to_owned();
    let app = json(
        home,
        &with(&provider, &["app", "deploy", "--name", "pi", "--file", "apps/pi/pi.wasm"]),
    );
    let app = app["address"].as_str().unwrap().to_owned();
    json(home, &with(&provider, &["order", "publish", "app", "--asset", &app, "--volume", "5"]));
    json(
        home,
        &with(
            &scheduler,
            &[
                "order",
                "publish",
                "workerpool",
                "--asset",
                &pool,
                "--price",
                "1 RLC",
                "--volume",
                "5",
                "--trust",
                "4",
                "--tag",
                "committee",
            ],
        ),
    );
    let committee_run = with(
        &requester,
        &["run", &app, "--args", "1000", "--trust", "4", "--tag", "committee", "--yes"],
    );
    let message = failure(home, &committee_run, 5);
    assert!(
        message.contains("has 0 active members, a committee of this trust needs 4"),
        "{message}"
    );

    for index in 0..4 {
        let worker = format!("worker-{index}");
        json(home, &["--devnet-account", &worker, "workerpool", "join", &pool]);
    }
    // The market counts the members from the chain's events: give it a moment.
    let mut run = Value::Null;
    for _ in 0..50 {
        let out = poco(home, &with(&["--json"], &committee_run));
        if out.status.success() {
            run = serde_json::from_slice(&out.stdout).unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let task = run["tasks"][0]["taskId"].as_str().expect("the committee run was matched");
    let watched = json(home, &["task", "show", task, "--watch"]);
    assert_eq!(watched["status"], "COMPLETED", "{watched}");
    let contributors = watched["contributors"].as_u64().unwrap();
    assert!((1..=3).contains(&contributors), "seat holders only: {watched}");
}

/// A run that would fail is refused before anything is paid; one run with `--no-check`
/// fails where the worker refuses its input, and `poco run` says so with its own exit code;
/// a task nobody can run has no result to download. Orders can still be unpublished once the
/// chain has been idle, and request orders are listed with their app.
#[test]
fn failures_are_caught_before_paying_and_shown_after() {
    let devnet = DevnetHome::start(&["--workers", "1"]);
    let home = devnet.path();
    let requester = ["--devnet-account", "requester"];
    let provider = ["--devnet-account", "app-provider"];
    let deploy = |name: &str, file: &str, url: Option<&str>| {
        let mut args = vec!["app", "deploy", "--name", name, "--file", file];
        args.extend(url.map(|url| ["--url", url]).into_iter().flatten());
        let app = json(home, &with(&provider, &args));
        let address = app["address"].as_str().unwrap().to_owned();
        json(home, &with(&provider, &["order", "publish", "app", "--asset", &address]));
        address
    };
    let pi = deploy("pi", "apps/pi/pi.wasm", None);
    // Registered with the right checksum, served from nowhere the workers may fetch (and an
    // app no worker has in its cache).
    let unfetchable =
        deploy("unfetchable", "apps/csvstats/csvstats.wasm", Some("http://127.0.0.1:9/app.wasm"));
    let balance = || json(home, &with(&requester, &["account", "balance"]));
    let before = balance();

    let message = failure(home, &with(&requester, &["run", &unfetchable, "--yes"]), 1);
    let expected = format!("the app {unfetchable} cannot be fetched");
    assert!(message.to_lowercase().contains(&expected.to_lowercase()), "{message}");
    // Loopback is this machine: the operator is told how to widen the policy to it.
    assert!(message.contains("--fetch.allow 127.0.0.0/8"), "{message}");
    assert!(message.contains("nothing was paid"), "{message}");
    for (input, why) in [
        ("file:///etc/passwd", "file:// URLs of input files are not allowed"),
        ("http://127.0.0.1:9/data.csv", "loopback"),
        ("http://[::ffff:127.0.0.1]:9/data.csv", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("ftp://example.com/data.csv", "ftp"),
    ] {
        let run = with(&requester, &["run", &pi, "--input-file", input, "--yes"]);
        let message = failure(home, &run, 1);
        assert!(message.contains("input file 1") && message.contains(why), "{input}: {message}");
    }
    let message = failure(home, &with(&requester, &["run", &pi, "--args", "\"open", "--yes"]), 1);
    assert!(message.contains("the arguments do not parse"), "{message}");
    assert_eq!(balance(), before, "nothing was paid for runs that could not succeed");

    // Paid anyway: the worker refuses the input too, and the failure is the request's.
    let run = with(
        &requester,
        &[
            "--json",
            "run",
            &pi,
            "--input-file",
            "file:///etc/passwd",
            "--no-check",
            "--watch",
            "--yes",
        ],
    );
    let out = poco(home, &run);
    assert_eq!(out.status.code(), Some(10), "{}", common::text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut values = serde_json::Deserializer::from_str(&stdout).into_iter::<Value>();
    let result = values.next().unwrap().unwrap();
    let error = values.next().unwrap().unwrap();
    assert_eq!(error["code"], "tasks_failed", "{error}");
    let task = &result["tasks"][0];
    assert_eq!(task["status"], "COMPLETED", "{result}");
    assert_eq!(task["failure"]["stage"], "input", "{result}");
    let cause = task["failure"]["cause"].as_str().unwrap();
    assert!(cause.contains("file:// URLs of input files are not allowed"), "{cause}");
    assert!(!stdout.contains("root:"), "nothing of the file reached the requester");
    let task_id = task["taskId"].as_str().unwrap().to_owned();
    let human = poco(home, &with(&requester, &["task", "show", &task_id]));
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains("failed") && human.contains("file:// URLs of input files"), "{human}");
    let shown = json(home, &["task", "show", &task_id]);
    assert!(shown.get("failure").is_none(), "only the beneficiary learns the cause: {shown}");

    // Paid without a check for an app no worker can fetch: the task waits for its final
    // deadline, with no result to download meanwhile.
    let run = json(home, &with(&requester, &["run", &unfetchable, "--no-check", "--yes"]));
    let stuck = run["tasks"][0]["taskId"].as_str().unwrap().to_owned();
    let message = failure(home, &with(&requester, &["result", "download", &stuck]), 9);
    assert!(message.contains("has no result yet"), "{message}");

    // The book of request orders shows the app each is for.
    let request = json(
        home,
        &with(&requester, &["order", "publish", "request", "--asset", &pi, "--price", "1 RLC"]),
    );
    let human = poco(home, &["orderbook", "request", "--app", &pi]);
    let human = String::from_utf8_lossy(&human.stdout);
    let header = human.lines().next().unwrap_or_default();
    assert!(header.split_whitespace().any(|column| column == "app"), "{human}");
    let row = human.lines().find(|line| line.contains(request["orderHash"].as_str().unwrap()));
    assert!(row.is_some_and(|row| row.to_lowercase().contains(&pi.to_lowercase())), "{human}");

    // A chain idle for 15 minutes: its last block is old, and unpublishing still works.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    devnet.rpc("evm_setTime", &serde_json::json!([now.as_secs() - 900]));
    devnet.rpc("evm_mine", &serde_json::json!([]));
    let hash = request["orderHash"].as_str().unwrap();
    let unpublished = json(home, &with(&requester, &["order", "unpublish", "request", hash]));
    assert_eq!(unpublished["status"], "unpublished");
}

/// Polls `devnet status` until the devnet runs (bounded: 3 minutes).
fn wait_running(home: &Path) -> Value {
    for _ in 0..360 {
        let status = json(home, &["devnet", "status"]);
        if status.get("pid").is_some() {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("the devnet did not start within 3 minutes");
}

/// `poco devnet up` in the foreground: Ctrl-C stops the whole process tree cleanly, and the
/// next `devnet up` resumes the same chain, with what was registered on it, every service on
/// the address it had.
#[test]
fn a_devnet_stops_on_ctrl_c_and_resumes_where_it_was() {
    let home = tempfile::tempdir().unwrap();
    let mut foreground = Command::new(env!("CARGO_BIN_EXE_poco"))
        .arg("--home")
        .arg(home.path())
        .args(["devnet", "up", "--workers", "1"])
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_running(home.path());
    let rpc = status["rpcUrl"].as_str().unwrap().to_owned();
    let protocol = status["deployment"]["poco"].clone();
    let app = json(
        home.path(),
        &[
            "--devnet-account",
            "app-provider",
            "app",
            "deploy",
            "--name",
            "pi",
            "--file",
            "apps/pi/pi.wasm",
        ],
    );
    let address = app["address"].as_str().unwrap().to_owned();

    let interrupted =
        Command::new("kill").args(["-INT", &foreground.id().to_string()]).status().unwrap();
    assert!(interrupted.success());
    let mut exit = None;
    for _ in 0..600 {
        if let Some(status) = foreground.try_wait().unwrap() {
            exit = Some(status);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let exit = exit.unwrap_or_else(|| {
        let _ = foreground.kill();
        panic!("devnet up did not stop within 60 s of Ctrl-C")
    });
    assert!(exit.success(), "Ctrl-C is a clean stop: {exit}");
    assert_eq!(json(home.path(), &["devnet", "status"])["running"], false);
    let address_of = rpc.trim_start_matches("http://");
    assert!(
        std::net::TcpStream::connect(address_of).is_err(),
        "the chain stopped with the devnet ({address_of})"
    );

    let devnet = DevnetHome { home, info: Value::Null };
    let resumed = json(devnet.path(), &["devnet", "up", "--detach", "--workers", "1"]);
    assert_eq!(resumed["deployment"]["poco"], protocol, "the same deployment");
    for endpoint in ["rpcUrl", "marketUrl", "schedulerUrl", "resultsUrl", "smsUrl"] {
        assert_eq!(resumed[endpoint], status[endpoint], "{endpoint} is the same as before");
    }
    let shown = json(devnet.path(), &["app", "show", &address]);
    assert_eq!(shown["name"], "pi", "what was registered before is still there");
}

/// Configuration layers: the file beats the defaults, the environment beats the file, a flag
/// beats the environment (the endpoint used is the one the error names).
#[test]
fn flags_beat_the_environment_which_beats_the_configuration_file() {
    let home = tempfile::tempdir().unwrap();
    let app = "0x00000000000000000000000000000000000000aa";
    std::fs::write(
        home.path().join("config.toml"),
        "rpc_url = \"http://127.0.0.1:9\"\n\
         poco_address = \"0x00000000000000000000000000000000000000bb\"\n",
    )
    .unwrap();
    let from_file = failure(home.path(), &["app", "show", app], 7);
    assert!(from_file.contains("127.0.0.1:9"), "the file's endpoint: {from_file}");

    let env = [("POCO_RPC_URL", "http://127.0.0.1:8")];
    let out = common::poco_env(home.path(), &["app", "show", app], &env);
    let from_env = common::text(&out);
    assert_eq!(out.status.code(), Some(7), "{from_env}");
    assert!(from_env.contains("127.0.0.1:8"), "the environment's endpoint: {from_env}");

    let args = ["--rpc.url", "http://127.0.0.1:7", "app", "show", app];
    let out = common::poco_env(home.path(), &args, &env);
    let from_flag = common::text(&out);
    assert_eq!(out.status.code(), Some(7), "{from_flag}");
    assert!(from_flag.contains("127.0.0.1:7"), "the flag's endpoint: {from_flag}");

    std::fs::write(home.path().join("config.toml"), "rpc_ulr = \"http://127.0.0.1:9\"\n").unwrap();
    let message = failure(home.path(), &["app", "show", app], 1);
    assert!(message.contains("rpc_ulr"), "an unknown key is named: {message}");
}

/// A devnet whose scheduler database is corrupt stops at once with SQLite's own error, not
/// after waiting for the scheduler's health answer (30 s).
#[test]
fn a_corrupt_scheduler_database_is_reported_at_once_with_its_cause() {
    let devnet = DevnetHome::start(&["--workers", "1"]);
    let home = devnet.path();
    let down = poco(home, &["devnet", "down"]);
    assert!(down.status.success(), "{}", common::text(&down));
    let database = home.join("devnet/scheduler/scheduler.db");
    assert!(database.is_file(), "the scheduler's database at {}", database.display());
    for stale in ["scheduler.db-wal", "scheduler.db-shm"] {
        let _ = std::fs::remove_file(home.join("devnet/scheduler").join(stale));
    }
    std::fs::write(&database, "not a database: a page of text where SQLite expects its header")
        .unwrap();

    let started = std::time::Instant::now();
    let out = poco(home, &["devnet", "up", "--detach", "--workers", "1"]);
    let took = started.elapsed();
    let message = common::text(&out);
    assert!(!out.status.success(), "{message}");
    assert!(message.contains("scheduler"), "the part that failed is named: {message}");
    assert!(message.contains("not a database"), "with SQLite's own error: {message}");
    assert!(!message.contains("did not answer"), "not a health check's timeout: {message}");
    assert!(!message.contains('\u{1b}'), "the log's tail without its terminal styles: {message}");
    eprintln!(
        "the corrupt database was reported {} ms after `devnet up`: {message}",
        took.as_millis()
    );
}

/// `poco market export` writes the open orders of a market, signed; `poco market import`
/// publishes them into a fresh market (its own empty database), where they are matched as in
/// the first: a deal bought through the new market uses the imported app and pool orders.
/// Importing twice changes nothing; a malformed file publishes nothing and says where.
#[test]
fn orders_exported_from_one_market_are_matched_in_another() {
    let devnet = DevnetHome::start(&["--workers", "1"]);
    let home = devnet.path();
    let requester = ["--devnet-account", "requester"];
    let app = common::pi_on_sale(home, "5");
    json(home, &with(&requester, &["order", "publish", "request", "--asset", &app]));
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("orders.jsonl");
    let exported = poco(home, &["market", "export", "--out", file.to_str().unwrap()]);
    assert!(exported.status.success(), "{}", common::text(&exported));
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    for kind in ["app", "workerpool", "request"] {
        assert!(kinds.contains(&kind), "a {kind} order exported: {kinds:?}");
    }
    assert!(lines.iter().all(|l| l["order"]["sign"].is_string()), "signed, as published");

    // A fresh market on the same chain, with its own empty database.
    let data = work.path().join("fresh-market");
    let mut fresh = common::Service::start(
        home,
        &[
            "market",
            "run",
            "--listen",
            "127.0.0.1:0",
            "--data.dir",
            data.to_str().unwrap(),
            "--confirmations",
            "0",
        ],
        &[],
    );
    let url = format!("http://{}", common::bound(&fresh.line("market listening on")));
    let fresh_market = ["--market.url", url.as_str()];
    let empty = json(home, &with(&fresh_market, &["orderbook", "app"]));
    assert_eq!(empty["count"], 0, "the fresh market starts empty: {empty}");

    // A malformed line: nothing is published, and the line is named.
    let broken = work.path().join("broken.jsonl");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("{\"kind\": \"app\"\n");
    std::fs::write(&broken, text).unwrap();
    let message =
        failure(home, &with(&fresh_market, &["market", "import", broken.to_str().unwrap()]), 2);
    assert!(message.contains(&format!("broken.jsonl:{}", lines.len() + 1)), "{message}");
    assert_eq!(
        json(home, &with(&fresh_market, &["orderbook", "app"]))["count"],
        0,
        "nothing published"
    );

    let imported = json(home, &with(&fresh_market, &["market", "import", file.to_str().unwrap()]));
    assert_eq!(imported["published"], lines.len(), "{imported}");
    assert_eq!(imported["refused"], serde_json::json!([]), "{imported}");
    let again = json(home, &with(&fresh_market, &["market", "import", file.to_str().unwrap()]));
    assert_eq!(
        (again["published"].as_u64(), again["already"].as_u64()),
        (Some(0), Some(lines.len() as u64))
    );

    // Bought through the fresh market: the deal consumes a task of the imported app order.
    let imported_app = lines.iter().find(|l| l["kind"] == "app").unwrap();
    let run = json(home, &with(&fresh_market, &with(&requester, &["run", &app, "--yes"])));
    assert!(run["dealId"].is_string(), "{run}");
    // The fresh market follows the chain: bounded wait for it to apply the match.
    let mut app_orders = Value::Null;
    for _ in 0..100 {
        app_orders = json(home, &with(&fresh_market, &["orderbook", "app"]));
        if app_orders["orders"][0]["remaining"] == "4" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let sold = &app_orders["orders"][0];
    assert_eq!(sold["order"], imported_app["order"], "the imported order: {app_orders}");
    assert_eq!(sold["remaining"], "4", "one task of it sold by the deal: {app_orders}");
    drop(fresh);
}

/// S3 settings belong to an S3 store: given with a folder, the result store refuses to start
/// (before it reads any chain), and the settings file's secrets are never echoed.
#[test]
fn s3_settings_for_a_folder_store_are_refused_before_anything_starts() {
    let home = tempfile::tempdir().unwrap();
    let settings = home.path().join("s3.env");
    std::fs::write(&settings, "AWS_SECRET_ACCESS_KEY=never-shown\n").unwrap();
    let results = home.path().join("results");
    let args = [
        "--rpc.url",
        "http://127.0.0.1:9",
        "--poco.address",
        "0x0000000000000000000000000000000000000001",
        "result-store",
        "run",
        "--storage",
        results.to_str().unwrap(),
        "--storage.s3-settings",
        settings.to_str().unwrap(),
    ];
    let message = failure(home.path(), &args, 2);
    assert!(message.contains("s3://"), "{message}");
    assert!(!message.contains("never-shown"), "{message}");
}

/// The devnet's chain node killed with SIGKILL at random moments while deals run, ten times in
/// a row: each time the devnet starts it again behind the same endpoint, from a saved state
/// holding every write it answered. No deal is lost or left unscheduled, nothing stays frozen,
/// and every balance is exact to the nRLC.
#[test]
fn a_chain_node_killed_ten_times_during_deals_is_restarted_and_loses_nothing() {
    use std::time::{Duration, Instant};

    let devnet = DevnetHome::start(&["--workers", "2"]);
    let home = devnet.path().to_owned();
    let rpc_url = devnet.info["rpcUrl"].as_str().unwrap().to_owned();
    let requester = ["--devnet-account", "requester"];
    let app = common::pi_on_sale(&home, "1000");
    let roles = ["requester", "app-provider", "scheduler", "worker-0", "worker-1"];
    // What a role holds in its poco account (gas is paid in ETH), and what of it is frozen.
    let account = |role: &str| -> (u128, u128) {
        let balance = json(&home, &["--devnet-account", role, "account", "balance"]);
        let field = |name: &str| balance[name].as_str().unwrap().parse::<u128>().unwrap();
        (field("free") + field("frozen"), field("frozen"))
    };
    let before: Vec<u128> = roles.iter().map(|role| account(role).0).collect();

    // Ten kills at random moments (the seed replays a run's moments).
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
            as u64
            | 1;
    eprintln!("kill moments from seed {seed}");
    let killer_home = home.clone();
    let killer = std::thread::spawn(move || {
        let mut state = seed;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut downtimes = Vec::new();
        for round in 1..=10u64 {
            std::thread::sleep(Duration::from_millis(200 + random() % 1800));
            let node = json(&killer_home, &["devnet", "status"])["chainNode"].clone();
            assert_eq!(node["state"], "running", "{node}");
            let pid = node["pid"].as_u64().unwrap().to_string();
            let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
            assert!(killed.success(), "kill -KILL {pid}");
            let at = Instant::now();
            loop {
                let node = json(&killer_home, &["devnet", "status"])["chainNode"].clone();
                if node["restarts"] == round && node["state"] == "running" {
                    assert_ne!(node["pid"].as_u64().unwrap().to_string(), pid, "a new anvil");
                    break;
                }
                assert!(at.elapsed() < Duration::from_secs(60), "not restarted in 60 s: {node}");
                std::thread::sleep(Duration::from_millis(20));
            }
            downtimes.push(at.elapsed());
        }
        downtimes
    });

    // Deals bought and followed to the end while the node dies; one more after the last kill.
    let mut deals = Vec::new();
    let mut paid = 0u128;
    let mut buy = || {
        let run =
            json(&home, &with(&requester, &["run", &app, "--volume", "2", "--yes", "--watch"]));
        for task in run["tasks"].as_array().unwrap() {
            assert_eq!(task["status"], "COMPLETED", "{run}");
        }
        paid += run["costs"]["total"].as_str().unwrap().parse::<u128>().unwrap();
        deals.push(run["dealId"].as_str().unwrap().to_owned());
    };
    while !killer.is_finished() {
        buy();
    }
    let downtimes = killer.join().unwrap();
    buy();
    eprintln!(
        "{} deals of 2 tasks, 10 kills; from each kill to anvil running again (ms): {:?}",
        deals.len(),
        downtimes.iter().map(|d| d.as_millis()).collect::<Vec<_>>()
    );

    let status = json(&home, &["devnet", "status"]);
    assert_eq!(status["rpcUrl"], rpc_url.as_str(), "the same endpoint");
    assert_eq!(status["chainNode"]["endpoint"], rpc_url.as_str());
    assert_eq!(status["chainNode"]["restarts"], 10);
    // Every deal bought is on the chain, its tasks completed.
    let listed = json(&home, &with(&requester, &["deal", "list"])).to_string();
    for deal in &deals {
        assert!(listed.contains(deal.as_str()), "deal {deal} is on the chain: {listed}");
        let shown = json(&home, &["deal", "show", deal]);
        for task in shown["tasks"].as_array().unwrap() {
            assert_eq!(task["status"], "COMPLETED", "{shown}");
        }
    }
    // RLC moved between these accounts only, the requester paid exactly the deals' price, and
    // nothing is frozen (every stake returned).
    let after: Vec<(u128, u128)> = roles.iter().map(|role| account(role)).collect();
    assert_eq!(after[0].0, before[0] - paid, "the requester paid exactly {paid} nRLC");
    assert_eq!(after.iter().map(|a| a.0).sum::<u128>(), before.iter().sum::<u128>());
    for (role, (_, frozen)) in roles.iter().zip(&after) {
        assert_eq!(*frozen, 0, "{role} has nothing frozen");
    }
}

/// `poco devnet up --postgres URL --s3 URL`: the market, the scheduler and the SMS keep their
/// data in databases of their own on the PostgreSQL server, the result store in a bucket of a
/// real S3-compatible server; a task runs and its result is downloaded from the bucket, and none
/// of their files is in the devnet's folder. Started again without the flags, the devnet keeps
/// its engines (the task still shows, its result still downloads); asked for others, it
/// refuses.
#[test]
#[ignore = "needs PostgreSQL"]
fn a_devnet_runs_its_services_on_postgresql_and_s3() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(poco_test_utils::postgres::TestDatabase::create("devnet"));
    let s3 = poco_test_utils::s3::S3Server::start();
    s3.create_bucket("devnet-results");
    let work = tempfile::tempdir().unwrap();
    let settings = s3.settings_file(work.path(), "devnet-s3-secret");
    let settings = settings.to_str().unwrap();
    let engines = [
        "--postgres",
        database.url.as_str(),
        "--s3",
        "s3://devnet-results/pool",
        "--s3-settings",
        settings,
    ];
    let devnet = DevnetHome::start(&with(&["--workers", "1"], &engines));
    let home = devnet.path();
    let requester = ["--devnet-account", "requester"];
    let app = common::pi_on_sale(home, "10");
    let first = work.path().join("first");
    let run = json(
        home,
        &with(&requester, &["run", &app, "--yes", "--download", first.to_str().unwrap()]),
    );
    assert_eq!(run["tasks"][0]["status"], "COMPLETED", "{run}");
    let task = run["tasks"][0]["taskId"].as_str().unwrap().to_owned();
    assert!(std::fs::read_to_string(first.join("result.txt")).unwrap().starts_with("samples="));

    // The result is in the bucket, the services' rows on the server, their files nowhere else.
    assert!(s3.listing("devnet-results").contains("pool/"), "the result is in the bucket");
    let rows = |suffix: &str, table: &str| runtime.block_on(database.rows_beside(suffix, table));
    assert!(rows("market", "orders") >= 2, "the app and pool orders are on PostgreSQL");
    assert!(rows("scheduler", "tasks") >= 1, "the task is in the scheduler's database");
    assert!(rows("sms", "_sqlx_migrations") >= 1, "the SMS's database is there");
    for file in ["market/market.sqlite", "scheduler/scheduler.db", "sms/sms.db", "results"] {
        let path = home.join("devnet").join(file);
        assert!(!path.exists(), "{} is not used", path.display());
    }
    let log = std::fs::read_to_string(home.join("devnet/devnet.log")).unwrap();
    assert!(!log.contains("devnet-s3-secret"), "the S3 secret is in no log");

    // Started again without the flags: the same engines.
    let down = poco(home, &["devnet", "down"]);
    assert!(down.status.success(), "{}", common::text(&down));
    json(home, &["devnet", "up", "--detach", "--workers", "1"]);
    assert_eq!(json(home, &["task", "show", &task])["status"], "COMPLETED");
    let second = work.path().join("second");
    let downloaded = json(
        home,
        &with(&requester, &["result", "download", &task, "--out-dir", second.to_str().unwrap()]),
    );
    assert!(second.join("result.txt").exists(), "downloaded again from the bucket: {downloaded}");
    assert!(!home.join("devnet/market/market.sqlite").exists());

    // Asked for other engines, it refuses and says why.
    let down = poco(home, &["devnet", "down"]);
    assert!(down.status.success(), "{}", common::text(&down));
    let other = ["devnet", "up", "--detach", "--workers", "1", "--s3", "s3://elsewhere"];
    let refused = poco(home, &other);
    let message = common::text(&refused);
    assert!(!refused.status.success(), "{message}");
    assert!(message.contains("keeps its data in"), "{message}");
    drop(devnet);
    runtime.block_on(database.drop_with_those_beside(&["market", "scheduler", "sms"]));
}
