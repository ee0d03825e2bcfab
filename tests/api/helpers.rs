#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use normal_form_app::config::Config;
use normal_form_app::db::{Db, PoolSettings};
use normal_form_app::startup::Application;
use reqwest::redirect::Policy;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};
use tokio::sync::oneshot;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one test per backend from a body taking a `TestApp`.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($app:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($app: $crate::helpers::TestApp) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { run($crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { run($crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await).await }
        }
    )*};
}

/// The same, with extra environment for the server (`&[(&str, &str)]`, e.g. a forced fallback).
#[macro_export]
macro_rules! on_both_backends_with {
    ($env:expr; $(async fn $name:ident($app:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($app: $crate::helpers::TestApp) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { run($crate::helpers::spawn_app_with($crate::helpers::Backend::Sqlite, $env).await).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { run($crate::helpers::spawn_app_with($crate::helpers::Backend::Postgres, $env).await).await }
        }
    )*};
}

pub fn admin_database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates an empty PostgreSQL database for one test and returns its URL. Fails loudly when the
/// server cannot be reached: PostgreSQL tests are never skipped.
pub async fn fresh_postgres_database() -> String {
    let admin = admin_database_url();
    let mut conn = PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required for the tests (set TEST_DATABASE_URL): {e}"));
    let name = format!("nfa_test_{}", normal_form_app::crypto::random_token(9).to_lowercase().replace(['-', '_'], "x"));
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create test database");
    let base = admin.rsplit_once('/').map(|(base, _)| base.to_string()).expect("database URL has a path");
    format!("{base}/{name}")
}

/// Everything one test needs: the server's address, a client with its own cookie jar, and the
/// database behind the server.
pub struct TestApp {
    pub address: SocketAddr,
    pub backend: Backend,
    pub database_url: String,
    pub db: Db,
    pub client: reqwest::Client,
    pub data_dir: std::sync::Arc<tempfile::TempDir>,
    pub env: HashMap<String, String>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub fn client() -> reqwest::Client {
    normal_form_app::external::install_crypto_provider();
    reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().expect("client")
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

pub async fn spawn_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", data_dir.path().join("test.db").display()),
        Backend::Postgres => fresh_postgres_database().await,
    };
    let mut env: HashMap<String, String> = [
        ("LISTEN_ADDR", "127.0.0.1:0".to_string()),
        ("DATABASE_URL", database_url.clone()),
        ("DATA_DIR", data_dir.path().display().to_string()),
        ("LOG_FORMAT", "json".to_string()),
        ("RATE_LIMIT_PER_MINUTE", "100000".to_string()),
        ("RATE_LIMIT_GET_PER_MINUTE", "1000000".to_string()),
        // Tests change data between views; the dashboard cache has a test of its own.
        ("DASHBOARD_CACHE_SECS", "0".to_string()),
        ("SHUTDOWN_TIMEOUT_SECS", "5".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    start(backend, env, std::sync::Arc::new(data_dir), client()).await
}

/// A server with exactly this environment (e.g. a second instance on the same database).
pub async fn spawn_with_env(backend: Backend, env: HashMap<String, String>) -> TestApp {
    let mut env = env;
    env.insert("LISTEN_ADDR".into(), "127.0.0.1:0".into());
    start(backend, env, std::sync::Arc::new(tempfile::tempdir().expect("tempdir")), client()).await
}

async fn start(
    backend: Backend,
    env: HashMap<String, String>,
    data_dir: std::sync::Arc<tempfile::TempDir>,
    client: reqwest::Client,
) -> TestApp {
    let config = Config::from_source(&env).expect("test config");
    let database_url = config.database_url.clone();
    let app = Application::build(config).await.expect("build app");
    let address = app.local_addr();
    let db = app.state().db.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp { address, backend, database_url, db, client, data_dir, env, shutdown: Some(tx), server: Some(server) }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// Stops this server (as on SIGTERM) and waits until it has drained.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server result");
        }
    }

    /// A second server on the same database (another instance behind the load balancer, or the
    /// same one after a restart), keeping this test's browser cookies.
    pub async fn another_instance(&self) -> TestApp {
        let mut env = self.env.clone();
        env.insert("LISTEN_ADDR".into(), "127.0.0.1:0".into());
        env.insert("DATABASE_URL".into(), self.database_url.clone());
        start(self.backend, env, self.data_dir.clone(), self.client.clone()).await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_html(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.expect("body")
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(self.url(path)).form(form).send().await.expect("POST")
    }

    /// Submits a step as the browser would: with the page's CSRF token and the 次へ button.
    pub async fn submit_step(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.submit_step_action(path, fields, "next").await
    }

    pub async fn submit_step_action(&self, path: &str, fields: &[(&str, &str)], action: &str) -> reqwest::Response {
        let token = csrf_token(&self.get_html(path).await);
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &token));
        form.push(("action", action));
        self.post(path, &form).await
    }

    /// Steps 2 to 4 after a successful step 1.
    pub async fn register_rest(&self) {
        let response = self.submit_step("/register/address", ADDRESS).await;
        assert_eq!(location(&response), "/register/plan", "step 2 accepted");
        let response = self.submit_step("/register/plan", &[("plan_id", "standard")]).await;
        assert_eq!(location(&response), "/register/confirm", "step 3 accepted");
        let response = self.submit_step("/register/confirm", &[("agree", "yes")]).await;
        assert_eq!(location(&response), "/register/complete");
    }

    /// Walks the whole form for `email` and returns the 受付番号 shown on the 完了 page.
    pub async fn register(&self, email: &str) -> String {
        self.fill_until_confirm(email).await;
        let response = self.submit_step("/register/confirm", &[("agree", "yes")]).await;
        assert_eq!(location(&response), "/register/complete");
        registration_number(&self.get_html("/register/complete").await)
    }

    /// Someone who typed a little into step 1 and left: the post is saved (a flow row), with
    /// errors for what is missing.
    pub async fn type_and_leave(&self) {
        let response = self.submit_step("/register/customer", &[("family_name", "途中")]).await;
        assert_eq!(response.status(), 422, "step 1 with errors is saved and shown again");
    }

    pub async fn fill_until_confirm(&self, email: &str) {
        let response = self.submit_step("/register/customer", &customer_fields(email)).await;
        assert_eq!(location(&response), "/register/address", "step 1 accepted");
        let response = self.submit_step("/register/address", ADDRESS).await;
        assert_eq!(location(&response), "/register/plan", "step 2 accepted");
        let response = self.submit_step("/register/plan", &[("plan_id", "standard")]).await;
        assert_eq!(location(&response), "/register/confirm", "step 3 accepted");
    }

    pub async fn count_users(&self, email: &str) -> i64 {
        normal_form_app::with_pool!(&self.db, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email = $1")
            .bind(email)
            .fetch_one(pool)
            .await)
        .expect("count users")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn customer_fields(email: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("family_name", "山田"),
        ("given_name", "太郎"),
        ("family_name_kana", "やまだ"),
        ("given_name_kana", "たろう"),
        ("email", email),
        ("email_confirm", email),
        ("password", "correct-horse-battery-42"),
        ("phone", "090-1234-5678"),
        ("birth_date", "1990-04-01"),
    ]
}

pub const ADDRESS: &[(&str, &str)] =
    &[("postal_code", "１５０-０００２"), ("prefecture", "東京都"), ("city", "渋谷区"), ("street", "渋谷２－２１－１"), ("building", "")];

pub fn location(response: &reqwest::Response) -> String {
    assert!(response.status().is_redirection(), "expected a redirect, got {}", response.status());
    response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

pub fn csrf_token(html: &str) -> String {
    attribute_after(html, "name=\"csrf_token\" value=\"").expect("page has a CSRF token")
}

pub fn registration_number(html: &str) -> String {
    attribute_after(html, "id=\"registration-number\">").map(|s| s.trim_end_matches("</p>").to_string()).expect("受付番号 on the page")
}

fn attribute_after(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    let rest = &html[start..];
    let end = rest.find(['"', '<'])?;
    Some(rest[..end].to_string())
}

/// The value attribute of the input named `name`, as rendered.
pub fn input_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\"");
    let at = html.find(&marker).unwrap_or_else(|| panic!("no input {name}"));
    let tag_end = html[at..].find('>').map(|i| at + i).expect("tag end");
    let tag = &html[at..tag_end];
    attribute_after(tag, "value=\"").unwrap_or_default()
}

pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

pub fn db_for(url: &str) -> Db {
    Db::connect(
        url,
        &PoolSettings { max_connections: 2, acquire_timeout: Duration::from_secs(5), statement_timeout: Duration::from_secs(10) },
    )
    .expect("db")
}

impl TestApp {
    /// The same server seen from another browser (its own cookie jar).
    pub fn with_new_browser(&self) -> TestApp {
        TestApp {
            address: self.address,
            backend: self.backend,
            database_url: self.database_url.clone(),
            db: self.db.clone(),
            client: client(),
            data_dir: self.data_dir.clone(),
            env: self.env.clone(),
            shutdown: None,
            server: None,
        }
    }
}
