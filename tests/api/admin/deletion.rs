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

    async fn deletion_blanks_decision_comments_and_refuses_personal_data_in_the_reason(app) {
        let number = app.with_new_browser().register(EMAIL).await;
        let id = user_id(&app, &number).await;
        let review: i64 = with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT id FROM manual_reviews WHERE user_id = $1").bind(id).fetch_one(pool).await)
            .expect("review");
        let operator = admin(&app, Role::Operator).await;
        let decided = operator.post(&format!("/admin/reviews/{review}/decision"), &[("decision", "approve"), ("reason_code", "stock_confirmed"), ("comment", "倉庫 #5")]).await;
        assert_eq!(decided.status(), 303);
        // A comment from before notes were checked, naming the registrant.
        with_pool!(&app.db, |pool| sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO audit_log (actor, action, target, detail) VALUES ('old@example.jp', 'review.approve', 'review:{review}', \
             '{{\"user_id\": {id}, \"comment\": \"山田太郎様 090-1234-5678 に確認\"}}')"
        )))
        .execute(pool)
        .await
        .map(drop))
        .expect("legacy audit row");

        let path = format!("/admin/registrations/{id}/delete");
        let html = operator.get_html(&path).await;
        assert!(html.contains("<td class=\"num\">2</td>"), "two audit comments to blank: {html}");
        let response = operator.post(&path, &[("confirm_number", &number), ("reason_code", "erasure_request"), ("reason", "山田様から電話")]).await;
        assert_eq!(response.status(), 400);
        let html = response.text().await.expect("body");
        assert!(html.contains("メモに個人情報（姓）が含まれているようです"), "{html}");
        assert!(html.contains("<option value=\"erasure_request\" selected>"));
        let response = operator.post(&path, &[("confirm_number", &number), ("reason", "")]).await;
        assert!(response.text().await.expect("body").contains("削除の理由を選んでください。"));
        assert_eq!(app.count_users(EMAIL).await, 1, "nothing deleted yet");

        let response = operator.post(&path, &[("confirm_number", &number), ("reason_code", "erasure_request"), ("reason", "問い合わせ #9")]).await;
        assert_eq!(location(&response), "/admin/registrations?deleted=1");
        let details: Vec<(String, sqlx::types::Json<Value>)> = with_pool!(&app.db, |pool| sqlx::query_as("SELECT action, detail FROM audit_log ORDER BY id")
            .fetch_all(pool)
            .await)
        .expect("audit");
        let comments: Vec<&Value> = details.iter().filter(|(a, _)| a.starts_with("review.")).map(|(_, d)| &d.0["comment"]).collect();
        assert_eq!(comments, [&Value::from("[削除依頼により削除]"), &Value::from("[削除依頼により削除]")]);
        let (_, deletion) = details.iter().find(|(a, _)| a == "registration.delete").expect("deletion audited");
        assert_eq!(deletion.0["reason_code"], Value::from("erasure_request"));
        assert_eq!(deletion.0["reason"], Value::from("本人からの削除請求：問い合わせ #9"));
        assert_eq!(deletion.0["deleted"]["audit_comments"], Value::from(2));
        let all = details.iter().map(|(_, d)| d.0.to_string()).collect::<Vec<_>>().join("\n");
        assert!(!all.contains("山田") && !all.contains("090-1234-5678"), "{all}");
    }

    async fn old_comments_are_masked_by_the_command(app) {
        let number = app.with_new_browser().register(EMAIL).await;
        let id = user_id(&app, &number).await;
        // Written before the check: the registrant's name and phone in a review comment, an
        // address in a switch reason, and an ordinary comment that must stay as it is.
        with_pool!(&app.db, |pool| sqlx::query("UPDATE manual_reviews SET comment = '山田 太郎様（090-1234-5678）に確認' WHERE user_id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(drop))
        .expect("old comment");
        with_pool!(&app.db, |pool| sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO audit_log (actor, action, target, detail) VALUES \
             ('a@example.jp', 'review.approve', 'review:1', '{{\"user_id\": {id}, \"comment\": \"やまだ様 了承\"}}'), \
             ('a@example.jp', 'switch.force', 'AddressAPI', '{{\"reason\": \"連絡先 ops.lead@example.jp\"}}'), \
             ('a@example.jp', 'switch.force', 'RegionAPI', '{{\"reason\": \"障害 #12 のため\"}}')"
        )))
        .execute(pool)
        .await
        .map(drop))
        .expect("old audit rows");
        let cli = |dry: bool| {
            let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_normal-form-app"));
            command.args(["admin", "mask-comments"]).env("DATABASE_URL", &app.database_url).env("DATA_DIR", app.data_dir.path());
            if dry {
                command.arg("--dry-run");
            }
            command.output()
        };
        let dry = cli(true).await.expect("dry run");
        let out = String::from_utf8_lossy(&dry.stdout);
        assert!(dry.status.success() && out.contains("確認待ちのコメント: 1 件中 マスクされるもの 1 件"), "{out}");
        assert!(out.contains("監査ログのコメント・理由: 3 件中 マスクされるもの 2 件"), "{out}");
        let comment: String = with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT comment FROM manual_reviews WHERE user_id = $1").bind(id).fetch_one(pool).await)
            .expect("comment");
        assert!(comment.contains("山田"), "a dry run changes nothing");

        let report = normal_form_app::admin::mask::mask_comments(&app.db, false).await.expect("mask");
        assert_eq!((report.reviews_masked, report.audit_masked), (1, 2));
        let comment: String = with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT comment FROM manual_reviews WHERE user_id = $1").bind(id).fetch_one(pool).await)
            .expect("comment");
        assert_eq!(comment, "＊＊＊ ＊＊＊様(＊＊＊)に確認");
        let details: Vec<sqlx::types::Json<Value>> = with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT detail FROM audit_log ORDER BY id").fetch_all(pool).await)
            .expect("audit");
        let texts: Vec<String> = details.iter().map(|d| d.0.to_string()).collect();
        assert!(texts.iter().any(|t| t.contains("＊＊＊様 了承")), "{texts:?}");
        assert!(texts.iter().any(|t| t.contains("連絡先 ＊＊＊")), "{texts:?}");
        assert!(texts.iter().any(|t| t.contains("障害 #12 のため")), "{texts:?}");
        assert_eq!(normal_form_app::admin::mask::mask_comments(&app.db, false).await.expect("again").audit_masked, 0, "idempotent");
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
