//! `GET /api/v1/postal-codes/{code}`: every address of a postal code, for the form's script and
//! for other clients; and the API's OpenAPI description.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::api::PostalAnswer;
use crate::http::problem::{Problem, problem};
use crate::state::AppState;
use crate::values::fields;

const OPENAPI: &str = include_str!("../../docs/api-v1.openapi.json");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/postal-codes/{code}", get(lookup))
        .route("/api/v1/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
}

/// Addresses of a postal code (all matches, kanji and kana), from AddressAPI.
#[utoipa::path(
    get,
    path = "/api/v1/postal-codes/{code}",
    tag = "address",
    params(("code" = String, Path, description = "7桁。全角数字やハイフン付き（１２３-４５６７）も可")),
    responses(
        (status = 200, description = "該当する住所（複数のこともあります）", body = PostalAnswer),
        (status = 400, description = "郵便番号の形式ではありません", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "該当する住所がありません", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "住所検索を利用できません（住所を直接入力）", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn lookup(State(state): State<AppState>, Path(raw): Path<String>) -> Response {
    let Ok(code) = fields::postal_code(&raw) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "invalid-postal-code",
            "郵便番号の形式が正しくありません",
            "郵便番号は7桁の数字で入力してください（例: 123-4567）。",
        );
    };
    match state.apis.address.answer_json(&code).await {
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            "postal-code-not-found",
            "該当する住所がありません",
            "この郵便番号に該当する住所が見つかりませんでした。郵便番号をご確認のうえ、住所を直接入力してください。",
        ),
        Ok(Some(json)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
                // The data changes once a month at most.
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
            ],
            json,
        )
            .into_response(),
        Err(_) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "address-lookup-unavailable",
            "住所検索を利用できません",
            "現在、住所検索をご利用いただけません。お手数ですが、住所を直接入力してください。",
        ),
    }
}
