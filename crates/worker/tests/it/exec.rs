//! The WebAssembly sandbox, run on the committed example and test apps of `apps/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use poco_worker::exec::{
    ExecError, ExecOutcome, ExecSpec, Executor, ExitStatus, Limits, OutputQuota, QuotaKind,
    TrapKind, WasmExecutor, module_sha256, split_args,
};
use tempfile::TempDir;

/// One executor for the whole test binary, so each module compiles once.
fn executor() -> &'static WasmExecutor {
    static EXECUTOR: OnceLock<WasmExecutor> = OnceLock::new();
    EXECUTOR.get_or_init(|| WasmExecutor::new().expect("wasmtime engine"))
}

/// The committed module of an app: `apps/<name>/<name>.wasm`, or under `apps/testing/`.
fn app(name: &str) -> Arc<[u8]> {
    static MODULES: OnceLock<std::sync::Mutex<BTreeMap<String, Arc<[u8]>>>> = OnceLock::new();
    let modules = MODULES.get_or_init(Default::default);
    let mut modules = modules.lock().unwrap();
    Arc::clone(modules.entry(name.to_owned()).or_insert_with(|| {
        let apps = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../apps");
        let path = [apps.join(name), apps.join("testing").join(name)]
            .into_iter()
            .map(|dir| dir.join(format!("{name}.wasm")))
            .find(|path| path.exists())
            .unwrap_or_else(|| panic!("no committed module for app {name}"));
        std::fs::read(&path).unwrap().into()
    }))
}

/// A task's two directories.
struct Dirs {
    input: TempDir,
    output: TempDir,
}

impl Dirs {
    fn new() -> Self {
        Self { input: TempDir::new().unwrap(), output: TempDir::new().unwrap() }
    }

    fn with_input(self, name: &str, content: &str) -> Self {
        std::fs::write(self.input.path().join(name), content).unwrap();
        self
    }

    fn spec(&self, app_name: &str, args: &str) -> ExecSpec {
        ExecSpec::new(app(app_name), self.input.path(), self.output.path())
            .with_args(split_args(args).unwrap())
            .with_limits(Limits::default().with_fuel(5_000_000_000))
    }

    fn out(&self, name: &str) -> String {
        let path = self.output.path().join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn tree(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        tree(self.output.path())
    }
}

/// Every file under `root`, by relative path.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let content = std::fs::read(&path).unwrap();
                files.insert(path.strip_prefix(root).unwrap().to_owned(), content);
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(root, root, &mut files);
    files
}

async fn run(spec: ExecSpec) -> ExecOutcome {
    executor().run(spec).await.expect("the run starts")
}

fn assert_success(outcome: &ExecOutcome) {
    assert!(
        outcome.status.success(),
        "status {}, stderr: {}",
        outcome.status,
        outcome.stderr.to_string_lossy()
    );
}

/// The lines `key=value` of the probe app's report.
fn probe_values(outcome: &ExecOutcome, key: &str) -> Vec<String> {
    outcome
        .stdout
        .to_string_lossy()
        .lines()
        .filter_map(|line| line.strip_prefix(&format!("{key}=")).map(str::to_owned))
        .collect()
}

fn probe_value(outcome: &ExecOutcome, key: &str) -> String {
    let values = probe_values(outcome, key);
    assert_eq!(values.len(), 1, "{key}: {values:?}");
    values.into_iter().next().unwrap()
}

// --- the example apps -------------------------------------------------------------------

#[tokio::test]
async fn pi_estimates_pi() {
    let dirs = Dirs::new();
    let outcome = run(dirs.spec("pi", "1000000 42")).await;
    assert_success(&outcome);
    assert_eq!(
        dirs.out("result.txt"),
        "samples=1000000\nseed=42\ninside=785604\npi=3.142416000000\n"
    );
    assert_eq!(
        dirs.out("computed.json"),
        "{\"deterministic-output-path\":\"/iexec_out/result.txt\"}\n"
    );
    assert_eq!(
        outcome.stdout.to_string_lossy(),
        "pi ~= 3.142416000000 (1000000 samples, seed 42)\n"
    );
    assert!(outcome.fuel_consumed > 1_000_000, "{}", outcome.fuel_consumed);
    assert_eq!(outcome.module_sha256, module_sha256(&app("pi")));
}

