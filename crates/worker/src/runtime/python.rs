//! Python apps: an app bundle's runtime fetched once by its hashes and kept, and its code laid
//! out for the sandbox.
//!
//! The two parts of a runtime (the interpreter module and the standard library zip) are
//! content: the worker looks for each in its cache by sha256, then at each runtime source
//! (`<source>/<sha256 hex>`, under the fetch policy), and uses it only if its sha256 is the
//! one the bundle names, which must be a runtime this worker knows
//! ([`RuntimePin::known`]). Once checked, a runtime stays in memory for the next task.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy::primitives::B256;
use poco_chain::files;
use poco_fetch::Source;
use poco_primitives::app_bundle::{AppBundle, RuntimePin};

use super::fetch::Fetcher;
use crate::exec::PythonLaunch;
use crate::{Error, Result};

/// A runtime ready to run: its interpreter in memory, its standard library in a folder.
#[derive(Clone, Debug)]
pub struct LoadedRuntime {
    /// The interpreter module.
    pub module: Arc<[u8]>,
    /// The folder holding the standard library zip, to mount at
    /// [`GUEST_PYTHON_LIB`](crate::exec::GUEST_PYTHON_LIB).
    pub stdlib_dir: PathBuf,
}

/// The runtimes of Python apps: fetched once, checked, kept.
#[derive(Debug)]
pub struct PythonRuntimes {
    fetcher: Fetcher,
    sources: Vec<String>,
    dir: PathBuf,
    loaded: tokio::sync::Mutex<HashMap<B256, LoadedRuntime>>,
}

impl PythonRuntimes {
    pub(crate) fn new(fetcher: Fetcher, sources: Vec<String>, dir: PathBuf) -> Self {
        Self { fetcher, sources, dir, loaded: tokio::sync::Mutex::default() }
    }

    /// Runtimes kept under `data_dir` (as a worker keeps them in its data folder), fetched
    /// from `sources` (base URLs, each part at `<base>/<sha256 hex>`) under `policy`.
    pub fn open(data_dir: &Path, sources: Vec<String>, policy: poco_fetch::FetchPolicy) -> Self {
        Self::new(Fetcher::new(data_dir.join("cache"), policy), sources, data_dir.join("runtimes"))
    }

    /// The runtime `pin`, from memory, the cache, or a source.
    ///
    /// # Errors
    ///
    /// [`Error::Fetch`] or [`Error::ChecksumMismatch`] if no source gives a part with the
    /// right sha256; [`Error::Io`] if the standard library cannot be laid out.
    pub async fn get(&self, pin: RuntimePin) -> Result<LoadedRuntime> {
        // One task loads a runtime; the others wait for it rather than fetch it again.
        let mut loaded = self.loaded.lock().await;
        if let Some(runtime) = loaded.get(&pin.module_sha256) {
            return Ok(runtime.clone());
        }
        let module = self.part(pin.module_sha256).await?;
        let stdlib_dir = self.dir.join(format!("{:x}", pin.stdlib_sha256));
        let stdlib_file = stdlib_dir.join(pin.stdlib_file);
        if !stdlib_file.is_file() {
            let stdlib = self.part(pin.stdlib_sha256).await?;
            files::create_private_dirs(&stdlib_dir).map_err(|e| Error::io(&stdlib_dir, e))?;
            let partial = stdlib_dir.join(format!(".{}.part", std::process::id()));
            files::write_private(&partial, &stdlib).map_err(|e| Error::io(&partial, e))?;
            std::fs::rename(&partial, &stdlib_file).map_err(|e| Error::io(&stdlib_file, e))?;
        }
        let runtime = LoadedRuntime { module: module.into(), stdlib_dir };
        loaded.insert(pin.module_sha256, runtime.clone());
        Ok(runtime)
    }

    /// What runs the app `bundle`: the interpreter of the runtime it names (which must be one
    /// this poco pins), with the bundle's code laid out in `app_dir`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownRuntime`] for a runtime this poco does not pin; as [`get`](Self::get)
    /// and [`lay_out`] otherwise.
    pub async fn prepare(
        &self,
        bundle: &AppBundle,
        app_dir: &Path,
    ) -> Result<(Arc<[u8]>, PythonLaunch)> {
        let wanted = &bundle.manifest.runtime;
        let Some(pin) = RuntimePin::known(wanted.module_sha256, wanted.stdlib_sha256) else {
            return Err(Error::UnknownRuntime {
                name: wanted.name.clone(),
                module_sha256: wanted.module_sha256,
            });
        };
        let runtime = self.get(pin).await?;
        let launch = lay_out(bundle, app_dir, runtime.stdlib_dir)?;
        Ok((runtime.module, launch))
    }

    /// One part of a runtime, by sha256: the cache first, then each source in turn.
    async fn part(&self, sha256: B256) -> Result<Vec<u8>> {
        let mut last = None;
        let cached = format!("sha256:{sha256:x}");
        let urls = std::iter::once(cached).chain(
            self.sources.iter().map(|base| format!("{}/{sha256:x}", base.trim_end_matches('/'))),
        );
        for url in urls {
            match self.fetcher.fetch_checked(Source::App, &url, sha256).await {
                Ok(bytes) => return Ok(bytes),
                Err(error) => last = Some(error),
            }
        }
        Err(last.expect("the cache is always tried"))
    }
}

/// Writes a bundle's files under `app_dir` (emptied first) and says how to launch the app.
///
/// # Errors
///
/// [`Error::Io`] if a file cannot be written.
pub fn lay_out(bundle: &AppBundle, app_dir: &Path, stdlib_dir: PathBuf) -> Result<PythonLaunch> {
    super::state::TaskDir::clear_dir(app_dir)?;
    for (path, content) in &bundle.files {
        // Paths are checked by the bundle's decoder: relative, plain names only.
        let target = app_dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&target, content).map_err(|e| Error::io(&target, e))?;
    }
    Ok(PythonLaunch {
        stdlib_dir,
        app_dir: app_dir.to_owned(),
        entry: bundle.manifest.entry.clone(),
    })
}
