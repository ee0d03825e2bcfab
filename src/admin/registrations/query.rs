//! The filters as SQL (prefix searches as byte-order ranges), keyset cursors, and the rows read.

use time::{Date, OffsetDateTime};

use super::filters::{EmailFilter, Filters, NameFilter, inventory_label, region_label};
use crate::db::Db;
use crate::values::jst;
use crate::with_pool;

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

/// Binds `params` to a query of either backend, in order (a macro: the query type differs by
/// backend).
macro_rules! bind_params {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                Param::Text(v) => query.bind(v.clone()),
                Param::Time(v) => query.bind(*v),
                Param::Int(v) => query.bind(*v),
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
        jst::date_time(self.created_at)
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

#[cfg(test)]
mod tests {
    use super::*;

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
