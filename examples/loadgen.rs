//! Load generator for the registration form: walks complete registrations through the HTML form
//! over HTTP (お客様情報 → ご住所 → プラン → 確認 (agree=yes) → 完了), as a browser without
//! JavaScript does: GET a step, read its CSRF token, POST the fields with `action=next`, follow the
//! 303 to the next step. Every registration uses a fresh flow (cookie `nf_flow`) and, unless told
//! otherwise, a unique email.
//!
//! Two load models:
//! - closed loop, `--concurrency N --duration S`: N virtual users, each starting the next
//!   registration as soon as the previous one finished; measures capacity (registrations/s).
//! - open loop, `--rate R --duration S`: R new registrations start every second whatever the
//!   server's state (no coordinated omission); measures latency at a given load.
//!
//! `--count N` stops after N registrations instead of a duration, and `--alternate-duplicate EMAIL`
//! makes every second registration use EMAIL (registered once before the run), so fresh and
//! duplicate sign-ups can be compared under identical conditions.
//!
//! Reports registrations/s, errors and per-step latency percentiles as a table, or as JSON with
//! `--json` (`--json-file PATH` writes the JSON and still prints the table).
//!
//! ```sh
//! cargo run --release --example loadgen -- --base-url http://127.0.0.1:8080 --concurrency 16 --duration 30
//! cargo run --release --example loadgen -- --base-url http://127.0.0.1:8080 --rate 20 --duration 30
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode, header};
use serde_json::json;
use tokio::task::JoinSet;

#[derive(Parser, Debug, Clone)]
#[command(about = "Completes registrations through the HTML form and reports throughput and per-step latency")]
struct Args {
    /// The server, e.g. http://127.0.0.1:8080 (only point this at a server you run yourself).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// Closed loop: this many virtual users.
    #[arg(long, conflicts_with = "rate")]
    concurrency: Option<usize>,
    /// Open loop: this many new registrations per second.
    #[arg(long)]
    rate: Option<f64>,
    /// How long to generate load, in seconds (default 30 unless --count is given).
    #[arg(long)]
    duration: Option<f64>,
    /// Stop after this many registrations (closed loop only).
    #[arg(long, conflicts_with = "rate")]
    count: Option<u64>,
    /// Every second registration uses this (already registered) email.
    #[arg(long)]
    alternate_duplicate: Option<String>,
    /// Timeout of one HTTP request, in seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Open loop: registrations allowed in flight at once; arrivals beyond it are counted as dropped.
    #[arg(long, default_value_t = 2000)]
    max_in_flight: usize,
    /// After the load stops, how long to wait for registrations still in flight, in seconds.
    #[arg(long, default_value_t = 30.0)]
    grace: f64,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    json_file: Option<std::path::PathBuf>,
    /// Register through the JSON API (`/api/v1/flows…`, bearer token) instead of the HTML form.
    #[arg(long)]
    api: bool,
}

/// The requests one registration makes, in order; the labels of the report's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Request {
    CustomerGet,
    CustomerPost,
    AddressGet,
    AddressPost,
    PlanGet,
    PlanPost,
    ConfirmGet,
    ConfirmPost,
    CompleteGet,
    ApiStart,
    ApiCustomer,
    ApiAddress,
    ApiPlans,
    ApiPlan,
    ApiSubmit,
}

impl Request {
    const ALL: [Request; 15] = [
        Request::CustomerGet,
        Request::CustomerPost,
        Request::AddressGet,
        Request::AddressPost,
        Request::PlanGet,
        Request::PlanPost,
        Request::ConfirmGet,
        Request::ConfirmPost,
        Request::CompleteGet,
        Request::ApiStart,
        Request::ApiCustomer,
        Request::ApiAddress,
        Request::ApiPlans,
        Request::ApiPlan,
        Request::ApiSubmit,
    ];

