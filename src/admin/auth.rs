//! Signing in and out: password (Argon2id), then the TOTP code or a recovery code — or, at the
//! first sign-in, enrolment of the authenticator app from a QR code. Every failure counts
//! towards the back-off of the account (or its second factor) and of the client network
//! ([`super::throttle`]); while one waits, attempts are refused with 429 unchecked. Failures,
//! back-offs and refusals are logged with `SECURITY` (never the address typed or the password).

use std::net::IpAddr;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use super::accounts::{self, AccountRow};
use super::error::{AdminError, parse_form};
use super::session::{self, AdminSession, SessionRow, Stage, check_csrf_token, set_cookie, with_cookie};
use super::throttle::{self, Admission, Failure, Key, KeyKind};
use super::totp::{self, SecretBox};
use crate::crypto::random_token;
use crate::http::client_ip::ClientIp;
use crate::http::error::render;
use crate::http::rate_limit::network_of;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/login", get(show_login).post(login))
        .route("/admin/login/totp", get(show_totp).post(submit_totp))
        .route("/admin/enrol", get(show_enrol).post(submit_enrol))
        .route("/admin/logout", post(logout))
}

/// The sign-in form has no session yet: its CSRF token is a random value in a short-lived
/// cookie that the form must echo (double submit), on top of the Origin check.
const LOGIN_COOKIE: &str = "nfa_admin_login";

const BAD_CREDENTIALS: &str = "メールアドレスまたはパスワードが正しくありません。";
const BAD_CODE: &str = "コードが正しくありません。認証アプリに表示されている最新の6桁、またはリカバリーコードを入力してください。";

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage<'a> {
    csrf_token: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    /// Seconds left of a back-off, when the attempt was refused.
    wait_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
struct LoginNotice {
    #[serde(default)]
    expired: Option<String>,
    #[serde(default)]
    signed_out: Option<String>,
}

fn login_cookie(state: &AppState, value: &str) -> HeaderValue {
    let secure = if state.config.secure_cookies() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{LOGIN_COOKIE}={value}; Path=/admin; Max-Age=3600; HttpOnly; SameSite=Strict{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static("nfa_admin_login=; Max-Age=0"))
}

fn login_page(state: &AppState, status: StatusCode, email: &str, error: Option<&str>, notice: Option<&str>) -> Response {
    let token = random_token(24);
    let page = LoginPage { csrf_token: &token, email, error, notice, wait_secs: None };
    with_cookie(render(status, &page), login_cookie(state, &token))
}

async fn show_login(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<LoginNotice>) -> Result<Response, AdminError> {
    if session::current(&state, &headers, Stage::Active).await?.is_some() {
        return Ok(Redirect::to("/admin").into_response());
    }
    let notice = if query.expired.is_some() {
        Some("一定時間操作がなかったため、サインアウトしました。もう一度サインインしてください。")
    } else if query.signed_out.is_some() {
        Some("サインアウトしました。")
    } else {
        None
    };
    Ok(login_page(&state, StatusCode::OK, "", None, notice))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
}

/// Keys of the password step: the typed account and the client's network.
fn password_keys(email: &str, ip: IpAddr) -> [Key; 2] {
    [Key::account(email), Key::network(ip)]
}

/// Keys of the second-factor step. Not the account key: a guesser without the password must not
/// be able to hold up the real operator's code once the password is through.
fn second_factor_keys(admin_id: i64, ip: IpAddr) -> [Key; 2] {
    [Key::second_factor(admin_id), Key::network(ip)]
}

/// The answer while a key waits: 429, `Retry-After` and the sign-in page saying how many seconds
/// to wait; the password or code is not checked.
fn backoff_response(state: &AppState, wait: Duration, kind: KeyKind, admin_id: Option<i64>, ip: IpAddr) -> Response {
    let wait_secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    tracing::warn!(
        category = "SECURITY",
        event = "admin_sign_in_refused",
        key_kind = kind.as_str(),
        admin_id,
        client_network = network_of(ip),
        wait_secs,
        "SECURITY admin sign-in refused during back-off, not checked"
    );
    metrics::counter!("nfa_admin_sign_in_refused_total", "key_kind" => kind.as_str()).increment(1);
    let token = random_token(24);
    let page = LoginPage { csrf_token: &token, email: "", error: None, notice: None, wait_secs: Some(wait_secs) };
    let mut response = with_cookie(render(StatusCode::TOO_MANY_REQUESTS, &page), login_cookie(state, &token));
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait_secs));
    response
}

