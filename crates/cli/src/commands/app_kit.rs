//! `poco app new`, `poco app build`, `poco app test`: the app kit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::primitives::B256;
use poco_primitives::app_bundle::{self, AppBundle};
use poco_primitives::result::result_digest_of_dir;
use poco_sdk::app_project::{self, BuiltApp, Lang, Project};
use poco_worker::exec::{ExecSpec, Executor, Limits, WasmExecutor, split_args};
use serde::Serialize;

use crate::{
    Failure,
    context::Context,
    output::{Output, fields},
};

/// `poco app new`.
pub(crate) fn new(
    output: Output,
    name: &str,
    lang: &str,
    dir: Option<PathBuf>,
) -> Result<(), Failure> {
    let lang: Lang = lang.parse()?;
    let root = dir.unwrap_or_else(|| PathBuf::from(name));
    let project = app_project::new_project(&root, name, lang)?;
    let json = serde_json::json!({
        "project": project.root,
        "name": project.manifest.app.name,
        "lang": project.manifest.app.lang,
    });
    output.result(&json, || {
        let root = project.root.display();
        format!(
            "created {root}: poco.toml, src/{}, test/data.csv\n\
             next: poco app test {root}, then poco app build {root} and poco app deploy",
            project.manifest.app.entry
        )
    });
    Ok(())
}

fn print_built(output: Output, built: &BuiltApp) {
    let json = serde_json::json!({"file": built.path, "checksum": built.checksum, "bytes": built.bytes.len()});
    output.result(&json, || {
        fields(&[
            ("file", built.path.display().to_string()),
            ("checksum", built.checksum.to_string()),
            ("bytes", built.bytes.len().to_string()),
        ])
    });
}

/// `poco app build`.
pub(crate) fn build(output: Output, project: &Path) -> Result<(), Failure> {
    let project = Project::open(project)?;
    let built = app_project::build(&project)?;
    print_built(output, &built);
    Ok(())
}

/// One local run of `poco app test`.
#[derive(Debug, Serialize)]
struct TestRun {
    status: String,
    fuel: u64,
    peak_memory_bytes: u64,
    wall_ms: u128,
    result_digest: B256,
}