#[tokio::test]
async fn pi_rejects_a_bad_argument() {
    let dirs = Dirs::new();
    let outcome = run(dirs.spec("pi", "many")).await;
    assert_eq!(outcome.status, ExitStatus::Exited(2));
    assert!(
        outcome.stderr.to_string_lossy().contains("invalid SAMPLES"),
        "{}",
        outcome.stderr.to_string_lossy()
    );
}

const A_TXT: &str = "The quick brown fox\njumps over the lazy dog.\nThe end\n";
const B_TXT: &str = "hello World, hello again\n\n  spaced   out  \nno newline at end";

#[tokio::test]
async fn wordcount_counts_and_uppercases_every_input_file() {
    let dirs = Dirs::new().with_input("b.txt", B_TXT).with_input("a.txt", A_TXT);
    let outcome = run(dirs.spec("wordcount", "3")).await;
    assert_success(&outcome);
    assert_eq!(
        dirs.out("wordcount.txt"),
        "file\tlines\twords\tbytes\n\
         a.txt\t3\t11\t53\n\
         b.txt\t3\t10\t60\n\
         total\t6\t21\t113\n\
         \n\
         word\tcount\n\
         the\t3\n\
         end\t2\n\
         hello\t2\n"
    );
    assert_eq!(dirs.out("upper/a.txt"), A_TXT.to_uppercase());
    assert_eq!(dirs.out("upper/b.txt"), B_TXT.to_uppercase());
    assert_eq!(
        outcome.stdout.to_string_lossy(),
        "wordcount: 2 file(s), 6 lines, 21 words, 113 bytes, 17 distinct words\n"
    );
}

#[tokio::test]
async fn wordcount_follows_the_input_file_variables() {
    let dirs = Dirs::new()
        .with_input("a.txt", A_TXT)
        .with_input("b.txt", B_TXT)
        .with_input("ignored.txt", "not listed");
    let spec = dirs
        .spec("wordcount", "")
        .with_env("IEXEC_INPUT_FILES_NUMBER", "2")
        .with_env("IEXEC_INPUT_FILE_NAME_1", "b.txt")
        .with_env("IEXEC_INPUT_FILE_NAME_2", "a.txt");
    assert_success(&run(spec).await);
    let report = dirs.out("wordcount.txt");
    assert!(
        report.starts_with("file\tlines\twords\tbytes\nb.txt\t3\t10\t60\na.txt\t3\t11\t53\n"),
        "{report}"
    );
    assert!(!dirs.output.path().join("upper/ignored.txt").exists());
}

const PEOPLE_CSV: &str = "name,age,score,city\n\
                          alice,30,88.5,Paris\n\
                          bob,25,,Lyon\n\
                          \"carol\", 35 ,91.25,\"Nice\"\n\
                          dave,x,70,Lille\n\n";

#[tokio::test]
async fn csvstats_summarises_the_dataset() {
    let dirs = Dirs::new().with_input("people.csv", PEOPLE_CSV);
    let spec = dirs.spec("csvstats", "").with_env("IEXEC_DATASET_FILENAME", "people.csv");
    let outcome = run(spec).await;
    assert_success(&outcome);
    assert_eq!(
        dirs.out("stats.json"),
        r#"{"dataset":"people.csv","rows":4,"columns":[
  {"name":"name","count":0,"missing":4,"sum":0,"min":null,"max":null,"mean":null,"stddev":null},
  {"name":"age","count":3,"missing":1,"sum":90,"min":25,"max":35,"mean":30,"stddev":4.082482905},
  {"name":"score","count":3,"missing":1,"sum":249.75,"min":70,"max":91.25,"mean":83.25,"stddev":9.436189203},
  {"name":"city","count":0,"missing":4,"sum":0,"min":null,"max":null,"mean":null,"stddev":null}
]}
"#
    );
    assert_eq!(
        dirs.out("computed.json"),
        "{\"deterministic-output-path\":\"/iexec_out/stats.json\"}\n"
    );
}

