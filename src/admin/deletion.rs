//! 削除依頼 (個人情報保護法): an operator deletes a registrant's personal data on request.
//!
//! What is deleted, in one transaction — every table of `migrations/` that can hold it:
//! - `users`: the registration itself;
//! - `manual_reviews` of the registration (they name it; `ON DELETE CASCADE` would also do it);
//! - `user_sessions`: every flow that carries their data — linked by `user_id`, by the
//!   受付番号, or holding their address in `user_data` (unfinished or expired flows too);
//! - `api_idempotency` rows of those flows (stored answers carry the 受付番号);
//! - `outbox`: every mail to their address, sent or not (bodies hold name and address);
//! - `mail_throttle`: the address's rows;
//! - `audit_log`: the free-text comments of earlier decisions about the registration are replaced
//!   by a marker (the records themselves stay: who decided what, when — the audit needs them).
//!
//! `form_errors` and `duplicate_signups` hold no personal data by design. The audit records keep
//! the registration by id and 受付番号 only (pseudonymous once the registration is gone), with the
//! operator's reason (a reason code and a note checked for personal data) and the counts.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::actor::{AdminUser, Role};
use super::error::{AdminError, parse_form};
use super::layout::{Layout, Section};
use super::session::AdminSession;
use crate::db::Db;
use crate::http::error::render;
use crate::state::AppState;
use crate::values::jst;
use crate::{insert_audit, with_pool};

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/registrations/{id}/delete", get(show).post(delete))
}

/// Longest reason kept, in characters.
const MAX_REASON: usize = 500;

#[derive(sqlx::FromRow)]
pub struct Registrant {
    pub id: i64,
    pub registration_number: String,
    pub email: String,
    pub family_name: String,
    pub given_name: String,
    pub plan_id: String,
    pub created_at: OffsetDateTime,
}

