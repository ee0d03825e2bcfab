//! The registration form over HTTP, on both backends.

use std::collections::HashSet;

use crate::helpers::{ADDRESS, TestApp, csrf_token, customer_fields, input_value, location, registration_number};
use crate::on_both_backends;

const EMAIL: &str = "taro.yamada@example.jp";

async fn user_row(app: &TestApp, email: &str) -> Option<(String, String, String, String, String, String)> {
    normal_form_app::with_pool!(&app.db, |pool| sqlx::query_as(
        "SELECT registration_number, family_name_kana, phone, postal_code, street, password_hash FROM users WHERE email = $1"
    )
    .bind(email)
    .fetch_optional(pool)
    .await)
    .expect("query users")
}

on_both_backends! {
    async fn a_person_registers_and_becomes_a_users_row(app) {
        let start = app.get("/").await;
        assert_eq!(location(&start), "/register/customer");
        let cookie = app.get("/register/customer").await;
        let set_cookie = cookie.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");

        let number = app.register("Taro.Yamada@Example.JP").await;
        assert_eq!(number.len(), 14, "{number}");
        let (stored_number, kana, phone, postal, street, hash) = user_row(&app, EMAIL).await.expect("users row, email lower-cased");
        assert_eq!(stored_number, number);
        assert_eq!(kana, "ヤマダ");
        assert_eq!(phone, "09012345678");
        assert_eq!(postal, "1500002");
        assert_eq!(street, "渋谷2-21-1");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));

        // The flow holds the values but never the password.
        let user_data: String = normal_form_app::with_pool!(&app.db, |pool| sqlx::query_scalar(
            "SELECT CAST(user_data AS TEXT) FROM user_sessions WHERE registration_number = $1"
        ).bind(&number).fetch_one(pool).await).expect("flow");
        assert!(user_data.contains(EMAIL) && !user_data.contains("correct-horse"), "{user_data}");

        // Reloading the 完了 page shows the same number; the form then starts afresh on request.
        let again = app.get_html("/register/complete").await;
        assert_eq!(registration_number(&again), number);
        assert_eq!(location(&app.get("/register/customer").await), "/register/complete");
    }

    async fn each_rule_answers_in_japanese_with_summary_and_field_markup(app) {
        let cases: &[(&str, &str, &str)] = &[
            ("family_name", "", "姓を入力してください。"),
            ("family_name_kana", "山田", "セイはカタカナで入力してください。"),
            ("email", "taro@", "メールアドレスの形式が正しくありません"),
            ("email_confirm", "jiro@example.jp", "メールアドレスが一致しません"),
            ("password", "short", "パスワードは8文字以上で入力してください。"),
            ("password", "password123", "流出したパスワード"),
            ("password", "xx-taro.yamada-xx", "メールアドレスの一部を含めないでください"),
            ("phone", "12-34", "電話番号は0から始まる10桁または11桁"),
            ("birth_date", "2001-02-30", "生年月日を正しい日付で入力してください"),
            ("birth_date", "2020-01-01", "18歳未満の方はご登録いただけません。"),
        ];
        for (field, value, message) in cases {
            let mut fields = customer_fields(EMAIL);
            fields.retain(|(name, _)| name != field);
            fields.push((field, value));
            let response = app.submit_step("/register/customer", &fields).await;
            assert_eq!(response.status(), 422, "{field}={value}");
            let html = response.text().await.expect("body");
            assert!(html.contains(message), "{field}={value}: expected {message}");
            assert!(html.contains("role=\"alert\""), "error summary");
            assert!(html.contains(&format!("href=\"#f-{field}\"")), "summary links to the field");
            let input_at = html.find(&format!("id=\"f-{field}\" name=\"{field}\"")).expect("input");
            let tag = &html[input_at..input_at + html[input_at..].find('>').expect("tag")];
            assert!(tag.contains("aria-invalid=\"true\"") && tag.contains(&format!("f-{field}-error")), "{tag}");
        }
        let response = app.submit_step("/register/customer", &customer_fields(EMAIL)).await;
        assert_eq!(location(&response), "/register/address");
        let address_cases: &[(&str, &str, &str)] = &[
            ("postal_code", "12-345", "郵便番号は7桁の数字で入力してください"),
            ("prefecture", "", "都道府県を選択してください。"),
            ("prefecture", "東京", "都道府県を一覧から選択してください。"),
            ("city", "", "市区町村を入力してください。"),
            ("street", "", "番地を入力してください。"),
        ];
        for (field, value, message) in address_cases {
            let mut fields = ADDRESS.to_vec();
            fields.retain(|(name, _)| name != field);
            fields.push((field, value));
            let response = app.submit_step("/register/address", &fields).await;
            assert_eq!(response.status(), 422, "{field}={value}");
            assert!(response.text().await.expect("body").contains(message), "{field}: {message}");
        }
        app.submit_step("/register/address", ADDRESS).await;
        let response = app.submit_step("/register/plan", &[("plan_id", "")]).await;
        assert!(response.text().await.expect("body").contains("プランを選択してください。"));
        let response = app.submit_step("/register/plan", &[("plan_id", "gold")]).await;
        assert!(response.text().await.expect("body").contains("選択されたプランは現在お申し込みいただけません"));
        app.submit_step("/register/plan", &[("plan_id", "basic")]).await;
        let response = app.submit_step("/register/confirm", &[]).await;
        assert_eq!(response.status(), 422);
        assert!(response.text().await.expect("body").contains("同意が必要です"));
        assert_eq!(app.count_users(EMAIL).await, 0);
    }

    async fn input_is_normalised_and_shown_back(app) {
        let mut fields = customer_fields(EMAIL);
        fields.retain(|(name, _)| *name != "family_name_kana" && *name != "phone");
        fields.push(("family_name_kana", "ﾔﾏﾀﾞ"));
        fields.push(("phone", "０９０ー１２３４ー５６７８"));
        fields.push(("given_name", "　太郎　"));
        app.submit_step("/register/customer", &fields).await;
        let step1 = app.get_html("/register/customer").await;
        assert_eq!(input_value(&step1, "family_name_kana"), "ヤマダ");
        assert_eq!(input_value(&step1, "given_name_kana"), "タロウ", "hiragana → katakana");
        assert_eq!(input_value(&step1, "phone"), "09012345678");
        assert_eq!(input_value(&step1, "given_name"), "太郎");
        assert_eq!(input_value(&step1, "password"), "", "the password is never sent back");
        // An invalid postal code is shown back as typed (normalised) with its error.
        let response = app.submit_step("/register/address", &[("postal_code", "１２３-４５６"), ("prefecture", "東京都"), ("city", "渋谷区"), ("street", "1")]).await;
        let html = response.text().await.expect("body");
        assert_eq!(input_value(&html, "postal_code"), "123-456");
        let response = app.submit_step("/register/address", &[("postal_code", "１２３-４５６７"), ("prefecture", "東京都"), ("city", "渋谷区"), ("street", "1")]).await;
        assert_eq!(location(&response), "/register/plan");
        assert_eq!(input_value(&app.get_html("/register/address").await, "postal_code"), "1234567");
    }

    async fn back_and_forward_keep_every_value(app) {
        app.submit_step("/register/customer", &customer_fields(EMAIL)).await;
        // Half-filled step 2, then 戻る: the typed values are saved even though incomplete.
        let response = app.submit_step_action("/register/address", &[("postal_code", "1500002"), ("city", "渋谷区")], "back").await;
        assert_eq!(location(&response), "/register/customer");
        let step1 = app.get_html("/register/customer").await;
        assert_eq!(input_value(&step1, "family_name"), "山田");
        assert_eq!(input_value(&step1, "email_confirm"), EMAIL);
        assert!(step1.contains("入力済みです。変更する場合のみ入力してください"));
        // 次へ without retyping the password keeps the stored hash.
        let mut fields = customer_fields(EMAIL);
        fields.retain(|(name, _)| *name != "password");
        let response = app.submit_step("/register/customer", &fields).await;
        assert_eq!(location(&response), "/register/address");
        let step2 = app.get_html("/register/address").await;
        assert_eq!(input_value(&step2, "postal_code"), "1500002");
        assert_eq!(input_value(&step2, "city"), "渋谷区");
        // Skipping ahead is not possible: the plan step needs a complete address.
        assert_eq!(location(&app.get("/register/confirm").await), "/register/address");
    }

    async fn input_survives_a_restart_and_another_instance(app) {
        let mut app = app;
        app.submit_step("/register/customer", &customer_fields(EMAIL)).await;
        app.stop().await;
        let restarted = app.another_instance().await;
        assert_eq!(input_value(&restarted.get_html("/register/customer").await, "family_name"), "山田");
        restarted.submit_step("/register/address", ADDRESS).await;
        let other = restarted.another_instance().await;
        assert_eq!(input_value(&other.get_html("/register/address").await, "city"), "渋谷区");
        other.submit_step("/register/plan", &[("plan_id", "basic")]).await;
        let response = restarted.submit_step("/register/confirm", &[("agree", "yes")]).await;
        assert_eq!(location(&response), "/register/complete");
        assert_eq!(other.count_users(EMAIL).await, 1);
    }

    async fn an_idle_flow_restarts_with_its_values_and_says_so(app) {
        app.submit_step("/register/customer", &customer_fields(EMAIL)).await;
        normal_form_app::with_pool!(&app.db, |pool| sqlx::query("UPDATE user_sessions SET updated_at = $1")
            .bind(time::OffsetDateTime::now_utc() - time::Duration::hours(2))
            .execute(pool).await.map(|_| ())).expect("age the flow");
        let response = app.get("/register/address").await;
        assert!(response.headers().get("set-cookie").is_some(), "a new flow token");
        let html = response.text().await.expect("body");
        assert!(html.contains("受付をやり直しました"), "says so");
        let step1 = app.get_html("/register/customer").await;
        assert_eq!(input_value(&step1, "family_name"), "山田", "values kept");
        let flows: Vec<String> = normal_form_app::with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT status FROM user_sessions ORDER BY id")
            .fetch_all(pool).await).expect("flows");
        assert_eq!(flows, ["expired", "active"]);
        // And it can be finished.
        app.submit_step("/register/address", ADDRESS).await;
        app.submit_step("/register/plan", &[("plan_id", "basic")]).await;
        app.submit_step("/register/confirm", &[("agree", "yes")]).await;
        assert_eq!(app.count_users(EMAIL).await, 1);
    }

    async fn csrf_failure_keeps_input_and_answers_403(app) {
        app.get("/register/customer").await;
        let mut fields = customer_fields(EMAIL);
        fields.push(("csrf_token", "forged"));
        let response = app.post("/register/customer", &fields).await;
        assert_eq!(response.status(), 403);
        let html = response.text().await.expect("body");
        assert!(html.contains("セキュリティ確認のため"));
        assert_eq!(input_value(&html, "family_name"), "山田", "input kept");
        let fresh = csrf_token(&html);
        assert_ne!(fresh, "forged");
        // Nothing was saved by the refused POST...
        assert_eq!(input_value(&app.get_html("/register/customer").await, "family_name"), "");
        // ...and the token on the 403 page works.
        let mut fields = customer_fields(EMAIL);
        fields.push(("csrf_token", &fresh));
        assert_eq!(location(&app.post("/register/customer", &fields).await), "/register/address");
        // A valid token from another origin is refused too.
        let token = csrf_token(&app.get_html("/register/address").await);
        let response = app.client.post(app.url("/register/address"))
            .header("origin", "https://evil.example")
            .header("sec-fetch-site", "cross-site")
            .form(&[("csrf_token", token.as_str()), ("city", "x")])
            .send().await.expect("post");
        assert_eq!(response.status(), 403);
        // A POST without any flow cookie is refused as well.
        let stranger = app.with_new_browser();
        assert_eq!(stranger.post("/register/customer", &customer_fields(EMAIL)).await.status(), 403);
    }

    async fn twenty_concurrent_final_submits_make_one_row_and_one_number(app) {
        app.fill_until_confirm(EMAIL).await;
        let token = csrf_token(&app.get_html("/register/confirm").await);
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let client = app.client.clone();
            let url = app.url("/register/confirm");
            let token = token.clone();
            tasks.push(tokio::spawn(async move {
                client.post(url).form(&[("csrf_token", token.as_str()), ("agree", "yes"), ("action", "submit")]).send().await.expect("post").status()
            }));
        }
        for task in tasks {
            assert_eq!(task.await.expect("task"), 303);
        }
        assert_eq!(app.count_users(EMAIL).await, 1);
        let numbers: Vec<Option<String>> = normal_form_app::with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT registration_number FROM user_sessions")
            .fetch_all(pool).await).expect("numbers");
        assert_eq!(numbers.len(), 1);
        let page = app.get_html("/register/complete").await;
        assert_eq!(Some(registration_number(&page)), numbers[0]);
    }

    async fn twenty_concurrent_flows_with_one_email_make_one_row(app) {
        let mut visitors = Vec::new();
        for _ in 0..20 {
            let visitor = app.with_new_browser();
            visitor.fill_until_confirm(EMAIL).await;
            visitors.push(visitor);
        }
        let mut tasks = Vec::new();
        for visitor in visitors {
            tasks.push(tokio::spawn(async move {
                let response = visitor.submit_step("/register/confirm", &[("agree", "yes")]).await;
                assert_eq!(location(&response), "/register/complete");
                registration_number(&visitor.get_html("/register/complete").await)
            }));
        }
        let mut numbers = HashSet::new();
        for task in tasks {
            numbers.insert(task.await.expect("task"));
        }
        assert_eq!(numbers.len(), 20, "every visitor sees a 完了 page with a number");
        assert_eq!(app.count_users(EMAIL).await, 1);
    }

    async fn malformed_bodies_never_cause_a_server_error(app) {
        app.get("/register/customer").await;
        let bodies: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"family_name".to_vec(),
            b"=&&==&%%%".to_vec(),
            b"family_name=%FF%FE%80&given_name=\xff\xfe".to_vec(),
            format!("family_name={}", "%E5%B1%B1".repeat(3400)).into_bytes(),
            b"family_name=a%00b%01c%0D%0Ad&email=x%00@y.jp&phone[]=1&phone[x]=2".to_vec(),
            b"birth_date=99999-99-99&postal_code=%EF%BC%91".to_vec(),
            b"\x00\x01\x02\x03".to_vec(),
        ];
        for path in ["/register/customer", "/register/address", "/register/plan", "/register/confirm", "/register/restart"] {
            let token = csrf_token(&app.get_html("/register/customer").await);
            for body in &bodies {
                for with_token in [false, true] {
                    let mut body = body.clone();
                    if with_token {
                        body.extend_from_slice(format!("&action=next&csrf_token={token}").as_bytes());
                    }
                    let response = app.client.post(app.url(path))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body)
                        .send().await.expect("post");
                    let status = response.status().as_u16();
                    assert!((300..500).contains(&status), "{path}: {status}");
                }
            }
        }
        // Control characters never reach the stored flow.
        let stored: Vec<String> = normal_form_app::with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT CAST(user_data AS TEXT) FROM user_sessions")
            .fetch_all(pool).await).expect("flows");
        assert!(stored.iter().all(|s| !s.contains("\\u0000")), "{stored:?}");
    }

    async fn inline_check_applies_the_server_rules(app) {
        let html = app.get_html("/register/customer").await;
        let token = csrf_token(&html);
        let check = |field: &'static str, value: &'static str| {
            let app = &app;
            let token = token.clone();
            async move {
                let response = app.client.post(app.url("/register/validate"))
                    .header("x-csrf-token", token)
                    .form(&[("field", field), ("value", value), ("email", EMAIL)])
                    .send().await.expect("post");
                assert_eq!(response.status(), 200);
                response.json::<serde_json::Value>().await.expect("json")
            }
        };
        let kana = check("family_name_kana", "やまだ").await;
        assert_eq!(kana["ok"], true);
        assert_eq!(kana["value"], "ヤマダ");
        let postal = check("postal_code", "１２３-４５６７").await;
        assert_eq!(postal["value"], "1234567");
        let bad = check("phone", "123").await;
        assert_eq!(bad["ok"], false);
        assert!(bad["message"].as_str().unwrap_or_default().contains("電話番号"));
        let confirm = check("email_confirm", "other@example.jp").await;
        assert_eq!(confirm["ok"], false);
        let response = app.client.post(app.url("/register/validate")).form(&[("field", "phone"), ("value", "1")]).send().await.expect("post");
        assert_eq!(response.status(), 403, "needs the flow's CSRF token");
    }
}