/// `poco app test`.
pub(crate) async fn test(
    context: &Context,
    output: Output,
    project: &Path,
    python_runtime: Option<PathBuf>,
    module_cache: Option<PathBuf>,
) -> Result<(), Failure> {
    let project = Project::open(project)?;
    let built = app_project::build(&project)?;
    output.progress(format!("built {} (checksum {})", built.path.display(), built.checksum));

    let scratch =
        tempfile::tempdir().map_err(|e| Failure::config(format!("a temporary folder: {e}")))?;
    let (module, python) = if app_bundle::is_bundle(&built.bytes) {
        let bundle = AppBundle::decode(&built.bytes)
            .map_err(|e| Failure::usage(format!("{}: {e}", built.path.display())))?;
        let source = python_runtime.ok_or_else(|| {
            Failure::config(
                "a Python app runs in the Python runtime: pass --python-runtime DIR, a folder of \
                 its parts named by sha256 (scripts/python-runtime.sh fills \
                 target/runtimes/sha256), or set POCO_PYTHON_RUNTIME_SOURCE",
            )
        })?;
        let source = std::path::absolute(&source).unwrap_or(source);
        output.progress(format!("loading the Python runtime {}...", bundle.manifest.runtime.name));
        let mut policy = context.fetch_policy().clone();
        policy.provided_dirs.push(source.clone());
        let runtimes = poco_worker::runtime::python::PythonRuntimes::open(
            &context.home.join("app-test"),
            vec![format!("file://{}", source.display())],
            policy,
        );
        let (module, launch) = runtimes
            .prepare(&bundle, &scratch.path().join("app"))
            .await
            .map_err(|e| Failure::config(e.to_string()))?;
        (module, Some(launch))
    } else {
        (built.bytes.clone().into(), None)
    };

    let modules = module_cache.unwrap_or_else(|| context.home.join("modules"));
    let executor =
        WasmExecutor::with_module_cache(4, modules).map_err(|e| Failure::config(e.to_string()))?;
    let test = &project.manifest.test;
    let args = split_args(&test.args)
        .map_err(|e| Failure::usage(format!("poco.toml [test] args: {e}")))?;
    let limits = Limits::default()
        .with_fuel(project.manifest.limits.fuel)
        .with_memory_bytes(project.manifest.limits.memory_mib.saturating_mul(1 << 20))
        .with_timeout(Duration::from_secs(600));
    let mut runs = Vec::new();
    let mut failed = None;
    for round in 1..=2 {
        let input = scratch.path().join(format!("in-{round}"));
        let out = scratch.path().join(format!("out-{round}"));
        for dir in [&input, &out] {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::config(format!("{}: {e}", dir.display())))?;
        }
        let mut spec = ExecSpec::new(module.clone(), &input, &out)
            .with_args(args.clone())
            .with_limits(limits)
            .with_seed([7; 32])
            .with_env("IEXEC_TASK_ID", format!("{:#x}", B256::repeat_byte(7)))
            .with_env("IEXEC_INPUT_FILES_NUMBER", test.input_files.len().to_string());
        if let Some(dataset) = &test.dataset {
            let name = copy_input(&project.root, dataset, &input)?;
            spec = spec.with_env("IEXEC_DATASET_FILENAME", name);
        }
        for (i, file) in test.input_files.iter().enumerate() {
            let name = copy_input(&project.root, file, &input)?;
            spec = spec.with_env(format!("IEXEC_INPUT_FILE_NAME_{}", i + 1), name);
        }
        spec.python = python.clone();
        if round == 1 {
            output.progress("run 1 (the first run of a module compiles it; later ones load it)...");
        } else {
            output.progress("run 2...");
        }
        let outcome = executor.execute(spec).await.map_err(|e| Failure::config(e.to_string()))?;
        let stdout = outcome.stdout.to_string_lossy();
        let stderr = outcome.stderr.to_string_lossy();
        if round == 1 {
            if !stdout.is_empty() {
                output.progress(format!("stdout:\n{}", stdout.trim_end()));
            }
            if !stderr.is_empty() {
                output.progress(format!("stderr:\n{}", stderr.trim_end()));
            }
        }
        let digest = result_digest_of_dir(&out).map_err(|e| Failure::config(e.to_string()))?;
        runs.push(TestRun {
            status: outcome.status.to_string(),
            fuel: outcome.fuel_consumed,
            peak_memory_bytes: outcome.peak_memory_bytes,
            wall_ms: outcome.wall_time.as_millis(),
            result_digest: digest,
        });
        if !outcome.status.success() {
            failed = Some(outcome.status);
            break;
        }
    }
    let agree = runs.len() == 2
        && runs[0].result_digest == runs[1].result_digest
        && runs[0].fuel == runs[1].fuel;
    let json =
        serde_json::json!({"checksum": built.checksum, "runs": runs, "deterministic": agree});
    output.result(&json, || {
        let mut lines = vec![("checksum", built.checksum.to_string())];
        for run in &runs {
            lines.push(("status", run.status.clone()));
            lines.push(("fuel", run.fuel.to_string()));
            lines.push((
                "peak memory",
                format!("{:.1} MiB", run.peak_memory_bytes as f64 / 1048576.0),
            ));
            lines.push(("time", format!("{} ms", run.wall_ms)));
            lines.push(("result digest", run.result_digest.to_string()));
        }
        fields(&lines)
    });
    if let Some(status) = failed {
        return Err(Failure::tasks_failed(format!("the app {status}")));
    }
    if !agree {
        return Err(Failure::tasks_failed(
            "the two runs disagree: the app is not deterministic, and replicas would not reach \
             consensus",
        ));
    }
    Ok(())
}

/// Copies a test input of the project into the task's input folder; returns its name there.
fn copy_input(root: &Path, file: &Path, input: &Path) -> Result<String, Failure> {
    let source = root.join(file);
    let name =
        file.file_name().map(|name| name.to_string_lossy().into_owned()).ok_or_else(|| {
            Failure::usage(format!("poco.toml [test]: {} names no file", file.display()))
        })?;
    std::fs::copy(&source, input.join(&name))
        .map_err(|e| Failure::config(format!("poco.toml [test]: {}: {e}", source.display())))?;
    Ok(name)
}