#[tokio::test]
async fn csvstats_takes_a_delimiter() {
    let dirs = Dirs::new().with_input("d.csv", "a;b\n1;2\n3;4\n");
    let spec = dirs.spec("csvstats", "';'").with_env("IEXEC_DATASET_FILENAME", "d.csv");
    assert_success(&run(spec).await);
    let stats = dirs.out("stats.json");
    assert!(
        stats.contains(
            r#"{"name":"b","count":2,"missing":0,"sum":6,"min":2,"max":4,"mean":3,"stddev":1}"#
        ),
        "{stats}"
    );
}

#[tokio::test]
async fn csvstats_without_a_dataset_fails_cleanly() {
    let dirs = Dirs::new();
    let outcome = run(dirs.spec("csvstats", "")).await;
    assert_eq!(outcome.status, ExitStatus::Exited(2));
    assert!(
        outcome.stderr.to_string_lossy().contains("IEXEC_DATASET_FILENAME is not set"),
        "{}",
        outcome.stderr.to_string_lossy()
    );
}

// --- determinism --------------------------------------------------------------------------

#[tokio::test]
async fn a_task_run_twice_gives_identical_outputs() {
    for (app_name, args) in [("pi", "200000 7"), ("wordcount", ""), ("probe", "x y")] {
        let first = Dirs::new().with_input("a.txt", A_TXT).with_input("b.txt", B_TXT);
        let second = Dirs::new().with_input("a.txt", A_TXT).with_input("b.txt", B_TXT);
        let one = run(first.spec(app_name, args).with_seed([5; 32])).await;
        let two = run(second.spec(app_name, args).with_seed([5; 32])).await;
        assert_success(&one);
        assert_eq!(one.status, two.status, "{app_name}");
        assert_eq!(one.stdout, two.stdout, "{app_name}");
        assert_eq!(one.stderr, two.stderr, "{app_name}");
        assert_eq!(one.fuel_consumed, two.fuel_consumed, "{app_name}");
        assert!(!first.tree().is_empty(), "{app_name}");
        assert_eq!(first.tree(), second.tree(), "{app_name}");
    }
}

#[tokio::test]
async fn the_same_output_directory_gives_byte_identical_files() {
    let dirs = Dirs::new().with_input("people.csv", PEOPLE_CSV);
    let spec = dirs.spec("csvstats", "").with_env("IEXEC_DATASET_FILENAME", "people.csv");
    assert_success(&run(spec.clone()).await);
    let first = dirs.tree();
    assert_success(&run(spec).await);
    assert_eq!(first, dirs.tree());
}

#[tokio::test]
async fn clocks_are_frozen_at_the_given_time() {
    let dirs = Dirs::new();
    let clock = Duration::new(1_700_000_000, 123_456_789);
    let outcome = run(dirs.spec("probe", "").with_clock(clock)).await;
    assert_success(&outcome);
    assert_eq!(probe_value(&outcome, "time"), "1700000000");
    assert_eq!(probe_value(&outcome, "realtime_ns"), "1700000000123456789");
    // The monotonic clock does not move, even across a million loop iterations.
    assert_eq!(probe_value(&outcome, "monotonic_ns"), probe_value(&outcome, "monotonic_ns_later"));

    let other = run(Dirs::new().spec("probe", "").with_clock(Duration::from_secs(42))).await;
    assert_eq!(probe_value(&other, "time"), "42");
}

#[tokio::test]
async fn random_sources_follow_the_seed() {
    let random = |seed| async move {
        let outcome = run(Dirs::new().spec("probe", "").with_seed(seed)).await;
        assert_success(&outcome);
        (probe_values(&outcome, "random"), probe_value(&outcome, "rand"))
    };
    let (bytes_a, rand_a) = random([1; 32]).await;
    let (bytes_again, rand_again) = random([1; 32]).await;
    let (bytes_b, _) = random([2; 32]).await;
    assert_eq!(bytes_a.len(), 2);
    assert_ne!(bytes_a[0], bytes_a[1], "the stream advances");
    assert_eq!(bytes_a, bytes_again);
    assert_eq!(rand_a, rand_again);
    assert_ne!(bytes_a, bytes_b);
}

