//! Gives every request an id (returned as `x-request-id`) and writes one access-log line when it
//! completes, with `path`, `status` and `latency_ms`. Query strings are never logged: they may
//! carry personal data.
//!
//! The request's id, method and path are kept in `telemetry::context` for as long as the request
//! is served, so that every line logged meanwhile carries them.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use axum::http::{HeaderValue, Method, Request, Response};
use futures_util::future::BoxFuture;
use tower::{Layer, Service};

use crate::telemetry::context::{self, RequestContext};

/// Accept a caller's id (from the load balancer) only if it is short and plain, so it cannot
/// inject anything into the logs.
fn incoming_id<B>(request: &Request<B>) -> Option<String> {
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

/// Static strings where the value set is fixed: no allocation per request for these labels.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The outermost layer of every route: the request id, the task-local context, the access-log
/// line and the HTTP metrics. A tower layer rather than axum's `from_fn`, which clones the inner
/// service stack and boxes two futures per request.
#[derive(Clone, Copy, Default)]
pub struct TraceLayer;

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Trace<S> {
        Trace { inner }
    }
}

#[derive(Clone)]
pub struct Trace<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Trace<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let context = Arc::new(RequestContext {
            id: incoming_id(&request).unwrap_or_else(|| crate::crypto::random_token(12)),
            method: method_label(request.method()),
            path: request.uri().path().to_string(),
        });
        // The route template, not the raw path, keeps the metric's label set bounded.
        let route = request.extensions().get::<MatchedPath>().cloned();
        let started = Instant::now();
        // Inner layers may log before their future is first polled (the rate limit does).
        let serving = context::sync_scope(context.clone(), || self.inner.call(request));
        Box::pin(async move {
            let mut response = context::scope(context.clone(), serving).await?;
            let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
            let status = response.status().as_u16();
            let (requests, duration) =
                http_metrics(route.as_ref().map_or("unmatched", MatchedPath::as_str), context.method, status_class(status));
            requests.increment(1);
            duration.record(latency_ms / 1000.0);
            log_completed(&context, status, latency_ms);
            if let Ok(value) = HeaderValue::from_str(&context.id) {
                response.headers_mut().insert("x-request-id", value);
            }
            Ok(response)
        })
    }
}

/// The access-log line (outside the task-local scope, so the request's fields are given here).
fn log_completed(context: &RequestContext, status: u16, latency_ms: f64) {
    let (request_id, method, path) = (context.id.as_str(), context.method, context.path.as_str());
    if status >= 500 {
        tracing::error!(request_id, method, path, event = "request_failed", status, latency_ms, "request failed");
    } else {
        if matches!(status, 400 | 413 | 414 | 431) {
            // Bodies over the limit, bad encodings: a client sending what no form sends.
            tracing::warn!(
                request_id,
                method,
                path,
                category = "SECURITY",
                event = "malformed_request",
                status,
                "SECURITY malformed request"
            );
        }
        tracing::info!(request_id, method, path, event = "request_completed", status, latency_ms, "request completed");
    }
}
