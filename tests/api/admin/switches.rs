//! 外部API切替 (`/admin/switches`): operators force a fallback on or off with a reason; it is
//! audited and reaches every instance within seconds; viewers only look.

use std::time::Duration;

use normal_form_app::admin::actor::Role;
use normal_form_app::with_pool;

use super::{admin, between};
use crate::helpers::{Backend, TestApp, location, spawn_app_with, wait_until};
use crate::on_both_backends;

/// `forced_fallback` of `api` in this instance's `/health`.
async fn forced_in_health(app: &TestApp, api: &str) -> bool {
    let health: serde_json::Value = app.get("/health").await.json().await.expect("health json");
    health["external_apis"]
        .as_array()
        .expect("external_apis")
        .iter()
        .find(|a| a["api"] == api)
        .and_then(|a| a["forced_fallback"].as_bool())
        .expect("forced_fallback")
}

async fn postal_status(app: &TestApp) -> u16 {
    app.get("/api/v1/postal-codes/1500002").await.status().as_u16()
}

async fn stored_switches(app: &TestApp) -> i64 {
    with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM api_switches").fetch_one(pool).await).expect("count")
}

async fn audit_count(app: &TestApp) -> i64 {
    with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'api_switch.set'").fetch_one(pool).await)
        .expect("count")
}

on_both_backends! {
    async fn a_switch_reaches_another_instance_within_seconds_and_is_audited(app) {
        let other = app.another_instance().await;
        assert_eq!(postal_status(&other).await, 200, "lookup works before the switch");
        let operator = admin(&app, Role::Operator).await;

        let response = operator.post("/admin/switches", &[("api", "AddressAPI"), ("forced", "on"), ("reason", "AddressAPI 障害のため（INC-42）")]).await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/admin/switches?saved=AddressAPI");
        assert!(forced_in_health(&app, "AddressAPI").await, "this instance at once");
        assert!(
            wait_until(Duration::from_secs(8), || async { forced_in_health(&other, "AddressAPI").await }).await,
            "the other instance follows within seconds"
        );
        assert_eq!(postal_status(&other).await, 503, "the other instance falls back");
        assert!(!forced_in_health(&other, "InventoryAPI").await && !forced_in_health(&other, "RegionAPI").await, "only the switched API");

        let page = operator.get_html("/admin/switches?saved=AddressAPI").await;
        assert!(page.contains("AddressAPIの切替を保存しました。"));
        let card = between(&page, "id=\"switch-AddressAPI\">", "</section>");
        assert!(card.contains("強制中") && card.contains("強制オン") && card.contains(&operator.email), "{card}");
        assert!(card.contains("強制を解除する"));

        let dashboard = operator.get_html("/admin").await;
        let row = between(&dashboard, "<tr id=\"api-AddressAPI\">", "</tr>");
        assert!(row.contains("強制中") && row.contains("遮断中"), "the dashboard shows the forced fallback: {row}");

        let (detail, actor, target): (String, String, String) = with_pool!(&app.db, |pool| sqlx::query_as(
            "SELECT CAST(detail AS TEXT), actor, target FROM audit_log WHERE action = 'api_switch.set'"
        )
        .fetch_one(pool)
        .await)
        .expect("one audit record");
        let detail: serde_json::Value = serde_json::from_str(&detail).expect("json");
        assert_eq!(detail["before"]["forced"], false);
        assert_eq!(detail["after"]["forced"], true);
        assert_eq!(detail["reason"], "AddressAPI 障害のため（INC-42）");
        assert_eq!(actor, operator.email);
        assert_eq!(target, "api:AddressAPI");
        let log = operator.get_html("/admin/audit").await;
        assert!(log.contains("<td class=\"action\">外部API切替</td>") && log.contains("<td class=\"target\">api:AddressAPI</td>"));
        assert!(log.contains("<span class=\"hint\">理由</span> AddressAPI 障害のため（INC-42）"));
        assert!(log.contains("<code class=\"before\">{&#34;forced&#34;:false}</code>") && log.contains("<code class=\"after\">{&#34;forced&#34;:true}</code>"));

        let response = operator.post("/admin/switches", &[("api", "AddressAPI"), ("forced", "off"), ("reason", "復旧を確認")]).await;
        assert_eq!(response.status(), 303);
        assert!(
            wait_until(Duration::from_secs(8), || async { !forced_in_health(&other, "AddressAPI").await }).await,
            "switching back off reaches the other instance too"
        );
        assert_eq!(postal_status(&other).await, 200);
        assert_eq!(audit_count(&app).await, 2);
    }

    async fn viewers_see_the_switches_but_cannot_change_them(app) {
        let viewer = admin(&app, Role::Viewer).await;
        let page = viewer.get_html("/admin/switches").await;
        for api in ["AddressAPI", "InventoryAPI", "RegionAPI"] {
            assert!(page.contains(&format!("id=\"switch-{api}\"")), "{api} listed");
        }
        assert!(!page.contains("action=\"/admin/switches\""), "no switch form for a viewer");
        assert!(page.contains("オペレーター権限のアカウントのみ"));
        let response = viewer.post("/admin/switches", &[("api", "AddressAPI"), ("forced", "on"), ("reason", "見るだけのはず")]).await;
        assert_eq!(response.status(), 403);
        assert!(response.text().await.expect("body").contains("権限がありません"));
        assert_eq!(stored_switches(&app).await, 0);
        assert_eq!(audit_count(&app).await, 0);
        assert!(!forced_in_health(&app, "AddressAPI").await);
        assert_eq!(viewer.get("/admin").await.status(), 200);
        assert_eq!(viewer.get("/admin/audit").await.status(), 200);
    }

    async fn switches_refuse_forged_and_incomplete_requests(app) {
        let operator = admin(&app, Role::Operator).await;
        let response = operator.post_raw("/admin/switches", &[("api", "AddressAPI"), ("forced", "on"), ("reason", "x"), ("csrf_token", "forged")]).await;
        assert_eq!(response.status(), 403, "wrong CSRF token");
        let response = operator.post_raw("/admin/switches", &[("api", "AddressAPI"), ("forced", "on"), ("reason", "x")]).await;
        assert_eq!(response.status(), 403, "no CSRF token");
        let response = operator.post("/admin/switches", &[("api", "AddressAPI"), ("forced", "on"), ("reason", "  ")]).await;
        assert_eq!(response.status(), 422, "a reason is required");
        assert!(response.text().await.expect("body").contains("切替の理由を入力してください。"));
        let long = "あ".repeat(501);
        let response = operator.post("/admin/switches", &[("api", "AddressAPI"), ("forced", "on"), ("reason", long.as_str())]).await;
        assert_eq!(response.status(), 422);
        let response = operator.post("/admin/switches", &[("api", "MailAPI"), ("forced", "on"), ("reason", "x")]).await;
        assert_eq!(response.status(), 400, "unknown API");
        let response = operator.post("/admin/switches", &[("api", "AddressAPI"), ("forced", "maybe"), ("reason", "x")]).await;
        assert_eq!(response.status(), 400);
        assert_eq!(stored_switches(&app).await, 0);
        assert_eq!(audit_count(&app).await, 0);
        assert!(!forced_in_health(&app, "AddressAPI").await);
    }
}