/// Refuses the attempt if a key waits (counting the refusal against the network, see
/// [`throttle::admit`]).
async fn refusal(state: &AppState, keys: &[Key], admin_id: Option<i64>, ip: IpAddr) -> Result<Option<Response>, AdminError> {
    match throttle::admit(&state.db, keys, OffsetDateTime::now_utc()).await? {
        Admission::Check => Ok(None),
        Admission::Refused { wait, kind, network_failure } => {
            if let Some(Failure { failures, wait: Some(network_wait) }) = network_failure {
                log_backoff(KeyKind::Network, failures, network_wait, admin_id, ip);
            }
            Ok(Some(backoff_response(state, wait, kind, admin_id, ip)))
        }
    }
}

fn log_backoff(kind: KeyKind, failures: i32, wait: Duration, admin_id: Option<i64>, ip: IpAddr) {
    tracing::warn!(
        category = "SECURITY",
        event = "admin_sign_in_backoff",
        key_kind = kind.as_str(),
        failures,
        admin_id,
        client_network = network_of(ip),
        wait_secs = wait.as_secs(),
        "SECURITY admin sign-in back-off started after repeated failures"
    );
}

/// Counts a failed check against every key and logs it; logs each back-off it starts.
async fn record_failure(state: &AppState, keys: &[Key], admin_id: Option<i64>, ip: IpAddr, stage: &'static str) -> Result<(), AdminError> {
    metrics::counter!("nfa_admin_sign_in_failures_total", "stage" => stage).increment(1);
    tracing::warn!(
        category = "SECURITY",
        event = "admin_sign_in_failed",
        stage,
        admin_id,
        client_network = network_of(ip),
        "SECURITY admin sign-in failed"
    );
    for (kind, failure) in throttle::fail_all(&state.db, keys, OffsetDateTime::now_utc()).await? {
        if let Some(wait) = failure.wait {
            log_backoff(kind, failure.failures, wait, admin_id, ip);
        }
    }
    Ok(())
}

/// A valid Argon2id hash to verify against when the address is unknown, so the answer takes as
/// long as for a real account and does not tell which addresses have one.
async fn dummy_hash(state: &AppState) -> Result<&'static str, AdminError> {
    static DUMMY: OnceCell<String> = OnceCell::const_new();
    let hash = DUMMY.get_or_try_init(|| state.hasher.hash(random_token(16))).await?;
    Ok(hash.as_str())
}

async fn login(State(state): State<AppState>, ClientIp(ip): ClientIp, headers: HeaderMap, body: Bytes) -> Result<Response, AdminError> {
    let form: LoginForm = parse_form(&body)?;
    let cookie = crate::http::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    check_csrf_token(&state, &headers, &cookie, &form.csrf_token)?;
    let keys = password_keys(&form.email, ip);
    let account = accounts::find_by_email(&state.db, &form.email).await?;
    let admin_id = account.as_ref().map(|a| a.id);
    if let Some(refused) = refusal(&state, &keys, admin_id, ip).await? {
        return Ok(refused);
    }
    let hash = match &account {
        Some(account) => account.password_hash.clone(),
        None => dummy_hash(&state).await?.to_string(),
    };
    let password_ok = !form.password.is_empty() && state.hasher.verify(form.password, hash).await?;
    let Some(account) = account.filter(|_| password_ok) else {
        record_failure(&state, &keys, admin_id, ip, "password").await?;
        return Ok(login_page(&state, StatusCode::UNAUTHORIZED, form.email.trim(), Some(BAD_CREDENTIALS), None));
    };
    // Drop whatever session the browser had; the second factor gets a fresh one.
    if let Some(token) = crate::http::cookie(&headers, session::cookie_name(state.config.secure_cookies()))
        && let Some(old) = session::find(&state.db, &token).await?
    {
        session::revoke(&state.db, old.id).await?;
    }
    let token = session::start(&state.db, account.id, Stage::SecondFactor).await?;
    let next = if account.totp_secret.is_some() { "/admin/login/totp" } else { "/admin/enrol" };
    Ok(with_cookie(Redirect::to(next).into_response(), set_cookie(&state, Some(&token))))
}