#[tokio::test]
async fn the_per_worker_argument_app_differs_only_by_its_arguments() {
    let (one, two, three) = (Dirs::new(), Dirs::new(), Dirs::new());
    assert_success(&run(one.spec("argecho", "worker-1 'a b'")).await);
    assert_success(&run(two.spec("argecho", "worker-2 'a b'")).await);
    assert_success(&run(three.spec("argecho", "worker-1 'a b'")).await);
    assert_eq!(one.out("result.txt"), "worker-1\na b\n");
    assert_ne!(one.tree(), two.tree());
    assert_eq!(one.tree(), three.tree());
}

// --- isolation ----------------------------------------------------------------------------

#[tokio::test]
async fn the_environment_is_only_what_the_caller_gives() {
    let dirs = Dirs::new();
    let spec = dirs.spec("probe", "one 'two words'").with_env("IEXEC_TASK_ID", "0x1234");
    let outcome = run(spec).await;
    assert_success(&outcome);
    // The host's HOME, PATH, CARGO_* ... are all absent.
    assert!(std::env::var_os("PATH").is_some());
    assert_eq!(
        probe_values(&outcome, "env"),
        ["IEXEC_IN=/iexec_in", "IEXEC_OUT=/iexec_out", "IEXEC_TASK_ID=0x1234"]
    );
    assert_eq!(probe_value(&outcome, "argc"), "3");
    assert_eq!(probe_value(&outcome, "argv[0]"), "app");
    assert_eq!(probe_value(&outcome, "argv[2]"), "two words");
}

#[tokio::test]
async fn the_app_sees_only_its_two_mounts_and_cannot_write_its_inputs() {
    let dirs = Dirs::new().with_input("a.txt", A_TXT);
    // A link from inside the input to a host file must not lead out.
    let secret = TempDir::new().unwrap();
    std::fs::write(secret.path().join("secret.txt"), "host secret").unwrap();
    std::os::unix::fs::symlink(secret.path().join("secret.txt"), dirs.input.path().join("link"))
        .unwrap();

    let outcome = run(dirs.spec("probe", "")).await;
    assert_success(&outcome);
    for key in [
        "read_etc_passwd",
        "read_dotdot",
        "read_out_dotdot",
        "read_symlink",
        "opendir_root",
        "opendir_tmp",
        "write_in_new",
        "write_in_existing",
        "mkdir_in",
        "unlink_in",
    ] {
        assert_ne!(probe_value(&outcome, key), "ok", "{key} must fail");
    }
    assert_eq!(probe_value(&outcome, "write_out"), "ok");

    // The inputs are untouched.
    let inputs: Vec<_> = tree(dirs.input.path()).into_keys().collect();
    assert_eq!(inputs, [PathBuf::from("a.txt"), PathBuf::from("link")]);
    assert_eq!(std::fs::read_to_string(dirs.input.path().join("a.txt")).unwrap(), A_TXT);
    assert!(!outcome.stdout.to_string_lossy().contains("host secret"));
}

// --- limits -------------------------------------------------------------------------------

#[tokio::test]
async fn an_endless_loop_runs_out_of_fuel_deterministically() {
    let fuel = 50_000_000;
    let mut consumed = Vec::new();
    for _ in 0..2 {
        let dirs = Dirs::new();
        let spec = dirs.spec("loop", "").with_limits(Limits::default().with_fuel(fuel));
        let outcome = run(spec).await;
        assert_eq!(outcome.status, ExitStatus::OutOfFuel);
        assert!(outcome.status.is_deterministic());
        assert_eq!(outcome.stdout.to_string_lossy(), "looping\n");
        consumed.push(outcome.fuel_consumed);
    }
    assert_eq!(consumed, [fuel, fuel]);
}

