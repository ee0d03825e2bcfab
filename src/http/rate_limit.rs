//! Per-client-IP limits on state-changing requests (a keyed GCRA limiter from `governor`).
//! Limits are per instance; the edge (WAF) limits across instances.

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::http::client_ip::client_ip;
use crate::http::error::too_many_requests;
use crate::startup::AppState;

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

pub async fn limit_state_changes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let ip = client_ip(&request, state.config.trusted_proxy_hops).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match state.rate_limits.posts.check_key(&ip) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            metrics::counter!("nfa_security_rate_limited_total").increment(1);
            tracing::warn!(category = "SECURITY", event = "rate_limited", client_network = network_of(ip), "SECURITY rate limit exceeded");
            too_many_requests(wait.as_secs() + 1)
        }
    }
}
