//! Admin sessions, separate from registrants' flows: a random token in a `SameSite=Strict`,
//! HttpOnly cookie and its SHA-256 in `admin_sessions`. A session is born at the password step
//! (stage `second_factor`, 10 minutes to give the TOTP code) and replaced by a new one — new id,
//! new token — once the second factor is given. It ends after 30 idle minutes, 12 hours in all,
//! or at sign-out, which deletes the row so the cookie is worthless on every instance.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use time::OffsetDateTime;

use super::actor::{AdminUser, Role};
use super::error::AdminError;
use crate::crypto::{constant_time_eq, random_token, token_hash};
use crate::db::Db;
use crate::http::csrf::same_origin;
use crate::http::error::AppError;
use crate::state::AppState;
use crate::with_pool;

pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
pub const SECOND_FACTOR_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// `last_seen_at` is written at most this often, not on every click.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    SecondFactor,
    Active,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::SecondFactor => "second_factor",
            Stage::Active => "active",
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub id: i64,
    pub admin_id: i64,
    pub stage: String,
    pub csrf_token: String,
    pub pending_totp_secret: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub email: String,
    pub role: String,
}

impl SessionRow {
    pub fn user(&self) -> AdminUser {
        AdminUser { id: self.admin_id, email: self.email.clone(), role: Role::parse(&self.role).unwrap_or(Role::Viewer) }
    }

    fn stage(&self) -> Stage {
        if self.stage == "active" { Stage::Active } else { Stage::SecondFactor }
    }

    /// Whether the session has run out, by the limits of its stage.
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        match self.stage() {
            Stage::SecondFactor => now - self.created_at > SECOND_FACTOR_TIMEOUT,
            Stage::Active => now - self.last_seen_at > IDLE_TIMEOUT || now - self.created_at > ABSOLUTE_TIMEOUT,
        }
    }
}

pub fn cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-nfa_admin" } else { "nfa_admin" }
}

/// `Set-Cookie` for a new session token, or (with `None`) one that clears the cookie. No
/// `Max-Age`: the cookie ends with the browser, the session on the server by its own limits.
pub fn set_cookie(state: &AppState, token: Option<&str>) -> HeaderValue {
    let secure = state.config.secure_cookies();
    let value = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict{}{}",
        cookie_name(secure),
        token.unwrap_or(""),
        if token.is_none() { "; Max-Age=0" } else { "" },
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("nfa_admin=; Path=/; Max-Age=0"))
}

/// Starts a session for `admin_id`; returns the cookie token (never stored).
pub(crate) async fn start(db: &Db, admin_id: i64, stage: Stage) -> Result<String, sqlx::Error> {
    let token = random_token(32);
    let now = OffsetDateTime::now_utc();
    with_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO admin_sessions (token_hash, admin_id, stage, csrf_token, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(token_hash(&token))
        .bind(admin_id)
        .bind(stage.as_str())
        .bind(random_token(32))
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(token)
}

pub(crate) async fn find(db: &Db, token: &str) -> Result<Option<SessionRow>, sqlx::Error> {
    with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT s.id, s.admin_id, s.stage, s.csrf_token, s.pending_totp_secret, s.created_at, s.last_seen_at, a.email, a.role \
             FROM admin_sessions s JOIN admin_users a ON a.id = s.admin_id WHERE s.token_hash = $1",
        )
        .bind(token_hash(token))
        .fetch_optional(pool)
        .await
    })
}

pub(crate) async fn revoke(db: &Db, id: i64) -> Result<(), sqlx::Error> {
    with_pool!(db, |pool| sqlx::query("DELETE FROM admin_sessions WHERE id = $1").bind(id).execute(pool).await.map(|_| ()))
}

