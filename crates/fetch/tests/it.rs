//! The fetch policy against real servers and files: every spelling of a loopback address is
//! refused, names are checked at what they resolve to, redirects are checked, allowances lift
//! exactly what they name, and `file://` stays inside its directories.

use std::{collections::BTreeMap, net::SocketAddr, path::Path};

use poco_fetch::{FetchError, FetchPolicy, Fetcher, Source};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// An HTTP server on `ip` answering every request with `response` (a whole HTTP/1.1 answer).
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

fn refused(result: Result<Vec<u8>, FetchError>) -> String {
    match result {
        Err(error @ FetchError::Refused { .. }) => {
            assert!(error.is_request_fault());
            error.to_string()
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn every_spelling_of_loopback_is_refused_by_default() {
    let secret = serve("127.0.0.1", ok("the scheduler's metrics")).await;
    let port = secret.port();
    let fetcher = Fetcher::new(FetchPolicy::default());
    for url in [
        format!("http://127.0.0.1:{port}/metrics"),
        format!("http://localhost:{port}/metrics"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0x7f000001:{port}/"),
        format!("http://0177.0.0.1:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://0.0.0.0:{port}/"),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fd00:ec2::254]/".to_owned(),
    ] {
        for source in [Source::InputFile, Source::App] {
            let message = refused(fetcher.fetch(source, &url).await);
            assert!(!message.contains("metrics\""), "{message}");
        }
    }
}

#[tokio::test]
async fn a_name_is_judged_by_the_address_it_resolves_to() {
    let secret = serve("127.0.0.1", ok("private")).await;
    let policy = FetchPolicy {
        hosts: BTreeMap::from([("public.example".to_owned(), vec!["127.0.0.1".parse().unwrap()])]),
        ..FetchPolicy::default()
    };
    let fetcher = Fetcher::new(policy);
    let url = format!("http://public.example:{}/", secret.port());
    let message = refused(fetcher.fetch(Source::InputFile, &url).await);
    assert!(message.contains("public.example resolves to a loopback address"), "{message}");
    let checked = fetcher.check(Source::InputFile, &url).await.unwrap_err();
    assert!(matches!(checked, FetchError::Refused { .. }), "{checked}");
}

#[tokio::test]
async fn a_redirect_to_loopback_is_refused_and_allowances_are_exact() {
    let secret = serve("127.0.0.1", ok("private")).await;
    let target = format!("http://127.0.0.1:{}/", secret.port());
    let hop = serve("127.0.0.2", redirect_to(&target)).await;
    let public = serve("127.0.0.2", ok("public content")).await;
    // 127.0.0.2 stands for a public server: allowed; 127.0.0.1 is not.
    let policy =
        FetchPolicy { allow: vec!["127.0.0.2/32".parse().unwrap()], ..FetchPolicy::default() };
    let fetcher = Fetcher::new(policy);
    let direct = format!("http://127.0.0.2:{}/", public.port());
    assert_eq!(fetcher.fetch(Source::InputFile, &direct).await.unwrap(), b"public content");
    let message = refused(
        fetcher.fetch(Source::InputFile, &format!("http://127.0.0.2:{}/", hop.port())).await,
    );
    assert!(message.contains("a redirect to 127.0.0.1 is a loopback address"), "{message}");

    // With loopback allowed, the same fetch works, for the sources it names only.
    let policy = FetchPolicy {
        allow_provided: vec!["127.0.0.0/8".parse().unwrap()],
        ..FetchPolicy::default()
    };
    let fetcher = Fetcher::new(policy);
    assert_eq!(fetcher.fetch(Source::App, &target).await.unwrap(), b"private");
    refused(fetcher.fetch(Source::InputFile, &target).await);
}

#[tokio::test]
async fn redirects_and_sizes_are_bounded() {
    let big = serve("127.0.0.1", ok(&"x".repeat(2048))).await;
    let policy = FetchPolicy {
        allow: vec!["127.0.0.0/8".parse().unwrap()],
        max_bytes: 1024,
        max_redirects: 2,
        ..FetchPolicy::default()
    };
    let fetcher = Fetcher::new(policy);
    let error = fetcher.fetch(Source::App, &format!("http://127.0.0.1:{}/", big.port())).await;
    assert!(matches!(error, Err(FetchError::TooLarge { max_bytes: 1024, .. })), "{error:?}");
    let mut next = format!("http://127.0.0.1:{}/", big.port());
    for _ in 0..4 {
        next = format!("http://127.0.0.1:{}/", serve("127.0.0.1", redirect_to(&next)).await.port());
    }
    let message = refused(fetcher.fetch(Source::App, &next).await);
    assert!(message.contains("more than 2 redirects"), "{message}");
    let missing =
        serve("127.0.0.1", "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".into()).await;
    let error = fetcher.fetch(Source::App, &format!("http://127.0.0.1:{}/", missing.port())).await;
    let error = error.unwrap_err();
    assert!(matches!(error, FetchError::Status { status: 404, .. }) && error.is_request_fault());
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let error = fetcher.fetch(Source::App, &format!("http://{closed}/")).await.unwrap_err();
    assert!(
        matches!(error, FetchError::Unreachable { .. }) && !error.is_request_fault(),
        "{error}"
    );

    // A probe sees the same failures without reading the content.
    let small = serve("127.0.0.1", ok("fine")).await;
    fetcher.probe(Source::InputFile, &format!("http://{small}/")).await.unwrap();
    let probe = |address: SocketAddr| {
        let fetcher = fetcher.clone();
        async move { fetcher.probe(Source::InputFile, &format!("http://{address}/")).await }
    };
    assert!(matches!(probe(big).await, Err(FetchError::TooLarge { .. })));
    assert!(matches!(probe(missing).await, Err(FetchError::Status { status: 404, .. })));
    assert!(matches!(probe(closed).await, Err(FetchError::Unreachable { .. })));
}

#[tokio::test]
async fn file_urls_stay_inside_their_directories() {
    let root = tempfile::tempdir().unwrap();
    let apps = root.path().join("apps");
    std::fs::create_dir(&apps).unwrap();
    std::fs::write(apps.join("app.wasm"), b"module").unwrap();
    std::fs::write(root.path().join("keystore.json"), b"the worker's key").unwrap();
    std::os::unix::fs::symlink(root.path().join("keystore.json"), apps.join("link.wasm")).unwrap();
    let url = |path: &Path| format!("file://{}", path.display());

    // By default, no file at all.
    let fetcher = Fetcher::new(FetchPolicy::default());
    refused(fetcher.fetch(Source::App, &url(&apps.join("app.wasm"))).await);
    refused(fetcher.fetch(Source::InputFile, "file:///etc/passwd").await);

    let policy = FetchPolicy { provided_dirs: vec![apps.clone()], ..FetchPolicy::default() };
    let fetcher = Fetcher::new(policy);
    assert_eq!(fetcher.fetch(Source::App, &url(&apps.join("app.wasm"))).await.unwrap(), b"module");
    for escape in [
        url(&apps.join("..").join("keystore.json")),
        url(&apps.join("link.wasm")),
        "file:///etc/passwd".to_owned(),
    ] {
        let message = refused(fetcher.fetch(Source::Dataset, &escape).await);
        assert!(!message.contains("the worker's key"), "{message}");
    }
    // The directories of apps and datasets are not the input files'.
    let message = refused(fetcher.fetch(Source::InputFile, &url(&apps.join("app.wasm"))).await);
    assert!(message.contains("file:// URLs of input files are not allowed"), "{message}");
    let error = fetcher.fetch(Source::App, &url(&apps.join("missing.wasm"))).await.unwrap_err();
    assert!(matches!(error, FetchError::NoSuchFile { .. }), "{error}");
    let error = fetcher.fetch(Source::App, "gopher://example.com/").await.unwrap_err();
    assert!(matches!(error, FetchError::Unsupported { .. }), "{error}");
}

#[tokio::test]
async fn an_app_origin_lets_apps_reach_that_port_only() {
    let store = serve("127.0.0.1", ok("app code")).await;
    let other = serve("127.0.0.1", ok("another service")).await;
    let to_other =
        serve("127.0.0.1", redirect_to(&format!("http://127.0.0.1:{}/", other.port()))).await;
    let origin = format!("http://127.0.0.1:{}", store.port());
    let policy = FetchPolicy { app_origins: vec![origin.clone()], ..FetchPolicy::default() };
    let fetcher = Fetcher::new(policy.clone());
    let code = format!("{origin}/code/0xabc");
    assert_eq!(fetcher.fetch(Source::App, &code).await.unwrap(), b"app code");
    // Not for another source, not on another port, not through a redirect elsewhere.
    for source in [Source::Dataset, Source::InputFile, Source::Result] {
        refused(fetcher.fetch(source, &code).await);
    }
    refused(fetcher.fetch(Source::App, &format!("http://127.0.0.1:{}/", other.port())).await);
    let message = refused(
        Fetcher::new(FetchPolicy {
            app_origins: vec![format!("http://127.0.0.1:{}", to_other.port())],
            ..FetchPolicy::default()
        })
        .fetch(Source::App, &format!("http://127.0.0.1:{}/", to_other.port()))
        .await,
    );
    assert!(message.contains("a redirect to 127.0.0.1"), "{message}");
    // Not another scheme on the same address and port.
    refused(fetcher.fetch(Source::App, &format!("https://127.0.0.1:{}/", store.port())).await);
    assert!(policy.widenings().iter().any(|line| line.contains(&origin)));
}
