//! The form's fields: normalisation of Japanese input and the rules each value must meet.
//!
//! Every function here takes what a person typed and returns either the normalised value (shown
//! back to them and stored) or a Japanese message saying what to fix. The HTML form, the inline
//! checks of the browser script and the final submit all call these same functions.

use time::{Date, Month};
use unicode_normalization::UnicodeNormalization;
use wana_kana::ConvertJapanese;

pub const PREFECTURES: [&str; 47] = [
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
];

/// Longest value kept from any input; anything longer is cut at the edge (and then fails its
/// own, smaller length rule), so a huge paste can neither bloat a flow nor reach the database.
pub const MAX_INPUT_CHARS: usize = 256;

pub type Rule<T> = Result<T, String>;

/// Every dash-like character people (and IMEs) type between digits.
fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}'
            | '\u{2011}'
            | '\u{2012}'
            | '\u{2013}'
            | '\u{2014}'
            | '\u{2015}'
            | '\u{2212}'
            | '\u{30FC}'
            | '\u{FF0D}'
            | '\u{FE63}'
            | '\u{FF70}'
            | '\u{2043}'
            | '\u{02D7}'
    )
}

/// What the edge does to every submitted value: no control characters (they have no place in a
/// form and PostgreSQL refuses NUL), and a bounded length.
pub fn sanitize(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(MAX_INPUT_CHARS).collect()
}

/// NFKC (全角英数・全角スペース → 半角), spaces collapsed, trimmed.
pub fn normalize_text(raw: &str) -> String {
    let nfkc: String = raw.nfkc().collect();
    nfkc.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn required(value: &str, label: &str) -> Rule<()> {
    if value.is_empty() { Err(format!("{label}を入力してください。")) } else { Ok(()) }
}

fn max_chars(value: &str, label: &str, max: usize) -> Rule<()> {
    if value.chars().count() > max { Err(format!("{label}は{max}文字以内で入力してください。")) } else { Ok(()) }
}

/// 姓・名: free text, normalised, 1–30 characters.
pub fn person_name(raw: &str, label: &str) -> Rule<String> {
    let value = normalize_text(raw);
    required(&value, label)?;
    max_chars(&value, label, 30)?;
    Ok(value)
}

/// セイ・メイ: full-width katakana. Hiragana and half-width kana are converted; spaces dropped.
pub fn katakana(raw: &str, label: &str) -> Rule<String> {
    let nfkc: String = raw.nfkc().filter(|c| !c.is_whitespace()).collect();
    let options = wana_kana::Options { pass_romaji: true, ..Default::default() };
    let kana: String = nfkc.to_katakana_with_opt(options).chars().map(|c| if is_dash(c) { 'ー' } else { c }).collect();
    required(&kana, label)?;
    max_chars(&kana, label, 30)?;
    let is_katakana = |c: char| matches!(c, '\u{30A1}'..='\u{30FA}' | 'ー' | 'ヽ' | 'ヾ');
    if !kana.chars().all(is_katakana) {
        return Err(format!("{label}はカタカナで入力してください。"));
    }
    Ok(kana)
}

/// メールアドレス: lower-cased, and permissive in the local part, because Japanese carrier
/// addresses (docomo, au) often have consecutive dots or a dot before the `@`.
pub fn email(raw: &str) -> Rule<String> {
    let value: String = normalize_text(raw).to_lowercase();
    let label = "メールアドレス";
    required(&value, label)?;
    let invalid = || Err("メールアドレスの形式が正しくありません（例: taro@example.jp）。".to_string());
    if value.chars().count() > 254 {
        return Err("メールアドレスは254文字以内で入力してください。".into());
    }
    let Some((local, domain)) = value.rsplit_once('@') else { return invalid() };
    let local_ok =
        !local.is_empty() && local.len() <= 64 && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    if !local_ok || !domain_ok {
        return invalid();
    }
    Ok(value)
}

pub fn email_confirmation(raw: &str, email: &str) -> Rule<String> {
    let value: String = normalize_text(raw).to_lowercase();
    required(&value, "メールアドレス（確認用）")?;
    if value != email {
        return Err("メールアドレスが一致しません。同じメールアドレスを入力してください。".into());
    }
    Ok(value)
}

/// 電話番号: Japanese numbers, 10 or 11 digits starting with 0, hyphens optional; `+81` is
/// accepted and written the domestic way. Stored as digits only.
pub fn phone(raw: &str) -> Rule<String> {
    let value = normalize_text(raw);
    required(&value, "電話番号")?;
    let mut digits: String = value.chars().filter(|c| !is_dash(*c) && !matches!(c, ' ' | '(' | ')')).collect();
    if let Some(rest) = digits.strip_prefix("+81") {
        digits = format!("0{}", rest.trim_start_matches('0'));
    }
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("電話番号は数字で入力してください（例: 090-1234-5678）。".into());
    }
    if !digits.starts_with('0') || !(10..=11).contains(&digits.len()) {
        return Err("電話番号は0から始まる10桁または11桁で入力してください（例: 090-1234-5678）。".into());
    }
    Ok(digits)
}

