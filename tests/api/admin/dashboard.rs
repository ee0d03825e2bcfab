//! ダッシュボード (`GET /admin`) and 監査ログ (`GET /admin/audit`): the figures for seeded data,
//! Japanese days, escaping, paging, and who may see them.

use normal_form_app::admin::actor::Role;
use normal_form_app::with_pool;
use time::{Duration, OffsetDateTime, UtcOffset};

use super::{admin, between};
use crate::helpers::{TestApp, customer_fields, location};
use crate::on_both_backends;

fn jst() -> UtcOffset {
    UtcOffset::from_hms(9, 0, 0).expect("offset")
}

/// The text of the element with this id (up to the next tag).
fn by_id<'a>(html: &'a str, id: &str) -> &'a str {
    between(html, &format!("id=\"{id}\">"), "<")
}

/// A completed registration written straight into `users` at `created_at`.
async fn insert_user(app: &TestApp, email: &str, created_at: OffsetDateTime) {
    with_pool!(&app.db, |pool| sqlx::query(
        "INSERT INTO users (registration_number, email, password_hash, family_name, given_name, family_name_kana, \
         given_name_kana, phone, birth_date, postal_code, prefecture, city, street, plan_id, created_at) \
         VALUES ($1, $2, 'x', '山田', '太郎', 'ヤマダ', 'タロウ', '09012345678', $3, '1500002', '東京都', '渋谷区', '渋谷2-21-1', 'standard', $4)"
    )
    .bind(format!("R-{email}"))
    .bind(email)
    .bind(time::macros::date!(1990 - 04 - 01))
    .bind(created_at)
    .execute(pool)
    .await
    .map(|_| ()))
    .expect("insert user");
}

async fn exec(app: &TestApp, sql: &'static str) {
    with_pool!(&app.db, |pool| sqlx::query(sql).execute(pool).await.map(|_| ())).expect("sql");
}

/// Step 1 done: the flow waits at ご住所.
async fn leave_at_address(app: &TestApp, email: &str) {
    let browser = app.with_new_browser();
    let response = browser.submit_step("/register/customer", &customer_fields(email)).await;
    assert_eq!(location(&response), "/register/address");
}

