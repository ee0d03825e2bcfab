//! Retention (issue 18): `purge` deletes what has outlived `FLOW_RETENTION_DAYS`,
//! `MAIL_RETENTION_DAYS` and `ANALYTICS_RETENTION_DAYS`, keeps everything younger and every
//! registration, counts without deleting on a dry run, runs in batches, on one instance at a time,
//! and once a day inside `serve`.

use std::time::Duration;

use normal_form_app::purge::{self, Retention};
use time::OffsetDateTime;

use crate::helpers::{Backend, spawn_app_with, wait_until};
use crate::{on_both_backends, on_both_backends_with};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn retention() -> Retention {
    Retention { flows: 30 * DAY, mail: 30 * DAY, analytics: 90 * DAY }
}

fn days_later(days: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::days(days)
}

async fn count(app: &crate::helpers::TestApp, sql: &str) -> i64 {
    normal_form_app::with_pool!(&app.db, |pool| sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(pool).await).expect(sql)
}

async fn execute(app: &crate::helpers::TestApp, sql: &str) {
    normal_form_app::with_pool!(&app.db, |pool| sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await.map(drop)).expect(sql)
}

on_both_backends! {
    async fn expired_rows_go_younger_rows_and_registrations_stay(app) {
        // One registration (its flow, its verification mail), one abandoned flow with a
        // validation error, one mail that was sent.
        app.register("kept@example.jp").await;
        app.with_new_browser().type_and_leave().await;
        execute(&app, "UPDATE outbox SET status = 'sent'").await;
        app.with_new_browser().register("second@example.jp").await; // its mail stays pending
        execute(&app, "UPDATE outbox SET status = 'pending' WHERE recipient = 'second@example.jp'").await;
        let flows = count(&app, "SELECT COUNT(*) FROM user_sessions").await;
        let errors = count(&app, "SELECT COUNT(*) FROM form_errors").await;
        assert_eq!(flows, 3);
        assert!(errors >= 1, "the abandoned flow's validation errors are counted");

        // Ten days on, nothing has expired.
        let report = purge::run(&app.db, &retention(), false, days_later(10)).await.expect("purge");
        assert_eq!(report.get("user_sessions") + report.get("outbox") + report.get("form_errors"), 0, "{report:?}");

        // 31 days on, a dry run counts the flows and the sent mail and deletes nothing.
        let dry = purge::run(&app.db, &retention(), true, days_later(31)).await.expect("dry run");
        assert_eq!(dry.get("user_sessions"), 3, "{dry:?}");
        assert_eq!(dry.get("outbox"), 1, "the sent mail only: {dry:?}");
        assert_eq!(dry.get("form_errors"), 0, "analytics are kept 90 days");
        assert_eq!(count(&app, "SELECT COUNT(*) FROM user_sessions").await, 3, "a dry run deletes nothing");

        let done = purge::run(&app.db, &retention(), false, days_later(31)).await.expect("purge");
        assert_eq!(done.get("user_sessions"), dry.get("user_sessions"));
        assert_eq!(done.get("outbox"), dry.get("outbox"));
        assert_eq!(count(&app, "SELECT COUNT(*) FROM user_sessions").await, 0);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM outbox WHERE status = 'pending'").await, 1, "unsent mail is kept");
        assert_eq!(count(&app, "SELECT COUNT(*) FROM users").await, 2, "registrations are never purged");
        assert_eq!(count(&app, "SELECT COUNT(*) FROM form_errors").await, errors);

        let later = purge::run(&app.db, &retention(), false, days_later(91)).await.expect("purge");
        assert_eq!(later.get("form_errors"), u64::try_from(errors).expect("count"));
        assert_eq!(count(&app, "SELECT COUNT(*) FROM form_errors").await, 0);
    }

    async fn large_backlogs_are_deleted_in_batches(app) {
        // Two and a half batches of old validation-error counts.
        let rows = purge::BATCH * 5 / 2;
        let insert = match app.backend {
            Backend::Postgres => format!("INSERT INTO form_errors (step, field) SELECT 'customer', 'email' FROM generate_series(1, {rows})"),
            Backend::Sqlite => format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
                 INSERT INTO form_errors (step, field) SELECT 'customer', 'email' FROM n"
            ),
        };
        execute(&app, &insert).await;
        let report = purge::run(&app.db, &retention(), false, days_later(91)).await.expect("purge");
        assert_eq!(report.get("form_errors"), u64::try_from(rows).expect("rows"));
        assert_eq!(count(&app, "SELECT COUNT(*) FROM form_errors").await, 0);
    }
}

