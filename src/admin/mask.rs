//! `normal-form-app admin mask-comments [--dry-run]`: personal data in comments written before
//! the check of `admin::reason` existed. Review comments (`manual_reviews.comment`) and the
//! `comment` / `reason` of audit details are searched with `values::pii` — patterns and, where the
//! row names a registration that still exists, that registration's own values — and what is found
//! is replaced by `＊＊＊`. Rows are read in pages by id, so memory stays bounded.

use serde_json::Value;

use crate::admin::reason::registrant_values;
use crate::db::Db;
use crate::values::pii;
use crate::with_pool;

const PAGE: i64 = 500;

/// Rows looked at and rows (that would be) masked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MaskReport {
    pub reviews_checked: u64,
    pub reviews_masked: u64,
    pub audit_checked: u64,
    pub audit_masked: u64,
}

/// The text with personal data masked, or `None` when it holds none.
fn masked(text: &str, values: &[(&'static str, String)]) -> Option<String> {
    pii::find(text, values).map(|_| pii::mask(text, values))
}

async fn values_for(db: &Db, user_id: Option<i64>) -> Result<Vec<(&'static str, String)>, sqlx::Error> {
    match user_id {
        Some(id) => registrant_values(db, id).await,
        None => Ok(Vec::new()),
    }
}

pub async fn mask_comments(db: &Db, dry_run: bool) -> anyhow::Result<MaskReport> {
    let mut report = MaskReport::default();
    let mut after = 0_i64;
    loop {
        let rows: Vec<(i64, i64, String)> = with_pool!(db, |pool| sqlx::query_as(
            "SELECT id, user_id, comment FROM manual_reviews WHERE id > $1 AND comment IS NOT NULL ORDER BY id LIMIT $2"
        )
        .bind(after)
        .bind(PAGE)
        .fetch_all(pool)
        .await)?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        for (id, user_id, comment) in rows {
            report.reviews_checked += 1;
            let Some(clean) = masked(&comment, &values_for(db, Some(user_id)).await?) else { continue };
            report.reviews_masked += 1;
            if !dry_run {
                with_pool!(db, |pool| sqlx::query("UPDATE manual_reviews SET comment = $1 WHERE id = $2")
                    .bind(&clean)
                    .bind(id)
                    .execute(pool)
                    .await
                    .map(drop))?;
            }
        }
    }
    let (select, update) = match db {
        Db::Postgres(_) => (
            "SELECT id, detail::text FROM audit_log WHERE id > $1 AND (detail ? 'comment' OR detail ? 'reason') ORDER BY id LIMIT $2",
            "UPDATE audit_log SET detail = $1::jsonb WHERE id = $2",
        ),
        Db::Sqlite(_) => (
            "SELECT id, detail FROM audit_log WHERE id > $1 \
             AND (json_type(detail, '$.comment') IS NOT NULL OR json_type(detail, '$.reason') IS NOT NULL) ORDER BY id LIMIT $2",
            "UPDATE audit_log SET detail = $1 WHERE id = $2",
        ),
    };
    let mut after = 0_i64;
    loop {
        let rows: Vec<(i64, String)> = with_pool!(db, |pool| sqlx::query_as(select).bind(after).bind(PAGE).fetch_all(pool).await)?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        for (id, detail) in rows {
            report.audit_checked += 1;
            let mut detail: Value = serde_json::from_str(&detail)?;
            let values = values_for(db, detail.get("user_id").and_then(Value::as_i64)).await?;
            let mut changed = false;
            for key in ["comment", "reason"] {
                if let Some(clean) = detail.get(key).and_then(Value::as_str).and_then(|text| masked(text, &values)) {
                    detail[key] = Value::String(clean);
                    changed = true;
                }
            }
            if !changed {
                continue;
            }
            report.audit_masked += 1;
            if !dry_run {
                let text = detail.to_string();
                with_pool!(db, |pool| sqlx::query(update).bind(&text).bind(id).execute(pool).await.map(drop))?;
            }
        }
    }
    Ok(report)
}
