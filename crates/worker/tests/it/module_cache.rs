//! The compiled-module cache on disk: used across executors (processes), and trusted only
//! when its folder and files are exactly as the executor wrote them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use poco_worker::exec::{
    DiskCacheStats, ExecError, ExecSpec, Executor, ExitStatus, Limits, WasmExecutor, split_args,
};
use tempfile::TempDir;

fn pi() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../apps/pi/pi.wasm")).unwrap()
}

fn stats(hits: u64, misses: u64, refused: u64) -> DiskCacheStats {
    let mut stats = DiskCacheStats::default();
    stats.hits = hits;
    stats.misses = misses;
    stats.refused = refused;
    stats
}

/// Runs pi in a fresh executor on the cache `dir` and returns its stdout and cache answers.
async fn run_pi(dir: &Path) -> (String, DiskCacheStats) {
    let executor = WasmExecutor::with_module_cache(4, dir).unwrap();
    let input = TempDir::new().unwrap();
    let output = TempDir::new().unwrap();
    let spec = ExecSpec::new(pi(), input.path(), output.path())
        .with_args(split_args("20000 9").unwrap())
        .with_limits(Limits::default().with_fuel(5_000_000_000));
    let outcome = executor.execute(spec).await.unwrap();
    assert_eq!(outcome.status, ExitStatus::Exited(0));
    (outcome.stdout.to_string_lossy(), executor.disk_cache_stats())
}

/// The compiled modules of a cache folder (its lock files aside).
fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    files.sort();
    files
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn a_second_executor_loads_the_module_the_first_compiled() {
    let root = TempDir::new().unwrap();
    let dir = root.path().join("modules");
    let (first, first_stats) = run_pi(&dir).await;
    assert_eq!(first_stats, stats(0, 1, 0));
    assert_eq!(mode(&dir), 0o700);
    let files = cache_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(mode(&files[0]), 0o600);

    let (second, second_stats) = run_pi(&dir).await;
    assert_eq!(second_stats, stats(1, 0, 0));
    assert_eq!(first, second);
}

/// Two executors (two workers of one machine) that need a module at the same time compile it
/// once: the second waits for the first's file and loads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_needing_a_module_at_once_compile_it_once() {
    let root = TempDir::new().unwrap();
    let dir = root.path().join("modules");
    let (first, second) = tokio::join!(run_pi(&dir), run_pi(&dir));
    assert_eq!(first.0, second.0);
    let answers = [first.1, second.1];
    let total = stats(
        answers.iter().map(|s| s.hits).sum(),
        answers.iter().map(|s| s.misses).sum(),
        answers.iter().map(|s| s.refused).sum(),
    );
    assert_eq!(total, stats(1, 1, 0), "one compiled, the other loaded: {answers:?}");
    assert_eq!(cache_files(&dir).len(), 1);
}

/// Each way a file can differ from what was written: refused, deleted, compiled and written again.
#[tokio::test]
async fn a_file_not_exactly_as_written_is_refused_and_replaced() {
    let root = TempDir::new().unwrap();
    let dir = root.path().join("modules");
    let (expected, _) = run_pi(&dir).await;
    let file = cache_files(&dir).remove(0);
    let original = std::fs::read(&file).unwrap();

    type Tamper = dyn Fn(&Path);
    let tamperings: [(&str, &Tamper); 5] = [
        ("one byte of the code changed", &|path| {
            let mut bytes = std::fs::read(path).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            std::fs::write(path, bytes).unwrap();
        }),
        ("truncated", &|path| std::fs::write(path, b"pococwm1").unwrap()),
        ("readable by others", &|path| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }),
        ("a second link to it", &|path| {
            std::fs::hard_link(path, path.with_extension("copy")).unwrap();
        }),
        ("a symbolic link to a copy elsewhere", &|path| {
            let elsewhere = path.parent().unwrap().parent().unwrap().join("elsewhere.cwasm");
            std::fs::rename(path, &elsewhere).unwrap();
            std::os::unix::fs::symlink(&elsewhere, path).unwrap();
        }),
    ];
    for (what, tamper) in tamperings {
        tamper(&file);
        let (stdout, stats_after) = run_pi(&dir).await;
        assert_eq!(stats_after, stats(0, 0, 1), "{what}");
        assert_eq!(stdout, expected, "{what}");
        assert_eq!(std::fs::read(&file).unwrap(), original, "{what}: rewritten as it was");
        assert_eq!(mode(&file), 0o600, "{what}");
        let _ = std::fs::remove_file(file.with_extension("copy"));
        let (_, stats_after) = run_pi(&dir).await;
        assert_eq!(stats_after, stats(1, 0, 0), "{what}: the rewritten file is used");
    }
}

#[tokio::test]
async fn a_folder_open_to_others_or_a_link_is_refused() {
    let root = TempDir::new().unwrap();
    let open = root.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = WasmExecutor::with_module_cache(4, &open).unwrap_err();
    assert!(matches!(&err, ExecError::ModuleCache { path, .. } if path == &open), "{err}");
    assert!(err.to_string().contains("0755"), "{err}");

    let real = root.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = root.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = WasmExecutor::with_module_cache(4, &link).unwrap_err();
    assert!(err.to_string().contains("link"), "{err}");

    let file = root.path().join("file");
    std::fs::write(&file, b"").unwrap();
    assert!(matches!(
        WasmExecutor::with_module_cache(4, &file).unwrap_err(),
        ExecError::ModuleCache { .. }
    ));
}