#[tokio::test]
async fn a_memory_hog_runs_out_of_memory() {
    let dirs = Dirs::new();
    let spec = dirs.spec("memhog", "").with_limits(Limits::default().with_memory_bytes(32 << 20));
    let outcome = run(spec).await;
    assert_eq!(outcome.status, ExitStatus::OutOfMemory);
    assert!(
        outcome.stderr.to_string_lossy().contains("allocation failed after"),
        "{}",
        outcome.stderr.to_string_lossy()
    );

    // Under the limit, the same app ends well.
    let dirs = Dirs::new();
    let spec = dirs.spec("memhog", "8").with_limits(Limits::default().with_memory_bytes(32 << 20));
    assert_success(&run(spec).await);
}

#[tokio::test]
async fn a_module_bigger_than_the_memory_limit_is_out_of_memory() {
    // pi declares 1 MiB of stack plus its data: more than 64 KiB.
    let dirs = Dirs::new();
    let spec = dirs.spec("pi", "").with_limits(Limits::default().with_memory_bytes(64 << 10));
    assert_eq!(run(spec).await.status, ExitStatus::OutOfMemory);
}

#[tokio::test]
async fn traps_are_reported_by_kind() {
    for (args, expected) in [
        ("", ExitStatus::Trapped(TrapKind::Unreachable)),
        ("oob", ExitStatus::Trapped(TrapKind::MemoryOutOfBounds)),
        ("div0", ExitStatus::Trapped(TrapKind::IntegerDivisionByZero)),
        ("stack", ExitStatus::Trapped(TrapKind::StackOverflow)),
        ("exit:3", ExitStatus::Exited(3)),
    ] {
        let dirs = Dirs::new();
        let outcome = run(dirs.spec("trap", args)).await;
        assert_eq!(outcome.status, expected, "trap {args}");
        assert!(outcome.status.is_deterministic());
    }
}

#[tokio::test]
async fn output_beyond_the_cap_is_truncated() {
    let dirs = Dirs::new();
    let spec =
        dirs.spec("chatty", "10000 3000").with_limits(Limits::default().with_output_bytes(1000));
    let outcome = run(spec).await;
    assert_success(&outcome);
    for (stream, total) in [(&outcome.stdout, 10_000), (&outcome.stderr, 3_000)] {
        assert!(stream.truncated);
        assert_eq!(stream.bytes.len(), 1000);
        assert_eq!(stream.total_bytes, total);
        assert!(stream.bytes.starts_with(b"0123456789"));
    }

    let dirs = Dirs::new();
    let spec =
        dirs.spec("chatty", "1000 10").with_limits(Limits::default().with_output_bytes(1000));
    let outcome = run(spec).await;
    assert!(!outcome.stdout.truncated);
    assert_eq!(outcome.stdout.bytes.len(), 1000);
    assert!(!outcome.stderr.truncated);
    assert_eq!(outcome.stderr.bytes.len(), 10);
}

#[tokio::test]
async fn the_wall_clock_timeout_stops_a_computation() {
    let dirs = Dirs::new();
    let spec = dirs.spec("loop", "").with_limits(
        Limits::default().with_fuel(u64::MAX).with_timeout(Duration::from_millis(300)),
    );
    let outcome = run(spec).await;
    assert_eq!(outcome.status, ExitStatus::TimedOut);
    assert!(!outcome.status.is_deterministic());
    assert!(outcome.wall_time < Duration::from_secs(5), "{:?}", outcome.wall_time);
    assert!(outcome.fuel_consumed > 0);
}

#[tokio::test]
async fn the_wall_clock_timeout_stops_a_sleeping_app() {
    let dirs = Dirs::new();
    let spec = dirs
        .spec("sleeper", "3600")
        .with_limits(Limits::default().with_timeout(Duration::from_millis(300)));
    let outcome = run(spec).await;
    assert_eq!(outcome.status, ExitStatus::TimedOut);
    assert!(outcome.wall_time < Duration::from_secs(5), "{:?}", outcome.wall_time);
    assert!(!dirs.output.path().join("result.txt").exists());
}

