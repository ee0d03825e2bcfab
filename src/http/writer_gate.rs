//! Pauses what would write while the database writer is down (`db::Availability`), so that
//! nobody types into a form that cannot be saved and nothing is written half-way: the feature's
//! own refusal (a Japanese page or a problem document, 503 with `Retry-After`) answers instead.
//! When the writer answers again the gate opens by itself.
//!
//! A tower layer rather than axum's `from_fn` (see docs/DECISIONS.md): while the writer is up it
//! costs one atomic load per request and calls the inner service directly.

use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, Request, header};
use axum::response::Response;
use futures_util::future::{BoxFuture, Either};
use tower::{Layer, Service};

use crate::db::Availability;

/// Seconds a paused request is told to wait before trying again (the watch notices the writer's
/// return within about a second).
pub const RETRY_AFTER_SECS: u64 = 10;

/// Which requests the gate holds while the writer is down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Every request: the public form pauses from its first page on.
    All,
    /// Everything but GET and HEAD: the admin console keeps reading from the replica.
    Writes,
}

/// Builds the refusal for a held request from its head and its body (read up to the body limit,
/// so a form page can offer to send what was typed again).
pub type Refusal = fn(&Parts, Bytes) -> Response;

#[derive(Clone)]
pub struct WriterGateLayer {
    availability: Availability,
    hold: Hold,
    refuse: Refusal,
    /// For the metric: which part of the service refused.
    area: &'static str,
}

impl WriterGateLayer {
    pub fn new(availability: Availability, hold: Hold, area: &'static str, refuse: Refusal) -> WriterGateLayer {
        WriterGateLayer { availability, hold, refuse, area }
    }
}

impl<S> Layer<S> for WriterGateLayer {
    type Service = WriterGate<S>;

    fn layer(&self, inner: S) -> WriterGate<S> {
        WriterGate { inner, gate: self.clone() }
    }
}

#[derive(Clone)]
pub struct WriterGate<S> {
    inner: S,
    gate: WriterGateLayer,
}

impl<S> Service<Request<Body>> for WriterGate<S>
where
    S: Service<Request<Body>, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let reads = matches!(*request.method(), Method::GET | Method::HEAD);
        if self.gate.availability.writer_up() || (self.gate.hold == Hold::Writes && reads) {
            return Either::Left(self.inner.call(request));
        }
        let (refuse, area) = (self.gate.refuse, self.gate.area);
        Either::Right(Box::pin(async move {
            let (parts, body) = request.into_parts();
            // The outer body limit bounds this read; a body that cannot be read is simply not
            // offered back.
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            metrics::counter!("nfa_writer_paused_requests_total", "area" => area).increment(1);
            let mut response = refuse(&parts, body);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }))
    }
}
