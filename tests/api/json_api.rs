//! The registration flow through the JSON API only, on both backends.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, location};
use crate::on_both_backends;

fn customer(email: &str) -> Value {
    json!({
        "family_name": "山田", "given_name": "太郎", "family_name_kana": "やまだ", "given_name_kana": "たろう",
        "email": email, "email_confirm": email, "password": "correct-horse-battery-42",
        "phone": "090-1234-5678", "birth_date": "1990-04-01"
    })
}

fn address() -> Value {
    json!({ "postal_code": "１５０-０００２", "prefecture": "東京都", "city": "渋谷区", "street": "渋谷2-21-1", "building": "" })
}

/// A native client: bearer token, no cookie, no CSRF.
struct Native<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    token: String,
}

impl Native<'_> {
    async fn start(app: &TestApp) -> Native<'_> {
        let client = reqwest::Client::new();
        let response = client.post(app.url("/api/v1/flows")).send().await.expect("start");
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["steps"].as_array().map(Vec::len), Some(4));
        assert_eq!(body["steps"][0]["fields"][0]["label"], "姓");
        assert_eq!(body["next_step"], "customer");
        Native { app, client, token: body["token"].as_str().expect("token").to_string() }
    }

    async fn put(&self, step: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.app.url(&format!("/api/v1/flows/current/steps/{step}")))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("put")
    }

    async fn submit(&self, key: Option<&str>, body: &Value) -> reqwest::Response {
        let mut request = self.client.post(self.app.url("/api/v1/flows/current/submit")).bearer_auth(&self.token).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("submit")
    }

    async fn fill(&self, email: &str) {
        assert_eq!(self.put("customer", &customer(email)).await.status(), 200);
        assert_eq!(self.put("address", &address()).await.status(), 200);
        let plans: Value = self
            .client
            .get(self.app.url("/api/v1/flows/current/plans"))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("plans")
            .json()
            .await
            .expect("json");
        assert_eq!(plans["plans"][0]["selectable"], true, "{plans}");
        assert!(plans["plans"][0]["stock_label"].as_str().is_some_and(|l| ["在庫あり", "残りわずか"].contains(&l)));
        let response = self.put("plan", &json!({ "plan_id": "basic" })).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["next_step"], "confirm");
        assert_eq!(body["values"]["family_name_kana"], "ヤマダ", "the same normalisation as the form");
        assert_eq!(body["values"]["postal_code"], "1500002");
    }
}

