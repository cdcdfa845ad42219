//! Request counters and latency histograms, rendered with the book and follower gauges in the
//! Prometheus text format.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{
    market::Market,
    model::{KINDS, kind_name},
};

/// Latency bucket bounds, in seconds.
const BUCKETS: [f64; 12] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The HTTP metrics of one instance.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    open_orders: Mutex<Option<(Instant, [u64; 4])>>,
}

impl Metrics {
    /// Records one answered request.
    pub(crate) fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .expect("not poisoned")
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().expect("not poisoned");
        let histogram = latency.entry(route.to_owned()).or_default();
        for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// Open orders per kind, counted at most every five seconds.
    async fn open_orders(&self, market: &Market) -> Option<[u64; 4]> {
        if let Some((at, counts)) = *self.open_orders.lock().expect("not poisoned")
            && at.elapsed() < Duration::from_secs(5)
        {
            return Some(counts);
        }
        let counts = market.store().open_counts().await.ok()?;
        *self.open_orders.lock().expect("not poisoned") = Some((Instant::now(), counts));
        Some(counts)
    }

    /// The Prometheus text.
    pub(crate) async fn render(
        &self,
        market: &Market,
        websockets: usize,
        limits: &[(&str, &str, u64)],
    ) -> String {
        let mut out = String::new();
        if let Some(counts) = self.open_orders(market).await {
            out.push_str("# HELP poco_market_open_orders Open orders in the book, per kind.\n");
            out.push_str("# TYPE poco_market_open_orders gauge\n");
            for (kind, count) in KINDS.iter().zip(counts) {
                let _ = writeln!(
                    out,
                    "poco_market_open_orders{{kind=\"{}\"}} {count}",
                    kind_name(*kind)
                );
            }
        }
        let status = market.follower_status();
        let gauges = [
            (
                "poco_market_follower_leader",
                "1 if this instance follows the chain.",
                u64::from(status.leader.load(std::sync::atomic::Ordering::Relaxed)),
            ),
            (
                "poco_market_follower_checkpoint",
                "First block not applied yet.",
                status.checkpoint.load(std::sync::atomic::Ordering::Relaxed),
            ),
            (
                "poco_market_follower_confirmed_head",
                "Newest block at the confirmation depth.",
                status.confirmed_head.load(std::sync::atomic::Ordering::Relaxed),
            ),
            ("poco_market_follower_lag_blocks", "Confirmed blocks not applied yet.", status.lag()),
            (
                "poco_market_follower_last_fork_point",
                "Fork point of the last chain reorganisation repaired (0: none).",
                status.last_fork_point.load(std::sync::atomic::Ordering::Relaxed),
            ),
            ("poco_market_websocket_clients", "WebSocket clients connected.", websockets as u64),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        let counters = [
            (
                "poco_market_follower_batches_total",
                "Block ranges applied.",
                status.batches.load(std::sync::atomic::Ordering::Relaxed),
            ),
            (
                "poco_market_follower_events_total",
                "Chain events applied.",
                status.events.load(std::sync::atomic::Ordering::Relaxed),
            ),
            (
                "poco_market_follower_reorgs_total",
                "Chain reorganisations repaired: replaced blocks undone.",
                status.reorgs.load(std::sync::atomic::Ordering::Relaxed),
            ),
            (
                "poco_market_follower_undone_blocks_total",
                "Applied blocks whose effects reorganisations undid.",
                status.undone_blocks.load(std::sync::atomic::Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters.iter().chain(limits) {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        out.push_str("# HELP poco_market_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE poco_market_http_requests_total counter\n");
        for ((method, route, status), count) in self.requests.lock().expect("not poisoned").iter() {
            let _ = writeln!(
                out,
                "poco_market_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# HELP poco_market_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE poco_market_http_request_duration_seconds histogram\n");
        for (route, histogram) in self.latency.lock().expect("not poisoned").iter() {
            for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                let _ = writeln!(
                    out,
                    "poco_market_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "poco_market_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 poco_market_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 poco_market_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count, histogram.sum, histogram.count
            );
        }
        out
    }
}
