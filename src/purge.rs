//! Retention (個人情報保護法, docs/privacy.md): what is kept no longer than it is needed, deleted by
//! `normal-form-app purge [--dry-run]` and by the same job once a day inside `serve`.
//!
//! | rows | kept | why that long |
//! | --- | --- | --- |
//! | `user_sessions` (flows, with what was typed) and their `api_idempotency` answers | `FLOW_RETENTION_DAYS` (30) after the last change | resuming a form, 登録完了率 and the weekly report |
//! | `outbox` mail that was sent or gave up, `mail_throttle` | `MAIL_RETENTION_DAYS` (30) | delivery questions |
//! | `form_errors`, `duplicate_signups` (no personal data) | `ANALYTICS_RETENTION_DAYS` (90) | the dashboard and reports |
//! | `admin_sessions` | until they expire | |
//! | `admin_sign_in_throttle` | 2 days without a failure | the back-off's memory |
//!
//! Registrations (`users`), reviews and the audit log are kept until a deletion request
//! (`admin::deletion`). Deletes go in batches of `BATCH` rows, each its own short statement, so no
//! table is locked for long; on PostgreSQL one instance at a time runs it (an advisory lock), the
//! others skip.

use std::time::Duration;

use serde::Serialize;
use sqlx::Executor as _;
use time::OffsetDateTime;

use crate::config::Config;
use crate::db::Db;
use crate::with_pool;

/// Rows per delete statement.
pub const BATCH: i64 = 1000;
/// `pg_try_advisory_lock` key: "nfa purge" in ASCII.
pub const LOCK_KEY: i64 = 0x6e66_6120_7075_7267;
/// Throttle rows with no failure for this long have nothing left to remember.
const THROTTLE_MEMORY: Duration = Duration::from_secs(2 * 24 * 3600);

#[derive(Clone, Copy, Debug)]
pub struct Retention {
    pub flows: Duration,
    pub mail: Duration,
    pub analytics: Duration,
}

impl From<&Config> for Retention {
    fn from(config: &Config) -> Self {
        Retention { flows: config.flow_retention, mail: config.mail_retention, analytics: config.analytics_retention }
    }
}

/// Rows deleted (or, for a dry run, that would be) per table, in the order purged.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    pub dry_run: bool,
    pub tables: Vec<(&'static str, u64)>,
}

impl Report {
    pub fn total(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }

    pub fn get(&self, table: &str) -> u64 {
        self.tables.iter().find(|(t, _)| *t == table).map_or(0, |(_, n)| *n)
    }
}

/// One kind of expired row: the table (for the report) and the condition, with `$1` the cutoff.
struct Rule {
    table: &'static str,
    /// `WHERE` clause selecting what has expired; `$1` is the cutoff instant.
    expired: &'static str,
    /// A column that identifies a row for the batched delete (`id`, or SQLite's `rowid` /
    /// PostgreSQL's `ctid` for tables without one).
    key: Key,
    keep: fn(&Retention) -> Duration,
}

#[derive(Clone, Copy)]
enum Key {
    Id,
    Row,
}

const RULES: [Rule; 7] = [
    // created_at narrows through its index; updated_at keeps a flow someone came back to.
    Rule { table: "user_sessions", expired: "created_at < $1 AND updated_at < $1", key: Key::Id, keep: |r| r.flows },
    Rule { table: "outbox", expired: "created_at < $1 AND status <> 'pending'", key: Key::Id, keep: |r| r.mail },
    Rule { table: "mail_throttle", expired: "last_sent_at < $1", key: Key::Row, keep: |r| r.mail },
    Rule { table: "form_errors", expired: "created_at < $1", key: Key::Id, keep: |r| r.analytics },
    Rule { table: "duplicate_signups", expired: "created_at < $1", key: Key::Id, keep: |r| r.analytics },
    Rule { table: "admin_sign_in_throttle", expired: "updated_at < $1", key: Key::Row, keep: |_| THROTTLE_MEMORY },
    // Expired by their own limits (admin::session); the cutoff is unused.
    Rule { table: "admin_sessions", expired: "", key: Key::Id, keep: |_| Duration::ZERO },
];

