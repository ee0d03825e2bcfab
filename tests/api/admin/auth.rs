//! Sign-in with password and TOTP, enrolment, recovery codes, sessions and CSRF (the back-off is
//! in `backoff.rs`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use normal_form_app::admin::actor::Role;
use normal_form_app::admin::totp;
use normal_form_app::with_pool;

use super::{Admin, PASSWORD, admin, between, create_admin, first_sign_in, password_step};
use crate::helpers::{TestApp, csrf_token, location};
use crate::on_both_backends;

const BIN: &str = env!("CARGO_BIN_EXE_normal-form-app");

fn admin_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("nfa_admin="))
        .unwrap_or_else(|| panic!("no admin cookie set: {:?}", response.headers()))
        .to_string()
}

fn token_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().and_then(|p| p.split_once('=')).map(|(_, v)| v.to_string()).expect("cookie value")
}

/// A request carrying exactly this admin cookie (as a stolen or stale cookie would).
async fn get_with_cookie(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    crate::helpers::client().get(app.url(path)).header("cookie", format!("nfa_admin={token}")).send().await.expect("GET")
}

async fn count(app: &TestApp, query: &str) -> i64 {
    with_pool!(&app.db, |pool| sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(query.to_string())).fetch_one(pool).await.expect("count"))
}

