//! The chain client against a real anvil: concurrent transactions from one wallet, the gas
//! margin, the confirmation depth, retries of transient RPC failures, and nonces after a
//! refused broadcast.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use alloy::{
    primitives::{Address, U256},
    providers::{Provider, ext::AnvilApi},
};
use poco_chain::{ChainClient, ClientConfig};
use poco_contracts::bindings::RLC;
use poco_test_utils::TestNet;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// Twenty transactions sent at once from one wallet all land, with consecutive nonces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_from_one_wallet_all_land() {
    let net = TestNet::start(0).await;
    let client = net.client(&net.accounts().requester);
    let token = RLC::new(net.deployment().token, client.provider().clone());
    let start = client.provider().get_transaction_count(client.sender().unwrap()).await.unwrap();
    let sends = (1..=20u64).map(|i| {
        let (client, address) = (client.clone(), net.deployment().token);
        async move {
            let token = RLC::new(address, client.provider().clone());
            client.send(token.approve(Address::with_last_byte(i as u8), U256::from(i))).await
        }
    });
    let receipts = futures_all(sends).await;
    let mut nonces = Vec::new();
    for receipt in receipts {
        let receipt = receipt.expect("every transaction lands");
        let tx = client
            .provider()
            .get_transaction_by_hash(receipt.transaction_hash)
            .await
            .unwrap()
            .unwrap();
        nonces.push(alloy::consensus::Transaction::nonce(&tx));
    }
    nonces.sort_unstable();
    assert_eq!(nonces, (start..start + 20).collect::<Vec<_>>(), "no nonce reused or skipped");
    for i in 1..=20u64 {
        let allowance = token
            .allowance(client.sender().unwrap(), Address::with_last_byte(i as u8))
            .call()
            .await
            .unwrap();
        assert_eq!(allowance, U256::from(i));
    }
}

/// Runs every future concurrently and returns their outputs in order.
async fn futures_all<F, T>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.expect("the task completes"));
    }
    outputs
}

/// The gas limit is the estimate plus the configured margins (a percentage, then a fixed amount).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gas_limit_is_the_estimate_plus_the_margin() {
    let net = TestNet::start(0).await;
    let signer = net.accounts().requester.clone();
    let config =
        ClientConfig { gas_margin_percent: 35, gas_margin_extra: 1_000, ..ClientConfig::default() };
    let client = ChainClient::connect(net.devnet().rpc_url(), Some(signer), config).await.unwrap();
    let token = RLC::new(net.deployment().token, client.provider().clone());
    let call = token.approve(Address::with_last_byte(7), U256::from(5));
    let estimate = call.estimate_gas().await.unwrap();
    let receipt = client.send(call).await.unwrap();
    let tx =
        client.provider().get_transaction_by_hash(receipt.transaction_hash).await.unwrap().unwrap();
    assert_eq!(alloy::consensus::Transaction::gas_limit(&tx), estimate * 135 / 100 + 1_000);
    assert!(receipt.gas_used < estimate * 135 / 100);
}

/// With a confirmation depth of 2, `send` returns only once two blocks sit on top of the one
/// that includes the transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_waits_for_the_confirmation_depth() {
    let net = TestNet::start(0).await;
    let signer = net.accounts().requester.clone();
    let config = ClientConfig {
        confirmations: 2,
        poll_interval: Duration::from_millis(50),
        ..ClientConfig::default()
    };
    let client = ChainClient::connect(net.devnet().rpc_url(), Some(signer), config).await.unwrap();
    let address = net.deployment().token;
    let sending = tokio::spawn(async move {
        let token = RLC::new(address, client.provider().clone());
        client.send(token.approve(Address::with_last_byte(9), U256::from(1))).await
    });
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(!sending.is_finished(), "included is not confirmed");
    net.mine(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!sending.is_finished(), "one block on top is not two");
    net.mine(1).await;
    let receipt = tokio::time::timeout(Duration::from_secs(10), sending)
        .await
        .expect("confirmed once two blocks are on top")
        .unwrap()
        .unwrap();
    let head = net.owner().block_number().await.unwrap();
    assert!(head >= receipt.block_number.unwrap() + 2);
}

/// What a [`proxy`] does with one request.
enum Reply {
    /// Passes it to anvil and its answer back.
    Forward,
    /// Answers HTTP 429, as a rate-limited provider does.
    RateLimited,
    /// Closes the connection without an answer.
    Drop,
    /// Answers a JSON-RPC error with the request's id.
    RpcError(&'static str),
}

/// A JSON-RPC endpoint in front of anvil that answers each request (its number, its body) as
/// `decide` says. Returns its URL.
async fn proxy(
    upstream: String,
    decide: impl Fn(usize, &serde_json::Value) -> Reply + Send + Sync + 'static,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let decide = Arc::new(decide);
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let seen = AtomicUsize::new(0);
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let number = seen.fetch_add(1, Ordering::SeqCst);
            let (http, upstream, decide) = (http.clone(), upstream.clone(), decide.clone());
            tokio::spawn(async move {
                let _ = answer(stream, number, &*decide, &http, &upstream).await;
            });
        }
    });
    url
}

/// A [`proxy`] that rate-limits its first `failures` requests and drops the next connection
/// without an answer, then forwards everything. Returns its URL and the count of requests.
async fn flaky_endpoint(upstream: String, failures: usize) -> (String, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let url = proxy(upstream, move |number, _| {
        counter.fetch_add(1, Ordering::SeqCst);
        match number.cmp(&failures) {
            std::cmp::Ordering::Less => Reply::RateLimited,
            std::cmp::Ordering::Equal => Reply::Drop,
            std::cmp::Ordering::Greater => Reply::Forward,
        }
    })
    .await;
    (url, seen)
}

