//! Gives every request an id (returned as `x-request-id`) and writes one access-log line when it
//! completes, with `path`, `status` and `latency_ms`. Query strings are never logged: they may
//! carry personal data.

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The id of the request being served, for handlers that mention it to the person (error pages).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Accept a caller's id (from the load balancer) only if it is short and plain, so it cannot
/// inject anything into the logs.
fn incoming_id(request: &Request) -> Option<String> {
    let value = request.headers().get("x-request-id")?.to_str().ok()?;
    let plain = !value.is_empty() && value.len() <= 64 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    plain.then(|| value.to_string())
}

/// The request counter and latency histogram of one (route, method, status class), registered once
/// and then reused: looking them up by their labels on every request (building the key, hashing
/// it, comparing labels) cost more than the counting itself. Routes are the router's templates, so
/// the map stays small.
type RouteMetrics = HashMap<String, HashMap<(&'static str, &'static str), (metrics::Counter, metrics::Histogram)>>;
static HTTP_METRICS: LazyLock<RwLock<RouteMetrics>> = LazyLock::new(RwLock::default);

fn http_metrics(route: &str, method: &'static str, status_class: &'static str) -> (metrics::Counter, metrics::Histogram) {
    if let Ok(known) = HTTP_METRICS.read()
        && let Some(handles) = known.get(route).and_then(|by| by.get(&(method, status_class)))
    {
        return handles.clone();
    }
    let labels = [
        ("route", metrics::SharedString::from(route.to_string())),
        ("method", metrics::SharedString::const_str(method)),
        ("status_class", metrics::SharedString::const_str(status_class)),
    ];
    let handles =
        (metrics::counter!("nfa_http_requests_total", &labels), metrics::histogram!("nfa_http_request_duration_seconds", &labels));
    if let Ok(mut known) = HTTP_METRICS.write() {
        known.entry(route.to_string()).or_default().insert((method, status_class), handles.clone());
    }
    handles
}

pub async fn trace_requests(mut request: Request, next: Next) -> Response {
    let id = incoming_id(&request).unwrap_or_else(|| crate::crypto::random_token(12));
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    // The route template, not the raw path, keeps the metric's label set bounded.
    let route = request.extensions().get::<MatchedPath>().cloned();
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = id.as_str(), method = method.as_str(), path = path.as_str());
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    let status = response.status().as_u16();
    let status_class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    // Static strings where the value set is fixed: no allocation per request for these labels.
    let method_label: &'static str = match method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    };
    let (requests, duration) = http_metrics(route.as_ref().map_or("unmatched", MatchedPath::as_str), method_label, status_class);
    requests.increment(1);
    duration.record(latency_ms / 1000.0);
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(event = "request_failed", status, latency_ms, "request failed");
        } else {
            if matches!(status, 400 | 413 | 414 | 431) {
                // Bodies over the limit, bad encodings: a client sending what no form sends.
                tracing::warn!(category = "SECURITY", event = "malformed_request", status, "SECURITY malformed request");
            }
            tracing::info!(event = "request_completed", status, latency_ms, "request completed");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
