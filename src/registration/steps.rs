//! The steps of the form, the fields on each, and how a step's submitted input is checked and
//! written into the flow. The rules themselves live in `fields` and `password`.

use std::collections::HashMap;

use super::fields::{self, Rule};
use super::flow::FlowData;
use super::password;
use crate::catalog::Catalog;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Customer,
    Address,
    Plan,
    Confirm,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Customer, Step::Address, Step::Plan, Step::Confirm];

    pub fn from_slug(slug: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.slug() == slug)
    }

    pub fn slug(self) -> &'static str {
        match self {
            Step::Customer => "customer",
            Step::Address => "address",
            Step::Plan => "plan",
            Step::Confirm => "confirm",
        }
    }

    pub fn path(self) -> String {
        format!("/register/{}", self.slug())
    }

    pub fn title(self) -> &'static str {
        match self {
            Step::Customer => "お客様情報",
            Step::Address => "ご住所",
            Step::Plan => "プランの選択",
            Step::Confirm => "確認",
        }
    }

    pub fn number(self) -> usize {
        Step::ALL.iter().position(|s| *s == self).unwrap_or(0) + 1
    }

    pub fn previous(self) -> Option<Step> {
        Step::ALL.get(self.number().checked_sub(2)?).copied()
    }

    pub fn next(self) -> Option<Step> {
        Step::ALL.get(self.number()).copied()
    }

    /// The first step whose values are not yet complete, if it comes before `self`.
    pub fn blocked_by(self, data: &FlowData) -> Option<Step> {
        let done = [data.customer_done, data.address_done, data.plan_done];
        Step::ALL.into_iter().zip(done).take(self.number() - 1).find(|(_, done)| !done).map(|(s, _)| s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Password,
    Tel,
    Date,
    Prefecture,
}

/// One input of the form, as both the HTML pages and the inline checks describe it.
#[derive(Debug)]
pub struct FieldDef {
    pub name: &'static str,
    pub label: &'static str,
    pub step: Step,
    pub kind: Kind,
    pub required: bool,
    pub autocomplete: &'static str,
    pub inputmode: &'static str,
    pub hint: &'static str,
    pub max_chars: u32,
    /// Laid out side by side with its neighbour on wide screens (姓・名, セイ・メイ).
    pub half: bool,
}

const fn def(name: &'static str, label: &'static str, step: Step, kind: Kind) -> FieldDef {
    FieldDef { name, label, step, kind, required: true, autocomplete: "off", inputmode: "", hint: "", max_chars: 100, half: false }
}

pub static FIELDS: [FieldDef; 14] = [
    FieldDef { autocomplete: "family-name", max_chars: 30, half: true, ..def("family_name", "姓", Step::Customer, Kind::Text) },
    FieldDef { autocomplete: "given-name", max_chars: 30, half: true, ..def("given_name", "名", Step::Customer, Kind::Text) },
    FieldDef {
        hint: "カタカナ（ひらがなは自動で変換します）",
        max_chars: 30,
        half: true,
        ..def("family_name_kana", "セイ", Step::Customer, Kind::Text)
    },
    FieldDef { max_chars: 30, half: true, ..def("given_name_kana", "メイ", Step::Customer, Kind::Text) },
    FieldDef {
        autocomplete: "email",
        inputmode: "email",
        hint: "例: taro@example.jp",
        max_chars: 254,
        ..def("email", "メールアドレス", Step::Customer, Kind::Text)
    },
    FieldDef {
        autocomplete: "email",
        inputmode: "email",
        hint: "確認のため、もう一度入力してください",
        max_chars: 254,
        ..def("email_confirm", "メールアドレス（確認用）", Step::Customer, Kind::Text)
    },
    FieldDef {
        autocomplete: "new-password",
        hint: "8文字以上128文字以内。記号の有無は問いません",
        max_chars: 128,
        ..def("password", "パスワード", Step::Customer, Kind::Password)
    },
    FieldDef {
        autocomplete: "tel",
        inputmode: "tel",
        hint: "例: 090-1234-5678（ハイフンなしでも可）",
        max_chars: 20,
        ..def("phone", "電話番号", Step::Customer, Kind::Tel)
    },
    FieldDef {
        autocomplete: "bday", hint: "例: 1990-04-01", max_chars: 20, ..def("birth_date", "生年月日", Step::Customer, Kind::Date)
    },
    FieldDef {
        autocomplete: "postal-code",
        inputmode: "numeric",
        hint: "例: 123-4567",
        max_chars: 10,
        ..def("postal_code", "郵便番号", Step::Address, Kind::Text)
    },
    FieldDef { autocomplete: "address-level1", ..def("prefecture", "都道府県", Step::Address, Kind::Prefecture) },
    FieldDef {
        autocomplete: "address-level2", hint: "例: 渋谷区", max_chars: 50, ..def("city", "市区町村", Step::Address, Kind::Text)
    },
    FieldDef { autocomplete: "address-line1", hint: "例: 渋谷2-21-1", ..def("street", "番地", Step::Address, Kind::Text) },
    FieldDef {
        required: false,
        autocomplete: "address-line2",
        hint: "例: 渋谷ヒカリエ 10階",
        ..def("building", "建物名・部屋番号", Step::Address, Kind::Text)
    },
];

pub fn fields_of(step: Step) -> impl Iterator<Item = &'static FieldDef> {
    FIELDS.iter().filter(move |f| f.step == step)
}

