//! 登録一覧: search registrations by 受付番号, email, name (kanji or kana), phone, date range and
//! status, newest first with keyset pagination (never OFFSET, so page 20,000 costs what page 1
//! does), and a detail page with every field except the password hash.
//!
//! The filters are a GET form, so a search can be bookmarked; the same filters drive the CSV
//! export ([`export`]). Prefix searches are written as byte-order ranges
//! (`col >= 'abc' AND col < 'abd'`), which a plain B-tree index answers on SQLite and a
//! `COLLATE "C"` one on PostgreSQL (migration 0008), whatever the database's collation.

pub mod detail;
pub mod export;
pub mod filters;
pub mod list;
pub mod query;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/registrations", get(list::list))
        .route("/admin/registrations/{id}", get(detail::detail))
        .merge(export::routes())
}
