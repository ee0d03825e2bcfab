//! A visitor's registration flow: one `user_sessions` row, found by the SHA-256 of the opaque
//! token in the visitor's cookie. Everything entered lives in `user_data`, so any instance can
//! serve any step and nothing is lost on restart. The password is never in `user_data`; only its
//! Argon2id hash, in its own column.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::crypto::{random_token, token_hash};
use crate::db::Db;
use crate::values::form::Step;
use crate::with_pool;

/// The values entered so far, by field name, as shown back to the person (normalised where they
/// were valid). Stored flat in `user_data`, so `user_data->>'email'` — the key the runbook's
/// completion-rate SQL joins on — is the normalised address.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FlowData {
    #[serde(flatten)]
    values: BTreeMap<String, String>,
    /// Steps whose values passed every rule when last saved.
    pub customer_done: bool,
    pub address_done: bool,
    pub plan_done: bool,
}

impl FlowData {
    pub fn get(&self, field: &str) -> &str {
        self.values.get(field).map(String::as_str).unwrap_or_default()
    }

    pub fn set(&mut self, field: &str, value: String) {
        self.values.insert(field.to_string(), value);
    }

    /// The first step whose values are not yet complete, if it comes before `step`.
    pub fn incomplete_step_before(&self, step: Step) -> Option<Step> {
        let done = [self.customer_done, self.address_done, self.plan_done];
        Step::ALL.into_iter().zip(done).take(step.number() - 1).find(|(_, done)| !done).map(|(s, _)| s)
    }

    /// The furthest step these values let the person reach (1 お客様情報 … 4 確認): one past the
    /// leading run of completed steps. Kept in `user_sessions.furthest_step` for the funnel.
    pub fn reached_step(&self) -> i16 {
        let done = [self.customer_done, self.address_done, self.plan_done];
        1 + done.iter().take_while(|d| **d).count() as i16
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowStatus {
    Active,
    Completed,
    Expired,
}

#[derive(Clone, Debug)]
pub struct Flow {
    pub id: i64,
    pub csrf_token: String,
    pub data: FlowData,
    pub has_password: bool,
    pub status: FlowStatus,
    pub registration_number: Option<String>,
    pub updated_at: OffsetDateTime,
}

/// The columns `FlowRow` reads, as a literal so queries stay `&'static str`.
macro_rules! flow_columns {
    () => {
        "id, csrf_token, user_data, password_hash IS NOT NULL AS has_password, status, registration_number, updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct FlowRow {
    id: i64,
    csrf_token: String,
    user_data: Json<FlowData>,
    has_password: bool,
    status: String,
    registration_number: Option<String>,
    updated_at: OffsetDateTime,
}

impl From<FlowRow> for Flow {
    fn from(row: FlowRow) -> Flow {
        Flow {
            id: row.id,
            csrf_token: row.csrf_token,
            data: row.user_data.0,
            has_password: row.has_password,
            status: match row.status.as_str() {
                "completed" => FlowStatus::Completed,
                "expired" => FlowStatus::Expired,
                _ => FlowStatus::Active,
            },
            registration_number: row.registration_number,
            updated_at: row.updated_at,
        }
    }
}

impl Flow {
    /// A flow that has no row (yet): empty, active, with this CSRF token.
    pub fn unstored(id: i64, csrf_token: String) -> Flow {
        Flow {
            id,
            csrf_token,
            data: FlowData::default(),
            has_password: false,
            status: FlowStatus::Active,
            registration_number: None,
            updated_at: OffsetDateTime::now_utc(),
        }
    }

    /// Marked expired, or active but untouched for longer than `idle_timeout`.
    pub fn is_expired(&self, idle_timeout: std::time::Duration) -> bool {
        let idle = OffsetDateTime::now_utc() - self.updated_at;
        self.status == FlowStatus::Expired || (self.status == FlowStatus::Active && idle > idle_timeout)
    }
}

/// Starts a flow. Returns it with the cookie token, which is never stored.
pub async fn create(db: &Db, data: &FlowData, password_hash: Option<&str>) -> Result<(Flow, String), sqlx::Error> {
    let token = random_token(32);
    let csrf_token = random_token(32);
    let now = OffsetDateTime::now_utc();
    let sql = concat!(
        "INSERT INTO user_sessions (token_hash, csrf_token, user_data, password_hash, created_at, updated_at, furthest_step) \
         VALUES ($1, $2, $3, $4, $5, $5, $6) RETURNING ",
        flow_columns!()
    );
    let row: FlowRow = with_pool!(db, |pool| {
        sqlx::query_as(sql)
            .bind(token_hash(&token))
            .bind(&csrf_token)
            .bind(Json(data))
            .bind(password_hash)
            .bind(now)
            .bind(data.reached_step())
            .fetch_one(pool)
            .await
    })?;
    Ok((row.into(), token))
}

pub async fn find_by_token(db: &Db, token: &str) -> Result<Option<Flow>, sqlx::Error> {
    let sql = concat!("SELECT ", flow_columns!(), " FROM user_sessions WHERE token_hash = $1");
    let row: Option<FlowRow> = with_pool!(db, |pool| sqlx::query_as(sql).bind(token_hash(token)).fetch_optional(pool).await)?;
    Ok(row.map(Flow::from))
}

/// Saves the entered values (and a new password hash, when one was entered) of an active flow,
/// raising (never lowering) the furthest step it has reached.
pub async fn save(db: &Db, id: i64, data: &FlowData, new_password_hash: Option<&str>) -> Result<(), sqlx::Error> {
    let now = OffsetDateTime::now_utc();
    with_pool!(db, |pool| {
        sqlx::query(
            "UPDATE user_sessions SET user_data = $1, password_hash = COALESCE($2, password_hash), updated_at = $3, \
             furthest_step = CASE WHEN furthest_step < $5 THEN $5 ELSE furthest_step END \
             WHERE id = $4 AND status = 'active'",
        )
        .bind(Json(data))
        .bind(new_password_hash)
        .bind(now)
        .bind(id)
        .bind(data.reached_step())
        .execute(pool)
        .await
        .map(|_| ())
    })
}

/// Marks an idle flow expired and starts a new one carrying the same values (and password hash),
/// so the person continues where they were.
pub async fn restart_expired(db: &Db, old: &Flow) -> Result<(Flow, String), sqlx::Error> {
    let password_hash: Option<String> = with_pool!(db, |pool| {
        sqlx::query_scalar("UPDATE user_sessions SET status = 'expired' WHERE id = $1 RETURNING password_hash")
            .bind(old.id)
            .fetch_optional(pool)
            .await
    })?
    .flatten();
    create(db, &old.data, password_hash.as_deref()).await
}

pub async fn password_hash(db: &Db, id: i64) -> Result<Option<String>, sqlx::Error> {
    with_pool!(db, |pool| {
        sqlx::query_scalar::<_, Option<String>>("SELECT password_hash FROM user_sessions WHERE id = $1").bind(id).fetch_optional(pool).await
    })
    .map(Option::flatten)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reached_step_follows_the_leading_completed_steps() {
        let mut data = FlowData::default();
        assert_eq!(data.reached_step(), 1);
        data.customer_done = true;
        assert_eq!(data.reached_step(), 2);
        data.plan_done = true;
        assert_eq!(data.reached_step(), 2, "a later step does not count past an incomplete one");
        data.address_done = true;
        assert_eq!(data.reached_step(), 4);
    }
}
