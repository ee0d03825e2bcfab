//! Delivers the outbox. Every instance runs this loop; a message is claimed by setting a lease
//! (`locked_until`) — with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two instances never take
//! the same row — and marked `sent`, or retried with exponential backoff until `failed` after
//! `OUTBOX_MAX_ATTEMPTS`. SMTP being down only delays mail: registrations go on.

use std::time::Duration;

use lettre::message::Mailbox;
use time::OffsetDateTime;

use super::transport::{Envelope, Transport};
use crate::config::MailConfig;
use crate::db::Db;
use crate::with_pool;

/// How long a claimed message stays reserved for the worker that claimed it.
const LEASE: time::Duration = time::Duration::seconds(60);
const BATCH: i64 = 20;

/// Delay before the next attempt: base, 2×base, 4×base … capped at one hour.
pub fn backoff(attempts: i32, base: Duration) -> time::Duration {
    let exponent = attempts.clamp(1, 20) - 1;
    let base = i64::try_from(base.as_secs()).unwrap_or(10).max(1);
    time::Duration::seconds((base << exponent).min(3600))
}

/// The claim, with the row-locking clause of the backend.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE outbox SET locked_until = $2, attempts = attempts + 1 WHERE id IN ( \
               SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
               AND (locked_until IS NULL OR locked_until < $1) ORDER BY id LIMIT $3",
            $lock,
            ") RETURNING id, recipient, subject, body_text, body_html, attempts"
        )
    };
}

/// Claims up to `BATCH` due messages for this worker.
async fn claim(db: &Db, now: OffsetDateTime) -> Result<Vec<(Envelope, i32)>, sqlx::Error> {
    type Row = (i64, String, String, String, String, i32);
    let sql = match db {
        // Two instances never take the same row: the second skips what the first has locked.
        Db::Postgres(_) => claim_sql!(" FOR UPDATE SKIP LOCKED"),
        // SQLite has a single writer: the UPDATE … WHERE id IN (SELECT …) is atomic as it is.
        Db::Sqlite(_) => claim_sql!(""),
    };
    let rows: Vec<Row> = with_pool!(db, |pool| sqlx::query_as(sql).bind(now).bind(now + LEASE).bind(BATCH).fetch_all(pool).await)?;
    Ok(rows
        .into_iter()
        .map(|(id, recipient, subject, text, html, attempts)| (Envelope { id, recipient, subject, text, html }, attempts))
        .collect())
}

/// One pass: sends what is due. Returns how many were sent.
pub async fn deliver_due(db: &Db, transport: &Transport, from: &Mailbox, settings: &MailConfig) -> Result<usize, sqlx::Error> {
    let max_attempts = settings.max_attempts;
    let now = OffsetDateTime::now_utc();
    let mut sent = 0;
    for (envelope, attempts) in claim(db, now).await? {
        match transport.send(from, &envelope).await {
            Ok(()) => {
                sent += 1;
                with_pool!(db, |pool| sqlx::query(
                    "UPDATE outbox SET status = 'sent', sent_at = $1, locked_until = NULL, last_error = NULL WHERE id = $2"
                )
                .bind(OffsetDateTime::now_utc())
                .bind(envelope.id)
                .execute(pool)
                .await
                .map(|_| ()))?;
            }
            Err(err) => {
                let failed = attempts >= max_attempts;
                let level_error = crate::telemetry::redact::redact(&format!("{err:#}"));
                if failed {
                    tracing::error!(event = "mail_failed", outbox_id = envelope.id, attempts, error = %level_error, "mail could not be delivered; giving up");
                } else {
                    tracing::warn!(event = "mail_retry", outbox_id = envelope.id, attempts, error = %level_error, "mail delivery failed; will retry");
                }
                with_pool!(db, |pool| sqlx::query(
                    "UPDATE outbox SET status = $1, next_attempt_at = $2, locked_until = NULL, last_error = $3 WHERE id = $4"
                )
                .bind(if failed { "failed" } else { "pending" })
                .bind(OffsetDateTime::now_utc() + backoff(attempts, settings.retry_base))
                .bind(level_error.chars().take(500).collect::<String>())
                .bind(envelope.id)
                .execute(pool)
                .await
                .map(|_| ()))?;
            }
        }
    }
    Ok(sent)
}

/// The loop each instance runs until shutdown.
pub async fn run(db: Db, transport: Transport, from: Mailbox, settings: MailConfig) {
    let mut tick = tokio::time::interval(settings.poll_interval);
    loop {
        tick.tick().await;
        // Keep going while there is a backlog; otherwise wait for the next tick.
        loop {
            match deliver_due(&db, &transport, &from, &settings).await {
                Ok(n) if n as i64 >= BATCH => continue,
                Ok(_) => break,
                Err(err) => {
                    tracing::error!(event = "outbox_error", error = %err, "outbox worker could not read the outbox");
                    break;
                }
            }
        }
    }
}

/// Counts for `/metrics`: (pending, failed, oldest pending age in seconds), all from partial
/// indexes, so a scrape stays cheap however much sent mail the outbox keeps.
pub async fn stats(db: &Db) -> Result<(i64, i64, f64), sqlx::Error> {
    let (pending, failed) = pending_and_failed(db).await?;
    let oldest: Option<OffsetDateTime> =
        with_pool!(db, |pool| sqlx::query_scalar("SELECT MIN(created_at) FROM outbox WHERE status = 'pending'").fetch_one(pool).await)?;
    let age = oldest.map_or(0.0, |t| (OffsetDateTime::now_utc() - t).as_seconds_f64().max(0.0));
    Ok((pending, failed, age))
}

/// Mail waiting to be sent and mail given up on, for the admin dashboard: both counts come from
/// partial indexes, so they stay fast however many sent messages the table keeps.
pub async fn pending_and_failed(db: &Db) -> Result<(i64, i64), sqlx::Error> {
    with_pool!(db, |pool| sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM outbox WHERE status = 'pending'), (SELECT COUNT(*) FROM outbox WHERE status = 'failed')"
    )
    .fetch_one(pool)
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff(1, base), time::Duration::seconds(10));
        assert_eq!(backoff(2, base), time::Duration::seconds(20));
        assert_eq!(backoff(4, base), time::Duration::seconds(80));
        assert_eq!(backoff(30, base), time::Duration::seconds(3600));
    }
}
