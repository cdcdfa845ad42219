//! A worker among strangers: the URLs a requester chooses never reach the worker's own files or
//! networks, and a failed task is seen, with its cause, and paid by whoever caused it.
//!
//! The app is `wordcount`, which copies every input it gets into its result (uppercased): had
//! a refused URL been fetched, its content would be in the result.

use std::{net::SocketAddr, path::Path, sync::Arc};

use alloy::primitives::{Address, B256, U256};
use poco_devnet::cluster::Cluster;
use poco_primitives::result::{FAILURE_FILE, FailureRecord, FailureStage};
use poco_test_utils::{OrderSpec, RLC, logs::capture_logs, wait_until};
use poco_worker::exec::{ExecFuture, ExecSpec, Executor, WasmExecutor};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::MINUTE;

/// What the worker's machine must never hand to a stranger's app.
const MARKER: &str = "private-marker-5b1f";

/// An HTTP server on `ip` answering every request with `response`.
async fn serve(ip: &str, response: String) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    address
}

fn ok(body: &str) -> String {
    format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
}

fn redirect_to(location: &str) -> String {
    format!(
        "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
}

fn params_with_input(url: &str) -> String {
    serde_json::json!({ "iexec_input_files": [url] }).to_string()
}

/// Runs a trust-1 task of `params` to completion and returns its result's files and bytes.
async fn run(cluster: &mut Cluster, params: &str) -> (B256, Vec<String>, Vec<u8>) {
    let deal = cluster.deal(1, 1, params).await;
    cluster.wait_completed(&deal, MINUTE).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let downloaded = cluster.download(task_id).await;
    let files = downloaded.summary.files.iter().map(|(path, _)| path.clone()).collect();
    (task_id, files, downloaded.archive.to_vec())
}

/// Waits until the scheduler shows that its worker gave `task` up.
async fn given_up(cluster: &Cluster, task: B256) {
    wait_until("the worker gave up the task", MINUTE, || async {
        let status = reqwest::get(format!("{}/tasks/{task}", cluster.scheduler_url())).await;
        match status {
            Ok(response) => response.text().await.unwrap_or_default().contains("failed"),
            Err(_) => false,
        }
    })
    .await;
}

fn failure_in(cluster: &Cluster, task: B256, archive: &[u8]) -> FailureRecord {
    let dir = cluster.scratch().join(format!("result-{task}"));
    poco_api::results::archive::unpack_to_dir(archive, &dir, &Default::default()).unwrap();
    FailureRecord::from_json(&std::fs::read(dir.join(FAILURE_FILE)).unwrap()).unwrap()
}

/// Every spelling of the worker's own files and networks, chosen as an input file by the
/// requester: the task ends with a failure record naming the refusal, and nothing of the
/// target reaches the app, the result or any log. An input the operator did allow goes
/// through, to show the app would have copied the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requester_chosen_inputs_never_reach_the_workers_files_or_networks() {
    let logs = capture_logs();
    let mut cluster = Cluster::start(1, "wordcount").await;
    let secret = serve("127.0.0.1", ok(MARKER)).await;
    let secret_url = format!("http://127.0.0.1:{}/secret", secret.port());
    // 127.0.0.2 stands for a public server; it redirects to the worker's loopback.
    let hop = serve("127.0.0.2", redirect_to(&secret_url)).await;

    let mut config = cluster.worker_config(0);
    let data = config.data_dir.clone();
    poco_chain::files::create_private_dirs(&data).unwrap();
    std::fs::write(data.join("keystore.json"), MARKER).unwrap();
    std::fs::write(data.join("config.toml"), MARKER).unwrap();
    let inputs = cluster.scratch().join("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::write(inputs.join("allowed.txt"), "an allowed input\n").unwrap();
    std::os::unix::fs::symlink(data.join("keystore.json"), inputs.join("link.txt")).unwrap();
    config.fetch.input_dirs = vec![inputs.clone()];
    config.fetch.allow = vec!["127.0.0.2/32".parse().unwrap()];
    config.fetch.hosts.insert("public.example".into(), vec!["127.0.0.1".parse().unwrap()]);
    cluster.start_worker_with(0, config, Arc::new(WasmExecutor::new().unwrap()));

    let port = secret.port();
    let escape = format!("{}/../../{}/keystore.json", inputs.display(), relative(&inputs, &data));
    let refused = [
        "file:///etc/passwd".to_owned(),
        format!("file://{}", data.join("keystore.json").display()),
        format!("file://{}", data.join("config.toml").display()),
        format!("file://{escape}"),
        format!("file://{}", inputs.join("link.txt").display()),
        format!("{}/metrics", cluster.scheduler_url()),
        format!("http://[::1]:{port}/secret"),
        format!("http://[::ffff:127.0.0.1]:{port}/secret"),
        format!("http://2130706433:{port}/secret"),
        format!("http://0.0.0.0:{port}/secret"),
        format!("http://localhost:{port}/secret"),
        format!("http://public.example:{port}/secret"),
        format!("http://127.0.0.2:{}/", hop.port()),
    ];
    for url in &refused {
        let (task, files, archive) = run(&mut cluster, &params_with_input(url)).await;
        assert_eq!(files, [FAILURE_FILE], "{url}: only the failure record");
        let failure = failure_in(&cluster, task, &archive);
        assert_eq!(failure.stage, FailureStage::Input, "{url}");
        assert!(
            failure.cause.starts_with("input file 1: input file URL refused"),
            "{url}: {failure:?}"
        );
        assert!(!String::from_utf8_lossy(&archive).contains(MARKER), "{url}: the target leaked");
    }
    let (_, files, archive) = run(
        &mut cluster,
        &params_with_input(&format!("file://{}", inputs.join("allowed.txt").display())),
    )
    .await;
    assert!(files.contains(&"upper/allowed.txt".to_owned()), "{files:?}");
    assert!(String::from_utf8_lossy(&archive).contains("AN ALLOWED INPUT"));
    let logged = String::from_utf8_lossy(&logs.contents()).into_owned();
    assert!(logged.contains("input file URL refused") || logged.contains("cannot be fetched"));
    assert!(!logged.contains(MARKER), "a log line holds the target's content");
}

/// `to` relative to `from` (both absolute, no symbolic link in between).
fn relative(from: &Path, to: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let ups = from.len() - common - 2; // the two `..` written before it
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_owned(), ups).collect();
    parts.extend(to[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    parts.join("/")
}

/// With loopback allowed by the operator, the same fetch works: the refusal is the policy's,
/// and the operator lifts exactly what it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_allowance_lets_the_same_loopback_fetch_through() {
    let mut cluster = Cluster::start(1, "wordcount").await;
    let secret = serve("127.0.0.1", ok("served locally\n")).await;
    let mut config = cluster.worker_config(0);
    config.fetch.allow = vec!["127.0.0.0/8".parse().unwrap()];
    cluster.start_worker_with(0, config, Arc::new(WasmExecutor::new().unwrap()));
    let url = format!("http://127.0.0.1:{}/local.txt", secret.port());
    let (_, files, archive) = run(&mut cluster, &params_with_input(&url)).await;
    assert!(files.contains(&"upper/local.txt".to_owned()), "{files:?}");
    assert!(String::from_utf8_lossy(&archive).contains("SERVED LOCALLY"));
}

/// The money of a trust-1 task at the cluster's prices (app 1 RLC, pool 2 RLC, scheduler
/// share 1%): what each account gains (+) or loses (-) when the task is paid.
fn paid_task(
    requester: Address,
    app_owner: Address,
    scheduler: Address,
    worker: Address,
) -> Vec<(Address, i128)> {
    let pool = 2 * RLC as i128;
    let worker_reward = pool * 99 / 100;
    vec![
        (requester, -(RLC as i128) - pool),
        (app_owner, RLC as i128),
        (scheduler, pool - worker_reward),
        (worker, worker_reward),
    ]
}

async fn balances(cluster: &Cluster, accounts: &[Address]) -> Vec<i128> {
    let mut out = Vec::new();
    for account in accounts {
        out.push(i128::try_from(cluster.balance(*account).await).unwrap());
    }
    out
}

/// Each kind of failure, to the nRLC: an app that ends in error and an input refused are
/// outcomes of the request, agreed and paid like any result, and say why; a task no worker
/// can run (its app does not have its registered checksum) is never contributed, is claimed
/// at its final deadline without anyone asking, and the requester gets exactly its money back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_is_seen_and_paid_by_whoever_caused_it() {
    let mut cluster = Cluster::start(1, "wordcount").await;
    cluster.start_worker(0);
    let accounts = cluster.net.accounts().clone();
    let (requester, app_owner, scheduler, worker) = (
        accounts.requester.address(),
        accounts.app_provider.address(),
        accounts.scheduler.address(),
        accounts.workers[0].address(),
    );
    let who = [requester, app_owner, scheduler, worker];
    let expected = paid_task(requester, app_owner, scheduler, worker);

    // The app ends in error (wordcount without any input exits 2, saying why).
    let before = balances(&cluster, &who).await;
    let (task, files, archive) = run(&mut cluster, "").await;
    assert_eq!(files, [FAILURE_FILE]);
    let failure = failure_in(&cluster, task, &archive);
    assert_eq!((failure.stage, failure.exit_code), (FailureStage::Run, Some(2)));
    assert_eq!(failure.cause, "exited with status 2");
    assert!(failure.stderr_tail.contains("wordcount: no input file"), "{failure:?}");
    let after = balances(&cluster, &who).await;
    for ((account, change), (b, a)) in expected.iter().zip(before.iter().zip(&after)) {
        assert_eq!(a - b, *change, "an app error is paid like any result: {account}");
    }

    // An input the policy refuses.
    let before = after;
    let (task, _, archive) = run(&mut cluster, &params_with_input("file:///etc/passwd")).await;
    let failure = failure_in(&cluster, task, &archive);
    assert_eq!(failure.stage, FailureStage::Input);
    let after = balances(&cluster, &who).await;
    for ((account, change), (b, a)) in expected.iter().zip(before.iter().zip(&after)) {
        assert_eq!(a - b, *change, "a refused input is paid like any result: {account}");
    }

    // An app whose URL does not serve its registered checksum: no worker can run it.
    let broken = cluster
        .net
        .create_app_at(
            &accounts.app_provider,
            "broken",
            &format!(
                "file://{}",
                poco_test_utils::apps_dir().join("wordcount/wordcount.wasm").display()
            ),
            B256::repeat_byte(0xbb),
        )
        .await;
    let before = balances(&cluster, &who).await;
    let spec = OrderSpec { app: broken, params: params_with_input("x"), ..OrderSpec::default() };
    let deal = cluster.deal_with(spec).await;
    let task = deal.task_id(deal.botFirst).unwrap();
    let poco = cluster.net.owner().poco(cluster.net.deployment().poco);
    given_up(&cluster, task).await;
    assert_eq!(poco.viewTask(task).call().await.unwrap().contributors, U256::ZERO);
    cluster.net.warp(10 * 300).await;
    wait_until("the task is claimed", MINUTE, || async { cluster.status(task).await == 4 }).await;
    let after = balances(&cluster, &who).await;
    let stake = (2 * RLC * 30 / 100) as i128;
    let changes: Vec<i128> = before.iter().zip(&after).map(|(b, a)| a - b).collect();
    assert_eq!(changes, [0, 0, -stake, 0], "the requester refunded, the scheduler's stake burned");
}

