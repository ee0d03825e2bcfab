//! The runbook's business SQL (業務監視), run unmodified with `psql` against a database migrated by
//! `normal-form-app migrate`.

use std::process::Command;

use crate::helpers::{Backend, fresh_postgres_database, spawn_app_with};

const DAILY: &str = include_str!("../fixtures/runbook_daily_registrations.sql");
const COMPLETION: &str = include_str!("../fixtures/runbook_completion_rate.sql");

/// psql's unaligned output (`-At`), one row per line, columns split on `|`.
pub fn psql(database_url: &str, sql: &str) -> Vec<Vec<String>> {
    let output = Command::new("psql")
        .args([database_url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .output()
        .expect("psql must be installed (postgresql-client)");
    assert!(output.status.success(), "psql failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().map(|l| l.split('|').map(str::to_string).collect()).collect()
}

fn migrate(database_url: &str) {
    let status = Command::new(env!("CARGO_BIN_EXE_normal-form-app"))
        .arg("migrate")
        .env("DATABASE_URL", database_url)
        .env("DATA_DIR", tempfile::tempdir().expect("tempdir").path())
        .status()
        .expect("run migrate");
    assert!(status.success(), "normal-form-app migrate failed");
}

#[test]
fn fixtures_are_the_runbooks_own_sql() {
    let runbook = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/spec/operations-runbook.md"))
        .expect("the runbook is at ../shared/spec/operations-runbook.md");
    assert!(runbook.contains(DAILY.trim_end()), "daily-registrations SQL differs from the runbook");
    assert!(runbook.contains(COMPLETION.trim_end()), "completion-rate SQL differs from the runbook");
}

#[tokio::test]
async fn daily_registrations_query_counts_rows_per_day() {
    let url = fresh_postgres_database().await;
    migrate(&url);
    // Day offsets from today (server time zone) and how many registrations on each; 8 days ago
    // falls outside the query's 7-day window.
    let plan = [(0, 2), (1, 3), (3, 1), (7, 4), (8, 5)];
    let mut n = 0;
    for (days_ago, count) in plan {
        for _ in 0..count {
            n += 1;
            psql(
                &url,
                &format!(
                    "INSERT INTO users (registration_number, email, password_hash, family_name, given_name, family_name_kana, \
                     given_name_kana, phone, birth_date, postal_code, prefecture, city, street, plan_id, created_at) \
                     VALUES ('N{n}', 'u{n}@example.jp', 'x', '山田', '太郎', 'ヤマダ', 'タロウ', '09012345678', '1990-01-01', \
                     '1500002', '東京都', '渋谷区', '1-1', 'basic', (CURRENT_DATE - {days_ago}) + TIME '12:00')"
                ),
            );
        }
    }
    let rows = psql(&url, DAILY);
    let expected: Vec<Vec<String>> = [(7, 4), (3, 1), (1, 3), (0, 2)]
        .iter()
        .map(|(days_ago, count)| vec![psql(&url, &format!("SELECT CURRENT_DATE - {days_ago}"))[0][0].clone(), count.to_string()])
        .collect();
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn completion_rate_query_joins_flows_and_users() {
    let url = fresh_postgres_database().await;
    migrate(&url);
    // 3 completed flows, 2 abandoned (one with an email typed, one without), 1 flow from last
    // week (outside the window).
    let flows = [
        ("a@example.jp", true, 0),
        ("b@example.jp", true, 0),
        ("c@example.jp", true, 0),
        ("d@example.jp", false, 0),
        ("", false, 0),
        ("old@example.jp", true, 10),
    ];
    for (i, (email, completed, days_ago)) in flows.iter().enumerate() {
        if *completed {
            psql(
                &url,
                &format!(
                    "INSERT INTO users (registration_number, email, password_hash, family_name, given_name, family_name_kana, \
                     given_name_kana, phone, birth_date, postal_code, prefecture, city, street, plan_id) \
                     VALUES ('R{i}', '{email}', 'x', '山田', '太郎', 'ヤマダ', 'タロウ', '09012345678', '1990-01-01', \
                     '1500002', '東京都', '渋谷区', '1-1', 'basic')"
                ),
            );
        }
        let data = if email.is_empty() { "{}".to_string() } else { format!("{{\"email\": \"{email}\"}}") };
        psql(
            &url,
            &format!(
                "INSERT INTO user_sessions (token_hash, csrf_token, user_data, created_at) \
                 VALUES ('t{i}', 'c', '{data}', now() - INTERVAL '{days_ago} days')"
            ),
        );
    }
    let rows = psql(&url, COMPLETION);
    assert_eq!(rows, vec![vec!["3".to_string(), "5".to_string(), "60.00".to_string()]]);
}

/// N completed and M abandoned flows through the real form: the runbook's rate is N/(N+M).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_rate_matches_flows_through_the_form() {
    let app = spawn_app_with(Backend::Postgres, &[]).await;
    let completed = 3;
    for i in 0..completed {
        let visitor = app.with_new_browser();
        visitor.register(&format!("done{i}@example.jp")).await;
    }
    // Opened the form only: no flow, so it does not count (issue 18).
    app.with_new_browser().get_html("/register/customer").await;
    // Abandoned: typed a little into step 1, after step 1, after step 2.
    app.with_new_browser().type_and_leave().await;
    let after_one = app.with_new_browser();
    after_one.submit_step("/register/customer", &crate::helpers::customer_fields("left1@example.jp")).await;
    let after_two = app.with_new_browser();
    after_two.submit_step("/register/customer", &crate::helpers::customer_fields("left2@example.jp")).await;
    after_two.submit_step("/register/address", crate::helpers::ADDRESS).await;
    let abandoned = 3;

    let rows = psql(&app.database_url, COMPLETION);
    let total = completed + abandoned;
    let rate = format!("{:.2}", completed as f64 * 100.0 / total as f64);
    assert_eq!(rows, vec![vec![completed.to_string(), total.to_string(), rate]]);
}

/// Every SQL block of our own runbook (docs/runbook.md) runs as written against a migrated
/// PostgreSQL database — except `pg_terminate_backend(pid)`, whose `pid` the operator fills in.
#[tokio::test]
async fn every_sql_block_in_docs_runbook_runs() {
    let runbook = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/runbook.md")).expect("docs/runbook.md");
    let url = fresh_postgres_database().await;
    migrate(&url);
    let blocks: Vec<&str> = runbook.split("```sql\n").skip(1).filter_map(|rest| rest.split("```").next()).collect();
    assert!(blocks.len() >= 5, "the runbook's SQL blocks were found ({})", blocks.len());
    assert!(blocks.iter().any(|b| b.contains("FROM audit_log")), "the audit-log query is among them");
    // The runbook's completion-rate SQL divides by the day's session count (documented there).
    psql(&url, "INSERT INTO user_sessions (token_hash, csrf_token) VALUES ('t', 'c')");
    for block in blocks {
        let runnable: String = block.lines().filter(|l| !l.contains("pg_terminate_backend(pid)")).collect::<Vec<_>>().join("\n");
        psql(&url, &runnable);
    }
}

/// docs/runbook.md's `NULLIF(COUNT(*), 0)` form of the completion rate: on a day without sessions
/// it answers with an empty (NULL) rate where the 基本手順書's form fails with division by zero;
/// with sessions it gives the same figures.
#[tokio::test]
async fn the_runbooks_nullif_completion_rate_survives_a_day_without_sessions() {
    let runbook = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/runbook.md")).expect("docs/runbook.md");
    let nullif = runbook
        .split("```sql\n")
        .filter_map(|rest| rest.split("```").next())
        .find(|block| block.contains("NULLIF(COUNT(*), 0)"))
        .expect("the NULLIF form is in docs/runbook.md");
    let url = fresh_postgres_database().await;
    migrate(&url);
    let failed = Command::new("psql").args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-At", "-c", COMPLETION]).output().expect("psql");
    assert!(String::from_utf8_lossy(&failed.stderr).contains("division by zero"), "the original form fails without sessions");
    assert_eq!(psql(&url, nullif).last().expect("a row"), &["0", "0", ""]);
    psql(&url, "INSERT INTO user_sessions (token_hash, csrf_token) VALUES ('t1', 'c'), ('t2', 'c'), ('t3', 'c')");
    assert_eq!(psql(&url, nullif).last(), psql(&url, COMPLETION).last());
    assert_eq!(psql(&url, nullif).last().expect("a row"), &["0", "3", "0.00"]);
}
