//! A real streaming replica (`pg_basebackup -R`) behind `DATABASE_READ_URL`, and the writer going
//! away under a running service (issue 17): admin reads go on from the replica, marked read-only;
//! the form answers 503 with `Retry-After` from its first page on and offers back what was posted;
//! nothing is written half-way; `/health` names what is down; both recover by themselves within
//! 10 s of the writer's return. PostgreSQL only: SQLite has no replicas.

use std::time::{Duration, Instant};

use normal_form_app::admin::actor::Role;

use crate::admin::admin;
use crate::cluster::{Cluster, wait_for_replay};
use crate::helpers::{Backend, TestApp, customer_fields, db_for, location, spawn_app_with, wait_until};

async fn rows(app: &TestApp) -> (i64, i64) {
    let db = db_for(&app.database_url);
    let counted: (i64, i64) = normal_form_app::with_pool!(&db, |pool| sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM user_sessions)"
    )
    .fetch_one(pool)
    .await)
    .expect("count rows on the writer");
    db.close().await;
    counted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_down_pauses_the_form_keeps_admin_reads_and_recovers_by_itself() {
    let t = Instant::now();
    let primary = Cluster::primary();
    let replica = Cluster::replica_of(&primary);
    eprintln!("clusters ready in {:.1} s", t.elapsed().as_secs_f64());
    let app = spawn_app_with(Backend::Postgres, &[("DATABASE_URL", &primary.url()), ("DATABASE_READ_URL", &replica.url())]).await;

    let health: serde_json::Value = app.get("/health").await.json().await.expect("health");
    assert_eq!(health["checks"]["database_read"]["status"], "ok", "{health}");
    let operator = admin(&app, Role::Operator).await;
    app.with_new_browser().register("replica-1@example.jp").await;
    // Someone in the middle of the form when the writer goes.
    let person = app.with_new_browser();
    let response = person.submit_step("/register/customer", &customer_fields("replica-2@example.jp")).await;
    assert_eq!(location(&response), "/register/address");
    let address_page = person.get_html("/register/address").await;
    let csrf = crate::helpers::csrf_token(&address_page);
    wait_for_replay(&primary, &replica).await;
    // The console's lists read the replica.
    assert!(operator.get_html("/admin/registrations").await.contains("replica-1@example.jp"));

    eprintln!("set up in {:.1} s", t.elapsed().as_secs_f64());
    let before = rows(&app).await;
    let stopped = Instant::now();
    primary.stop();
    let paused = wait_until(Duration::from_secs(10), || async {
        let response = app.get("/register/customer").await;
        response.status() == 503 && response.text().await.unwrap_or_default().contains("ただいま登録を一時停止しています")
    })
    .await;
    assert!(paused, "the form pauses once the writer is gone");
    eprintln!("writer down: the form paused after {:.1} s", stopped.elapsed().as_secs_f64());

    // The form, from its first page on: 503, Retry-After, a Japanese page.
    for path in ["/", "/register/customer", "/register/plan"] {
        let response = app.with_new_browser().get(path).await;
        assert_eq!(response.status(), 503, "{path}");
        assert!(response.headers().get("retry-after").is_some(), "{path}: Retry-After");
        assert!(response.text().await.expect("body").contains("ただいま登録を一時停止しています"), "{path}");
    }
    // A step posted now is not saved, and is offered back to send again.
    let form = [
        ("postal_code", "1500002"),
        ("prefecture", "東京都"),
        ("city", "渋谷区"),
        ("street", "渋谷2-21-1"),
        ("building", "テストビル"),
        ("csrf_token", csrf.as_str()),
        ("action", "next"),
    ];
    let response = person.post("/register/address", &form).await;
    assert_eq!(response.status(), 503);
    let page = response.text().await.expect("body");
    assert!(page.contains("value=\"テストビル\"") && page.contains("action=\"/register/address\""), "{page}");
    // The JSON API says the same in its own terms.
    let response = app.client.post(app.url("/api/v1/flows")).send().await.expect("POST");
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some());
    let problem: serde_json::Value = response.json().await.expect("problem+json");
    assert_eq!(problem["type"], "/api/v1/problems/registration_paused");

    // The console reads on from the replica, marked read-only; its actions are refused.
    let list = operator.get("/admin/registrations").await;
    assert_eq!(list.status(), 200);
    let list = list.text().await.expect("body");
    assert!(list.contains("replica-1@example.jp") && list.contains("閲覧のみ"), "{list}");
    assert_eq!(operator.get("/admin").await.status(), 200, "dashboard");
    assert_eq!(operator.get("/admin/reviews").await.status(), 200, "review queue");
    let refused = operator.post("/admin/switches", &[("api", "InventoryAPI"), ("forced", "on"), ("reason", "障害訓練")]).await;
    assert_eq!(refused.status(), 503);
    let csv = operator.get("/admin/registrations/export.csv").await;
    assert_eq!(csv.status(), 503, "an export must be audited on the writer");

    // /health says which part is down.
    let response = app.get("/health").await;
    assert_eq!(response.status(), 503);
    let health: serde_json::Value = response.json().await.expect("health");
    assert_eq!(health["checks"]["database"]["status"], "down", "{health}");
    assert_eq!(health["checks"]["database_read"]["status"], "ok", "{health}");
    assert_eq!(health["registration"], "paused", "{health}");

    let outage = stopped.elapsed();
    primary.start();
    let back = Instant::now();
    assert_eq!(rows(&app).await, before, "nothing was written while the writer was away");
    // Polled by the person already in a flow: a first visit would start a flow of its own.
    let resumed = wait_until(Duration::from_secs(10), || async { person.get("/register/address").await.status() == 200 }).await;
    assert!(resumed, "the form resumes within 10 s of the writer's return");
    let resumed_after = back.elapsed();
    assert_eq!(app.get("/health").await.status(), 200);
    let html = operator.get_html("/admin/registrations").await;
    assert!(!html.contains("閲覧のみ"), "the console is writable again");

    // The page's 「もう一度送信する」 now saves what was typed.
    let response = person.post("/register/address", &form).await;
    assert_eq!(location(&response), "/register/plan", "the offered-back step is saved after recovery");
    eprintln!(
        "writer outage {:.1} s; form and console normal {:.1} s after the writer's return",
        outage.as_secs_f64(),
        resumed_after.as_secs_f64()
    );
    drop(replica);
    assert!(primary.dir().exists());
}
