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
pub mod registrations;
pub mod reviews;
pub mod session;
pub mod switches;
pub mod throttle;
pub mod totp;

use axum::Router;

use crate::config::Config;
use crate::state::AppState;

pub fn routes(config: &Config) -> Router<AppState> {
    Router::new()
        .merge(auth::routes())
        .merge(dashboard::routes(config.dashboard_cache))
        .merge(reviews::routes())
        .merge(registrations::routes())
        .merge(deletion::routes())
        .merge(switches::routes())
        .merge(audit_page::routes())
}
