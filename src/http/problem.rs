//! RFC 9457 problem details for the JSON API: a stable `type`, a Japanese `detail`, never a
//! stack trace.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
}

/// `code` becomes the stable `type` URI `/api/v1/problems/{code}`.
pub fn problem(status: StatusCode, code: &str, title: &'static str, detail: impl Into<String>) -> Response {
    let body = Problem { kind: format!("/api/v1/problems/{code}"), title, status: status.as_u16(), detail: detail.into() };
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}
