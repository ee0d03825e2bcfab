//! Every admin route, for anonymous visitors, viewers and operators: the server decides, whatever
//! the page offers. Reads are open to both roles; changes need an operator and the CSRF token.

use normal_form_app::admin::actor::Role;
use normal_form_app::with_pool;

use super::admin;
use crate::helpers::{TestApp, location};
use crate::on_both_backends_with;

async fn count(app: &TestApp, query: &'static str) -> i64 {
    with_pool!(&app.db, |pool| sqlx::query_scalar::<_, i64>(query).fetch_one(pool).await).expect("count")
}

// InventoryAPI in its fallback: the registration lands in the review queue.
on_both_backends_with! { &[("FORCE_FALLBACK_INVENTORY", "true")];
    async fn every_route_is_guarded_by_sign_in_role_and_token(app) {
        app.register("member@example.jp").await;
        let user = count(&app, "SELECT MAX(id) FROM users").await;
        let review = count(&app, "SELECT MAX(id) FROM manual_reviews").await;
        let reads = [
            "/admin".to_string(),
            "/admin/reviews".to_string(),
            format!("/admin/reviews/{review}"),
            "/admin/registrations".to_string(),
            format!("/admin/registrations/{user}"),
            format!("/admin/registrations/{user}/delete"),
            "/admin/switches".to_string(),
            "/admin/audit".to_string(),
        ];
        let export = "/admin/registrations/export.csv";
        let decision = format!("/admin/reviews/{review}/decision");
        let delete = format!("/admin/registrations/{user}/delete");
        let changes: [(&str, Vec<(&str, &str)>); 3] = [
            (decision.as_str(), vec![("decision", "approve"), ("comment", "ok")]),
            (delete.as_str(), vec![("confirm_number", "x"), ("reason", "request")]),
            ("/admin/switches", vec![("api", "AddressAPI"), ("forced", "on"), ("reason", "incident")]),
        ];

        // Anonymous: every route sends to the sign-in page and changes nothing.
        for path in reads.iter().map(String::as_str).chain([export]) {
            assert_eq!(location(&app.get(path).await), "/admin/login", "anonymous GET {path}");
        }
        for (path, form) in &changes {
            assert_eq!(location(&app.post(path, form).await), "/admin/login", "anonymous POST {path}");
        }

        // Viewer: reads everything, exports and changes nothing — even with a valid CSRF token.
        let viewer = admin(&app, Role::Viewer).await;
        for path in &reads {
            assert_eq!(viewer.get(path).await.status(), 200, "viewer GET {path}");
        }
        assert_eq!(viewer.get(export).await.status(), 403, "viewer export");
        for (path, form) in &changes {
            assert_eq!(viewer.post(path, form).await.status(), 403, "viewer POST {path}");
        }

        // Operator: reads and exports; a change without the session's token is refused.
        let operator = admin(&app, Role::Operator).await;
        for path in reads.iter().map(String::as_str).chain([export]) {
            assert_eq!(operator.get(path).await.status(), 200, "operator GET {path}");
        }
        for (path, form) in &changes {
            let mut forged = form.clone();
            forged.push(("csrf_token", "forged"));
            assert_eq!(operator.post_raw(path, &forged).await.status(), 403, "operator POST {path} with a forged token");
            assert_eq!(operator.post_raw(path, form).await.status(), 403, "operator POST {path} without a token");
        }

        // None of the refused requests changed anything.
        assert_eq!(count(&app, "SELECT COUNT(*) FROM manual_reviews WHERE status = 'pending'").await, 1);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM users").await, 1);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM api_switches").await, 0);
        assert_eq!(
            count(&app, "SELECT COUNT(*) FROM audit_log WHERE action NOT LIKE 'admin.%'").await,
            1,
            "only the operator's export is audited"
        );

        // With the token, the operator's change goes through.
        let response = operator.post(&decision, &[("decision", "approve"), ("comment", "在庫を確認")]).await;
        assert_eq!(response.status(), 303);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM manual_reviews WHERE status = 'approved'").await, 1);
    }
}
