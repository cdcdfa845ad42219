//! App projects: a folder with a manifest (`poco.toml`) and sources, created by
//! [`new_project`] and built by [`build`] into the one file an app is registered with.
//!
//! ```text
//! myapp/
//!   poco.toml       [app] name, lang, entry, runtime; [limits] for local runs; [test] inputs
//!   src/main.py     (or src/main.c): the code; every file under src/ goes into the app
//!   test/           what `poco app test` gives the app: a dataset, input files
//!   build/          what `poco app build` writes: <name>.app (Python) or <name>.wasm (C)
//! ```
//!
//! A build is reproducible: the same sources give the same bytes, hence the same checksum,
//! on any machine. A Python app is an [app bundle](poco_primitives::app_bundle) (its files in
//! byte order, nothing of the machine); a C app is compiled by clang for `wasm32-wasi` with
//! the flags of `apps/wasm-cflags` and `apps/wasm-ldflags`, the build folder mapped away.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use poco_primitives::app_bundle::{self, AppBundle, AppLang, AppManifest, WASI_PYTHON};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "poco.toml";
/// The C compiler flags of every poco C app.
pub const WASM_CFLAGS: &str = include_str!("../../../apps/wasm-cflags");
/// The C linker flags of every poco C app.
pub const WASM_LDFLAGS: &str = include_str!("../../../apps/wasm-ldflags");

/// The language of a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Python, run by the pinned Python runtime.
    Python,
    /// C, compiled to a WebAssembly module.
    C,
}

impl std::str::FromStr for Lang {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "python" => Ok(Self::Python),
            "c" => Ok(Self::C),
            other => Err(Error::InvalidInput(format!(
                "unknown language {other:?}: poco apps are written in python or c"
            ))),
        }
    }
}

/// `poco.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectManifest {
    /// What the app is.
    pub app: AppSection,
    /// The limits of local runs (`poco app test`); on the network, the deal's category sets
    /// them.
    #[serde(default)]
    pub limits: LimitsSection,
    /// What `poco app test` gives the app.
    #[serde(default)]
    pub test: TestSection,
}

/// `[app]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSection {
    /// The app's name (1 to 64 bytes: letters, digits, `-`, `_`).
    pub name: String,
    /// Its language.
    pub lang: Lang,
    /// The file under `src/` the app starts from: the script (Python) or the C file.
    pub entry: String,
    /// The Python runtime, `name version` (Python only; the one poco knows by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
}

/// `[limits]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Memory, in MiB.
    pub memory_mib: u64,
    /// Fuel: roughly one unit per WebAssembly instruction.
    pub fuel: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self { memory_mib: 1024, fuel: 100_000_000_000 }
    }
}

/// `[test]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSection {
    /// The arguments, as a deal's `iexec_args` (split like a shell, no expansion).
    #[serde(default)]
    pub args: String,
    /// The dataset, a path relative to the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<PathBuf>,
    /// Input files, paths relative to the project.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_files: Vec<PathBuf>,
}

/// A project on disk.
#[derive(Clone, Debug)]
pub struct Project {
    /// Its folder.
    pub root: PathBuf,
    /// Its manifest.
    pub manifest: ProjectManifest,
}

/// A built app: the file to register and its checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltApp {
    /// The file `build` wrote.
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Their sha256: the checksum the app is registered with.
    pub checksum: alloy::primitives::B256,
}