/// `FORCE_FALLBACK_REGION=1` keeps RegionAPI's fallback on whatever the table says, and the screen
/// says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_variable_forces_the_fallback_regardless_of_the_switch() {
    let app = spawn_app_with(Backend::Sqlite, &[("FORCE_FALLBACK_REGION", "1"), ("API_SWITCH_POLL_MS", "200")]).await;
    let operator = admin(&app, Role::Operator).await;
    let card = between(&operator.get_html("/admin/switches").await, "id=\"switch-RegionAPI\">", "</section>").to_string();
    assert!(card.contains("環境変数で強制中") && card.contains("強制中"), "{card}");
    // Switching it on and off in the table does not release it.
    for forced in ["on", "off"] {
        let response = operator.post("/admin/switches", &[("api", "RegionAPI"), ("forced", forced), ("reason", "試験")]).await;
        assert_eq!(response.status(), 303);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(forced_in_health(&app, "RegionAPI").await);
    let card = between(&operator.get_html("/admin/switches").await, "id=\"switch-RegionAPI\">", "</section>").to_string();
    assert!(card.contains("<dd class=\"db-switch\">オフ"), "{card}");
    // Another API follows the table alone.
    assert!(!forced_in_health(&app, "InventoryAPI").await);
    operator.post("/admin/switches", &[("api", "InventoryAPI"), ("forced", "on"), ("reason", "試験")]).await;
    assert!(forced_in_health(&app, "InventoryAPI").await);
}
