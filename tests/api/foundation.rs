//! Health, headers, limits: the service's foundation on both backends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use sqlx::{Connection as _, PgConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::helpers::{Backend, spawn_app_with, wait_until};
use crate::on_both_backends;

on_both_backends! {
    async fn health_reports_ok_with_database_check(app) {
        let response = app.get("/health").await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["status"], "ok");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(body["checks"]["database"]["status"], "ok");
        assert!(body["checks"]["database"]["latency_ms"].as_f64().is_some());
        assert!(body["uptime_seconds"].as_u64().is_some());
        let live = app.get("/health/live").await;
        assert_eq!(live.status(), 200);
    }

    async fn every_response_carries_security_headers_and_a_request_id(app) {
        for path in ["/health", "/register/customer", "/no-such-page"] {
            let response = app.get(path).await;
            let headers = response.headers();
            let csp = headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
            assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{path}: {csp}");
            assert_eq!(headers.get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]), "{path}");
            assert!(headers.contains_key("referrer-policy"), "{path}");
            assert!(headers.get("x-request-id").is_some_and(|v| !v.is_empty()), "{path}");
            assert!(!headers.contains_key("strict-transport-security"), "no HSTS over plain HTTP");
        }
        let form = app.get("/register/customer").await;
        assert_eq!(form.headers().get("cache-control").map(|v| v.as_bytes()), Some(&b"no-store"[..]));
        let missing = app.get("/register/nowhere").await;
        assert_eq!(missing.status(), 404);
        assert!(missing.text().await.expect("body").contains("ページが見つかりません"));
    }

    async fn the_internal_error_page_shows_the_request_id_an_operator_can_search_for(app) {
        // A visitor who typed something has a flow; take the flow table away underneath the
        // running service: the next form page, which loads that flow, fails.
        app.type_and_leave().await;
        normal_form_app::with_pool!(&app.db, |pool| sqlx::query("ALTER TABLE user_sessions RENAME TO user_sessions_gone").execute(pool).await.map(drop)).expect("rename");
        let response = app.get("/register/customer").await;
        assert_eq!(response.status(), 500);
        let request_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).expect("x-request-id").to_string();
        let html = response.text().await.expect("body");
        assert!(html.contains(&format!("お問い合わせ番号: <code>{request_id}</code>")), "{html}");
        assert!(!html.contains("user_sessions"), "no SQL on the page");
    }

    async fn bodies_over_64_kib_are_refused_with_413(app) {
        let big = "a".repeat(70 * 1024);
        let response = app.client.post(app.url("/register/customer"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("family_name={big}"))
            .send().await.expect("post");
        assert_eq!(response.status(), 413);
        let users: i64 = normal_form_app::with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await).expect("count");
        assert_eq!(users, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_and_host_prefixed_secure_cookies_when_served_over_https() {
    let app = spawn_app_with(Backend::Sqlite, &[("PUBLIC_BASE_URL", "https://form.example.jp")]).await;
    let response = app.get("/health").await;
    assert!(response.headers().get("strict-transport-security").is_some());
    // The bare visit gets the signed pre-session cookie, the first typed post the flow cookie:
    // both host-prefixed and Secure.
    let form = app.get("/register/customer").await;
    let cookie = form.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(cookie.starts_with("__Host-nf_pre=") && cookie.contains("; Secure") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Domain="), "__Host- cookies carry no Domain");
    let typed = app.submit_step("/register/customer", &[("family_name", "途中")]).await;
    let cookie = typed.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(cookie.starts_with("__Host-nf_flow=") && cookie.contains("; Secure") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Domain="), "__Host- cookies carry no Domain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_name_the_application_and_limit_statements() {
    let app = crate::helpers::spawn_app(Backend::Postgres).await;
    let (name, timeout): (String, String) = normal_form_app::with_pool!(&app.db, |pool| sqlx::query_as(
        "SELECT application_name, current_setting('statement_timeout') FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    )
    .fetch_one(pool)
    .await)
    .expect("session settings");
    assert_eq!(name, "normal-form-app", "the runbook's pg_stat_activity checks look for it");
    assert_eq!(timeout, "10s");
}

/// The pool pings only connections idle for a while (`PING_AFTER_IDLE`), not every one it hands
/// out. A connection PostgreSQL closed while it sat idle — `pg_terminate_backend`, as the runbook
/// does to stuck sessions, a restart or a failover — must still be replaced before a request uses
/// it, not answer that request with a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_closed_while_idle_are_replaced_before_a_request_uses_them() {
    let app = crate::helpers::spawn_app_with(Backend::Postgres, &[("DB_MAX_CONNECTIONS", "4")]).await;
    // Fill the pool: concurrent first visits each take a connection (each starts a flow).
    let visits = (0..8).map(|_| async { app.client.get(app.url("/register/customer")).send().await.expect("get").status() });
    assert!(futures_util::future::join_all(visits).await.iter().all(|s| *s == 200));
    let open = normal_form_app::with_pool!(&app.db, |pool| pool.size());
    assert!(open >= 2, "the pool holds {open} connections");

    let mut admin = PgConnection::connect(&app.database_url).await.expect("admin connection");
    let terminated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'normal-form-app' AND pid <> pg_backend_pid()) AS t",
    )
    .fetch_one(&mut admin)
    .await
    .expect("terminate");
    assert!(terminated >= 2, "terminated {terminated} of the app's connections");
    tokio::time::sleep(normal_form_app::db::PING_AFTER_IDLE + Duration::from_millis(300)).await;

    for _ in 0..8 {
        let response = app.client.get(app.url("/register/customer")).send().await.expect("get");
        assert_eq!(response.status(), 200, "a request after the connections were closed");
    }
    let (status, body, _) = timed_health(&app).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_runs_in_wal_mode_with_a_busy_timeout() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await;
    let (mode, busy): (String, i64) = normal_form_app::with_pool!(&app.db, |pool| sqlx::query_as(
        "SELECT (SELECT journal_mode FROM pragma_journal_mode), (SELECT timeout FROM pragma_busy_timeout)"
    )
    .fetch_one(pool)
    .await)
    .expect("pragmas");
    assert_eq!((mode.as_str(), busy), ("wal", 5000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_over_the_rate_limit_get_429_with_retry_after() {
    let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMIT_PER_MINUTE", "3")]).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(app.post("/register/customer", &[("family_name", "山田")]).await);
    }
    let limited = statuses.pop().expect("response");
    assert_eq!(limited.status(), 429);
    let retry_after: u64 =
        limited.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(limited.text().await.expect("body").contains("しばらく待ってから"));
    assert_eq!(statuses[0].status(), 403, "under the limit the request is handled (here: no CSRF token)");
    // Reading is never limited.
    assert_eq!(app.get("/register/customer").await.status(), 200);
}

/// Behind a trusted load balancer, the limit counts per client (the address the balancer saw, from
/// `X-Forwarded-For`), not per balancer: one busy client does not block the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_rate_limit_counts_each_forwarded_client() {
    let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMIT_PER_MINUTE", "2"), ("TRUSTED_PROXY_HOPS", "1")]).await;
    let post_from = |client: &'static str| {
        app.client.post(app.url("/register/customer")).header("x-forwarded-for", client).form(&[("family_name", "山田")]).send()
    };
    let mut busy = Vec::new();
    for _ in 0..3 {
        busy.push(post_from("203.0.113.7").await.expect("post").status());
    }
    assert_eq!(busy, [403, 403, 429], "under the limit: handled (no CSRF token); then refused");
    assert_eq!(post_from("198.51.100.20").await.expect("post").status(), 403, "another client is not limited");
    // Left of the trusted entry, the address is the client's own claim: it changes nothing.
    assert_eq!(post_from("198.51.100.99, 203.0.113.7").await.expect("post").status(), 429);
}

/// A TCP proxy in front of PostgreSQL that the test can switch off (connections refused and cut)
/// or make hang (accepts, never answers), as if the database died or froze.
struct DatabaseProxy {
    address: SocketAddr,
    mode: Arc<AtomicU8>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

const FORWARD: u8 = 0;
const REFUSE: u8 = 1;
const HANG: u8 = 2;

impl DatabaseProxy {
    async fn start(upstream: SocketAddr) -> DatabaseProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("addr");
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (m, c) = (mode.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                match m.load(Ordering::SeqCst) {
                    REFUSE => drop(client),
                    HANG => c.lock().await.push(tokio::spawn(async move {
                        let _held = client;
                        std::future::pending::<()>().await;
                    })),
                    _ => c.lock().await.push(tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    })),
                }
            }
        });
        DatabaseProxy { address, mode, connections }
    }

    async fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        for connection in self.connections.lock().await.drain(..) {
            connection.abort();
        }
    }
}

