//! 登録一覧: search registrations by 受付番号, email, name (kanji or kana), phone, date range and
//! status, newest first with keyset pagination (never OFFSET, so page 20,000 costs what page 1
//! does), and a detail page with every field except the password hash.
//!
//! The filters are a GET form, so a search can be bookmarked; the same filters drive the CSV
//! export ([`super::export`]). Prefix searches are written as byte-order ranges
//! (`col >= 'abc' AND col < 'abd'`), which a plain B-tree index answers on SQLite and a
//! `COLLATE "C"` one on PostgreSQL (migration 0008), whatever the database's collation.

use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use sqlx::types::Json;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};
use unicode_normalization::UnicodeNormalization;
use wana_kana::ConvertJapanese;

use super::{AdminError, AdminSession, Layout, Section};
use crate::db::Db;
use crate::http::error::render;
use crate::registration::fields::{self, JST};
use crate::startup::AppState;
use crate::with_pool;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 200;
/// The list counts matches up to this many; beyond, it says 「1,000件以上」.
const COUNT_CAP: i64 = 1000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/registrations", get(list)).route("/admin/registrations/{id}", get(detail))
}

/// The query string as typed: every field optional, validated by [`Filters::parse`].
#[derive(Deserialize, Default, Debug, Clone)]
pub struct RawFilters {
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub inventory: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub verified: String,
    #[serde(default)]
    pub after: String,
    #[serde(default)]
    pub before: String,
    #[serde(default)]
    pub limit: String,
    #[serde(default)]
    pub deleted: String,
    #[serde(default)]
    pub encoding: String,
}

impl RawFilters {
    /// Reads a query string; anything unreadable counts as no filter at all.
    pub fn from_query(query: Option<&str>) -> RawFilters {
        query.and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default()
    }

    /// The search part of the query string (no cursor, no page size), for links and the export.
    pub fn search_query(&self) -> String {
        let pairs = [
            ("number", &self.number),
            ("email", &self.email),
            ("name", &self.name),
            ("phone", &self.phone),
            ("from", &self.from),
            ("to", &self.to),
            ("inventory", &self.inventory),
            ("region", &self.region),
            ("verified", &self.verified),
        ];
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (key, value) in pairs {
            if !value.trim().is_empty() {
                out.append_pair(key, value.trim());
            }
        }
        out.finish()
    }
}

pub const INVENTORY_STATUSES: [(&str, &str); 4] =
    [("reserved", "在庫確保済み"), ("needs_check", "要確認"), ("confirmed", "確認済み"), ("rejected", "却下")];
pub const REGION_STATUSES: [(&str, &str); 5] =
    [("eligible", "提供可"), ("unchecked", "未確認"), ("ineligible", "提供不可（要審査）"), ("approved", "承認"), ("rejected", "却下")];

pub fn inventory_label(status: &str) -> &str {
    INVENTORY_STATUSES.iter().find(|(k, _)| *k == status).map_or(status, |(_, v)| v)
}

pub fn region_label(status: &str) -> &str {
    REGION_STATUSES.iter().find(|(k, _)| *k == status).map_or(status, |(_, v)| v)
}

