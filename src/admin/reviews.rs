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

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use time::{Date, OffsetDateTime, Time};

use super::accounts::{AdminUser, Role};
use super::{AdminError, AdminSession, Layout, Section, parse_form};
use crate::db::Db;
use crate::http::error::render;
use crate::inventory::Reservation;
use crate::mail::{self, OutgoingMail};
use crate::registration::fields::JST;
use crate::startup::AppState;
use crate::{insert_audit, insert_outbox, with_pool};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/reviews", get(list))
        .route("/admin/reviews/{id}", get(show))
        .route("/admin/reviews/{id}/decision", post(decide))
}

/// Entries per page.
const PAGE_SIZE: i64 = 50;
/// Longest comment kept with a decision, in characters.
const MAX_COMMENT: usize = 1000;

// ---------------------------------------------------------------------------------------------
// Filters

/// The list's query string, every field optional and read leniently: an unknown value is a
/// Japanese message on the page, never an error status without explanation.
#[derive(Deserialize, Default)]
pub struct RawFilter {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KindFilter {
    All,
    Inventory,
    Region,
    /// Registrations still flagged `unchecked` (no review row yet).
    Unchecked,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StatusFilter {
    Pending,
    Approved,
    Rejected,
    Decided,
    All,
}

#[derive(Clone, Debug)]
pub struct Filter {
    pub kind: KindFilter,
    pub status: StatusFilter,
    pub plan: Option<String>,
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub after: Option<i64>,
}

fn parse_date(raw: &str) -> Option<Date> {
    Date::parse(raw.trim(), time::macros::format_description!("[year]-[month]-[day]")).ok()
}

impl Filter {
    /// The filter, and the Japanese messages for the parts that could not be read (ignored).
    pub fn parse(raw: &RawFilter, plans: &[(String, String)]) -> (Filter, Vec<&'static str>) {
        let mut errors = Vec::new();
        let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let kind = match text(&raw.kind).as_deref() {
            None | Some("all") => KindFilter::All,
            Some("inventory") => KindFilter::Inventory,
            Some("region") => KindFilter::Region,
            Some("unchecked") => KindFilter::Unchecked,
            Some(_) => {
                errors.push("種別の指定が正しくないため、すべての種別を表示しています。");
                KindFilter::All
            }
        };
        let status = match text(&raw.status).as_deref() {
            None | Some("pending") => StatusFilter::Pending,
            Some("approved") => StatusFilter::Approved,
            Some("rejected") => StatusFilter::Rejected,
            Some("decided") => StatusFilter::Decided,
            Some("all") => StatusFilter::All,
            Some(_) => {
                errors.push("状態の指定が正しくないため、未対応のものを表示しています。");
                StatusFilter::Pending
            }
        };
        let plan = match text(&raw.plan) {
            Some(p) if plans.iter().any(|(id, _)| *id == p) => Some(p),
            Some(_) => {
                errors.push("プランの指定が正しくないため、すべてのプランを表示しています。");
                None
            }
            None => None,
        };
        let mut date = |v: &Option<String>, message: &'static str| match text(v) {
            Some(s) => parse_date(&s).or_else(|| {
                errors.push(message);
                None
            }),
            None => None,
        };
        let from = date(&raw.from, "開始日は「2025-01-31」の形式で入力してください（指定を無視しました）。");
        let to = date(&raw.to, "終了日は「2025-01-31」の形式で入力してください（指定を無視しました）。");
        let after = text(&raw.after).and_then(|s| s.parse::<i64>().ok()).filter(|n| *n >= 0);
        (Filter { kind, status, plan, from, to, after }, errors)
    }

