//! 外部API切替 (`/admin/switches`): an operator forces an external API's fallback on or off
//! (DESIGN.md §3), with a reason. The switch lives in `api_switches`, written in one transaction
//! with its audit record; every instance reads the table every `API_SWITCH_POLL_MS` and sets its
//! guards to `FORCE_FALLBACK_{NAME} || switch`, so the environment variable forces the fallback on
//! whatever the table says.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::actor::Role;
use super::badges::{circuit_label, health_label};
use super::error::{AdminError, parse_form};
use super::layout::{Layout, Section};
use super::session::AdminSession;
use crate::apis::Apis;
use crate::config::{ApiConfig, Config};
use crate::db::Db;
use crate::external::ApiName;
use crate::http::error::render;
use crate::state::AppState;
use crate::values::jst;
use crate::{insert_audit, with_pool};

/// The longest reason kept with a switch.
const MAX_REASON_CHARS: usize = 500;

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/switches", get(show).post(change))
}

/// The order the screen lists the APIs in.
const ORDER: [ApiName; 3] = [ApiName::Address, ApiName::Inventory, ApiName::Region];

#[derive(sqlx::FromRow, Clone)]
pub struct SwitchRow {
    pub api: String,
    pub forced: bool,
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

/// Every stored switch, by API name.
pub async fn load(db: &Db) -> Result<HashMap<String, SwitchRow>, sqlx::Error> {
    let rows: Vec<SwitchRow> =
        with_pool!(db, |pool| sqlx::query_as("SELECT api, forced, updated_at, updated_by FROM api_switches").fetch_all(pool).await)?;
    Ok(rows.into_iter().map(|row| (row.api.clone(), row)).collect())
}

fn api_config(config: &Config, api: ApiName) -> &ApiConfig {
    match api {
        ApiName::Address => &config.external.address,
        ApiName::Inventory => &config.external.inventory,
        ApiName::Region => &config.external.region,
    }
}

fn guard(apis: &Apis, api: ApiName) -> &crate::external::Guard {
    match api {
        ApiName::Address => &apis.address.guard,
        ApiName::Inventory => &apis.inventory.guard,
        ApiName::Region => &apis.region.guard,
    }
}

/// Sets this instance's guards from the stored switches: forced when the environment or the
/// table says so.
pub fn apply(state: &AppState, switches: &HashMap<String, SwitchRow>) {
    for api in ApiName::ALL {
        let env_forced = api_config(&state.config, api).force_fallback;
        let db_forced = switches.get(api.as_str()).is_some_and(|s| s.forced);
        let forced = env_forced || db_forced;
        let guard = guard(&state.apis, api);
        if guard.forced() != forced {
            guard.set_forced(forced);
            tracing::info!(event = "api_switch_applied", api = api.as_str(), forced, env_forced, "external API fallback switch applied");
        }
    }
}

/// Every instance runs this: reads the switches every `API_SWITCH_POLL_MS` (the first time at
/// once) and applies them. A failed read keeps the current state.
pub async fn poll(state: AppState) {
    let mut every = tokio::time::interval(state.config.external.switch_poll_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match load(state.fresh_reads()).await {
            Ok(switches) => apply(&state, &switches),
            Err(err) => tracing::warn!(event = "api_switch_poll_failed", error = %err, "could not read the external API switches"),
        }
    }
}

struct ApiView {
    name: &'static str,
    provider: &'static str,
    health: &'static str,
    health_class: &'static str,
    circuit: &'static str,
    circuit_class: &'static str,
    env_forced: bool,
    db_forced: bool,
    /// Whether this instance's guard is forced now.
    effective: bool,
    updated: String,
}

fn provider_label(provider: &str) -> &'static str {
    if provider == "http" { "外部API（HTTP）" } else { "内蔵データ" }
}

#[derive(Template)]
#[template(path = "admin/switches.html")]
struct SwitchesPage {
    layout: Layout,
    apis: Vec<ApiView>,
    saved: Option<&'static str>,
    error: Option<&'static str>,
    error_api: &'static str,
    poll_seconds: String,
}