on_both_backends! {
    async fn page_views_without_typing_write_nothing(app) {
        let flows = |app: &TestApp| {
            let db = app.db.clone();
            async move {
                normal_form_app::with_pool!(&db, |pool| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM user_sessions")
                    .fetch_one(pool)
                    .await)
                .expect("count flows")
            }
        };
        // 10,000 cookie-less visits (crawlers, monitors, a flood) of every page of the form.
        let crawler = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let paths = ["/", "/register/customer", "/register/address", "/register/plan", "/register/confirm", "/register/complete"];
        for round in 0..100 {
            let visits = (0..100).map(|i| crawler.get(app.url(paths[(round + i) % paths.len()])).send());
            for answer in futures_util::future::join_all(visits).await {
                let status = answer.expect("GET").status();
                assert!(status == 200 || status == 303, "{status}");
            }
        }
        assert_eq!(flows(&app).await, 0, "10,000 page views, no flow rows");

        // Posting step 1 with nothing typed shows what is required and still writes nothing.
        let visitor = app.with_new_browser();
        let response = visitor.submit_step("/register/customer", &[]).await;
        assert_eq!(response.status(), 422);
        assert!(response.text().await.expect("body").contains("姓を入力してください"));
        // A later step posted without a flow is sent back to step 1.
        let token = csrf_token(&visitor.get_html("/register/customer").await);
        let mut form: Vec<(&str, &str)> = ADDRESS.to_vec();
        form.extend([("csrf_token", token.as_str()), ("action", "next")]);
        assert_eq!(location(&visitor.post("/register/address", &form).await), "/register/customer");
        assert_eq!(flows(&app).await, 0);

        // The first thing typed is kept: the flow exists from then on and survives a reload.
        visitor.type_and_leave().await;
        assert_eq!(flows(&app).await, 1);
        assert_eq!(input_value(&visitor.get_html("/register/customer").await, "family_name"), "途中");
        // And the rest of the registration goes on in that flow.
        let response = visitor.submit_step("/register/customer", &customer_fields(EMAIL)).await;
        assert_eq!(location(&response), "/register/address");
        visitor.register_rest().await;
        assert_eq!(flows(&app).await, 1, "one person, one flow");
    }

    async fn a_forged_or_missing_pre_session_token_is_refused(app) {
        let visitor = app.with_new_browser();
        let page = visitor.get_html("/register/customer").await;
        assert!(!csrf_token(&page).is_empty());
        let mut fields = customer_fields(EMAIL);
        fields.push(("csrf_token", "forged-token"));
        fields.push(("action", "next"));
        let response = visitor.post("/register/customer", &fields).await;
        assert_eq!(response.status(), 403);
        // Another browser's valid token does not work with this browser's pre-session.
        let other = app.with_new_browser();
        let other_token = csrf_token(&other.get_html("/register/customer").await);
        let mut fields = customer_fields(EMAIL);
        fields.push(("csrf_token", other_token.as_str()));
        fields.push(("action", "next"));
        assert_eq!(visitor.post("/register/customer", &fields).await.status(), 403);
        let users: i64 = normal_form_app::with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM user_sessions")
            .fetch_one(pool)
            .await)
        .expect("count");
        assert_eq!(users, 0);
    }
}

mod page_view_limit {
    use crate::helpers::{Backend, spawn_app_with};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn page_views_beyond_the_limit_get_429_but_probes_and_assets_never_do() {
        let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMIT_GET_PER_MINUTE", "5")]).await;
        for _ in 0..5 {
            assert_eq!(app.get("/register/customer").await.status(), 200);
        }
        let refused = app.get("/register/customer").await;
        assert_eq!(refused.status(), 429);
        let wait: u64 = refused.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(refused.text().await.expect("body").contains("しばらく待ってから"));
        for path in ["/health", "/health/live", "/metrics", "/static/app.css", "/favicon.ico"] {
            for _ in 0..10 {
                assert_eq!(app.get(path).await.status(), 200, "{path} is never limited");
            }
        }
    }
}