async fn timed_health(app: &crate::helpers::TestApp) -> (u16, serde_json::Value, Duration) {
    let started = Instant::now();
    let response = app.get("/health").await;
    let status = response.status().as_u16();
    let body = response.json().await.expect("health json");
    (status, body, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_within_2s_when_postgres_is_down_or_hangs_and_recovers_by_itself() {
    let url = crate::helpers::fresh_postgres_database().await;
    let proxy = DatabaseProxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    let proxied = url.replacen("127.0.0.1:5432", &proxy.address.to_string(), 1);
    assert_ne!(url, proxied, "TEST_DATABASE_URL must point at 127.0.0.1:5432 for this test");
    let app = spawn_app_with(Backend::Postgres, &[("DATABASE_URL", proxied.as_str())]).await;
    let (status, _, _) = timed_health(&app).await;
    assert_eq!(status, 200);

    for mode in [REFUSE, HANG] {
        proxy.set(mode).await;
        let (status, body, elapsed) = timed_health(&app).await;
        assert_eq!(status, 503, "mode {mode}: {body}");
        assert!(elapsed < Duration::from_secs(2), "mode {mode}: answered after {elapsed:?}");
        assert_eq!(body["status"], "unavailable");
        assert_eq!(body["checks"]["database"]["status"], "down");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"), "same shape as 200");
    }

    proxy.set(FORWARD).await;
    let recovered = wait_until(Duration::from_secs(15), || async { app.get("/health").await.status() == 200 }).await;
    assert!(recovered, "/health returns to 200 without a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_and_reports_503_when_postgres_is_unreachable_at_start() {
    let app =
        spawn_app_with(Backend::Sqlite, &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere"), ("DB_ACQUIRE_TIMEOUT_SECS", "1")])
            .await;
    let (status, body, elapsed) = timed_health(&app).await;
    assert_eq!(status, 503, "{body}");
    assert!(elapsed < Duration::from_secs(2));
}