#[derive(Debug, Clone, PartialEq)]
pub enum EmailFilter {
    Exact(String),
    Prefix(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum NameFilter {
    /// One word: a prefix of the family or given name, in kanji or in kana.
    Word { text: String, kana: String },
    /// 「山田 太郎」: the family name exactly and a prefix of the given name.
    Full { family: String, given: String, family_kana: String, given_kana: String },
}

/// Validated search filters.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub number: Option<String>,
    pub email: Option<EmailFilter>,
    pub name: Option<NameFilter>,
    pub phone: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub inventory: Option<&'static str>,
    pub region: Option<&'static str>,
    pub verified: Option<bool>,
}

fn to_katakana(text: &str) -> String {
    let options = wana_kana::Options { pass_romaji: true, ..Default::default() };
    text.to_katakana_with_opt(options)
}

/// `2026-04-01` (or `2026/04/01`) as a date; `None` when it is not one.
fn parse_date(raw: &str) -> Option<Date> {
    let text: String = raw.nfkc().collect::<String>().trim().replace('/', "-");
    Date::parse(&text, format_description!("[year]-[month]-[day]")).ok()
}

/// Midnight at the start of `date` in Japan, in UTC (how timestamps are stored and compared).
fn start_of_day_jst(date: Date) -> OffsetDateTime {
    date.midnight().assume_offset(JST).to_offset(UtcOffset::UTC)
}

impl Filters {
    /// Validates the typed filters; each problem is a Japanese message.
    pub fn parse(raw: &RawFilters) -> Result<Filters, Vec<String>> {
        let mut errors = Vec::new();
        let mut filters = Filters::default();
        let number: String = raw.number.nfkc().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_uppercase();
        if !raw.number.trim().is_empty() {
            if number.len() == 12 {
                filters.number = Some(format!("{}-{}-{}", &number[0..4], &number[4..8], &number[8..12]));
            } else {
                errors.push("受付番号は「XXXX-XXXX-XXXX」の12文字で入力してください。".to_string());
            }
        }
        let email = fields::normalize_text(&raw.email).to_lowercase();
        if !email.is_empty() {
            filters.email = Some(if email.contains('@') { EmailFilter::Exact(email) } else { EmailFilter::Prefix(email) });
        }
        let name = fields::normalize_text(&raw.name);
        let words: Vec<&str> = name.split(' ').filter(|w| !w.is_empty()).collect();
        match words.as_slice() {
            [] => {}
            [word] => filters.name = Some(NameFilter::Word { text: word.to_string(), kana: to_katakana(word) }),
            [family, given] => {
                filters.name = Some(NameFilter::Full {
                    family: family.to_string(),
                    given: given.to_string(),
                    family_kana: to_katakana(family),
                    given_kana: to_katakana(given),
                })
            }
            _ => errors.push("氏名は「姓」または「姓 名」の形で入力してください。".to_string()),
        }
        if !raw.phone.trim().is_empty() {
            match fields::phone(&raw.phone) {
                Ok(digits) => filters.phone = Some(digits),
                Err(message) => errors.push(message),
            }
        }
        let from = raw.from.trim();
        if !from.is_empty() {
            match parse_date(from) {
                Some(date) => filters.from = Some(start_of_day_jst(date)),
                None => errors.push("登録日（から）を正しい日付で入力してください（例: 2026-04-01）。".to_string()),
            }
        }
        let to = raw.to.trim();
        if !to.is_empty() {
            match parse_date(to).and_then(|d| d.next_day()) {
                Some(next) => filters.until = Some(start_of_day_jst(next)),
                None => errors.push("登録日（まで）を正しい日付で入力してください（例: 2026-04-30）。".to_string()),
            }
        }
        if let (Some(from), Some(until)) = (filters.from, filters.until)
            && from >= until
        {
            errors.push("登録日の範囲が正しくありません（「から」は「まで」以前の日付にしてください）。".to_string());
        }
        let inventory = raw.inventory.trim();
        if !inventory.is_empty() {
            match INVENTORY_STATUSES.iter().find(|(k, _)| *k == inventory) {
                Some((k, _)) => filters.inventory = Some(k),
                None => errors.push("在庫確認の状態を一覧から選択してください。".to_string()),
            }
        }
        let region = raw.region.trim();
        if !region.is_empty() {
            match REGION_STATUSES.iter().find(|(k, _)| *k == region) {
                Some((k, _)) => filters.region = Some(k),
                None => errors.push("地域確認の状態を一覧から選択してください。".to_string()),
            }
        }
        match raw.verified.trim() {
            "" => {}
            "yes" => filters.verified = Some(true),
            "no" => filters.verified = Some(false),
            _ => errors.push("メール確認の状態を一覧から選択してください。".to_string()),
        }
        if errors.is_empty() { Ok(filters) } else { Err(errors) }
    }

    /// Which filters are set, without their values (for the audit log, which holds no personal data).
    pub fn summary(&self) -> serde_json::Value {
        let day = |t: Option<OffsetDateTime>| t.map(|t| t.to_offset(JST).date().to_string());
        serde_json::json!({
            "number": self.number.is_some(),
            "email": self.email.is_some(),
            "name": self.name.is_some(),
            "phone": self.phone.is_some(),
            "from": day(self.from),
            "until_exclusive": day(self.until),
            "inventory_status": self.inventory,
            "region_status": self.region,
            "email_verified": self.verified,
        })
    }
}

/// One bound parameter of a dynamically built query.
#[derive(Debug, Clone)]
pub enum Param {
    Text(String),
    Time(OffsetDateTime),
    Int(i64),
}

/// SQL text with `$n` placeholders, each used once and numbered in order of appearance (as
/// SQLite numbers `$` parameters too). The text is assembled only from constant fragments and
/// placeholders — every value typed by an admin is bound — which is why it may be passed to
/// `sqlx::AssertSqlSafe`.
#[derive(Debug, Default)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Param>,
}