    /// The query string for this filter with another `after` (pagination links).
    pub fn query(&self, after: Option<i64>) -> String {
        let kind = match self.kind {
            KindFilter::All => "all",
            KindFilter::Inventory => "inventory",
            KindFilter::Region => "region",
            KindFilter::Unchecked => "unchecked",
        };
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("kind", kind);
        q.append_pair("status", self.status_value());
        if let Some(plan) = &self.plan {
            q.append_pair("plan", plan);
        }
        if let Some(from) = self.from {
            q.append_pair("from", &from.to_string());
        }
        if let Some(to) = self.to {
            q.append_pair("to", &to.to_string());
        }
        if let Some(after) = after {
            q.append_pair("after", &after.to_string());
        }
        q.finish()
    }

    fn status_value(&self) -> &'static str {
        match self.status {
            StatusFilter::Pending => "pending",
            StatusFilter::Approved => "approved",
            StatusFilter::Rejected => "rejected",
            StatusFilter::Decided => "decided",
            StatusFilter::All => "all",
        }
    }

    /// Start of the `from` day and end of the `to` day, in JST, as UTC instants.
    fn range(&self) -> (Option<OffsetDateTime>, Option<OffsetDateTime>) {
        let at_jst_midnight = |d: Date| d.with_time(Time::MIDNIGHT).assume_offset(JST).to_offset(time::UtcOffset::UTC);
        (self.from.map(at_jst_midnight), self.to.and_then(|d| d.next_day()).map(at_jst_midnight))
    }

    /// The review statuses to show (two values, possibly equal), or none for all.
    fn statuses(&self) -> Option<(&'static str, &'static str)> {
        match self.status {
            StatusFilter::Pending => Some(("pending", "pending")),
            StatusFilter::Approved => Some(("approved", "approved")),
            StatusFilter::Rejected => Some(("rejected", "rejected")),
            StatusFilter::Decided => Some(("approved", "rejected")),
            StatusFilter::All => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Queries

#[derive(sqlx::FromRow)]
pub struct ReviewRow {
    pub id: i64,
    pub kind: String,
    pub reason: String,
    pub status: String,
    pub created_at: OffsetDateTime,
    pub decided_at: Option<OffsetDateTime>,
    pub decided_by: Option<String>,
    pub comment: Option<String>,
    pub user_id: i64,
    pub registration_number: String,
    pub family_name: String,
    pub given_name: String,
    pub family_name_kana: String,
    pub given_name_kana: String,
    pub plan_id: String,
    pub prefecture: String,
    pub postal_code: String,
    pub city: String,
    pub inventory_status: String,
    pub region_status: String,
    pub registered_at: OffsetDateTime,
}

/// The columns of [`ReviewRow`] (a macro, so queries are `concat!`-ed literals).
macro_rules! review_select {
    () => {
        "SELECT r.id, r.kind, r.reason, r.status, r.created_at, r.decided_at, r.decided_by, r.comment, \
     u.id AS user_id, u.registration_number, u.family_name, u.given_name, u.family_name_kana, u.given_name_kana, u.plan_id, \
     u.prefecture, u.postal_code, u.city, u.inventory_status, u.region_status, u.created_at AS registered_at \
     FROM manual_reviews r JOIN users u ON u.id = r.user_id"
    };
}

/// One page of reviews, oldest first (by id, which follows creation), `PAGE_SIZE + 1` rows so the
/// caller knows whether there is a next page.
pub async fn reviews(db: &Db, filter: &Filter) -> Result<Vec<ReviewRow>, sqlx::Error> {
    let kind = match filter.kind {
        KindFilter::Inventory => Some("inventory"),
        KindFilter::Region => Some("region"),
        KindFilter::All | KindFilter::Unchecked => None,
    };
    let (status_a, status_b) = filter.statuses().map_or((None, None), |(a, b)| (Some(a), Some(b)));
    let (from, to) = filter.range();
    with_pool!(db, |pool| {
        sqlx::query_as(concat!(
            review_select!(),
            " WHERE ($1 IS NULL OR r.kind = $1) AND ($2 IS NULL OR r.status = $2 OR r.status = $3) \
             AND ($4 IS NULL OR u.plan_id = $4) AND ($5 IS NULL OR r.created_at >= $5) AND ($6 IS NULL OR r.created_at < $6) \
             AND ($7 IS NULL OR r.id > $7) ORDER BY r.id LIMIT $8"
        ))
        .bind(kind)
        .bind(status_a)
        .bind(status_b)
        .bind(filter.plan.as_deref())
        .bind(from)
        .bind(to)
        .bind(filter.after)
        .bind(PAGE_SIZE + 1)
        .fetch_all(pool)
        .await
    })
}

pub async fn review(db: &Db, id: i64) -> Result<Option<ReviewRow>, sqlx::Error> {
    with_pool!(db, |pool| { sqlx::query_as(concat!(review_select!(), " WHERE r.id = $1")).bind(id).fetch_optional(pool).await })
}

#[derive(sqlx::FromRow)]
pub struct UncheckedRow {
    pub id: i64,
    pub registration_number: String,
    pub family_name: String,
    pub given_name: String,
    pub plan_id: String,
    pub prefecture: String,
    pub postal_code: String,
    pub created_at: OffsetDateTime,
}

/// Registrations still waiting for the automatic region re-check, oldest first.
pub async fn unchecked(db: &Db, filter: &Filter) -> Result<Vec<UncheckedRow>, sqlx::Error> {
    let (from, to) = filter.range();
    with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT id, registration_number, family_name, given_name, plan_id, prefecture, postal_code, created_at FROM users \
             WHERE region_status = 'unchecked' AND ($1 IS NULL OR plan_id = $1) AND ($2 IS NULL OR created_at >= $2) \
             AND ($3 IS NULL OR created_at < $3) AND ($4 IS NULL OR id > $4) ORDER BY id LIMIT $5",
        )
        .bind(filter.plan.as_deref())
        .bind(from)
        .bind(to)
        .bind(filter.after)
        .bind(PAGE_SIZE + 1)
        .fetch_all(pool)
        .await
    })
}

