//! What people see in a terminal (a pseudo-terminal, through util-linux's `script`): progress
//! drawn while they wait on `devnet up --detach` and `run --watch`, and nothing of it when the
//! output is piped or asked as JSON.

mod common;

use crate::common::{DevnetHome, json, poco, poco_in_terminal, text, with};

/// Whether `output` holds a progress display: lines redrawn in place (erase-line sequences).
fn draws_progress(output: &str) -> bool {
    output.contains("\u{1b}[2K")
}

#[test]
fn progress_is_drawn_in_a_terminal_and_never_piped() {
    // `devnet up --detach`: a spinner with what the devnet is doing, until it is ready.
    let home = tempfile::tempdir().unwrap();
    let shown = poco_in_terminal(home.path(), &["devnet", "up", "--detach", "--workers", "1"]);
    let devnet = DevnetHome { info: json(home.path(), &["devnet", "status"]), home };
    let home = devnet.path();
    assert!(draws_progress(&shown), "a progress display: {shown:?}");
    assert!(shown.contains("starting the devnet"), "{shown:?}");
    assert!(shown.contains("chain (JSON-RPC)"), "then the devnet's summary: {shown:?}");

    let requester = ["--devnet-account", "requester"];
    let app = common::pi_on_sale(home, "10");

    // `run --watch`: a bar of the tasks done and a line per task, in colour.
    let run = ["run", app.as_str(), "--args", "1000", "--yes", "--watch"];
    let shown = poco_in_terminal(home, &with(&requester, &run));
    assert!(draws_progress(&shown), "{shown:?}");
    assert!(shown.contains("tasks done ["), "a bar of the tasks done: {shown:?}");
    assert!(shown.contains("task 0 0x"), "a line for the task, its id short: {shown:?}");
    assert!(shown.contains("\u{1b}[32mCOMPLETED"), "its status in colour: {shown:?}");

    // Piped: a line per change of status, no redrawing, no colour.
    let piped = poco(home, &with(&requester, &run));
    assert!(piped.status.success(), "{}", text(&piped));
    let piped = text(&piped);
    assert!(!piped.contains('\u{1b}'), "no escape sequence when piped: {piped:?}");
    assert!(piped.contains("tasks done: "), "{piped}");
    assert!(!piped.contains("tasks done ["), "{piped}");

    // JSON in a terminal: the JSON alone.
    let shown = poco_in_terminal(home, &with(&["--json"], &with(&requester, &run)));
    assert!(!draws_progress(&shown) && !shown.contains("tasks done"), "{shown:?}");
    let start = shown.find('{').unwrap();
    let value: serde_json::Value = serde_json::from_str(shown[start..].trim()).unwrap();
    assert_eq!(value["tasks"][0]["status"], "COMPLETED");
}
