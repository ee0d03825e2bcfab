//! The admin console at `/admin`: sign-in with password and TOTP, and the operators' screens —
//! dashboard, the manual-review queue (確認待ち), registrations (登録一覧) with CSV export and
//! deletion requests, the external-API switches and the audit log.
//!
//! Every handler takes an [`session::AdminSession`] (anyone else is sent to the sign-in page); actions that
//! change something also check the session's CSRF token and, where only an operator may act,
//! the role — always on the server.

pub mod accounts;
pub mod actor;
pub mod audit;
pub mod audit_page;
pub mod auth;
pub mod badges;
pub mod dashboard;
pub mod deletion;
pub mod error;
pub mod layout;
pub mod mask;
pub mod reason;
pub mod registrations;
pub mod reviews;
pub mod session;
pub mod switches;
pub mod throttle;
pub mod totp;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;

use crate::http::error::error_page;
use crate::http::writer_gate::{Hold, WriterGateLayer};
use crate::state::AppState;

/// Every screen. While the database writer is down the console reads on (from the replica) and
/// every action is refused with 503 (`writes_paused`).
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(auth::routes())
        .merge(dashboard::routes(state.config.dashboard_cache))
        .merge(reviews::routes())
        .merge(registrations::routes())
        .merge(deletion::routes())
        .merge(switches::routes())
        .merge(audit_page::routes())
        .layer(WriterGateLayer::new(state.availability.clone(), Hold::Writes, "admin", writes_paused))
}

fn writes_paused(_: &Parts, _: Bytes) -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "ただいま書き込みを停止しています",
        "データベース（書き込み）に接続できないため、この操作は行われませんでした。一覧・検索・ダッシュボードはこのままご覧いただけます。復旧後に、もう一度操作してください。",
    )
}
