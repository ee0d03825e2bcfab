//! Where mail goes: SMTP (`SMTP_URL`, STARTTLS or TLS with authentication, via lettre), or — the
//! embedded default — `.eml` files under `DATA_DIR/mail/` that a newcomer can open and read.

use std::path::PathBuf;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::MailConfig;

pub enum Transport {
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
    Files(PathBuf),
}

/// A row of the outbox, as the worker sends it.
pub struct Envelope {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Transport {
    pub fn from_config(mail: &MailConfig, data_dir: &std::path::Path) -> anyhow::Result<Transport> {
        match &mail.smtp_url {
            Some(url) => {
                crate::external::install_crypto_provider();
                let transport =
                    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?.timeout(Some(std::time::Duration::from_secs(10))).build();
                Ok(Transport::Smtp(Box::new(transport)))
            }
            None => Ok(Transport::Files(data_dir.join("mail"))),
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Transport::Smtp(_) => "smtp",
            Transport::Files(_) => "files",
        }
    }

    pub async fn send(&self, from: &Mailbox, envelope: &Envelope) -> anyhow::Result<()> {
        let message = build(from, envelope)?;
        match self {
            Transport::Smtp(smtp) => {
                smtp.send(message).await?;
            }
            Transport::Files(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                let path = dir.join(format!("{:08}.eml", envelope.id));
                tokio::fs::write(path, message.formatted()).await?;
            }
        }
        Ok(())
    }
}

/// Japanese carrier addresses (`taro..yamada.@docomo.ne.jp`) are not dot-atoms; SMTP takes
/// them as a quoted local part.
pub fn recipient_address(email: &str) -> anyhow::Result<Address> {
    if let Ok(address) = email.parse::<Address>() {
        return Ok(address);
    }
    let (local, domain) = email.rsplit_once('@').ok_or_else(|| anyhow::anyhow!("not an address"))?;
    Ok(Address::new(format!("\"{local}\""), domain)?)
}

/// lettre writes every header itself: non-ASCII is RFC 2047-encoded and no value can add a header.
fn build(from: &Mailbox, envelope: &Envelope) -> anyhow::Result<Message> {
    let to = Mailbox::new(None, recipient_address(&envelope.recipient)?);
    let message = Message::builder().from(from.clone()).to(to).subject(super::header_safe(&envelope.subject)).multipart(
        MultiPart::alternative()
            .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(envelope.text.clone()))
            .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(envelope.html.clone())),
    )?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carrier_addresses_are_quoted() {
        assert_eq!(recipient_address("taro@example.jp").expect("plain").to_string(), "taro@example.jp");
        assert_eq!(recipient_address("taro..yamada.@docomo.ne.jp").expect("carrier").to_string(), "\"taro..yamada.\"@docomo.ne.jp");
    }

    #[test]
    fn japanese_headers_are_encoded_and_cannot_be_injected() {
        let from: Mailbox = "会員登録 <no-reply@example.jp>".parse().expect("from");
        let envelope = Envelope {
            id: 1,
            recipient: "taro@example.jp".into(),
            subject: "ご登録ありがとうございます\r\nBcc: victim@example.jp".into(),
            text: "本文".into(),
            html: "<p>本文</p>".into(),
        };
        let raw = String::from_utf8(build(&from, &envelope).expect("message").formatted()).expect("utf8");
        let headers = &raw[..raw.find("\r\n\r\n").expect("end of headers")];
        assert!(!headers.lines().any(|l| l.starts_with("Bcc:")), "{headers}");
        assert!(headers.contains("Subject: =?utf-8?"), "RFC 2047: {headers}");
        assert!(headers.contains("From: =?utf-8?"), "{headers}");
    }
}