/// Open reviews and registrations waiting for the region re-check, for the page's summary.
async fn counts(db: &Db) -> Result<(i64, i64), sqlx::Error> {
    with_pool!(db, |pool| {
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM manual_reviews WHERE status = 'pending'").fetch_one(pool).await?;
        let unchecked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE region_status = 'unchecked'").fetch_one(pool).await?;
        Ok((pending, unchecked))
    })
}

// ---------------------------------------------------------------------------------------------
// Presentation helpers

/// `2026-11-29 16:48` in JST.
pub fn jst(at: OffsetDateTime) -> String {
    let t = at.to_offset(JST);
    format!("{}-{:02}-{:02} {:02}:{:02}", t.year(), t.month() as u8, t.day(), t.hour(), t.minute())
}

/// How long something waited, in Japanese (「3日4時間」, 「2時間5分」, 「12分」).
pub fn waited(from: OffsetDateTime, until: OffsetDateTime) -> String {
    let minutes = (until - from).whole_minutes().max(0);
    let (days, hours, mins) = (minutes / 1440, (minutes % 1440) / 60, minutes % 60);
    if days > 0 {
        format!("{days}日{hours}時間")
    } else if hours > 0 {
        format!("{hours}時間{mins}分")
    } else {
        format!("{mins}分")
    }
}

pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "inventory" => "在庫",
        "region" => "地域",
        _ => "その他",
    }
}

/// Label and badge class of a review status.
pub fn status_badge(status: &str) -> (&'static str, &'static str) {
    match status {
        "pending" => ("未対応", "warn"),
        "approved" => ("承認", "ok"),
        "rejected" => ("却下", "bad"),
        _ => ("不明", ""),
    }
}

pub fn inventory_label(status: &str) -> &'static str {
    match status {
        "reserved" => "確保済み",
        "needs_check" => "要確認",
        "confirmed" => "確認済み（承認）",
        "rejected" => "却下",
        _ => "不明",
    }
}

