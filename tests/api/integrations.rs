//! The external APIs against real HTTP servers started by the tests (wiremock): success, slow
//! beyond the timeout, 5xx, connection refused, malformed JSON, the circuit breaker, and the
//! runbook's fallbacks as the person and the operator see them.

use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ADDRESS, Backend, TestApp, csrf_token, customer_fields, location, registration_number, spawn_app_with};
use crate::on_both_backends;

const FAST_FAILING: &[(&str, &str)] = &[
    ("INVENTORY_API_TIMEOUT_MS", "300"),
    ("REGION_API_TIMEOUT_MS", "300"),
    ("EXTERNAL_API_BREAKER_THRESHOLD", "4"),
    ("EXTERNAL_API_BREAKER_OPEN_SECS", "1"),
];

async fn app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let mut settings = FAST_FAILING.to_vec();
    settings.extend_from_slice(extra);
    spawn_app_with(backend, &settings).await
}

fn stock_body(basic: i64) -> serde_json::Value {
    json!({ "plans": [
        { "plan_id": "basic", "stock": basic },
        { "plan_id": "standard", "stock": 100 },
        { "plan_id": "premium", "stock": 0 }
    ]})
}

async fn to_plan_step(app: &TestApp, email: &str) {
    app.submit_step("/register/customer", &customer_fields(email)).await;
    let response = app.submit_step("/register/address", ADDRESS).await;
    assert_eq!(location(&response), "/register/plan");
}

/// The status text shown under a plan on the plan page.
fn plan_status(html: &str, plan_id: &str) -> String {
    let marker = format!("id=\"plan-{plan_id}-status\">");
    let start = html.find(&marker).map(|i| i + marker.len()).unwrap_or_else(|| panic!("no status for {plan_id}"));
    html[start..start + html[start..].find('<').expect("end")].to_string()
}

fn radio_disabled(html: &str, plan_id: &str) -> bool {
    let marker = format!("id=\"plan-{plan_id}\"");
    let at = html.find(&marker).expect("radio");
    html[at..at + html[at..].find('>').expect("end")].contains("disabled")
}

