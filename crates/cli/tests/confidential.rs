//! The confidential path driven through the `poco` binary, on one devnet whose SMS runs in the
//! INSECURE simulation mode with one TEE worker: a dataset encrypted and its key pushed, a
//! requester secret and an app developer secret, a result key, a TEE run of
//! `apps/confidential` whose result is downloaded and decrypted; and the refusals, each with
//! one clear message and its exit code. No secret value ever reaches stdout, stderr or the
//! devnet's log.

mod common;

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

use crate::common::{DevnetHome, failure, json, poco, poco_env, root, text, with};

/// The permission bits of a file.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The 64-bit FNV-1a hash `apps/confidential` prints for a secret.
fn fnv1a(value: &str) -> String {
    let hash = value.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// What `apps/confidential` writes to `result.txt` for `dataset` (text lines with numbers, a
/// newline at the end) and the two secrets.
fn expected_result(dataset: &str, requester_secret: &str, developer_secret: &str) -> String {
    let numbers: Vec<u64> = dataset
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| !run.is_empty())
        .map(|run| run.parse().unwrap())
        .collect();
    format!(
        "lines={}\nbytes={}\nnumbers={}\nsum={}\nrequester_secret_fnv1a={}\n\
         developer_secret_fnv1a={}\n",
        dataset.matches('\n').count(),
        dataset.len(),
        numbers.len(),
        numbers.iter().sum::<u64>(),
        fnv1a(requester_secret),
        fnv1a(developer_secret)
    )
}

/// A value unique to this run, of letters only (so no number in a dataset row changes).
fn marker(prefix: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let letters: String = format!("{nanos:x}{}", std::process::id())
        .chars()
        .map(|c| if c.is_ascii_digit() { (b'g' + (c as u8 - b'0')) as char } else { c })
        .collect();
    format!("{prefix}{letters}")
}

