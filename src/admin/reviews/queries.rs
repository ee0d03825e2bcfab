//! The queue's queries: open and decided reviews, registrations awaiting the region re-check.

use time::OffsetDateTime;

use super::filter::{Filter, KindFilter, PAGE_SIZE};
use crate::db::Db;
use crate::with_pool;

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
pub(super) async fn counts(db: &Db) -> Result<(i64, i64), sqlx::Error> {
    with_pool!(db, |pool| {
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM manual_reviews WHERE status = 'pending'").fetch_one(pool).await?;
        let unchecked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE region_status = 'unchecked'").fetch_one(pool).await?;
        Ok((pending, unchecked))
    })
}
