//! Which flow a request belongs to: the opaque token in the visitor's cookie (its SHA-256 finds
//! the `user_sessions` row), a flow restarted with its values when it sat idle too long, and the
//! cookie set on the response. The HTML form and the JSON API share it.
//!
//! A first visit writes nothing: until the person posts step 1 with something typed, the flow
//! is not stored, and its CSRF token is derived from a signed, stateless pre-session cookie
//! (`nf_pre`: a random nonce and an expiry, signed with `SECRET_KEY`). Crawlers, monitors and
//! floods of cookie-less GETs therefore leave no rows, and 登録完了率 counts people who typed.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::flow::{self, Flow, FlowData};
use crate::crypto::constant_time_eq;
use crate::http::csrf::same_origin_or;
use crate::http::error::AppError;
use crate::state::AppState;

const EXPIRED_NOTICE: &str = "しばらく操作がなかったため、受付をやり直しました。入力済みの内容は引き継いでいます。";
const COOKIE_MAX_AGE_SECS: u64 = 7 * 24 * 3600;
/// How long a pre-session (a first visit that has not typed anything yet) stays valid.
const PRE_SESSION_SECS: i64 = 24 * 3600;

/// The flow a request belongs to, and what the response must tell the browser about it.
pub(crate) struct Visit {
    pub(crate) flow: Flow,
    /// Set when a flow was started or restarted: the new token for the cookie.
    pub(crate) new_token: Option<String>,
    /// The idle flow this one replaced; the page the person submitted carried its CSRF token.
    pub(crate) replaced: Option<Flow>,
    /// A new pre-session cookie to set (a first visit without a valid one).
    pub(crate) new_pre_session: Option<String>,
}

impl Visit {
    pub(crate) fn notice(&self) -> Option<&'static str> {
        self.replaced.as_ref().map(|_| EXPIRED_NOTICE)
    }

    pub(crate) fn csrf_matches(&self, submitted: &str) -> bool {
        let expected = self.replaced.as_ref().unwrap_or(&self.flow);
        !submitted.is_empty() && constant_time_eq(submitted, &expected.csrf_token)
    }

    /// Whether the flow has a row yet (a first visit's has not, until step 1 is posted).
    pub(crate) fn is_stored(&self) -> bool {
        self.flow.id != UNSTORED
    }

    /// The same visit with a newly created flow in place of the unstored one.
    pub(crate) fn stored(self, flow: Flow, token: String) -> Visit {
        Visit { flow, new_token: Some(token), replaced: self.replaced, new_pre_session: None }
    }

    /// Adds the cookies (when they changed) to a response.
    pub(crate) fn respond(&self, state: &AppState, response: impl IntoResponse) -> Response {
        let mut response = response.into_response();
        let secure = state.config.secure_cookies();
        if let Some(token) = &self.new_token {
            set_cookie(&mut response, cookie_name(secure), token, COOKIE_MAX_AGE_SECS as i64, secure);
            // The pre-session has served its purpose.
            set_cookie(&mut response, pre_cookie_name(secure), "", 0, secure);
        } else if let Some(pre) = &self.new_pre_session {
            set_cookie(&mut response, pre_cookie_name(secure), pre, PRE_SESSION_SECS, secure);
        }
        response
    }
}

fn set_cookie(response: &mut Response, name: &str, value: &str, max_age: i64, secure: bool) {
    let cookie = format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}", if secure { "; Secure" } else { "" });
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// Makes the browser forget its flow (「別の方を登録する」): the next visit starts afresh.
pub(crate) fn forget_flow(state: &AppState, mut response: Response) -> Response {
    let secure = state.config.secure_cookies();
    set_cookie(&mut response, cookie_name(secure), "", 0, secure);
    response
}

/// The id of a flow that has no row yet.
const UNSTORED: i64 = 0;

fn pre_cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-nf_pre" } else { "nf_pre" }
}

/// `nonce.expires.signature`: nothing is stored; the signature proves we issued it.
fn new_pre_session(secret: &[u8], now: i64) -> String {
    let nonce = crate::crypto::random_token(18);
    let expires = now + PRE_SESSION_SECS;
    let signature = crate::crypto::sign(secret, &format!("pre-session\n{nonce}\n{expires}"));
    format!("{nonce}.{expires}.{signature}")
}

