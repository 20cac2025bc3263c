//! Operational endpoints: `/healthz` (the process is up), `/readyz` (all three databases
//! answer), `/metrics` (Prometheus text format), and the request-metrics middleware.

use std::sync::OnceLock;
use std::time::Instant;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Endpoint, IntoResponse, Request, Response, handler};

use crate::problem::Problem;
use crate::state::AppState;

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the process-wide Prometheus recorder (once; later calls reuse it).
pub fn install_metrics_recorder() -> &'static PrometheusHandle {
    RECORDER.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
            .map(|b| b.build_recorder())
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Another recorder may already be installed by an embedding application; then our
        // handle renders only what we record through it, which is still correct output.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// `GET /healthz`: 200 while the process runs.
#[handler]
pub async fn healthz() -> Response {
    Response::builder().content_type("text/plain; charset=utf-8").body("ok\n")
}

/// `GET /readyz`: 200 when all three databases answer, else 503 with a problem naming the
/// failing database.
#[handler]
pub async fn readyz(state: Data<&AppState>) -> Response {
    match state.dbs().ping().await {
        Ok(()) => Response::builder().content_type("text/plain; charset=utf-8").body("ready\n"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text exposition; with `[server] metrics_token` set, only for
/// `Authorization: Bearer <token>` (401 problem otherwise).
#[handler]
pub async fn metrics_endpoint(state: Data<&AppState>, req: &Request) -> Response {
    if let Some(token) = &state.config().server.metrics_token {
        let given = req
            .headers()
            .get(poem::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), token.as_bytes())) {
            return Problem::new(
                StatusCode::UNAUTHORIZED,
                "the metrics need the token set in [server] metrics_token (Authorization: Bearer)",
            )
            .into_response();
        }
    }
    let handle = install_metrics_recorder();
    metrics::gauge!("pentavision_uptime_seconds").set(state.clock().elapsed().as_secs_f64());
    if let Some(rss) = resident_memory_bytes() {
        metrics::gauge!("process_resident_memory_bytes").set(rss as f64);
    }
    let (webrtc, mse, hls) = state.live().viewer_counts();
    // Every camera gets its gauge, so one whose last viewer left reads 0.
    let cameras = pv_core::cameras::list(&state.dbs().records).await.unwrap_or_default();
    for cam in cameras {
        let n = webrtc.get(&cam.id).copied().unwrap_or(0);
        metrics::gauge!("pentavision_live_viewers", "camera" => cam.id.to_string(), "transport" => "webrtc")
            .set(n as f64);
    }
    if let Ok(q) =
        pv_core::storage::queue_summary(&state.dbs().records, None, state.clock().now()).await
    {
        metrics::gauge!("pentavision_storage_queue_pending").set(q.pending as f64);
        metrics::gauge!("pentavision_storage_queue_failed").set(q.failed as f64);
    }
    metrics::gauge!("pentavision_live_viewers_all", "transport" => "mse").set(mse as f64);
    metrics::gauge!("pentavision_live_viewers_all", "transport" => "hls").set(hls as f64);
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}

/// Count and time every request: `http_requests_total{method,route,status}` and
/// `http_request_duration_seconds{method,route}` (see [`route_label`]).
pub async fn record_request<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let result = next.get_response(req).await;
    let route = route_label(&path, result.status());
    let status = result.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    Ok(result)
}

/// A request path as a metrics label with few values: numbers become `{id}`, tokens and
/// session ids `{key}`, at most six segments are kept, static files are one route, and a path nothing answered (404) is
/// `unmatched`, so a scanner cannot grow the label set.
pub fn route_label(path: &str, status: StatusCode) -> String {
    if status == StatusCode::NOT_FOUND {
        return "unmatched".into();
    }
    if path.starts_with("/static/") {
        return "/static".into();
    }
    let mut out = String::new();
    for seg in path.split('/').filter(|s| !s.is_empty()).take(6) {
        out.push('/');
        let hex_like = seg.len() >= 8
            && seg.chars().any(|c| c.is_ascii_digit())
            && seg.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if seg.chars().all(|c| c.is_ascii_digit()) {
            out.push_str("{id}");
        } else if seg.len() > 24 || hex_like {
            out.push_str("{key}");
        } else {
            out.push_str(seg);
        }
    }
    if out.is_empty() { "/".into() } else { out }
}

/// This process's resident set size, from `/proc/self/statm` (Linux).
pub fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Every metric `/metrics` can export (the Grafana dashboard in `deploy/grafana/` uses only
/// these; a test checks it).
pub const METRIC_NAMES: &[&str] = &[
    "http_requests_total",
    "http_request_duration_seconds",
    "process_resident_memory_bytes",
    "pentavision_uptime_seconds",
    "pentavision_segments_written_total",
    "pentavision_segment_bytes_written_total",
    "pentavision_recording_gaps_total",
    "pentavision_motion_events_total",
    "pentavision_live_viewers",
    "pentavision_live_viewers_all",
    "pentavision_storage_queue_pending",
    "pentavision_storage_queue_failed",
    "pentavision_storage_uploads_total",
    "pentavision_storage_bytes_uploaded_total",
    "pentavision_storage_upload_failures_total",
    "pentavision_audit_events_total",
    "pentavision_blocked_requests_total",
    "pentavision_country_blocked_requests_total",
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_grafana_dashboard_uses_only_exported_metrics() {
        let text = include_str!("../../deploy/grafana/pentavision.json");
        let dash: serde_json::Value = serde_json::from_str(text).unwrap();
        let panels = dash["panels"].as_array().unwrap();
        assert!(panels.len() >= 10);
        for p in panels {
            let expr = p["targets"][0]["expr"].as_str().unwrap();
            let names: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| {
                    w.starts_with("pentavision_")
                        || w.starts_with("http_")
                        || w.starts_with("process_")
                })
                .collect();
            assert!(!names.is_empty(), "{expr}");
            for n in names {
                let base = n.trim_end_matches("_bucket");
                assert!(
                    METRIC_NAMES.contains(&base),
                    "{} uses {n}, which is not exported",
                    p["title"]
                );
            }
        }
    }

    #[test]
    fn routes_are_labelled_with_few_values() {
        let ok = StatusCode::OK;
        assert_eq!(route_label("/api/v1/cameras/17", ok), "/api/v1/cameras/{id}");
        assert_eq!(route_label("/api/v1/cameras/17/snapshot", ok), "/api/v1/cameras/{id}/snapshot");
        assert_eq!(
            route_label("/api/v1/live/sessions/5f0c2a9e-1b7d-4c3e-9a51-0d6f3b2e7a90", ok),
            "/api/v1/live/sessions/{key}"
        );
        assert_eq!(route_label("/", ok), "/");
        assert_eq!(route_label("/static/app.js", ok), "/static");
        assert_eq!(route_label("/wp-admin/x.php", StatusCode::NOT_FOUND), "unmatched");
    }
}
