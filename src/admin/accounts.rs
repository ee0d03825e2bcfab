//! Admin accounts: created by the CLI only (there is no default account), signed in with an
//! Argon2id password and a TOTP second factor.

use std::io::{BufRead, IsTerminal};

use time::OffsetDateTime;

use super::actor::{AdminUser, Role};
use crate::crypto::token_hash;
use crate::db::Db;
use crate::password::PasswordHasher;
use crate::with_pool;

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub password_hash: String,
    pub totp_secret: Option<String>,
    pub totp_last_step: i64,
}

impl AccountRow {
    pub fn user(&self) -> AdminUser {
        AdminUser { id: self.id, email: self.email.clone(), role: Role::parse(&self.role).unwrap_or(Role::Viewer) }
    }
}

macro_rules! account_columns {
    () => {
        "id, email, role, password_hash, totp_secret, totp_last_step"
    };
}

pub(crate) async fn find_by_email(db: &Db, email: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    let sql = concat!("SELECT ", account_columns!(), " FROM admin_users WHERE email = $1");
    with_pool!(db, |pool| sqlx::query_as(sql).bind(email.trim().to_lowercase()).fetch_optional(pool).await)
}

pub(crate) async fn find_by_id(db: &Db, id: i64) -> Result<Option<AccountRow>, sqlx::Error> {
    let sql = concat!("SELECT ", account_columns!(), " FROM admin_users WHERE id = $1");
    with_pool!(db, |pool| sqlx::query_as(sql).bind(id).fetch_optional(pool).await)
}

/// Records an accepted TOTP step; false when another request used the same or a later step
/// first (the code was replayed).
pub(crate) async fn accept_totp_step(db: &Db, id: i64, step: i64) -> Result<bool, sqlx::Error> {
    let done = with_pool!(db, |pool| {
        sqlx::query("UPDATE admin_users SET totp_last_step = $1, last_sign_in_at = $2 WHERE id = $3 AND totp_last_step < $1")
            .bind(step)
            .bind(OffsetDateTime::now_utc())
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Completes enrolment: the confirmed secret and fresh recovery codes, in one transaction.
pub(crate) async fn enrol(db: &Db, id: i64, sealed_secret: &str, step: i64, recovery_codes: &[String]) -> Result<(), sqlx::Error> {
    let now = OffsetDateTime::now_utc();
    with_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE admin_users SET totp_secret = $1, totp_last_step = $2, last_sign_in_at = $3 WHERE id = $4")
            .bind(sealed_secret)
            .bind(step)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM admin_recovery_codes WHERE admin_id = $1").bind(id).execute(&mut *tx).await?;
        for code in recovery_codes {
            sqlx::query("INSERT INTO admin_recovery_codes (admin_id, code_hash) VALUES ($1, $2)")
                .bind(id)
                .bind(token_hash(&super::totp::normalize_recovery_code(code)))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    })
}

/// Uses up a recovery code; false when it is unknown or was used before.
pub(crate) async fn use_recovery_code(db: &Db, id: i64, code: &str) -> Result<bool, sqlx::Error> {
    let normalized = super::totp::normalize_recovery_code(code);
    if normalized.len() != 10 {
        return Ok(false);
    }
    let done = with_pool!(db, |pool| {
        sqlx::query("UPDATE admin_recovery_codes SET used_at = $1 WHERE admin_id = $2 AND code_hash = $3 AND used_at IS NULL")
            .bind(OffsetDateTime::now_utc())
            .bind(id)
            .bind(token_hash(&normalized))
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

pub(crate) async fn recovery_codes_left(db: &Db, id: i64) -> Result<i64, sqlx::Error> {
    with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM admin_recovery_codes WHERE admin_id = $1 AND used_at IS NULL")
            .bind(id)
            .fetch_one(pool)
            .await
    })
}

// ---- the CLI ----

/// Minimum length for admin passwords: longer than the registrants' 8, as these accounts see
/// everyone's data.
pub const ADMIN_MIN_CHARS: usize = 12;

fn check_password(password: &str, email: &str) -> anyhow::Result<()> {
    if password.chars().count() < ADMIN_MIN_CHARS {
        anyhow::bail!("the password must have at least {ADMIN_MIN_CHARS} characters");
    }
    crate::password::check(password, email).map_err(|message| anyhow::anyhow!("password refused: {message}"))
}

/// The password from the terminal (asked twice, not echoed) or, when stdin is not a terminal,
/// the first line of stdin (for scripts: `printf '%s\n' "$PW" | normal-form-app admin create …`).
pub fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Password (again): ")?;
        if first != second {
            anyhow::bail!("the two passwords differ");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

/// `admin create`: a new account with no second factor yet; it enrols TOTP at first sign-in.
pub async fn create(db: &Db, email: &str, role: Role, password: String) -> anyhow::Result<i64> {
    let email = email.trim().to_lowercase();
    if !email.contains('@') || email.len() > 254 || email.contains(':') {
        anyhow::bail!("not an e-mail address: {email}");
    }
    check_password(&password, &email)?;
    let hash = PasswordHasher::new().hash(password).await?;
    let inserted = with_pool!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO admin_users (email, role, password_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (email) DO NOTHING RETURNING id",
        )
        .bind(&email)
        .bind(role.as_str())
        .bind(&hash)
        .bind(OffsetDateTime::now_utc())
        .fetch_optional(pool)
        .await
    })?;
    let Some(id) = inserted else {
        anyhow::bail!("an admin account for {email} exists already");
    };
    super::audit::record(db, None, "admin.create", &format!("admin:{id}"), serde_json::json!({ "role": role.as_str() })).await?;
    Ok(id)
}

/// `admin reset-2fa`: for a person who lost both the authenticator and the recovery codes. The
/// account enrols again at its next sign-in; its sessions end now.
pub async fn reset_second_factor(db: &Db, email: &str) -> anyhow::Result<()> {
    let Some(account) = find_by_email(db, email).await? else {
        anyhow::bail!("no admin account for {}", email.trim().to_lowercase());
    };
    with_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE admin_users SET totp_secret = NULL WHERE id = $1").bind(account.id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM admin_recovery_codes WHERE admin_id = $1").bind(account.id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM admin_sessions WHERE admin_id = $1").bind(account.id).execute(&mut *tx).await?;
        tx.commit().await
    })?;
    super::audit::record(db, None, "admin.reset_2fa", &format!("admin:{}", account.id), serde_json::json!({})).await?;
    Ok(())
}