on_both_backends! {
    async fn a_native_client_registers_through_the_api_only(app) {
        let native = Native::start(&app).await;
        native.fill("api.native@example.jp").await;
        let response = native.submit(None, &json!({ "agree": true })).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("json");
        let number = body["registration_number"].as_str().expect("number").to_string();
        let stored: String = normal_form_app::with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT registration_number FROM users WHERE email = $1")
            .bind("api.native@example.jp").fetch_one(pool).await).expect("user");
        assert_eq!(stored, number);
        let read: Value = native.client.get(app.url("/api/v1/flows/current")).bearer_auth(&native.token).send().await.expect("get").json().await.expect("json");
        assert_eq!(read["status"], "completed");
        assert!(read["values"].get("password").is_none(), "never the password");
    }

    async fn field_errors_are_422_problems_with_stable_codes(app) {
        let native = Native::start(&app).await;
        let mut body = customer("codes@example.jp");
        body["family_name"] = json!("");
        body["phone"] = json!("12");
        body["email_confirm"] = json!("other@example.jp");
        let response = native.put("customer", &body).await;
        assert_eq!(response.status(), 422);
        assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/problem+json"));
        let problem: Value = response.json().await.expect("json");
        assert_eq!(problem["type"], "/api/v1/problems/validation-failed");
        let errors = problem["errors"].as_array().expect("errors");
        let find = |field: &str| errors.iter().find(|e| e["field"] == field).cloned().unwrap_or_default();
        assert_eq!(find("family_name")["code"], "required");
        assert_eq!(find("family_name")["message"], "姓を入力してください。");
        assert_eq!(find("phone")["code"], "invalid");
        assert_eq!(find("email_confirm")["code"], "invalid");
        assert_eq!(native.put("nowhere", &json!({})).await.status(), 404);
        let bad_json = native.client.put(app.url("/api/v1/flows/current/steps/customer")).bearer_auth(&native.token).body("[1,2").send().await.expect("put");
        assert_eq!(bad_json.status(), 400);
        native.fill("codes@example.jp").await;
        let refused = native.submit(None, &json!({ "agree": false })).await;
        assert_eq!(refused.status(), 422);
        let problem: Value = refused.json().await.expect("json");
        assert_eq!(problem["errors"][0]["code"], "consent_required");
        let anonymous = reqwest::Client::new().get(app.url("/api/v1/flows/current")).send().await.expect("get");
        assert_eq!(anonymous.status(), 401);
    }

    async fn browser_clients_need_the_csrf_header(app) {
        let client = crate::helpers::client();
        let started: Value = client.post(app.url("/api/v1/flows")).send().await.expect("start").json().await.expect("json");
        let csrf = started["csrf_token"].as_str().expect("csrf").to_string();
        let put = |with_csrf: bool| {
            let mut request = client.put(app.url("/api/v1/flows/current/steps/customer")).json(&customer("cookie@example.jp"));
            if with_csrf {
                request = request.header("X-CSRF-Token", csrf.clone());
            }
            request.send()
        };
        let refused = put(false).await.expect("put");
        assert_eq!(refused.status(), 403);
        assert_eq!(refused.json::<Value>().await.expect("json")["type"], "/api/v1/problems/csrf-token-invalid");
        assert_eq!(put(true).await.expect("put").status(), 200);
    }

    async fn idempotency_keys_replay_refuse_other_bodies_and_serialise_concurrent_submits(app) {
        let native = Native::start(&app).await;
        native.fill("idem@example.jp").await;
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let client = native.client.clone();
            let url = app.url("/api/v1/flows/current/submit");
            let token = native.token.clone();
            tasks.push(tokio::spawn(async move {
                let response = client.post(url).bearer_auth(token).header("Idempotency-Key", "key-1").json(&json!({ "agree": true })).send().await.expect("submit");
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.expect("json"))
            }));
        }
        let mut created = 0;
        let mut number = None;
        for task in tasks {
            let (status, body) = task.await.expect("task");
            match status {
                201 => {
                    created += 1;
                    assert!(number.is_none() || number.as_ref() == body["registration_number"].as_str().map(str::to_string).as_ref());
                    number = body["registration_number"].as_str().map(str::to_string);
                }
                409 => assert_eq!(body["type"], "/api/v1/problems/request-in-progress"),
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert!(created >= 1, "the first submit created the registration; replays answer the same 201");
        assert_eq!(app.count_users("idem@example.jp").await, 1);
        let replay = native.submit(Some("key-1"), &json!({ "agree": true })).await;
        assert_eq!(replay.status(), 201);
        assert_eq!(replay.headers().get("idempotent-replayed").map(|v| v.as_bytes()), Some(&b"true"[..]));
        assert_eq!(replay.json::<Value>().await.expect("json")["registration_number"].as_str().map(str::to_string), number);
        let other_body = native.submit(Some("key-1"), &json!({ "agree": "yes" })).await;
        assert_eq!(other_body.status(), 422);
        assert_eq!(other_body.json::<Value>().await.expect("json")["type"], "/api/v1/problems/idempotency-key-reused");
    }

    async fn a_flow_can_switch_faces_midway(app) {
        // HTML first, then the API with the same cookie.
        app.submit_step("/register/customer", &crate::helpers::customer_fields("faces1@example.jp")).await;
        let read: Value = app.client.get(app.url("/api/v1/flows/current")).send().await.expect("get").json().await.expect("json");
        assert_eq!(read["values"]["family_name"], "山田");
        assert_eq!(read["next_step"], "address");
        let csrf = read["csrf_token"].as_str().expect("csrf").to_string();
        for (step, body) in [("address", address()), ("plan", json!({ "plan_id": "standard" }))] {
            let response = app.client.put(app.url(&format!("/api/v1/flows/current/steps/{step}"))).header("X-CSRF-Token", &csrf).json(&body).send().await.expect("put");
            assert_eq!(response.status(), 200, "{step}");
        }
        let done = app.client.post(app.url("/api/v1/flows/current/submit")).header("X-CSRF-Token", &csrf).json(&json!({ "agree": true })).send().await.expect("submit");
        assert_eq!(done.status(), 201);
        assert_eq!(location(&app.get("/register/customer").await), "/register/complete", "the form sees the same flow, completed");

        // API first, then the form.
        let browser = app.with_new_browser();
        let started: Value = browser.client.post(app.url("/api/v1/flows")).send().await.expect("start").json().await.expect("json");
        let csrf = started["csrf_token"].as_str().expect("csrf").to_string();
        let response = browser.client.put(app.url("/api/v1/flows/current/steps/customer")).header("X-CSRF-Token", &csrf).json(&customer("faces2@example.jp")).send().await.expect("put");
        assert_eq!(response.status(), 200);
        browser.register_rest().await;
        assert_eq!(app.count_users("faces1@example.jp").await + app.count_users("faces2@example.jp").await, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_by_default_and_follows_the_allow_list() {
    let preflight = |app: &TestApp, origin: &'static str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/flows/current/steps/customer"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "PUT")
            .header("Access-Control-Request-Headers", "content-type,x-csrf-token")
            .send()
    };
    let closed = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    let response = preflight(&closed, "https://spa.example.jp").await.expect("preflight");
    assert!(response.headers().get("access-control-allow-origin").is_none(), "CORS off by default");

    let open = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, &[("CORS_ALLOWED_ORIGINS", "https://spa.example.jp")]).await;
    let allowed = preflight(&open, "https://spa.example.jp").await.expect("preflight");
    assert_eq!(allowed.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()), Some("https://spa.example.jp"));
    assert_eq!(allowed.headers().get("access-control-allow-credentials").and_then(|v| v.to_str().ok()), Some("true"));
    let other = preflight(&open, "https://evil.example").await.expect("preflight");
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // A browser on the allowed origin may change state with the cookie and the CSRF header.
    let client = crate::helpers::client();
    let started: Value = client
        .post(open.url("/api/v1/flows"))
        .header("Origin", "https://spa.example.jp")
        .send()
        .await
        .expect("start")
        .json()
        .await
        .expect("json");
    let csrf = started["csrf_token"].as_str().expect("csrf").to_string();
    let saved = client
        .put(open.url("/api/v1/flows/current/steps/customer"))
        .header("Origin", "https://spa.example.jp")
        .header("Sec-Fetch-Site", "same-site")
        .header("X-CSRF-Token", csrf)
        .json(&customer("spa@example.jp"))
        .send()
        .await
        .expect("put");
    assert_eq!(saved.status(), 200);
}