/// A submitted form body: every value stripped of control characters and bounded in length. Any
/// bytes at all parse (invalid UTF-8 becomes U+FFFD), so no body can make a handler fail.
#[derive(Debug, Default)]
pub struct Input(HashMap<String, String>);

impl Input {
    pub fn parse(body: &[u8]) -> Input {
        let mut map = HashMap::new();
        for (key, value) in form_urlencoded::parse(body) {
            if key.len() <= 64 {
                map.entry(key.into_owned()).or_insert_with(|| fields::sanitize(&value));
            }
        }
        Input(map)
    }

    /// Name/value pairs from another source (the JSON API), sanitised like a form body.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Input {
        let mut map = HashMap::new();
        for (key, value) in pairs {
            if key.len() <= 64 {
                map.entry(key).or_insert_with(|| fields::sanitize(&value));
            }
        }
        Input(map)
    }

    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or_default()
    }
}

/// What the rules need besides the value.
pub struct Rules<'a> {
    pub min_age: u32,
    pub max_age: u32,
    pub today: time::Date,
    pub catalog: &'a Catalog,
}

/// Checks one field and returns its normalised value. `email` is the (normalised) address the
/// person entered, which the confirmation and password rules compare against.
pub fn check_field(name: &str, value: &str, email: &str, rules: &Rules) -> Option<Rule<String>> {
    Some(match name {
        "family_name" => fields::person_name(value, "姓"),
        "given_name" => fields::person_name(value, "名"),
        "family_name_kana" => fields::katakana(value, "セイ"),
        "given_name_kana" => fields::katakana(value, "メイ"),
        "email" => fields::email(value),
        "email_confirm" => fields::email_confirmation(value, email),
        "password" => password::check(value, email).map(|()| String::new()),
        "phone" => fields::phone(value),
        "birth_date" => fields::birth_date(value, rules.min_age, rules.max_age, rules.today).map(|d| d.to_string()),
        "postal_code" => fields::postal_code(value),
        "prefecture" => fields::prefecture(value),
        "city" => fields::address_part(value, "市区町村", 50, false),
        "street" => fields::address_part(value, "番地", 100, false),
        "building" => fields::address_part(value, "建物名・部屋番号", 100, true),
        "plan_id" => plan(value, rules.catalog),
        _ => return None,
    })
}

fn plan(value: &str, catalog: &Catalog) -> Rule<String> {
    match catalog.plan(value) {
        Some(plan) => Ok(plan.id.clone()),
        None if value.is_empty() => Err("プランを選択してください。".into()),
        None => Err("選択されたプランは現在お申し込みいただけません。別のプランを選択してください。".into()),
    }
}

/// The normalised form of the email, or — while it is invalid — what was typed, lower-cased.
pub fn email_for_rules(raw: &str) -> String {
    fields::email(raw).unwrap_or_else(|_| fields::normalize_text(raw).to_lowercase())
}

/// A field and what is wrong with it.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// The outcome of writing one step's input into the flow.
#[derive(Debug, Default)]
pub struct Applied {
    pub errors: Vec<FieldError>,
    /// A new password that passed its rules and still has to be hashed.
    pub new_password: Option<String>,
}

