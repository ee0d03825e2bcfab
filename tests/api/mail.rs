//! Registration mail through the outbox, with a real SMTP server started by the test.

use std::time::Duration;

use crate::helpers::{Backend, TestApp, spawn_app_with, wait_until};
use crate::on_both_backends;
use crate::smtp_sink::{SmtpSink, readable, verification_link};

async fn app_with_smtp(backend: Backend, smtp_url: &str) -> TestApp {
    spawn_app_with(backend, &[("SMTP_URL", smtp_url), ("OUTBOX_POLL_SECS", "1"), ("OUTBOX_RETRY_BASE_SECS", "1")]).await
}

async fn wait_for_mail(sink: &SmtpSink, count: usize) -> Vec<String> {
    let arrived = wait_until(Duration::from_secs(20), || async { sink.messages().len() >= count }).await;
    assert!(arrived, "expected {count} mails, got {}", sink.messages().len());
    sink.messages()
}

async fn outbox(app: &TestApp) -> Vec<(String, String, i32)> {
    normal_form_app::with_pool!(&app.db, |pool| sqlx::query_as("SELECT kind, status, attempts FROM outbox ORDER BY id")
        .fetch_all(pool)
        .await)
    .expect("outbox")
}

async fn verified(app: &TestApp, email: &str) -> bool {
    let at: Option<time::OffsetDateTime> =
        normal_form_app::with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT email_verified_at FROM users WHERE email = $1")
            .bind(email)
            .fetch_one(pool)
            .await)
        .expect("user");
    at.is_some()
}

/// Opens the link and presses the confirmation button.
async fn follow(app: &TestApp, link: &str) -> reqwest::Response {
    let page = app.client.get(link).send().await.expect("GET link");
    assert_eq!(page.status(), 200, "the link opens the confirmation page");
    let html = page.text().await.expect("html");
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).map(|i| i + marker.len()).expect("hidden field");
        html[start..start + html[start..].find('"').expect("end")].to_string()
    };
    let (n, e, s) = (field("n"), field("e"), field("s"));
    app.post("/verify-email", &[("n", n.as_str()), ("e", e.as_str()), ("s", s.as_str())]).await
}