impl Sql {
    pub fn param(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    fn text_param(&mut self, value: &str) -> String {
        self.param(Param::Text(value.to_string()))
    }
}

/// Binds `params` to a query of either backend, in order.
#[macro_export]
macro_rules! bind_params {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                $crate::admin::registrations::Param::Text(v) => query.bind(v.clone()),
                $crate::admin::registrations::Param::Time(v) => query.bind(*v),
                $crate::admin::registrations::Param::Int(v) => query.bind(*v),
            };
        }
        query
    }};
}

/// The smallest string greater than every string starting with `prefix` (byte / code-point
/// order): the prefix with its last character incremented.
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl Filters {
    /// `col = value`, compared byte-wise on PostgreSQL so the `COLLATE "C"` index answers it.
    fn equals(sql: &mut Sql, postgres: bool, column: &str, value: &str) -> String {
        let collate = if postgres { " COLLATE \"C\"" } else { "" };
        format!("{column}{collate} = {}", sql.text_param(value))
    }

    /// `col starts with prefix` as an index-friendly range.
    fn prefix(sql: &mut Sql, postgres: bool, column: &str, prefix: &str) -> String {
        let column = if postgres { format!("{column} COLLATE \"C\"") } else { column.to_string() };
        let low = sql.text_param(prefix);
        match prefix_upper_bound(prefix) {
            Some(high) => {
                let high = sql.text_param(&high);
                format!("({column} >= {low} AND {column} < {high})")
            }
            None => format!("({column} >= {low})"),
        }
    }

    /// The conditions, joined with AND (empty when there are none).
    pub fn conditions(&self, sql: &mut Sql, postgres: bool) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(number) = &self.number {
            out.push(format!("registration_number = {}", sql.text_param(number)));
        }
        match &self.email {
            Some(EmailFilter::Exact(email)) => out.push(format!("email = {}", sql.text_param(email))),
            Some(EmailFilter::Prefix(prefix)) => out.push(Self::prefix(sql, postgres, "email", prefix)),
            None => {}
        }
        match &self.name {
            Some(NameFilter::Word { text, kana }) => {
                let parts = [
                    Self::prefix(sql, postgres, "family_name", text),
                    Self::prefix(sql, postgres, "given_name", text),
                    Self::prefix(sql, postgres, "family_name_kana", kana),
                    Self::prefix(sql, postgres, "given_name_kana", kana),
                ];
                out.push(format!("({})", parts.join(" OR ")));
            }
            Some(NameFilter::Full { family, given, family_kana, given_kana }) => {
                let kanji_family = Self::equals(sql, postgres, "family_name", family);
                let kanji_given = Self::prefix(sql, postgres, "given_name", given);
                let kana_family = Self::equals(sql, postgres, "family_name_kana", family_kana);
                let kana_given = Self::prefix(sql, postgres, "given_name_kana", given_kana);
                out.push(format!("(({kanji_family} AND {kanji_given}) OR ({kana_family} AND {kana_given}))"));
            }
            None => {}
        }
        if let Some(phone) = &self.phone {
            out.push(format!("phone = {}", sql.text_param(phone)));
        }
        if let Some(from) = self.from {
            out.push(format!("created_at >= {}", sql.param(Param::Time(from))));
        }
        if let Some(until) = self.until {
            out.push(format!("created_at < {}", sql.param(Param::Time(until))));
        }
        if let Some(status) = self.inventory {
            out.push(format!("inventory_status = {}", sql.text_param(status)));
        }
        if let Some(status) = self.region {
            out.push(format!("region_status = {}", sql.text_param(status)));
        }
        match self.verified {
            Some(true) => out.push("email_verified_at IS NOT NULL".to_string()),
            Some(false) => out.push("email_verified_at IS NULL".to_string()),
            None => {}
        }
        out
    }
}

/// A position in the newest-first order: `(created_at, id)` of a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    pub created_at: OffsetDateTime,
    pub id: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}_{}", self.created_at.unix_timestamp_nanos(), self.id)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (nanos, id) = text.trim().split_once('_')?;
        let created_at = OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?;
        Some(Cursor { created_at, id: id.parse().ok()? })
    }
}

pub enum Direction {
    /// Rows older than the cursor (次へ), newest first.
    After(Cursor),
    /// Rows newer than the cursor (前へ).
    Before(Cursor),
    First,
}

