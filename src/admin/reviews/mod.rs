//! 確認待ち: the operators' manual-review queue.
//!
//! Entries come from two places. `manual_reviews` rows are created by the submit when
//! InventoryAPI could not answer (kind `inventory`, 管理者による手動確認) and by the region
//! re-check when a registration accepted while RegionAPI was down turned out to be outside the
//! plan's area (kind `region`, 後処理で地域制限を確認). Registrations still flagged `unchecked`
//! have no review row yet: the background re-check settles them by itself once RegionAPI answers,
//! so they are listed (kind filter 「地域・自動再確認待ち」) for the operators to see, but not
//! decided here.
//!
//! A decision is one transaction: the review row is moved from `pending` (so of two operators
//! deciding at once exactly one wins), the registrant's status changes, an approved inventory
//! check reserves a unit, the registrant's mail goes to the outbox and the audit row is written.

pub mod decision;
pub mod detail;
pub mod filter;
pub mod labels;
pub mod list;
pub mod queries;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/reviews", get(list::list))
        .route("/admin/reviews/{id}", get(detail::show))
        .route("/admin/reviews/{id}/decision", post(decision::decide))
}
