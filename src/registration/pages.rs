//! View models of the form's pages. Templates only lay out what these structs hold.

use askama::Template;

use super::flow::FlowData;
use super::plans::PlanOption;
use super::steps::FieldError;
use crate::catalog::Catalog;
use crate::inventory::StockStatus;
use crate::region::RegionCheck;
use crate::values::fields::{PREFECTURES, display_postal_code};
use crate::values::form::{FieldDef, Input, Kind, Step, fields_of};

pub type Progress = Vec<(usize, &'static str)>;

pub fn progress() -> Progress {
    // Short names: five of them must fit a 360 px phone screen on one line each.
    let short = |step: Step| if step == Step::Plan { "プラン" } else { step.title() };
    Step::ALL.iter().map(|s| (s.number(), short(*s))).chain([(Step::ALL.len() + 1, "完了")]).collect()
}

pub struct FieldView {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: &'static str,
    pub value: String,
    pub error: Option<String>,
    pub hint: &'static str,
    pub required: bool,
    pub autocomplete: &'static str,
    pub inputmode: &'static str,
    pub max_chars: u32,
    pub half: bool,
    pub kana: bool,
    pub describedby: String,
    pub options: Vec<(&'static str, bool)>,
}

impl FieldView {
    fn new(def: &FieldDef, data: &FlowData, errors: &[FieldError]) -> FieldView {
        let value = data.get(def.name).to_string();
        let error = errors.iter().find(|e| e.field == def.name).map(|e| e.message.clone());
        let describedby = if def.hint.is_empty() { format!("f-{}-error", def.name) } else { format!("f-{0}-hint f-{0}-error", def.name) };
        let options = match def.kind {
            Kind::Prefecture => PREFECTURES.iter().map(|p| (*p, *p == value)).collect(),
            _ => Vec::new(),
        };
        FieldView {
            name: def.name,
            label: def.label,
            kind: match def.kind {
                Kind::Text => "text",
                Kind::Password => "password",
                Kind::Tel => "tel",
                Kind::Date => "date",
                Kind::Prefecture => "select",
            },
            // A password is never sent back to the browser.
            value: if def.kind == Kind::Password { String::new() } else { value },
            error,
            hint: def.hint,
            required: def.required,
            autocomplete: def.autocomplete,
            inputmode: def.inputmode,
            max_chars: def.max_chars,
            half: def.half,
            kana: def.name.ends_with("_kana"),
            describedby,
            options,
        }
    }
}

#[derive(Template)]
#[template(path = "registration/step.html")]
pub struct StepPage {
    pub title: &'static str,
    pub action: String,
    pub progress: Progress,
    pub current: usize,
    pub notice: Option<&'static str>,
    pub errors: Vec<FieldError>,
    pub fields: Vec<FieldView>,
    pub csrf_token: String,
    pub has_back: bool,
    /// Address step: whether 住所検索 is offered (AddressAPI available).
    pub lookup_available: bool,
    /// Address step: the outcome of the last 住所検索, for the person.
    pub lookup_message: Option<String>,
    /// Address step: several towns share the code; the person picks one (index, label).
    pub candidates: Vec<(usize, String)>,
}

impl StepPage {
    pub fn new(step: Step, data: &FlowData, errors: Vec<FieldError>, has_password: bool, csrf_token: &str) -> StepPage {
        let fields = fields_of(step)
            .map(|def| {
                let mut view = FieldView::new(def, data, &errors);
                if def.kind == Kind::Password && has_password {
                    // Entered earlier and kept as a hash: the person need not type it again.
                    view.required = false;
                    view.hint = "入力済みです。変更する場合のみ入力してください";
                }
                view
            })
            .collect();
        StepPage {
            title: step.title(),
            action: step.path(),
            progress: progress(),
            current: step.number(),
            notice: None,
            errors,
            fields,
            csrf_token: csrf_token.to_string(),
            has_back: step.previous().is_some(),
            lookup_available: false,
            lookup_message: None,
            candidates: Vec::new(),
        }
    }
}

pub struct PlanView {
    pub id: String,
    pub name: String,
    pub price: String,
    pub description: String,
    pub selected: bool,
    pub selectable: bool,
    pub stock_label: &'static str,
    pub stock_class: &'static str,
    pub reason: Option<String>,
    pub region_note: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "registration/plan.html")]
pub struct PlanPage {
    pub title: &'static str,
    pub progress: Progress,
    pub current: usize,
    pub notice: Option<&'static str>,
    pub errors: Vec<FieldError>,
    pub plan_error: Option<String>,
    pub plans: Vec<PlanView>,
    pub any_needs_check: bool,
    pub csrf_token: String,
}

impl PlanPage {
    pub fn new(options: &[PlanOption], data: &FlowData, errors: Vec<FieldError>, csrf_token: &str) -> PlanPage {
        let chosen = data.get("plan_id");
        PlanPage {
            title: Step::Plan.title(),
            progress: progress(),
            current: Step::Plan.number(),
            notice: None,
            plan_error: errors.iter().find(|e| e.field == "plan_id").map(|e| e.message.clone()),
            errors,
            plans: options
                .iter()
                .map(|o| PlanView {
                    id: o.plan.id.clone(),
                    name: o.plan.name.clone(),
                    price: o.plan.price_label(),
                    description: o.plan.description.clone(),
                    selected: o.plan.id == chosen && o.selectable(),
                    selectable: o.selectable(),
                    stock_label: o.stock.label(),
                    stock_class: match o.stock {
                        StockStatus::Available => "stock-ok",
                        StockStatus::Low => "stock-low",
                        StockStatus::SoldOut => "stock-out",
                        StockStatus::NeedsCheck => "stock-check",
                    },
                    reason: o.unavailable_reason(),
                    region_note: matches!(o.region, RegionCheck::Unchecked)
                        .then_some("お届け可能地域はお申し込み後に確認し、ご案内します。"),
                })
                .collect(),
            any_needs_check: options.iter().any(|o| o.stock == StockStatus::NeedsCheck),
            csrf_token: csrf_token.to_string(),
        }
    }
}

pub struct ReviewSection {
    pub title: &'static str,
    pub edit_path: String,
    pub rows: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "registration/confirm.html")]
