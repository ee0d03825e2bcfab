//! The form's HTML pages: a GET shows a step, a POST saves it (always, even when a rule fails, so
//! nothing typed is lost) and redirects to the next step (303) or shows the errors (422); the
//! address step's lookup without JavaScript, the final submit, the 完了 page, a restart and the
//! browser script's inline checks.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;

use super::flow::{self, Flow, FlowData, FlowStatus};
use super::pages::{CompletePage, ConfirmPage, PausedPage, PlanPage, StepPage, progress};
use super::service::{SendBack, Submitted, rules};
use super::steps::{FieldError, Rules};
use super::visit::{Visit, csrf_ok, flow_token, forget_flow, pre_session_token, store, visit};
use super::{plans, service, steps};
use crate::crypto::constant_time_eq;
use crate::http::csrf;
use crate::http::error::{AppError, error_page, render};
use crate::state::AppState;
use crate::values::fields;
use crate::values::form::{Input, Step, fields_of};

const CSRF_NOTICE: &str =
    "セキュリティ確認のため、送信を受け付けられませんでした。入力内容は保持していますので、もう一度送信してください。";

fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "ページが見つかりません", "お探しのページは見つかりませんでした。")
}

/// The page every form request gets while the database writer is down (`http::writer_gate`): a
/// posted step is offered back, so what was typed can be sent again once registration resumes.
pub(super) fn paused(parts: &Parts, body: Bytes) -> Response {
    let posted_step =
        (parts.method == Method::POST).then(|| parts.uri.path().strip_prefix("/register/").and_then(Step::from_slug)).flatten();
    render(StatusCode::SERVICE_UNAVAILABLE, &PausedPage::new(posted_step, &Input::parse(&body)))
}

/// Renders a step with the given values and errors.
async fn step_page(
    state: &AppState,
    step: Step,
    status: StatusCode,
    data: &FlowData,
    errors: Vec<FieldError>,
    flow: &Flow,
    notice: Option<&'static str>,
) -> Response {
    match step {
        Step::Customer | Step::Address => {
            let mut page = StepPage::new(step, data, errors, flow.has_password, &flow.csrf_token);
            page.notice = notice;
            page.lookup_available = step == Step::Address && state.apis.address.available();
            render(status, &page)
        }
        Step::Plan => {
            let options = plans::options(&state.apis, &state.catalog, data).await;
            let mut page = PlanPage::new(&options, data, errors, &flow.csrf_token);
            page.notice = notice;
            render(status, &page)
        }
        Step::Confirm => {
            let mut page = ConfirmPage::new(&state.catalog, data, errors, &flow.csrf_token);
            page.notice = notice;
            render(status, &page)
        }
    }
}

/// Notices carried over a redirect by a query flag (the final submit sending the person back).
#[derive(serde::Deserialize, Default)]
pub(super) struct StepQuery {
    #[serde(default)]
    notice: Option<String>,
}

impl StepQuery {
    fn notice(&self, step: Step) -> Option<&'static str> {
        match (step, self.notice.as_deref()) {
            (Step::Plan, Some("soldout")) => Some("申し訳ありません。お選びのプランは在庫がなくなりました。別のプランをお選びください。"),
            (Step::Plan, Some("notoffered")) => {
                Some("お選びのプランは、ご入力の住所ではお申し込みいただけません。別のプランをお選びください。")
            }
            _ => None,
        }
    }
}

pub(super) async fn show_step(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(query): Query<StepQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Some(step) = Step::from_slug(&slug) else { return Ok(not_found()) };
    let visit = visit(&state, &headers).await?;
    let flow = &visit.flow;
    if flow.status == FlowStatus::Completed {
        return Ok(visit.respond(&state, see_other("/register/complete")));
    }
    if let Some(earlier) = flow.data.incomplete_step_before(step) {
        return Ok(visit.respond(&state, see_other(&earlier.path())));
    }
    let notice = visit.notice().or(query.notice(step));
    let page = step_page(&state, step, StatusCode::OK, &flow.data, Vec::new(), flow, notice).await;
    Ok(visit.respond(&state, page))
}