async fn registrant(db: &Db, id: i64) -> Result<Option<Registrant>, sqlx::Error> {
    with_pool!(db, |pool| {
        sqlx::query_as("SELECT id, registration_number, email, family_name, given_name, plan_id, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// Rows holding the registrant's data, per table (what the confirmation page shows and the
/// deletion removes).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub users: u64,
    pub user_sessions: u64,
    pub api_idempotency: u64,
    pub manual_reviews: u64,
    pub outbox: u64,
    pub mail_throttle: u64,
    /// Audit records whose comments were blanked.
    pub audit_comments: u64,
}

async fn count(db: &Db, r: &Registrant) -> Result<Counts, sqlx::Error> {
    // `user_data` is JSON text on SQLite.
    let is_pg = matches!(db, Db::Postgres(_));
    with_pool!(db, |pool| {
        let one = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).bind(r.id).bind(&r.registration_number).bind(&r.email);
        let (flows_sql, idem_sql) = if is_pg {
            (
                "SELECT COUNT(*) FROM user_sessions WHERE user_id = $1 OR registration_number = $2 OR user_data->>'email' = $3",
                "SELECT COUNT(*) FROM api_idempotency WHERE flow_id IN (SELECT id FROM user_sessions \
                 WHERE user_id = $1 OR registration_number = $2 OR user_data->>'email' = $3)",
            )
        } else {
            (
                "SELECT COUNT(*) FROM user_sessions WHERE user_id = $1 OR registration_number = $2 \
                 OR json_extract(user_data, '$.email') = $3",
                "SELECT COUNT(*) FROM api_idempotency WHERE flow_id IN (SELECT id FROM user_sessions \
                 WHERE user_id = $1 OR registration_number = $2 OR json_extract(user_data, '$.email') = $3)",
            )
        };
        let user_sessions = one(flows_sql).fetch_one(pool).await?;
        let api_idempotency = one(idem_sql).fetch_one(pool).await?;
        let manual_reviews: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM manual_reviews WHERE user_id = $1").bind(r.id).fetch_one(pool).await?;
        let outbox: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE lower(recipient) = $1").bind(&r.email).fetch_one(pool).await?;
        let mail_throttle: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM mail_throttle WHERE email = $1").bind(&r.email).fetch_one(pool).await?;
        let audit_comments: i64 =
            sqlx::query_scalar(if is_pg { AUDIT_COMMENTS_PG } else { AUDIT_COMMENTS_SQLITE }).bind(r.id).fetch_one(pool).await?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Counts {
            users: 1,
            user_sessions: n(user_sessions),
            api_idempotency: n(api_idempotency),
            manual_reviews: n(manual_reviews),
            outbox: n(outbox),
            mail_throttle: n(mail_throttle),
            audit_comments: n(audit_comments),
        })
    })
}

/// Audit records about the registration that carry a comment.
const AUDIT_COMMENTS_PG: &str = "SELECT COUNT(*) FROM audit_log WHERE detail->>'user_id' = $1::text AND COALESCE(detail->>'comment', '') NOT IN ('', '[削除依頼により削除]')";
const AUDIT_COMMENTS_SQLITE: &str = "SELECT COUNT(*) FROM audit_log WHERE json_extract(detail, '$.user_id') = $1 \
     AND COALESCE(json_extract(detail, '$.comment'), '') NOT IN ('', '[削除依頼により削除]')";

/// Deletes the registrant's personal data in one transaction and records the audit row. `None`
/// when the registration (with this id and 受付番号) no longer exists.
pub async fn delete_registrant(db: &Db, actor: &AdminUser, r: &Registrant, reason: &str) -> anyhow::Result<Option<Counts>> {
    let is_pg = matches!(db, Db::Postgres(_));
    let now = OffsetDateTime::now_utc();
    let counts = with_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        let (idem_sql, flows_sql) = if is_pg {
            (
                "DELETE FROM api_idempotency WHERE flow_id IN (SELECT id FROM user_sessions \
                 WHERE user_id = $1 OR registration_number = $2 OR user_data->>'email' = $3)",
                "DELETE FROM user_sessions WHERE user_id = $1 OR registration_number = $2 OR user_data->>'email' = $3",
            )
        } else {
            (
                "DELETE FROM api_idempotency WHERE flow_id IN (SELECT id FROM user_sessions \
                 WHERE user_id = $1 OR registration_number = $2 OR json_extract(user_data, '$.email') = $3)",
                "DELETE FROM user_sessions WHERE user_id = $1 OR registration_number = $2 OR json_extract(user_data, '$.email') = $3",
            )
        };
        // Writes only, from the first statement on: the transaction holds the write lock
        // (SQLite) from the start and never has to upgrade a read.
        let api_idempotency =
            sqlx::query(idem_sql).bind(r.id).bind(&r.registration_number).bind(&r.email).execute(&mut *tx).await?.rows_affected();
        let user_sessions =
            sqlx::query(flows_sql).bind(r.id).bind(&r.registration_number).bind(&r.email).execute(&mut *tx).await?.rows_affected();
        let manual_reviews =
            sqlx::query("DELETE FROM manual_reviews WHERE user_id = $1").bind(r.id).execute(&mut *tx).await?.rows_affected();
        let outbox = sqlx::query("DELETE FROM outbox WHERE lower(recipient) = $1").bind(&r.email).execute(&mut *tx).await?.rows_affected();
        let mail_throttle =
            sqlx::query("DELETE FROM mail_throttle WHERE email = $1").bind(&r.email).execute(&mut *tx).await?.rows_affected();
        let blank = if is_pg {
            "UPDATE audit_log SET detail = jsonb_set(detail, '{comment}', '\"[削除依頼により削除]\"') \
             WHERE detail->>'user_id' = $1::text AND COALESCE(detail->>'comment', '') NOT IN ('', '[削除依頼により削除]')"
        } else {
            "UPDATE audit_log SET detail = json_set(detail, '$.comment', '[削除依頼により削除]') \
             WHERE json_extract(detail, '$.user_id') = $1 AND COALESCE(json_extract(detail, '$.comment'), '') NOT IN ('', '[削除依頼により削除]')"
        };
        let audit_comments = sqlx::query(blank).bind(r.id).execute(&mut *tx).await?.rows_affected();
        let users = sqlx::query("DELETE FROM users WHERE id = $1 AND registration_number = $2")
            .bind(r.id)
            .bind(&r.registration_number)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if users == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let counts = Counts { users, user_sessions, api_idempotency, manual_reviews, outbox, mail_throttle, audit_comments };
        // No personal data: the registration's id and 受付番号, the operator's reason, counts.
        let detail = json!({
            "user_id": r.id,
            "registration_number": r.registration_number,
            "reason": reason,
            "deleted": counts,
            "deleted_at": now.unix_timestamp(),
        });
        insert_audit!(&mut *tx, Some(actor), "registration.delete", &format!("user:{}", r.id), &detail).await?;
        tx.commit().await?;
        Ok::<_, anyhow::Error>(Some(counts))
    })?;
    Ok(counts)
}

