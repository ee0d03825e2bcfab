//! The second factor: RFC 6238 time-based one-time passwords (SHA-1, 6 digits, 30 s — what every
//! authenticator app reads from the QR code), one-time recovery codes, and the encryption of the
//! TOTP secret at rest.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use totp_rs::{Algorithm, TOTP};

use crate::crypto::constant_time_eq;

const STEP_SECS: u64 = 30;
const ISSUER: &str = "normal-form-app";
pub const RECOVERY_CODES: usize = 10;
/// Recovery codes use the 受付番号 alphabet: no 0/O/1/I/L to misread from paper.
const RECOVERY_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A fresh 160-bit secret (RFC 4226 §4 recommends 160 bits).
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 20];
    rand::rng().fill_bytes(&mut secret);
    secret
}

fn totp(secret: &[u8], account: &str) -> anyhow::Result<TOTP> {
    // The label may not hold ':'; e-mail addresses never do.
    Ok(TOTP::new(Algorithm::SHA1, 6, 1, STEP_SECS, secret.to_vec(), Some(ISSUER.to_string()), account.to_string())?)
}

/// The `otpauth://` URI an authenticator app reads from the QR code.
pub fn provisioning_uri(secret: &[u8], account: &str) -> anyhow::Result<String> {
    Ok(totp(secret, account)?.get_url())
}

/// The secret in base32, for people who type it into their app instead of scanning.
pub fn secret_base32(secret: &[u8], account: &str) -> anyhow::Result<String> {
    Ok(totp(secret, account)?.get_secret_base32())
}

/// The QR code of `uri` as an SVG data URI for an `<img>` (the CSP allows `data:` images).
pub fn qr_data_uri(uri: &str) -> anyhow::Result<String> {
    let code = qrcode::QrCode::new(uri.as_bytes())?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(220, 220).quiet_zone(true).build();
    Ok(format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg)))
}

/// The time step a code was made for, when it matches the current step or one either side
/// (clock drift) and is newer than `last_step` (each code works once).
pub fn verify(secret: &[u8], code: &str, last_step: i64, now_unix: u64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret, "x").ok()?;
    let current = now_unix / STEP_SECS;
    (current.saturating_sub(1)..=current + 1)
        .filter(|step| i64::try_from(*step).is_ok_and(|s| s > last_step))
        .find(|step| constant_time_eq(&totp.generate(step * STEP_SECS), code))
        .and_then(|step| i64::try_from(step).ok())
}

/// The code for the time `unix` (what the authenticator app shows then).
pub fn code_at(secret: &[u8], unix: u64) -> anyhow::Result<String> {
    Ok(totp(secret, "x")?.generate(unix))
}

/// The secret from its base32 form as shown on the enrolment page (spaces allowed).
pub fn secret_from_base32(text: &str) -> anyhow::Result<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    totp_rs::Secret::Encoded(compact).to_bytes().map_err(|e| anyhow::anyhow!("not a base32 secret: {e:?}"))
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// Ten codes shown once at enrolment, as `XXXX-XXXX-XX`.
pub fn new_recovery_codes() -> Vec<String> {
    let mut rng = rand::rng();
    (0..RECOVERY_CODES)
        .map(|_| {
            let symbols: String = (0..10).map(|_| RECOVERY_ALPHABET[(rng.next_u32() as usize) % RECOVERY_ALPHABET.len()] as char).collect();
            format!("{}-{}-{}", &symbols[..4], &symbols[4..8], &symbols[8..])
        })
        .collect()
}

