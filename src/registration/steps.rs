//! How a step's submitted input is checked and written into the flow. The form's shape (steps,
//! fields) is `values::form`; the rules themselves live in `values::fields` and `password`.

use super::flow::FlowData;
use crate::catalog::Catalog;
use crate::password;
use crate::values::fields::{self, Rule};
use crate::values::form::{FIELDS, Input, Kind, Step, fields_of};

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
    fn a_step_is_blocked_by_the_first_incomplete_one_before_it() {
        let mut data = FlowData::default();
        data.customer_done = true;
        assert_eq!(data.incomplete_step_before(Step::Confirm), Some(Step::Address));
        assert_eq!(data.incomplete_step_before(Step::Address), None);
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
