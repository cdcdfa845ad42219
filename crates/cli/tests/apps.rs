//! The app kit: `poco app new`, `build`, `test`, `deploy --publish`, then `poco run` of a Python
//! app on a devnet whose workers fetch the pinned Python runtime and the app's code from the
//! result store.

mod common;

use std::path::{Path, PathBuf};

use common::{DevnetHome, failure, json, root, with};

/// Where `scripts/python-runtime.sh` keeps the runtime's parts, named by sha256.
fn runtime_parts() -> PathBuf {
    let parts = root().join("target/runtimes/sha256");
    assert!(
        parts.is_dir(),
        "no Python runtime at {}: run scripts/python-runtime.sh",
        parts.display()
    );
    parts
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_python_app_from_new_to_its_result_on_a_devnet() {
    let parts = runtime_parts();
    let parts = parts.to_str().unwrap();
    let devnet = DevnetHome::start(&["--workers", "2", "--python-runtime", parts]);
    let home = devnet.path();
    let provider = ["--devnet-account", "app-provider"];
    let data_provider = ["--devnet-account", "dataset-provider"];
    let requester = ["--devnet-account", "requester"];
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("totals");
    let project_arg = project.to_str().unwrap();

    let created = json(home, &["app", "new", "totals", "--dir", project_arg]);
    assert_eq!(created["lang"], "python");
    assert!(project.join("poco.toml").is_file() && project.join("src/main.py").is_file());

    // The same sources built in another folder (another checkout): the same checksum.
    let built = json(home, &["app", "build", project_arg]);
    let elsewhere = work.path().join("another/checkout/totals");
    copy_dir(&project, &elsewhere);
    std::fs::remove_dir_all(elsewhere.join("build")).unwrap();
    let rebuilt = json(home, &["app", "build", elsewhere.to_str().unwrap()]);
    assert_eq!(built["checksum"], rebuilt["checksum"]);

    // Twice in the worker's sandbox: the same digest and fuel.
    let tested = json(home, &["app", "test", project_arg, "--python-runtime", parts]);
    assert_eq!(tested["deterministic"], true, "{tested}");
    let runs = tested["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["status"], "exited with status 0");
    assert!(runs[0]["fuel"].as_u64().unwrap() > 0);
    assert!(runs[0]["peak_memory_bytes"].as_u64().unwrap() > 0);
    assert_eq!(tested["checksum"], built["checksum"]);

    // Deployed with its code served by the devnet's result store, where workers fetch it.
    let file = built["file"].as_str().unwrap();
    let deployed = json(
        home,
        &with(&provider, &["app", "deploy", "--name", "totals", "--file", file, "--publish"]),
    );
    assert_eq!(deployed["checksum"], built["checksum"]);
    let checksum = built["checksum"].as_str().unwrap();
    let url = deployed["multiaddr"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with(&format!("/code/{checksum}")));
    let app = deployed["address"].as_str().unwrap().to_owned();
    // Publishing again is harmless; only the owner may; only the registered file.
    json(home, &with(&provider, &["app", "publish", &app, file]));
    let message = failure(home, &with(&requester, &["app", "publish", &app, file]), 8);
    assert!(message.contains("does not own app"), "{message}");
    let other = project.join("poco.toml");
    let message =
        failure(home, &with(&provider, &["app", "publish", &app, other.to_str().unwrap()]), 8);
    assert!(message.contains(&format!("registered with checksum {checksum}")), "{message}");
    json(
        home,
        &with(
            &provider,
            &["order", "publish", "app", "--asset", &app, "--price", "0 RLC", "--volume", "5"],
        ),
    );
    let data = project.join("test/data.csv");
    let dataset = json(
        home,
        &with(
            &data_provider,
            &["dataset", "deploy", "--name", "cities", "--file", data.to_str().unwrap()],
        ),
    );
    let dataset = dataset["address"].as_str().unwrap().to_owned();
    json(
        home,
        &with(
            &data_provider,
            &[
                "order", "publish", "dataset", "--asset", &dataset, "--price", "0 RLC", "--volume",
                "5",
            ],
        ),
    );

    let out = work.path().join("result");
    let run = json(
        home,
        &with(
            &requester,
            &[
                "run",
                &app,
                "--dataset",
                &dataset,
                "--args",
                "1",
                "--trust",
                "4",
                "--yes",
                "--download",
                out.to_str().unwrap(),
            ],
        ),
    );
    assert_eq!(run["tasks"][0]["status"], "COMPLETED", "{run}");
    assert_eq!(run["tasks"][0]["contributors"], 2, "{run}");
    let result = std::fs::read_to_string(out.join("result.json")).unwrap();
    assert_eq!(result, r#"{"Lyon": 20.0, "Nantes": 4.0, "Paris": 30.0}"#);
    // The workers used the module cache the devnet was given (POCO_MODULE_CACHE, where
    // `app test` had compiled the runtime), not a folder of their own.
    assert!(!home.join("devnet/modules").exists(), "the devnet's workers kept their own cache");
}

#[test]
fn the_app_kit_refuses_bad_projects_with_the_reason() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("p");
    let project_arg = project.to_str().unwrap();
    json(home, &["app", "new", "p", "--dir", project_arg]);

    let message = failure(home, &["app", "new", "p", "--dir", project_arg], 2);
    assert!(message.contains("already exists"), "{message}");
    let message = failure(home, &["app", "new", "q", "--lang", "cobol", "--dir", project_arg], 2);
    assert!(message.contains("python or c"), "{message}");
    let message = failure(home, &["app", "new", "bad name"], 2);
    assert!(message.contains("invalid app name"), "{message}");
    let message = failure(home, &["app", "build", work.path().to_str().unwrap()], 1);
    assert!(message.contains("poco.toml"), "{message}");

    std::fs::write(
        project.join("poco.toml"),
        "[app]\nname = \"p\"\nlang = \"python\"\nentry = \"/etc/passwd\"\n",
    )
    .unwrap();
    let message = failure(home, &["app", "build", project_arg], 2);
    assert!(message.contains("entry"), "{message}");

    // A Python app cannot be tested without the runtime: the message says where to get it.
    std::fs::write(
        project.join("poco.toml"),
        "[app]\nname = \"p\"\nlang = \"python\"\nentry = \"main.py\"\n",
    )
    .unwrap();
    let message = failure(home, &["app", "test", project_arg], 1);
    assert!(message.contains("--python-runtime"), "{message}");

    // An app that fails its test run says how.
    std::fs::write(project.join("src/main.py"), "raise SystemExit(3)\n").unwrap();
    let parts = runtime_parts();
    let message = failure(
        home,
        &["app", "test", project_arg, "--python-runtime", parts.to_str().unwrap()],
        10,
    );
    assert!(message.contains("exited with status 3"), "{message}");
}
