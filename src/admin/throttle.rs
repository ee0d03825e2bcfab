//! Sign-in back-off shared by every instance (it lives in the database), per key: the typed
//! account, the account's second factor, and the client network. Past a few free failures a key
//! must wait before its next attempt is even checked, twice as long after each further failure,
//! up to the key's cap. Nothing is ever locked for longer than a cap, so knowing an operator's
//! address buys an attacker at most a short delay for them; a full sign-in clears the account's
//! counts. Every function takes `now`, so tests can drive a thousand attempts with a clock of
//! their own.
//!
//! What that leaves a guesser, per day (86,400 s), whatever the number of addresses used:
//! - per account, one checked password per [`ACCOUNT`] cap (30 s) once the ramp is over:
//!   at most 86,400 / 30 = 2,880, plus the 5 free failures and the 5 ramp steps (1+2+4+8+16 s),
//!   i.e. fewer than 2,900 checked guesses per account per day, against a password of 12 or
//!   more characters that is not on the common-password list — and the TOTP code still to come;
//! - per client network, one attempt per [`NETWORK`] cap (15 min): 96 a day from each /24;
//! - per second factor (the password already known), one code per [`SECOND_FACTOR`] cap
//!   (15 min): 96 codes a day, i.e. about 96 × 3 / 10⁶ ≈ 0.03 % chance a day of hitting one of
//!   the three codes a ±30 s window accepts.

use std::net::IpAddr;
use std::time::Duration;

use time::OffsetDateTime;

use crate::crypto::token_hash;
use crate::db::Db;
use crate::http::rate_limit::network_of;
use crate::with_pool;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Failures that start no wait.
    pub free_failures: i32,
    /// The wait after the first failure past the free ones; it doubles with each further one.
    pub first_wait: Duration,
    pub max_wait: Duration,
}

/// The typed address. Short cap: this is the key an attacker shares with the real operator, who
/// must never wait longer than this for it.
pub const ACCOUNT: Policy = Policy { free_failures: 5, first_wait: Duration::from_secs(1), max_wait: Duration::from_secs(30) };
/// The client network (/24, or /48 in IPv6): the attacker's own, so it backs off hard.
pub const NETWORK: Policy = Policy { free_failures: 10, first_wait: Duration::from_secs(1), max_wait: Duration::from_secs(15 * 60) };
/// Codes typed by someone who got past the password: only the password's owner (or whoever has
/// it) can fail here, so it backs off hard too.
pub const SECOND_FACTOR: Policy = Policy { free_failures: 5, first_wait: Duration::from_secs(1), max_wait: Duration::from_secs(15 * 60) };
/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What a key counts, and so which policy it follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Account,
    SecondFactor,
    Network,
}

impl KeyKind {
    pub fn policy(self) -> Policy {
        match self {
            KeyKind::Account => ACCOUNT,
            KeyKind::SecondFactor => SECOND_FACTOR,
            KeyKind::Network => NETWORK,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Account => "account",
            KeyKind::SecondFactor => "second_factor",
            KeyKind::Network => "network",
        }
    }
}

/// One row of `admin_sign_in_throttle`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub kind: KeyKind,
    pub name: String,
}

impl Key {
    /// The typed address, by a hash (so unknown addresses are throttled too and no address is
    /// stored).
    pub fn account(email: &str) -> Key {
        Key { kind: KeyKind::Account, name: format!("account:{}", token_hash(&email.trim().to_lowercase())) }
    }

    pub fn second_factor(admin_id: i64) -> Key {
        Key { kind: KeyKind::SecondFactor, name: format!("second_factor:{admin_id}") }
    }

    /// The client's network, the unit the rate limits use too: one person rarely has more than
    /// one, an attacker with a /24 or a /48 of addresses gets one key for all of them.
    pub fn network(ip: IpAddr) -> Key {
        Key { kind: KeyKind::Network, name: format!("network:{}", network_of(ip)) }
    }
}

/// Whether an attempt may be checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Check the password or code.
    Check,
    /// Refuse without checking: `kind`'s key waits `wait` more (the longest of the keys').
    Refused { wait: Duration, kind: KeyKind, network_failure: Option<Failure> },
}