// ---- second factor ----

#[derive(Template)]
#[template(path = "admin/totp.html")]
struct TotpPage<'a> {
    csrf_token: &'a str,
    error: Option<&'a str>,
}

/// The half-signed-in session and its account, or a redirect to the sign-in page.
async fn second_factor(state: &AppState, headers: &HeaderMap) -> Result<Result<(SessionRow, AccountRow), Response>, AdminError> {
    let Some(row) = session::current(state, headers, Stage::SecondFactor).await? else {
        return Ok(Err(Redirect::to("/admin/login").into_response()));
    };
    let Some(account) = accounts::find_by_id(&state.db, row.admin_id).await? else {
        return Ok(Err(Redirect::to("/admin/login").into_response()));
    };
    Ok(Ok((row, account)))
}

async fn show_totp(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AdminError> {
    let (row, account) = match second_factor(&state, &headers).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    if account.totp_secret.is_none() {
        return Ok(Redirect::to("/admin/enrol").into_response());
    }
    Ok(render(StatusCode::OK, &TotpPage { csrf_token: &row.csrf_token, error: None }))
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf_token: String,
}

/// A code posted by a half-signed-in session: the session, its account, the form and the
/// throttle keys, once the CSRF token and the back-off have been checked.
struct CodeSubmission {
    row: SessionRow,
    account: AccountRow,
    form: CodeForm,
    keys: [Key; 2],
}

async fn code_submission(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    ip: IpAddr,
) -> Result<Result<CodeSubmission, Response>, AdminError> {
    let (row, account) = match second_factor(state, headers).await? {
        Ok(found) => found,
        Err(response) => return Ok(Err(response)),
    };
    let form: CodeForm = parse_form(body)?;
    check_csrf_token(state, headers, &row.csrf_token, &form.csrf_token)?;
    let keys = second_factor_keys(account.id, ip);
    if let Some(refused) = refusal(state, &keys, Some(account.id), ip).await? {
        return Ok(Err(refused));
    }
    Ok(Ok(CodeSubmission { row, account, form, keys }))
}

/// Replaces the half-signed-in session with a fully signed-in one (new id, new token) and clears
/// the account's back-off (its password and second-factor counts; the network's stays).
async fn promote(state: &AppState, row: &SessionRow, account: &AccountRow) -> Result<String, AdminError> {
    session::revoke(&state.db, row.id).await?;
    throttle::clear(&state.db, &Key::account(&account.email).name).await?;
    throttle::clear(&state.db, &Key::second_factor(account.id).name).await?;
    let token = session::start(&state.db, account.id, Stage::Active).await?;
    tracing::info!(event = "admin_signed_in", admin_id = account.id, role = %account.role, "admin signed in");
    Ok(token)
}

async fn submit_totp(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let CodeSubmission { row, account, form, keys } = match code_submission(&state, &headers, &body, ip).await? {
        Ok(submission) => submission,
        Err(response) => return Ok(response),
    };
    let Some(sealed) = &account.totp_secret else {
        return Ok(Redirect::to("/admin/enrol").into_response());
    };
    let secret = SecretBox::new(state.config.secret_key.expose())?.open(sealed)?;
    let accepted = match totp::verify(&secret, &form.code, account.totp_last_step, totp::now_unix()) {
        Some(step) => accounts::accept_totp_step(&state.db, account.id, step).await?,
        None if form.code.trim().len() > 6 => {
            let used = accounts::use_recovery_code(&state.db, account.id, &form.code).await?;
            if used {
                let left = accounts::recovery_codes_left(&state.db, account.id).await?;
                tracing::warn!(
                    category = "SECURITY",
                    event = "admin_recovery_code_used",
                    admin_id = account.id,
                    left,
                    "SECURITY admin signed in with a recovery code"
                );
            }
            used
        }
        None => false,
    };
    if !accepted {
        record_failure(&state, &keys, Some(account.id), ip, "second_factor").await?;
        return Ok(render(StatusCode::UNAUTHORIZED, &TotpPage { csrf_token: &row.csrf_token, error: Some(BAD_CODE) }));
    }
    let token = promote(&state, &row, &account).await?;
    Ok(with_cookie(Redirect::to("/admin").into_response(), set_cookie(&state, Some(&token))))
}

// ---- enrolment at the first sign-in ----

#[derive(Template)]
#[template(path = "admin/enrol.html")]
struct EnrolPage<'a> {
    csrf_token: &'a str,
    qr_data_uri: String,
    secret_groups: String,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "admin/recovery_codes.html")]
