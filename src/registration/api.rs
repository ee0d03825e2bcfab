//! The registration flow as a JSON API (`/api/v1/flows…`), for single-page and mobile front ends.
//! It calls the same service as the HTML form — the same rules, normalisation, flow state,
//! idempotent submit, fallbacks and metrics — and answers errors as RFC 9457 problem details.
//!
//! Browser clients use the flow cookie and send the CSRF token in `X-CSRF-Token`; native clients
//! send the flow token as `Authorization: Bearer …` and need no CSRF token.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::flow::{self, Flow, FlowData, FlowStatus};
use super::plans;
use super::service::{self, SendBack, Submitted};
use super::steps::{FIELDS, FieldError, Input, Kind, Step, fields_of};
use super::{Visit, csrf_ok, csrf_refused, flow_token};
use crate::crypto::{constant_time_eq, token_hash};
use crate::http::error::AppError;
use crate::http::problem::problem;
use crate::startup::AppState;
use crate::with_pool;

/// CORS for the API: off unless `CORS_ALLOWED_ORIGINS` lists origins; then only those, with
/// credentials (the flow cookie) and the headers the API reads.
pub fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, HeaderValue, Method};
    if origins.is_empty() {
        return None;
    }
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(allowed)
            .allow_methods([Method::GET, Method::POST, Method::PUT])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("x-csrf-token"),
                HeaderName::from_static("idempotency-key"),
            ])
            .allow_credentials(true)
            .max_age(std::time::Duration::from_secs(600)),
    )
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/flows", post(start))
        .route("/api/v1/flows/current", get(read))
        .route("/api/v1/flows/current/steps/{step}", put(save))
        .route("/api/v1/flows/current/plans", get(plan_list))
        .route("/api/v1/flows/current/submit", post(submit))
}

#[derive(Serialize)]
struct FieldView {
    name: &'static str,
    label: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    required: bool,
    max_length: u32,
    hint: &'static str,
    autocomplete: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<&'static str>,
}

#[derive(Serialize)]
struct StepView {
    id: &'static str,
    title: &'static str,
    complete: bool,
    fields: Vec<FieldView>,
}

fn done(step: Step, data: &FlowData) -> bool {
    match step {
        Step::Customer => data.customer_done,
        Step::Address => data.address_done,
        Step::Plan => data.plan_done,
        Step::Confirm => false,
    }
}

/// The flow as the client sees it: steps with their field definitions, current values (never
/// the password), and what to do next.
fn flow_view(flow: &Flow, token: Option<&str>) -> Value {
    let steps: Vec<StepView> = Step::ALL
        .iter()
        .map(|&step| StepView {
            id: step.slug(),
            title: step.title(),
            complete: done(step, &flow.data),
            fields: match step {
                Step::Plan => vec![FieldView {
                    name: "plan_id",
                    label: "プラン",
                    kind: "plan",
                    required: true,
                    max_length: 64,
                    hint: "GET /api/v1/flows/current/plans の id",
                    autocomplete: "off",
                    options: Vec::new(),
                }],
                Step::Confirm => vec![FieldView {
                    name: "agree",
                    label: "利用規約・個人情報の取扱いに同意する",
                    kind: "checkbox",
                    required: true,
                    max_length: 0,
                    hint: "",
                    autocomplete: "off",
                    options: Vec::new(),
                }],
                _ => fields_of(step)
                    .map(|f| FieldView {
                        name: f.name,
                        label: f.label,
                        kind: match f.kind {
                            Kind::Text => "text",
                            Kind::Password => "password",
                            Kind::Tel => "tel",
                            Kind::Date => "date",
                            Kind::Prefecture => "select",
                        },
                        required: f.required && !(f.kind == Kind::Password && flow.has_password),
                        max_length: f.max_chars,
                        hint: f.hint,
                        autocomplete: f.autocomplete,
                        options: if f.kind == Kind::Prefecture { super::fields::PREFECTURES.to_vec() } else { Vec::new() },
                    })
                    .collect(),
            },
        })
        .collect();
    let values: Map<String, Value> = FIELDS
        .iter()
        .filter(|f| f.kind != Kind::Password)
        .map(|f| f.name)
        .chain(["plan_id"])
        .map(|name| (name.to_string(), Value::from(flow.data.get(name))))
        .collect();
    let completed = flow.status == FlowStatus::Completed;
    let next = if completed { None } else { Some(Step::Confirm.blocked_by(&flow.data).unwrap_or(Step::Confirm).slug()) };
    let mut view = json!({
        // A stable, public name for the flow: derived from its random CSRF token, so it reveals
        // neither the bearer token nor how many flows there are.
        "flow_id": token_hash(&flow.csrf_token)[..16],
        "status": if completed { "completed" } else { "active" },
        "csrf_token": flow.csrf_token,
        "steps": steps,
        "values": values,
        "password_set": flow.has_password,
        "next_step": next,
        "registration_number": flow.registration_number,
    });
    if let Some(token) = token {
        view["token"] = Value::from(token);
    }
    view
}