/// The columns of the list and the export (never the password hash).
pub const LIST_COLUMNS: &str = "id, registration_number, email, family_name, given_name, family_name_kana, given_name_kana, phone, \
     birth_date, postal_code, prefecture, city, street, building, plan_id, inventory_status, region_status, email_verified_at, created_at";

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct ListRow {
    pub id: i64,
    pub registration_number: String,
    pub email: String,
    pub family_name: String,
    pub given_name: String,
    pub family_name_kana: String,
    pub given_name_kana: String,
    pub phone: String,
    pub birth_date: Date,
    pub postal_code: String,
    pub prefecture: String,
    pub city: String,
    pub street: String,
    pub building: String,
    pub plan_id: String,
    pub inventory_status: String,
    pub region_status: String,
    pub email_verified_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

impl ListRow {
    pub fn cursor(&self) -> Cursor {
        Cursor { created_at: self.created_at, id: self.id }
    }

    pub fn created_label(&self) -> String {
        jst_label(self.created_at)
    }

    pub fn inventory_label(&self) -> &str {
        inventory_label(&self.inventory_status)
    }

    pub fn region_label(&self) -> &str {
        region_label(&self.region_status)
    }

    pub fn inventory_badge(&self) -> &'static str {
        match self.inventory_status.as_str() {
            "reserved" | "confirmed" => "ok",
            "needs_check" => "warn",
            _ => "bad",
        }
    }

    pub fn region_badge(&self) -> &'static str {
        match self.region_status.as_str() {
            "eligible" | "approved" => "ok",
            "unchecked" | "ineligible" => "warn",
            _ => "bad",
        }
    }
}

/// `2026-04-01 09:30` in Japan time.
pub fn jst_label(at: OffsetDateTime) -> String {
    at.to_offset(JST).format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second]")).unwrap_or_else(|_| at.to_string())
}

/// One page of matches in newest-first order, plus whether more lie beyond it in the direction
/// read.
pub async fn fetch_page(db: &Db, filters: &Filters, direction: &Direction, limit: i64) -> Result<(Vec<ListRow>, bool), sqlx::Error> {
    let postgres = matches!(db, Db::Postgres(_));
    let mut sql = Sql::default();
    let mut conditions = filters.conditions(&mut sql, postgres);
    let order = match direction {
        Direction::After(cursor) | Direction::Before(cursor) => {
            let at = sql.param(Param::Time(cursor.created_at));
            let id = sql.param(Param::Int(cursor.id));
            let (op, order) = if matches!(direction, Direction::After(_)) { ("<", "DESC") } else { (">", "ASC") };
            conditions.push(format!("(created_at, id) {op} ({at}, {id})"));
            order
        }
        Direction::First => "DESC",
    };
    let limit_param = sql.param(Param::Int(limit + 1));
    let where_clause = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    sql.text = format!("SELECT {LIST_COLUMNS} FROM users{where_clause} ORDER BY created_at {order}, id {order} LIMIT {limit_param}");
    let mut rows: Vec<ListRow> =
        with_pool!(db, |pool| bind_params!(sqlx::query_as::<_, ListRow>(sqlx::AssertSqlSafe(sql.text.as_str())), &sql.params)
            .fetch_all(pool)
            .await)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if matches!(direction, Direction::Before(_)) {
        rows.reverse();
    }
    Ok((rows, more))
}

/// How many rows match, counting at most `cap` + 1 (so it stays cheap on a million rows).
pub async fn count_capped(db: &Db, filters: &Filters, cap: i64) -> Result<i64, sqlx::Error> {
    let postgres = matches!(db, Db::Postgres(_));
    let mut sql = Sql::default();
    let conditions = filters.conditions(&mut sql, postgres);
    let limit = sql.param(Param::Int(cap + 1));
    let where_clause = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    sql.text = format!("SELECT count(*) FROM (SELECT 1 FROM users{where_clause} LIMIT {limit}) AS matches");
    with_pool!(db, |pool| bind_params!(sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.text.as_str())), &sql.params)
        .fetch_one(pool)
        .await)
}

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

async fn list(session: AdminSession, State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, AdminError> {
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
    let (rows, more) = fetch_page(&state.db, &filters, &direction, limit).await?;
    let count = count_capped(&state.db, &filters, COUNT_CAP).await?;
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

#[derive(sqlx::FromRow)]
struct ReviewRow {
    kind: String,
    reason: String,
    status: String,
    created_at: OffsetDateTime,
    decided_at: Option<OffsetDateTime>,
    decided_by: Option<String>,
    comment: Option<String>,
}

impl ReviewRow {
    fn kind_label(&self) -> &'static str {
        if self.kind == "inventory" { "在庫確認" } else { "地域確認" }
    }

    fn status_label(&self) -> &'static str {
        match self.status.as_str() {
            "pending" => "確認待ち",
            "approved" => "承認",
            _ => "却下",
        }
    }

    fn created_label(&self) -> String {
        jst_label(self.created_at)
    }

    fn decided_label(&self) -> String {
        self.decided_at.map(jst_label).unwrap_or_default()
    }
}