async fn page(
    state: &AppState,
    session: &AdminSession,
    saved: Option<&'static str>,
    error: Option<(&'static str, &'static str)>,
) -> Result<SwitchesPage, AdminError> {
    let switches = load(state.fresh_reads()).await?;
    let statuses = state.apis.statuses(&state.config);
    let apis = ORDER
        .into_iter()
        .map(|api| {
            let status = statuses.iter().find(|s| s.api == api);
            let (health, health_class) = status.map_or(("不明", "warn"), |s| health_label(s.status));
            let (circuit, circuit_class) = circuit_label(status.map_or("closed", |s| s.circuit));
            let row = switches.get(api.as_str());
            ApiView {
                name: api.as_str(),
                provider: provider_label(status.map_or("embedded", |s| s.provider)),
                health,
                health_class,
                circuit,
                circuit_class,
                env_forced: api_config(&state.config, api).force_fallback,
                db_forced: row.is_some_and(|r| r.forced),
                effective: guard(&state.apis, api).forced(),
                updated: row.map(|r| format!("{}（{}）", jst::date_time(r.updated_at), r.updated_by)).unwrap_or_default(),
            }
        })
        .collect();
    let poll_seconds = state.config.external.switch_poll_interval.as_secs_f64().ceil().max(1.0);
    Ok(SwitchesPage {
        layout: Layout::new(session, Section::Switches),
        apis,
        saved,
        error: error.map(|(_, message)| message),
        error_api: error.map_or("", |(api, _)| api),
        poll_seconds: format!("{poll_seconds:.0}"),
    })
}

fn api_by_name(name: &str) -> Option<ApiName> {
    ApiName::ALL.into_iter().find(|api| api.as_str() == name)
}

#[derive(Deserialize)]
struct ShowQuery {
    saved: Option<String>,
}

async fn show(State(state): State<AppState>, session: AdminSession, RawQuery(query): RawQuery) -> Result<Response, AdminError> {
    let query: ShowQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or("")).map_err(|_| AdminError::BadForm)?;
    let saved = query.saved.as_deref().and_then(api_by_name).map(ApiName::as_str);
    Ok(render(StatusCode::OK, &page(&state, &session, saved, None).await?))
}

#[derive(Deserialize)]
struct SwitchForm {
    /// Missing is refused by the CSRF check (403), like a wrong one.
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    api: String,
    #[serde(default)]
    forced: String,
    #[serde(default)]
    reason: String,
}

async fn change(State(state): State<AppState>, session: AdminSession, headers: HeaderMap, body: Bytes) -> Result<Response, AdminError> {
    let form: SwitchForm = parse_form(&body)?;
    session.check_csrf(&state, &headers, &form.csrf_token)?;
    session.require(Role::Operator)?;
    let api = api_by_name(&form.api).ok_or(AdminError::BadForm)?;
    let forced = match form.forced.as_str() {
        "on" => true,
        "off" => false,
        _ => return Err(AdminError::BadForm),
    };
    let reason = form.reason.trim();
    let problem = if reason.is_empty() {
        Some("切替の理由を入力してください。")
    } else if reason.chars().count() > MAX_REASON_CHARS {
        Some("切替の理由は500文字以内で入力してください。")
    } else {
        None
    };
    if let Some(message) = problem {
        let page = page(&state, &session, None, Some((api.as_str(), message))).await?;
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let now = OffsetDateTime::now_utc();
    let user = &session.user;
    let detail = json!({ "reason": reason });
    with_pool!(&state.db, |pool| async {
        let mut tx = pool.begin().await?;
        let before: Option<bool> =
            sqlx::query_scalar("SELECT forced FROM api_switches WHERE api = $1").bind(api.as_str()).fetch_optional(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO api_switches (api, forced, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (api) DO UPDATE SET forced = excluded.forced, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(api.as_str())
        .bind(forced)
        .bind(now)
        .bind(&user.email)
        .execute(&mut *tx)
        .await?;
        let mut detail = detail.clone();
        detail["before"] = json!({ "forced": before.unwrap_or(false) });
        detail["after"] = json!({ "forced": forced });
        insert_audit!(&mut *tx, Some(user), "api_switch.set", &format!("api:{}", api.as_str()), &detail).await?;
        tx.commit().await
    }
    .await)?;
    tracing::info!(event = "api_switch_changed", api = api.as_str(), forced, actor = %user.email, "operator changed an external API switch");
    // This instance at once; the others at their next poll.
    if let Ok(switches) = load(&state.db).await {
        apply(&state, &switches);
    }
    Ok(Redirect::to(&format!("/admin/switches?saved={}", api.as_str())).into_response())
}