pub(crate) async fn set_pending_secret(db: &Db, id: i64, sealed: &str) -> Result<(), sqlx::Error> {
    with_pool!(db, |pool| {
        sqlx::query("UPDATE admin_sessions SET pending_totp_secret = $1 WHERE id = $2")
            .bind(sealed)
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

async fn touch(db: &Db, id: i64, now: OffsetDateTime) -> Result<(), sqlx::Error> {
    with_pool!(db, |pool| {
        sqlx::query("UPDATE admin_sessions SET last_seen_at = $1 WHERE id = $2").bind(now).bind(id).execute(pool).await.map(|_| ())
    })
}

/// Sessions past their limits.
const EXPIRED: &str = "last_seen_at < $1 OR created_at < $2 OR (stage = 'second_factor' AND created_at < $3)";

/// How many sessions are past their limits (`purge --dry-run`).
pub async fn count_expired(db: &Db) -> Result<u64, sqlx::Error> {
    let now = OffsetDateTime::now_utc();
    let n: i64 = with_pool!(db, |pool| {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM admin_sessions WHERE {EXPIRED}")))
            .bind(now - IDLE_TIMEOUT)
            .bind(now - ABSOLUTE_TIMEOUT)
            .bind(now - SECOND_FACTOR_TIMEOUT)
            .fetch_one(pool)
            .await
    })?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Deletes sessions past their limits; run by the housekeeping task and by `purge`.
pub async fn purge_expired(db: &Db) -> Result<u64, sqlx::Error> {
    let now = OffsetDateTime::now_utc();
    with_pool!(db, |pool| {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM admin_sessions WHERE {EXPIRED}")))
            .bind(now - IDLE_TIMEOUT)
            .bind(now - ABSOLUTE_TIMEOUT)
            .bind(now - SECOND_FACTOR_TIMEOUT)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })
}

/// The session the request's cookie names, when it exists, is in `stage` and has not run out
/// (an expired one is deleted on sight). While the writer is down it is read from the replica and
/// left as it is.
pub(crate) async fn current(state: &AppState, headers: &HeaderMap, stage: Stage) -> Result<Option<SessionRow>, sqlx::Error> {
    let Some(token) = crate::http::cookie(headers, cookie_name(state.config.secure_cookies())) else {
        return Ok(None);
    };
    let writable = state.availability.writer_up();
    let Some(row) = find(state.fresh_reads(), &token).await? else {
        return Ok(None);
    };
    let now = OffsetDateTime::now_utc();
    if row.expired(now) {
        if writable {
            revoke(&state.db, row.id).await?;
        }
        tracing::info!(event = "admin_session_expired", admin_id = row.admin_id, "admin session expired");
        return Ok(None);
    }
    if row.stage() != stage {
        return Ok(None);
    }
    Ok(Some(row))
}

/// A signed-in admin (password and second factor given). As an extractor it sends anyone else
/// to the sign-in page.
pub struct AdminSession {
    pub id: i64,
    pub user: AdminUser,
    pub csrf_token: String,
    /// The database writer is down: the console shows what it can read and offers no action.
    pub read_only: bool,
}

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let row = current(state, &parts.headers, Stage::Active).await.map_err(|e| AppError::from(e).into_response())?;
        let Some(row) = row else {
            return Err(Redirect::to("/admin/login").into_response());
        };
        let now = OffsetDateTime::now_utc();
        let read_only = !state.availability.writer_up();
        if now - row.last_seen_at > TOUCH_EVERY && !read_only {
            touch(&state.db, row.id, now).await.map_err(|e| AppError::from(e).into_response())?;
        }
        Ok(AdminSession { id: row.id, user: row.user(), csrf_token: row.csrf_token, read_only })
    }
}

impl AdminSession {
    /// Refuses (403) an action the admin's role does not allow.
    pub fn require(&self, role: Role) -> Result<(), AdminError> {
        if role == Role::Operator && self.user.role != Role::Operator {
            tracing::warn!(
                category = "SECURITY",
                event = "admin_forbidden",
                admin_id = self.user.id,
                "SECURITY admin action refused for role"
            );
            return Err(AdminError::Forbidden);
        }
        Ok(())
    }

    /// Refuses (403) a state change without this session's CSRF token or from another origin.
    pub fn check_csrf(&self, state: &AppState, headers: &HeaderMap, submitted: &str) -> Result<(), AdminError> {
        check_csrf_token(state, headers, &self.csrf_token, submitted)
    }
}

pub(crate) fn check_csrf_token(state: &AppState, headers: &HeaderMap, expected: &str, submitted: &str) -> Result<(), AdminError> {
    if !submitted.is_empty() && constant_time_eq(submitted, expected) && same_origin(headers, &state.config.public_base_url) {
        return Ok(());
    }
    metrics::counter!("nfa_security_csrf_failures_total").increment(1);
    tracing::warn!(category = "SECURITY", event = "csrf_failure", area = "admin", "SECURITY CSRF check failed");
    Err(AdminError::Csrf)
}

/// Adds a `Set-Cookie` to a response.
pub fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}
