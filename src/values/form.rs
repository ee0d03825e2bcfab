//! The form's shape: its steps and the fields on each, as the HTML pages, the JSON API, the inline
//! checks and the dashboard's field statistics all describe them, and a submitted body as the
//! rules read it.

use std::collections::HashMap;

use super::fields;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_order() {
        assert_eq!(Step::Customer.next(), Some(Step::Address));
        assert_eq!(Step::Customer.previous(), None);
        assert_eq!(Step::Confirm.previous(), Some(Step::Plan));
        assert_eq!(Step::Confirm.next(), None);
        assert_eq!(Step::from_slug("plan"), Some(Step::Plan));
    }

    #[test]
    fn input_parsing_never_fails() {
        let input = Input::parse(b"family_name=%E5%B1%B1%E7%94%B0&given_name=%FF%FE&x=\x00\x01&family_name=second");
        assert_eq!(input.get("family_name"), "山田", "first value wins");
        assert_eq!(input.get("given_name"), "\u{FFFD}\u{FFFD}");
        assert_eq!(input.get("missing"), "");
    }
}
