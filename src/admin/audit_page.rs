//! 監査ログ (`GET /admin/audit`): newest first, 50 at a time, paged by keyset (`?before=ID`, the
//! smallest id of the previous page) so every page is an index range read however long the log.
//! Viewers may read it.

use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;

use super::audit;
use super::error::AdminError;
use super::layout::{Layout, Section};
use super::session::AdminSession;
use crate::http::error::render;
use crate::state::AppState;
use crate::values::jst;

pub const PAGE_SIZE: i64 = 50;

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/audit", get(show))
}

/// The Japanese name of an action; unknown ones are shown as recorded.
pub fn action_label(action: &str) -> String {
    let known = match action {
        "admin.create" => Some("管理者アカウントの作成"),
        "admin.enrol_totp" => Some("二要素認証の登録"),
        "admin.reset_2fa" => Some("二要素認証のリセット"),
        "api_switch.set" => Some("外部API切替"),
        _ => None,
    };
    if let Some(label) = known {
        return label.to_string();
    }
    // Families of actions other screens record.
    let family = if action.starts_with("review.") {
        Some("手動確認の判定")
    } else if action.contains("export") {
        Some("CSVエクスポート")
    } else if action.contains("delet") {
        Some("個人情報の削除")
    } else {
        None
    };
    match family {
        Some(label) => format!("{label}（{action}）"),
        None => action.to_string(),
    }
}

/// The Japanese name of a detail key; unknown ones are shown as recorded.
fn detail_key_label(key: &str) -> String {
    match key {
        "reason" => "理由",
        "comment" => "コメント",
        "role" => "権限",
        "rows" => "件数",
        "registration_number" => "受付番号",
        "filters" => "条件",
        _ => key,
    }
    .to_string()
}

struct Entry {
    id: i64,
    at: String,
    actor: String,
    action: String,
    target: String,
    before: String,
    after: String,
    /// Everything else in the detail, as `key: value` lines.
    other: Vec<(String, String)>,
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn entry(row: audit::AuditRow) -> Entry {
    let mut before = String::new();
    let mut after = String::new();
    let mut other = Vec::new();
    match &row.detail.0 {
        Value::Object(map) => {
            for (key, value) in map {
                match key.as_str() {
                    "before" => before = compact(value),
                    "after" => after = compact(value),
                    _ => other.push((detail_key_label(key), compact(value))),
                }
            }
        }
        Value::Null => {}
        value => other.push((String::new(), compact(value))),
    }
    Entry {
        id: row.id,
        at: jst::date_time(row.created_at),
        actor: row.actor,
        action: action_label(&row.action),
        target: row.target,
        before,
        after,
        other,
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    layout: Layout,
    entries: Vec<Entry>,
    next_before: Option<i64>,
    first_page: bool,
}

#[derive(Deserialize)]
struct AuditQuery {
    before: Option<String>,
}

async fn show(State(state): State<AppState>, session: AdminSession, RawQuery(query): RawQuery) -> Result<Response, AdminError> {
    let query: AuditQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or("")).map_err(|_| AdminError::BadForm)?;
    let before = match query.before.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or(AdminError::BadForm)?),
    };
    let mut rows = audit::recent(state.reads(), before, PAGE_SIZE + 1).await?;
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let next_before = if more { rows.last().map(|r| r.id) } else { None };
    let page = AuditPage {
        layout: Layout::new(&session, Section::Audit),
        entries: rows.into_iter().map(entry).collect(),
        next_before,
        first_page: before.is_none(),
    };
    Ok(render(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_actions_have_japanese_labels() {
        assert_eq!(action_label("api_switch.set"), "外部API切替");
        assert_eq!(action_label("review.approve"), "手動確認の判定（review.approve）");
        assert_eq!(action_label("something.else"), "something.else");
    }
}