impl Project {
    /// Reads the project at `root`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `poco.toml` cannot be read; [`Error::InvalidInput`] if it is not a
    /// valid manifest.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let path = root.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let manifest: ProjectManifest = toml::from_str(&text)
            .map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))?;
        check_name(&manifest.app.name)?;
        app_bundle::check_path(&manifest.app.entry)
            .map_err(|e| Error::InvalidInput(format!("{}: [app] entry: {e}", path.display())))?;
        if manifest.app.lang == Lang::C && manifest.app.runtime.is_some() {
            return Err(Error::InvalidInput(format!(
                "{}: a C app has no runtime (remove [app] runtime)",
                path.display()
            )));
        }
        if let Some(runtime) = &manifest.app.runtime
            && *runtime != python_runtime_name()
        {
            return Err(Error::InvalidInput(format!(
                "{}: unknown Python runtime {runtime:?}; this poco knows {:?}",
                path.display(),
                python_runtime_name()
            )));
        }
        Ok(Self { root, manifest })
    }

    /// The folder of the sources.
    pub fn src_dir(&self) -> PathBuf {
        self.root.join("src")
    }

    /// The file [`build`] writes.
    pub fn artifact_path(&self) -> PathBuf {
        let extension = match self.manifest.app.lang {
            Lang::Python => "app",
            Lang::C => "wasm",
        };
        self.root.join("build").join(format!("{}.{extension}", self.manifest.app.name))
    }
}

/// `wasi-python 0.1.0`: the runtime a new Python project names.
pub fn python_runtime_name() -> String {
    format!("{} {}", WASI_PYTHON.name, WASI_PYTHON.version)
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "invalid app name {name:?}: 1 to 64 letters, digits, '-' or '_'"
        )))
    }
}

/// Creates the project `name` in the new folder `root`: a manifest, a first program that
/// reads its dataset and writes its result, a sample dataset, and a `.gitignore`.
///
/// # Errors
///
/// [`Error::InvalidInput`] for an invalid name or a `root` that already exists;
/// [`Error::Io`] if a file cannot be written.
pub fn new_project(root: &Path, name: &str, lang: Lang) -> Result<Project> {
    check_name(name)?;
    if root.exists() {
        return Err(Error::InvalidInput(format!(
            "{} already exists: choose a new folder for the project",
            root.display()
        )));
    }
    let entry = match lang {
        Lang::Python => "main.py",
        Lang::C => "main.c",
    };
    let manifest = ProjectManifest {
        app: AppSection {
            name: name.to_owned(),
            lang,
            entry: entry.to_owned(),
            runtime: (lang == Lang::Python).then(python_runtime_name),
        },
        limits: LimitsSection::default(),
        test: TestSection {
            args: "2".to_owned(),
            dataset: Some(PathBuf::from("test/data.csv")),
            input_files: Vec::new(),
        },
    };
    let toml = toml::to_string(&manifest).map_err(|e| Error::InvalidInput(e.to_string()))?;
    let files: [(&str, &str); 4] = [
        (MANIFEST_FILE, &toml),
        (
            if lang == Lang::Python { "src/main.py" } else { "src/main.c" },
            if lang == Lang::Python { PYTHON_TEMPLATE } else { C_TEMPLATE },
        ),
        ("test/data.csv", "city,amount\nLyon,12.5\nParis,30\nLyon,7.5\nNantes,4\n"),
        (".gitignore", "/build\n"),
    ];
    for (path, content) in files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, content).map_err(|e| Error::io(&path, e))?;
    }
    Project::open(root)
}

const PYTHON_TEMPLATE: &str = r#""""A poco app: totals of a CSV dataset by its first column.

