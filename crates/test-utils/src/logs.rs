//! The tests' log subscriber: logs shown in the test output when `RUST_LOG` is set, and
//! captured in memory on demand ([`capture_logs`]), so a test can check what every service
//! logged (for instance, that no secret ever appears in a log line).

use std::{
    io::Write,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use tracing_subscriber::{
    EnvFilter, Layer,
    filter::{LevelFilter, Targets, filter_fn},
    fmt::MakeWriter,
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
static CAPTURING: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<bool> = OnceLock::new();

fn buffer() -> Arc<Mutex<Vec<u8>>> {
    BUFFER.get_or_init(Arc::default).clone()
}

/// Writes captured lines into the shared buffer.
#[derive(Clone)]
struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CaptureWriter {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs the process-wide subscriber once: the test output (filtered by `RUST_LOG`, when
/// set) and the in-memory capture (everything at debug and above, poco's own crates at trace,
/// once [`capture_logs`] was called). Returns whether this subscriber is the global one.
pub fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        let shown = std::env::var_os("RUST_LOG").map(|_| {
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(EnvFilter::from_default_env())
        });
        let targets = Targets::new()
            .with_default(LevelFilter::DEBUG)
            .with_target("poco_sms", LevelFilter::TRACE)
            .with_target("poco_worker", LevelFilter::TRACE)
            .with_target("poco_scheduler", LevelFilter::TRACE)
            .with_target("poco_results", LevelFilter::TRACE)
            .with_target("poco_chain", LevelFilter::TRACE);
        let captured = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(CaptureWriter(buffer()))
            .with_filter(targets)
            .with_filter(filter_fn(|_| CAPTURING.load(Ordering::Relaxed)));
        tracing_subscriber::registry().with(shown).with(captured).try_init().is_ok()
    })
}

/// The logs captured since [`capture_logs`] was first called, from every test of the process.
#[derive(Debug, Clone, Copy)]
pub struct LogCapture;

impl LogCapture {
    /// Everything captured so far.
    pub fn contents(&self) -> Vec<u8> {
        buffer().lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Starts capturing every log line of the process in memory. Panics if another subscriber
/// was installed first (then nothing could be captured).
pub fn capture_logs() -> LogCapture {
    assert!(install(), "another global tracing subscriber was installed first");
    CAPTURING.store(true, Ordering::Relaxed);
    LogCapture
}