    fn label(self) -> &'static str {
        match self {
            Request::CustomerGet => "GET  /register/customer",
            Request::CustomerPost => "POST /register/customer",
            Request::AddressGet => "GET  /register/address",
            Request::AddressPost => "POST /register/address",
            Request::PlanGet => "GET  /register/plan",
            Request::PlanPost => "POST /register/plan",
            Request::ConfirmGet => "GET  /register/confirm",
            Request::ConfirmPost => "POST /register/confirm",
            Request::CompleteGet => "GET  /register/complete",
            Request::ApiStart => "POST /api/v1/flows",
            Request::ApiCustomer => "PUT  /api/v1/flows/current/steps/customer",
            Request::ApiAddress => "PUT  /api/v1/flows/current/steps/address",
            Request::ApiPlans => "GET  /api/v1/flows/current/plans",
            Request::ApiPlan => "PUT  /api/v1/flows/current/steps/plan",
            Request::ApiSubmit => "POST /api/v1/flows/current/submit",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Request::CustomerGet => "customer_get",
            Request::CustomerPost => "customer_post",
            Request::AddressGet => "address_get",
            Request::AddressPost => "address_post",
            Request::PlanGet => "plan_get",
            Request::PlanPost => "plan_post",
            Request::ConfirmGet => "confirm_get",
            Request::ConfirmPost => "confirm_post",
            Request::CompleteGet => "complete_get",
            Request::ApiStart => "api_start",
            Request::ApiCustomer => "api_customer_put",
            Request::ApiAddress => "api_address_put",
            Request::ApiPlans => "api_plans_get",
            Request::ApiPlan => "api_plan_put",
            Request::ApiSubmit => "api_submit",
        }
    }
}

/// One step of the form: its path, the fields it submits, and where its 303 must lead.
struct Step {
    path: &'static str,
    get: Request,
    post: Request,
    next: &'static str,
}

const STEPS: [Step; 4] = [
    Step { path: "/register/customer", get: Request::CustomerGet, post: Request::CustomerPost, next: "/register/address" },
    Step { path: "/register/address", get: Request::AddressGet, post: Request::AddressPost, next: "/register/plan" },
    Step { path: "/register/plan", get: Request::PlanGet, post: Request::PlanPost, next: "/register/confirm" },
    Step { path: "/register/confirm", get: Request::ConfirmGet, post: Request::ConfirmPost, next: "/register/complete" },
];

const PASSWORD: &str = "correct-horse-battery-42";

fn fields(step: usize, email: &str) -> Vec<(&'static str, String)> {
    let pairs: &[(&'static str, &str)] = match step {
        0 => &[
            ("family_name", "山田"),
            ("given_name", "太郎"),
            ("family_name_kana", "やまだ"),
            ("given_name_kana", "たろう"),
            ("email", email),
            ("email_confirm", email),
            ("password", PASSWORD),
            ("phone", "090-1234-5678"),
            ("birth_date", "1990-04-01"),
        ],
        1 => &[("postal_code", "150-0002"), ("prefecture", "東京都"), ("city", "渋谷区"), ("street", "渋谷2-21-1"), ("building", "")],
        2 => &[("plan_id", "standard")],
        _ => &[("agree", "yes")],
    };
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// Latencies (µs) of the requests that got an answer, and the failures, per request kind.
#[derive(Default)]
struct Stats {
    latencies: BTreeMap<Request, Vec<u64>>,
    errors: BTreeMap<String, u64>,
    completed: u64,
    failed: u64,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        for (request, mut values) in other.latencies {
            self.latencies.entry(request).or_default().append(&mut values);
        }
        for (error, n) in other.errors {
            *self.errors.entry(error).or_default() += n;
        }
        self.completed += other.completed;
        self.failed += other.failed;
    }
}

/// Which group a registration's figures go to (fresh or duplicate email).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Group {
    Fresh,
    Duplicate,
}

impl Group {
    fn name(self) -> &'static str {
        match self {
            Group::Fresh => "fresh",
            Group::Duplicate => "duplicate",
        }
    }
}

struct Ctx {
    client: Client,
    base: String,
    run_id: String,
    serial: AtomicU64,
    duplicate: Option<String>,
    api: bool,
}

impl Ctx {
    /// The email and group of the next registration.
    fn next_email(&self) -> (String, Group) {
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        match &self.duplicate {
            Some(email) if n % 2 == 1 => (email.clone(), Group::Duplicate),
            _ => (format!("lg{}n{n}@example.jp", self.run_id), Group::Fresh),
        }
    }
}

/// One HTTP request's outcome: the status, the body, a new `nf_flow` cookie, the Location header.
struct Answer {
    status: StatusCode,
    body: String,
    cookie: Option<String>,
    location: Option<String>,
}

async fn send(builder: reqwest::RequestBuilder, cookie: &Option<String>) -> Result<Answer, String> {
    let builder = match cookie {
        Some(c) => builder.header(header::COOKIE, format!("nf_flow={c}")),
        None => builder,
    };
    let response = builder.send().await.map_err(|e| classify(&e))?;
    let status = response.status();
    let new_cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("nf_flow="))
        .map(|v| v.split(';').next().unwrap_or_default().to_string());
    let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = response.text().await.map_err(|e| classify(&e))?;
    Ok(Answer { status, body, cookie: new_cookie, location })
}