on_both_backends! {
    async fn verification_mail_arrives_and_its_link_works_once(app) {
        let sink = SmtpSink::start().await;
        let app = app_with_smtp(app.backend, &sink.url()).await;
        let number = app.register("mail.test@example.jp").await;
        let mails = wait_for_mail(&sink, 1).await;
        let text = readable(&mails[0]);
        assert!(text.contains(&number), "the 受付番号 is in the mail");
        assert!(text.contains("山田 太郎") && !text.contains("correct-horse"), "a summary without the password");
        assert!(mails[0].contains("To: mail.test@example.jp"));
        assert!(!verified(&app, "mail.test@example.jp").await);

        let link = verification_link(&mails[0]);
        let done = follow(&app, &link).await;
        assert_eq!(done.status(), 200);
        assert!(done.text().await.expect("html").contains("確認完了"));
        assert!(verified(&app, "mail.test@example.jp").await);
        let again = follow(&app, &link).await;
        assert_eq!(again.status(), 409, "single use");
        assert!(again.text().await.expect("html").contains("確認メールを再送する"));

        // An altered link is refused.
        let forged = link.replace("&s=", "&s=x");
        assert_eq!(app.client.get(&forged).send().await.expect("GET").status(), 404);
        assert_eq!(outbox(&app).await, vec![("confirmation".to_string(), "sent".to_string(), 1)]);
    }

    async fn expired_links_are_refused_and_a_new_mail_can_be_requested_once(app) {
        let sink = SmtpSink::start().await;
        let app = app_with_smtp(app.backend, &sink.url()).await;
        let number = app.register("late.verify@example.jp").await;
        wait_for_mail(&sink, 1).await;
        let config = normal_form_app::config::Config::from_source(&app.env).expect("config");
        let expired = (time::OffsetDateTime::now_utc() - time::Duration::hours(1)).unix_timestamp();
        let signature = normal_form_app::mail::link_signature(config.secret_key.expose(), &number, "late.verify@example.jp", expired);
        let link = app.url(&format!("/verify-email?n={number}&e={expired}&s={signature}"));
        let page = app.client.get(&link).send().await.expect("GET");
        assert_eq!(page.status(), 410);
        let html = page.text().await.expect("html");
        assert!(html.contains("有効期限が切れています") && html.contains("/verify-email/resend"));
        let response = app.post("/verify-email/resend", &[("email", "late.verify@example.jp")]).await;
        assert_eq!(response.status(), 200);
        let mails = wait_for_mail(&sink, 2).await;
        let fresh = verification_link(&mails[1]);
        assert_eq!(follow(&app, &fresh).await.status(), 200);
        assert!(verified(&app, "late.verify@example.jp").await);
        // The same answer for unknown addresses and for a second request within 10 minutes.
        let unknown = app.post("/verify-email/resend", &[("email", "nobody@example.jp")]).await.text().await.expect("html");
        assert!(unknown.contains("再送を受け付けました"));
        app.post("/verify-email/resend", &[("email", "late.verify@example.jp")]).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(sink.messages().len(), 2, "verified (and throttled): no more mail");
    }

    async fn a_duplicate_sign_up_makes_no_row_shows_the_same_page_and_mails_the_owner_once(app) {
        let sink = SmtpSink::start().await;
        let app = app_with_smtp(app.backend, &sink.url()).await;
        app.register("owner@example.jp").await;
        let second = app.with_new_browser();
        let page = second.register("owner@example.jp").await;
        assert_eq!(page.len(), 14, "a 受付番号 like any other");
        let third = app.with_new_browser();
        third.register("owner@example.jp").await;
        assert_eq!(app.count_users("owner@example.jp").await, 1);
        let mails = wait_for_mail(&sink, 2).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mails_after = sink.messages();
        assert_eq!(mails_after.len(), 2, "one confirmation and one 既に登録済み (the third attempt is within the hour)");
        let notice = readable(&mails[1]);
        assert!(notice.contains("既に登録されています"), "{notice}");
        assert!(!notice.contains("山田") && !notice.contains("090"), "nothing of the new attempt but its time");
        let kinds: Vec<String> = outbox(&app).await.into_iter().map(|(k, _, _)| k).collect();
        assert_eq!(kinds, ["confirmation", "duplicate"]);
        let attempts: i64 = normal_form_app::with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM duplicate_signups").fetch_one(pool).await).expect("count");
        assert_eq!(attempts, 2, "each duplicate attempt is counted (time only)");
    }

    async fn smtp_down_registration_succeeds_and_mail_waits_until_it_is_back(app) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
        let app = app_with_smtp(app.backend, &format!("smtp://{port}")).await;
        let response = app.submit_step("/register/customer", &crate::helpers::customer_fields("waiting@example.jp")).await;
        assert_eq!(response.status(), 303);
        app.register_rest().await;
        let retried = wait_until(Duration::from_secs(10), || async { outbox(&app).await.first().is_some_and(|(_, _, attempts)| *attempts >= 2) }).await;
        assert!(retried, "{:?}", outbox(&app).await);
        assert_eq!(outbox(&app).await[0].1, "pending", "still waiting, not lost");
        let sink = SmtpSink::start_on(port).await;
        let mails = wait_for_mail(&sink, 1).await;
        assert!(readable(&mails[0]).contains("メールアドレスの確認"));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(sink.messages().len(), 1, "exactly once");
        assert_eq!(outbox(&app).await[0].1, "sent");
    }

    async fn a_stop_before_delivery_then_a_restart_delivers_exactly_once(app) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
        let mut first = app_with_smtp(app.backend, &format!("smtp://{port}")).await;
        first.register("restart@example.jp").await;
        first.stop().await;
        let db = crate::helpers::db_for(&first.database_url);
        let pending: String = normal_form_app::with_pool!(&db, |pool| sqlx::query_scalar("SELECT status FROM outbox").fetch_one(pool).await).expect("outbox");
        assert_eq!(pending, "pending", "not delivered before the stop");
        let sink = SmtpSink::start_on(port).await;
        let second = first.another_instance().await;
        wait_for_mail(&sink, 1).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(sink.messages().len(), 1);
        assert_eq!(outbox(&second).await[0].1, "sent");
    }

    async fn without_smtp_mail_is_written_as_eml_files(app) {
        app.register("files@example.jp").await;
        let dir = app.data_dir.path().join("mail");
        let found = wait_until(Duration::from_secs(10), || async { std::fs::read_dir(&dir).map(|d| d.count() > 0).unwrap_or(false) }).await;
        assert!(found, "an .eml file under DATA_DIR/mail");
        let file = std::fs::read_dir(&dir).expect("dir").next().expect("file").expect("entry").path();
        assert_eq!(file.extension().and_then(|e| e.to_str()), Some("eml"));
        let raw = std::fs::read_to_string(file).expect("eml");
        assert!(raw.contains("To: files@example.jp") && readable(&raw).contains("/verify-email?n="));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_deliver_each_message_once() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(
        Backend::Postgres,
        &[
            (
                "SMTP_URL",
                &format!(
                    "smtp://127.0.0.1:{}",
                    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
                ),
            ),
            ("OUTBOX_POLL_SECS", "3600"),
        ],
    )
    .await;
    for i in 0..40 {
        normal_form_app::with_pool!(&app.db, |pool| sqlx::query(
            "INSERT INTO outbox (kind, recipient, subject, body_text, body_html) VALUES ('confirmation', $1, $2, 'body', '<p>body</p>')"
        )
        .bind(format!("m{i}@example.jp"))
        .bind(format!("message-{i}"))
        .execute(pool)
        .await
        .map(|_| ()))
        .expect("insert");
    }
    let mut env = app.env.clone();
    env.insert("SMTP_URL".into(), sink.url());
    env.insert("OUTBOX_POLL_SECS".into(), "1".into());
    let a = crate::helpers::spawn_with_env(Backend::Postgres, env.clone()).await;
    let b = crate::helpers::spawn_with_env(Backend::Postgres, env).await;
    wait_for_mail(&sink, 40).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut recipients: Vec<String> =
        sink.messages().iter().filter_map(|m| m.lines().find(|l| l.starts_with("To: ")).map(str::to_string)).collect();
    assert_eq!(recipients.len(), 40, "no message twice");
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 40, "every message once");
    drop((a, b));
}