/// Answers one HTTP/1.1 request (one per connection).
async fn answer(
    mut stream: TcpStream,
    number: usize,
    decide: &(dyn Fn(usize, &serde_json::Value) -> Reply + Send + Sync),
    http: &reqwest::Client,
    upstream: &str,
) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    let body_start = loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buffer[..read]);
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..body_start]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while request.len() < body_start + length {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buffer[..read]);
    }
    let body = request[body_start..body_start + length].to_vec();
    let call: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let response = match decide(number, &call) {
        Reply::RateLimited => {
            let refusal =
                "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
            return stream.write_all(refusal.as_bytes()).await;
        }
        // The client sees the connection close.
        Reply::Drop => return Ok(()),
        Reply::RpcError(message) => serde_json::to_vec(&serde_json::json!({
            "jsonrpc": "2.0",
            "id": call["id"],
            "error": { "code": -32000, "message": message },
        }))
        .unwrap()
        .into(),
        Reply::Forward => http
            .post(upstream)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(std::io::Error::other)?
            .bytes()
            .await
            .map_err(std::io::Error::other)?,
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        response.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&response).await
}

/// A transaction the node refused to take leaves no gap behind it: the next one from the same
/// client takes its nonce and lands (instead of waiting forever behind a missing nonce).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_broadcast_leaves_no_nonce_gap() {
    let net = TestNet::start(0).await;
    let refused = Arc::new(AtomicUsize::new(0));
    let counter = refused.clone();
    let url = proxy(net.devnet().rpc_url().to_owned(), move |_, call| {
        if call["method"] == "eth_sendRawTransaction" && counter.fetch_add(1, Ordering::SeqCst) == 0
        {
            Reply::RpcError("transaction pool is full")
        } else {
            Reply::Forward
        }
    })
    .await;
    let signer = net.accounts().requester.clone();
    let config = ClientConfig { max_retries: 0, ..ClientConfig::default() };
    let client = ChainClient::connect(&url, Some(signer), config).await.unwrap();
    let token = RLC::new(net.deployment().token, client.provider().clone());
    let start = client.provider().get_transaction_count(client.sender().unwrap()).await.unwrap();

    let error = client.send(token.approve(Address::with_last_byte(1), U256::from(1))).await;
    assert!(error.is_err(), "the first broadcast is refused");
    let receipt = tokio::time::timeout(
        Duration::from_secs(20),
        client.send(token.approve(Address::with_last_byte(2), U256::from(2))),
    )
    .await
    .expect("the next transaction is mined, not held behind a nonce gap")
    .expect("the next transaction lands");
    let tx =
        client.provider().get_transaction_by_hash(receipt.transaction_hash).await.unwrap().unwrap();
    assert_eq!(alloy::consensus::Transaction::nonce(&tx), start);
    assert_eq!(refused.load(Ordering::SeqCst), 2);
}

/// Rate limits and dropped connections are retried with backoff: the call succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_rpc_failures_are_retried() {
    let net = TestNet::start(0).await;
    let (url, seen) = flaky_endpoint(net.devnet().rpc_url().to_owned(), 2).await;
    let config = ClientConfig {
        retry_backoff: Duration::from_millis(20),
        max_retries: 5,
        ..ClientConfig::default()
    };
    let client = ChainClient::connect(&url, None, config).await.unwrap();
    assert_eq!(client.chain_id().await.expect("retried until it succeeds"), 31337);
    assert!(seen.load(Ordering::SeqCst) >= 4, "two refusals, one drop, then the answer");

    // Without retries the first refusal is the answer.
    let (url, _) = flaky_endpoint(net.devnet().rpc_url().to_owned(), 2).await;
    let config = ClientConfig { max_retries: 0, ..ClientConfig::default() };
    let client = ChainClient::connect(&url, None, config).await.unwrap();
    assert!(client.chain_id().await.is_err());
}

/// On a chain that stopped mining, a transaction is waited for at most the configured time,
/// then fails as `NotMined` with its hash, a transient failure. Nothing is lost: once the chain
/// mines again the transaction lands, and the next one from the same client follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_on_a_stalled_chain_fails_in_time_then_lands_when_mining_resumes() {
    let net = TestNet::start(0).await;
    let owner = net.owner().provider().clone();
    owner.anvil_set_auto_mine(false).await.unwrap();
    let signer = net.accounts().requester.clone();
    let config =
        ClientConfig { receipt_timeout: Duration::from_secs(2), ..ClientConfig::default() };
    let client = ChainClient::connect(net.devnet().rpc_url(), Some(signer), config).await.unwrap();
    let token = RLC::new(net.deployment().token, client.provider().clone());
    let spender = Address::with_last_byte(7);

    let started = std::time::Instant::now();
    let error = client.send(token.approve(spender, U256::from(5))).await.unwrap_err();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(10), "{waited:?}");
    let poco_chain::Error::NotMined { hash, .. } = &error else { panic!("{error:?}") };
    assert!(error.is_transient());
    assert!(error.to_string().contains(&hash.to_string()), "{error}");
    assert!(error.to_string().contains("may still be mined later"), "{error}");

    owner.anvil_set_auto_mine(true).await.unwrap();
    owner.anvil_mine(Some(1), None).await.unwrap();
    let mined = owner.get_transaction_receipt(*hash).await.unwrap().expect("mined once resumed");
    assert!(mined.status());
    client.send(token.approve(spender, U256::from(6))).await.expect("the next one lands");
    let allowance = token.allowance(client.sender().unwrap(), spender).call().await.unwrap();
    assert_eq!(allowance, U256::from(6));
}