fn cutoff(now: OffsetDateTime, keep: Duration) -> OffsetDateTime {
    now - time::Duration::try_from(keep).unwrap_or(time::Duration::MAX)
}

/// Deletes (or counts, with `dry_run`) every expired row. Not exclusive: see `run_exclusive`.
pub async fn run(db: &Db, retention: &Retention, dry_run: bool, now: OffsetDateTime) -> Result<Report, sqlx::Error> {
    let mut report = Report { dry_run, tables: Vec::new() };
    for rule in &RULES {
        let n = if rule.table == "admin_sessions" {
            if dry_run { crate::admin::session::count_expired(db).await? } else { crate::admin::session::purge_expired(db).await? }
        } else if dry_run {
            let sql = format!("SELECT COUNT(*) FROM {} WHERE {}", rule.table, rule.expired);
            let cut = cutoff(now, (rule.keep)(retention));
            let n: i64 = with_pool!(db, |pool| sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(cut).fetch_one(pool).await)?;
            u64::try_from(n).unwrap_or(0)
        } else {
            delete_in_batches(db, rule, cutoff(now, (rule.keep)(retention))).await?
        };
        report.tables.push((rule.table, n));
    }
    Ok(report)
}

async fn delete_in_batches(db: &Db, rule: &Rule, cut: OffsetDateTime) -> Result<u64, sqlx::Error> {
    let key = match (rule.key, db) {
        (Key::Id, _) => "id",
        (Key::Row, Db::Sqlite(_)) => "rowid",
        (Key::Row, Db::Postgres(_)) => "ctid",
    };
    let sql = format!(
        "DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {expired} LIMIT {BATCH})",
        table = rule.table,
        expired = rule.expired
    );
    let mut total = 0;
    loop {
        let deleted = with_pool!(db, |pool| sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(cut)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        total += deleted;
        if deleted < BATCH as u64 {
            return Ok(total);
        }
        // Let the registrations that waited behind this batch go first.
        tokio::task::yield_now().await;
    }
}

/// `run`, by one instance at a time: on PostgreSQL under a session advisory lock, held on a
/// connection of its own; `None` when another instance holds it (that one purges).
pub async fn run_exclusive(db: &Db, retention: &Retention, dry_run: bool) -> Result<Option<Report>, sqlx::Error> {
    let now = OffsetDateTime::now_utc();
    let Db::Postgres(pool) = db else { return run(db, retention, dry_run, now).await.map(Some) };
    let mut lock = pool.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(LOCK_KEY).fetch_one(&mut *lock).await?;
    if !locked {
        return Ok(None);
    }
    let report = run(db, retention, dry_run, now).await;
    // Released even when the purge failed; a connection that cannot unlock is closed instead.
    if lock.execute(sqlx::query("SELECT pg_advisory_unlock($1)").bind(LOCK_KEY)).await.is_err() {
        lock.detach();
    }
    report.map(Some)
}

/// Logs and meters one run's outcome.
pub fn record(report: &Report) {
    for (table, n) in &report.tables {
        if !report.dry_run {
            metrics::counter!("nfa_purge_deleted_rows_total", "table" => *table).increment(*n);
        }
    }
    if !report.dry_run {
        metrics::gauge!("nfa_purge_last_run_timestamp_seconds").set(OffsetDateTime::now_utc().unix_timestamp() as f64);
    }
    let counts: serde_json::Map<String, serde_json::Value> = report.tables.iter().map(|(t, n)| (t.to_string(), (*n).into())).collect();
    tracing::info!(
        event = if report.dry_run { "purge_dry_run" } else { "purge_completed" },
        rows = report.total(),
        tables = %serde_json::Value::Object(counts),
        "expired rows purged"
    );
}
