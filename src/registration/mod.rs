//! The public registration form: お客様情報 → ご住所 → プランの選択 → 確認 → 完了.
//!
//! Each step is a server-rendered page that works without JavaScript (`form`), and the same flow
//! is a JSON API (`api`); both find the visitor's flow through `visit` and save and submit it
//! through `service`, which applies the step rules (`steps`) and runs the final submit (`submit`).
//! Every POST carries the flow's CSRF token and must come from our own origin. The form's shape
//! and the field rules are typed values (`values::form`, `values::fields`) that the admin console
//! and the mails read too.

pub mod api;
pub mod flow;
pub mod form;
pub mod pages;
pub mod plans;
pub mod service;
pub mod steps;
pub mod submit;
pub mod visit;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};

use crate::db::Availability;
use crate::http::writer_gate::{Hold, WriterGateLayer};
use crate::state::AppState;

/// The form's pages; all of them pause (503, `form::paused`) while the database writer is down.
pub fn routes(availability: &Availability) -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/register/customer") }))
        .route("/register/complete", get(form::show_complete))
        .route("/register/restart", post(form::restart))
        .route("/register/validate", post(form::validate_field))
        .route("/register/{step}", get(form::show_step).post(form::save_step))
        .layer(WriterGateLayer::new(availability.clone(), Hold::All, "registration", form::paused))
}