#[derive(Template)]
#[template(path = "admin/delete.html")]
struct ConfirmPage {
    layout: Layout,
    id: i64,
    registration_number: String,
    name: String,
    email: String,
    plan: String,
    created_at: String,
    counts: Counts,
    errors: Vec<&'static str>,
    reason: String,
}

fn parse_id(raw: &str) -> Result<i64, AdminError> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or(AdminError::NotFound)
}

async fn confirm_page(
    state: &AppState,
    session: &AdminSession,
    r: &Registrant,
    status: StatusCode,
    errors: Vec<&'static str>,
    reason: &str,
) -> Result<Response, AdminError> {
    let counts = count(state.fresh_reads(), r).await?;
    let page = ConfirmPage {
        layout: Layout::new(session, Section::Registrations),
        id: r.id,
        registration_number: r.registration_number.clone(),
        name: format!("{} {}", r.family_name, r.given_name),
        email: r.email.clone(),
        plan: state.catalog.plan_name(&r.plan_id).to_string(),
        created_at: jst::date_time_minutes(r.created_at),
        counts,
        errors,
        reason: reason.to_string(),
    };
    Ok(render(status, &page))
}

async fn show(State(state): State<AppState>, session: AdminSession, Path(id): Path<String>) -> Result<Response, AdminError> {
    let id = parse_id(&id)?;
    let r = registrant(state.fresh_reads(), id).await?.ok_or(AdminError::NotFound)?;
    confirm_page(&state, &session, &r, StatusCode::OK, Vec::new(), "").await
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    confirm_number: String,
    #[serde(default)]
    reason: String,
}

/// The typed 受付番号 as people type it: spaces, lower case and full-width characters allowed.
fn normalise_number(raw: &str) -> String {
    raw.chars()
        .filter_map(|c| {
            let c = match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                'ー' | '―' | '‐' => '-',
                c => c,
            };
            (!c.is_whitespace()).then(|| c.to_ascii_uppercase())
        })
        .collect()
}

async fn delete(
    State(state): State<AppState>,
    session: AdminSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let form: DeleteForm = parse_form(&body)?;
    session.check_csrf(&state, &headers, &form.csrf_token)?;
    session.require(Role::Operator)?;
    let id = parse_id(&id)?;
    let r = registrant(state.fresh_reads(), id).await?.ok_or(AdminError::NotFound)?;
    let reason = form.reason.trim();
    let mut errors = Vec::new();
    if normalise_number(&form.confirm_number) != r.registration_number {
        errors.push("確認のため、削除する登録の受付番号を正しく入力してください。");
    }
    if reason.is_empty() {
        errors.push("削除の理由（問い合わせ番号など）を入力してください。");
    } else if reason.chars().count() > MAX_REASON {
        errors.push("削除の理由は500文字以内で入力してください。");
    }
    if !errors.is_empty() {
        return confirm_page(&state, &session, &r, StatusCode::BAD_REQUEST, errors, reason).await;
    }
    match delete_registrant(&state.db, &session.user, &r, reason).await? {
        Some(counts) => {
            tracing::info!(
                event = "registration_deleted",
                user_id = r.id,
                admin_id = session.user.id,
                flows = counts.user_sessions,
                mails = counts.outbox,
                "registrant's personal data deleted on request"
            );
            Ok(Redirect::to("/admin/registrations?deleted=1").into_response())
        }
        None => Err(AdminError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_numbers_are_normalised() {
        assert_eq!(normalise_number(" abcd-2345-wxyz "), "ABCD-2345-WXYZ");
        assert_eq!(normalise_number("ＡＢＣＤ－２３４５ーＷＸＹＺ"), "ABCD-2345-WXYZ");
        assert_eq!(normalise_number("ABCD 2345"), "ABCD2345");
    }
}
