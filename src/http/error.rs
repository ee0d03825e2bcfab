//! The one error page, and the internal-error type handlers return.
//!
//! Internal errors are logged once here, with their cause chain, at ERROR level; the person sees
//! an opaque Japanese page and never a stack trace or an SQL message.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    /// Shown so that a person who contacts us can quote it, and an operator can find the
    /// request's log lines by it (runbook: `{ $.request_id = "…" }`).
    request_id: Option<String>,
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage { title, message, request_id: crate::telemetry::context::current_id() };
    let body = page.render().unwrap_or_else(|_| title.to_string());
    (status, Html(body)).into_response()
}

/// Renders an askama template as an HTML response, or a 500 page if rendering fails.
pub fn render<T: Template>(status: StatusCode, template: &T) -> Response {
    match template.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(err) => AppError::from(anyhow::Error::from(err)).into_response(),
    }
}

pub fn too_many_requests(retry_after_secs: u64) -> Response {
    let mut response = error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "アクセスが集中しています",
        "短時間に多くの送信がありました。しばらく待ってから、もう一度お試しください。入力済みの内容は保存されています。",
    );
    if let Ok(value) = HeaderValue::from_str(&retry_after_secs.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[derive(Debug)]
pub struct AppError(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(err: E) -> Self {
        AppError(err.into())
    }
}

impl AppError {
    /// The database went away under the request (a restart, a failover): worth a retry, not an
    /// internal error.
    fn is_database_unavailable(&self) -> bool {
        self.0.chain().any(|cause| match cause.downcast_ref::<sqlx::Error>() {
            Some(err) => crate::db::is_connection_error(err),
            None => cause.downcast_ref::<crate::db::DbError>().is_some_and(crate::db::DbError::is_unreachable),
        })
    }
}

/// Seconds a person is asked to wait when the database did not answer.
const DATABASE_RETRY_AFTER_SECS: u64 = 5;

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let error = crate::telemetry::redact::redact(&format!("{:#}", self.0));
        if self.is_database_unavailable() {
            tracing::error!(event = "database_unavailable", error, "database unreachable while serving a request");
            let mut response = error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "ただいま処理できません",
                "一時的に処理できませんでした。数秒おいて、もう一度お試しください。これまでに保存された入力内容は失われていません。",
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(DATABASE_RETRY_AFTER_SECS));
            return response;
        }
        tracing::error!(event = "internal_error", error, "internal error");
        error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ただいま処理できません",
            "申し訳ありません。システムで問題が発生しました。入力済みの内容は保存されていますので、時間をおいてもう一度お試しください。",
        )
    }
}