/// What a person typed as a recovery code, in the form it was hashed in: upper case, without
/// hyphens or spaces (and full-width characters folded by NFKC first).
pub fn normalize_recovery_code(input: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    input.nfkc().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

/// ChaCha20-Poly1305 under a key derived from `SECRET_KEY`: a copy of the database alone does
/// not give away the accounts' second factors.
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl SecretBox {
    pub fn new(secret_key: &[u8]) -> anyhow::Result<SecretBox> {
        // HMAC accepts keys of any length; the error case cannot happen but is not unwrapped.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret_key).map_err(|_| anyhow::anyhow!("deriving the TOTP key"))?;
        mac.update(b"normal-form-app admin TOTP secret v1");
        let key = mac.finalize().into_bytes();
        Ok(SecretBox { cipher: ChaCha20Poly1305::new(&key) })
    }

    pub fn seal(&self, plain: &[u8]) -> anyhow::Result<String> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self.cipher.encrypt(&Nonce::from(nonce), plain).map_err(|_| anyhow::anyhow!("encrypting the TOTP secret"))?;
        Ok(format!("{}.{}", URL_SAFE_NO_PAD.encode(nonce), URL_SAFE_NO_PAD.encode(sealed)))
    }

    pub fn open(&self, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let (nonce, data) = sealed.split_once('.').ok_or_else(|| anyhow::anyhow!("malformed sealed TOTP secret"))?;
        let nonce: [u8; 12] = URL_SAFE_NO_PAD.decode(nonce)?.try_into().map_err(|_| anyhow::anyhow!("malformed sealed TOTP secret"))?;
        let data = URL_SAFE_NO_PAD.decode(data)?;
        self.cipher
            .decrypt(&Nonce::from(nonce), data.as_slice())
            .map_err(|_| anyhow::anyhow!("the TOTP secret does not open with this SECRET_KEY"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 Appendix B, SHA-1 seed, truncated to 6 digits.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_vectors() {
        assert_eq!(verify(RFC_SECRET, "287082", 0, 59), Some(1));
        assert_eq!(verify(RFC_SECRET, "081804", 0, 1_111_111_109), Some(37_037_036));
        assert_eq!(verify(RFC_SECRET, "005924", 0, 1_234_567_890), Some(41_152_263));
    }

    #[test]
    fn a_code_works_once_and_only_near_its_time() {
        let step = verify(RFC_SECRET, "287082", 0, 59).expect("valid");
        assert_eq!(verify(RFC_SECRET, "287082", step, 59), None, "replay refused");
        assert_eq!(verify(RFC_SECRET, "287082", 0, 59 + 30), Some(1), "one step of drift allowed");
        assert_eq!(verify(RFC_SECRET, "287082", 0, 59 + 90), None, "older codes refused");
        assert_eq!(verify(RFC_SECRET, "28708", 0, 59), None);
        assert_eq!(verify(RFC_SECRET, "abcdef", 0, 59), None);
    }

    #[test]
    fn secrets_are_sealed_and_bound_to_the_key() {
        let secret = new_secret();
        let sealed = SecretBox::new(b"key one").expect("key").seal(&secret).expect("seal");
        assert!(!sealed.contains(&secret_base32(&secret, "a@example.jp").expect("b32")));
        assert_eq!(SecretBox::new(b"key one").expect("key").open(&sealed).expect("open"), secret);
        assert!(SecretBox::new(b"key two").expect("key").open(&sealed).is_err());
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalise() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(codes.iter().collect::<std::collections::HashSet<_>>().len(), RECOVERY_CODES);
        assert!(codes[0].len() == 12 && codes[0].chars().filter(|c| *c == '-').count() == 2);
        assert_eq!(normalize_recovery_code(" abcd-ＥＦＧＨ-jk "), "ABCDEFGHJK");
    }

    #[test]
    fn base32_round_trip() {
        let shown = secret_base32(RFC_SECRET, "a@example.jp").expect("b32");
        let spaced = shown.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).expect("ascii")).collect::<Vec<_>>().join(" ");
        assert_eq!(secret_from_base32(&spaced).expect("decode"), RFC_SECRET);
        assert_eq!(code_at(RFC_SECRET, 59).expect("code"), "287082");
    }

    #[test]
    fn provisioning_uri_names_issuer_and_account() {
        let uri = provisioning_uri(RFC_SECRET, "ops@example.jp").expect("uri");
        assert!(uri.starts_with("otpauth://totp/normal-form-app:ops%40example.jp?"), "{uri}");
        assert!(qr_data_uri(&uri).expect("qr").starts_with("data:image/svg+xml;base64,"));
    }
}