/// 生年月日: a real date (YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD or YYYY年M月D日) and an age between
/// the configured limits on today's date in Japan.
pub fn birth_date(raw: &str, min_age: u32, max_age: u32, today: Date) -> Rule<Date> {
    let value = normalize_text(raw);
    required(&value, "生年月日")?;
    let invalid = || Err("生年月日を正しい日付で入力してください（例: 1990-04-01）。".to_string());
    let unified: String =
        value.chars().map(|c| if c == '/' || c == '年' || c == '月' || is_dash(c) { '-' } else { c }).filter(|c| *c != '日').collect();
    let parts: Vec<&str> = if unified.contains('-') {
        unified.split('-').collect()
    } else if unified.len() == 8 && unified.is_ascii() {
        vec![&unified[0..4], &unified[4..6], &unified[6..8]]
    } else {
        return invalid();
    };
    let [y, m, d] = parts.as_slice() else { return invalid() };
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i32>(), m.parse::<u8>(), d.parse::<u8>()) else { return invalid() };
    let Ok(month) = Month::try_from(m) else { return invalid() };
    let Ok(date) = Date::from_calendar_date(y, month, d) else { return invalid() };
    if date > today {
        return Err("生年月日に未来の日付は入力できません。".into());
    }
    let mut age = today.year() - date.year();
    if (today.month() as u8, today.day()) < (date.month() as u8, date.day()) {
        age -= 1;
    }
    if age < min_age as i32 {
        return Err(format!("{min_age}歳未満の方はご登録いただけません。"));
    }
    if age > max_age as i32 {
        return Err("生年月日をご確認ください。".into());
    }
    Ok(date)
}

/// 郵便番号: 7 digits, written with or without the hyphen, in 全角 or 半角. Stored as 7 digits.
pub fn postal_code(raw: &str) -> Rule<String> {
    if raw.len() == 7 && raw.bytes().all(|b| b.is_ascii_digit()) {
        // Already in the stored form (the form's script and API clients send this): nothing to
        // normalise, and the lookup API skips the Unicode normalisation.
        return Ok(raw.to_string());
    }
    let value = normalize_text(raw);
    required(&value, "郵便番号")?;
    let digits: String = value.chars().filter(|c| !is_dash(*c) && *c != ' ' && *c != '〒').collect();
    if digits.len() != 7 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("郵便番号は7桁の数字で入力してください（例: 123-4567）。".into());
    }
    Ok(digits)
}

pub fn prefecture(raw: &str) -> Rule<String> {
    let value = normalize_text(raw);
    if value.is_empty() {
        return Err("都道府県を選択してください。".into());
    }
    if !PREFECTURES.contains(&value.as_str()) {
        return Err("都道府県を一覧から選択してください。".into());
    }
    Ok(value)
}

/// 市区町村 / 番地 / 建物名: free text; dashes between digits become ASCII hyphens.
pub fn address_part(raw: &str, label: &str, max: usize, optional: bool) -> Rule<String> {
    let text = normalize_text(raw);
    let chars: Vec<char> = text.chars().collect();
    let value: String = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let between_digits = i > 0 && chars[i - 1].is_ascii_digit() && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
            if is_dash(c) && (c != 'ー' || between_digits) { '-' } else { c }
        })
        .collect();
    if !optional {
        required(&value, label)?;
    }
    max_chars(&value, label, max)?;
    Ok(value)
}