/// A sleep within the timeout really sleeps (on the timer, not the app's thread), then the
/// app goes on.
#[tokio::test]
async fn a_short_sleep_sleeps_and_the_app_goes_on() {
    let dirs = Dirs::new();
    let spec = dirs
        .spec("sleeper", "1")
        .with_limits(Limits::default().with_timeout(Duration::from_secs(20)));
    let outcome = run(spec).await;
    assert_eq!(outcome.status, ExitStatus::Exited(0), "{}", outcome.stderr.to_string_lossy());
    assert!(outcome.wall_time >= Duration::from_millis(900), "{:?}", outcome.wall_time);
}

// --- errors, cache, trait object ----------------------------------------------------------

/// A valid module exporting an empty `_start`, which imports `env.f` when `import` is set and
/// declares a memory with the section content `memory` when given.
fn tiny_module(import: bool, memory: Option<&[u8]>) -> Vec<u8> {
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    module.extend([0x01, 0x04, 0x01, 0x60, 0x00, 0x00]); // type 0: () -> ()
    let start_index = if import {
        module.extend([0x02, 0x09, 0x01, 0x03, b'e', b'n', b'v', 0x01, b'f', 0x00, 0x00]);
        1
    } else {
        0
    };
    module.extend([0x03, 0x02, 0x01, 0x00]); // one function of type 0
    if let Some(memory) = memory {
        module.extend([0x05, u8::try_from(memory.len()).unwrap()]);
        module.extend(memory);
    }
    module.extend([0x07, 0x0a, 0x01, 0x06]);
    module.extend(b"_start");
    module.extend([0x00, start_index]);
    module.extend([0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b]); // body: end
    module
}

#[tokio::test]
async fn a_minimal_command_runs() {
    let dirs = Dirs::new();
    let spec = ExecSpec::new(tiny_module(false, None), dirs.input.path(), dirs.output.path());
    let outcome = run(spec).await;
    assert_eq!(outcome.status, ExitStatus::Exited(0));
    assert_eq!(outcome.fuel_consumed, 1);
}

#[tokio::test]
async fn bad_modules_are_typed_errors() {
    let dirs = Dirs::new();
    let error = |module: Vec<u8>| {
        let spec = ExecSpec::new(module, dirs.input.path(), dirs.output.path());
        async move { executor().run(spec).await.unwrap_err() }
    };

    let err = error(b"not wasm at all".to_vec()).await;
    assert!(matches!(err, ExecError::Compile { .. }), "{err}");
    assert!(err.is_app_fault());

    let err = error(b"\0asm\x01\0\0\0".to_vec()).await;
    assert!(matches!(err, ExecError::MissingStart), "{err}");

    let err = error(tiny_module(true, None)).await;
    assert!(matches!(err, ExecError::Link { .. }), "{err}");
    assert!(err.to_string().contains("env"), "{err}");

    // A memory of one page is fine; a shared one (the threads proposal) is refused.
    let dirs_ok = Dirs::new();
    let spec = ExecSpec::new(
        tiny_module(false, Some(&[0x01, 0x01, 0x01, 0x01])),
        dirs_ok.input.path(),
        dirs_ok.output.path(),
    );
    assert_eq!(run(spec).await.status, ExitStatus::Exited(0));
    let err = error(tiny_module(false, Some(&[0x01, 0x03, 0x01, 0x01]))).await;
    assert!(matches!(err, ExecError::Compile { .. }), "{err}");
}

#[tokio::test]
async fn bad_specs_are_typed_errors() {
    let dirs = Dirs::new();
    let missing = dirs.input.path().join("does-not-exist");
    let spec = ExecSpec::new(app("pi"), &missing, dirs.output.path());
    let err = executor().run(spec).await.unwrap_err();
    assert!(matches!(&err, ExecError::Io { what: "input directory", .. }), "{err}");
    assert!(err.to_string().contains(&*missing.to_string_lossy()), "{err}");
    assert!(!err.is_app_fault());

    let file = dirs.input.path().join("file");
    std::fs::write(&file, "").unwrap();
    let spec = ExecSpec::new(app("pi"), dirs.input.path(), &file);
    let err = executor().run(spec).await.unwrap_err();
    assert!(matches!(&err, ExecError::Io { what: "output directory", .. }), "{err}");

    let spec = dirs.spec("pi", "").with_env("HOME", "/root");
    let err = executor().run(spec).await.unwrap_err();
    assert!(err.is_spec_fault(), "{err}");
}

