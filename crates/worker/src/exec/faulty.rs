//! A deliberately faulty backend, for devnets, demos and tests of the consensus: it runs the
//! app faithfully, then changes the result, as a dishonest or broken worker would.

use crate::exec::{ExecError, ExecFuture, ExecSpec, Executor, WasmExecutor};

/// Runs the app in the WASM sandbox, then adds a file to its output: every result it
/// commits is wrong. Never use it outside a devnet.
#[derive(Debug)]
pub struct FaultyExecutor {
    honest: WasmExecutor,
}

impl FaultyExecutor {
    /// A faulty executor over a fresh WASM engine.
    pub fn new() -> Result<Self, ExecError> {
        Ok(Self { honest: WasmExecutor::new()? })
    }
}

impl Executor for FaultyExecutor {
    fn backend(&self) -> &'static str {
        "faulty"
    }

    fn execute(&self, spec: ExecSpec) -> ExecFuture<'_> {
        Box::pin(async move {
            let output = spec.output_dir.clone();
            let outcome = self.honest.execute(spec).await?;
            let forged = output.join("forged.txt");
            std::fs::write(&forged, b"a wrong answer\n").map_err(|source| ExecError::Io {
                what: "output directory",
                path: forged.clone(),
                source,
            })?;
            Ok(outcome)
        })
    }
}
