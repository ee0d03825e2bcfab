//! The final submit: one transaction that claims the flow, creates the `users` row and records
//! the 受付番号. Idempotent and race-safe: a double click, a reloaded POST or two tabs find the
//! flow already claimed and get the same 受付番号; two flows with one email get one row, because
//! the unique index on the normalised email decides.

use time::OffsetDateTime;
use time::macros::format_description;

use super::flow::Flow;
use super::steps::{Rules, recheck};
use crate::db::is_unique_violation;
use crate::inventory::{Reservation, StockSlots};
use crate::mail;
use crate::region::RegionCheck;
use crate::state::AppState;
use crate::values::form::Step;
use crate::values::registration_number::new_registration_number;
use crate::with_pool;
use crate::{claim_mail_slot, insert_outbox};

pub enum Outcome {
    /// Registered now (`newly`), or earlier by this same flow, or — indistinguishable to the
    /// person — the email already belonged to a member and no row was created.
    Registered { number: String, newly: bool },
    /// A stored value no longer passes its rule; the person is sent back to this step.
    Revisit(Step),
    /// The plan ran out of stock meanwhile.
    SoldOut,
    /// The plan is not offered at the entered address.
    NotOffered,
}

pub async fn submit(state: &AppState, flow: &Flow, rules: &Rules<'_>) -> anyhow::Result<Outcome> {
    let apis = &state.apis;
    if let Err(step) = recheck(&flow.data, flow.has_password, rules) {
        return Ok(Outcome::Revisit(step));
    }
    let data = &flow.data;
    // Checked again now: the rules or the address may have changed since the plan step.
    let region_status = match apis.region.check(data.get("plan_id"), data.get("prefecture"), data.get("postal_code")).await {
        RegionCheck::Eligible => "eligible",
        RegionCheck::Ineligible(_) => return Ok(Outcome::NotOffered),
        RegionCheck::Unchecked => "unchecked",
    };
    // A clash of random 受付番号 is astronomically rare; the unique index catches it and we draw again.
    for _ in 0..3 {
        match claim_and_register(state, flow, region_status).await {
            Err(err) if is_unique_violation(&err) => continue,
            other => return Ok(other?),
        }
    }
    anyhow::bail!("could not draw an unused registration number")
}

async fn claim_and_register(state: &AppState, flow: &Flow, region_status: &str) -> Result<Outcome, sqlx::Error> {
    let (db, apis, config) = (&state.db, &state.apis, &state.config);
    let data = &flow.data;
    let number = new_registration_number();
    let now = OffsetDateTime::now_utc();
    // Both possible mails are rendered before the transaction, so rendering can never hold locks
    // and both outcomes cost the same (their timing must not tell them apart).
    let email = data.get("email");
    let plan_name = state.catalog.plan_name(data.get("plan_id"));
    let link = mail::verify_url(&config.public_base_url, config.secret_key.expose(), &number, email, now);
    let addressee = mail::Addressee {
        family_name: data.get("family_name"),
        given_name: data.get("given_name"),
        family_name_kana: data.get("family_name_kana"),
        given_name_kana: data.get("given_name_kana"),
        email,
    };
    let confirmation =
        mail::confirmation(&config.mail, &addressee, plan_name, &number, &link).map_err(|e| sqlx::Error::Encode(e.into()))?;
    let duplicate = mail::duplicate_notice(&config.mail, email, now).map_err(|e| sqlx::Error::Encode(e.into()))?;
    let birth_date = time::Date::parse(data.get("birth_date"), format_description!("[year]-[month]-[day]"))
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let plan_id = data.get("plan_id");
    with_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        // Claiming first matters: the UPDATE takes the row lock (PostgreSQL) or the write lock
        // (SQLite), so a concurrent submit of this flow waits here and then matches no row.
        let claimed: Option<Option<String>> = sqlx::query_scalar(
            "UPDATE user_sessions SET status = 'completed', completed_at = $1, updated_at = $1, registration_number = $2 \
             WHERE id = $3 AND status = 'active' RETURNING password_hash",
        )
        .bind(now)
        .bind(&number)
        .bind(flow.id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(Some(password_hash)) = claimed else {
            tx.rollback().await?;
            let earlier: Option<String> =
                sqlx::query_scalar("SELECT registration_number FROM user_sessions WHERE id = $1").bind(flow.id).fetch_one(pool).await?;
            return Ok(Outcome::Registered { number: earlier.ok_or(sqlx::Error::RowNotFound)?, newly: false });
        };
        let user_id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO users (registration_number, email, password_hash, family_name, given_name, family_name_kana, \
             given_name_kana, phone, birth_date, postal_code, prefecture, city, street, building, plan_id, created_at, region_status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (email) DO NOTHING RETURNING id",
        )
        .bind(&number)
        .bind(data.get("email"))
        .bind(&password_hash)
        .bind(data.get("family_name"))
        .bind(data.get("given_name"))
        .bind(data.get("family_name_kana"))
        .bind(data.get("given_name_kana"))
        .bind(data.get("phone"))
        .bind(birth_date)
        .bind(data.get("postal_code"))
        .bind(data.get("prefecture"))
        .bind(data.get("city"))
        .bind(data.get("street"))
        .bind(data.get("building"))
        .bind(plan_id)
        .bind(now)
        .bind(region_status)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user_id) = user_id else {
            // Already a member: no second row, and the person sees the same 完了 page. The owner
            // hears of it by mail, at most once an hour.
            tracing::info!(event = "registration_duplicate_email", flow_id = flow.id, "submitted email is already registered");
            if claim_mail_slot!(&mut *tx, "duplicate", email, now, time::Duration::hours(1)).await?.is_some() {
                insert_outbox!(&mut *tx, duplicate, now).await?;
            }
            // The same writes a new registration makes (a row, the stock row, the flow's link),
            // so the answer's timing does not tell a registered address from a new one.
            sqlx::query("INSERT INTO duplicate_signups (created_at) VALUES ($1)").bind(now).execute(&mut *tx).await?;
            StockSlots::touch_slot(&mut *tx, plan_id).await?;
            sqlx::query("UPDATE user_sessions SET user_id = NULL WHERE id = $1").bind(flow.id).execute(&mut *tx).await?;
            tx.commit().await?;
            return Ok(Outcome::Registered { number, newly: false });
        };
        match apis.inventory.reserve(plan_id, &number).await {
            Ok(Reservation::InDatabase) => {
                if !StockSlots::reserve_unit(&mut *tx, plan_id, now).await? {
                    tx.rollback().await?;
                    return Ok(Outcome::SoldOut);
                }
            }
            Ok(Reservation::Reserved) => {}
            Ok(Reservation::OutOfStock) => {
                tx.rollback().await?;
                return Ok(Outcome::SoldOut);
            }
            Err(err) => {
                // 管理者による手動確認: accepted now, an operator confirms the stock.
                sqlx::query("UPDATE users SET inventory_status = 'needs_check' WHERE id = $1").bind(user_id).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO manual_reviews (user_id, kind, reason, created_at) VALUES ($1, 'inventory', $2, $3)")
                    .bind(user_id)
                    .bind(format!("在庫APIで確認できませんでした（{err}）"))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query("UPDATE user_sessions SET user_id = $1 WHERE id = $2").bind(user_id).bind(flow.id).execute(&mut *tx).await?;
        insert_outbox!(&mut *tx, confirmation, now).await?;
        tx.commit().await?;
        Ok(Outcome::Registered { number, newly: true })
    })
}
