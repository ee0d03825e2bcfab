//! Metrics move with traffic; EMF lines carry the runbook's names; no personal data in any log.

use normal_form_app::emf::parse_prometheus;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Backend, TestApp, customer_fields, spawn_app_with};

/// Sum of a metric's samples whose labels include all of `labels`.
async fn metric(app: &TestApp, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    parse_prometheus(&text)
        .into_iter()
        .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v)))
        .map(|(_, _, v)| v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_as_traffic_happens() {
    let inventory = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(500)).mount(&inventory).await;
    let app = spawn_app_with(Backend::Sqlite, &[("INVENTORY_API_URL", &inventory.uri()), ("EXTERNAL_API_RETRIES", "0")]).await;
    let limited = spawn_app_with(Backend::Sqlite, &[("RATE_LIMIT_PER_MINUTE", "1")]).await;

    let watched: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("nfa_registrations_completed_total", vec![]),
        ("nfa_registration_flows_started_total", vec![]),
        ("nfa_registration_validation_errors_total", vec![("step", "customer"), ("field", "phone")]),
        ("nfa_security_csrf_failures_total", vec![]),
        ("nfa_security_rate_limited_total", vec![]),
        ("nfa_external_api_requests_total", vec![("api", "InventoryAPI"), ("outcome", "error")]),
        ("nfa_http_requests_total", vec![("route", "/register/{step}"), ("method", "POST"), ("status_class", "3xx")]),
        ("nfa_http_requests_total", vec![("route", "/register/{step}"), ("method", "POST"), ("status_class", "4xx")]),
    ];
    let mut before = Vec::new();
    for (name, labels) in &watched {
        before.push(metric(&app, name, labels).await);
    }

    // A validation error, then a full registration (InventoryAPI failing: 要確認).
    let mut bad_phone = customer_fields("metrics@example.jp");
    bad_phone.retain(|(k, _)| *k != "phone");
    bad_phone.push(("phone", "12"));
    assert_eq!(app.submit_step("/register/customer", &bad_phone).await.status(), 422);
    app.register("metrics@example.jp").await;
    // A CSRF failure.
    assert_eq!(app.post("/register/address", &[("csrf_token", "forged")]).await.status(), 403);
    // A rate-limited POST.
    limited.post("/register/customer", &[]).await;
    assert_eq!(limited.post("/register/customer", &[]).await.status(), 429);

    let mut after = Vec::new();
    for (name, labels) in &watched {
        after.push(metric(&app, name, labels).await);
    }
    let delta = |i: usize| after[i] - before[i];
    assert_eq!(delta(0), 1.0, "registrations completed");
    assert!(delta(1) >= 1.0, "flows started");
    assert_eq!(delta(2), 1.0, "validation error by step and field");
    assert_eq!(delta(3), 2.0, "CSRF failures: the forged token, and the token-less POST that passed the rate limit");
    assert_eq!(delta(4), 1.0, "rate-limit rejections");
    assert!(delta(5) >= 1.0, "external API failures by api and outcome");
    assert!(delta(6) >= 4.0, "POSTs answered 3xx, by route template");
    assert!(delta(7) >= 2.0, "POSTs answered 4xx");

    let text = app.get("/metrics").await.text().await.expect("metrics");
    for present in [
        "nfa_http_request_duration_seconds_bucket",
        "nfa_registration_active_flows",
        "nfa_external_api_request_duration_seconds_bucket",
        "nfa_external_api_circuit_state{api=\"InventoryAPI\"}",
        "nfa_outbox_messages{state=\"pending\"}",
        "nfa_outbox_oldest_pending_age_seconds",
        "nfa_manual_reviews_pending 1",
        "nfa_db_pool_connections{state=\"idle\"}",
        "nfa_db_pool_max_connections",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(present), "{present} missing from /metrics");
    }
    assert!(!text.contains("metrics@example.jp"), "no user data in labels");
    assert!(!text.contains("route=\"/register/customer\""), "route templates, not raw paths");
}