pub fn region_label(status: &str) -> &'static str {
    match status {
        "eligible" => "提供地域内",
        "unchecked" => "未確認（自動再確認待ち）",
        "ineligible" => "提供地域外の可能性（要確認）",
        "approved" => "確認済み（承認）",
        "rejected" => "却下",
        _ => "不明",
    }
}

fn plan_name(state: &AppState, plan_id: &str) -> String {
    state.catalog.plan(plan_id).map_or_else(|| plan_id.to_string(), |p| p.name.clone())
}

// ---------------------------------------------------------------------------------------------
// The list

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

async fn list(State(state): State<AppState>, session: AdminSession, Query(raw): Query<RawFilter>) -> Result<Response, AdminError> {
    let plans: Vec<(String, String)> = state.catalog.plans.iter().map(|p| (p.id.clone(), p.name.clone())).collect();
    let (filter, errors) = Filter::parse(&raw, &plans);
    let now = OffsetDateTime::now_utc();
    let (mut entries, mut last_id) = (Vec::new(), None);
    let mut has_more = false;
    if filter.kind == KindFilter::Unchecked {
        let mut rows = unchecked(&state.db, &filter).await?;
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
                plan: plan_name(&state, &r.plan_id),
                area: format!("{}（〒{}）", r.prefecture, r.postal_code),
                reason: "地域APIが応答しなかったため未確認です。APIの復旧後に自動で再確認されます。".into(),
                created_at: jst(r.created_at),
                waited: waited(r.created_at, now),
            });
        }
    } else {
        let mut rows = reviews(&state.db, &filter).await?;
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
                plan: plan_name(&state, &r.plan_id),
                area: format!("{}（〒{}）", r.prefecture, r.postal_code),
                reason: r.reason,
                created_at: jst(r.created_at),
                waited: waited(r.created_at, r.decided_at.unwrap_or(now)),
            });
        }
    }
    let (pending_total, unchecked_total) = counts(&state.db).await?;
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

// ---------------------------------------------------------------------------------------------
// One review and its decision

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
    comment: String,
}

#[derive(Deserialize, Default)]
struct DetailQuery {
    #[serde(default)]
    done: Option<String>,
}

fn parse_id(raw: &str) -> Result<i64, AdminError> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or(AdminError::NotFound)
}

async fn plan_stock(state: &AppState, plan_id: &str) -> Result<Option<i64>, sqlx::Error> {
    if state.config.external.inventory.url.is_some() {
        return Ok(None);
    }
    with_pool!(&state.db, |pool| {
        sqlx::query_scalar("SELECT CAST(stock AS BIGINT) FROM plan_stock WHERE plan_id = $1").bind(plan_id).fetch_optional(pool).await
    })
}

async fn detail_page(
    state: &AppState,
    session: &AdminSession,
    id: i64,
    status: StatusCode,
    error: Option<String>,
    comment: &str,
    done: Option<&'static str>,
) -> Result<Response, AdminError> {
    let Some(r) = review(&state.db, id).await? else {
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
        plan: plan_name(state, &r.plan_id),
        address: format!("〒{} {}{}", r.postal_code, r.prefecture, r.city),
        reason: r.reason,
        created_at: jst(r.created_at),
        waited: waited(r.created_at, r.decided_at.unwrap_or(now)),
        registered_at: jst(r.registered_at),
        inventory_status: inventory_label(&r.inventory_status),
        region_status: region_label(&r.region_status),
        is_inventory,
        stock,
        decided_at: r.decided_at.map(jst).unwrap_or_default(),
        decided_by: r.decided_by.unwrap_or_default(),
        decision_comment: r.comment.unwrap_or_default(),
        registration_number: r.registration_number,
        error,
        done,
        comment: comment.to_string(),
    };
    Ok(render(status, &page))
}

async fn show(
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
    detail_page(&state, &session, id, StatusCode::OK, None, "", done).await
}

#[derive(Deserialize)]
struct DecisionForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    comment: String,
}