fn classify(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

fn csrf_token(html: &str) -> Option<&str> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(&html[start..start + end])
}

/// One JSON API call, timed; `expect` is the status that counts as success.
async fn api_call(
    request: Request,
    builder: reqwest::RequestBuilder,
    expect: StatusCode,
    stats: &mut Stats,
) -> Result<serde_json::Value, String> {
    let started = Instant::now();
    let response = builder.send().await.map_err(|e| format!("{} {}", request.key(), classify(&e)))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.map_err(|e| format!("{} {}", request.key(), classify(&e)))?;
    stats.latencies.entry(request).or_default().push(started.elapsed().as_micros() as u64);
    if status != expect {
        return Err(format!("{} status {}", request.key(), status.as_u16()));
    }
    Ok(body)
}

/// Walks one registration through the JSON API as a native client would (bearer token).
async fn register_api(ctx: &Ctx, email: &str, stats: &mut Stats) -> Result<(), String> {
    let base = &ctx.base;
    let started = api_call(Request::ApiStart, ctx.client.post(format!("{base}/api/v1/flows")), StatusCode::CREATED, stats).await?;
    let token = started["token"].as_str().ok_or("api_start no token")?.to_string();
    let values = |step: usize| -> serde_json::Map<String, serde_json::Value> {
        fields(step, email).into_iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(v))).collect()
    };
    for (step, request) in [(0, Request::ApiCustomer), (1, Request::ApiAddress)] {
        let name = if step == 0 { "customer" } else { "address" };
        let put = ctx.client.put(format!("{base}/api/v1/flows/current/steps/{name}")).bearer_auth(&token).json(&values(step));
        api_call(request, put, StatusCode::OK, stats).await?;
    }
    api_call(Request::ApiPlans, ctx.client.get(format!("{base}/api/v1/flows/current/plans")).bearer_auth(&token), StatusCode::OK, stats)
        .await?;
    let plan = ctx.client.put(format!("{base}/api/v1/flows/current/steps/plan")).bearer_auth(&token).json(&values(2));
    api_call(Request::ApiPlan, plan, StatusCode::OK, stats).await?;
    let submit = ctx.client.post(format!("{base}/api/v1/flows/current/submit")).bearer_auth(&token).json(&json!({ "agree": true }));
    let done = api_call(Request::ApiSubmit, submit, StatusCode::CREATED, stats).await?;
    done["registration_number"].as_str().map(|_| ()).ok_or_else(|| "api_submit no registration_number".to_string())
}

/// Walks one registration; latencies go to `stats` as they are measured.
async fn register(ctx: &Ctx, email: &str, stats: &mut Stats) -> Result<(), String> {
    if ctx.api {
        return register_api(ctx, email, stats).await;
    }
    let mut cookie: Option<String> = None;
    for (i, step) in STEPS.iter().enumerate() {
        let url = format!("{}{}", ctx.base, step.path);
        let started = Instant::now();
        let page = send(ctx.client.get(&url), &cookie).await.map_err(|e| format!("{} {e}", step.get.key()))?;
        stats.latencies.entry(step.get).or_default().push(started.elapsed().as_micros() as u64);
        if page.cookie.is_some() {
            cookie = page.cookie;
        }
        if page.status != StatusCode::OK {
            return Err(format!("{} status {}", step.get.key(), page.status.as_u16()));
        }
        let token = csrf_token(&page.body).ok_or_else(|| format!("{} no csrf_token", step.get.key()))?;
        let mut form = fields(i, email);
        form.push(("csrf_token", token.to_string()));
        form.push(("action", "next".to_string()));
        let started = Instant::now();
        let answer = send(ctx.client.post(&url).form(&form), &cookie).await.map_err(|e| format!("{} {e}", step.post.key()))?;
        stats.latencies.entry(step.post).or_default().push(started.elapsed().as_micros() as u64);
        if answer.cookie.is_some() {
            cookie = answer.cookie;
        }
        if answer.status != StatusCode::SEE_OTHER || answer.location.as_deref() != Some(step.next) {
            return Err(format!("{} status {} to {}", step.post.key(), answer.status.as_u16(), answer.location.unwrap_or_default()));
        }
    }
    let started = Instant::now();
    let done = send(ctx.client.get(format!("{}/register/complete", ctx.base)), &cookie).await.map_err(|e| format!("complete_get {e}"))?;
    stats.latencies.entry(Request::CompleteGet).or_default().push(started.elapsed().as_micros() as u64);
    if done.status != StatusCode::OK || !done.body.contains("id=\"registration-number\"") {
        return Err(format!("complete_get status {}", done.status.as_u16()));
    }
    Ok(())
}