fn unauthenticated() -> Response {
    problem(
        StatusCode::UNAUTHORIZED,
        "flow-required",
        "受付が見つかりません",
        "受付が見つからないか、有効期限が切れています。POST /api/v1/flows で新しく開始してください。",
    )
}

/// The flow a request is for: by bearer token (native clients), or by the cookie plus — for
/// anything that changes state — the CSRF header and our own origin (browser clients).
async fn authenticate(state: &AppState, headers: &HeaderMap, changes_state: bool) -> Result<Result<Flow, Response>, AppError> {
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    let (token, by_cookie) = match bearer {
        Some(token) => (Some(token.to_string()), false),
        None => (flow_token(headers, state.config.secure_cookies()), true),
    };
    let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= 128) else { return Ok(Err(unauthenticated())) };
    let Some(flow) = flow::find_by_token(&state.db, &token).await? else { return Ok(Err(unauthenticated())) };
    let idle = time::OffsetDateTime::now_utc() - flow.updated_at;
    if flow.status == FlowStatus::Expired || (flow.status == FlowStatus::Active && idle > state.config.flow_idle_timeout) {
        return Ok(Err(unauthenticated()));
    }
    if changes_state && by_cookie {
        let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !csrf_ok(state, headers, !sent.is_empty() && constant_time_eq(sent, &flow.csrf_token)) {
            csrf_refused("api");
            return Ok(Err(problem(
                StatusCode::FORBIDDEN,
                "csrf-token-invalid",
                "セキュリティ確認に失敗しました",
                "X-CSRF-Token ヘッダーに受付の csrf_token を付けて送信してください。",
            )));
        }
    }
    Ok(Ok(flow))
}

/// `POST /api/v1/flows`: starts a flow. Browser clients get the cookie; native clients keep the
/// returned `token` and send it as a bearer token.
async fn start(State(state): State<AppState>) -> Result<Response, AppError> {
    let (flow, token) = flow::create(&state.db, &FlowData::default(), None).await?;
    metrics::counter!("nfa_registration_flows_started_total").increment(1);
    let body = flow_view(&flow, Some(&token));
    let visit = Visit { flow, new_token: Some(token), replaced: None };
    Ok(visit.respond(&state, (StatusCode::CREATED, Json(body))))
}

async fn read(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    Ok(match authenticate(&state, &headers, false).await? {
        Ok(flow) => Json(flow_view(&flow, None)).into_response(),
        Err(refused) => refused,
    })
}

/// A stable code per failed field, for clients to branch on (the message is for the person).
fn error_code(error: &FieldError, input: &Input) -> &'static str {
    match error.field {
        "agree" => "consent_required",
        "plan_id" if !input.get("plan_id").is_empty() => "unavailable",
        field if input.get(field).is_empty() => "required",
        _ => "invalid",
    }
}

