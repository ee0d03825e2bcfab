//! Personal data in free text that must not be kept there: operators' comments on review
//! decisions and deletion requests end up in the audit log, which is kept longer than the
//! registration itself. Finds what looks like an e-mail address, a phone number or a postal code,
//! and a registration's own values (name, kana, address, …), after the same normalisation the form
//! applies (NFKC: full-width digits and letters count too); and masks them in old rows.

use unicode_normalization::UnicodeNormalization;

/// What was found, for the Japanese message that says why a comment was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    Email,
    Phone,
    PostalCode,
    /// One of the registration's own values (its label, e.g. 氏名).
    Value(&'static str),
}

impl Found {
    pub fn label(self) -> &'static str {
        match self {
            Found::Email => "メールアドレス",
            Found::Phone => "電話番号",
            Found::PostalCode => "郵便番号",
            Found::Value(label) => label,
        }
    }
}

/// The mask put in place of what is removed.
pub const MASK: &str = "＊＊＊";

fn normalise(text: &str) -> String {
    text.nfkc().collect()
}

fn is_email_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-".contains(c)
}

/// Byte ranges (in the normalised text) of e-mail-like tokens: `local@domain.tld`.
fn emails(text: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices('@') {
        let start = text[..at].char_indices().rev().take_while(|(_, c)| is_email_char(*c)).last().map_or(at, |(i, _)| i);
        let rest = &text[at + 1..];
        let len = rest
            .char_indices()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
            .last()
            .map_or(0, |(i, c)| i + c.len_utf8());
        let domain = rest[..len].trim_end_matches('.');
        if start < at && domain.contains('.') && !domain.starts_with('.') {
            found.push((start, at + 1 + domain.len()));
        }
    }
    found
}

/// Runs of digits joined by the separators people write in numbers (`-`, spaces, brackets),
/// with their digit counts and byte ranges.
fn digit_runs(text: &str) -> Vec<(usize, usize, String)> {
    let mut runs = Vec::new();
    let mut current: Option<(usize, usize, String)> = None;
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        match (&mut current, c) {
            (_, d) if d.is_ascii_digit() => match &mut current {
                Some((_, last, digits)) => {
                    *last = end;
                    digits.push(d);
                }
                None => current = Some((i, end, d.to_string())),
            },
            (Some(_), '-' | ' ' | '(' | ')' | '‐' | 'ー' | '―') => {}
            _ => {
                if let Some(run) = current.take() {
                    runs.push(run);
                }
            }
        }
    }
    runs.extend(current);
    runs
}

/// Byte ranges of what looks like a phone number (10–11 digits from 0, or +81) or a postal code
/// (3+4 digits, 7 digits, or after 〒).
fn numbers(text: &str) -> Vec<(usize, usize, Found)> {
    let mut found = Vec::new();
    for (start, end, digits) in digit_runs(text) {
        let international = text[..start].ends_with('+') && digits.starts_with("81");
        let kind = match digits.len() {
            10 | 11 if digits.starts_with('0') => Some(Found::Phone),
            11 | 12 if international => Some(Found::Phone),
            7 => Some(Found::PostalCode),
            _ if text[..start].trim_end().ends_with('〒') => Some(Found::PostalCode),
            _ => None,
        };
        if let Some(kind) = kind {
            found.push((if international { start - 1 } else { start }, end, kind));
        }
    }
    found
}

/// The registration's values worth looking for: long enough not to match by chance (a
/// one-character given name would).
fn own_values<'a>(values: &'a [(&'static str, String)]) -> impl Iterator<Item = (&'static str, String)> + 'a {
    values.iter().filter_map(|(label, value)| {
        let value: String = normalise(value).chars().filter(|c| !c.is_whitespace()).collect();
        (value.chars().count() >= 2).then_some((*label, value))
    })
}

/// The first piece of personal data in `text`, if any. `values` are the registration's own
/// (label, value) pairs.
pub fn find(text: &str, values: &[(&'static str, String)]) -> Option<Found> {
    let text = normalise(text);
    if !emails(&text).is_empty() {
        return Some(Found::Email);
    }
    if let Some((_, _, kind)) = numbers(&text).first() {
        return Some(*kind);
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    own_values(values).find(|(_, value)| compact.contains(value.as_str())).map(|(label, _)| Found::Value(label))
}

/// `text` with every piece of personal data replaced by `MASK` (old rows written before the check).
pub fn mask(text: &str, values: &[(&'static str, String)]) -> String {
    let mut text = normalise(text);
    let mut ranges: Vec<(usize, usize)> = emails(&text);
    ranges.extend(numbers(&text).into_iter().map(|(s, e, _)| (s, e)));
    ranges.sort_unstable();
    for (start, end) in ranges.into_iter().rev() {
        text.replace_range(start..end, MASK);
    }
    for (_, value) in own_values(values) {
        text = text.replace(value.as_str(), MASK);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registrant() -> Vec<(&'static str, String)> {
        vec![
            ("氏名", "山田太郎".into()),
            ("姓", "山田".into()),
            ("名", "太".into()),
            ("フリガナ", "ヤマダタロウ".into()),
            ("番地", "渋谷2-21-1".into()),
        ]
    }

    #[test]
    fn finds_addresses_numbers_and_the_registrations_own_values() {
        let values = registrant();
        assert_eq!(find("本人 taro.yamada@example.jp に確認", &values), Some(Found::Email));
        assert_eq!(find("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ に電話", &values), Some(Found::Email), "full-width");
        assert_eq!(find("090-1234-5678 に電話した", &values), Some(Found::Phone));
        assert_eq!(find("０３（１２３４）５６７８", &values), Some(Found::Phone));
        assert_eq!(find("+81 90 1234 5678", &values), Some(Found::Phone));
        assert_eq!(find("〒150-0002 の住所", &values), Some(Found::PostalCode));
        assert_eq!(find("1500002 で確認", &values), Some(Found::PostalCode));
        assert_eq!(find("山田 太郎様と通話", &values), Some(Found::Value("氏名")));
        assert_eq!(find("ﾔﾏﾀﾞﾀﾛｳ", &values), Some(Found::Value("フリガナ")), "half-width kana");
        assert_eq!(find("渋谷２－２１－１に配送", &values), Some(Found::Value("番地")));
    }

    #[test]
    fn ordinary_comments_pass() {
        let values = registrant();
        for comment in ["倉庫に在庫を確認済み", "提供地域内と確認（営業部）", "在庫 3 台を確保", "2026年12月4日に承認", "太い文字"]
        {
            assert_eq!(find(comment, &values), None, "{comment}");
        }
    }

    #[test]
    fn masking_keeps_the_rest_of_the_comment() {
        let values = registrant();
        assert_eq!(mask("山田太郎様 090-1234-5678 taro@example.jp 確認済み", &values), "＊＊＊様 ＊＊＊ ＊＊＊ 確認済み");
        assert_eq!(mask("〒150-0002 在庫あり", &values), "〒＊＊＊ 在庫あり");
        assert_eq!(mask("問題なし", &values), "問題なし");
        let masked = mask("山田太郎 taro@example.jp", &values);
        assert_eq!(find(&masked, &values), None, "{masked}");
    }
}
