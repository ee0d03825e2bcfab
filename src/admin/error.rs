//! How the console refuses a request: each refusal is a Japanese page; internal errors are logged
//! once, at the edge.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::http::error::{AppError, error_page};

/// Why an admin request was refused; each answers with a Japanese page. Internal errors are
/// logged once, at the edge, by [`AppError`].
#[derive(Debug)]
pub enum AdminError {
    BadForm,
    Forbidden,
    Csrf,
    NotFound,
    Internal(AppError),
}

impl<E: Into<anyhow::Error>> From<E> for AdminError {
    fn from(err: E) -> Self {
        AdminError::Internal(AppError::from(err))
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        match self {
            AdminError::BadForm => {
                error_page(StatusCode::BAD_REQUEST, "送信内容を読み取れませんでした", "画面を開き直してから、もう一度操作してください。")
            }
            AdminError::Forbidden => {
                error_page(StatusCode::FORBIDDEN, "権限がありません", "この操作はオペレーター権限のアカウントのみ行えます。")
            }
            AdminError::Csrf => error_page(
                StatusCode::FORBIDDEN,
                "送信を受け付けられませんでした",
                "セキュリティ確認のため、この送信は処理されませんでした。画面を開き直してから、もう一度操作してください。",
            ),
            AdminError::NotFound => {
                error_page(StatusCode::NOT_FOUND, "見つかりません", "指定されたデータは存在しないか、削除されています。")
            }
            AdminError::Internal(err) => err.into_response(),
        }
    }
}

/// Parses an `application/x-www-form-urlencoded` body; a malformed one is a 400.
pub fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    serde_urlencoded::from_bytes(body).map_err(|_| AdminError::BadForm)
}
