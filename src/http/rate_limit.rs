//! Per-client-IP limits (keyed GCRA limiters from `governor`): one on state-changing requests, one
//! on page views — far above what a person does, far below a flood. Health checks, metrics and
//! static files are never limited. Limits are per instance; the edge (WAF) limits across instances.

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
    views: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

fn limiter(per_minute: u32) -> Arc<DefaultKeyedRateLimiter<IpAddr>> {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute)))
}

impl RateLimits {
    /// `posts_per_minute` state-changing requests and `views_per_minute` page views per client.
    pub fn new(posts_per_minute: u32, views_per_minute: u32) -> Self {
        RateLimits { posts: limiter(posts_per_minute), views: limiter(views_per_minute) }
    }

    /// Drops the state of clients that have not been seen for a while, so memory stays bounded.
    pub fn forget_idle_clients(&self) {
        for limiter in [&self.posts, &self.views] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// Probes, scrapes and first-party files: never limited (a load balancer or Prometheus behind
/// one address must not be refused).
fn exempt(path: &str) -> bool {
    path.starts_with("/health") || path == "/metrics" || path.starts_with("/static/") || path == "/favicon.ico"
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
/// OPTIONS) beyond `RATE_LIMIT_PER_MINUTE`, and its page views beyond `RATE_LIMIT_GET_PER_MINUTE`,
/// with 429, `Retry-After` and a Japanese page. A tower layer rather than axum's `from_fn`: no
/// clone of the inner service or boxed future per request.
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
        let (limiter, kind) = match *request.method() {
            Method::OPTIONS => return Either::Left(self.inner.call(request)),
            Method::GET | Method::HEAD if exempt(request.uri().path()) => return Either::Left(self.inner.call(request)),
            Method::GET | Method::HEAD => (&self.limits.views, "views"),
            _ => (&self.limits.posts, "posts"),
        };
        let ip = client_ip(request.headers(), request.extensions());
        match limiter.check_key(&ip) {
            Ok(()) => Either::Left(self.inner.call(request)),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                metrics::counter!("nfa_security_rate_limited_total").increment(1);
                tracing::warn!(
                    category = "SECURITY",
                    event = "rate_limited",
                    limit = kind,
                    client_network = network_of(ip),
                    "SECURITY rate limit exceeded"
                );
                Either::Right(ready(Ok(too_many_requests(wait.as_secs() + 1))))
            }
        }
    }
}