fn validation_problem(errors: &[FieldError], input: &Input) -> Response {
    let mut response = problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
        "入力内容をご確認ください",
        format!("{}件の項目に誤りがあります。", errors.len()),
    );
    let list: Vec<Value> = errors.iter().map(|e| json!({ "field": e.field, "code": error_code(e, input), "message": e.message })).collect();
    let body = json!({
        "type": "/api/v1/problems/validation-failed",
        "title": "入力内容をご確認ください",
        "status": 422,
        "detail": format!("{}件の項目に誤りがあります。", errors.len()),
        "errors": list,
    });
    *response.body_mut() = axum::body::Body::from(body.to_string());
    response
}

fn invalid_json() -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "invalid-json",
        "JSON の形式が正しくありません",
        "項目名と値（文字列）のオブジェクトを送信してください。",
    )
}

/// JSON object → the same sanitised input a form post becomes. Only strings, numbers and
/// booleans are values; anything else is a client error (`None`).
fn input_from_json(body: &Bytes) -> Option<Input> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else { return None };
    let mut pairs = Vec::new();
    for (key, value) in map {
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(true) => "yes".into(),
            Value::Bool(false) | Value::Null => String::new(),
            _ => return None,
        };
        pairs.push((key, text));
    }
    Some(Input::from_pairs(pairs))
}

async fn save(State(state): State<AppState>, Path(slug): Path<String>, headers: HeaderMap, body: Bytes) -> Result<Response, AppError> {
    let Some(step) = Step::from_slug(&slug).filter(|s| *s != Step::Confirm) else {
        return Ok(problem(
            StatusCode::NOT_FOUND,
            "unknown-step",
            "ステップが見つかりません",
            "customer、address、plan のいずれかを指定してください。",
        ));
    };
    let flow = match authenticate(&state, &headers, true).await? {
        Ok(flow) => flow,
        Err(refused) => return Ok(refused),
    };
    if flow.status == FlowStatus::Completed {
        return Ok(problem(StatusCode::CONFLICT, "flow-completed", "登録は完了しています", "この受付は登録が完了しています。"));
    }
    let Some(input) = input_from_json(&body) else { return Ok(invalid_json()) };
    let saved = service::save_step(&state, &flow, step, &input, false).await?;
    if !saved.errors.is_empty() {
        return Ok(validation_problem(&saved.errors, &input));
    }
    let mut flow = flow;
    flow.data = saved.data;
    flow.has_password = saved.has_password;
    Ok(Json(flow_view(&flow, None)).into_response())
}

async fn plan_list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let flow = match authenticate(&state, &headers, false).await? {
        Ok(flow) => flow,
        Err(refused) => return Ok(refused),
    };
    let options = plans::options(&state.apis, &state.catalog, &flow.data).await;
    let list: Vec<Value> = options
        .iter()
        .map(|o| {
            json!({
                "id": o.plan.id,
                "name": o.plan.name,
                "monthly_price": o.plan.monthly_price,
                "price_label": o.plan.price_label(),
                "description": o.plan.description,
                "stock_status": o.stock,
                "stock_label": o.stock.label(),
                "selectable": o.selectable(),
                "reason": o.unavailable_reason(),
            })
        })
        .collect();
    Ok(Json(json!({ "plans": list })).into_response())
}

