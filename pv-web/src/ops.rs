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

/// `GET /metrics`: Prometheus text exposition.
#[handler]
pub async fn metrics_endpoint(state: Data<&AppState>) -> Response {
    let handle = install_metrics_recorder();
    metrics::gauge!("pentavision_uptime_seconds").set(state.clock().elapsed().as_secs_f64());
    if let Some(rss) = resident_memory_bytes() {
        metrics::gauge!("process_resident_memory_bytes").set(rss as f64);
    }
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}

/// Count and time every request: `http_requests_total{method,status}` and
/// `http_request_duration_seconds{method}`.
pub async fn record_request<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let method = req.method().to_string();
    let started = Instant::now();
    let result = next.get_response(req).await;
    let status = result.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method)
        .record(started.elapsed().as_secs_f64());
    Ok(result)
}

/// This process's resident set size, from `/proc/self/statm` (Linux).
pub fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