/// Why a decision was not applied; nothing was changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    AlreadyDecided,
    /// The registration's status is no longer the one the review was opened for.
    StateChanged,
    OutOfStock,
    InventoryUnavailable,
}

impl Refusal {
    fn message(&self) -> &'static str {
        match self {
            Refusal::NotFound => "この確認は存在しないか、登録が削除されています。",
            Refusal::AlreadyDecided => {
                "この確認はすでに判定済みです（他のオペレーターが先に判定した可能性があります）。結果を確認してください。"
            }
            Refusal::StateChanged => "登録の状態が変わっているため、判定できませんでした。画面を開き直して確認してください。",
            Refusal::OutOfStock => {
                "このプランは在庫がないため承認できません（在庫は確保されず、何も変更されていません）。在庫を補充してから承認するか、却下してください。"
            }
            Refusal::InventoryUnavailable => {
                "在庫APIに接続できないため在庫を確保できず、承認できませんでした（何も変更されていません）。しばらく待ってから、もう一度お試しください。"
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    fn status(self) -> &'static str {
        match self {
            Decision::Approve => "approved",
            Decision::Reject => "rejected",
        }
    }
}

async fn decide(
    State(state): State<AppState>,
    session: AdminSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let form: DecisionForm = parse_form(&body)?;
    session.check_csrf(&state, &headers, &form.csrf_token)?;
    session.require(Role::Operator)?;
    let id = parse_id(&id)?;
    let comment = form.comment.trim();
    let decision = match form.decision.as_str() {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        _ => {
            let message = "「承認する」または「却下する」を選んでください。".to_string();
            return detail_page(&state, &session, id, StatusCode::BAD_REQUEST, Some(message), comment, None).await;
        }
    };
    if decision == Decision::Reject && comment.is_empty() {
        let message = "却下する場合は、理由をコメントに入力してください。".to_string();
        return detail_page(&state, &session, id, StatusCode::BAD_REQUEST, Some(message), comment, None).await;
    }
    if comment.chars().count() > MAX_COMMENT {
        let message = format!("コメントは{MAX_COMMENT}文字以内で入力してください。");
        return detail_page(&state, &session, id, StatusCode::BAD_REQUEST, Some(message), comment, None).await;
    }
    match apply_decision(&state, &session.user, id, decision, comment).await? {
        Ok(()) => Ok(Redirect::to(&format!("/admin/reviews/{id}?done={}", decision.status())).into_response()),
        Err(Refusal::NotFound) => Err(AdminError::NotFound),
        Err(refusal) => {
            tracing::info!(event = "review_decision_refused", review_id = id, admin_id = session.user.id, refusal = ?refusal);
            let comment = if refusal == Refusal::AlreadyDecided { "" } else { comment };
            detail_page(&state, &session, id, StatusCode::CONFLICT, Some(refusal.message().to_string()), comment, None).await
        }
    }
}

#[derive(sqlx::FromRow)]
struct Subject {
    registration_number: String,
    email: String,
    family_name: String,
    given_name: String,
    plan_id: String,
    inventory_status: String,
    region_status: String,
}

/// Applies a decision in one transaction, or changes nothing and says why.
pub async fn apply_decision(
    state: &AppState,
    actor: &AdminUser,
    review_id: i64,
    decision: Decision,
    comment: &str,
) -> anyhow::Result<Result<(), Refusal>> {
    let now = OffsetDateTime::now_utc();
    let comment = Some(comment).filter(|c| !c.is_empty());
    let embedded_inventory = state.config.external.inventory.url.is_none();
    let outcome: Result<(), Refusal> = with_pool!(&state.db, |pool| {
        let mut tx = pool.begin().await?;
        // The write comes first: it takes the row lock (PostgreSQL) or the write lock (SQLite),
        // so a concurrent decision waits here and then matches no row — exactly one wins.
        let claimed: Option<(i64, String)> = sqlx::query_as(
            "UPDATE manual_reviews SET status = $1, decided_at = $2, decided_by = $3, comment = $4 \
             WHERE id = $5 AND status = 'pending' RETURNING user_id, kind",
        )
        .bind(decision.status())
        .bind(now)
        .bind(&actor.email)
        .bind(comment)
        .bind(review_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((user_id, kind)) = claimed else {
            tx.rollback().await?;
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT id FROM manual_reviews WHERE id = $1").bind(review_id).fetch_optional(pool).await?;
            return Ok(Err(if exists.is_some() { Refusal::AlreadyDecided } else { Refusal::NotFound }));
        };
        let subject: Subject = sqlx::query_as(
            "SELECT registration_number, email, family_name, given_name, plan_id, inventory_status, region_status FROM users WHERE id = $1",
        )
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
        // The status the review settles, and the only states it may be settled from: a second
        // path (the automatic region re-check, say) may have moved it meanwhile.
        let (inventory, approve) = (kind == "inventory", decision == Decision::Approve);
        let (field, before, after, update) = if inventory {
            (
                "inventory_status",
                subject.inventory_status.clone(),
                if approve { "confirmed" } else { "rejected" },
                "UPDATE users SET inventory_status = $1 WHERE id = $2 AND inventory_status = 'needs_check'",
            )
        } else {
            (
                "region_status",
                subject.region_status.clone(),
                if approve { "approved" } else { "rejected" },
                "UPDATE users SET region_status = $1 WHERE id = $2 AND region_status IN ('ineligible', 'unchecked')",
            )
        };
        let moved = sqlx::query(update).bind(after).bind(user_id).execute(&mut *tx).await?.rows_affected();
        if moved == 0 {
            tx.rollback().await?;
            return Ok(Err(Refusal::StateChanged));
        }
        let mut stock_before: Option<i64> = None;
        let mut stock_after: Option<i64> = None;
        let mut reserved_by: Option<&str> = None;
        if inventory && approve {
            let reservation = if embedded_inventory {
                Ok(Reservation::InDatabase)
            } else {
                // Keyed by the 受付番号, like the submit's, so a retry cannot reserve twice.
                state.apis.inventory.reserve(&subject.plan_id, &subject.registration_number).await
            };
            match reservation {
                Ok(Reservation::InDatabase) => {
                    // The submit's own reservation statement.
                    let Some(left) = crate::reserve_stock!(&mut *tx, &subject.plan_id, now).await? else {
                        tx.rollback().await?;
                        return Ok(Err(Refusal::OutOfStock));
                    };
                    stock_before = Some(left + 1);
                    stock_after = Some(left);
                    reserved_by = Some("embedded");
                }
                Ok(Reservation::Reserved) => reserved_by = Some("InventoryAPI"),
                Ok(Reservation::OutOfStock) => {
                    tx.rollback().await?;
                    return Ok(Err(Refusal::OutOfStock));
                }
                Err(err) => {
                    tracing::warn!(event = "review_reservation_failed", review_id, error = %err, "InventoryAPI reservation failed");
                    tx.rollback().await?;
                    return Ok(Err(Refusal::InventoryUnavailable));
                }
            }
        }
        let plan = plan_name(state, &subject.plan_id);
        let message = result_mail(&subject, &plan, &kind, decision)?;
        insert_outbox!(&mut *tx, message, now).await?;
        let detail = json!({
            "review_id": review_id,
            "user_id": user_id,
            "registration_number": subject.registration_number,
            "kind": kind,
            "decision": decision.status(),
            "before": { "review_status": "pending", (field): before },
            "after": { "review_status": decision.status(), (field): after },
            "plan_id": subject.plan_id,
            "stock_before": stock_before,
            "stock_after": stock_after,
            "reserved_by": reserved_by,
            "comment": comment,
            "mail": "review_result",
        });
        let action = match decision {
            Decision::Approve => "review.approve",
            Decision::Reject => "review.reject",
        };
        insert_audit!(&mut *tx, Some(actor), action, &format!("review:{review_id}"), &detail).await?;
        tx.commit().await?;
        Ok::<_, anyhow::Error>(Ok(()))
    })?;
    if outcome.is_ok() {
        tracing::info!(event = "review_decided", review_id, admin_id = actor.id, decision = decision.status());
    }
    Ok(outcome)
}

#[derive(Template)]
#[template(path = "mail/review_result.txt", escape = "none")]
struct ResultText<'a> {
    m: &'a ResultMail<'a>,
}

#[derive(Template)]
#[template(path = "mail/review_result.html")]
struct ResultHtml<'a> {
    m: &'a ResultMail<'a>,
}

