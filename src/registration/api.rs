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
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::flow::{self, Flow, FlowData, FlowStatus};
use super::plans;
use super::service::{self, SendBack, Submitted};
use super::steps::FieldError;
use super::visit::{Visit, csrf_ok, flow_token};
use crate::crypto::{constant_time_eq, token_hash};
use crate::db::Availability;
use crate::http::error::AppError;
use crate::http::problem::{FieldProblem, Problem, problem};
use crate::http::writer_gate::{Hold, WriterGateLayer};
use crate::state::AppState;
use crate::values::form::{FIELDS, Input, Kind, Step, fields_of};
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

/// The flow API; it pauses (503 `registration_paused`) while the database writer is down.
pub fn routes(availability: &Availability) -> Router<AppState> {
    Router::new()
        .route("/api/v1/flows", post(start))
        .route("/api/v1/flows/current", get(read))
        .route("/api/v1/flows/current/steps/{step}", put(save))
        .route("/api/v1/flows/current/plans", get(plan_list))
        .route("/api/v1/flows/current/submit", post(submit))
        .layer(WriterGateLayer::new(availability.clone(), Hold::All, "api", paused))
}

fn paused(_: &axum::http::request::Parts, _: Bytes) -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "registration_paused",
        "登録を一時停止しています",
        "システムの障害対応のため、登録の受付を一時的に停止しています。Retry-After の秒数をおいて、もう一度お試しください。",
    )
}

/// One input of a step, as the form renders it.
#[derive(Serialize, ToSchema)]
pub struct FieldView {
    name: String,
    /// The label text the form shows (e.g. 姓).
    label: String,
    /// `text`, `password`, `tel`, `date`, `select`, `plan` or `checkbox`.
    #[serde(rename = "type")]
    kind: String,
    required: bool,
    max_length: u32,
    hint: String,
    autocomplete: String,
    /// The choices of a `select` (the 47 prefectures).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StepView {
    /// `customer`, `address`, `plan` or `confirm`.
    id: String,
    title: String,
    complete: bool,
    fields: Vec<FieldView>,
}

/// A registration flow.
#[derive(Serialize, ToSchema)]
pub struct FlowView {
    /// A stable public name for the flow (not a credential).
    flow_id: String,
    /// `active` or `completed`.
    status: String,
    /// For browser clients: send it as `X-CSRF-Token`.
    csrf_token: String,
    steps: Vec<StepView>,
    /// The values entered so far, normalised where valid (never the password).
    values: BTreeMap<String, String>,
    password_set: bool,
    /// The step to fill next; absent once completed.
    next_step: Option<String>,
    registration_number: Option<String>,
    /// Only when the flow is started: the bearer token for native clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    token: Option<String>,
}

fn done(step: Step, data: &FlowData) -> bool {
    match step {
        Step::Customer => data.customer_done,
        Step::Address => data.address_done,
        Step::Plan => data.plan_done,
        Step::Confirm => false,
    }
}

fn special_field(name: &str, label: &str, kind: &str, hint: &str) -> FieldView {
    FieldView {
        name: name.into(),
        label: label.into(),
        kind: kind.into(),
        required: true,
        max_length: 64,
        hint: hint.into(),
        autocomplete: "off".into(),
        options: Vec::new(),
    }
}

