//! Capturing an app's stdout and stderr in memory, up to a limit.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::exec::CapturedOutput;

/// How many bytes the app may hand over in one write (WASI's usual permit size).
const WRITE_PERMIT: usize = 64 * 1024;

/// An output stream that keeps the first `limit` bytes written to it, counts the rest and
/// drops them. Writing never fails and never blocks, so the app behaves the same whatever the
/// limit.
#[derive(Clone)]
pub(crate) struct CaptureStream {
    inner: Arc<Mutex<Captured>>,
}

struct Captured {
    bytes: Vec<u8>,
    limit: usize,
    total: u64,
}

impl CaptureStream {
    pub(crate) fn new(limit: usize) -> Self {
        Self { inner: Arc::new(Mutex::new(Captured { bytes: Vec::new(), limit, total: 0 })) }
    }

    fn lock(&self) -> MutexGuard<'_, Captured> {
        // A poisoned lock only means a panic elsewhere while appending: the bytes are intact.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn append(&self, data: &[u8]) {
        let mut captured = self.lock();
        let room = captured.limit.saturating_sub(captured.bytes.len());
        let kept = data.len().min(room);
        captured.bytes.extend_from_slice(&data[..kept]);
        captured.total = captured.total.saturating_add(data.len() as u64);
    }

    /// What was captured so far.
    pub(crate) fn snapshot(&self) -> CapturedOutput {
        let captured = self.lock();
        CapturedOutput {
            bytes: captured.bytes.clone(),
            truncated: captured.total > captured.bytes.len() as u64,
            total_bytes: captured.total,
        }
    }
}

impl IsTerminal for CaptureStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CaptureStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CaptureStream {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CaptureStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl AsyncWrite for CaptureStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_the_limit_and_counts_the_rest() {
        let stream = CaptureStream::new(5);
        stream.append(b"abc");
        assert_eq!(
            stream.snapshot(),
            CapturedOutput { bytes: b"abc".to_vec(), truncated: false, total_bytes: 3 }
        );
        stream.append(b"defg");
        stream.append(b"h");
        let out = stream.snapshot();
        assert_eq!(out.bytes, b"abcde");
        assert!(out.truncated);
        assert_eq!(out.total_bytes, 8);
    }

    #[test]
    fn exactly_the_limit_is_not_truncated() {
        let stream = CaptureStream::new(3);
        stream.append(b"abc");
        assert!(!stream.snapshot().truncated);
        let empty = CaptureStream::new(0);
        empty.append(b"");
        assert!(!empty.snapshot().truncated);
    }
}
