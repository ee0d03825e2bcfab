//! 削除依頼: an operator deletes a registrant's personal data — every row in every table that
//! holds it — leaving an audit record without personal data; the address can register again.

use normal_form_app::admin::actor::Role;
use normal_form_app::with_pool;
use serde_json::Value;

use super::admin;
use crate::helpers::{Backend, TestApp, location};
use crate::on_both_backends_with;

const EMAIL: &str = "delete.me@example.jp";
const OTHER: &str = "keep.me@example.jp";

/// The inventory fallback, so the registration also has a manual review.
const FALLBACK: &[(&str, &str)] = &[("FORCE_FALLBACK_INVENTORY", "true")];

async fn user_id(app: &TestApp, number: &str) -> i64 {
    with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT id FROM users WHERE registration_number = $1").bind(number).fetch_one(pool).await)
        .expect("user id")
}

/// Rows in every table that can hold something of `email` / `number` / `id`.
async fn rows_of(app: &TestApp, email: &str, number: &str, id: i64) -> [i64; 6] {
    let email_in_flow = match app.backend {
        Backend::Postgres => "user_data->>'email'",
        Backend::Sqlite => "json_extract(user_data, '$.email')",
    };
    let flows = format!("SELECT id FROM user_sessions WHERE user_id = $1 OR registration_number = $2 OR {email_in_flow} = $3");
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM users WHERE email = $3 OR registration_number = $2 OR id = $1), \
         (SELECT COUNT(*) FROM ({flows}) f), \
         (SELECT COUNT(*) FROM api_idempotency WHERE flow_id IN ({flows})), \
         (SELECT COUNT(*) FROM manual_reviews WHERE user_id = $1), \
         (SELECT COUNT(*) FROM outbox WHERE recipient = $3), \
         (SELECT COUNT(*) FROM mail_throttle WHERE email = $3)"
    );
    let row: (i64, i64, i64, i64, i64, i64) = with_pool!(&app.db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(id)
        .bind(number)
        .bind(email)
        .fetch_one(pool)
        .await)
    .expect("counts");
    [row.0, row.1, row.2, row.3, row.4, row.5]
}

/// Everything `email` ever left: a registration (with a manual review and its confirmation
/// mail), a second, abandoned flow, a repeated attempt (the 既に登録済み mail and its throttle
/// row) and a JSON-API idempotency record of the registering flow. Returns the 受付番号 and id.
async fn leave_traces(app: &TestApp, email: &str) -> (String, i64) {
    let number = app.with_new_browser().register(email).await;
    app.with_new_browser().fill_until_confirm(email).await;
    app.with_new_browser().register(email).await;
    let id = user_id(app, &number).await;
    with_pool!(&app.db, |pool| sqlx::query(
        "INSERT INTO api_idempotency (flow_id, key, request_hash, status, response_status, response_body) \
         SELECT id, 'key-1', 'hash', 'done', 201, '{}' FROM user_sessions WHERE registration_number = $1"
    )
    .bind(&number)
    .execute(pool)
    .await
    .map(|_| ()))
    .expect("idempotency row");
    (number, id)
}