/// The nonce of a pre-session cookie we issued and that has not expired.
fn pre_session_nonce<'a>(secret: &[u8], value: &'a str, now: i64) -> Option<&'a str> {
    let mut parts = value.split('.');
    let (nonce, expires, signature) = (parts.next()?, parts.next()?, parts.next()?);
    let expected = crate::crypto::sign(secret, &format!("pre-session\n{nonce}\n{expires}"));
    let valid = parts.next().is_none() && constant_time_eq(signature, &expected) && expires.parse::<i64>().is_ok_and(|e| e > now);
    valid.then_some(nonce)
}

/// The CSRF token of a pre-session: bound to its nonce, derivable only with the secret.
fn pre_session_csrf(secret: &[u8], nonce: &str) -> String {
    crate::crypto::sign(secret, &format!("pre-session-csrf\n{nonce}"))
}

/// The CSRF token a first visitor's pages carry, when the request has a valid pre-session.
pub(crate) fn pre_session_token(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let secret = state.config.secret_key.expose();
    let value = crate::http::cookie(headers, pre_cookie_name(state.config.secure_cookies()))?;
    let nonce = pre_session_nonce(secret, &value, time::OffsetDateTime::now_utc().unix_timestamp())?;
    Some(pre_session_csrf(secret, nonce))
}

/// `__Host-` binds the cookie to our exact origin, but browsers accept it only with `Secure`.
fn cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-nf_flow" } else { "nf_flow" }
}

pub(crate) fn flow_token(headers: &HeaderMap, secure: bool) -> Option<String> {
    crate::http::cookie(headers, cookie_name(secure))
}

/// Finds the visitor's flow, restarting it (values kept) when it sat idle too long. A visitor
/// without one gets an unstored, empty flow whose CSRF token comes from the pre-session cookie
/// (a new one when it has none); `store` writes it once there is something to keep.
pub(super) async fn visit(state: &AppState, headers: &HeaderMap) -> Result<Visit, AppError> {
    if let Some(token) = flow_token(headers, state.config.secure_cookies())
        && let Some(flow) = flow::find_by_token(&state.db, &token).await?
    {
        if !flow.is_expired(state.config.flow_idle_timeout) {
            return Ok(Visit { flow, new_token: None, replaced: None, new_pre_session: None });
        }
        let (fresh, token) = flow::restart_expired(&state.db, &flow).await?;
        metrics::counter!("nfa_registration_flows_started_total").increment(1);
        return Ok(Visit { flow: fresh, new_token: Some(token), replaced: Some(flow), new_pre_session: None });
    }
    let (csrf_token, new_pre_session) = match pre_session_token(state, headers) {
        Some(token) => (token, None),
        None => {
            let secret = state.config.secret_key.expose();
            let cookie = new_pre_session(secret, time::OffsetDateTime::now_utc().unix_timestamp());
            let nonce = cookie.split('.').next().unwrap_or_default();
            (pre_session_csrf(secret, nonce), Some(cookie))
        }
    };
    Ok(Visit { flow: Flow::unstored(UNSTORED, csrf_token), new_token: None, replaced: None, new_pre_session })
}

/// Writes the visit's flow when it has no row yet (the first post of step 1 with something
/// typed). The flow starts empty; the step is saved into it as for any other.
pub(super) async fn store(state: &AppState, visit: Visit) -> Result<Visit, AppError> {
    if visit.is_stored() {
        return Ok(visit);
    }
    let (flow, token) = flow::create(&state.db, &FlowData::default(), None).await?;
    metrics::counter!("nfa_registration_flows_started_total").increment(1);
    Ok(visit.stored(flow, token))
}

pub(crate) fn csrf_ok(state: &AppState, headers: &HeaderMap, submitted_ok: bool) -> bool {
    submitted_ok && same_origin_or(headers, &state.config.public_base_url, &state.config.cors_allowed_origins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_sessions_are_signed_bound_and_expire() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let cookie = new_pre_session(secret, 1_000);
        let nonce = pre_session_nonce(secret, &cookie, 1_001).expect("valid");
        assert_eq!(pre_session_nonce(secret, &cookie, 1_000 + PRE_SESSION_SECS), None, "expired");
        assert_eq!(pre_session_nonce(b"another secret of thirty-two by.", &cookie, 1_001), None, "other key");
        let forged = cookie.replacen(nonce, "someone-elses-nonce", 1);
        assert_eq!(pre_session_nonce(secret, &forged, 1_001), None, "nonce changed");
        let extended = format!("{nonce}.{}.{}", 9_999_999, cookie.rsplit('.').next().expect("signature"));
        assert_eq!(pre_session_nonce(secret, &extended, 1_001), None, "expiry changed");
        assert_ne!(pre_session_csrf(secret, nonce), pre_session_csrf(secret, "other"));
    }
}