on_both_backends! {
    async fn anonymous_visitors_are_sent_to_sign_in(app) {
        assert_eq!(count(&app, "SELECT COUNT(*) FROM admin_users").await, 0, "there is no default account");
        for path in ["/admin", "/admin/login/totp", "/admin/enrol"] {
            let response = app.get(path).await;
            assert_eq!(location(&response), "/admin/login", "GET {path}");
        }
        let response = app.post("/admin/logout", &[("csrf_token", "x")]).await;
        assert_eq!(location(&response), "/admin/login");
        let page = app.get_html("/admin/login").await;
        assert!(page.contains("サインイン") && page.contains("name=\"password\""));
    }

    async fn first_sign_in_enrols_totp_and_shows_recovery_codes_once(app) {
        create_admin(&app, "ops@example.jp", Role::Operator).await;
        let (browser, response) = password_step(&app, "OPS@example.jp", PASSWORD).await;
        assert_eq!(location(&response), "/admin/enrol", "address matched case-insensitively");
        let cookie = admin_cookie(&response);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"), "{cookie}");
        // Half signed in: the console itself is still closed.
        let response = browser.get(app.url("/admin")).send().await.expect("GET");
        assert_eq!(location(&response), "/admin/login");
        let page = browser.get(app.url("/admin/enrol")).send().await.expect("GET").text().await.expect("body");
        assert!(page.contains("data:image/svg+xml;base64,"), "QR code shown");
        let shown = between(&page, "<p class=\"secret\"><code>", "</code>").to_string();
        let again = browser.get(app.url("/admin/enrol")).send().await.expect("GET").text().await.expect("body");
        assert!(again.contains(&shown), "a reload shows the same secret");
        // A wrong code does not enrol.
        let response = browser.post(app.url("/admin/enrol")).form(&[("code", "000000"), ("csrf_token", &csrf_token(&page))]).send().await.expect("POST");
        assert_eq!(response.status(), 422);
        assert!(response.text().await.expect("body").contains("コードが正しくありません"));
        let secret = totp::secret_from_base32(&shown).expect("secret");
        let code = totp::code_at(&secret, totp::now_unix()).expect("code");
        let response = browser.post(app.url("/admin/enrol")).form(&[("code", code.as_str()), ("csrf_token", &csrf_token(&page))]).send().await.expect("POST");
        assert_eq!(response.status(), 200);
        let active = token_of(&admin_cookie(&response));
        assert_ne!(active, token_of(&cookie), "a new session id once signed in");
        let page = response.text().await.expect("body");
        assert!(page.contains("リカバリーコード") && page.matches("<li><code>").count() == 10);
        let dashboard = browser.get(app.url("/admin")).send().await.expect("GET").text().await.expect("body");
        assert!(dashboard.contains("ops@example.jp") && dashboard.contains("オペレーター"));
        // Nothing in the clear at rest: the secret is sealed, the codes hashed, the token hashed.
        let stored: String = with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT totp_secret FROM admin_users").fetch_one(pool).await.expect("secret"));
        assert!(!stored.contains(&shown.replace(' ', "")));
        let code = between(&page, "<li><code>", "<").to_string();
        assert_eq!(count(&app, &format!("SELECT COUNT(*) FROM admin_recovery_codes WHERE code_hash LIKE '%{code}%'")).await, 0);
        assert_eq!(count(&app, &format!("SELECT COUNT(*) FROM admin_sessions WHERE token_hash = '{active}'")).await, 0);
        // The enrolment page is gone once enrolled.
        assert_eq!(location(&browser.get(app.url("/admin/enrol")).send().await.expect("GET")), "/admin/login");
    }

    async fn later_sign_ins_need_a_fresh_code_or_an_unused_recovery_code(app) {
        let first = admin(&app, Role::Viewer).await;
        // TOTP: wrong code refused, the next step's code accepted, and the same code refused again.
        let (browser, response) = password_step(&app, &first.email, PASSWORD).await;
        assert_eq!(location(&response), "/admin/login/totp");
        let page = browser.get(app.url("/admin/login/totp")).send().await.expect("GET").text().await.expect("body");
        let csrf = csrf_token(&page);
        let response = browser.post(app.url("/admin/login/totp")).form(&[("code", "123456"), ("csrf_token", &csrf)]).send().await.expect("POST");
        assert_eq!(response.status(), 401);
        let code = totp::code_at(&first.secret, totp::now_unix() + 30).expect("code");
        let response = browser.post(app.url("/admin/login/totp")).form(&[("code", code.as_str()), ("csrf_token", &csrf)]).send().await.expect("POST");
        assert_eq!(location(&response), "/admin");
        let (browser, _) = password_step(&app, &first.email, PASSWORD).await;
        let page = browser.get(app.url("/admin/login/totp")).send().await.expect("GET").text().await.expect("body");
        let response = browser.post(app.url("/admin/login/totp")).form(&[("code", code.as_str()), ("csrf_token", &csrf_token(&page))]).send().await.expect("POST");
        assert_eq!(response.status(), 401, "a used code cannot be replayed");
        // Recovery code, typed loosely: accepted once, then refused.
        let typed = first.recovery_codes[3].to_lowercase().replace('-', " ");
        let response = browser.post(app.url("/admin/login/totp")).form(&[("code", typed.as_str()), ("csrf_token", &csrf_token(&page))]).send().await.expect("POST");
        assert_eq!(location(&response), "/admin");
        let (browser, _) = password_step(&app, &first.email, PASSWORD).await;
        let page = browser.get(app.url("/admin/login/totp")).send().await.expect("GET").text().await.expect("body");
        let response = browser.post(app.url("/admin/login/totp")).form(&[("code", typed.as_str()), ("csrf_token", &csrf_token(&page))]).send().await.expect("POST");
        assert_eq!(response.status(), 401, "a recovery code works once");
    }

    async fn wrong_passwords_and_unknown_accounts_get_the_same_answer(app) {
        create_admin(&app, "ops@example.jp", Role::Operator).await;
        let (_, wrong) = password_step(&app, "ops@example.jp", "not the password at all").await;
        let (_, unknown) = password_step(&app, "nobody@example.jp", PASSWORD).await;
        assert_eq!(wrong.status(), 401);
        assert_eq!(unknown.status(), 401);
        let (wrong, unknown) = (wrong.text().await.expect("body"), unknown.text().await.expect("body"));
        assert!(wrong.contains("メールアドレスまたはパスワードが正しくありません"));
        assert!(unknown.contains("メールアドレスまたはパスワードが正しくありません"));
        assert_eq!(count(&app, "SELECT COUNT(*) FROM admin_sessions").await, 0);
    }

    async fn sign_out_revokes_the_session_on_the_server(app) {
        let admin = admin(&app, Role::Operator).await;
        let token = session_token(&app, &admin).await;
        let page = get_with_cookie(&app, "/admin", &token).await;
        assert_eq!(page.status(), 200, "the cookie works while signed in");
        let csrf = csrf_token(&page.text().await.expect("body"));
        let response = crate::helpers::client()
            .post(app.url("/admin/logout"))
            .header("cookie", format!("nfa_admin={token}"))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .expect("POST");
        assert_eq!(location(&response), "/admin/login?signed_out=1");
        assert!(admin_cookie(&response).contains("Max-Age=0"), "the browser forgets the cookie");
        assert_eq!(location(&get_with_cookie(&app, "/admin", &token).await), "/admin/login", "a copied cookie is worthless after sign-out");
        assert_eq!(admin.get("/admin").await.status(), 200, "other sessions of the account go on");
        let response = admin.post("/admin/logout", &[]).await;
        assert_eq!(location(&response), "/admin/login?signed_out=1");
        assert_eq!(count(&app, "SELECT COUNT(*) FROM admin_sessions").await, 0);
    }

    async fn sessions_end_after_30_idle_minutes_or_12_hours(app) {
        let admin = admin(&app, Role::Viewer).await;
        assert_eq!(admin.get("/admin").await.status(), 200);
        set_session_times(&app, 29 * 60, 60).await;
        assert_eq!(admin.get("/admin").await.status(), 200, "29 idle minutes are fine");
        set_session_times(&app, 31 * 60, 60 * 60).await;
        assert_eq!(location(&admin.get("/admin").await), "/admin/login", "31 idle minutes end it");
        assert_eq!(count(&app, "SELECT COUNT(*) FROM admin_sessions").await, 0, "the expired row is deleted");

        let admin = crate::admin::sign_in_again(&app, &admin).await;
        set_session_times(&app, 60, 12 * 3600 + 60).await;
        assert_eq!(location(&admin.get("/admin").await), "/admin/login", "12 hours end it even when busy");
    }

    async fn csrf_is_required_on_every_admin_form(app) {
        create_admin(&app, "ops@example.jp", Role::Operator).await;
        // Sign-in without the form's token, or from another site.
        let response = app.post("/admin/login", &[("email", "ops@example.jp"), ("password", PASSWORD)]).await;
        assert_eq!(response.status(), 403);
        let page = app.get_html("/admin/login").await;
        let response = app
            .client
            .post(app.url("/admin/login"))
            .header("origin", "https://evil.example")
            .form(&[("email", "ops@example.jp"), ("password", PASSWORD), ("csrf_token", csrf_token(&page).as_str())])
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 403);
        let admin = first_sign_in(&app, "ops@example.jp").await;
        let response = admin.post_raw("/admin/logout", &[("csrf_token", "forged")]).await;
        assert_eq!(response.status(), 403);
        assert!(admin.get_html("/admin").await.contains(&admin.email), "still signed in");
    }
}