/// The flow as the client sees it: steps with their field definitions, current values (never
/// the password), and what to do next.
fn flow_view(flow: &Flow, token: Option<&str>) -> FlowView {
    let steps = Step::ALL
        .iter()
        .map(|&step| StepView {
            id: step.slug().into(),
            title: step.title().into(),
            complete: done(step, &flow.data),
            fields: match step {
                Step::Plan => vec![special_field("plan_id", "プラン", "plan", "GET /api/v1/flows/current/plans の id")],
                Step::Confirm => vec![special_field("agree", "利用規約・個人情報の取扱いに同意する", "checkbox", "")],
                _ => fields_of(step)
                    .map(|f| FieldView {
                        name: f.name.into(),
                        label: f.label.into(),
                        kind: match f.kind {
                            Kind::Text => "text",
                            Kind::Password => "password",
                            Kind::Tel => "tel",
                            Kind::Date => "date",
                            Kind::Prefecture => "select",
                        }
                        .into(),
                        required: f.required && !(f.kind == Kind::Password && flow.has_password),
                        max_length: f.max_chars,
                        hint: f.hint.into(),
                        autocomplete: f.autocomplete.into(),
                        options: if f.kind == Kind::Prefecture {
                            crate::values::fields::PREFECTURES.iter().map(|p| p.to_string()).collect()
                        } else {
                            Vec::new()
                        },
                    })
                    .collect(),
            },
        })
        .collect();
    let values = FIELDS
        .iter()
        .filter(|f| f.kind != Kind::Password)
        .map(|f| f.name)
        .chain(["plan_id"])
        .map(|name| (name.to_string(), flow.data.get(name).to_string()))
        .collect();
    let completed = flow.status == FlowStatus::Completed;
    FlowView {
        // Derived from the flow's random CSRF token: reveals neither the bearer token nor how
        // many flows there are.
        flow_id: token_hash(&flow.csrf_token)[..16].to_string(),
        status: if completed { "completed" } else { "active" }.into(),
        csrf_token: flow.csrf_token.clone(),
        steps,
        values,
        password_set: flow.has_password,
        next_step: (!completed).then(|| flow.data.incomplete_step_before(Step::Confirm).unwrap_or(Step::Confirm).slug().to_string()),
        registration_number: flow.registration_number.clone(),
        token: token.map(str::to_string),
    }
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
    if flow.is_expired(state.config.flow_idle_timeout) {
        return Ok(Err(unauthenticated()));
    }
    if changes_state && by_cookie {
        let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !csrf_ok(state, headers, !sent.is_empty() && constant_time_eq(sent, &flow.csrf_token)) {
            crate::http::csrf::refused("api");
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
#[utoipa::path(
    post,
    path = "/api/v1/flows",
    tag = "flows",
    responses(
        (status = 201, description = "受付を開始しました（ブラウザにはクッキーも設定）", body = FlowView),
        (status = 503, description = "登録を一時停止しています（データベースの書き込み側が停止中）。Retry-After の秒数をおいて再試行", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "送信が多すぎます", content_type = "text/html"),
    )
)]
pub(crate) async fn start(State(state): State<AppState>) -> Result<Response, AppError> {
    let (flow, token) = flow::create(&state.db, &FlowData::default(), None).await?;
    metrics::counter!("nfa_registration_flows_started_total").increment(1);
    let body = flow_view(&flow, Some(&token));
    let visit = Visit { flow, new_token: Some(token), replaced: None, new_pre_session: None };
    Ok(visit.respond(&state, (StatusCode::CREATED, Json(body))))
}

#[utoipa::path(
    get,
    path = "/api/v1/flows/current",
    tag = "flows",
    responses(
        (status = 200, description = "受付の状態", body = FlowView),
        (status = 503, description = "登録を一時停止しています（データベースの書き込み側が停止中）。Retry-After の秒数をおいて再試行", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "受付がない、または有効期限切れ", body = Problem, content_type = "application/problem+json"),
    ),
    security(("flowToken" = []), ("flowCookie" = []))
)]
pub(crate) async fn read(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
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
    let mut problem = Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
        "入力内容をご確認ください",
        format!("{}件の項目に誤りがあります。", errors.len()),
    );
    problem.errors = errors
        .iter()
        .map(|e| FieldProblem { field: e.field.into(), code: error_code(e, input).into(), message: e.message.clone() })
        .collect();
    problem.into_response()
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

