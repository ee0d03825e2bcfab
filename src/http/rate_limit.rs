//! Per-client-IP limits on state-changing requests (a keyed GCRA limiter from `governor`).
//! Limits are per instance; the edge (WAF) limits across instances.

use std::future::{Ready, ready};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{Method, Request};
use axum::response::Response;
use futures_util::future::Either;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower::{Layer, Service};

use crate::http::client_ip::client_ip;
use crate::http::error::too_many_requests;

#[derive(Clone)]
pub struct RateLimits {
    posts: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl RateLimits {
    pub fn new(per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        RateLimits { posts: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))) }
    }

    /// Drops the state of clients that have not been seen for a while, so memory stays bounded.
    pub fn forget_idle_clients(&self) {
        self.posts.retain_recent();
        self.posts.shrink_to_fit();
    }
}

/// Coarse network of an address for logs: enough to spot an attacker, not to identify a person.
pub fn network_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// The layer that refuses a client's state-changing requests (anything but GET, HEAD and
/// OPTIONS) beyond `RATE_LIMIT_PER_MINUTE` with 429 and `Retry-After`. A tower layer rather than
/// axum's `from_fn`: reads pass straight through, without a clone of the inner service or a boxed
/// future per request.
#[derive(Clone)]
pub struct RateLimitLayer {
    limits: RateLimits,
}

impl RateLimitLayer {
    pub fn new(limits: RateLimits) -> Self {
        RateLimitLayer { limits }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit { inner, limits: self.limits.clone() }
    }
}

#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    limits: RateLimits,
}

impl<S, B> Service<Request<B>> for RateLimit<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            return Either::Left(self.inner.call(request));
        }
        let ip = client_ip(request.headers(), request.extensions());
        match self.limits.posts.check_key(&ip) {
            Ok(()) => Either::Left(self.inner.call(request)),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                metrics::counter!("nfa_security_rate_limited_total").increment(1);
                tracing::warn!(
                    category = "SECURITY",
                    event = "rate_limited",
                    client_network = network_of(ip),
                    "SECURITY rate limit exceeded"
                );
                Either::Right(ready(Ok(too_many_requests(wait.as_secs() + 1))))
            }
        }
    }
}