#[derive(sqlx::FromRow)]
struct FlowRow {
    id: i64,
    status: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    completed_at: Option<OffsetDateTime>,
    steps: Option<Json<serde_json::Value>>,
}

impl FlowRow {
    fn status_label(&self) -> &'static str {
        match self.status.as_str() {
            "active" => "入力中",
            "completed" => "完了",
            _ => "期限切れ",
        }
    }

    fn created_label(&self) -> String {
        jst_label(self.created_at)
    }

    fn updated_label(&self) -> String {
        jst_label(self.updated_at)
    }

    fn completed_label(&self) -> String {
        self.completed_at.map(jst_label).unwrap_or_default()
    }

    /// How many values the flow holds (its user_data keys), as a summary without the values.
    fn field_count(&self) -> usize {
        self.steps.as_ref().and_then(|j| j.0.as_object().map(|o| o.len())).unwrap_or(0)
    }
}

#[derive(Template)]
#[template(path = "admin/registration.html")]
struct DetailPage {
    layout: Layout,
    user: ListRow,
    plan_name: String,
    reviews: Vec<ReviewRow>,
    flows: Vec<FlowRow>,
}

impl DetailPage {
    fn postal_code(&self) -> String {
        fields::display_postal_code(&self.user.postal_code)
    }

    fn verified_label(&self) -> String {
        match self.user.email_verified_at {
            Some(at) => format!("確認済み（{}）", jst_label(at)),
            None => "未確認".to_string(),
        }
    }
}

async fn detail(session: AdminSession, State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AdminError> {
    let id: i64 = id.parse().map_err(|_| AdminError::NotFound)?;
    let sql = format!("SELECT {LIST_COLUMNS} FROM users WHERE id = $1");
    let user: Option<ListRow> =
        with_pool!(&state.db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(pool).await)?;
    let user = user.ok_or(AdminError::NotFound)?;
    let reviews: Vec<ReviewRow> = with_pool!(&state.db, |pool| {
        sqlx::query_as(
            "SELECT kind, reason, status, created_at, decided_at, decided_by, comment FROM manual_reviews WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(id)
        .fetch_all(pool)
        .await
    })?;
    let flows: Vec<FlowRow> = with_pool!(&state.db, |pool| {
        sqlx::query_as(
            "SELECT id, status, created_at, updated_at, completed_at, user_data AS steps FROM user_sessions WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(id)
        .fetch_all(pool)
        .await
    })?;
    let plan_name = state.catalog.plan(&user.plan_id).map_or_else(|| user.plan_id.clone(), |p| p.name.clone());
    let page = DetailPage { layout: Layout::new(&session, Section::Registrations), user, plan_name, reviews, flows };
    Ok(render(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawFilters {
        let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        RawFilters::from_query(Some(&query))
    }

    #[test]
    fn registration_numbers_are_normalised() {
        let filters = Filters::parse(&raw(&[("number", "ａｂｃｄ－２３４５ efgh")])).expect("valid");
        assert_eq!(filters.number.as_deref(), Some("ABCD-2345-EFGH"));
        assert!(Filters::parse(&raw(&[("number", "ABCD")])).is_err());
    }

    #[test]
    fn names_in_hiragana_search_katakana() {
        let filters = Filters::parse(&raw(&[("name", "やまだ")])).expect("valid");
        assert_eq!(filters.name, Some(NameFilter::Word { text: "やまだ".into(), kana: "ヤマダ".into() }));
    }

    #[test]
    fn bad_dates_are_refused_in_japanese() {
        let errors = Filters::parse(&raw(&[("from", "2026-02-30")])).expect_err("invalid");
        assert!(errors[0].contains("登録日"));
    }

    #[test]
    fn dates_are_japan_days() {
        let filters = Filters::parse(&raw(&[("from", "2026-04-01"), ("to", "2026-04-01")])).expect("valid");
        assert_eq!(filters.from.map(|t| t.to_string()), Some("2026-03-31 15:00:00.0 +00:00:00".to_string()));
        assert_eq!(filters.until.map(|t| t.to_string()), Some("2026-04-01 15:00:00.0 +00:00:00".to_string()));
    }

    #[test]
    fn prefix_bounds() {
        assert_eq!(prefix_upper_bound("abc").as_deref(), Some("abd"));
        assert_eq!(prefix_upper_bound("ヤマ").as_deref(), Some("ヤミ"));
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = Cursor { created_at: OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).expect("t"), id: 42 };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("nonsense"), None);
    }
}
