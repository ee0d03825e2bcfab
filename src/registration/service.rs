//! The registration flow's operations, shared by both faces — the HTML form and the JSON API —
//! so that neither holds a rule, a check or a side effect of its own: saving a step (rules,
//! plan availability, password hashing, metrics, error patterns) and the final submit
//! (consent, re-checks, idempotent registration, sending the person back when needed).

use time::OffsetDateTime;

use super::flow::{self, Flow, FlowData};
use super::plans;
use super::steps::{self, FieldError, Rules};
use super::submit::{self, Outcome};
use crate::http::error::AppError;
use crate::state::AppState;
use crate::values::form::{Input, Step};
use crate::with_pool;

pub fn rules(state: &AppState) -> Rules<'_> {
    Rules { min_age: state.config.min_age, max_age: state.config.max_age, today: crate::values::jst::today(), catalog: &state.catalog }
}

/// A step after saving: the values as stored and what failed.
pub struct Saved {
    pub data: FlowData,
    pub errors: Vec<FieldError>,
    pub has_password: bool,
}

/// Writes a step's input into the flow — always, so nothing typed is lost — and reports the
/// rules that failed. `going_back` saves without judging availability or counting errors.
pub async fn save_step(state: &AppState, flow: &Flow, step: Step, input: &Input, going_back: bool) -> Result<Saved, AppError> {
    let rules = rules(state);
    let mut data = flow.data.clone();
    let mut applied = steps::apply(step, &mut data, input, flow.has_password, &rules);
    if step == Step::Plan && applied.errors.is_empty() && !going_back {
        // The plan must still be available: in stock and offered at the entered address.
        let options = plans::options(&state.apis, &state.catalog, &data).await;
        if let Some(reason) = options.iter().find(|o| o.plan.id == data.get("plan_id")).and_then(|o| o.unavailable_reason()) {
            applied.errors.push(FieldError {
                field: "plan_id", message: format!("選択されたプランはお申し込みいただけません。{reason}")
            });
            data.plan_done = false;
        }
    }
    let new_hash = match applied.new_password {
        Some(password) => Some(state.hasher.hash(password).await?),
        None => None,
    };
    flow::save(&state.db, flow.id, &data, new_hash.as_deref()).await?;
    if !going_back {
        if applied.errors.is_empty() {
            metrics::counter!("nfa_registration_step_completed_total", "step" => step.slug()).increment(1);
        } else {
            record_validation_errors(state, step.slug(), &applied.errors).await;
        }
    }
    Ok(Saved { data, errors: applied.errors, has_password: flow.has_password || new_hash.is_some() })
}

/// Counts validation errors (metrics) and keeps step and field — never the value — for the
/// error-pattern reports. A failure to record must not cost the person their answer.
pub async fn record_validation_errors(state: &AppState, step: &'static str, errors: &[FieldError]) {
    let now = OffsetDateTime::now_utc();
    for error in errors {
        metrics::counter!("nfa_registration_validation_errors_total", "step" => step, "field" => error.field).increment(1);
        let recorded = with_pool!(&state.db, |pool| sqlx::query("INSERT INTO form_errors (step, field, created_at) VALUES ($1, $2, $3)")
            .bind(step)
            .bind(error.field)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()));
        if let Err(err) = recorded {
            tracing::warn!(event = "form_error_not_recorded", error = %err, "could not record a validation error");
        }
    }
}

/// Why the person must go back before registering.
#[derive(Debug, PartialEq, Eq)]
pub enum SendBack {
    /// A step is incomplete or one of its values no longer passes its rule.
    Step(Step),
    /// The plan sold out meanwhile.
    SoldOut,
    /// The plan is not offered at the entered address.
    NotOffered,
}

impl SendBack {
    pub fn step(&self) -> Step {
        match self {
            SendBack::Step(step) => *step,
            SendBack::SoldOut | SendBack::NotOffered => Step::Plan,
        }
    }
}

pub enum Submitted {
    /// Registered (or, indistinguishably, the address was already a member's); the 受付番号.
    Registered(String),
    /// Consent missing: the errors to show.
    Invalid(Vec<FieldError>),
    SendBack(SendBack),
}

pub const CONSENT_REQUIRED: &str = "登録には、利用規約・個人情報の取扱いへの同意が必要です。";

/// The final submit: consent, then the idempotent registration; a step that needs attention is
/// marked incomplete so the person is led back to it.
pub async fn submit(state: &AppState, flow: &Flow, agreed: bool) -> Result<Submitted, AppError> {
    if let Some(earlier) = flow.data.incomplete_step_before(Step::Confirm) {
        return Ok(Submitted::SendBack(SendBack::Step(earlier)));
    }
    if !agreed {
        let errors = vec![FieldError { field: "agree", message: CONSENT_REQUIRED.into() }];
        record_validation_errors(state, "confirm", &errors).await;
        return Ok(Submitted::Invalid(errors));
    }
    let back = match submit::submit(state, flow, &rules(state)).await? {
        Outcome::Registered { number, newly } => {
            if newly {
                metrics::counter!("nfa_registration_step_completed_total", "step" => "confirm").increment(1);
                metrics::counter!("nfa_registrations_completed_total").increment(1);
            }
            return Ok(Submitted::Registered(number));
        }
        Outcome::Revisit(step) => SendBack::Step(step),
        Outcome::SoldOut => SendBack::SoldOut,
        Outcome::NotOffered => SendBack::NotOffered,
    };
    let mut data = flow.data.clone();
    match back.step() {
        Step::Customer => data.customer_done = false,
        Step::Address => data.address_done = false,
        _ => data.plan_done = false,
    }
    flow::save(&state.db, flow.id, &data, None).await?;
    Ok(Submitted::SendBack(back))
}
