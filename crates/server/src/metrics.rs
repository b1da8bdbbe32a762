//! Request counters per route and status, in the Prometheus text exposition format, and the
//! middleware that counts and logs every request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use yitong_platform::store::IngestStats;

use crate::state::AppState;

/// Most distinct (method, route, status) series kept: routes and statuses are few, but a bound
/// keeps odd requests from growing the map; the rest are counted in one overflow counter.
pub const METRIC_SERIES_MAX: usize = 1_024;

/// The route label of requests that matched no route (their paths are not labels: unbounded).
const UNMATCHED_ROUTE: &str = "unmatched";

/// (method, route, status) of one series.
type SeriesKey = (&'static str, String, u16);

/// Request counters. Shared through [`AppState`].
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    requests: BTreeMap<SeriesKey, u64>,
    overflow: u64,
}

/// The method as a label: the standard ones by name, any other as `other` (bounded).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn count(&self, method: &Method, route: &str, status: u16) {
        // A poisoned lock only means another thread panicked mid-increment: counts stay usable.
        let mut counters = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (method_label(method), route.to_owned(), status);
        if let Some(n) = counters.requests.get_mut(&key) {
            *n += 1;
        } else if counters.requests.len() < METRIC_SERIES_MAX {
            counters.requests.insert(key, 1);
        } else {
            counters.overflow += 1;
        }
    }

    /// How many requests of `method` `route` were answered with `status`.
    pub fn requests(&self, method: &Method, route: &str, status: u16) -> u64 {
        let counters = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        counters.requests.get(&(method_label(method), route.to_owned(), status)).copied().unwrap_or(0)
    }

    /// The counters in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let counters = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = String::new();
        out.push_str("# HELP yitong_http_requests_total HTTP requests answered, by method, route and status.\n");
        out.push_str("# TYPE yitong_http_requests_total counter\n");
        for ((method, route, status), n) in &counters.requests {
            let route = escape_label(route);
            let _ = writeln!(
                out,
                "yitong_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP yitong_http_requests_unlabelled_total HTTP requests answered after the series limit was reached.\n",
        );
        out.push_str("# TYPE yitong_http_requests_unlabelled_total counter\n");
        let _ = writeln!(out, "yitong_http_requests_unlabelled_total {}", counters.overflow);
        out
    }
}

/// The back office's upload queue in the Prometheus text exposition format: commits, uploads and
/// records taken, groups split, uploads failed, attempts prepared again (counters) and records
/// held now (a gauge).
pub fn render_ingest(stats: &IngestStats) -> String {
    let mut out = String::new();
    let series: [(&str, &str, &str, u64); 7] = [
        ("yitong_ingest_commits_total", "counter", "Back-office ingest transactions committed.", stats.commits),
        ("yitong_ingest_batches_total", "counter", "Gate uploads answered from a commit.", stats.batches),
        ("yitong_ingest_records_total", "counter", "Records of the uploads answered.", stats.records),
        ("yitong_ingest_groups_split_total", "counter", "Upload groups retried upload by upload.", stats.groups_split),
        ("yitong_ingest_failed_total", "counter", "Uploads answered with an error.", stats.failed),
        ("yitong_ingest_retries_total", "counter", "Ingest attempts prepared again from the database.", stats.retries),
        ("yitong_ingest_records_held", "gauge", "Records in the upload queue's hands now.", stats.records_held),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    }
    out
}

/// A label value as the exposition format wants it: `\`, `"` and newlines escaped.
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Counts and logs every request: method, route (the pattern, not the path), status, latency.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state.metrics().count(&method, &route, status);
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::info!(method = %method, route = %route, status, latency_us, "request");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_beyond_the_limit_are_counted_without_labels() {
        let metrics = Metrics::default();
        for i in 0..METRIC_SERIES_MAX + 5 {
            metrics.count(&Method::GET, &format!("/r{i}"), 200);
        }
        // An existing series still counts after the limit.
        metrics.count(&Method::GET, "/r0", 200);
        assert_eq!(metrics.requests(&Method::GET, "/r0", 200), 2);
        assert_eq!(metrics.requests(&Method::GET, &format!("/r{METRIC_SERIES_MAX}"), 200), 0);
        let text = metrics.render();
        assert!(text.lines().any(|l| l == "yitong_http_requests_unlabelled_total 5"), "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("yitong_http_requests_total{")).count(), METRIC_SERIES_MAX);
    }

    #[test]
    fn odd_methods_and_label_text_cannot_break_the_exposition() {
        let metrics = Metrics::default();
        let method = Method::from_bytes(b"BREW").expect("an extension method");
        metrics.count(&method, "/a\"b\\c\nd", 404);
        assert!(
            metrics
                .render()
                .contains(r#"yitong_http_requests_total{method="other",route="/a\"b\\c\nd",status="404"} 1"#),
            "{}",
            metrics.render()
        );
    }
}