The worker mounts the dataset at $IEXEC_IN/$IEXEC_DATASET_FILENAME and collects what the app
writes to $IEXEC_OUT; the arguments are those of the deal. Clocks and random numbers are the
same on every worker, so replicas agree bit for bit.
"""
import csv
import json
import os
import sys

places = int(sys.argv[1]) if len(sys.argv) > 1 else 2
out = os.environ["IEXEC_OUT"]
dataset = os.path.join(os.environ["IEXEC_IN"], os.environ.get("IEXEC_DATASET_FILENAME", ""))

totals = {}
with open(dataset, newline="") as rows:
    for row in csv.DictReader(rows):
        key, value = next(iter(row.values())), float(list(row.values())[-1])
        totals[key] = totals.get(key, 0.0) + value

result = {key: round(totals[key], places) for key in sorted(totals)}
with open(os.path.join(out, "result.json"), "w") as f:
    json.dump(result, f, sort_keys=True)
with open(os.path.join(out, "computed.json"), "w") as f:
    json.dump({"deterministic-output-path": os.path.join(out, "result.json")}, f)
print(f"{len(result)} groups")
"#;

const C_TEMPLATE: &str = r#"/* A poco app: counts the lines of its dataset. The worker mounts the dataset at
 * $IEXEC_IN/$IEXEC_DATASET_FILENAME and collects what the app writes to $IEXEC_OUT. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    const char *in = getenv("IEXEC_IN"), *name = getenv("IEXEC_DATASET_FILENAME");
    const char *out = getenv("IEXEC_OUT");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", in ? in : "", name ? name : "");
    FILE *data = fopen(path, "r");
    if (!data) {
        fprintf(stderr, "no dataset at %s\n", path);
        return 2;
    }
    long lines = 0;
    for (int c; (c = fgetc(data)) != EOF;) lines += c == '\n';
    fclose(data);
    snprintf(path, sizeof path, "%s/result.txt", out ? out : "");
    FILE *result = fopen(path, "w");
    if (!result) return 1;
    fprintf(result, "lines=%ld\n", lines);
    fclose(result);
    printf("%ld lines\n", lines);
    return 0;
}
"#;

/// Builds the project into [`Project::artifact_path`].
///
/// # Errors
///
/// [`Error::Io`] for a source or the artifact that cannot be read or written;
/// [`Error::InvalidInput`] for sources a bundle refuses (a path, a size) or a C build that
/// fails (the compiler's message).
pub fn build(project: &Project) -> Result<BuiltApp> {
    let bytes = match project.manifest.app.lang {
        Lang::Python => python_bundle(project)?.encode(),
        Lang::C => compile_c(project)?,
    };
    let path = project.artifact_path();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::write(&path, &bytes).map_err(|e| Error::io(&path, e))?;
    let checksum = crate::assets::checksum_of(&bytes);
    Ok(BuiltApp { path, bytes, checksum })
}

/// The bundle of a Python project: every file under `src/` but hidden ones and Python's
/// caches, by relative path.
///
/// # Errors
///
/// As [`build`].
pub fn python_bundle(project: &Project) -> Result<AppBundle> {
    let src = project.src_dir();
    let mut files = BTreeMap::new();
    collect(&src, &src, &mut files)?;
    let manifest = AppManifest {
        name: project.manifest.app.name.clone(),
        lang: AppLang::Python,
        entry: project.manifest.app.entry.clone(),
        runtime: WASI_PYTHON.into(),
    };
    AppBundle::new(manifest, files)
        .map_err(|e| Error::InvalidInput(format!("{}: {e}", project.root.display())))
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "__pycache__" || name.ends_with(".pyc") {
            continue;
        }
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if kind.is_dir() {
            collect(root, &path, files)?;
        } else if kind.is_file() {
            let relative = path
                .strip_prefix(root)
                .map_err(|e| Error::InvalidInput(e.to_string()))?
                .to_str()
                .ok_or_else(|| {
                    Error::InvalidInput(format!("{}: not a UTF-8 path", path.display()))
                })?
                .to_owned();
            let content = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            files.insert(relative, content);
        } else {
            return Err(Error::InvalidInput(format!(
                "{}: only files and folders go into an app (not links or devices)",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Compiles a C project's entry to WebAssembly with the pinned flags, from inside `src/` by
/// relative path so that no path of the machine ends up in the module.
fn compile_c(project: &Project) -> Result<Vec<u8>> {
    let compiler = std::env::var("WASM_CC").unwrap_or_else(|_| "clang".to_owned());
    let artifact = project.artifact_path();
    let build_dir = artifact.parent().unwrap_or(&project.root);
    std::fs::create_dir_all(build_dir).map_err(|e| Error::io(build_dir, e))?;
    let out = build_dir.join(format!(".{}.partial.wasm", project.manifest.app.name));
    let src = project.src_dir();
    let output = Command::new(&compiler)
        .current_dir(&src)
        .args(WASM_CFLAGS.lines().filter(|line| !line.is_empty()))
        .arg(format!("-ffile-prefix-map={}=.", src.display()))
        .arg("-o")
        .arg(&out)
        .arg(&project.manifest.app.entry)
        .args(WASM_LDFLAGS.lines().filter(|line| !line.is_empty()))
        .output()
        .map_err(|e| {
            Error::InvalidInput(format!(
                "cannot run the C compiler {compiler:?} ({e}): install clang, lld, wasi-libc and \
                 libclang-rt-14-dev-wasm32, or set WASM_CC"
            ))
        })?;
    if !output.status.success() {
        return Err(Error::InvalidInput(format!(
            "the C build failed:\n{}",
            String::from_utf8_lossy(&output.stderr).trim_end()
        )));
    }
    let bytes = std::fs::read(&out).map_err(|e| Error::io(&out, e))?;
    let _ = std::fs::remove_file(&out);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_python_project_builds_the_same_bytes_twice_and_in_another_folder() {
        let dir = tempfile::tempdir().unwrap();
        let first = new_project(&dir.path().join("one"), "sales", Lang::Python).unwrap();
        let second = new_project(&dir.path().join("elsewhere/two"), "sales", Lang::Python).unwrap();
        // Files the build leaves out.
        std::fs::create_dir_all(second.src_dir().join("__pycache__")).unwrap();
        std::fs::write(second.src_dir().join("__pycache__/main.cpython-315.pyc"), b"x").unwrap();
        std::fs::write(second.src_dir().join(".notes"), b"x").unwrap();
        let a = build(&first).unwrap();
        let b = build(&second).unwrap();
        assert_eq!(a.bytes, b.bytes);
        assert_eq!(a.checksum, b.checksum);
        assert_eq!(a.path, first.root.join("build/sales.app"));
        let bundle = AppBundle::decode(&a.bytes).unwrap();
        assert_eq!(bundle.files.keys().collect::<Vec<_>>(), ["main.py"]);
        assert_eq!(build(&first).unwrap().bytes, a.bytes, "again");
    }

    /// Needs clang for wasm32-wasi (the test command installs it).
    #[test]
    fn a_new_c_project_builds_the_same_module_in_any_folder() {
        let dir = tempfile::tempdir().unwrap();
        let first = new_project(&dir.path().join("one"), "lines", Lang::C).unwrap();
        let second = new_project(&dir.path().join("deeper/two"), "lines", Lang::C).unwrap();
        let a = build(&first).unwrap();
        let b = build(&second).unwrap();
        assert!(a.bytes.starts_with(b"\0asm"));
        assert_eq!(a.checksum, b.checksum);
        assert_eq!(a.path, first.root.join("build/lines.wasm"));

        std::fs::write(first.src_dir().join("main.c"), "int main(void) { return x; }\n").unwrap();
        let err = build(&first).unwrap_err();
        assert!(err.to_string().contains("the C build failed"), "{err}");
    }

    #[test]
    fn a_bad_project_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let project = new_project(&dir.path().join("p"), "p", Lang::Python).unwrap();
        let err = new_project(&project.root, "p", Lang::Python).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert!(new_project(&dir.path().join("q"), "no spaces", Lang::C).is_err());
        assert!("rust".parse::<Lang>().is_err());

        let manifest = project.root.join(MANIFEST_FILE);
        for (text, expected) in [
            ("[app]\nname = \"p\"\nlang = \"python\"\nentry = \"../x.py\"\n", "entry"),
            ("[app]\nname = \"p\"\nlang = \"cobol\"\nentry = \"main.py\"\n", "cobol"),
            (
                "[app]\nname = \"p\"\nlang = \"python\"\nentry = \"main.py\"\nruntime = \"cpython 3\"\n",
                "runtime",
            ),
            ("[app]\nname = \"p\"\nlang = \"python\"\nentry = \"main.py\"\nextra = 1\n", "extra"),
        ] {
            std::fs::write(&manifest, text).unwrap();
            let err = Project::open(&project.root).unwrap_err();
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
        std::fs::write(&manifest, "[app]\nname = \"p\"\nlang = \"python\"\nentry = \"gone.py\"\n")
            .unwrap();
        let err = build(&Project::open(&project.root).unwrap()).unwrap_err();
        assert!(err.to_string().contains("gone.py"), "{err}");
    }
}