/// The real sandbox with its wall-clock safety net cut to one second: what a machine far
/// slower than the fuel budget expects, or an app sleeping past it, meets.
struct ImpatientSandbox(WasmExecutor);

impl Executor for ImpatientSandbox {
    fn backend(&self) -> &'static str {
        "wasm, 1 s"
    }

    fn execute(&self, mut spec: ExecSpec) -> ExecFuture<'_> {
        spec.limits = spec.limits.with_timeout(std::time::Duration::from_secs(1));
        self.0.execute(spec)
    }
}

/// An app that writes its answer to its error output, then sleeps past the wall-clock safety
/// net: the run is not reproducible, so it is not contributed (the requester is refunded at the
/// deadline), and what it wrote reaches neither the chain nor the scheduler's task log that
/// the requester reads: a failure that is refunded gives nothing away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_stopped_by_the_wall_clock_leaks_nothing_to_the_requester() {
    let mut cluster = Cluster::start(1, "testing/sleeper").await;
    let config = cluster.worker_config(0);
    cluster.start_worker_with(0, config, Arc::new(ImpatientSandbox(WasmExecutor::new().unwrap())));
    let deal = cluster.deal(1, 1, r#"{"iexec_args":"3600"}"#).await;
    let task = deal.task_id(deal.botFirst).unwrap();
    given_up(&cluster, task).await;
    let poco = cluster.net.owner().poco(cluster.net.deployment().poco);
    assert_eq!(poco.viewTask(task).call().await.unwrap().contributors, U256::ZERO);

    let path = format!("/tasks/{task}/logs");
    let headers = poco_primitives::request::SignedRequest::fresh("GET", &path, b"")
        .headers_signed_by(&cluster.net.accounts().requester)
        .unwrap();
    let mut request = reqwest::Client::new().get(format!("{}{path}", cluster.scheduler_url()));
    for (name, value) in headers.pairs() {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let logs = response.text().await.unwrap();
    assert!(logs.contains("timed out"), "the requester learns why: {logs}");
    assert!(!logs.contains("sleeping 3600 s"), "the app's output leaked: {logs}");
}