async fn inventory_status(app: &TestApp, email: &str) -> (String, String, i64) {
    normal_form_app::with_pool!(&app.db, |pool| sqlx::query_as(
        "SELECT inventory_status, region_status, (SELECT COUNT(*) FROM manual_reviews m WHERE m.user_id = users.id AND m.status = 'pending') \
         FROM users WHERE email = $1"
    )
    .bind(email)
    .fetch_one(pool)
    .await)
    .expect("user")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_api_success_shows_levels_and_reserves_with_the_registration_number() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/stock"))
        .respond_with(ResponseTemplate::new(200).set_body_json(stock_body(3)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/reservations"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "reserved": true })))
        .mount(&server)
        .await;
    let app = app_with(Backend::Sqlite, &[("INVENTORY_API_URL", &server.uri())]).await;
    to_plan_step(&app, "inv@example.jp").await;
    let html = app.get_html("/register/plan").await;
    assert_eq!(plan_status(&html, "basic"), "残りわずか");
    assert_eq!(plan_status(&html, "standard"), "在庫あり");
    assert!(plan_status(&html, "premium").starts_with("在庫なし"));
    assert!(radio_disabled(&html, "premium") && !radio_disabled(&html, "basic"));
    // A sold-out plan cannot be chosen even by a hand-made POST.
    let refused = app.submit_step("/register/plan", &[("plan_id", "premium")]).await;
    assert_eq!(refused.status(), 422);
    app.submit_step("/register/plan", &[("plan_id", "basic")]).await;
    let response = app.submit_step("/register/confirm", &[("agree", "yes")]).await;
    assert_eq!(location(&response), "/register/complete");
    let number = registration_number(&app.get_html("/register/complete").await);
    let reservation =
        server.received_requests().await.expect("recorded").into_iter().find(|r| r.url.path() == "/reservations").expect("reserved");
    let body: serde_json::Value = serde_json::from_slice(&reservation.body).expect("json body");
    assert_eq!(body, json!({ "plan_id": "basic", "reference": number }));
    assert_eq!(inventory_status(&app, "inv@example.jp").await, ("reserved".into(), "eligible".into(), 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_api_out_of_stock_at_submit_sends_the_person_back_to_choose() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/stock"))
        .respond_with(ResponseTemplate::new(200).set_body_json(stock_body(3)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/reservations"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({ "reserved": false })))
        .mount(&server)
        .await;
    let app = app_with(Backend::Sqlite, &[("INVENTORY_API_URL", &server.uri())]).await;
    to_plan_step(&app, "late@example.jp").await;
    app.submit_step("/register/plan", &[("plan_id", "basic")]).await;
    let response = app.submit_step("/register/confirm", &[("agree", "yes")]).await;
    assert_eq!(location(&response), "/register/plan?notice=soldout");
    let html = app.get_html("/register/plan?notice=soldout").await;
    assert!(html.contains("在庫がなくなりました"));
    assert_eq!(app.count_users("late@example.jp").await, 0, "nothing half-written");
    let status: String =
        normal_form_app::with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT status FROM user_sessions").fetch_one(pool).await)
            .expect("flow");
    assert_eq!(status, "active", "the flow can go on");
}

/// Slow, 5xx, refused and malformed answers all mean 「要確認」, a registration with inventory
/// status `needs_check` and an entry in the manual-review queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_api_failures_fall_back_to_needs_check_and_manual_review() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let failures: Vec<(&str, Option<ResponseTemplate>)> = vec![
        ("slow", Some(ResponseTemplate::new(200).set_body_json(stock_body(50)).set_delay(Duration::from_secs(2)))),
        ("5xx", Some(ResponseTemplate::new(503))),
        ("malformed", Some(ResponseTemplate::new(200).set_body_string("{\"plans\": [oops"))),
        ("refused", None),
    ];
    for (name, answer) in failures {
        let server = MockServer::start().await;
        let url = match answer {
            Some(answer) => {
                Mock::given(wiremock::matchers::any()).respond_with(answer).mount(&server).await;
                server.uri()
            }
            None => format!("http://127.0.0.1:{closed_port}"),
        };
        let app = app_with(Backend::Sqlite, &[("INVENTORY_API_URL", &url), ("EXTERNAL_API_BREAKER_THRESHOLD", "100")]).await;
        let email = format!("{name}@example.jp");
        to_plan_step(&app, &email).await;
        let started = std::time::Instant::now();
        let html = app.get_html("/register/plan").await;
        assert!(started.elapsed() < Duration::from_secs(4), "{name}: bounded by timeout and retries ({:?})", started.elapsed());
        for plan in ["basic", "standard", "premium"] {
            assert_eq!(plan_status(&html, plan), "要確認", "{name}: {plan}");
            assert!(!radio_disabled(&html, plan), "{name}: still selectable");
        }
        if name == "5xx" {
            let gets = server.received_requests().await.expect("recorded").iter().filter(|r| r.url.path() == "/stock").count();
            assert_eq!(gets, 3, "an idempotent read is retried at most twice");
        }
        app.submit_step("/register/plan", &[("plan_id", "premium")]).await;
        let response = app.submit_step("/register/confirm", &[("agree", "yes")]).await;
        assert_eq!(location(&response), "/register/complete", "{name}: registration goes on");
        assert_eq!(inventory_status(&app, &email).await, ("needs_check".into(), "eligible".into(), 1), "{name}");
        if name == "5xx" {
            let posts = server.received_requests().await.expect("recorded").iter().filter(|r| r.url.path() == "/reservations").count();
            assert_eq!(posts, 1, "a write is never retried");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_fails_fast_and_recovers_without_a_restart() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).and(path("/stock")).respond_with(ResponseTemplate::new(500)).mount(&server).await;
    let app = app_with(Backend::Sqlite, &[("INVENTORY_API_URL", &server.uri()), ("EXTERNAL_API_RETRIES", "0")]).await;
    to_plan_step(&app, "breaker@example.jp").await;
    for _ in 0..4 {
        app.get_html("/register/plan").await;
    }
    let health: serde_json::Value = app.get("/health").await.json().await.expect("json");
    let inventory =
        health["external_apis"].as_array().expect("apis").iter().find(|a| a["api"] == "InventoryAPI").cloned().expect("inventory");
    assert_eq!(inventory["circuit"], "open");
    assert_eq!(inventory["status"], "down");
    assert_eq!(health["status"], "ok", "a down external API never makes the service 503");
    let before = server.received_requests().await.expect("recorded").len();
    assert_eq!(plan_status(&app.get_html("/register/plan").await, "basic"), "要確認");
    assert_eq!(server.received_requests().await.expect("recorded").len(), before, "open circuit: no call goes out");
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains("nfa_external_api_circuit_state{api=\"InventoryAPI\"} 2"), "{metrics}");

    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/stock"))
        .respond_with(ResponseTemplate::new(200).set_body_json(stock_body(50)))
        .mount(&server)
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(plan_status(&app.get_html("/register/plan").await, "basic"), "在庫あり", "half-open probe succeeds");
    let health: serde_json::Value = app.get("/health").await.json().await.expect("json");
    let inventory =
        health["external_apis"].as_array().expect("apis").iter().find(|a| a["api"] == "InventoryAPI").cloned().expect("inventory");
    assert_eq!(inventory["circuit"], "closed");
    assert_eq!(inventory["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_api_answers_eligibility_and_its_outage_is_checked_afterwards() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/eligibility"))
        .and(wiremock::matchers::query_param("plan_id", "premium"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "eligible": false, "reason": "このプランは関東のみです。" })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/eligibility"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "eligible": true })))
        .mount(&server)
        .await;
    let app = app_with(Backend::Sqlite, &[("REGION_API_URL", &server.uri()), ("REGION_RECHECK_INTERVAL_SECS", "1")]).await;
    to_plan_step(&app, "region@example.jp").await;
    let html = app.get_html("/register/plan").await;
    assert!(radio_disabled(&html, "premium"));
    assert!(plan_status(&html, "premium").contains("このプランは関東のみです。"));
    assert_eq!(plan_status(&html, "basic"), "在庫あり");
    let asked = server.received_requests().await.expect("recorded");
    assert!(asked.iter().any(|r| r.url.query().unwrap_or_default().contains("postal_code=1500002")), "asks with the normalised address");

    // RegionAPI goes down: every plan is accepted, the registration is flagged.
    server.reset().await;
    Mock::given(wiremock::matchers::any()).respond_with(ResponseTemplate::new(502)).mount(&server).await;
    let html = app.get_html("/register/plan").await;
    assert!(!radio_disabled(&html, "premium"), "every region accepted while RegionAPI is down");
    assert!(html.contains("お届け可能地域はお申し込み後に確認"));
    app.submit_step("/register/plan", &[("plan_id", "premium")]).await;
    let response = app.submit_step("/register/confirm", &[("agree", "yes")]).await;
    assert_eq!(location(&response), "/register/complete");
    assert_eq!(inventory_status(&app, "region@example.jp").await, ("reserved".into(), "unchecked".into(), 0));

    // It comes back and refuses the address: the background re-check moves it to manual review.
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/eligibility"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "eligible": false, "reason": "対象外の地域です。" })))
        .mount(&server)
        .await;
    let settled = crate::helpers::wait_until(Duration::from_secs(10), || async {
        inventory_status(&app, "region@example.jp").await == ("reserved".into(), "ineligible".into(), 1)
    })
    .await;
    assert!(settled, "re-checked: {:?}", inventory_status(&app, "region@example.jp").await);
    let reason: String =
        normal_form_app::with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT reason FROM manual_reviews WHERE kind = 'region'")
            .fetch_one(pool)
            .await)
        .expect("review");
    assert_eq!(reason, "対象外の地域です。");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_recheck_marks_eligible_registrations() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any()).respond_with(ResponseTemplate::new(500)).mount(&server).await;
    let app = app_with(Backend::Sqlite, &[("REGION_API_URL", &server.uri()), ("REGION_RECHECK_INTERVAL_SECS", "3600")]).await;
    app.register("later@example.jp").await;
    assert_eq!(inventory_status(&app, "later@example.jp").await.1, "unchecked");
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/eligibility"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "eligible": true })))
        .mount(&server)
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // let the breaker half-open
    let config = normal_form_app::config::Config::from_source(&app.env).expect("config");
    let catalog = std::sync::Arc::new(normal_form_app::catalog::Catalog::embedded().expect("catalog"));
    let apis = normal_form_app::apis::Apis::from_config(&config, &app.db, &catalog).expect("apis");
    let summary = normal_form_app::region::recheck_unchecked(&app.db, &apis.region, 100).await.expect("recheck");
    assert_eq!(summary.eligible, 1);
    assert_eq!(inventory_status(&app, "later@example.jp").await, ("reserved".into(), "eligible".into(), 0));
}

on_both_backends! {
    async fn forced_fallbacks_apply_to_the_embedded_providers(app) {
        let backend = app.backend;
        drop(app);
        let app = spawn_app_with(backend, &[("FORCE_FALLBACK_INVENTORY", "1"), ("FORCE_FALLBACK_REGION", "1")]).await;
        to_plan_step(&app, "forced@example.jp").await;
        let html = app.get_html("/register/plan").await;
        assert_eq!(plan_status(&html, "premium"), "要確認");
        app.submit_step("/register/plan", &[("plan_id", "premium")]).await;
        app.submit_step("/register/confirm", &[("agree", "yes")]).await;
        assert_eq!(inventory_status(&app, "forced@example.jp").await, ("needs_check".into(), "unchecked".into(), 1));
        let stock: i64 = normal_form_app::with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT CAST(stock AS BIGINT) FROM plan_stock WHERE plan_id = 'premium'").fetch_one(pool).await).expect("stock");
        assert_eq!(stock, 50, "no unit taken without the inventory's answer");
    }

    async fn fifty_concurrent_submits_for_ten_units_reserve_exactly_ten(app) {
        let catalog = app.data_dir.path().join("catalog.toml");
        std::fs::write(&catalog, "[[plans]]\nid = \"limited\"\nname = \"限定プラン\"\nmonthly_price = 500\ndescription = \"10名様限定\"\ninitial_stock = 10\n").expect("catalog");
        let limited = spawn_app_with(app.backend, &[("CATALOG_PATH", catalog.to_str().expect("path"))]).await;
        let mut visitors = Vec::new();
        for i in 0..50 {
            let visitor = limited.with_new_browser();
            let email = format!("limited{i}@example.jp");
            visitor.submit_step("/register/customer", &customer_fields(&email)).await;
            visitor.submit_step("/register/address", ADDRESS).await;
            assert_eq!(location(&visitor.submit_step("/register/plan", &[("plan_id", "limited")]).await), "/register/confirm");
            let token = csrf_token(&visitor.get_html("/register/confirm").await);
            visitors.push((visitor, token));
        }
        let mut tasks = Vec::new();
        for (visitor, token) in visitors {
            tasks.push(tokio::spawn(async move {
                let response = visitor.post("/register/confirm", &[("csrf_token", token.as_str()), ("agree", "yes"), ("action", "submit")]).await;
                location(&response)
            }));
        }
        let mut outcomes = std::collections::HashMap::<String, usize>::new();
        for task in tasks {
            *outcomes.entry(task.await.expect("task")).or_default() += 1;
        }
        assert_eq!(outcomes.get("/register/complete"), Some(&10), "{outcomes:?}");
        assert_eq!(outcomes.get("/register/plan?notice=soldout"), Some(&40), "{outcomes:?}");
        let (users, stock): (i64, i64) = normal_form_app::with_pool!(&limited.db, |pool| sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM users), (SELECT CAST(stock AS BIGINT) FROM plan_stock WHERE plan_id = 'limited')"
        ).fetch_one(pool).await).expect("counts");
        assert_eq!((users, stock), (10, 0));
        let html = limited.with_new_browser();
        html.submit_step("/register/customer", &customer_fields("after@example.jp")).await;
        html.submit_step("/register/address", ADDRESS).await;
        let page = html.get_html("/register/plan").await;
        assert!(plan_status(&page, "limited").starts_with("在庫なし") && radio_disabled(&page, "limited"));
    }
}