#[test]
fn a_confidential_task_from_encrypted_dataset_to_decrypted_result() {
    let devnet = DevnetHome::start(&["--workers", "1", "--tee-workers", "1"]);
    let home = devnet.path();
    let requester = ["--devnet-account", "requester"];
    let app_provider = ["--devnet-account", "app-provider"];
    let data_provider = ["--devnet-account", "dataset-provider"];
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str| files.path().join(name).to_str().unwrap().to_owned();

    // The devnet runs an SMS, says loudly that it is a simulation, and has one TEE worker.
    let status = json(home, &["devnet", "status"]);
    let sms_url = status["smsUrl"].as_str().unwrap().to_owned();
    assert!(sms_url.starts_with("http://127.0.0.1:"), "{status}");
    assert_eq!(status["insecureSimulation"], true);
    assert_eq!(status["teeWorkers"], 1);
    let human = text(&poco(home, &["devnet", "status"]));
    assert!(human.contains(&sms_url) && human.contains("INSECURE"), "{human}");
    assert!(human.contains("worker-1 runs TEE tasks"), "{human}");
    let sms = json(home, &["sms", "status"]);
    assert_eq!(sms["url"], sms_url.as_str());
    assert_eq!(sms["simulation"], true);
    assert!(sms["warning"].as_str().unwrap().contains("INSECURE"), "{sms}");

    // The app provider registers the TEE app with its enclave measurement, sells it to TEE
    // deals, and pushes its developer secret from the environment.
    let app = json(
        home,
        &with(
            &app_provider,
            &[
                "app",
                "deploy",
                "--name",
                "confidential",
                "--file",
                "apps/confidential/confidential.wasm",
                "--tee",
            ],
        ),
    );
    let app_address = app["address"].as_str().unwrap().to_owned();
    let sums = std::fs::read_to_string(root().join("apps/SHA256SUMS")).unwrap();
    let module_sha = sums
        .lines()
        .find(|l| l.ends_with("confidential/confidential.wasm"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    assert!(app["mrenclave"].as_str().unwrap().contains(module_sha), "{app}");
    json(
        home,
        &with(
            &app_provider,
            &["order", "publish", "app", "--asset", &app_address, "--tag", "tee", "--volume", "5"],
        ),
    );
    let developer_secret = marker("developerlicense");
    let out = poco_env(
        home,
        &with(
            &app_provider,
            &["secret", "push", "--app", &app_address, "--value-env", "POCO_TEST_DEV_SECRET"],
        ),
        &[("POCO_TEST_DEV_SECRET", &developer_secret)],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(&developer_secret), "the value is never printed");
    assert_eq!(json(home, &["secret", "check", "--app", &app_address])["set"], true);

    // The dataset provider encrypts its data (the key stays under the home, 0600, unprinted),
    // registers the encrypted file, and pushes the key; only the owner may.
    let patient = marker("patient");
    let plaintext = format!("name,visits,amount\n{patient},3,1200\nbob,14,77\ncarol,5,31\n");
    std::fs::write(file("records.csv"), &plaintext).unwrap();
    let encrypt = poco(
        home,
        &["--json", "dataset", "encrypt", &file("records.csv"), "--out", &file("records.enc")],
    );
    assert!(encrypt.status.success(), "{}", text(&encrypt));
    let encrypted: Value = serde_json::from_slice(&encrypt.stdout).unwrap();
    let key_file = PathBuf::from(encrypted["keyFile"].as_str().unwrap());
    assert!(key_file.starts_with(home), "the key is kept under the home: {encrypted}");
    assert_eq!(mode(&key_file), 0o600);
    let key = std::fs::read_to_string(&key_file).unwrap().trim().to_owned();
    assert_eq!(key.len(), 64);
    assert!(!text(&encrypt).contains(&key), "the key is not printed without --show-key");
    assert!(encrypted.get("key").is_none());
    let ciphertext = std::fs::read(file("records.enc")).unwrap();
    assert!(!String::from_utf8_lossy(&ciphertext).contains(&patient));
    let dataset = json(
        home,
        &with(
            &data_provider,
            &["dataset", "deploy", "--name", "records", "--file", &file("records.enc")],
        ),
    );
    assert_eq!(dataset["checksum"], encrypted["checksum"], "registered with what encrypt printed");
    let dataset_address = dataset["address"].as_str().unwrap().to_owned();
    let key_path = key_file.to_str().unwrap();
    let message = failure(
        home,
        &with(&requester, &["dataset", "push-key", &dataset_address, "--key-file", key_path]),
        8,
    );
    assert!(message.contains("the SMS refused") && message.contains("is owned by"), "{message}");
    let message = failure(home, &["dataset", "check-key", &dataset_address], 6);
    assert!(message.contains("poco dataset push-key"), "{message}");
    let pushed = json(home, &with(&data_provider, &["dataset", "push-key", &dataset_address]));
    assert_eq!(pushed["pushed"], true);
    assert_eq!(json(home, &["dataset", "check-key", &dataset_address])["set"], true);
    json(
        home,
        &with(
            &data_provider,
            &[
                "order",
                "publish",
                "dataset",
                "--asset",
                &dataset_address,
                "--tag",
                "tee",
                "--volume",
                "5",
            ],
        ),
    );

    // The requester pushes a named secret from a file; secrets are write-once.
    let requester_secret = marker("warehousetoken");
    std::fs::write(file("token.txt"), format!("{requester_secret}\n")).unwrap();
    let out = poco(
        home,
        &with(
            &requester,
            &["secret", "push", "warehouse-token", "--value-file", &file("token.txt")],
        ),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(&requester_secret), "the value is never printed");
    assert_eq!(json(home, &with(&requester, &["secret", "check", "warehouse-token"]))["set"], true);
    let message = failure(
        home,
        &with(
            &requester,
            &["secret", "push", "warehouse-token", "--value-file", &file("token.txt")],
        ),
        8,
    );
    assert!(message.contains("already set") && message.contains("write-once"), "{message}");
    let message = failure(home, &with(&requester, &["secret", "check", "unknown-name"]), 6);
    assert!(message.contains("poco secret push unknown-name"), "{message}");

    // The requester, beneficiary of its deals, makes a result key and pushes its public half.
    let keygen = poco(home, &["--json", "result", "keygen"]);
    assert!(keygen.status.success(), "{}", text(&keygen));
    assert!(!text(&keygen).contains("AGE-SECRET-KEY"), "the identity is never printed");
    let generated: Value = serde_json::from_slice(&keygen.stdout).unwrap();
    let recipient = generated["recipient"].as_str().unwrap().to_owned();
    assert!(recipient.starts_with("age1"), "{generated}");
    let result_key = PathBuf::from(generated["keyFile"].as_str().unwrap());
    assert_eq!(mode(&result_key), 0o600);
    let identity = std::fs::read_to_string(&result_key).unwrap();
    let identity = identity.lines().find(|l| l.starts_with("AGE-SECRET-KEY-1")).unwrap().to_owned();
    let message = failure(home, &["result", "keygen"], 1);
    assert!(message.contains("--force"), "an existing key is not replaced by accident: {message}");
    assert_eq!(
        json(home, &with(&requester, &["result", "push-key"]))["recipient"],
        recipient.as_str()
    );
    assert_eq!(json(home, &with(&requester, &["result", "check-key"]))["set"], true);

    // Runs that cannot work are refused before anything is paid.
    let message = failure(
        home,
        &with(
            &requester,
            &[
                "run",
                &app_address,
                "--dataset",
                &dataset_address,
                "--tag",
                "tee",
                "--secret",
                "nope",
                "--yes",
            ],
        ),
        6,
    );
    assert!(message.contains("\"nope\"") && message.contains("poco secret push nope"), "{message}");
    let message = failure(
        home,
        &with(&requester, &["run", &app_address, "--secret", "warehouse-token", "--yes"]),
        1,
    );
    assert!(message.contains("--tag tee"), "{message}");

    // The TEE run: the task goes to the TEE worker, the result comes back encrypted for the
    // beneficiary and is decrypted with the local key after its digest is checked.
    let before = json(home, &["devnet", "balances"]);
    std::fs::write(file("before.json"), before.to_string()).unwrap();
    let out_dir = file("result");
    let run = json(
        home,
        &with(
            &requester,
            &[
                "run",
                &app_address,
                "--dataset",
                &dataset_address,
                "--tag",
                "tee",
                "--secret",
                "warehouse-token",
                "--encrypt-result",
                "--yes",
                "--download",
                &out_dir,
            ],
        ),
    );
    let task = run["tasks"][0]["taskId"].as_str().unwrap().to_owned();
    assert_eq!(run["tasks"][0]["status"], "COMPLETED", "{run}");
    let expected = expected_result(&plaintext, &requester_secret, &developer_secret);
    let result = std::fs::read_to_string(Path::new(&out_dir).join("result.txt")).unwrap();
    assert_eq!(result, expected);
    assert!(!Path::new(&out_dir).join("result.tar.age").exists(), "decrypted, not kept encrypted");
    let deal = json(home, &["deal", "show", run["dealId"].as_str().unwrap()]);
    let params = deal["deal"]["params"].as_str().unwrap();
    assert!(params.contains("iexec_secrets") && params.contains("warehouse-token"), "{params}");
    assert!(params.contains("iexec_result_encryption"), "{params}");
    let changes = json(home, &["devnet", "balances", "--since", &file("before.json")]);
    let change = |role: &str| -> i128 {
        let row = changes.as_array().unwrap().iter().find(|c| c["role"] == role).unwrap();
        row["changeNrlc"].as_str().unwrap().parse().unwrap()
    };
    assert!(change("worker-1") > 0, "the TEE worker ran and was paid: {changes}");
    assert_eq!(change("worker-0"), 0, "the worker without an enclave did not: {changes}");

    // Downloads: decrypted with the home's key, kept encrypted on request, refused without the
    // right key (and then nothing is written).
    let again =
        json(home, &with(&requester, &["result", "download", &task, "--out-dir", &file("again")]));
    assert_eq!(again["encrypted"], true);
    assert_eq!(again["decrypted"], true);
    assert_eq!(
        std::fs::read_to_string(Path::new(&file("again")).join("result.txt")).unwrap(),
        expected
    );
    let sealed = json(
        home,
        &with(
            &requester,
            &["result", "download", &task, "--out-dir", &file("sealed"), "--no-decrypt"],
        ),
    );
    assert_eq!(sealed["decrypted"], false);
    let ciphertext = std::fs::read(Path::new(&file("sealed")).join("result.tar.age")).unwrap();
    assert!(!String::from_utf8_lossy(&ciphertext).contains("lines="), "it stays encrypted");
    let message = failure(
        home,
        &with(
            &requester,
            &[
                "result",
                "download",
                &task,
                "--out-dir",
                &file("nokey"),
                "--key-file",
                &file("none.key"),
            ],
        ),
        9,
    );
    assert!(message.contains("encrypted") && message.contains("no result key"), "{message}");
    assert!(!Path::new(&file("nokey")).exists(), "nothing written without the key");
    json(home, &["result", "keygen", "--out", &file("other.key")]);
    let message = failure(
        home,
        &with(
            &requester,
            &[
                "result",
                "download",
                &task,
                "--out-dir",
                &file("wrong"),
                "--key-file",
                &file("other.key"),
            ],
        ),
        9,
    );
    assert!(message.contains("does not open it"), "{message}");

    // An SMS that does not answer is named, with exit code 7.
    let message = failure(
        home,
        &["--sms.url", "http://127.0.0.1:9", "secret", "check", "--app", &app_address],
        7,
    );
    assert!(message.contains("127.0.0.1:9"), "names the SMS: {message}");

    // `poco sms run` on the devnet's chain: simulated quotes are refused unless switched on
    // explicitly, with the simulation keys to trust.
    for simulation in [false, true] {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let listen = format!("127.0.0.1:{port}");
        let data = file(&format!("sms-{simulation}"));
        let mut args = vec!["sms", "run", "--listen", &listen, "--data.dir", &data];
        let signer = "0x976EA74026E726554dB657fA54763abd0C3a0aa9";
        if simulation {
            args.extend(["--insecure-simulation", "--simulation.signer", signer]);
        }
        let mut serve = Command::new(env!("CARGO_BIN_EXE_poco"))
            .arg("--home")
            .arg(home)
            .args(&args)
            .current_dir(root())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://{listen}");
        let mut status = None;
        for _ in 0..300 {
            let out = poco(home, &["--json", "--sms.url", &url, "sms", "status"]);
            if out.status.success() {
                status = Some(serde_json::from_slice::<Value>(&out.stdout).unwrap());
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let stopped =
            Command::new("kill").args(["-TERM", &serve.id().to_string()]).status().unwrap();
        assert!(stopped.success());
        let exit = serve.wait().unwrap();
        let status = status.expect("`poco sms run` answers within 30 s");
        assert_eq!(status["simulation"], simulation, "{status}");
        assert_eq!(status["warning"].is_string(), simulation, "{status}");
        assert!(exit.success(), "SIGTERM is a clean stop: {exit}");
        assert_eq!(mode(&Path::new(&data).join("master.key")), 0o600);
    }

    // The simulation is named in the devnet's log; no secret, key or plaintext is in it.
    let log = std::fs::read_to_string(home.join("devnet/devnet.log")).unwrap();
    assert!(log.contains("INSECURE"), "the log names the simulation");
    for (what, value) in [
        ("the requester secret", requester_secret.as_str()),
        ("the developer secret", developer_secret.as_str()),
        ("the dataset key", key.as_str()),
        ("a dataset row", patient.as_str()),
        ("the result identity", identity.as_str()),
        ("the decrypted result", "requester_secret_fnv1a"),
    ] {
        assert!(!log.contains(value), "{what} is in the devnet's log");
    }
}

/// Commands of the confidential path that need no chain: their refusals are clear.
#[test]
fn confidential_commands_without_a_devnet_say_what_is_missing() {
    let home = tempfile::tempdir().unwrap();
    let message = failure(
        home.path(),
        &["secret", "check", "--app", "0x0000000000000000000000000000000000000001"],
        1,
    );
    assert!(message.contains("--sms.url") && message.contains("poco devnet up"), "{message}");
    let message = failure(home.path(), &["--devnet-account", "requester", "result", "push-key"], 6);
    assert!(message.contains("poco result keygen"), "{message}");
    let message = failure(
        home.path(),
        &[
            "--sms.url",
            "http://127.0.0.1:9",
            "--devnet-account",
            "requester",
            "secret",
            "push",
            "bad name",
            "--value-env",
            "HOME",
        ],
        1,
    );
    assert!(message.contains("invalid secret name"), "{message}");

    // --show-key prints the key, and only then.
    let plain = home.path().join("plain.txt");
    std::fs::write(&plain, "a,1\n").unwrap();
    let out = home.path().join("plain.enc");
    let shown = json(
        home.path(),
        &[
            "dataset",
            "encrypt",
            plain.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--show-key",
        ],
    );
    let key = std::fs::read_to_string(shown["keyFile"].as_str().unwrap()).unwrap();
    assert_eq!(shown["key"], key.trim());
}