/// Writes a step's submitted values into `data`: the normalised value where a rule passed, the
/// typed text where it did not (so nothing is lost), and marks the step complete or not.
pub fn apply(step: Step, data: &mut FlowData, input: &Input, has_password: bool, rules: &Rules) -> Applied {
    let mut applied = Applied::default();
    let email = email_for_rules(input.get("email"));
    let names: Vec<&'static str> = match step {
        Step::Plan => vec!["plan_id"],
        Step::Confirm => vec![],
        _ => fields_of(step).map(|f| f.name).collect(),
    };
    for name in names {
        let raw = input.get(name);
        if name == "password" {
            if raw.is_empty() && has_password {
                continue; // keep the password entered earlier
            }
            match password::check(raw, &email) {
                Ok(()) => applied.new_password = Some(raw.to_string()),
                Err(message) => applied.errors.push(FieldError { field: "password", message }),
            }
            continue;
        }
        let Some(result) = check_field(name, raw, &email, rules) else { continue };
        let stored = match result {
            Ok(value) => value,
            Err(message) => {
                applied.errors.push(FieldError { field: name, message });
                fields::normalize_text(raw)
            }
        };
        data.set(name, stored);
    }
    let complete = applied.errors.is_empty();
    match step {
        Step::Customer => data.customer_done = complete,
        Step::Address => data.address_done = complete,
        Step::Plan => data.plan_done = complete,
        Step::Confirm => {}
    }
    applied
}

/// Whether every field of a step holds a value that passes its rule.
pub fn step_complete(step: Step, data: &FlowData, rules: &Rules) -> bool {
    fields_of(step)
        .all(|f| f.kind == Kind::Password || matches!(check_field(f.name, data.get(f.name), data.get("email"), rules), Some(Ok(_))))
}

/// Re-checks every stored value before the final submit: a value may have been saved under an
/// older rule or the catalogue may have changed. Returns the first step that needs attention.
pub fn recheck(data: &FlowData, has_password: bool, rules: &Rules) -> Result<(), Step> {
    if !has_password {
        return Err(Step::Customer);
    }
    for field in FIELDS.iter().filter(|f| f.kind != Kind::Password) {
        if let Some(Err(_)) = check_field(field.name, data.get(field.name), data.get("email"), rules) {
            return Err(field.step);
        }
    }
    match check_field("plan_id", data.get("plan_id"), data.get("email"), rules) {
        Some(Ok(_)) => Ok(()),
        _ => Err(Step::Plan),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(catalog: &Catalog) -> Rules<'_> {
        Rules { min_age: 18, max_age: 120, today: time::macros::date!(2026 - 11 - 29), catalog }
    }

    #[test]
    fn step_order() {
        assert_eq!(Step::Customer.next(), Some(Step::Address));
        assert_eq!(Step::Customer.previous(), None);
        assert_eq!(Step::Confirm.previous(), Some(Step::Plan));
        assert_eq!(Step::Confirm.next(), None);
        let mut data = FlowData::default();
        data.customer_done = true;
        assert_eq!(Step::Confirm.blocked_by(&data), Some(Step::Address));
        assert_eq!(Step::Address.blocked_by(&data), None);
    }

    #[test]
    fn input_parsing_never_fails() {
        let input = Input::parse(b"family_name=%E5%B1%B1%E7%94%B0&given_name=%FF%FE&x=\x00\x01&family_name=second");
        assert_eq!(input.get("family_name"), "山田", "first value wins");
        assert_eq!(input.get("given_name"), "\u{FFFD}\u{FFFD}");
        assert_eq!(input.get("missing"), "");
    }

    #[test]
    fn apply_keeps_typed_values_and_reports_errors() {
        let catalog = Catalog::embedded().expect("catalog");
        let mut data = FlowData::default();
        let input = Input::parse("family_name=%E5%B1%B1%E7%94%B0&family_name_kana=%E3%82%84%E3%81%BE%E3%81%A0&email=bad".as_bytes());
        let applied = apply(Step::Customer, &mut data, &input, false, &rules(&catalog));
        assert_eq!(data.get("family_name"), "山田");
        assert_eq!(data.get("family_name_kana"), "ヤマダ");
        assert_eq!(data.get("email"), "bad");
        assert!(!data.customer_done);
        let failed: Vec<_> = applied.errors.iter().map(|e| e.field).collect();
        assert!(failed.contains(&"email") && failed.contains(&"password") && !failed.contains(&"family_name"), "{failed:?}");
    }
}