on_both_backends_with! { FALLBACK;
    async fn deletion_removes_every_row_with_the_registrants_data(app) {
        let (number, id) = leave_traces(&app, EMAIL).await;
        let (other_number, other_id) = {
            let n = app.with_new_browser().register(OTHER).await;
            let id = user_id(&app, &n).await;
            (n, id)
        };
        let before = rows_of(&app, EMAIL, &number, id).await;
        assert_eq!(before[0], 1);
        assert!(before[1] >= 3, "three flows carry the address: {before:?}");
        assert_eq!(before[2..], [1, 1, 2, 1], "idempotency, review, two mails, throttle: {before:?}");
        let other_before = rows_of(&app, OTHER, &other_number, other_id).await;

        let operator = admin(&app, Role::Operator).await;
        let path = format!("/admin/registrations/{id}/delete");
        let html = operator.get_html(&path).await;
        assert!(html.contains(&number) && html.contains(EMAIL) && html.contains("個人情報を削除する"), "{html}");
        assert!(html.contains(&format!("<td class=\"num\">{}</td>", before[1])), "the flows to delete are counted");

        // The typed 受付番号 must match, and a reason is required.
        let response = operator.post(&path, &[("confirm_number", "AAAA-BBBB-CCCC"), ("reason", "本人からの依頼")]).await;
        assert_eq!(response.status(), 400);
        assert!(response.text().await.expect("body").contains("受付番号を正しく入力してください"));
        let response = operator.post(&path, &[("confirm_number", &number), ("reason", " ")]).await;
        assert_eq!(response.status(), 400);
        assert!(response.text().await.expect("body").contains("削除の理由"));
        assert_eq!(rows_of(&app, EMAIL, &number, id).await, before, "nothing deleted yet");

        let typed = number.to_lowercase();
        let response = operator.post(&path, &[("confirm_number", &typed), ("reason", "本人からの削除依頼（問い合わせ #1234）")]).await;
        assert_eq!(location(&response), "/admin/registrations?deleted=1");
        assert_eq!(rows_of(&app, EMAIL, &number, id).await, [0; 6], "no row holds the registrant's data");
        assert_eq!(rows_of(&app, OTHER, &other_number, other_id).await, other_before, "another registrant is untouched");

        // The audit record: who, what, counts — and no personal data.
        let rows: Vec<(String, String, sqlx::types::Json<Value>)> = with_pool!(&app.db, |pool| sqlx::query_as(
            "SELECT actor, target, detail FROM audit_log WHERE action = 'registration.delete'"
        )
        .fetch_all(pool)
        .await)
        .expect("audit");
        assert_eq!(rows.len(), 1);
        let (actor, target, detail) = &rows[0];
        assert_eq!((actor.as_str(), target.as_str()), (operator.email.as_str(), format!("user:{id}").as_str()));
        assert_eq!(detail.0["registration_number"], Value::from(number.clone()));
        assert_eq!(detail.0["reason"], Value::from("本人からの削除依頼（問い合わせ #1234）"));
        assert_eq!(detail.0["deleted"]["users"], Value::from(1));
        assert_eq!(detail.0["deleted"]["user_sessions"], Value::from(before[1]));
        assert_eq!(detail.0["deleted"]["outbox"], Value::from(2));
        let all_audit: Vec<String> = with_pool!(&app.db, |pool| sqlx::query_scalar(
            "SELECT actor || ' ' || action || ' ' || target || ' ' || CAST(detail AS TEXT) FROM audit_log"
        )
        .fetch_all(pool)
        .await)
        .expect("audit text");
        let all_audit = all_audit.join("\n");
        for personal in [EMAIL, "delete.me", "山田", "太郎", "やまだ", "たろう", "090-1234-5678", "09012345678", "渋谷"] {
            assert!(!all_audit.contains(personal), "audit holds {personal:?}: {all_audit}");
        }

        // Gone everywhere: the confirmation page, and the address registers again.
        assert_eq!(operator.get(&path).await.status(), 404);
        assert_eq!(operator.post(&path, &[("confirm_number", &number), ("reason", "再送")]).await.status(), 404);
        let again = app.with_new_browser().register(EMAIL).await;
        assert_ne!(again, number);
        assert_eq!(app.count_users(EMAIL).await, 1, "a new registration with the same address works");
    }

    async fn deletion_checks_sign_in_role_and_csrf(app) {
        let number = app.with_new_browser().register(EMAIL).await;
        let id = user_id(&app, &number).await;
        let path = format!("/admin/registrations/{id}/delete");
        let form = [("confirm_number", number.as_str()), ("reason", "依頼")];
        assert_eq!(location(&app.get(&path).await), "/admin/login");
        assert_eq!(location(&app.post(&path, &form).await), "/admin/login");
        let viewer = admin(&app, Role::Viewer).await;
        let html = viewer.get_html(&path).await;
        assert!(html.contains(&number) && html.contains("閲覧のみの権限です") && !html.contains("個人情報を削除する"));
        assert_eq!(viewer.post(&path, &form).await.status(), 403);
        let operator = admin(&app, Role::Operator).await;
        assert_eq!(operator.post_raw(&path, &form).await.status(), 403, "no CSRF token");
        let forged = [("confirm_number", number.as_str()), ("reason", "依頼"), ("csrf_token", "forged")];
        assert_eq!(operator.post_raw(&path, &forged).await.status(), 403, "wrong CSRF token");
        assert_eq!(app.count_users(EMAIL).await, 1, "refused requests delete nothing");
        let audits: i64 = with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'registration.delete'")
            .fetch_one(pool)
            .await)
        .expect("audit");
        assert_eq!(audits, 0);
        assert_eq!(operator.get("/admin/registrations/0/delete").await.status(), 404);
        assert_eq!(operator.get("/admin/registrations/x/delete").await.status(), 404);
        assert_eq!(operator.post("/admin/registrations/999999/delete", &form).await.status(), 404);
    }
}
