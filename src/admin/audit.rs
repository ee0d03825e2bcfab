//! The audit log: every decision, export, deletion and switch an admin makes — who, when, what,
//! and the state before and after. Details never hold a registrant's personal data.

use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;

use super::actor::AdminUser;
use crate::db::Db;
use crate::with_pool;

/// Inserts one audit record through any executor (a pool or a transaction), so a decision and
/// its record commit together.
#[macro_export]
macro_rules! insert_audit {
    ($executor:expr, $actor:expr, $action:expr, $target:expr, $detail:expr) => {{
        let actor: Option<&$crate::admin::actor::AdminUser> = $actor;
        sqlx::query("INSERT INTO audit_log (admin_id, actor, action, target, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(actor.map(|a| a.id))
            .bind(actor.map_or("cli", |a| a.email.as_str()))
            .bind($action)
            .bind($target)
            .bind(sqlx::types::Json($detail))
            .bind(time::OffsetDateTime::now_utc())
            .execute($executor)
    }};
}

/// Records an action on its own (when nothing else is written with it).
pub async fn record(db: &Db, actor: Option<&AdminUser>, action: &str, target: &str, detail: Value) -> Result<(), sqlx::Error> {
    with_pool!(db, |pool| insert_audit!(pool, actor, action, target, &detail).await.map(|_| ()))
}

#[derive(sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Json<Value>,
    pub created_at: OffsetDateTime,
}

/// The newest records first, `limit` at a time, older than `before_id` when given.
pub async fn recent(db: &Db, before_id: Option<i64>, limit: i64) -> Result<Vec<AuditRow>, sqlx::Error> {
    with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT id, actor, action, target, detail, created_at FROM audit_log WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(before_id)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}
