//! RFC 9457 problem details for the JSON API: a stable `type`, a Japanese `detail`, never a
//! stack trace.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A problem with one field of a step.
#[derive(Serialize, ToSchema)]
pub struct FieldProblem {
    /// The field's `name`.
    pub field: String,
    /// Stable: `required`, `invalid`, `unavailable` or `consent_required`.
    pub code: String,
    /// What to fix, in Japanese, for the person.
    pub message: String,
}

/// RFC 9457 problem details.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// Stable URI reference `/api/v1/problems/{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Japanese, for the person.
    pub detail: String,
    /// Validation failures, field by field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(nullable = false)]
    pub errors: Vec<FieldProblem>,
    /// The step to go back to, when the submit sends the person back.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_step: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("/api/v1/problems/{code}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            next_step: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, axum::Json(self)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}

/// `code` becomes the stable `type` URI `/api/v1/problems/{code}`.
pub fn problem(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> Response {
    Problem::new(status, code, title, detail).into_response()
}