struct ResultMail<'a> {
    family_name: &'a str,
    given_name: &'a str,
    plan: &'a str,
    registration_number: &'a str,
    approved: bool,
    /// What was checked, for the sentence: 「在庫」 or 「提供地域」.
    subject: &'static str,
}

const RESULT_SUBJECT: &str = "【会員登録】お申し込みの確認結果のお知らせ";

fn result_mail(subject: &Subject, plan: &str, kind: &str, decision: Decision) -> anyhow::Result<OutgoingMail> {
    let m = ResultMail {
        family_name: &subject.family_name,
        given_name: &subject.given_name,
        plan,
        registration_number: &subject.registration_number,
        approved: decision == Decision::Approve,
        subject: if kind == "inventory" { "在庫" } else { "提供地域" },
    };
    Ok(OutgoingMail {
        kind: "review_result",
        recipient: subject.email.clone(),
        subject: mail::header_safe(RESULT_SUBJECT),
        text: ResultText { m: &m }.render()?,
        html: ResultHtml { m: &m }.render()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_time_in_japanese() {
        let t = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(waited(t, t + time::Duration::minutes(12)), "12分");
        assert_eq!(waited(t, t + time::Duration::minutes(125)), "2時間5分");
        assert_eq!(waited(t, t + time::Duration::hours(76)), "3日4時間");
        assert_eq!(waited(t + time::Duration::minutes(5), t), "0分");
    }

    #[test]
    fn filters_read_leniently() {
        let plans = vec![("standard".to_string(), "スタンダード".to_string())];
        let raw = RawFilter {
            kind: Some("region".into()),
            status: Some("decided".into()),
            plan: Some("standard".into()),
            from: Some("2026-01-02".into()),
            to: Some("bad".into()),
            after: Some("17".into()),
        };
        let (filter, errors) = Filter::parse(&raw, &plans);
        assert_eq!(filter.kind, KindFilter::Region);
        assert_eq!(filter.status, StatusFilter::Decided);
        assert_eq!(filter.plan.as_deref(), Some("standard"));
        assert_eq!(filter.from.map(|d| d.to_string()).as_deref(), Some("2026-01-02"));
        assert_eq!(filter.to, None);
        assert_eq!(errors.len(), 1);
        assert_eq!(filter.after, Some(17));
        assert_eq!(filter.query(Some(20)), "kind=region&status=decided&plan=standard&from=2026-01-02&after=20");
        let (filter, errors) = Filter::parse(&RawFilter { plan: Some("nope".into()), ..RawFilter::default() }, &plans);
        assert_eq!((filter.kind, filter.status, filter.plan), (KindFilter::All, StatusFilter::Pending, None));
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn date_range_is_whole_jst_days() {
        let plans = vec![];
        let raw = RawFilter { from: Some("2026-01-02".into()), to: Some("2026-01-02".into()), ..RawFilter::default() };
        let (filter, _) = Filter::parse(&raw, &plans);
        let (from, to) = filter.range();
        assert_eq!(from.map(|t| t.to_string()), Some("2026-01-01 15:00:00.0 +00:00:00".to_string()));
        assert_eq!(to.map(|t| t.to_string()), Some("2026-01-02 15:00:00.0 +00:00:00".to_string()));
    }
}