pub(super) async fn save_step(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let Some(step) = Step::from_slug(&slug) else { return Ok(not_found()) };
    let input = Input::parse(&body);
    let mut visit = visit(&state, &headers).await?;
    let rules = rules(&state);

    if !csrf_ok(&state, &headers, visit.csrf_matches(input.get("csrf_token"))) {
        let flow = &visit.flow;
        csrf::refused(step.slug());
        // Show the step again with what was typed (not saved) and a valid token.
        let mut data = flow.data.clone();
        steps::apply(step, &mut data, &input, flow.has_password, &rules);
        let page = step_page(&state, step, StatusCode::FORBIDDEN, &data, Vec::new(), flow, Some(CSRF_NOTICE)).await;
        return Ok(visit.respond(&state, page));
    }
    if visit.flow.status == FlowStatus::Completed {
        // A reloaded or repeated final POST: the registration exists; show its 完了 page.
        return Ok(visit.respond(&state, see_other("/register/complete")));
    }
    if !visit.is_stored() {
        // A first visitor: only step 1 can be posted, and the flow is written only once the
        // person has typed something (an empty post just shows what is required).
        if step != Step::Customer {
            return Ok(visit.respond(&state, see_other(&Step::Customer.path())));
        }
        if fields_of(step).all(|field| input.get(field.name).trim().is_empty()) {
            let mut data = FlowData::default();
            let applied = steps::apply(step, &mut data, &input, false, &rules);
            let page = step_page(&state, step, StatusCode::UNPROCESSABLE_ENTITY, &data, applied.errors, &visit.flow, None).await;
            return Ok(visit.respond(&state, page));
        }
        visit = store(&state, visit).await?;
    }
    let flow = &visit.flow;

    let going_back = input.get("action") == "back";
    if step == Step::Address && matches!(input.get("action"), "lookup" | "pick") {
        return address_lookup(&state, &visit, &input, &rules).await;
    }
    if step == Step::Confirm {
        return confirm(&state, visit, &input, going_back).await;
    }

    let saved = service::save_step(&state, flow, step, &input, going_back).await?;
    if going_back {
        let previous = step.previous().unwrap_or(step);
        return Ok(visit.respond(&state, see_other(&previous.path())));
    }
    if !saved.errors.is_empty() {
        let mut flow = flow.clone();
        flow.has_password = saved.has_password;
        let page = step_page(&state, step, StatusCode::UNPROCESSABLE_ENTITY, &saved.data, saved.errors, &flow, visit.notice()).await;
        return Ok(visit.respond(&state, page));
    }
    let next = step.next().unwrap_or(Step::Confirm);
    Ok(visit.respond(&state, see_other(&next.path())))
}

/// 住所検索 without JavaScript: the step reloads with the address filled in, a choice of towns,
/// or a message saying to type it (unknown code, or AddressAPI unavailable).
async fn address_lookup(state: &AppState, visit: &Visit, input: &Input, rules: &Rules<'_>) -> Result<Response, AppError> {
    let flow = &visit.flow;
    let mut data = flow.data.clone();
    steps::apply(Step::Address, &mut data, input, flow.has_password, rules);
    let code = match fields::postal_code(input.get("postal_code")) {
        Ok(code) => code,
        Err(message) => {
            flow::save(&state.db, flow.id, &data, None).await?;
            let errors = vec![FieldError { field: "postal_code", message }];
            let page = step_page(state, Step::Address, StatusCode::UNPROCESSABLE_ENTITY, &data, errors, flow, None).await;
            return Ok(visit.respond(state, page));
        }
    };
    let mut candidates = Vec::new();
    let message = match state.apis.address.lookup(&code).await {
        Ok(found) if found.is_empty() => "該当する住所が見つかりませんでした。郵便番号をご確認のうえ、住所を直接入力してください。",
        Ok(found) if found.len() == 1 || input.get("action") == "pick" => {
            let index: usize = input.get("address_choice").parse().unwrap_or(0);
            let chosen = found.get(index).unwrap_or(&found[0]);
            data.set("prefecture", chosen.prefecture.clone());
            data.set("city", chosen.city.clone());
            if !chosen.town.is_empty() && !data.get("street").starts_with(&chosen.town) {
                data.set("street", chosen.town.clone());
            }
            data.address_done = steps::step_complete(Step::Address, &data, rules);
            "住所を入力しました。番地・部屋番号などを続けて入力してください。"
        }
        Ok(found) => {
            candidates = found
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let note = a.note.as_ref().map(|n| format!("（{n}）")).unwrap_or_default();
                    (i, format!("{}{}{}{note}", a.prefecture, a.city, a.town))
                })
                .collect();
            "この郵便番号には複数の住所があります。一覧からお選びください。"
        }
        Err(_) => "現在、住所検索をご利用いただけません。お手数ですが、住所を直接入力してください。",
    };
    flow::save(&state.db, flow.id, &data, None).await?;
    let mut page = StepPage::new(Step::Address, &data, Vec::new(), flow.has_password, &flow.csrf_token);
    page.lookup_available = state.apis.address.available();
    page.lookup_message = Some(message.to_string());
    page.candidates = candidates;
    Ok(visit.respond(state, render(StatusCode::OK, &page)))
}

