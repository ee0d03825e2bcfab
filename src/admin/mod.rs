//! The admin console at `/admin`: sign-in with password and TOTP, and the operators' screens —
//! dashboard, the manual-review queue (確認待ち), registrations (登録一覧) with CSV export and
//! deletion requests, the external-API switches and the audit log.
//!
//! Every handler takes an [`AdminSession`] (anyone else is sent to the sign-in page); actions that
//! change something also check the session's CSRF token and, where only an operator may act,
//! the role — always on the server.

pub mod accounts;
pub mod audit;
pub mod audit_page;
pub mod auth;
pub mod dashboard;
pub mod deletion;
pub mod export;
pub mod registrations;
pub mod reviews;
pub mod session;
pub mod switches;
pub mod throttle;
pub mod totp;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

pub use self::accounts::{AdminUser, Role};
pub use self::session::AdminSession;
use crate::http::error::{AppError, error_page};
use crate::startup::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(auth::routes())
        .merge(dashboard::routes())
        .merge(reviews::routes())
        .merge(registrations::routes())
        .merge(export::routes())
        .merge(deletion::routes())
        .merge(switches::routes())
        .merge(audit_page::routes())
}

/// Which part of the console a page belongs to, for the navigation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Section {
    Dashboard,
    Reviews,
    Registrations,
    Switches,
    Audit,
}

/// What every signed-in page's frame shows: the navigation, who is signed in, the sign-out form.
pub struct Layout {
    pub email: String,
    pub role_label: &'static str,
    pub is_operator: bool,
    pub csrf_token: String,
    pub section: Section,
}

impl Layout {
    pub fn new(session: &AdminSession, section: Section) -> Layout {
        Layout {
            email: session.user.email.clone(),
            role_label: session.user.role.label(),
            is_operator: session.user.role == Role::Operator,
            csrf_token: session.csrf_token.clone(),
            section,
        }
    }

    pub fn nav(&self) -> Vec<(&'static str, &'static str, bool)> {
        [
            ("/admin", "ダッシュボード", Section::Dashboard),
            ("/admin/reviews", "確認待ち", Section::Reviews),
            ("/admin/registrations", "登録一覧", Section::Registrations),
            ("/admin/switches", "外部API切替", Section::Switches),
            ("/admin/audit", "監査ログ", Section::Audit),
        ]
        .into_iter()
        .map(|(href, label, section)| (href, label, section == self.section))
        .collect()
    }
}

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