/// Formats 7 stored digits as `123-4567` for display.
pub fn display_postal_code(digits: &str) -> String {
    if digits.len() == 7 && digits.is_ascii() { format!("{}-{}", &digits[..3], &digits[3..]) } else { digits.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn normalises_full_width_and_spaces() {
        assert_eq!(normalize_text("　ＡＢＣ　　１２３ "), "ABC 123");
        assert_eq!(person_name(" 山田　", "姓"), Ok("山田".to_string()));
        assert_eq!(person_name("", "姓"), Err("姓を入力してください。".to_string()));
        assert!(person_name(&"あ".repeat(31), "姓").is_err());
    }

    #[test]
    fn kana_is_converted_to_katakana() {
        assert_eq!(katakana("やまだ", "セイ"), Ok("ヤマダ".to_string()));
        assert_eq!(katakana("ﾔﾏﾀﾞ", "セイ"), Ok("ヤマダ".to_string()));
        assert_eq!(katakana("ゆーすけ", "メイ"), Ok("ユースケ".to_string()));
        assert_eq!(katakana("ユ－スケ", "メイ"), Ok("ユースケ".to_string()));
        assert_eq!(katakana("山田", "セイ"), Err("セイはカタカナで入力してください。".to_string()));
        assert_eq!(katakana("", "メイ"), Err("メイを入力してください。".to_string()));
    }

    #[test]
    fn email_accepts_carrier_addresses_and_lowercases() {
        assert_eq!(email("Taro..Yamada.@Docomo.ne.jp"), Ok("taro..yamada.@docomo.ne.jp".to_string()));
        assert_eq!(email("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ"), Ok("taro@example.jp".to_string()));
        for bad in ["taro", "taro@", "@example.jp", "taro@example", "taro@exa mple.jp", "た@example.jp", "a@b.c"] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(email_confirmation("TARO@example.jp", "taro@example.jp").is_ok());
        assert_eq!(
            email_confirmation("jiro@example.jp", "taro@example.jp"),
            Err("メールアドレスが一致しません。同じメールアドレスを入力してください。".to_string())
        );
    }

    #[test]
    fn phone_numbers() {
        assert_eq!(phone("090-1234-5678"), Ok("09012345678".to_string()));
        assert_eq!(phone("０３ー１２３４ー５６７８"), Ok("0312345678".to_string()));
        assert_eq!(phone("+81 90-1234-5678"), Ok("09012345678".to_string()));
        for bad in ["12345", "090-1234-56789", "9012345678", "090-abcd-5678"] {
            assert!(phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn birth_dates_and_age_limits() {
        let today = date!(2026 - 11 - 29);
        assert_eq!(birth_date("1990-04-01", 18, 120, today), Ok(date!(1990 - 04 - 01)));
        assert_eq!(birth_date("１９９０／０４／０１", 18, 120, today), Ok(date!(1990 - 04 - 01)));
        assert_eq!(birth_date("1990年4月1日", 18, 120, today), Ok(date!(1990 - 04 - 01)));
        assert_eq!(birth_date("19900401", 18, 120, today), Ok(date!(1990 - 04 - 01)));
        assert!(birth_date("2001-02-29", 18, 120, today).is_err(), "not a real date");
        assert_eq!(birth_date("2008-11-29", 18, 120, today), Ok(date!(2008 - 11 - 29)), "18 today");
        assert_eq!(birth_date("2008-11-30", 18, 120, today), Err("18歳未満の方はご登録いただけません。".to_string()));
        assert!(birth_date("1900-01-01", 18, 120, today).is_err());
        assert!(birth_date("2030-01-01", 18, 120, today).is_err());
    }

    #[test]
    fn postal_codes() {
        assert_eq!(postal_code("１２３-４５６７"), Ok("1234567".to_string()));
        assert_eq!(postal_code("123ー4567"), Ok("1234567".to_string()));
        assert_eq!(postal_code("〒1234567"), Ok("1234567".to_string()));
        assert!(postal_code("123456").is_err());
        assert_eq!(display_postal_code("1234567"), "123-4567");
    }

    #[test]
    fn address_parts_and_prefectures() {
        assert_eq!(address_part("渋谷２－２１ー１", "番地", 100, false), Ok("渋谷2-21-1".to_string()));
        assert_eq!(address_part("コーポ　ラ・メール", "建物名・部屋番号", 100, true), Ok("コーポ ラ・メール".to_string()));
        assert!(address_part("", "番地", 100, false).is_err());
        assert!(address_part("", "建物名・部屋番号", 100, true).is_ok());
        assert_eq!(prefecture("東京都"), Ok("東京都".to_string()));
        assert!(prefecture("東京").is_err());
        assert_eq!(PREFECTURES.len(), 47);
    }

    #[test]
    fn sanitize_drops_controls_and_bounds_length() {
        assert_eq!(sanitize("a\u{0}b\r\nc\u{7f}"), "abc");
        assert_eq!(sanitize(&"x".repeat(10_000)).len(), MAX_INPUT_CHARS);
    }
}