async fn confirm(state: &AppState, visit: Visit, input: &Input, going_back: bool) -> Result<Response, AppError> {
    let flow = &visit.flow;
    if going_back {
        return Ok(visit.respond(state, see_other(&Step::Plan.path())));
    }
    let path = match service::submit(state, flow, input.get("agree") == "yes").await? {
        Submitted::Registered(_) => "/register/complete".to_string(),
        Submitted::Invalid(errors) => {
            let page = step_page(state, Step::Confirm, StatusCode::UNPROCESSABLE_ENTITY, &flow.data, errors, flow, visit.notice()).await;
            return Ok(visit.respond(state, page));
        }
        Submitted::SendBack(SendBack::Step(step)) => step.path(),
        Submitted::SendBack(SendBack::SoldOut) => format!("{}?notice=soldout", Step::Plan.path()),
        Submitted::SendBack(SendBack::NotOffered) => format!("{}?notice=notoffered", Step::Plan.path()),
    };
    Ok(visit.respond(state, see_other(&path)))
}

pub(super) async fn show_complete(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let visit = visit(&state, &headers).await?;
    let flow = &visit.flow;
    let (FlowStatus::Completed, Some(number)) = (flow.status, &flow.registration_number) else {
        let step = flow.data.incomplete_step_before(Step::Confirm).unwrap_or(Step::Confirm);
        return Ok(visit.respond(&state, see_other(&step.path())));
    };
    let page = CompletePage {
        progress: progress(),
        current: Step::ALL.len() + 1,
        registration_number: number.clone(),
        csrf_token: flow.csrf_token.clone(),
    };
    Ok(visit.respond(&state, render(StatusCode::OK, &page)))
}

/// 「別の方を登録する」: a fresh, empty form.
pub(super) async fn restart(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, AppError> {
    let input = Input::parse(&body);
    let visit = visit(&state, &headers).await?;
    if !csrf_ok(&state, &headers, visit.csrf_matches(input.get("csrf_token"))) {
        csrf::refused("restart");
        return Ok(error_page(StatusCode::FORBIDDEN, "送信を受け付けられませんでした", CSRF_NOTICE));
    }
    // Nothing is written: the browser forgets its flow, and the next person starts as a first
    // visitor (their flow is stored once they type something).
    Ok(forget_flow(&state, see_other(&Step::Customer.path())))
}

#[derive(Serialize)]
struct FieldCheck {
    ok: bool,
    value: String,
    message: String,
}

/// Inline check for the browser script: the same rule the step applies, one field at a time.
/// Stateless (nothing is saved), but still bound to the visitor's flow by its CSRF token.
pub(super) async fn validate_field(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, AppError> {
    let input = Input::parse(&body);
    // The flow's token, or a first visitor's pre-session token (nothing stored yet).
    let expected = match flow_token(&headers, state.config.secure_cookies()) {
        Some(token) => flow::find_by_token(&state.db, &token).await?.map(|flow| flow.csrf_token),
        None => pre_session_token(&state, &headers),
    };
    let Some(expected) = expected else {
        return Ok(StatusCode::FORBIDDEN.into_response());
    };
    let csrf = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !csrf_ok(&state, &headers, constant_time_eq(csrf, &expected)) {
        csrf::refused("validate");
        return Ok(StatusCode::FORBIDDEN.into_response());
    }
    let email = steps::email_for_rules(input.get("email"));
    let check = match steps::check_field(input.get("field"), input.get("value"), &email, &rules(&state)) {
        Some(Ok(value)) => FieldCheck { ok: true, value, message: String::new() },
        Some(Err(message)) => FieldCheck { ok: false, value: fields::normalize_text(input.get("value")), message },
        None => return Ok(StatusCode::UNPROCESSABLE_ENTITY.into_response()),
    };
    Ok(axum::Json(check).into_response())
}