/// `POST /api/v1/flows/current/submit` with `{"agree": true}`. With an `Idempotency-Key`
/// header: the same key and body answer the same; the same key with another body is 422; a
/// request while the first with that key is still running is 409.
async fn submit(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, AppError> {
    let flow = match authenticate(&state, &headers, true).await? {
        Ok(flow) => flow,
        Err(refused) => return Ok(refused),
    };
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string) else {
        return submit_once(&state, &flow, &body).await;
    };
    if key.is_empty() || key.len() > 255 {
        return Ok(problem(
            StatusCode::BAD_REQUEST,
            "idempotency-key-invalid",
            "Idempotency-Key が正しくありません",
            "1〜255文字のキーを指定してください。",
        ));
    }
    let request_hash = token_hash(&String::from_utf8_lossy(&body));
    let claimed: Option<String> = with_pool!(&state.db, |pool| {
        sqlx::query_scalar(
        "INSERT INTO api_idempotency (flow_id, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT (flow_id, key) DO NOTHING RETURNING key"
    )
    .bind(flow.id)
    .bind(&key)
    .bind(&request_hash)
    .fetch_optional(pool)
    .await
    })?;
    if claimed.is_none() {
        let (hash, status, code, stored): (String, String, Option<i32>, Option<String>) = with_pool!(&state.db, |pool| sqlx::query_as(
            "SELECT request_hash, status, response_status, response_body FROM api_idempotency WHERE flow_id = $1 AND key = $2"
        )
        .bind(flow.id)
        .bind(&key)
        .fetch_one(pool)
        .await)?;
        if hash != request_hash {
            return Ok(problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key が別の内容で使われています",
                "同じキーは同じ内容の送信にだけ使えます。新しいキーを指定してください。",
            ));
        }
        return Ok(match (status.as_str(), code, stored) {
            ("done", Some(code), Some(stored)) => replay(code, stored),
            _ => problem(
                StatusCode::CONFLICT,
                "request-in-progress",
                "処理中です",
                "同じキーの送信を処理しています。しばらくしてから結果を確認してください。",
            ),
        });
    }
    let response = submit_once(&state, &flow, &body).await?;
    let (parts, response_body) = response.into_parts();
    let bytes = axum::body::to_bytes(response_body, 64 * 1024).await.unwrap_or_default();
    with_pool!(&state.db, |pool| sqlx::query(
        "UPDATE api_idempotency SET status = 'done', response_status = $1, response_body = $2 WHERE flow_id = $3 AND key = $4"
    )
    .bind(i32::from(parts.status.as_u16()))
    .bind(String::from_utf8_lossy(&bytes).to_string())
    .bind(flow.id)
    .bind(&key)
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(Response::from_parts(parts, axum::body::Body::from(bytes)))
}

fn replay(code: i32, body: String) -> Response {
    let status = u16::try_from(code).ok().and_then(|c| StatusCode::from_u16(c).ok()).unwrap_or(StatusCode::OK);
    let content_type = if status.is_success() { "application/json" } else { "application/problem+json" };
    (status, [(header::CONTENT_TYPE, content_type), (header::HeaderName::from_static("idempotent-replayed"), "true")], body).into_response()
}

async fn submit_once(state: &AppState, flow: &Flow, body: &Bytes) -> Result<Response, AppError> {
    if flow.status == FlowStatus::Completed {
        return Ok(
            (StatusCode::OK, Json(json!({ "status": "completed", "registration_number": flow.registration_number }))).into_response()
        );
    }
    let Some(input) = input_from_json(body) else { return Ok(invalid_json()) };
    Ok(match service::submit(state, flow, input.get("agree") == "yes").await? {
        Submitted::Registered(number) => {
            (StatusCode::CREATED, Json(json!({ "status": "completed", "registration_number": number }))).into_response()
        }
        Submitted::Invalid(errors) => validation_problem(&errors, &input),
        Submitted::SendBack(back) => {
            let (code, title, detail) = match &back {
                SendBack::Step(_) => {
                    ("step-incomplete", "入力が完了していない項目があります", "next_step のステップを入力し直してください。")
                }
                SendBack::SoldOut => ("plan-sold-out", "プランの在庫がなくなりました", "申し訳ありません。別のプランをお選びください。"),
                SendBack::NotOffered => (
                    "plan-not-offered",
                    "プランをお申し込みいただけません",
                    "このプランはご入力の住所ではお申し込みいただけません。別のプランをお選びください。",
                ),
            };
            let mut response = problem(StatusCode::UNPROCESSABLE_ENTITY, code, title, detail);
            let body = json!({ "type": format!("/api/v1/problems/{code}"), "title": title, "status": 422, "detail": detail, "next_step": back.step().slug() });
            *response.body_mut() = axum::body::Body::from(body.to_string());
            response
        }
    })
}
