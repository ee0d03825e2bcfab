//! The list's filters as typed (a bookmarkable GET form) and as validated, each problem a
//! Japanese message.

use serde::Deserialize;
use time::OffsetDateTime;
use unicode_normalization::UnicodeNormalization;
use wana_kana::ConvertJapanese;

use crate::values::fields;
use crate::values::jst;

/// The query string as typed: every field optional, validated by [`Filters::parse`].
#[derive(Deserialize, Default, Debug, Clone)]
pub struct RawFilters {
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub inventory: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub verified: String,
    #[serde(default)]
    pub after: String,
    #[serde(default)]
    pub before: String,
    #[serde(default)]
    pub limit: String,
    #[serde(default)]
    pub deleted: String,
    #[serde(default)]
    pub encoding: String,
}

impl RawFilters {
    /// Reads a query string; anything unreadable counts as no filter at all.
    pub fn from_query(query: Option<&str>) -> RawFilters {
        query.and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default()
    }

    /// The search part of the query string (no cursor, no page size), for links and the export.
    pub fn search_query(&self) -> String {
        let pairs = [
            ("number", &self.number),
            ("email", &self.email),
            ("name", &self.name),
            ("phone", &self.phone),
            ("from", &self.from),
            ("to", &self.to),
            ("inventory", &self.inventory),
            ("region", &self.region),
            ("verified", &self.verified),
        ];
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (key, value) in pairs {
            if !value.trim().is_empty() {
                out.append_pair(key, value.trim());
            }
        }
        out.finish()
    }
}

pub const INVENTORY_STATUSES: [(&str, &str); 4] =
    [("reserved", "在庫確保済み"), ("needs_check", "要確認"), ("confirmed", "確認済み"), ("rejected", "却下")];
pub const REGION_STATUSES: [(&str, &str); 5] =
    [("eligible", "提供可"), ("unchecked", "未確認"), ("ineligible", "提供不可（要審査）"), ("approved", "承認"), ("rejected", "却下")];

pub fn inventory_label(status: &str) -> &str {
    INVENTORY_STATUSES.iter().find(|(k, _)| *k == status).map_or(status, |(_, v)| v)
}

pub fn region_label(status: &str) -> &str {
    REGION_STATUSES.iter().find(|(k, _)| *k == status).map_or(status, |(_, v)| v)
}