#[utoipa::path(
    put,
    path = "/api/v1/flows/current/steps/{step}",
    tag = "flows",
    params(("step" = String, Path, description = "customer、address または plan")),
    request_body(content = BTreeMap<String, String>, description = "項目名と値（customer の password は初回必須、以後は変更時のみ）"),
    responses(
        (status = 200, description = "保存しました", body = FlowView),
        (status = 503, description = "登録を一時停止しています（データベースの書き込み側が停止中）。Retry-After の秒数をおいて再試行", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "JSON のオブジェクトではありません", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "受付がない、または有効期限切れ", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF トークンがない、または別オリジン", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "そのステップはありません", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "登録は完了しています", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "本文が大きすぎます"),
        (status = 422, description = "入力エラー（項目ごとの code と message）", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "送信が多すぎます", content_type = "text/html"),
    ),
    security(("flowToken" = []), ("flowCookie" = []))
)]
pub(crate) async fn save(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
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

#[utoipa::path(
    get,
    path = "/api/v1/flows/current/plans",
    tag = "flows",
    responses(
        (status = 200, description = "プランと在庫・提供地域", body = PlanList),
        (status = 503, description = "登録を一時停止しています（データベースの書き込み側が停止中）。Retry-After の秒数をおいて再試行", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "受付がない、または有効期限切れ", body = Problem, content_type = "application/problem+json"),
    ),
    security(("flowToken" = []), ("flowCookie" = []))
)]
pub(crate) async fn plan_list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let flow = match authenticate(&state, &headers, false).await? {
        Ok(flow) => flow,
        Err(refused) => return Ok(refused),
    };
    let options = plans::options(&state.apis, &state.catalog, &flow.data).await;
    let plans = options
        .iter()
        .map(|o| PlanView {
            id: o.plan.id.clone(),
            name: o.plan.name.clone(),
            monthly_price: o.plan.monthly_price,
            price_label: o.plan.price_label(),
            description: o.plan.description.clone(),
            stock_status: serde_json::to_value(o.stock).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
            stock_label: o.stock.label().into(),
            selectable: o.selectable(),
            reason: o.unavailable_reason(),
        })
        .collect();
    Ok(Json(PlanList { plans }).into_response())
}

/// A plan as offered to this flow now.
#[derive(Serialize, ToSchema)]
pub struct PlanView {
    id: String,
    name: String,
    /// Yen, tax included.
    monthly_price: u32,
    price_label: String,
    description: String,
    /// `available`, `low`, `sold_out` or `needs_check` (InventoryAPI unavailable: 要確認).
    stock_status: String,
    stock_label: String,
    selectable: bool,
    /// Why it cannot be chosen (sold out, or not offered at the entered address).
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PlanList {
    plans: Vec<PlanView>,
}

/// The final submit's body.
#[derive(serde::Deserialize, ToSchema)]
#[allow(dead_code)] // read as an Input, declared for the OpenAPI description
pub struct SubmitRequest {
    /// 利用規約・個人情報の取扱いに同意する
    agree: bool,
}

/// A completed registration.
#[derive(Serialize, ToSchema)]
pub struct Registered {
    /// `completed`.
    status: String,
    /// The 受付番号.
    registration_number: Option<String>,
}

/// `POST /api/v1/flows/current/submit` with `{"agree": true}`. With an `Idempotency-Key`
/// header: the same key and body answer the same; the same key with another body is 422; a
/// request while the first with that key is still running is 409.
#[utoipa::path(
    post,
    path = "/api/v1/flows/current/submit",
    tag = "flows",
    params(("Idempotency-Key" = Option<String>, Header, description = "同じキーと内容なら同じ結果、別の内容なら 422、処理中なら 409")),
    request_body(content = SubmitRequest),
    responses(
        (status = 201, description = "登録しました", body = Registered),
        (status = 503, description = "登録を一時停止しています（データベースの書き込み側が停止中）。Retry-After の秒数をおいて再試行", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "この受付は登録済みです（同じ受付番号）", body = Registered),
        (status = 400, description = "JSON または Idempotency-Key が正しくありません", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "受付がない、または有効期限切れ", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF トークンがない、または別オリジン", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "同じ Idempotency-Key の送信を処理中", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "本文が大きすぎます"),
        (status = 422, description = "同意がない、やり直すステップがある（next_step）、在庫切れ、提供地域外、またはキーの再利用", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "送信が多すぎます", content_type = "text/html"),
    ),
    security(("flowToken" = []), ("flowCookie" = []))
)]
pub(crate) async fn submit(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, AppError> {
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
        let done = Registered { status: "completed".into(), registration_number: flow.registration_number.clone() };
        return Ok((StatusCode::OK, Json(done)).into_response());
    }
    let Some(input) = input_from_json(body) else { return Ok(invalid_json()) };
    Ok(match service::submit(state, flow, input.get("agree") == "yes").await? {
        Submitted::Registered(number) => {
            (StatusCode::CREATED, Json(Registered { status: "completed".into(), registration_number: Some(number) })).into_response()
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
            let mut problem = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, title, detail);
            problem.next_step = Some(back.step().slug().to_string());
            problem.into_response()
        }
    })
}
