//! One review (`GET /admin/reviews/{id}`): the registration, its stock and the decision form.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use time::OffsetDateTime;

use super::labels::{inventory_label, kind_label, region_label, status_badge, waited};
use super::queries::review;
use crate::admin::error::AdminError;
use crate::admin::layout::{Layout, Section};
use crate::admin::reason::{self, Code, Entered};
use crate::admin::session::AdminSession;
use crate::http::error::render;
use crate::state::AppState;
use crate::values::jst;
use crate::with_pool;

#[derive(Template)]
#[template(path = "admin/review.html")]
struct DetailPage {
    layout: Layout,
    id: i64,
    user_id: i64,
    kind: &'static str,
    status: (&'static str, &'static str),
    pending: bool,
    registration_number: String,
    name: String,
    kana: String,
    plan: String,
    address: String,
    reason: String,
    created_at: String,
    waited: String,
    registered_at: String,
    inventory_status: &'static str,
    region_status: &'static str,
    is_inventory: bool,
    stock: Option<i64>,
    decided_at: String,
    decided_by: String,
    decision_comment: String,
    error: Option<String>,
    done: Option<&'static str>,
    reason_codes: &'static [Code],
    reason_code: String,
    comment: String,
    max_note: usize,
}

#[derive(Deserialize, Default)]
pub(super) struct DetailQuery {
    #[serde(default)]
    done: Option<String>,
}

pub(super) fn parse_id(raw: &str) -> Result<i64, AdminError> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or(AdminError::NotFound)
}

async fn plan_stock(state: &AppState, plan_id: &str) -> Result<Option<i64>, sqlx::Error> {
    if state.config.external.inventory.url.is_some() {
        return Ok(None);
    }
    with_pool!(state.fresh_reads(), |pool| {
        sqlx::query_scalar("SELECT CAST(stock AS BIGINT) FROM plan_stock WHERE plan_id = $1").bind(plan_id).fetch_optional(pool).await
    })
}

pub(super) async fn detail_page(
    state: &AppState,
    session: &AdminSession,
    id: i64,
    status: StatusCode,
    error: Option<String>,
    entered: Entered<'_>,
    done: Option<&'static str>,
) -> Result<Response, AdminError> {
    let Some(r) = review(state.fresh_reads(), id).await? else {
        return Err(AdminError::NotFound);
    };
    let now = OffsetDateTime::now_utc();
    let is_inventory = r.kind == "inventory";
    let stock = if is_inventory { plan_stock(state, &r.plan_id).await? } else { None };
    let page = DetailPage {
        layout: Layout::new(session, Section::Reviews),
        id: r.id,
        user_id: r.user_id,
        kind: kind_label(&r.kind),
        status: status_badge(&r.status),
        pending: r.status == "pending",
        name: format!("{} {}", r.family_name, r.given_name),
        kana: format!("{} {}", r.family_name_kana, r.given_name_kana),
        plan: state.catalog.plan_name(&r.plan_id).to_string(),
        address: format!("〒{} {}{}", r.postal_code, r.prefecture, r.city),
        reason: r.reason,
        created_at: jst::date_time_minutes(r.created_at),
        waited: waited(r.created_at, r.decided_at.unwrap_or(now)),
        registered_at: jst::date_time_minutes(r.registered_at),
        inventory_status: inventory_label(&r.inventory_status),
        region_status: region_label(&r.region_status),
        is_inventory,
        stock,
        decided_at: r.decided_at.map(jst::date_time_minutes).unwrap_or_default(),
        decided_by: r.decided_by.unwrap_or_default(),
        decision_comment: r.comment.unwrap_or_default(),
        registration_number: r.registration_number,
        error,
        done,
        reason_codes: reason::REVIEW,
        reason_code: entered.code.to_string(),
        comment: entered.note.to_string(),
        max_note: reason::MAX_NOTE,
    };
    Ok(render(status, &page))
}

pub(super) async fn show(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
    Query(query): Query<DetailQuery>,
) -> Result<Response, AdminError> {
    let id = parse_id(&id)?;
    let done = match query.done.as_deref() {
        Some("approved") => Some("承認しました。"),
        Some("rejected") => Some("却下しました。"),
        _ => None,
    };
    detail_page(&state, &session, id, StatusCode::OK, None, Entered::default(), done).await
}
