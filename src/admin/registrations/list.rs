//! The list (`GET /admin/registrations`): a page of matches, newest first, and the count.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::filters::{Filters, INVENTORY_STATUSES, REGION_STATUSES, RawFilters};
use super::query::{Cursor, Direction, ListRow, count_capped, fetch_page};
use crate::admin::error::AdminError;
use crate::admin::layout::{Layout, Section};
use crate::admin::session::AdminSession;
use crate::http::error::render;
use crate::state::AppState;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 200;
/// The list counts matches up to this many; beyond, it says 「1,000件以上」.
const COUNT_CAP: i64 = 1000;

#[derive(Template)]
#[template(path = "admin/registrations.html")]
struct ListPage {
    layout: Layout,
    raw: RawFilters,
    errors: Vec<String>,
    rows: Vec<ListRow>,
    count_label: String,
    next_href: Option<String>,
    prev_href: Option<String>,
    export_query: String,
    deleted: bool,
    inventory_options: &'static [(&'static str, &'static str)],
    region_options: &'static [(&'static str, &'static str)],
    plan_names: std::collections::HashMap<String, String>,
}

impl ListPage {
    fn plan_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.plan_names.get(id).map_or(id, |s| s.as_str())
    }
}

pub fn page_size(raw: &RawFilters) -> i64 {
    raw.limit.trim().parse::<i64>().map_or(DEFAULT_PAGE_SIZE, |n| n.clamp(1, MAX_PAGE_SIZE))
}

pub(super) async fn list(session: AdminSession, State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, AdminError> {
    let raw = RawFilters::from_query(query.as_deref());
    let limit = page_size(&raw);
    let plan_names = state.catalog.plans.iter().map(|p| (p.id.clone(), p.name.clone())).collect();
    let mut page = ListPage {
        layout: Layout::new(&session, Section::Registrations),
        raw: raw.clone(),
        errors: Vec::new(),
        rows: Vec::new(),
        count_label: String::new(),
        next_href: None,
        prev_href: None,
        export_query: raw.search_query(),
        deleted: raw.deleted == "1",
        inventory_options: &INVENTORY_STATUSES,
        region_options: &REGION_STATUSES,
        plan_names,
    };
    let filters = match Filters::parse(&raw) {
        Ok(filters) => filters,
        Err(errors) => {
            page.errors = errors;
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let direction = match (Cursor::decode(&raw.after), Cursor::decode(&raw.before)) {
        (Some(cursor), _) => Direction::After(cursor),
        (None, Some(cursor)) => Direction::Before(cursor),
        (None, None) => Direction::First,
    };
    let (rows, more) = fetch_page(state.reads(), &filters, &direction, limit).await?;
    let count = count_capped(state.reads(), &filters, COUNT_CAP).await?;
    page.count_label = if count > COUNT_CAP { format!("{COUNT_CAP}件以上") } else { format!("{count}件") };
    let base = {
        let search = raw.search_query();
        let size = if limit == DEFAULT_PAGE_SIZE { String::new() } else { format!("limit={limit}&") };
        format!("/admin/registrations?{search}{}{size}", if search.is_empty() { "" } else { "&" })
    };
    let (has_older, has_newer) = match direction {
        Direction::First => (more, false),
        Direction::After(_) => (more, true),
        Direction::Before(_) => (true, more),
    };
    if let (true, Some(last)) = (has_older, rows.last()) {
        page.next_href = Some(format!("{base}after={}", last.cursor().encode()));
    }
    if let (true, Some(first)) = (has_newer, rows.first()) {
        page.prev_href = Some(format!("{base}before={}", first.cursor().encode()));
    }
    page.rows = rows;
    Ok(render(StatusCode::OK, &page))
}
