//! Deciding a review (`POST /admin/reviews/{id}/decision`): one transaction for the review, the
//! registrant's status, the stock, the result mail and the audit row.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::detail::{detail_page, parse_id};
use crate::admin::actor::{AdminUser, Role};
use crate::admin::error::{AdminError, parse_form};
use crate::admin::reason::{self, Entered, REVIEW};
use crate::admin::session::AdminSession;
use crate::inventory::{Reservation, StockSlots};
use crate::mail::{self, OutgoingMail};
use crate::state::AppState;
use crate::{insert_audit, insert_outbox, with_pool};

#[derive(Deserialize)]
struct DecisionForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason_code: String,
    /// The short note beside the reason code (the field kept its old name).
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

pub(super) async fn decide(
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
    let entered = Entered { code: &form.reason_code, note: &form.comment };
    let decision = match form.decision.as_str() {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        _ => {
            let message = "「承認する」または「却下する」を選んでください。".to_string();
            return detail_page(&state, &session, id, StatusCode::BAD_REQUEST, Some(message), entered, None).await;
        }
    };
    let missing = (decision == Decision::Reject).then_some("却下する場合は、理由を選ぶか、メモに入力してください。");
    let values = match review_user(&state, id).await? {
        Some(user_id) => reason::registrant_values(state.fresh_reads(), user_id).await?,
        None => return Err(AdminError::NotFound),
    };
    let reason = match reason::check(REVIEW, entered, missing, &values) {
        Ok(reason) => reason,
        Err(message) => return detail_page(&state, &session, id, StatusCode::BAD_REQUEST, Some(message), entered, None).await,
    };
    let comment = reason.as_ref().map(|r| r.text(REVIEW)).unwrap_or_default();
    let code = reason.as_ref().map(|r| r.code);
    match apply_decision(&state, &session.user, id, decision, code, &comment).await? {
        Ok(()) => Ok(Redirect::to(&format!("/admin/reviews/{id}?done={}", decision.status())).into_response()),
        Err(Refusal::NotFound) => Err(AdminError::NotFound),
        Err(refusal) => {
            tracing::info!(event = "review_decision_refused", review_id = id, admin_id = session.user.id, refusal = ?refusal);
            let entered = if refusal == Refusal::AlreadyDecided { Entered::default() } else { entered };
            detail_page(&state, &session, id, StatusCode::CONFLICT, Some(refusal.message().to_string()), entered, None).await
        }
    }
}

/// The registration a review is about (for the personal-data check of the note).
async fn review_user(state: &AppState, review_id: i64) -> Result<Option<i64>, sqlx::Error> {
    with_pool!(state.fresh_reads(), |pool| sqlx::query_scalar("SELECT user_id FROM manual_reviews WHERE id = $1")
        .bind(review_id)
        .fetch_optional(pool)
        .await)
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
    reason_code: Option<&str>,
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
                    if !StockSlots::reserve_unit(&mut *tx, &subject.plan_id, now).await? {
                        tx.rollback().await?;
                        return Ok(Err(Refusal::OutOfStock));
                    }
                    let left = StockSlots::units_left(&mut *tx, &subject.plan_id).await?.unwrap_or(0);
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
        let plan = state.catalog.plan_name(&subject.plan_id).to_string();
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
            "reason_code": reason_code,
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
