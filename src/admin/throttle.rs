//! Sign-in throttling shared by every instance (it lives in the database): failures are counted
//! per account and per client network. Past a few free failures a key must wait, twice as long
//! after each further failure, up to a cap — so guessing is slow, but nobody can lock an admin
//! out for longer than the cap. A success clears the account's count.

use std::time::Duration;

use time::OffsetDateTime;

use crate::db::Db;
use crate::with_pool;

#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Failures allowed before the first wait.
    pub free_failures: i32,
    pub first_wait: Duration,
    pub max_wait: Duration,
}

pub const ACCOUNT: Policy = Policy { free_failures: 5, first_wait: Duration::from_secs(60), max_wait: Duration::from_secs(15 * 60) };
pub const NETWORK: Policy = Policy { free_failures: 20, first_wait: Duration::from_secs(60), max_wait: Duration::from_secs(60 * 60) };
/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

impl Policy {
    /// The wait after the `failures`-th failure: none within the free ones, then 1×, 2×, 4× … the
    /// first wait, never more than the cap.
    pub fn wait_after(&self, failures: i32) -> Option<Duration> {
        let over = failures - self.free_failures;
        if over < 0 {
            return None;
        }
        let factor = 1u32.checked_shl(over.min(30) as u32).unwrap_or(u32::MAX);
        Some(self.first_wait.saturating_mul(factor).min(self.max_wait))
    }
}

/// How long `key` must still wait, if at all.
pub async fn locked_for(db: &Db, key: &str) -> Result<Option<Duration>, sqlx::Error> {
    let until: Option<Option<OffsetDateTime>> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT locked_until FROM admin_sign_in_throttle WHERE key = $1").bind(key).fetch_optional(pool).await
    })?;
    let now = OffsetDateTime::now_utc();
    Ok(until.flatten().filter(|until| *until > now).map(|until| (until - now).unsigned_abs()))
}

/// Counts a failure; returns the wait it starts, if any.
pub async fn fail(db: &Db, key: &str, policy: Policy) -> Result<Option<Duration>, sqlx::Error> {
    let now = OffsetDateTime::now_utc();
    let failures: i32 = with_pool!(db, |pool| {
        sqlx::query_scalar(
            "INSERT INTO admin_sign_in_throttle (key, failures, updated_at) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN admin_sign_in_throttle.updated_at < $3 THEN 1 ELSE admin_sign_in_throttle.failures + 1 END, \
               updated_at = excluded.updated_at \
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(now - FORGET_AFTER)
        .fetch_one(pool)
        .await
    })?;
    let wait = policy.wait_after(failures);
    if let Some(wait) = wait {
        with_pool!(db, |pool| {
            sqlx::query("UPDATE admin_sign_in_throttle SET locked_until = $1 WHERE key = $2")
                .bind(now + wait)
                .bind(key)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
    }
    Ok(wait)
}

pub async fn clear(db: &Db, key: &str) -> Result<(), sqlx::Error> {
    with_pool!(db, |pool| sqlx::query("DELETE FROM admin_sign_in_throttle WHERE key = $1").bind(key).execute(pool).await.map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        assert_eq!(ACCOUNT.wait_after(4), None);
        assert_eq!(ACCOUNT.wait_after(5), Some(Duration::from_secs(60)));
        assert_eq!(ACCOUNT.wait_after(6), Some(Duration::from_secs(120)));
        assert_eq!(ACCOUNT.wait_after(8), Some(Duration::from_secs(480)));
        assert_eq!(ACCOUNT.wait_after(9), Some(Duration::from_secs(900)));
        assert_eq!(ACCOUNT.wait_after(1000), Some(Duration::from_secs(900)), "never longer than the cap");
        assert_eq!(NETWORK.wait_after(19), None);
    }
}
