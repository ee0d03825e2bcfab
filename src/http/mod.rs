//! Cross-cutting HTTP plumbing: request ids and access logs, security headers, client
//! addresses, rate limits, CSRF origin checks and the error page.

pub mod client_ip;
pub mod csrf;
pub mod error;
pub mod problem;
pub mod rate_limit;
pub mod request_log;
pub mod security_headers;
