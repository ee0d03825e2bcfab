//! Why an operator decided a review or deleted a registration: a reason code from a fixed list
//! plus a short note. Both end up in the audit log, which outlives the registration, so the note
//! is refused when it holds personal data (`values::pii`: e-mail addresses, phone numbers, postal
//! codes and the registration's own values) with a message that says what was found.

use crate::db::Db;
use crate::values::pii;
use crate::with_pool;

/// One choice of the reason list: the code stored in the audit detail and its Japanese label.
pub struct Code {
    pub code: &'static str,
    pub label: &'static str,
}

/// Reasons for approving or rejecting a review.
pub const REVIEW: &[Code] = &[
    Code { code: "stock_confirmed", label: "在庫を確認済み" },
    Code { code: "region_confirmed", label: "提供地域内と確認済み" },
    Code { code: "out_of_stock", label: "在庫を確保できない" },
    Code { code: "outside_region", label: "提供地域外" },
    Code { code: "duplicate", label: "重複した申し込み" },
    Code { code: "applicant_request", label: "申込者からの依頼" },
    Code { code: "other", label: "その他（メモに記入）" },
];

/// Reasons for deleting a registrant's personal data.
pub const DELETION: &[Code] = &[
    Code { code: "erasure_request", label: "本人からの削除請求" },
    Code { code: "withdrawal", label: "退会・申し込みの取り消し" },
    Code { code: "duplicate", label: "重複した登録" },
    Code { code: "test_data", label: "試験用の登録" },
    Code { code: "other", label: "その他（メモに記入）" },
];

/// Longest note, in characters: a ticket number and a few words, not a story.
pub const MAX_NOTE: usize = 200;

/// What the operator entered, shown again when it is refused.
#[derive(Clone, Copy, Default)]
pub struct Entered<'a> {
    pub code: &'a str,
    pub note: &'a str,
}

/// An accepted reason: the code and the note (possibly empty).
#[derive(Debug, PartialEq, Eq)]
pub struct Reason {
    pub code: &'static str,
    pub note: String,
}

impl Reason {
    /// The one line kept as the review's comment and as the audit detail's `comment`/`reason`:
    /// `在庫を確認済み：問い合わせ #1234`, or the note alone for その他.
    pub fn text(&self, codes: &[Code]) -> String {
        let label = codes.iter().find(|c| c.code == self.code).map_or(self.code, |c| c.label);
        match (self.code, self.note.is_empty()) {
            ("other", _) => self.note.clone(),
            (_, true) => label.to_string(),
            (_, false) => format!("{label}：{}", self.note),
        }
    }
}

/// Checks what was entered. `missing`: the message when a reason is required and none was given
/// (`None`: optional). A note without a code counts as その他 (forms and scripts that only send
/// the note keep working).
pub fn check(
    codes: &'static [Code],
    entered: Entered<'_>,
    missing: Option<&str>,
    values: &[(&'static str, String)],
) -> Result<Option<Reason>, String> {
    let note = entered.note.trim();
    let code = match entered.code.trim() {
        "" if note.is_empty() => return missing.map_or(Ok(None), |message| Err(message.to_string())),
        "" => "other",
        code => codes.iter().find(|c| c.code == code).map(|c| c.code).ok_or_else(|| "理由を一覧から選んでください。".to_string())?,
    };
    if code == "other" && note.is_empty() {
        return Err("「その他」を選んだ場合は、メモに理由を入力してください。".into());
    }
    if note.chars().count() > MAX_NOTE {
        return Err(format!("メモは{MAX_NOTE}文字以内で入力してください。"));
    }
    if let Some(found) = pii::find(note, values) {
        return Err(format!(
            "メモに個人情報（{}）が含まれているようです。監査ログに残るため、個人情報は入力できません。問い合わせ番号など、個人を特定しない内容にしてください。",
            found.label()
        ));
    }
    Ok(Some(Reason { code, note: note.to_string() }))
}

#[derive(sqlx::FromRow)]
struct Values {
    family_name: String,
    given_name: String,
    family_name_kana: String,
    given_name_kana: String,
    email: String,
    phone: String,
    postal_code: String,
    street: String,
    building: String,
}

/// The registration's own values a note must not repeat (labelled for the message), with the
/// kana in both scripts. Empty when the registration is gone.
pub async fn registrant_values(db: &Db, user_id: i64) -> Result<Vec<(&'static str, String)>, sqlx::Error> {
    let row: Option<Values> = with_pool!(db, |pool| sqlx::query_as(
        "SELECT family_name, given_name, family_name_kana, given_name_kana, email, phone, postal_code, street, building \
         FROM users WHERE id = $1"
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await)?;
    Ok(row.map(values_of).unwrap_or_default())
}

fn values_of(v: Values) -> Vec<(&'static str, String)> {
    use wana_kana::ConvertJapanese as _;
    let kana = format!("{}{}", v.family_name_kana, v.given_name_kana);
    vec![
        ("氏名", format!("{}{}", v.family_name, v.given_name)),
        ("姓", v.family_name),
        ("名", v.given_name),
        ("フリガナ", kana.to_katakana()),
        ("フリガナ", kana.to_hiragana()),
        ("セイ", v.family_name_kana.to_katakana()),
        ("セイ", v.family_name_kana.to_hiragana()),
        ("メイ", v.given_name_kana.to_katakana()),
        ("メイ", v.given_name_kana.to_hiragana()),
        ("メールアドレス", v.email),
        ("電話番号", v.phone),
        ("郵便番号", v.postal_code),
        ("番地", v.street),
        ("建物名", v.building),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Vec<(&'static str, String)> {
        values_of(Values {
            family_name: "山田".into(),
            given_name: "太郎".into(),
            family_name_kana: "ヤマダ".into(),
            given_name_kana: "タロウ".into(),
            email: "taro@example.jp".into(),
            phone: "09012345678".into(),
            postal_code: "1500002".into(),
            street: "渋谷2-21-1".into(),
            building: "".into(),
        })
    }

    #[test]
    fn codes_notes_and_personal_data() {
        let v = values();
        let ok = check(REVIEW, Entered { code: "out_of_stock", note: "問い合わせ #1234" }, Some("x"), &v).expect("ok").expect("reason");
        assert_eq!(ok.text(REVIEW), "在庫を確保できない：問い合わせ #1234");
        assert_eq!(check(REVIEW, Entered::default(), None, &v), Ok(None), "approving needs no reason");
        assert_eq!(check(REVIEW, Entered::default(), Some("理由を選んでください。"), &v), Err("理由を選んでください。".into()));
        assert!(check(REVIEW, Entered { code: "other", note: "" }, Some("x"), &v).is_err(), "その他 needs a note");
        assert!(check(REVIEW, Entered { code: "bogus", note: "" }, Some("x"), &v).is_err());
        let note_only = check(DELETION, Entered { code: "", note: "問い合わせ #77" }, Some("x"), &v).expect("ok").expect("reason");
        assert_eq!((note_only.code, note_only.text(DELETION)), ("other", "問い合わせ #77".to_string()));
        let refused = check(REVIEW, Entered { code: "duplicate", note: "やまだ たろう様から電話" }, Some("x"), &v).expect_err("refused");
        assert!(refused.contains("個人情報（フリガナ）"), "{refused}");
        let refused =
            check(DELETION, Entered { code: "erasure_request", note: "連絡先 taro@example.jp" }, Some("x"), &v).expect_err("refused");
        assert!(refused.contains("メールアドレス"), "{refused}");
        assert!(check(REVIEW, Entered { code: "other", note: &"あ".repeat(MAX_NOTE + 1) }, Some("x"), &v).is_err());
    }
}