/// Decides at `now` whether an attempt under `keys` may be checked: not while any key waits.
/// A refused attempt is counted against the network key only — hammering during a wait pushes
/// the attacker's own network further back (to its 15-minute cap, re-armed by every refusal),
/// but never the account's wait, which stays bounded by the account cap for the real operator.
pub async fn admit(db: &Db, keys: &[Key], now: OffsetDateTime) -> Result<Admission, sqlx::Error> {
    let mut longest: Option<(Duration, KeyKind)> = None;
    for key in keys {
        if let Some(wait) = wait_left(db, &key.name, now).await?
            && longest.is_none_or(|(l, _)| wait > l)
        {
            longest = Some((wait, key.kind));
        }
    }
    let Some((mut wait, mut kind)) = longest else { return Ok(Admission::Check) };
    let mut network_failure = None;
    for key in keys.iter().filter(|k| k.kind == KeyKind::Network) {
        let failure = fail(db, &key.name, key.kind.policy(), now).await?;
        if let Some(longer) = failure.wait.filter(|w| *w > wait) {
            (wait, kind) = (longer, KeyKind::Network);
        }
        network_failure = Some(failure);
    }
    Ok(Admission::Refused { wait, kind, network_failure })
}

/// Counts a checked attempt that failed against every key; returns what it did to each.
pub async fn fail_all(db: &Db, keys: &[Key], now: OffsetDateTime) -> Result<Vec<(KeyKind, Failure)>, sqlx::Error> {
    let mut counted = Vec::with_capacity(keys.len());
    for key in keys {
        counted.push((key.kind, fail(db, &key.name, key.kind.policy(), now).await?));
    }
    Ok(counted)
}

impl Policy {
    /// The wait after the `failures`-th failure: none within the free ones, then 1×, 2×, 4× … the
    /// first wait, never more than the cap.
    pub fn wait_after(&self, failures: i32) -> Option<Duration> {
        let over = failures - self.free_failures;
        if over <= 0 {
            return None;
        }
        let factor = 1u32.checked_shl((over - 1).min(31) as u32).unwrap_or(u32::MAX);
        Some(self.first_wait.saturating_mul(factor).min(self.max_wait))
    }
}

/// How long `key` must still wait at `now`, if at all.
pub async fn wait_left(db: &Db, key: &str, now: OffsetDateTime) -> Result<Option<Duration>, sqlx::Error> {
    let until: Option<Option<OffsetDateTime>> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT locked_until FROM admin_sign_in_throttle WHERE key = $1").bind(key).fetch_optional(pool).await
    })?;
    Ok(until.flatten().filter(|until| *until > now).map(|until| (until - now).unsigned_abs()))
}

/// What a counted failure did to its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The key's failures so far (within [`FORGET_AFTER`]).
    pub failures: i32,
    /// The wait this failure started, if any.
    pub wait: Option<Duration>,
}

/// Counts a failure of `key` at `now` and starts its wait, if one is due. The count is one
/// atomic upsert, and the wait only ever moves later, so two instances counting at once cannot
/// shorten each other's wait.
pub async fn fail(db: &Db, key: &str, policy: Policy, now: OffsetDateTime) -> Result<Failure, sqlx::Error> {
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
            sqlx::query(
                "UPDATE admin_sign_in_throttle SET locked_until = $1 WHERE key = $2 AND (locked_until IS NULL OR locked_until < $1)",
            )
            .bind(now + wait)
            .bind(key)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
    }
    Ok(Failure { failures, wait })
}

pub async fn clear(db: &Db, key: &str) -> Result<(), sqlx::Error> {
    with_pool!(db, |pool| sqlx::query("DELETE FROM admin_sign_in_throttle WHERE key = $1").bind(key).execute(pool).await.map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        assert_eq!(ACCOUNT.wait_after(5), None, "five free failures");
        assert_eq!(ACCOUNT.wait_after(6), Some(Duration::from_secs(1)));
        assert_eq!(ACCOUNT.wait_after(7), Some(Duration::from_secs(2)));
        assert_eq!(ACCOUNT.wait_after(10), Some(Duration::from_secs(16)));
        assert_eq!(ACCOUNT.wait_after(11), Some(Duration::from_secs(30)));
        assert_eq!(ACCOUNT.wait_after(1000), Some(Duration::from_secs(30)), "never longer than the cap");
        assert_eq!(ACCOUNT.wait_after(i32::MAX), Some(Duration::from_secs(30)));
        assert_eq!(NETWORK.wait_after(10), None);
        assert_eq!(NETWORK.wait_after(20), Some(Duration::from_secs(512)));
        assert_eq!(NETWORK.wait_after(21), Some(Duration::from_secs(900)));
        assert_eq!(SECOND_FACTOR.wait_after(100), Some(Duration::from_secs(900)));
    }
}