struct RecoveryCodesPage {
    codes: Vec<String>,
}

async fn enrol_page(
    state: &AppState,
    row: &SessionRow,
    account: &AccountRow,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, AdminError> {
    let sealer = SecretBox::new(state.config.secret_key.expose())?;
    // The same secret until it is confirmed, so a reload does not invalidate a scanned code.
    let secret = match &row.pending_totp_secret {
        Some(sealed) => sealer.open(sealed)?,
        None => {
            let secret = totp::new_secret();
            session::set_pending_secret(&state.db, row.id, &sealer.seal(&secret)?).await?;
            secret
        }
    };
    let uri = totp::provisioning_uri(&secret, &account.email)?;
    let base32 = totp::secret_base32(&secret, &account.email)?;
    let secret_groups = base32.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ");
    let page = EnrolPage { csrf_token: &row.csrf_token, qr_data_uri: totp::qr_data_uri(&uri)?, secret_groups, error };
    Ok(render(status, &page))
}

async fn show_enrol(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AdminError> {
    let (row, account) = match second_factor(&state, &headers).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    if account.totp_secret.is_some() {
        return Ok(Redirect::to("/admin/login/totp").into_response());
    }
    enrol_page(&state, &row, &account, StatusCode::OK, None).await
}

async fn submit_enrol(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let CodeSubmission { row, account, form, keys } = match code_submission(&state, &headers, &body, ip).await? {
        Ok(submission) => submission,
        Err(response) => return Ok(response),
    };
    if account.totp_secret.is_some() {
        return Ok(Redirect::to("/admin/login/totp").into_response());
    }
    let Some(sealed) = &row.pending_totp_secret else {
        return Ok(Redirect::to("/admin/enrol").into_response());
    };
    let secret = SecretBox::new(state.config.secret_key.expose())?.open(sealed)?;
    let Some(step) = totp::verify(&secret, &form.code, 0, totp::now_unix()) else {
        record_failure(&state, &keys, Some(account.id), ip, "enrolment").await?;
        return enrol_page(&state, &row, &account, StatusCode::UNPROCESSABLE_ENTITY, Some(BAD_CODE)).await;
    };
    let codes = totp::new_recovery_codes();
    accounts::enrol(&state.db, account.id, sealed, step, &codes).await?;
    super::audit::record(&state.db, Some(&account.user()), "admin.enrol_totp", &format!("admin:{}", account.id), serde_json::json!({}))
        .await?;
    let token = promote(&state, &row, &account).await?;
    // Shown once, on this response only (no-store); never stored in the clear.
    Ok(with_cookie(render(StatusCode::OK, &RecoveryCodesPage { codes }), set_cookie(&state, Some(&token))))
}

// ---- sign-out ----

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf_token: String,
}

async fn logout(State(state): State<AppState>, session: AdminSession, headers: HeaderMap, body: Bytes) -> Result<Response, AdminError> {
    let form: CsrfOnly = parse_form(&body)?;
    session.check_csrf(&state, &headers, &form.csrf_token)?;
    session::revoke(&state.db, session.id).await?;
    tracing::info!(event = "admin_signed_out", admin_id = session.user.id, "admin signed out");
    Ok(with_cookie(Redirect::to("/admin/login?signed_out=1").into_response(), set_cookie(&state, None)))
}