on_both_backends! {
    async fn dashboard_shows_the_figures_of_seeded_data(app) {
        // Two complete registrations, two flows left at ご住所, one stuck at お客様情報 with errors.
        let first = app.with_new_browser();
        first.register("dash.one@example.jp").await;
        let second = app.with_new_browser();
        second.register("dash.two@example.jp").await;
        leave_at_address(&app, "dash.three@example.jp").await;
        leave_at_address(&app, "dash.four@example.jp").await;
        let stuck = app.with_new_browser();
        let mut fields = customer_fields("dash.five@example.jp");
        fields.retain(|(name, _)| *name != "phone" && *name != "birth_date");
        let mut bad = fields.clone();
        bad.extend([("phone", "12"), ("birth_date", "昨日")]);
        assert_eq!(stuck.submit_step("/register/customer", &bad).await.status(), 422);
        let mut bad = fields.clone();
        bad.extend([("phone", "12"), ("birth_date", "1990-04-01")]);
        assert_eq!(stuck.submit_step("/register/customer", &bad).await.status(), 422);

        // Registrations either side of midnight in Japan (15:00 UTC): one today, one yesterday.
        let today = OffsetDateTime::now_utc().to_offset(jst()).date();
        let midnight = today.midnight().assume_offset(jst());
        insert_user(&app, "before.midnight@example.jp", midnight - Duration::minutes(1)).await;
        insert_user(&app, "after.midnight@example.jp", (midnight + Duration::minutes(1)).min(OffsetDateTime::now_utc())).await;
        // Mail given up on, and a registration waiting for an operator.
        exec(&app, "INSERT INTO outbox (kind, recipient, subject, body_text, body_html, status) VALUES ('x', 'a@example.jp', 's', 't', 'h', 'failed')").await;
        exec(&app, "INSERT INTO manual_reviews (user_id, kind, reason) SELECT MIN(id), 'inventory', 'test' FROM users").await;

        let viewer = admin(&app, Role::Viewer).await;
        let html = viewer.get_html("/admin").await;
        assert_eq!(by_id(&html, "today-registrations"), "3", "two registered through the form, one just after midnight JST");
        assert_eq!(by_id(&html, "week-registrations"), "4");
        let yesterday = today - Duration::days(1);
        assert!(html.contains(&format!("<title>{}/{}: 1件</title>", u8::from(yesterday.month()), yesterday.day())), "{html}");
        assert!(html.contains(&format!("<title>{}/{}: 3件</title>", u8::from(today.month()), today.day())));
        assert_eq!(html.matches("<rect class=\"bar\" x=").count(), 7 + 5, "7 days in the chart, 5 funnel stages");
        assert!(!html.contains("style="), "CSP allows no inline styles");

        // 登録完了率: 5 flows since yesterday, 2 of them with a registered address.
        assert_eq!(by_id(&html, "completion-rate"), "40.00%");
        assert_eq!(by_id(&html, "completion-total"), "5");
        assert_eq!(by_id(&html, "completion-completed"), "2");

        // Funnel: 5 started, 4 reached ご住所, 2 reached プランの選択 and 確認, 2 completed.
        let reached: Vec<&str> = html.match_indices("funnel-reached\">").map(|(i, m)| html[i + m.len()..].split('<').next().expect("cell")).collect();
        assert_eq!(reached, ["5", "4", "2", "2", "2"]);
        let worst = between(&html, "id=\"worst-drop\">", "</p>");
        assert!(worst.contains("<strong>ご住所</strong>") && worst.contains("2件") && worst.contains("50.0%"), "{worst}");

        // エラー発生パターン: the phone failed twice, the birth date once, by their form labels.
        let errors = between(&html, "<table class=\"errors\">", "</table>");
        let phone = errors.find("<td class=\"field-label\">電話番号</td><td class=\"num\">2</td>").expect("phone first");
        let birth = errors.find("<td class=\"field-label\">生年月日</td><td class=\"num\">1</td>").expect("birth date");
        assert!(phone < birth);
        assert!(errors.contains("<td>お客様情報</td>"));

        assert_eq!(by_id(&html, "active-flows"), "3", "the three unfinished flows");
        assert_eq!(by_id(&html, "mail-failed"), "1");
        assert_eq!(by_id(&html, "pending-reviews"), "1");
        assert!(html.contains("href=\"/admin/reviews\""));
        for api in ["AddressAPI", "InventoryAPI", "RegionAPI"] {
            let row = between(&html, &format!("<tr id=\"api-{api}\">"), "</tr>");
            assert!(row.contains("正常") && row.contains("通常（closed）") && row.contains("<td>通常</td>"), "{row}");
        }
    }

    async fn dashboard_escapes_what_it_shows(app) {
        exec(&app, "INSERT INTO form_errors (step, field, created_at) VALUES ('<b>step</b>', '<script>alert(1)</script>', CURRENT_TIMESTAMP)").await;
        let operator = admin(&app, Role::Operator).await;
        let html = operator.get_html("/admin").await;
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{html}");
        assert!(html.contains("&#60;b&#62;step&#60;/b&#62;"));
        assert!(!html.contains("<script>alert(1)") && !html.contains("<b>step"));
    }

    async fn the_funnel_counts_the_furthest_step_even_after_going_back(app) {
        let browser = app.with_new_browser();
        browser.fill_until_confirm("went.back@example.jp").await;
        // Back to step 1 with an invalid value: the step is no longer complete, but the flow
        // did reach 確認.
        let mut fields = customer_fields("went.back@example.jp");
        fields.retain(|(name, _)| *name != "phone");
        fields.push(("phone", "1"));
        assert_eq!(browser.submit_step("/register/customer", &fields).await.status(), 422);
        let operator = admin(&app, Role::Operator).await;
        let html = operator.get_html("/admin").await;
        let reached: Vec<&str> = html.match_indices("funnel-reached\">").map(|(i, m)| html[i + m.len()..].split('<').next().expect("cell")).collect();
        assert_eq!(reached, ["1", "1", "1", "1", "0"]);
    }

    async fn anonymous_visitors_are_sent_to_sign_in(app) {
        let browser = crate::helpers::client();
        for path in ["/admin", "/admin/switches", "/admin/audit"] {
            let response = browser.get(app.url(path)).send().await.expect("GET");
            assert_eq!(response.status(), 303, "{path}");
            assert_eq!(location(&response), "/admin/login", "{path}");
        }
        let response = browser.post(app.url("/admin/switches")).form(&[("api", "AddressAPI"), ("forced", "on"), ("reason", "x")]).send().await.expect("POST");
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/admin/login");
    }

    async fn the_audit_log_is_paged_newest_first(app) {
        let viewer = admin(&app, Role::Viewer).await;
        for i in 0..60 {
            normal_form_app::admin::audit::record(&app.db, None, "test.action", &format!("item:{i}"), serde_json::json!({ "before": { "n": i }, "after": { "n": i + 1 } }))
                .await
                .expect("record");
        }
        let total: i64 = with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM audit_log").fetch_one(pool).await).expect("count");
        let html = viewer.get_html("/admin/audit").await;
        assert_eq!(html.matches("<tr id=\"audit-").count(), 50);
        let first = html.find("<td class=\"target\">item:59</td>").expect("newest first");
        let second = html.find("<td class=\"target\">item:58</td>").expect("next");
        assert!(first < second);
        assert!(html.contains("<code class=\"before\">{&#34;n&#34;:59}</code>"), "before/after shown, escaped");
        let next = between(&html, "<a href=\"/admin/audit?before=", "\"").to_string();
        let older = viewer.get_html(&format!("/admin/audit?before={next}")).await;
        assert_eq!(older.matches("<tr id=\"audit-").count() as i64, total - 50);
        assert!(older.contains("item:9</td>") && !older.contains("item:10</td>"));
        assert!(!older.contains("rel=\"next\""), "the last page has no further link");
        // Japanese labels for known actions.
        assert!(older.contains("二要素認証の登録"), "the viewer's own enrolment is in the log");
        let response = viewer.get("/admin/audit?before=abc").await;
        assert_eq!(response.status(), 400);
        assert!(response.text().await.expect("body").contains("送信内容を読み取れませんでした"));
    }
}

/// With `DASHBOARD_CACHE_SECS` set, the aggregates are computed once and reused by later views
/// (same time stamp, a new registration not yet counted), while the live figures move at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_are_reused_for_the_cache_time_and_live_figures_are_not() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, &[("DASHBOARD_CACHE_SECS", "600")]).await;
    let now = OffsetDateTime::now_utc();
    insert_user(&app, "cached.one@example.jp", now).await;
    let viewer = admin(&app, Role::Viewer).await;
    let first = viewer.get_html("/admin").await;
    assert_eq!(by_id(&first, "today-registrations"), "1");
    assert_eq!(by_id(&first, "pending-reviews"), "0");
    insert_user(&app, "cached.two@example.jp", now).await;
    exec(&app, "INSERT INTO manual_reviews (user_id, kind, reason) SELECT MIN(id), 'inventory', 'test' FROM users").await;
    let second = viewer.get_html("/admin").await;
    assert_eq!(by_id(&second, "aggregated-at"), by_id(&first, "aggregated-at"), "the same computation");
    assert_eq!(by_id(&second, "today-registrations"), "1", "the second registration waits for the next computation");
    assert_eq!(by_id(&second, "pending-reviews"), "1", "the queue is read on every view");
}