pub struct ConfirmPage {
    pub title: &'static str,
    pub progress: Progress,
    pub current: usize,
    pub notice: Option<&'static str>,
    pub errors: Vec<FieldError>,
    pub agree_error: Option<String>,
    pub sections: Vec<ReviewSection>,
    pub csrf_token: String,
}

impl ConfirmPage {
    pub fn new(catalog: &Catalog, data: &FlowData, errors: Vec<FieldError>, csrf_token: &str) -> ConfirmPage {
        let row = |label: &'static str, name: &str| (label, data.get(name).to_string());
        let plan = catalog.plan(data.get("plan_id"));
        let sections = vec![
            ReviewSection {
                title: Step::Customer.title(),
                edit_path: Step::Customer.path(),
                rows: vec![
                    ("お名前", format!("{} {}", data.get("family_name"), data.get("given_name"))),
                    ("フリガナ", format!("{} {}", data.get("family_name_kana"), data.get("given_name_kana"))),
                    row("メールアドレス", "email"),
                    ("パスワード", "（表示しません）".to_string()),
                    row("電話番号", "phone"),
                    row("生年月日", "birth_date"),
                ],
            },
            ReviewSection {
                title: Step::Address.title(),
                edit_path: Step::Address.path(),
                rows: vec![
                    ("郵便番号", display_postal_code(data.get("postal_code"))),
                    row("都道府県", "prefecture"),
                    row("市区町村", "city"),
                    row("番地", "street"),
                    (
                        "建物名・部屋番号",
                        if data.get("building").is_empty() { "（なし）".to_string() } else { data.get("building").to_string() },
                    ),
                ],
            },
            ReviewSection {
                title: Step::Plan.title(),
                edit_path: Step::Plan.path(),
                rows: vec![
                    ("プラン", plan.map(|p| p.name.clone()).unwrap_or_default()),
                    ("料金", plan.map(|p| p.price_label()).unwrap_or_default()),
                ],
            },
        ];
        ConfirmPage {
            title: Step::Confirm.title(),
            progress: progress(),
            current: Step::Confirm.number(),
            notice: None,
            agree_error: errors.iter().find(|e| e.field == "agree").map(|e| e.message.clone()),
            errors,
            sections,
            csrf_token: csrf_token.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "registration/complete.html")]
pub struct CompletePage {
    pub progress: Progress,
    pub current: usize,
    pub registration_number: String,
    pub csrf_token: String,
}

/// 「ただいま登録を一時停止しています」 while the database writer is down. For a step that was
/// posted, the page carries what was sent (all but the password) so the person can send it again
/// once registration resumes, without typing it twice.
#[derive(Template)]
#[template(path = "registration/paused.html")]
pub struct PausedPage {
    pub resend: Option<String>,
    pub fields: Vec<(String, String)>,
    pub ask_password: bool,
}

/// What a step's form posts besides its fields.
const CONTROL_FIELDS: [&str; 5] = ["csrf_token", "action", "address_choice", "plan_id", "agree"];

impl PausedPage {
    pub fn new(step: Option<Step>, input: &Input) -> PausedPage {
        let Some(step) = step else { return PausedPage { resend: None, fields: Vec::new(), ask_password: false } };
        let names = fields_of(step).filter(|f| f.kind != Kind::Password).map(|f| f.name).chain(CONTROL_FIELDS);
        let fields = names.filter(|name| !input.get(name).is_empty()).map(|name| (name.to_string(), input.get(name).to_string())).collect();
        PausedPage { resend: Some(step.path()), fields, ask_password: fields_of(step).any(|f| f.kind == Kind::Password) }
    }
}
