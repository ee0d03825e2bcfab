//! The second line of CSRF defence: a state-changing request must come from our own origin.
//! (The first line is the per-flow token each form carries, checked by the feature itself.)

use axum::http::{HeaderMap, header};

/// `scheme://host[:port]` of a base URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// Browsers send `Sec-Fetch-Site` and `Origin` on POSTs; clients that send neither (curl, old
/// browsers) are judged by the token alone. Origins allowed by CORS count as our own.
pub fn same_origin(headers: &HeaderMap, public_base_url: &str) -> bool {
    same_origin_or(headers, public_base_url, &[])
}

pub fn same_origin_or(headers: &HeaderMap, public_base_url: &str, also: &[String]) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && also.iter().any(|allowed| allowed == origin)
    {
        return true;
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origin == origin_of(public_base_url) {
        return true;
    }
    // Also accept the host the request was addressed to (a second name for the same service).
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    !host.is_empty() && (origin == format!("https://{host}") || origin == format!("http://{host}"))
}

/// A public form's request that failed the CSRF token or origin check (`step` says which form):
/// logged as a security event and counted.
pub fn refused(step: &'static str) {
    metrics::counter!("nfa_security_csrf_failures_total").increment(1);
    tracing::warn!(category = "SECURITY", event = "csrf_failure", step, "SECURITY CSRF check failed");
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn accepts_same_origin_and_header_less_clients() {
        assert!(same_origin(&headers(&[]), "https://form.example.jp"));
        assert!(same_origin(
            &headers(&[("origin", "https://form.example.jp"), ("sec-fetch-site", "same-origin")]),
            "https://form.example.jp/"
        ));
        assert!(same_origin(&headers(&[("origin", "http://127.0.0.1:9000"), ("host", "127.0.0.1:9000")]), "https://form.example.jp"));
    }

    #[test]
    fn refuses_cross_site_requests() {
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")]), "https://form.example.jp"));
        assert!(!same_origin(&headers(&[("origin", "https://evil.example")]), "https://form.example.jp"));
        assert!(!same_origin(&headers(&[("origin", "null")]), "https://form.example.jp"));
    }
}