on_both_backends! {
    async fn every_problem_type_of_the_submit_and_steps(app) {
        // step-incomplete: submitting before the steps are filled.
        let early = Native::start(&app).await;
        let response = early.submit(None, &json!({ "agree": true })).await;
        assert_eq!(response.status(), 422);
        let problem: Value = response.json().await.expect("json");
        assert_eq!((problem["type"].as_str(), problem["next_step"].as_str()), (Some("/api/v1/problems/step-incomplete"), Some("customer")));
        // idempotency-key-invalid.
        let long_key = "k".repeat(300);
        assert_eq!(early.submit(Some(&long_key), &json!({ "agree": true })).await.status(), 400);

        // unavailable: a plan not offered at the address (premium is for the Kanto region).
        let osaka = Native::start(&app).await;
        osaka.put("customer", &customer("osaka@example.jp")).await;
        let mut address_osaka = address();
        address_osaka["prefecture"] = json!("大阪府");
        address_osaka["postal_code"] = json!("5300001");
        address_osaka["city"] = json!("大阪市北区");
        assert_eq!(osaka.put("address", &address_osaka).await.status(), 200);
        let refused = osaka.put("plan", &json!({ "plan_id": "premium" })).await;
        assert_eq!(refused.status(), 422);
        let problem: Value = refused.json().await.expect("json");
        assert_eq!(problem["errors"][0]["code"], "unavailable");

        // plan-not-offered: the address changed to Osaka after premium was chosen in Tokyo.
        let moved = Native::start(&app).await;
        moved.fill("moved@example.jp").await;
        assert_eq!(moved.put("plan", &json!({ "plan_id": "premium" })).await.status(), 200);
        assert_eq!(moved.put("address", &address_osaka).await.status(), 200);
        let response = moved.submit(None, &json!({ "agree": true })).await;
        assert_eq!(response.status(), 422);
        let problem: Value = response.json().await.expect("json");
        assert_eq!((problem["type"].as_str(), problem["next_step"].as_str()), (Some("/api/v1/problems/plan-not-offered"), Some("plan")));

        // flow-completed: no step can change after the registration.
        let done = Native::start(&app).await;
        done.fill("done@example.jp").await;
        assert_eq!(done.submit(None, &json!({ "agree": true })).await.status(), 201);
        let response = done.put("address", &address()).await;
        assert_eq!(response.status(), 409);
        assert_eq!(response.json::<Value>().await.expect("json")["type"], "/api/v1/problems/flow-completed");
        let again = done.submit(None, &json!({ "agree": true })).await;
        assert_eq!(again.status(), 200, "a repeated submit answers the same registration");
    }

    async fn plan_sold_out_between_choice_and_submit(app) {
        let catalog = app.data_dir.path().join("one.toml");
        std::fs::write(&catalog, "[[plans]]\nid = \"basic\"\nname = \"限定1名\"\nmonthly_price = 100\ndescription = \"1名様限定\"\ninitial_stock = 1\n").expect("catalog");
        let app = crate::helpers::spawn_app_with(app.backend, &[("CATALOG_PATH", catalog.to_str().expect("path"))]).await;
        let first = Native::start(&app).await;
        let second = Native::start(&app).await;
        first.fill("first@example.jp").await;
        second.fill("second@example.jp").await;
        assert_eq!(first.submit(None, &json!({ "agree": true })).await.status(), 201);
        let response = second.submit(None, &json!({ "agree": true })).await;
        assert_eq!(response.status(), 422);
        let problem: Value = response.json().await.expect("json");
        assert_eq!((problem["type"].as_str(), problem["next_step"].as_str()), (Some("/api/v1/problems/plan-sold-out"), Some("plan")));
        assert!(problem["detail"].as_str().unwrap_or_default().contains("別のプラン"));
    }
}
