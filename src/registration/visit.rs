//! Which flow a request belongs to: the opaque token in the visitor's cookie (its SHA-256 finds
//! the `user_sessions` row), a flow restarted with its values when it sat idle too long, and the
//! cookie set on the response. The HTML form and the JSON API share it.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::flow::{self, Flow, FlowData};
use crate::crypto::constant_time_eq;
use crate::http::csrf::same_origin_or;
use crate::http::error::AppError;
use crate::state::AppState;

const EXPIRED_NOTICE: &str = "しばらく操作がなかったため、受付をやり直しました。入力済みの内容は引き継いでいます。";
const COOKIE_MAX_AGE_SECS: u64 = 7 * 24 * 3600;

/// The flow a request belongs to, and what the response must tell the browser about it.
pub(crate) struct Visit {
    pub(crate) flow: Flow,
    /// Set when a flow was started or restarted: the new token for the cookie.
    pub(crate) new_token: Option<String>,
    /// The idle flow this one replaced; the page the person submitted carried its CSRF token.
    pub(crate) replaced: Option<Flow>,
}

impl Visit {
    pub(crate) fn notice(&self) -> Option<&'static str> {
        self.replaced.as_ref().map(|_| EXPIRED_NOTICE)
    }

    pub(crate) fn csrf_matches(&self, submitted: &str) -> bool {
        let expected = self.replaced.as_ref().unwrap_or(&self.flow);
        !submitted.is_empty() && constant_time_eq(submitted, &expected.csrf_token)
    }

    /// Adds the cookie (when it changed) to a response.
    pub(crate) fn respond(&self, state: &AppState, response: impl IntoResponse) -> Response {
        let mut response = response.into_response();
        if let Some(token) = &self.new_token {
            let secure = state.config.secure_cookies();
            let cookie = format!(
                "{}={token}; Path=/; Max-Age={COOKIE_MAX_AGE_SECS}; HttpOnly; SameSite=Lax{}",
                cookie_name(secure),
                if secure { "; Secure" } else { "" }
            );
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        response
    }
}

/// `__Host-` binds the cookie to our exact origin, but browsers accept it only with `Secure`.
fn cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-nf_flow" } else { "nf_flow" }
}

pub(crate) fn flow_token(headers: &HeaderMap, secure: bool) -> Option<String> {
    crate::http::cookie(headers, cookie_name(secure))
}

/// Finds the visitor's flow, restarting it (values kept) when it sat idle too long, or starts a
/// new one on the first visit.
pub(super) async fn visit(state: &AppState, headers: &HeaderMap) -> Result<Visit, AppError> {
    if let Some(token) = flow_token(headers, state.config.secure_cookies())
        && let Some(flow) = flow::find_by_token(&state.db, &token).await?
    {
        if !flow.is_expired(state.config.flow_idle_timeout) {
            return Ok(Visit { flow, new_token: None, replaced: None });
        }
        let (fresh, token) = flow::restart_expired(&state.db, &flow).await?;
        metrics::counter!("nfa_registration_flows_started_total").increment(1);
        return Ok(Visit { flow: fresh, new_token: Some(token), replaced: Some(flow) });
    }
    let (flow, token) = flow::create(&state.db, &FlowData::default(), None).await?;
    metrics::counter!("nfa_registration_flows_started_total").increment(1);
    Ok(Visit { flow, new_token: Some(token), replaced: None })
}

pub(crate) fn csrf_ok(state: &AppState, headers: &HeaderMap, submitted_ok: bool) -> bool {
    submitted_ok && same_origin_or(headers, &state.config.public_base_url, &state.config.cors_allowed_origins)
}
