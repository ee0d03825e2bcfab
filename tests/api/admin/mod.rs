//! The admin console: sign-in (password + TOTP), sessions, roles, and each screen.

mod access;
mod auth;
mod backoff;
mod dashboard;
mod deletion;
mod export;
mod registrations;
mod reviews;
mod switches;
mod xss;

use normal_form_app::admin::actor::Role;
use normal_form_app::admin::totp;

use crate::helpers::{TestApp, client, csrf_token, location};

pub const PASSWORD: &str = "correct horse battery staple 9";

/// A signed-in admin: its own browser (cookie jar) and the session's CSRF token.
pub struct Admin {
    pub client: reqwest::Client,
    pub csrf: String,
    pub email: String,
    pub secret: Vec<u8>,
    pub recovery_codes: Vec<String>,
    base: String,
}

/// Text between `start` and the next `end` after it.
pub fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html.find(start).unwrap_or_else(|| panic!("{start:?} not in page: {html}")) + start.len();
    let to = html[from..].find(end).expect("end marker") + from;
    &html[from..to]
}

pub async fn create_admin(app: &TestApp, email: &str, role: Role) {
    normal_form_app::admin::accounts::create(&app.db, email, role, PASSWORD.to_string()).await.expect("create admin");
}

impl Admin {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_html(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.expect("body")
    }

    /// POSTs a form with this session's CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &self.csrf));
        self.client.post(self.url(path)).form(&form).send().await.expect("POST")
    }

    /// POSTs a form exactly as given (no token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(self.url(path)).form(fields).send().await.expect("POST")
    }
}

/// Password step with a fresh browser; returns the browser and where it was sent.
pub async fn password_step(app: &TestApp, email: &str, password: &str) -> (reqwest::Client, reqwest::Response) {
    let browser = client();
    let page = browser.get(app.url("/admin/login")).send().await.expect("GET login").text().await.expect("body");
    let csrf = csrf_token(&page);
    let response = browser
        .post(app.url("/admin/login"))
        .form(&[("email", email), ("password", password), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("POST login");
    (browser, response)
}

/// First sign-in of an account: password, enrolment from the page's secret, recovery codes.
pub async fn first_sign_in(app: &TestApp, email: &str) -> Admin {
    let (browser, response) = password_step(app, email, PASSWORD).await;
    assert_eq!(response.status(), 303, "password accepted");
    assert_eq!(location(&response), "/admin/enrol");
    let page = browser.get(app.url("/admin/enrol")).send().await.expect("GET enrol").text().await.expect("body");
    let secret = totp::secret_from_base32(between(&page, "<p class=\"secret\"><code>", "</code>")).expect("secret");
    let code = totp::code_at(&secret, totp::now_unix()).expect("code");
    let response = browser
        .post(app.url("/admin/enrol"))
        .form(&[("code", code.as_str()), ("csrf_token", csrf_token(&page).as_str())])
        .send()
        .await
        .expect("POST enrol");
    assert_eq!(response.status(), 200, "enrolled");
    let page = response.text().await.expect("body");
    let recovery_codes: Vec<String> =
        page.match_indices("<li><code>").map(|(i, _)| page[i + 10..].split('<').next().expect("code").to_string()).collect();
    assert_eq!(recovery_codes.len(), 10, "ten recovery codes shown");
    let dashboard = browser.get(app.url("/admin")).send().await.expect("GET /admin");
    assert_eq!(dashboard.status(), 200, "signed in");
    let csrf = csrf_token(&dashboard.text().await.expect("body"));
    Admin { client: browser, csrf, email: email.to_string(), secret, recovery_codes, base: app.url("") }
}

/// A new account with `role`, signed in.
pub async fn admin(app: &TestApp, role: Role) -> Admin {
    let email =
        format!("{}-{}@example.jp", role.as_str(), normal_form_app::crypto::random_token(6).to_lowercase().replace(['-', '_'], "x"));
    create_admin(app, &email, role).await;
    first_sign_in(app, &email).await
}

/// A later sign-in of an enrolled account (password, then the code of the next time step, which
/// the first sign-in has not used).
pub async fn sign_in_again(app: &TestApp, admin: &Admin) -> Admin {
    let (browser, response) = password_step(app, &admin.email, PASSWORD).await;
    assert_eq!(location(&response), "/admin/login/totp");
    let page = browser.get(app.url("/admin/login/totp")).send().await.expect("GET").text().await.expect("body");
    let code = totp::code_at(&admin.secret, totp::now_unix() + 30).expect("code");
    let response = browser
        .post(app.url("/admin/login/totp"))
        .form(&[("code", code.as_str()), ("csrf_token", csrf_token(&page).as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(location(&response), "/admin", "second factor accepted");
    let csrf = csrf_token(&browser.get(app.url("/admin")).send().await.expect("GET").text().await.expect("body"));
    Admin {
        client: browser,
        csrf,
        email: admin.email.clone(),
        secret: admin.secret.clone(),
        recovery_codes: admin.recovery_codes.clone(),
        base: app.url(""),
    }
}
