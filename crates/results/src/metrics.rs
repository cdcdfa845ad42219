//! The store's counters, rendered in the Prometheus text format at `/metrics`.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

/// Counters of the result store.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<u16, u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
    uploads: AtomicU64,
    uploaded_bytes: AtomicU64,
    downloads: AtomicU64,
    downloaded_bytes: AtomicU64,
}

impl Metrics {
    /// Counts a response, and its error code if it is an error.
    pub(crate) fn response(&self, status: u16, error_code: Option<&str>) {
        *self.requests.lock().expect("metrics lock").entry(status).or_default() += 1;
        if let Some(code) = error_code {
            *self.errors.lock().expect("metrics lock").entry(code.to_owned()).or_default() += 1;
        }
    }

    /// Counts an accepted upload of `bytes`.
    pub(crate) fn upload(&self, bytes: u64) {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        self.uploaded_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts a download of `bytes`.
    pub(crate) fn download(&self, bytes: u64) {
        self.downloads.fetch_add(1, Ordering::Relaxed);
        self.downloaded_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of the counters, with the gauges given.
    pub(crate) fn render(&self, used_challenges: usize) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        counter(
            &mut out,
            "poco_results_uploads_total",
            "Uploads accepted and stored.",
            self.uploads.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "poco_results_uploaded_bytes_total",
            "Bytes of archives stored.",
            self.uploaded_bytes.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "poco_results_downloads_total",
            "Downloads served.",
            self.downloads.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "poco_results_downloaded_bytes_total",
            "Bytes of archives served.",
            self.downloaded_bytes.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP poco_results_http_responses_total HTTP responses by status.\n\
             # TYPE poco_results_http_responses_total counter"
        );
        for (status, count) in self.requests.lock().expect("metrics lock").iter() {
            let _ =
                writeln!(out, "poco_results_http_responses_total{{status=\"{status}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP poco_results_errors_total Refused or failed requests by error code.\n\
             # TYPE poco_results_errors_total counter"
        );
        for (code, count) in self.errors.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "poco_results_errors_total{{code=\"{code}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP poco_results_used_challenges Download challenges used and not expired yet.\n\
             # TYPE poco_results_used_challenges gauge\n\
             poco_results_used_challenges {used_challenges}"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.upload(10);
        metrics.download(10);
        metrics.response(201, None);
        metrics.response(409, Some("already_uploaded"));
        let text = metrics.render(3);
        assert!(text.contains("poco_results_uploads_total 1\n"), "{text}");
        assert!(text.contains("poco_results_uploaded_bytes_total 10\n"));
        assert!(text.contains("poco_results_http_responses_total{status=\"409\"} 1\n"));
        assert!(text.contains("poco_results_errors_total{code=\"already_uploaded\"} 1\n"));
        assert!(text.contains("poco_results_used_challenges 3\n"));
        assert!(text.contains("# TYPE poco_results_downloads_total counter\n"));
    }
}
