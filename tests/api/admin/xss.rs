//! Stored XSS: a registration whose every text field holds a script payload, a review reason, a
//! form-error record, a decision comment and a switch reason — all shown escaped on every admin
//! screen, never as markup.

use normal_form_app::admin::actor::Role;
use normal_form_app::with_pool;

use super::admin;
use crate::on_both_backends_with;

const PAYLOADS: [&str; 6] = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(2)>",
    "'><svg onload=alert(3)>",
    "</textarea><script>alert(4)</script>",
    "<iframe srcdoc=\"<script>alert(5)</script>\">",
    "<a href=\"javascript:alert(6)\">x</a>",
];

/// Markup no admin page has of its own (the dashboard's chart is an `<svg>`, but never with
/// handlers): if any shows up, a payload got through unescaped.
const FORBIDDEN: [&str; 6] = ["<script", "<img", "<svg onload", "<svg/onload", "<iframe", "href=\"javascript:"];

// With the region fallback forced, the re-check leaves the row `unchecked` (still shown).
on_both_backends_with! { &[("FORCE_FALLBACK_REGION", "true")];
    async fn stored_payloads_are_shown_escaped_on_every_screen(app) {
        let [p0, p1, p2, p3, p4, p5] = PAYLOADS;
        let user_id: i64 = with_pool!(&app.db, |pool| sqlx::query_scalar(
            "INSERT INTO users (registration_number, email, password_hash, family_name, given_name, family_name_kana, \
             given_name_kana, phone, birth_date, postal_code, prefecture, city, street, building, plan_id, created_at, \
             inventory_status, region_status) VALUES ('XSSX-XSSX-XSSX', $1, 'x', $2, $3, $4, $5, $6, $7, \
             '1500002', $2, $3, $4, $5, 'standard', $8, 'needs_check', 'unchecked') RETURNING id"
        )
        .bind("x\"><svg/onload=alert(7)>@example.jp")
        .bind(p0)
        .bind(p1)
        .bind(p2)
        .bind(p3)
        .bind(p4)
        .bind(time::macros::date!(1990 - 01 - 01))
        .bind(time::OffsetDateTime::now_utc())
        .fetch_one(pool)
        .await)
        .expect("user");
        let review: i64 = with_pool!(&app.db, |pool| sqlx::query_scalar(
            "INSERT INTO manual_reviews (user_id, kind, reason) VALUES ($1, 'inventory', $2) RETURNING id"
        )
        .bind(user_id)
        .bind(PAYLOADS.join(" "))
        .fetch_one(pool)
        .await)
        .expect("review");
        with_pool!(&app.db, |pool| sqlx::query("INSERT INTO form_errors (step, field, created_at) VALUES ($1, $2, $3)")
            .bind(p0)
            .bind(p1)
            .bind(time::OffsetDateTime::now_utc())
            .execute(pool)
            .await
            .map(|_| ()))
        .expect("form error");

        let operator = admin(&app, Role::Operator).await;
        // What operators type is shown back too: a decision note and a switch reason. (The note
        // is not one of the registrant's values above: those are refused as personal data.)
        let note = "</textarea><img src=y onerror=alert(8)>";
        let response = operator.post(&format!("/admin/reviews/{review}/decision"), &[("decision", "reject"), ("comment", note)]).await;
        assert_eq!(response.status(), 303, "the rejection is recorded");
        let response = operator.post("/admin/switches", &[("api", "AddressAPI"), ("forced", "on"), ("reason", p5)]).await;
        assert_eq!(response.status(), 303, "the switch is recorded");

        let shows_registration = [
            "/admin/reviews?status=all".to_string(),
            format!("/admin/reviews/{review}"),
            "/admin/registrations".to_string(),
            "/admin/registrations?name=%3Cscript".to_string(),
            format!("/admin/registrations/{user_id}"),
            format!("/admin/registrations/{user_id}/delete"),
        ];
        let others = ["/admin", "/admin/reviews?kind=unchecked", "/admin/audit", "/admin/switches"];
        for path in shows_registration.iter().map(String::as_str).chain(others) {
            let html = operator.get_html(path).await;
            for payload in PAYLOADS {
                assert!(!html.contains(payload), "{path} renders {payload:?} unescaped");
            }
            for markup in FORBIDDEN {
                assert!(!html.contains(markup), "{path} contains {markup:?}");
            }
        }
        for path in &shows_registration {
            let html = operator.get_html(path).await;
            assert!(html.contains("XSSX-XSSX-XSSX"), "{path} shows the registration");
            assert!(
                html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") || html.contains("&#60;script&#62;"),
                "{path} shows the payload as text"
            );
        }
        let audit = operator.get_html("/admin/audit").await;
        assert!(audit.contains("javascript:alert(6)"), "the switch reason is shown, as text");
    }
}
