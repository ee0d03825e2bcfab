//! AddressAPI: the bundled postal data, `/api/v1/postal-codes/{code}`, the 住所検索 button without
//! JavaScript, the HTTP provider's failures and the runbook's fallback (manual entry).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ADDRESS, Backend, TestApp, customer_fields, input_value, location, spawn_app, spawn_app_with};

async fn lookup(app: &TestApp, code: &str) -> (u16, String, Value) {
    let response = app.get(&format!("/api/v1/postal-codes/{code}")).await;
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (status, content_type, response.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postal_code_endpoint_answers_every_match_in_kanji_and_kana() {
    let app = spawn_app(Backend::Sqlite).await;
    let (status, _, body) = lookup(&app, "1500002").await;
    assert_eq!(status, 200);
    assert_eq!(body["postal_code"], "1500002");
    assert_eq!(body["addresses"][0]["prefecture"], "東京都");
    assert_eq!(body["addresses"][0]["city"], "渋谷区");
    assert_eq!(body["addresses"][0]["town"], "渋谷");
    assert_eq!(body["addresses"][0]["city_kana"], "シブヤク");
    let (status, _, full_width) = lookup(&app, "%EF%BC%91%EF%BC%95%EF%BC%90-%EF%BC%90%EF%BC%90%EF%BC%90%EF%BC%92").await;
    assert_eq!((status, &full_width["postal_code"]), (200, &json!("1500002")), "１５０-０００２ is accepted");
    let (_, _, several) = lookup(&app, "0360103").await;
    assert!(several["addresses"].as_array().expect("list").len() > 1, "all towns of a shared code");
    let (status, content_type, missing) = lookup(&app, "0000000").await;
    assert_eq!((status, content_type.as_str()), (404, "application/problem+json"));
    assert!(missing["detail"].as_str().unwrap_or_default().contains("住所を直接入力"));
    let (status, _, invalid) = lookup(&app, "12-34").await;
    assert_eq!(status, 400);
    assert_eq!(invalid["type"], "/api/v1/problems/invalid-postal-code");
    let spec: Value = app.get("/api/v1/openapi.json").await.json().await.expect("openapi");
    assert!(spec["paths"]["/api/v1/postal-codes/{code}"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_without_javascript_fills_the_address_or_offers_a_choice() {
    let app = spawn_app(Backend::Sqlite).await;
    app.submit_step("/register/customer", &customer_fields("lookup@example.jp")).await;
    let html = app.get_html("/register/address").await;
    assert!(html.contains(">住所検索</button>"), "the button is offered");
    let response = app.submit_step_action("/register/address", &[("postal_code", "１５０－０００２")], "lookup").await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.expect("html");
    assert!(html.contains("住所を入力しました"));
    assert!(html.contains("<option selected>東京都</option>"));
    assert_eq!(input_value(&html, "city"), "渋谷区");
    assert_eq!(input_value(&html, "street"), "渋谷");
    assert_eq!(input_value(&html, "postal_code"), "1500002");
    // Several towns: a list, then the chosen one.
    let html = app.submit_step_action("/register/address", &[("postal_code", "0360103")], "lookup").await.text().await.expect("html");
    assert!(html.contains("複数の住所があります") && html.contains("name=\"address_choice\""));
    let html = app
        .submit_step_action("/register/address", &[("postal_code", "0360103"), ("address_choice", "1")], "pick")
        .await
        .text()
        .await
        .expect("html");
    let expected = app.get("/api/v1/postal-codes/0360103").await.json::<Value>().await.expect("json")["addresses"][1]["town"].clone();
    assert_eq!(json!(input_value(&html, "street")), expected);
    // Unknown code: say so and let the person type.
    let html = app.submit_step_action("/register/address", &[("postal_code", "0000000")], "lookup").await.text().await.expect("html");
    assert!(html.contains("該当する住所が見つかりませんでした"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_address_api_failures_mean_manual_entry_and_lookup_comes_back_by_itself() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/postal-codes/1500002"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "postal_code": "1500002", "addresses": [{
            "postal_code": "1500002", "prefecture": "東京都", "city": "渋谷区", "town": "渋谷",
            "prefecture_kana": "トウキョウト", "city_kana": "シブヤク", "town_kana": "シブヤ", "note": null }] })))
        .mount(&server)
        .await;
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("ADDRESS_API_URL", &server.uri()),
            ("ADDRESS_API_TIMEOUT_MS", "300"),
            ("EXTERNAL_API_RETRIES", "0"),
            ("EXTERNAL_API_BREAKER_THRESHOLD", "3"),
            ("EXTERNAL_API_BREAKER_OPEN_SECS", "1"),
        ],
    )
    .await;
    let (status, _, body) = lookup(&app, "1500002").await;
    assert_eq!((status, &body["addresses"][0]["town"]), (200, &json!("渋谷")));
    let (status, _, _) = lookup(&app, "9999999").await;
    assert_eq!(status, 404, "the API's 404 is an answer, not a failure");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    for (name, answer) in [
        (
            "slow",
            Some(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"postal_code": "1500002", "addresses": []}))
                    .set_delay(Duration::from_secs(1)),
            ),
        ),
        ("5xx", Some(ResponseTemplate::new(500))),
        ("malformed", Some(ResponseTemplate::new(200).set_body_string("<html>"))),
        ("refused", None),
    ] {
        let failing = MockServer::start().await;
        let url = match answer {
            Some(answer) => {
                Mock::given(any()).respond_with(answer).mount(&failing).await;
                failing.uri()
            }
            None => format!("http://{closed}"),
        };
        let app = spawn_app_with(Backend::Sqlite, &[("ADDRESS_API_URL", &url), ("ADDRESS_API_TIMEOUT_MS", "300")]).await;
        let (status, content_type, body) = lookup(&app, "1500002").await;
        assert_eq!((status, content_type.as_str()), (503, "application/problem+json"), "{name}");
        assert!(body["detail"].as_str().unwrap_or_default().contains("直接入力"), "{name}");
    }

    // The breaker opens: the form hides 住所検索 and asks for the address by hand…
    server.reset().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    for _ in 0..3 {
        lookup(&app, "1500002").await;
    }
    app.submit_step("/register/customer", &customer_fields("manual@example.jp")).await;
    let html = app.get_html("/register/address").await;
    assert!(!html.contains(">住所検索</button>") && html.contains("住所を直接入力してください"));
    let response = app.submit_step("/register/address", ADDRESS).await;
    assert_eq!(location(&response), "/register/plan", "registration goes on with a typed address");
    let health: Value = app.get("/health").await.json().await.expect("health");
    assert_eq!(health["status"], "ok");
    assert!(health["external_apis"].as_array().expect("apis").iter().any(|a| a["api"] == "AddressAPI" && a["status"] == "down"));

    // …and when the API is back, lookup returns by itself.
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/postal-codes/1500002"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "postal_code": "1500002", "addresses": [] })))
        .mount(&server)
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(app.get_html("/register/address").await.contains(">住所検索</button>"), "half-open: offered again");
    lookup(&app, "1500002").await;
    let health: Value = app.get("/health").await.json().await.expect("health");
    assert!(health["external_apis"].as_array().expect("apis").iter().any(|a| a["api"] == "AddressAPI" && a["status"] == "ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_address_fallback_hides_lookup() {
    let app = spawn_app_with(Backend::Sqlite, &[("FORCE_FALLBACK_ADDRESS", "1")]).await;
    app.submit_step("/register/customer", &customer_fields("forced.address@example.jp")).await;
    let html = app.get_html("/register/address").await;
    assert!(!html.contains(">住所検索</button>") && html.contains("住所を直接入力してください"));
    assert_eq!(lookup(&app, "1500002").await.0, 503);
}

/// `normal-form-app stub-apis` serves the three contracts; the app runs on it, and its switches
/// make each API fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_runs_on_stub_apis_and_their_switches_trigger_the_fallbacks() {
    let mut stub = Command::new(env!("CARGO_BIN_EXE_normal-form-app"))
        .args(["stub-apis", "--listen", "127.0.0.1:0"])
        .env("LOG_FORMAT", "json")
        .env("DATA_DIR", tempfile::tempdir().expect("tempdir").path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("stub-apis");
    let mut lines = BufReader::new(stub.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines.next().expect("stub output").expect("line");
        if let Some(url) = line.strip_prefix("stub APIs on ") {
            break url.to_string();
        }
    };
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("ADDRESS_API_URL", &format!("{base}/address")),
            ("INVENTORY_API_URL", &format!("{base}/inventory")),
            ("REGION_API_URL", &format!("{base}/region")),
            ("EXTERNAL_API_RETRIES", "0"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    for api in ["address", "inventory", "region"] {
        let health = client.get(format!("{base}/{api}/health")).send().await.expect("health");
        assert_eq!(health.status(), 200, "{api}/health");
    }
    assert_eq!(lookup(&app, "1500002").await.2["addresses"][0]["town"], "渋谷");
    let number = app.register("stubbed@example.jp").await;
    assert_eq!(number.len(), 14);

    client.post(format!("{base}/_control/address?mode=refuse")).send().await.expect("control");
    assert_eq!(lookup(&app, "1500002").await.0, 503, "refused connections → manual entry");
    client.post(format!("{base}/_control/inventory?mode=fail")).send().await.expect("control");
    let visitor = app.with_new_browser();
    visitor.submit_step("/register/customer", &customer_fields("stub2@example.jp")).await;
    visitor.submit_step("/register/address", ADDRESS).await;
    assert!(visitor.get_html("/register/plan").await.contains("要確認"));
    client.post(format!("{base}/_control/inventory?mode=slow&delay_ms=3000")).send().await.expect("control");
    let started = std::time::Instant::now();
    assert!(visitor.get_html("/register/plan").await.contains("要確認"));
    assert!(started.elapsed() < Duration::from_millis(2900), "the 2 s timeout cuts the slow API short");
    let _ = stub.kill();
    let _ = stub.wait();
}
