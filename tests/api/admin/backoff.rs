//! Sign-in back-off: per account and per client network, doubling and capped, refused unchecked
//! while a key waits, cleared by a full sign-in — and an attack from 50 addresses that delays the
//! real operator by at most the account cap. The throttle's functions take the clock as an
//! argument, so the long scenarios run against the database with a simulated clock; the HTTP
//! tests show the same through the sign-in form.

use std::net::IpAddr;

use normal_form_app::admin::actor::Role;
use normal_form_app::admin::throttle::{self, ACCOUNT, Admission, Key, KeyKind, NETWORK, SECOND_FACTOR};
use normal_form_app::with_pool;
use time::{Duration, OffsetDateTime};

use super::{PASSWORD, create_admin, first_sign_in};
use crate::helpers::{TestApp, csrf_token, location};
use crate::{on_both_backends, on_both_backends_with};

fn attacker(n: usize) -> IpAddr {
    // 50 addresses in 50 different /24 networks, none shared with the operator's.
    IpAddr::from([198, 18, n as u8, 7])
}

/// Now, to the microsecond PostgreSQL keeps.
fn clock() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1000 * 1000).expect("valid")
}

fn secs(d: std::time::Duration) -> Duration {
    Duration::try_from(d).expect("duration")
}

/// The most checks a key under `policy` can get within `elapsed`: the free failures, then one
/// each time its wait has passed (1 s, 2 s, 4 s … up to the cap), plus the one at the start.
fn most_checks(policy: throttle::Policy, elapsed: Duration) -> i32 {
    let mut failures = policy.free_failures + 1;
    let mut t = Duration::ZERO;
    while let Some(wait) = policy.wait_after(failures) {
        t += secs(wait);
        if t > elapsed {
            break;
        }
        failures += 1;
    }
    failures
}

async fn failures_of(app: &TestApp, key: &str) -> i32 {
    with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT failures FROM admin_sign_in_throttle WHERE key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await)
    .expect("failures")
    .unwrap_or(0)
}

async fn count(app: &TestApp, query: &str) -> i64 {
    with_pool!(&app.db, |pool| sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(query.to_string())).fetch_one(pool).await.expect("count"))
}

/// Lets `elapsed` pass for every wait: a wait due to end within it ends now.
async fn let_pass(app: &TestApp, elapsed: Duration) {
    let now = OffsetDateTime::now_utc();
    with_pool!(&app.db, |pool| sqlx::query("UPDATE admin_sign_in_throttle SET locked_until = $1 WHERE locked_until <= $2")
        .bind(now)
        .bind(now + elapsed)
        .execute(pool)
        .await
        .map(|_| ()))
    .expect("update");
}

/// Posts the sign-in form from `from` (an `X-Forwarded-For` the server trusts) with the token of
/// the page shown before; returns the status, `Retry-After` and the page.
async fn sign_in_from(app: &TestApp, from: IpAddr, token: &str, email: &str, password: &str) -> (u16, Option<u64>, String) {
    let response = app
        .client
        .post(app.url("/admin/login"))
        .header("x-forwarded-for", from.to_string())
        .form(&[("email", email), ("password", password), ("csrf_token", token)])
        .send()
        .await
        .expect("POST login");
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().expect("ascii").parse().expect("seconds"));
    (status, retry_after, response.text().await.expect("body"))
}

