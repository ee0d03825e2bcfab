//! One registration (`GET /admin/registrations/{id}`): every field but the password hash, its
//! reviews and its flows.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use sqlx::types::Json;
use time::OffsetDateTime;

use super::query::{LIST_COLUMNS, ListRow};
use crate::admin::error::AdminError;
use crate::admin::layout::{Layout, Section};
use crate::admin::session::AdminSession;
use crate::http::error::render;
use crate::state::AppState;
use crate::values::fields;
use crate::values::jst;
use crate::with_pool;

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
        jst::date_time(self.created_at)
    }

    fn decided_label(&self) -> String {
        self.decided_at.map(jst::date_time).unwrap_or_default()
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
        jst::date_time(self.created_at)
    }

    fn updated_label(&self) -> String {
        jst::date_time(self.updated_at)
    }

    fn completed_label(&self) -> String {
        self.completed_at.map(jst::date_time).unwrap_or_default()
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
            Some(at) => format!("確認済み（{}）", jst::date_time(at)),
            None => "未確認".to_string(),
        }
    }
}

pub(super) async fn detail(session: AdminSession, State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AdminError> {
    let id: i64 = id.parse().map_err(|_| AdminError::NotFound)?;
    let sql = format!("SELECT {LIST_COLUMNS} FROM users WHERE id = $1");
    let user: Option<ListRow> =
        with_pool!(state.reads(), |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(pool).await)?;
    let user = user.ok_or(AdminError::NotFound)?;
    let reviews: Vec<ReviewRow> = with_pool!(state.reads(), |pool| {
        sqlx::query_as(
            "SELECT kind, reason, status, created_at, decided_at, decided_by, comment FROM manual_reviews WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(id)
        .fetch_all(pool)
        .await
    })?;
    let flows: Vec<FlowRow> = with_pool!(state.reads(), |pool| {
        sqlx::query_as(
            "SELECT id, status, created_at, updated_at, completed_at, user_data AS steps FROM user_sessions WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(id)
        .fetch_all(pool)
        .await
    })?;
    let plan_name = state.catalog.plan_name(&user.plan_id).to_string();
    let page = DetailPage { layout: Layout::new(&session, Section::Registrations), user, plan_name, reviews, flows };
    Ok(render(StatusCode::OK, &page))
}