async fn register_counted(ctx: &Ctx, stats: &mut BTreeMap<Group, Stats>) {
    let (email, group) = ctx.next_email();
    let group_stats = stats.entry(group).or_default();
    match register(ctx, &email, group_stats).await {
        Ok(()) => group_stats.completed += 1,
        Err(error) => {
            group_stats.failed += 1;
            *group_stats.errors.entry(error).or_default() += 1;
        }
    }
}

fn merge_groups(into: &mut BTreeMap<Group, Stats>, from: BTreeMap<Group, Stats>) {
    for (group, stats) in from {
        into.entry(group).or_default().merge(stats);
    }
}

struct Outcome {
    groups: BTreeMap<Group, Stats>,
    elapsed: Duration,
    scheduled: u64,
    dropped: u64,
    unfinished: u64,
}

async fn closed_loop(ctx: Arc<Ctx>, users: usize, duration: Option<Duration>, count: Option<u64>) -> Outcome {
    let started = Instant::now();
    let deadline = duration.map(|d| started + d);
    let budget = Arc::new(AtomicU64::new(count.unwrap_or(u64::MAX)));
    let mut tasks = JoinSet::new();
    for _ in 0..users {
        let (ctx, budget) = (ctx.clone(), budget.clone());
        tasks.spawn(async move {
            let mut stats = BTreeMap::new();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_err() {
                    break;
                }
                register_counted(&ctx, &mut stats).await;
            }
            stats
        });
    }
    let mut groups = BTreeMap::new();
    while let Some(result) = tasks.join_next().await {
        if let Ok(stats) = result {
            merge_groups(&mut groups, stats);
        }
    }
    let scheduled = groups.values().map(|s| s.completed + s.failed).sum();
    Outcome { groups, elapsed: started.elapsed(), scheduled, dropped: 0, unfinished: 0 }
}