on_both_backends! {
    async fn the_wait_doubles_per_failure_up_to_the_cap_and_is_forgotten_after_a_day(app) {
        let t0 = clock();
        let key = Key::account("ops@example.jp");
        let mut waits = Vec::new();
        for n in 0..14 {
            let now = t0 + Duration::seconds(n * 60);
            let failure = throttle::fail(&app.db, &key.name, ACCOUNT, now).await.expect("fail");
            assert_eq!(failure.failures, n as i32 + 1);
            assert_eq!(throttle::wait_left(&app.db, &key.name, now).await.expect("wait"), failure.wait, "the wait starts at once");
            waits.push(failure.wait.map_or(0, |w| w.as_secs()));
        }
        assert_eq!(waits, [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 30, 30, 30, 30], "five free, then doubling, capped at 30 s");
        let now = t0 + Duration::seconds(13 * 60);
        assert_eq!(throttle::wait_left(&app.db, &key.name, now + Duration::seconds(30)).await.expect("wait"), None, "over after the cap");
        // A network doubles to 15 minutes.
        let network = Key::network(attacker(0));
        let mut last = None;
        for _ in 0..30 {
            last = throttle::fail(&app.db, &network.name, NETWORK, t0).await.expect("fail").wait;
        }
        assert_eq!(last, Some(std::time::Duration::from_secs(900)));
        // A quiet day later the count starts again.
        let later = now + Duration::hours(25);
        let failure = throttle::fail(&app.db, &key.name, ACCOUNT, later).await.expect("fail");
        assert_eq!((failure.failures, failure.wait), (1, None));
        // Clearing (a full sign-in) removes the key.
        throttle::clear(&app.db, &key.name).await.expect("clear");
        assert_eq!(failures_of(&app, &key.name).await, 0);
        assert_eq!(throttle::admit(&app.db, &[key], later).await.expect("admit"), Admission::Check);
    }

    async fn a_thousand_wrong_attempts_from_fifty_networks_delay_the_operator_by_the_account_cap_at_most(app) {
        let t0 = OffsetDateTime::now_utc();
        let account = Key::account("ops@example.jp");
        let mut now = t0;
        let mut checks = 0;
        // 1,000 wrong passwords, ten a second, round-robin over 50 addresses.
        for i in 0..1000usize {
            now = t0 + Duration::milliseconds(100 * i as i64);
            let keys = [account.clone(), Key::network(attacker(i % 50))];
            match throttle::admit(&app.db, &keys, now).await.expect("admit") {
                Admission::Check => {
                    checks += 1;
                    throttle::fail_all(&app.db, &keys, now).await.expect("fail");
                }
                Admission::Refused { wait, .. } => assert!(wait <= NETWORK.max_wait, "{wait:?}"),
            }
        }
        let elapsed = now - t0;
        assert!(checks <= most_checks(ACCOUNT, elapsed), "{checks} password checks in {elapsed}");
        assert_eq!(failures_of(&app, &account.name).await, checks, "refusals never count against the account");
        assert!(checks <= 5 + 5 + 4, "a hundred seconds of attack get at most 14 checks: {checks}");
        // Every attacker network now backs off for minutes.
        for n in 0..50 {
            let wait = throttle::wait_left(&app.db, &Key::network(attacker(n)).name, now).await.expect("wait").expect("waiting");
            assert!(wait >= std::time::Duration::from_secs(500), "network {n}: {wait:?}");
        }
        // The attack goes on at ten a second while the operator signs in from a fresh network:
        // refused for at most the account cap, then checked (and right).
        let operator = [account.clone(), Key::network(IpAddr::from([192, 0, 2, 10]))];
        let first_try = now;
        let mut i = 0usize;
        loop {
            match throttle::admit(&app.db, &operator, now).await.expect("admit") {
                Admission::Check => break,
                Admission::Refused { wait, kind, .. } => {
                    assert_eq!(kind, KeyKind::Account, "only the account's wait applies to the operator");
                    assert!(wait <= ACCOUNT.max_wait, "{wait:?}");
                    let retry_at = now + secs(wait);
                    while now < retry_at {
                        now += Duration::milliseconds(100);
                        i += 1;
                        let keys = [account.clone(), Key::network(attacker(i % 50))];
                        let answer = throttle::admit(&app.db, &keys, now).await.expect("admit");
                        assert!(matches!(answer, Admission::Refused { kind: KeyKind::Network, .. }), "the attack is shut out: {answer:?}");
                    }
                }
            }
        }
        assert!(now - first_try <= secs(ACCOUNT.max_wait), "the operator waited {}", now - first_try);
        throttle::clear(&app.db, &account.name).await.expect("signed in");
        assert_eq!(throttle::admit(&app.db, &operator, now).await.expect("admit"), Admission::Check);
    }

    async fn a_patient_attacker_timing_every_slot_gets_one_check_per_account_cap(app) {
        // The best a guesser with 50 networks can do: try exactly when the account's wait is over,
        // from a network that is not waiting. An hour of that, on the simulated clock.
        let t0 = OffsetDateTime::now_utc();
        let account = Key::account("ops@example.jp");
        let networks: Vec<Key> = (0..50).map(|n| Key::network(attacker(n))).collect();
        let mut free_at = vec![t0; 50];
        let mut now = t0;
        let mut checks = 0;
        while now < t0 + Duration::hours(1) {
            let account_free = now + throttle::wait_left(&app.db, &account.name, now).await.expect("wait").map_or(Duration::ZERO, secs);
            let (n, network_free) = free_at.iter().enumerate().min_by_key(|(_, t)| **t).map(|(n, t)| (n, *t)).expect("a network");
            now = account_free.max(network_free);
            let keys = [account.clone(), networks[n].clone()];
            assert_eq!(throttle::admit(&app.db, &keys, now).await.expect("admit"), Admission::Check, "timed to the slot");
            checks += 1;
            let counted = throttle::fail_all(&app.db, &keys, now).await.expect("fail");
            free_at[n] = now + counted[1].1.wait.map_or(Duration::ZERO, secs);
        }
        // 5 free, the ramp (1+2+4+8+16 s) and then one per 30 s: ≤ 3,600 / 30 + 10 an hour,
        // so ≤ 2,890 a day — the figure in the throttle's documentation.
        assert!(checks <= 3600 / 30 + 10, "{checks} checks in an hour");
        assert!(checks >= 3600 / 30 - 5, "the bound is also what this attacker reaches: {checks}");
    }
}