/// Only one instance purges: while another holds the advisory lock, `run_exclusive` does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_at_a_time_on_postgres() {
    let app = crate::helpers::spawn_app(Backend::Postgres).await;
    app.type_and_leave().await;
    let normal_form_app::db::Db::Postgres(pool) = &app.db else { unreachable!() };
    let mut other = pool.acquire().await.expect("connection");
    let taken: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(purge::LOCK_KEY).fetch_one(&mut *other).await.expect("lock");
    assert!(taken);
    let retention = Retention { flows: Duration::from_secs(1), ..retention() };
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(purge::run_exclusive(&app.db, &retention, false).await.expect("purge").is_none(), "the other instance purges");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM user_sessions").await, 1);
    let _: bool = sqlx::query_scalar("SELECT pg_advisory_unlock($1)").bind(purge::LOCK_KEY).fetch_one(&mut *other).await.expect("unlock");
    let report = purge::run_exclusive(&app.db, &retention, false).await.expect("purge").expect("lock free again");
    assert_eq!(report.get("user_sessions"), 1);
    // The lock was given back: a third run takes it again.
    assert!(purge::run_exclusive(&app.db, &retention, true).await.expect("purge").is_some());
}

on_both_backends_with! {
    &[("PURGE_INTERVAL_SECS", "1"), ("FLOW_RETENTION_DAYS", "30")];
    async fn serve_purges_by_itself_and_meters_it(app) {
        app.type_and_leave().await;
        app.with_new_browser().type_and_leave().await;
        // One flow last touched 40 days ago.
        let old = OffsetDateTime::now_utc() - time::Duration::days(40);
        normal_form_app::with_pool!(&app.db, |pool| sqlx::query(
            "UPDATE user_sessions SET created_at = $1, updated_at = $1 WHERE id = (SELECT MIN(id) FROM user_sessions)"
        )
        .bind(old)
        .execute(pool)
        .await
        .map(drop))
        .expect("age a flow");
        let purged = wait_until(Duration::from_secs(15), || async { count(&app, "SELECT COUNT(*) FROM user_sessions").await == 1 }).await;
        assert!(purged, "the daily job deleted the old flow and kept the new one");
        let metrics = app.get("/metrics").await.text().await.expect("metrics");
        assert!(metrics.contains("nfa_purge_deleted_rows_total{table=\"user_sessions\"} 1"), "{metrics}");
        assert!(metrics.contains("nfa_purge_last_run_timestamp_seconds"));
    }
}

/// `normal-form-app purge --dry-run` prints what it would delete and deletes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_reports_in_japanese() {
    let app = spawn_app_with(Backend::Sqlite, &[]).await;
    app.type_and_leave().await;
    let run = |dry: bool| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_normal-form-app"));
        command.arg("purge").env("DATABASE_URL", &app.database_url).env("DATA_DIR", app.data_dir.path()).env("FLOW_RETENTION_DAYS", "1");
        if dry {
            command.arg("--dry-run");
        }
        command.output()
    };
    let output = run(true).await.expect("purge --dry-run");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("削除される行数（保持期間: フロー 1 日"), "{stdout}");
    assert!(stdout.lines().any(|l| l.trim_start().starts_with("user_sessions") && l.trim_end().ends_with(" 0")), "{stdout}");
    let output = run(false).await.expect("purge");
    assert!(String::from_utf8_lossy(&output.stdout).contains("削除した行数"));
    assert_eq!(count(&app, "SELECT COUNT(*) FROM user_sessions").await, 1, "a day-old flow is younger than a day's retention");
}
