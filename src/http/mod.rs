//! Cross-cutting HTTP plumbing: request ids and access logs, security headers, client
//! addresses, rate limits, CSRF origin checks and the error page.

pub mod client_ip;
pub mod csrf;
pub mod error;
pub mod problem;
pub mod rate_limit;
pub mod request_log;
pub mod security_headers;
pub mod writer_gate;

use axum::http::{HeaderMap, header};

/// The value of cookie `name`, when present, non-empty and of a sane length.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}
