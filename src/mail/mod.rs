//! Registration mail through an outbox: messages are rendered and written to `outbox` in the same
//! transaction as the registration they belong to (so a crash can neither lose a mail nor send
//! one for a rolled-back registration), then delivered by `worker` in every instance.
//!
//! Messages: 登録確認 (with a signed, single-use, 24-hour verification link) and 既に登録済み (to
//! the owner of an address someone tried to register again; at most once an hour).

pub mod transport;
pub mod verify;
pub mod worker;

use askama::Template;
use time::OffsetDateTime;

use crate::config::MailConfig;
use crate::values::jst;

/// A message ready for the outbox.
#[derive(Clone, Debug)]
pub struct OutgoingMail {
    pub kind: &'static str,
    pub recipient: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What the 登録確認 mail says, shared by its text and HTML parts.
struct Confirmation<'a> {
    family_name: &'a str,
    given_name: &'a str,
    family_name_kana: &'a str,
    given_name_kana: &'a str,
    email: &'a str,
    plan: &'a str,
    registration_number: &'a str,
    verify_url: &'a str,
}

#[derive(Template)]
#[template(path = "mail/confirmation.txt", escape = "none")]
struct ConfirmationText<'a> {
    m: &'a Confirmation<'a>,
}

#[derive(Template)]
#[template(path = "mail/confirmation.html")]
struct ConfirmationHtml<'a> {
    m: &'a Confirmation<'a>,
}

#[derive(Template)]
#[template(path = "mail/duplicate.txt", escape = "none")]
struct DuplicateText<'a> {
    attempted_at: &'a str,
}

#[derive(Template)]
#[template(path = "mail/duplicate.html")]
struct DuplicateHtml<'a> {
    attempted_at: &'a str,
}

/// Header values come from configuration or input: no CR/LF may ever reach a header.
pub fn header_safe(value: &str) -> String {
    value.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_string()
}

/// Verification links are valid for this long.
pub const VERIFY_LINK_HOURS: i64 = 24;

/// HMAC over the registration number, the address and the expiry: the link proves it was sent by
/// us to that address, and cannot be extended or moved to another registration.
pub fn link_signature(secret: &[u8], number: &str, email: &str, expires: i64) -> String {
    crate::crypto::sign(secret, &format!("verify-email\n{number}\n{email}\n{expires}"))
}

pub fn verify_url(base_url: &str, secret: &[u8], number: &str, email: &str, now: OffsetDateTime) -> String {
    let expires = (now + time::Duration::hours(VERIFY_LINK_HOURS)).unix_timestamp();
    let signature = link_signature(secret, number, email, expires);
    format!("{base_url}/verify-email?n={number}&e={expires}&s={signature}")
}

/// Who a confirmation mail is addressed to, as registered.
pub struct Addressee<'a> {
    pub family_name: &'a str,
    pub given_name: &'a str,
    pub family_name_kana: &'a str,
    pub given_name_kana: &'a str,
    pub email: &'a str,
}

pub fn confirmation(mail: &MailConfig, to: &Addressee, plan_name: &str, number: &str, verify_url: &str) -> anyhow::Result<OutgoingMail> {
    let m = Confirmation {
        family_name: to.family_name,
        given_name: to.given_name,
        family_name_kana: to.family_name_kana,
        given_name_kana: to.given_name_kana,
        email: to.email,
        plan: plan_name,
        registration_number: number,
        verify_url,
    };
    Ok(OutgoingMail {
        kind: "confirmation",
        recipient: m.email.to_string(),
        subject: header_safe(&mail.subject_confirmation),
        text: ConfirmationText { m: &m }.render()?,
        html: ConfirmationHtml { m: &m }.render()?,
    })
}

/// The owner's notice carries nothing of the new attempt but its time.
pub fn duplicate_notice(mail: &MailConfig, email: &str, at: OffsetDateTime) -> anyhow::Result<OutgoingMail> {
    let attempted_at = jst::japanese_date_time(at);
    Ok(OutgoingMail {
        kind: "duplicate",
        recipient: email.to_string(),
        subject: header_safe(&mail.subject_duplicate),
        text: DuplicateText { attempted_at: &attempted_at }.render()?,
        html: DuplicateHtml { attempted_at: &attempted_at }.render()?,
    })
}

/// Writes a message to the outbox with whatever executor is at hand — a pool, or the
/// transaction of the registration it belongs to (a macro, as the executor's type differs by
/// backend).
#[macro_export]
macro_rules! insert_outbox {
    ($executor:expr, $mail:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO outbox (kind, recipient, subject, body_text, body_html, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind($mail.kind)
        .bind(&$mail.recipient)
        .bind(&$mail.subject)
        .bind(&$mail.text)
        .bind(&$mail.html)
        .bind($now)
        .execute($executor)
    };
}

/// Claims the right to send `kind` mail to `email` now, at most once per `every`: true when the
/// previous one (if any) is older. One statement, so concurrent attempts cannot both win.
#[macro_export]
macro_rules! claim_mail_slot {
    ($executor:expr, $kind:expr, $email:expr, $now:expr, $every:expr) => {
        sqlx::query_scalar::<_, String>(
            "INSERT INTO mail_throttle (kind, email, last_sent_at) VALUES ($1, $2, $3) \
             ON CONFLICT (kind, email) DO UPDATE SET last_sent_at = excluded.last_sent_at \
             WHERE mail_throttle.last_sent_at < $4 RETURNING email",
        )
        .bind($kind)
        .bind($email)
        .bind($now)
        .bind($now - $every)
        .fetch_optional($executor)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_never_carry_line_breaks() {
        assert_eq!(header_safe("件名\r\nBcc: victim@example.jp"), "件名  Bcc: victim@example.jp");
    }

    #[test]
    fn signatures_bind_number_address_and_expiry() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let a = link_signature(secret, "AAAA-BBBB-CCCC", "taro@example.jp", 100);
        assert_eq!(a, link_signature(secret, "AAAA-BBBB-CCCC", "taro@example.jp", 100));
        assert_ne!(a, link_signature(secret, "AAAA-BBBB-CCCD", "taro@example.jp", 100));
        assert_ne!(a, link_signature(secret, "AAAA-BBBB-CCCC", "jiro@example.jp", 100));
        assert_ne!(a, link_signature(secret, "AAAA-BBBB-CCCC", "taro@example.jp", 101));
        assert_ne!(a, link_signature(b"another-secret-another-secret-xx", "AAAA-BBBB-CCCC", "taro@example.jp", 100));
    }
}