on_both_backends_with! { &[("TRUSTED_PROXY_HOPS", "1")];
    async fn over_http_an_attack_from_fifty_addresses_leaves_the_operator_a_bounded_wait(app) {
        create_admin(&app, "ops@example.jp", Role::Operator).await;
        let account = Key::account("ops@example.jp");
        let started = OffsetDateTime::now_utc();
        let mut token = csrf_token(&app.get_html("/admin/login").await);
        let mut checked = 0;
        for i in 0..1000usize {
            let (status, retry_after, page) = sign_in_from(&app, attacker(i % 50), &token, "ops@example.jp", "wrong password here").await;
            match status {
                401 => checked += 1,
                429 => {
                    let wait = retry_after.expect("Retry-After");
                    assert!((1..=900).contains(&wait), "{wait}");
                    assert!(page.contains(&format!("{wait}秒お待ちください")), "the page says how long: {page}");
                }
                other => panic!("attempt {i}: {other}"),
            }
            token = csrf_token(&page);
        }
        let elapsed = OffsetDateTime::now_utc() - started;
        assert_eq!(failures_of(&app, &account.name).await, checked, "only checked attempts count against the account");
        assert!(checked <= most_checks(ACCOUNT, elapsed), "{checked} password checks in {elapsed}");
        // The right password from an attacker's address is refused unchecked.
        let (status, _, page) = sign_in_from(&app, attacker(7), &token, "ops@example.jp", PASSWORD).await;
        assert_eq!(status, 429);
        assert_eq!(failures_of(&app, &account.name).await, checked);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM admin_sessions").await, 0);
        // The operator, from an address of their own: at most the account cap, then in.
        let operator = IpAddr::from([192, 0, 2, 10]);
        let (status, retry_after, _) = sign_in_from(&app, operator, &csrf_token(&page), "ops@example.jp", PASSWORD).await;
        if status == 429 {
            let wait = retry_after.expect("Retry-After");
            assert!(wait <= 30, "the operator waits the account cap at most: {wait}");
            let_pass(&app, Duration::seconds(wait as i64)).await;
        } else {
            assert_eq!(status, 303);
        }
        let admin = first_sign_in(&app, "ops@example.jp").await;
        assert_eq!(admin.get("/admin").await.status(), 200);
        assert_eq!(failures_of(&app, &account.name).await, 0, "a sign-in resets the account's count");
        assert_eq!(count(&app, "SELECT COUNT(*) FROM admin_sign_in_throttle WHERE key LIKE 'network:198.18.%' AND failures >= 20").await, 50, "the attackers' networks keep theirs");
    }

    async fn over_http_the_right_password_during_a_wait_is_refused_unchecked(app) {
        create_admin(&app, "ops@example.jp", Role::Operator).await;
        let account = Key::account("OPS@example.jp ");
        let mut token = csrf_token(&app.get_html("/admin/login").await);
        let guesser = IpAddr::from([203, 0, 113, 5]);
        for attempt in 1..=5 {
            let (status, retry_after, page) = sign_in_from(&app, guesser, &token, "ops@example.jp", "wrong password here").await;
            assert_eq!((status, retry_after), (401, None), "free failure {attempt}");
            assert!(page.contains("メールアドレスまたはパスワードが正しくありません"));
            token = csrf_token(&page);
        }
        // Far into the ramp (as after a long attack), the next failure starts the 30-second cap.
        with_pool!(&app.db, |pool| sqlx::query("UPDATE admin_sign_in_throttle SET failures = 10 WHERE key = $1").bind(&account.name).execute(pool).await.map(|_| ())).expect("update");
        let (status, _, page) = sign_in_from(&app, guesser, &token, "Ops@Example.jp", "still wrong").await;
        assert_eq!(status, 401, "checked: the address matches whatever its case");
        // The right password, even from another address, is refused while the account waits.
        let (status, retry_after, page) = sign_in_from(&app, IpAddr::from([192, 0, 2, 10]), &csrf_token(&page), "ops@example.jp", PASSWORD).await;
        assert_eq!(status, 429);
        let wait = retry_after.expect("Retry-After");
        assert!((28..=30).contains(&wait), "{wait}");
        assert!(page.contains(&format!("{wait}秒たってから")) && !page.contains("分後"), "seconds, not minutes: {page}");
        assert_eq!(failures_of(&app, &account.name).await, 11, "the refused attempt was not checked or counted");
        assert_eq!(count(&app, "SELECT COUNT(*) FROM admin_sessions").await, 0, "no half-signed-in session");
        // Once the wait has passed the password is checked again.
        let_pass(&app, Duration::seconds(wait as i64)).await;
        let (_, response) = crate::admin::password_step(&app, "ops@example.jp", PASSWORD).await;
        assert_eq!(location(&response), "/admin/enrol");
    }

    async fn second_factor_failures_back_off_on_their_own_key(app) {
        let admin = crate::admin::admin(&app, Role::Operator).await;
        let id: i64 = with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT id FROM admin_users").fetch_one(pool).await).expect("id");
        let key = Key::second_factor(id);
        // Password guessers keep the account waiting; the real operator, past the password a
        // moment before, still gets their code checked.
        let (browser, response) = crate::admin::password_step(&app, &admin.email, PASSWORD).await;
        assert_eq!(location(&response), "/admin/login/totp");
        with_pool!(&app.db, |pool| sqlx::query("UPDATE admin_sign_in_throttle SET failures = 20 WHERE key = $1").bind(&Key::account(&admin.email).name).execute(pool).await.map(|_| ())).expect("update");
        let mut token = csrf_token(&app.get_html("/admin/login").await);
        for _ in 0..2 {
            let (status, _, page) = sign_in_from(&app, attacker(3), &token, &admin.email, "guess").await;
            assert!(status == 401 || status == 429);
            token = csrf_token(&page);
        }
        let page = browser.get(app.url("/admin/login/totp")).send().await.expect("GET").text().await.expect("body");
        let csrf = csrf_token(&page);
        for _ in 0..SECOND_FACTOR.free_failures {
            let response = browser.post(app.url("/admin/login/totp")).form(&[("code", "000000"), ("csrf_token", &csrf)]).send().await.expect("POST");
            assert_eq!(response.status(), 401);
        }
        assert_eq!(failures_of(&app, &key.name).await, SECOND_FACTOR.free_failures);
        let code = normal_form_app::admin::totp::code_at(&admin.secret, normal_form_app::admin::totp::now_unix() + 30).expect("code");
        let response = browser.post(app.url("/admin/login/totp")).form(&[("code", code.as_str()), ("csrf_token", &csrf)]).send().await.expect("POST");
        assert_eq!(location(&response), "/admin");
        assert_eq!(failures_of(&app, &key.name).await, 0, "a sign-in clears the second factor's count");
        assert_eq!(failures_of(&app, &Key::account(&admin.email).name).await, 0, "and the account's");
    }
}