/// Sets every admin session's idle time and age, in seconds.
async fn set_session_times(app: &TestApp, idle_secs: i64, age_secs: i64) {
    let now = time::OffsetDateTime::now_utc();
    with_pool!(&app.db, |pool| {
        sqlx::query("UPDATE admin_sessions SET last_seen_at = $1, created_at = $2")
            .bind(now - time::Duration::seconds(idle_secs))
            .bind(now - time::Duration::seconds(age_secs))
            .execute(pool)
            .await
            .map(|_| ())
            .expect("update")
    });
}

/// Signs `admin` in once more and returns the raw session token (reqwest's cookie jar does not
/// show it), to replay it the way a copied cookie would be.
async fn session_token(app: &TestApp, admin: &Admin) -> String {
    let (_, response) = password_step(app, &admin.email, PASSWORD).await;
    let half = token_of(&admin_cookie(&response));
    let page = get_with_cookie(app, "/admin/login/totp", &half).await.text().await.expect("body");
    let code = totp::code_at(&admin.secret, totp::now_unix() + 30).expect("code");
    let response = crate::helpers::client()
        .post(app.url("/admin/login/totp"))
        .header("cookie", format!("nfa_admin={half}"))
        .form(&[("code", code.as_str()), ("csrf_token", csrf_token(&page).as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(location(&response), "/admin");
    token_of(&admin_cookie(&response))
}

#[tokio::test]
async fn cli_creates_accounts_from_stdin_and_failed_sign_ins_are_security_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_create = |email: &str, password: &str| {
        let mut child = Command::new(BIN)
            .args(["admin", "create", email, "--role", "viewer"])
            .env("DATA_DIR", dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        writeln!(child.stdin.take().expect("stdin"), "{password}").expect("write");
        child.wait_with_output().expect("output")
    };
    let output = run_create("viewer@example.jp", PASSWORD);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("created"));
    assert!(!run_create("viewer@example.jp", PASSWORD).status.success(), "no second account for the address");
    assert!(!run_create("short@example.jp", "short").status.success(), "short passwords refused");

    let mut server = Command::new(BIN)
        .arg("serve")
        .env("DATA_DIR", dir.path())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = server.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let address = loop {
        let line = lines.recv_timeout(Duration::from_secs(30)).expect("log line");
        let json: serde_json::Value = serde_json::from_str(&line).expect("JSON log");
        if json["event"] == "listening" {
            break json["address"].as_str().expect("address").to_string();
        }
    };
    let browser = crate::helpers::client();
    let page = browser.get(format!("http://{address}/admin/login")).send().await.expect("GET").text().await.expect("body");
    let response = browser
        .post(format!("http://{address}/admin/login"))
        .form(&[("email", "viewer@example.jp"), ("password", "canary-wrong-password"), ("csrf_token", csrf_token(&page).as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 401);
    let line = loop {
        let line = lines.recv_timeout(Duration::from_secs(10)).expect("security line");
        if line.contains("admin_sign_in_failed") {
            break line;
        }
    };
    assert!(line.contains("SECURITY"), "{line}");
    assert!(!line.contains("viewer@example.jp") && !line.contains("canary-wrong-password"), "no address or password in logs: {line}");
    // More failures start a back-off, and attempts during it are refused: both logged likewise.
    let mut token = csrf_token(&response.text().await.expect("body"));
    let (mut backoff, mut refused) = (None, None);
    for _ in 0..15 {
        let response = browser
            .post(format!("http://{address}/admin/login"))
            .form(&[("email", "viewer@example.jp"), ("password", "canary-wrong-password"), ("csrf_token", token.as_str())])
            .send()
            .await
            .expect("POST");
        assert!(response.status() == 401 || response.status() == 429, "{}", response.status());
        token = csrf_token(&response.text().await.expect("body"));
        while let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
            if line.contains("admin_sign_in_backoff") {
                backoff = Some(line);
            } else if line.contains("admin_sign_in_refused") {
                refused = Some(line);
            }
        }
        if backoff.is_some() && refused.is_some() {
            break;
        }
    }
    for line in [backoff.expect("a back-off logged"), refused.expect("a refusal logged")] {
        let json: serde_json::Value = serde_json::from_str(&line).expect("JSON log");
        assert_eq!(json["category"], "SECURITY", "{line}");
        assert!(json["wait_secs"].as_u64().is_some_and(|s| s >= 1), "{line}");
        assert!(!line.contains("viewer@example.jp") && !line.contains("canary-wrong-password"), "no address or password in logs: {line}");
    }
    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    let _ = server.wait();
}
