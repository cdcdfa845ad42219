//! The explorer in a real browser (Debian's Chromium, driven by playwright-core from
//! `explorer/tests/browser.mjs`) over a devnet after a trust-4 run with a byzantine worker:
//! the deal page shows its tasks COMPLETED and the byzantine worker's contribution losing,
//! its stake seized; the workerpool page shows its workers; search finds a task by id; the
//! market page shows a new order within 2 s; an app's page shows its registry record and
//! orders, markup in its name as text; a task claimed past its final deadline shows the
//! sponsor's refund and the scheduler's stake seized; an account shows its balance and frozen
//! funds; no page has a serious accessibility violation (axe-core). Screenshots are saved
//! under `target/explorer-screenshots`.

mod common;

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
};

use serde_json::Value;

use crate::common::{DevnetHome, json, root, with};

#[test]
fn the_explorer_shows_a_deal_its_workers_and_a_live_market() {
    let chromium = std::env::var("POCO_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).is_file(),
        "no Chromium at {chromium}: apt-get install chromium chromium-driver (scripts/test.sh \
         does), or set POCO_CHROMIUM"
    );
    let node = root().join("node_modules/.bin/node");
    assert!(node.is_file(), "no {}: run `npm ci` at the repository root", node.display());

    // One slot per worker and more replicas than workers: the byzantine worker gets one.
    let devnet = DevnetHome::start(&["--workers", "4", "--byzantine-workers", "1", "--slots", "1"]);
    let home = devnet.path();
    let provider = ["--devnet-account", "app-provider"];
    let requester = ["--devnet-account", "requester"];
    let app = common::pi_on_sale(home, "100");
    let run = json(
        home,
        &with(
            &requester,
            &["run", &app, "--args", "20000", "--trust", "4", "--volume", "3", "--yes", "--watch"],
        ),
    );
    let deal = run["dealId"].as_str().unwrap().to_owned();
    let task = run["tasks"][0]["taskId"].as_str().unwrap().to_owned();
    let status = json(home, &["devnet", "status"]);
    let role = |name: &str| -> String {
        status["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a[0] == name)
            .map(|a| a[1].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{name} in {status}"))
    };
    let byzantine = role("worker-4");
    let requester_address = role("requester");

    // An app whose owner wrote markup in its name, fetched from nowhere: its task waits for
    // its final deadline, then the scheduler claims it and the sponsor is refunded.
    let hostile_name = r#"<img src=x onerror="document.title='owned'">"#;
    let hostile = json(
        home,
        &with(
            &provider,
            &[
                "app",
                "deploy",
                "--name",
                hostile_name,
                "--file",
                "apps/pi/pi.wasm",
                "--url",
                "http://127.0.0.1:9/app.wasm",
            ],
        ),
    );
    let hostile = hostile["address"].as_str().unwrap().to_owned();
    json(
        home,
        &with(&provider, &["order", "publish", "app", "--asset", &hostile, "--volume", "2"]),
    );
    let stuck = json(home, &with(&requester, &["run", &hostile, "--no-check", "--yes"]));
    let claimed = stuck["tasks"][0]["taskId"].as_str().unwrap().to_owned();
    devnet.rpc("evm_increaseTime", &serde_json::json!([30 * 24 * 3600]));
    devnet.rpc("evm_mine", &serde_json::json!([]));
    let failed = (0..240).any(|_| {
        let shown = json(home, &["task", "show", &claimed]);
        shown["status"] == "FAILED" || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            false
        }
    });
    assert!(failed, "the scheduler claimed the task past its final deadline within 2 minutes");
    let workerpool = status["workerpool"].as_str().unwrap().to_owned();
    let market = status["marketUrl"].as_str().unwrap().to_owned();

    let shots = root().join("target/explorer-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut browser = Command::new(&node)
        .arg(root().join("explorer/tests/browser.mjs"))
        .env("MARKET_URL", &market)
        .env("DEAL_ID", &deal)
        .env("TASK_ID", &task)
        .env("BYZANTINE", &byzantine)
        .env("WORKERPOOL", &workerpool)
        .env("HOSTILE_APP", &hostile)
        .env("HOSTILE_NAME", hostile_name)
        .env("CLAIMED_TASK", &claimed)
        .env("REQUESTER", &requester_address)
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let opened = lines.next().and_then(Result::ok);
    assert_eq!(opened.as_deref(), Some("market-open"), "the browser checks up to the market");
    // A new order while the market page is open.
    let order = json(
        home,
        &with(
            &provider,
            &["order", "publish", "app", "--asset", &app, "--volume", "7", "--price", "0.2 RLC"],
        ),
    );
    let hash = order["orderHash"].as_str().unwrap();
    writeln!(browser.stdin.as_mut().unwrap(), "{hash}").unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let exit = browser.wait().unwrap();
    assert!(exit.success(), "the browser checks failed: {rest:?}");
    let results: Value = serde_json::from_str(rest.last().expect("results")).unwrap();
    eprintln!("explorer: {results}");
    assert!(results["liveUpdateMs"].as_u64().unwrap() <= 2000, "{results}");
    for name in [
        "deal",
        "deal-phone",
        "workerpool",
        "task",
        "app",
        "task-claimed",
        "requester",
        "api",
        "market",
        "market-updated",
    ] {
        assert!(shots.join(format!("{name}.png")).is_file(), "{name}.png saved");
    }
}