#[derive(Debug, Clone, PartialEq)]
pub enum EmailFilter {
    Exact(String),
    Prefix(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum NameFilter {
    /// One word: a prefix of the family or given name, in kanji or in kana.
    Word { text: String, kana: String },
    /// 「山田 太郎」: the family name exactly and a prefix of the given name.
    Full { family: String, given: String, family_kana: String, given_kana: String },
}

/// Validated search filters.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub number: Option<String>,
    pub email: Option<EmailFilter>,
    pub name: Option<NameFilter>,
    pub phone: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub inventory: Option<&'static str>,
    pub region: Option<&'static str>,
    pub verified: Option<bool>,
}

fn to_katakana(text: &str) -> String {
    let options = wana_kana::Options { pass_romaji: true, ..Default::default() };
    text.to_katakana_with_opt(options)
}

impl Filters {
    /// Validates the typed filters; each problem is a Japanese message.
    pub fn parse(raw: &RawFilters) -> Result<Filters, Vec<String>> {
        let mut errors = Vec::new();
        let mut filters = Filters::default();
        let number: String = raw.number.nfkc().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_uppercase();
        if !raw.number.trim().is_empty() {
            if number.len() == 12 {
                filters.number = Some(format!("{}-{}-{}", &number[0..4], &number[4..8], &number[8..12]));
            } else {
                errors.push("受付番号は「XXXX-XXXX-XXXX」の12文字で入力してください。".to_string());
            }
        }
        let email = fields::normalize_text(&raw.email).to_lowercase();
        if !email.is_empty() {
            filters.email = Some(if email.contains('@') { EmailFilter::Exact(email) } else { EmailFilter::Prefix(email) });
        }
        let name = fields::normalize_text(&raw.name);
        let words: Vec<&str> = name.split(' ').filter(|w| !w.is_empty()).collect();
        match words.as_slice() {
            [] => {}
            [word] => filters.name = Some(NameFilter::Word { text: word.to_string(), kana: to_katakana(word) }),
            [family, given] => {
                filters.name = Some(NameFilter::Full {
                    family: family.to_string(),
                    given: given.to_string(),
                    family_kana: to_katakana(family),
                    given_kana: to_katakana(given),
                })
            }
            _ => errors.push("氏名は「姓」または「姓 名」の形で入力してください。".to_string()),
        }
        if !raw.phone.trim().is_empty() {
            match fields::phone(&raw.phone) {
                Ok(digits) => filters.phone = Some(digits),
                Err(message) => errors.push(message),
            }
        }
        let from = raw.from.trim();
        if !from.is_empty() {
            match jst::parse_date(from) {
                Some(date) => filters.from = Some(jst::start_of_day(date)),
                None => errors.push("登録日（から）を正しい日付で入力してください（例: 2026-04-01）。".to_string()),
            }
        }
        let to = raw.to.trim();
        if !to.is_empty() {
            match jst::parse_date(to).and_then(|d| d.next_day()) {
                Some(next) => filters.until = Some(jst::start_of_day(next)),
                None => errors.push("登録日（まで）を正しい日付で入力してください（例: 2026-04-30）。".to_string()),
            }
        }
        if let (Some(from), Some(until)) = (filters.from, filters.until)
            && from >= until
        {
            errors.push("登録日の範囲が正しくありません（「から」は「まで」以前の日付にしてください）。".to_string());
        }
        let inventory = raw.inventory.trim();
        if !inventory.is_empty() {
            match INVENTORY_STATUSES.iter().find(|(k, _)| *k == inventory) {
                Some((k, _)) => filters.inventory = Some(k),
                None => errors.push("在庫確認の状態を一覧から選択してください。".to_string()),
            }
        }
        let region = raw.region.trim();
        if !region.is_empty() {
            match REGION_STATUSES.iter().find(|(k, _)| *k == region) {
                Some((k, _)) => filters.region = Some(k),
                None => errors.push("地域確認の状態を一覧から選択してください。".to_string()),
            }
        }
        match raw.verified.trim() {
            "" => {}
            "yes" => filters.verified = Some(true),
            "no" => filters.verified = Some(false),
            _ => errors.push("メール確認の状態を一覧から選択してください。".to_string()),
        }
        if errors.is_empty() { Ok(filters) } else { Err(errors) }
    }

    /// Which filters are set, without their values (for the audit log, which holds no personal data).
    pub fn summary(&self) -> serde_json::Value {
        let day = |t: Option<OffsetDateTime>| t.map(|t| jst::date_of(t).to_string());
        serde_json::json!({
            "number": self.number.is_some(),
            "email": self.email.is_some(),
            "name": self.name.is_some(),
            "phone": self.phone.is_some(),
            "from": day(self.from),
            "until_exclusive": day(self.until),
            "inventory_status": self.inventory,
            "region_status": self.region,
            "email_verified": self.verified,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawFilters {
        let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        RawFilters::from_query(Some(&query))
    }

    #[test]
    fn registration_numbers_are_normalised() {
        let filters = Filters::parse(&raw(&[("number", "ａｂｃｄ－２３４５ efgh")])).expect("valid");
        assert_eq!(filters.number.as_deref(), Some("ABCD-2345-EFGH"));
        assert!(Filters::parse(&raw(&[("number", "ABCD")])).is_err());
    }

    #[test]
    fn names_in_hiragana_search_katakana() {
        let filters = Filters::parse(&raw(&[("name", "やまだ")])).expect("valid");
        assert_eq!(filters.name, Some(NameFilter::Word { text: "やまだ".into(), kana: "ヤマダ".into() }));
    }

    #[test]
    fn bad_dates_are_refused_in_japanese() {
        let errors = Filters::parse(&raw(&[("from", "2026-02-30")])).expect_err("invalid");
        assert!(errors[0].contains("登録日"));
    }

    #[test]
    fn dates_are_japan_days() {
        let filters = Filters::parse(&raw(&[("from", "2026-04-01"), ("to", "2026-04-01")])).expect("valid");
        assert_eq!(filters.from.map(|t| t.to_string()), Some("2026-03-31 15:00:00.0 +00:00:00".to_string()));
        assert_eq!(filters.until.map(|t| t.to_string()), Some("2026-04-01 15:00:00.0 +00:00:00".to_string()));
    }
}