async fn open_loop(ctx: Arc<Ctx>, rate: f64, duration: Duration, max_in_flight: usize, grace: Duration) -> Outcome {
    let started = Instant::now();
    let groups = Arc::new(Mutex::new(BTreeMap::new()));
    let mut tasks = JoinSet::new();
    let (mut scheduled, mut dropped) = (0u64, 0u64);
    let total = (rate * duration.as_secs_f64()).round() as u64;
    for n in 0..total {
        // Arrival n is due at n / rate seconds, whenever the previous ones finish.
        let due = started + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        while tasks.try_join_next().is_some() {}
        scheduled += 1;
        if tasks.len() >= max_in_flight {
            dropped += 1;
            continue;
        }
        let (ctx, groups) = (ctx.clone(), groups.clone());
        tasks.spawn(async move {
            let mut stats = BTreeMap::new();
            register_counted(&ctx, &mut stats).await;
            if let Ok(mut all) = groups.lock() {
                merge_groups(&mut all, stats);
            }
        });
    }
    let load_ended = Instant::now();
    let _ = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    let unfinished = tasks.len() as u64;
    tasks.abort_all();
    let elapsed = load_ended.max(started + duration).duration_since(started);
    let groups = std::mem::take(&mut *groups.lock().unwrap_or_else(|e| e.into_inner()));
    Outcome { groups, elapsed, scheduled, dropped, unfinished }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn step_json(stats: &Stats) -> serde_json::Value {
    let mut steps = serde_json::Map::new();
    for request in Request::ALL {
        let mut values = stats.latencies.get(&request).cloned().unwrap_or_default();
        values.sort_unstable();
        let mean = if values.is_empty() { f64::NAN } else { values.iter().sum::<u64>() as f64 / values.len() as f64 / 1000.0 };
        steps.insert(
            request.key().to_string(),
            json!({
                "label": request.label().split_whitespace().collect::<Vec<_>>().join(" "),
                "count": values.len(),
                "p50_ms": round(percentile(&values, 50.0)),
                "p95_ms": round(percentile(&values, 95.0)),
                "p99_ms": round(percentile(&values, 99.0)),
                "mean_ms": round(mean),
                "max_ms": round(values.last().map_or(f64::NAN, |v| *v as f64 / 1000.0)),
            }),
        );
    }
    serde_json::Value::Object(steps)
}

fn round(v: f64) -> serde_json::Value {
    if v.is_finite() { json!((v * 100.0).round() / 100.0) } else { serde_json::Value::Null }
}

fn report(args: &Args, outcome: &Outcome) -> serde_json::Value {
    let mut all = Stats::default();
    for stats in outcome.groups.values() {
        all.merge(Stats {
            latencies: stats.latencies.clone(),
            errors: stats.errors.clone(),
            completed: stats.completed,
            failed: stats.failed,
        });
    }
    let secs = outcome.elapsed.as_secs_f64();
    let groups: serde_json::Map<String, serde_json::Value> = outcome
        .groups
        .iter()
        .map(|(group, stats)| {
            (group.name().to_string(), json!({"completed": stats.completed, "failed": stats.failed, "steps": step_json(stats)}))
        })
        .collect();
    json!({
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "face": if args.api { "json-api" } else { "html-form" },
        "base_url": args.base_url,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "elapsed_s": round(secs),
        "scheduled": outcome.scheduled,
        "completed": all.completed,
        "failed": all.failed,
        "dropped": outcome.dropped,
        "unfinished": outcome.unfinished,
        "registrations_per_s": round(all.completed as f64 / secs),
        "errors": all.errors,
        "steps": step_json(&all),
        "groups": if outcome.groups.len() > 1 { serde_json::Value::Object(groups) } else { serde_json::Value::Null },
    })
}

fn print_table(report: &serde_json::Value) {
    let r = report;
    let mode = match r["mode"].as_str() {
        Some("open") => format!("open loop, {} registrations/s offered", r["rate"]),
        _ => format!("closed loop, {} virtual users", r["concurrency"]),
    };
    println!("loadgen: {mode}, {} s against {}", r["elapsed_s"], r["base_url"].as_str().unwrap_or_default());
    println!(
        "registrations: {} completed, {} failed, {} dropped, {} unfinished (of {} started) -> {} registrations/s",
        r["completed"], r["failed"], r["dropped"], r["unfinished"], r["scheduled"], r["registrations_per_s"]
    );
    if let Some(errors) = r["errors"].as_object().filter(|e| !e.is_empty()) {
        for (error, n) in errors {
            println!("  error: {error} x{n}");
        }
    }
    let mut sections = vec![("all".to_string(), &r["steps"])];
    if let Some(groups) = r["groups"].as_object() {
        for (name, group) in groups {
            sections.push((format!("{name} ({} completed)", group["completed"]), &group["steps"]));
        }
    }
    for (name, steps) in sections {
        println!("\n{name}:");
        println!("{:<26} {:>7} {:>9} {:>9} {:>9} {:>9}", "request", "count", "p50 ms", "p95 ms", "p99 ms", "max ms");
        for request in Request::ALL {
            let s = &steps[request.key()];
            let f = |k: &str| s[k].as_f64().map_or("-".to_string(), |v| format!("{v:.1}"));
            println!(
                "{:<26} {:>7} {:>9} {:>9} {:>9} {:>9}",
                request.label(),
                s["count"],
                f("p50_ms"),
                f("p95_ms"),
                f("p99_ms"),
                f("max_ms")
            );
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency.is_none() && args.rate.is_none() {
        bail!("give --concurrency N (closed loop) or --rate R (open loop)");
    }
    let duration = match (args.duration, args.count) {
        (Some(d), _) => Some(Duration::from_secs_f64(d)),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(30)),
    };
    normal_form_app::external::install_crypto_provider();
    let client = Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs_f64(args.timeout))
        .pool_max_idle_per_host(4096)
        .tcp_nodelay(true)
        .build()
        .context("HTTP client")?;
    let run_id = format!("{}p{}", time::OffsetDateTime::now_utc().unix_timestamp(), std::process::id());
    let ctx = Arc::new(Ctx {
        client,
        base: args.base_url.trim_end_matches('/').to_string(),
        run_id,
        serial: AtomicU64::new(0),
        duplicate: args.alternate_duplicate.clone(),
        api: args.api,
    });
    if let Some(email) = &args.alternate_duplicate {
        // Make sure the duplicate address is a member before the measured run (a duplicate already is).
        register(&ctx, email, &mut Stats::default()).await.map_err(|e| anyhow::anyhow!("registering {email} first: {e}"))?;
    }
    let outcome = match (args.concurrency, args.rate) {
        (Some(users), _) => closed_loop(ctx, users.max(1), duration, args.count).await,
        (None, Some(rate)) if rate > 0.0 => {
            let duration = duration.unwrap_or(Duration::from_secs(30));
            open_loop(ctx, rate, duration, args.max_in_flight, Duration::from_secs_f64(args.grace)).await
        }
        _ => bail!("--rate must be above 0"),
    };
    let report = report(&args, &outcome);
    if let Some(path) = &args.json_file {
        std::fs::write(path, serde_json::to_string_pretty(&report)?).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}
