//! The list (`GET /admin/reviews`).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use time::OffsetDateTime;

use super::filter::{Filter, KindFilter, PAGE_SIZE, RawFilter, StatusFilter};
use super::labels::{kind_label, status_badge, waited};
use super::queries::{counts, reviews, unchecked};
use crate::admin::error::AdminError;
use crate::admin::layout::{Layout, Section};
use crate::admin::session::AdminSession;
use crate::http::error::render;
use crate::state::AppState;
use crate::values::jst;

pub struct ListEntry {
    pub href: Option<String>,
    pub kind: &'static str,
    pub status: (&'static str, &'static str),
    pub registration_number: String,
    pub name: String,
    pub plan: String,
    pub area: String,
    pub reason: String,
    pub created_at: String,
    pub waited: String,
}

#[derive(Template)]
#[template(path = "admin/reviews.html")]
struct ListPage {
    layout: Layout,
    errors: Vec<&'static str>,
    kind: &'static str,
    status: &'static str,
    plan: String,
    from: String,
    to: String,
    plans: Vec<(String, String)>,
    entries: Vec<ListEntry>,
    showing_unchecked: bool,
    pending_total: i64,
    unchecked_total: i64,
    unchecked_link: String,
    first_link: Option<String>,
    next_link: Option<String>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    session: AdminSession,
    Query(raw): Query<RawFilter>,
) -> Result<Response, AdminError> {
    let plans: Vec<(String, String)> = state.catalog.plans.iter().map(|p| (p.id.clone(), p.name.clone())).collect();
    let (filter, errors) = Filter::parse(&raw, &plans);
    let now = OffsetDateTime::now_utc();
    let (mut entries, mut last_id) = (Vec::new(), None);
    let mut has_more = false;
    if filter.kind == KindFilter::Unchecked {
        let mut rows = unchecked(state.reads(), &filter).await?;
        if rows.len() as i64 > PAGE_SIZE {
            rows.truncate(PAGE_SIZE as usize);
            has_more = true;
        }
        last_id = rows.last().map(|r| r.id);
        for r in rows {
            entries.push(ListEntry {
                href: None,
                kind: "地域・自動再確認待ち",
                status: ("自動再確認待ち", ""),
                registration_number: r.registration_number,
                name: format!("{} {}", r.family_name, r.given_name),
                plan: state.catalog.plan_name(&r.plan_id).to_string(),
                area: format!("{}（〒{}）", r.prefecture, r.postal_code),
                reason: "地域APIが応答しなかったため未確認です。APIの復旧後に自動で再確認されます。".into(),
                created_at: jst::date_time_minutes(r.created_at),
                waited: waited(r.created_at, now),
            });
        }
    } else {
        let mut rows = reviews(state.reads(), &filter).await?;
        if rows.len() as i64 > PAGE_SIZE {
            rows.truncate(PAGE_SIZE as usize);
            has_more = true;
        }
        last_id = rows.last().map(|r| r.id).or(last_id);
        for r in rows {
            entries.push(ListEntry {
                href: Some(format!("/admin/reviews/{}", r.id)),
                kind: kind_label(&r.kind),
                status: status_badge(&r.status),
                registration_number: r.registration_number,
                name: format!("{} {}", r.family_name, r.given_name),
                plan: state.catalog.plan_name(&r.plan_id).to_string(),
                area: format!("{}（〒{}）", r.prefecture, r.postal_code),
                reason: r.reason,
                created_at: jst::date_time_minutes(r.created_at),
                waited: waited(r.created_at, r.decided_at.unwrap_or(now)),
            });
        }
    }
    let (pending_total, unchecked_total) = counts(state.reads()).await?;
    let unchecked_filter = Filter { kind: KindFilter::Unchecked, status: StatusFilter::Pending, after: None, ..filter.clone() };
    let unchecked_link = format!("/admin/reviews?{}", unchecked_filter.query(None));
    let page = ListPage {
        layout: Layout::new(&session, Section::Reviews),
        errors,
        kind: match filter.kind {
            KindFilter::All => "all",
            KindFilter::Inventory => "inventory",
            KindFilter::Region => "region",
            KindFilter::Unchecked => "unchecked",
        },
        status: filter.status_value(),
        plan: filter.plan.clone().unwrap_or_default(),
        from: filter.from.map(|d| d.to_string()).unwrap_or_default(),
        to: filter.to.map(|d| d.to_string()).unwrap_or_default(),
        plans,
        entries,
        showing_unchecked: filter.kind == KindFilter::Unchecked,
        pending_total,
        unchecked_total,
        unchecked_link,
        first_link: filter.after.is_some().then(|| format!("/admin/reviews?{}", filter.query(None))),
        next_link: if has_more { last_id.map(|id| format!("/admin/reviews?{}", filter.query(Some(id)))) } else { None },
    };
    Ok(render(StatusCode::OK, &page))
}
