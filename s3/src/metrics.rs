//! Gateway counters: requests by operation and status, bytes in and out, latencies and open
//! connections, rendered in the Prometheus text format by the node's admin listener.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default, Clone)]
struct OperationStats {
    count: u64,
    latency_sum: f64,
    latency_buckets: [u64; LATENCY_BUCKETS.len()],
}

/// Counters of one gateway; shared by its connections, read by the admin listener.
#[derive(Default)]
pub struct GatewayMetrics {
    requests: AtomicU64,
    errors: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    connections: AtomicI64,
    refused_connections: AtomicU64,
    by_operation: Mutex<BTreeMap<(&'static str, u16), OperationStats>>,
}

impl GatewayMetrics {
    /// Records one finished request.
    pub fn record(&self, operation: &'static str, status: u16, elapsed: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 400 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let seconds = elapsed.as_secs_f64();
        let mut table = self
            .by_operation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stats = table.entry((operation, status)).or_default();
        stats.count += 1;
        stats.latency_sum += seconds;
        for (bucket, bound) in stats.latency_buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// Adds body bytes received.
    pub fn add_bytes_in(&self, bytes: u64) {
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adds body bytes sent.
    pub fn add_bytes_out(&self, bytes: u64) {
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A connection opened (`+1`) or closed (`-1`).
    pub fn connection(&self, delta: i64) {
        self.connections.fetch_add(delta, Ordering::Relaxed);
    }

    /// A connection answered with `503 SlowDown` for being over `max_connections`.
    pub fn refused_connection(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests served and requests that failed (4xx and 5xx).
    #[must_use]
    pub fn totals(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }

    /// Appends the counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            out,
            "vaulthalla_s3_bytes_received_total",
            "Body bytes received by the S3 gateway.",
            self.bytes_in.load(Ordering::Relaxed),
        );
        counter(
            out,
            "vaulthalla_s3_bytes_sent_total",
            "Body bytes sent by the S3 gateway.",
            self.bytes_out.load(Ordering::Relaxed),
        );
        counter(
            out,
            "vaulthalla_s3_connections_refused_total",
            "Connections answered 503 SlowDown for being over max_connections.",
            self.refused_connections.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP vaulthalla_s3_active_connections Open S3 connections.\n# TYPE vaulthalla_s3_active_connections gauge\nvaulthalla_s3_active_connections {}",
            self.connections.load(Ordering::Relaxed)
        );
        let table = self
            .by_operation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let _ = writeln!(
            out,
            "# HELP vaulthalla_s3_requests_total S3 requests by operation and status.\n# TYPE vaulthalla_s3_requests_total counter"
        );
        for ((operation, status), stats) in &table {
            let _ = writeln!(
                out,
                "vaulthalla_s3_requests_total{{operation=\"{operation}\",status=\"{status}\"}} {}",
                stats.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP vaulthalla_s3_request_duration_seconds S3 request latency by operation.\n# TYPE vaulthalla_s3_request_duration_seconds histogram"
        );
        let mut by_operation: BTreeMap<&str, OperationStats> = BTreeMap::new();
        for ((operation, _), stats) in &table {
            let merged = by_operation.entry(operation).or_default();
            merged.count += stats.count;
            merged.latency_sum += stats.latency_sum;
            for (into, from) in merged.latency_buckets.iter_mut().zip(stats.latency_buckets) {
                *into += from;
            }
        }
        for (operation, stats) in by_operation {
            for (bound, count) in LATENCY_BUCKETS.iter().zip(stats.latency_buckets) {
                let _ = writeln!(
                    out,
                    "vaulthalla_s3_request_duration_seconds_bucket{{operation=\"{operation}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "vaulthalla_s3_request_duration_seconds_bucket{{operation=\"{operation}\",le=\"+Inf\"}} {}",
                stats.count
            );
            let _ = writeln!(
                out,
                "vaulthalla_s3_request_duration_seconds_sum{{operation=\"{operation}\"}} {}",
                stats.latency_sum
            );
            let _ = writeln!(
                out,
                "vaulthalla_s3_request_duration_seconds_count{{operation=\"{operation}\"}} {}",
                stats.count
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_histograms() {
        let metrics = GatewayMetrics::default();
        metrics.record("PutObject", 200, Duration::from_millis(3));
        metrics.record("PutObject", 403, Duration::from_millis(30));
        metrics.add_bytes_in(10);
        metrics.connection(1);
        assert_eq!(metrics.totals(), (2, 1));
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(
            out.contains("vaulthalla_s3_requests_total{operation=\"PutObject\",status=\"403\"} 1"),
            "{out}"
        );
        assert!(out.contains("vaulthalla_s3_request_duration_seconds_bucket{operation=\"PutObject\",le=\"0.005\"} 1"), "{out}");
        assert!(
            out.contains("vaulthalla_s3_request_duration_seconds_count{operation=\"PutObject\"} 2"),
            "{out}"
        );
        assert!(out.contains("vaulthalla_s3_bytes_received_total 10"));
        assert!(out.contains("vaulthalla_s3_active_connections 1"));
    }
}