#[tokio::test]
async fn compiled_modules_are_cached_by_sha256() {
    let executor = WasmExecutor::with_cache_capacity(4).unwrap();
    let module = app("argecho");
    let first = executor.precompile(&module).await.unwrap();
    assert!(first.is_some());
    assert_eq!(executor.precompile(&module).await.unwrap(), None);
    assert_eq!(executor.cached_modules(), 1);

    let dirs = Dirs::new();
    let outcome = executor.run(dirs.spec("argecho", "x")).await.unwrap();
    assert_success(&outcome);
    assert_eq!(outcome.compile_time, None);
    assert_eq!(executor.cached_modules(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_executor_works_as_a_trait_object_and_concurrently() {
    let executor: Arc<dyn Executor> = Arc::new(executor().clone());
    assert_eq!(executor.backend(), "wasm");
    let runs = (0..4).map(|i| {
        let executor = Arc::clone(&executor);
        tokio::spawn(async move {
            let dirs = Dirs::new();
            let outcome =
                executor.execute(dirs.spec("pi", &format!("100000 {}", i % 2))).await.unwrap();
            assert_success(&outcome);
            dirs.out("result.txt")
        })
    });
    let mut results = Vec::new();
    for run in runs {
        results.push(run.await.unwrap());
    }
    assert_eq!(results[0], results[2]);
    assert_eq!(results[1], results[3]);
    assert_ne!(results[0], results[1]);
}

// ------------------------------------------------------------------------ the output quota

/// Runs the `filler` app with `args` under `quota`, in fresh directories.
async fn fill(args: &str, quota: OutputQuota) -> (Dirs, ExecOutcome) {
    let dirs = Dirs::new();
    let spec = dirs
        .spec("filler", args)
        .with_limits(Limits::default().with_fuel(20_000_000_000).with_files(quota));
    let outcome = run(spec).await;
    (dirs, outcome)
}

/// Asserts the run was stopped at `kind` of the quota, with `limit`, and left nothing behind.
fn assert_stopped_at(dirs: &Dirs, outcome: &ExecOutcome, kind: QuotaKind, limit: u64) {
    match &outcome.status {
        ExitStatus::OutputQuotaExceeded(exceeded) => {
            assert_eq!((exceeded.kind, exceeded.limit), (kind, limit), "{}", outcome.status);
        }
        other => {
            panic!("expected the {kind} quota, got {other}: {}", outcome.stdout.to_string_lossy())
        }
    }
    assert!(outcome.status.is_deterministic());
    assert!(outcome.status.to_string().contains(&kind.to_string()), "{}", outcome.status);
    let left = std::fs::read_dir(dirs.output.path()).unwrap().count();
    assert_eq!(left, 0, "the over-quota output was not removed");
}

const MIB: u64 = 1 << 20;

#[tokio::test]
async fn many_small_writes_stop_at_the_byte_quota() {
    let quota = OutputQuota::default().with_max_bytes(MIB);
    let (dirs, outcome) = fill(&format!("bytes {} 4096", 4 * MIB), quota).await;
    assert_stopped_at(&dirs, &outcome, QuotaKind::Bytes, MIB);
    // Exactly the quota is within it.
    let (dirs, outcome) = fill(&format!("bytes {MIB} 4096"), quota).await;
    assert_success(&outcome);
    assert_eq!(std::fs::metadata(dirs.output.path().join("fill.bin")).unwrap().len(), MIB);
}

#[tokio::test]
async fn one_big_write_is_refused_before_it_reaches_the_disk() {
    let quota = OutputQuota::default().with_max_bytes(MIB);
    let (dirs, outcome) = fill(&format!("bytes {} {}", 16 * MIB, 16 * MIB), quota).await;
    assert_stopped_at(&dirs, &outcome, QuotaKind::Bytes, MIB);
    // The app never got to report a write: the one write it made was refused whole.
    assert!(
        !outcome.stdout.to_string_lossy().contains("wrote"),
        "{}",
        outcome.stdout.to_string_lossy()
    );
}

#[tokio::test]
async fn a_sparse_file_counts_for_its_apparent_size() {
    let quota = OutputQuota::default().with_max_bytes(MIB);
    let (dirs, outcome) = fill("sparse 1099511627776", quota).await;
    assert_stopped_at(&dirs, &outcome, QuotaKind::Bytes, MIB);
    let (dirs, outcome) = fill(&format!("sparse {}", MIB - 1), quota).await;
    assert_success(&outcome);
    assert_eq!(std::fs::metadata(dirs.output.path().join("sparse.bin")).unwrap().len(), MIB);
}

#[tokio::test]
async fn rewriting_the_same_bytes_costs_them_once() {
    let quota = OutputQuota::default().with_max_bytes(MIB);
    // 64 MiB written in all, over the same 64 KiB.
    let (dirs, outcome) = fill("rewrite 1024 65536", quota).await;
    assert_success(&outcome);
    assert_eq!(std::fs::metadata(dirs.output.path().join("same.bin")).unwrap().len(), 65_536);
}

#[tokio::test]
async fn two_descriptors_on_one_file_are_counted_at_its_real_size() {
    // Each write is checked against the file's size at that moment, whichever descriptor made
    // the file grow before: an app cannot hide growth behind a second descriptor.
    let quota = OutputQuota::default().with_max_bytes(MIB);
    let (dirs, outcome) = fill(&format!("twofds {} 4096", 4 * MIB), quota).await;
    assert_stopped_at(&dirs, &outcome, QuotaKind::Bytes, MIB);
    let (dirs, outcome) = fill(&format!("twofds {MIB} 4096"), quota).await;
    assert_success(&outcome);
    assert_eq!(std::fs::metadata(dirs.output.path().join("two.bin")).unwrap().len(), MIB);
}

#[tokio::test]
async fn too_many_files_stop_at_the_entry_quota() {
    let quota = OutputQuota::default().with_max_entries(100);
    let (dirs, outcome) = fill("files 500", quota).await;
    assert_stopped_at(&dirs, &outcome, QuotaKind::Entries, 100);
    let (dirs, outcome) = fill("files 100", quota).await;
    assert_success(&outcome);
    assert_eq!(dirs.tree().len(), 100);
}

#[tokio::test]
async fn too_deep_a_path_stops_at_the_depth_and_length_quotas() {
    let quota = OutputQuota::default().with_max_depth(10);
    let (dirs, outcome) = fill("deep 50", quota).await;
    assert_stopped_at(&dirs, &outcome, QuotaKind::Depth, 10);
    let (_dirs, outcome) = fill("deep 10", quota).await;
    assert_success(&outcome);
    // "d/d/d/d/d/d/d/d/d" is 17 bytes.
    let quota = OutputQuota::default().with_max_path_bytes(16);
    let (dirs, outcome) = fill("deep 20", quota).await;
    assert_stopped_at(&dirs, &outcome, QuotaKind::PathBytes, 16);
}

#[test]
fn the_default_quota_packs_within_the_result_store_limits() {
    let store = poco_api::results::UploadLimits::default();
    let quota = OutputQuota::default();
    assert_eq!(quota.max_entries, store.archive.max_entries as u64);
    assert_eq!(quota.max_path_bytes, store.archive.max_path_bytes);
    let worst_archive = quota.max_bytes
        + quota.max_entries * OutputQuota::TAR_OVERHEAD_PER_ENTRY
        + OutputQuota::TAR_END;
    assert!(worst_archive <= store.max_body_bytes, "{worst_archive}");
    assert!(quota.max_bytes <= store.archive.max_content_bytes);
    assert!(quota.max_bytes > 32 * MIB, "{}", quota.max_bytes);
}
