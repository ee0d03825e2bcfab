//! Prometheus metrics (`GET /metrics`). Counters and histograms are recorded where things happen;
//! gauges that mirror state (active flows, pool, external APIs, process) are refreshed when the
//! endpoint is scraped. Label values are bounded: route templates, API names, step and field
//! names — never raw paths or user data.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;
use crate::with_pool;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static PROCESS_START: OnceLock<f64> = OnceLock::new();

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0];

/// Installs the process-wide recorder once (tests start many apps in one process).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("acquire_duration_seconds".into()), LATENCY_BUCKETS))
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Another recorder may already be installed (a library user's); then ours only renders.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            PROCESS_START.get_or_init(unix_now);
            handle
        })
        .clone()
}

/// Moves the histogram samples recorded since the last call into their buckets. The exporter keeps
/// every sample until then; without this, an instance that nobody scrapes (CloudWatch only, or a
/// scrape outage) grows by the samples of every request: about 30 MiB per 800,000 requests.
pub fn run_upkeep() {
    if let Some(handle) = HANDLE.get() {
        handle.run_upkeep();
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("nfa_http_requests_total", "HTTP requests by route template, method and status class");
    describe_histogram!("nfa_http_request_duration_seconds", "HTTP request latency");
    describe_gauge!("nfa_registration_active_flows", "Registration flows touched in the last 30 minutes and not completed");
    describe_counter!("nfa_registration_flows_started_total", "Registration flows started");
    describe_counter!("nfa_registrations_completed_total", "Registrations completed (final submit accepted)");
    describe_counter!("nfa_registration_step_completed_total", "Form steps completed, by step");
    describe_counter!("nfa_registration_validation_errors_total", "Validation errors by step and field");
    describe_counter!("nfa_security_csrf_failures_total", "Requests refused by the CSRF checks");
    describe_counter!("nfa_security_rate_limited_total", "Requests refused by the rate limit");
    describe_counter!("nfa_external_api_requests_total", "External API calls by API and outcome");
    describe_histogram!("nfa_external_api_request_duration_seconds", "External API call latency (including retries)");
    describe_gauge!("nfa_external_api_circuit_state", "Circuit breaker: 0 closed, 1 half-open, 2 open");
    describe_gauge!("nfa_outbox_oldest_pending_age_seconds", "Age of the oldest mail waiting to be sent");
    describe_gauge!("nfa_manual_reviews_pending", "Registrations waiting for an operator's decision");
    describe_gauge!("nfa_db_pool_connections", "Database pool connections by state");
    describe_gauge!("nfa_db_pool_max_connections", "Database pool size limit");
    describe_gauge!("nfa_database_up", "1 when the last health check reached the database");
    describe_gauge!("nfa_database_read_up", "1 when the last scrape reached the read replica (DATABASE_READ_URL)");
    describe_gauge!("nfa_registration_paused", "1 while the form is paused because the database writer is down");
    describe_counter!("nfa_writer_paused_requests_total", "Requests answered 503 while the database writer was down, by area");
    describe_counter!("nfa_purge_deleted_rows_total", "Rows deleted by the retention purge, by table (docs/privacy.md)");
    describe_gauge!("nfa_purge_last_run_timestamp_seconds", "Unix time of the last completed retention purge");
    describe_gauge!("nfa_app_info", "Build information");
    describe_histogram!("nfa_db_pool_acquire_duration_seconds", "Wait for a database connection (sampled by health checks and scrapes)");
    describe_gauge!("nfa_outbox_messages", "Outgoing mail by state");
    describe_counter!("process_cpu_seconds_total", "Total user and system CPU time spent in seconds");
    describe_gauge!("process_resident_memory_bytes", "Resident memory size in bytes");
    describe_gauge!("process_start_time_seconds", "Start time of the process since the Unix epoch in seconds");
    // Counters exist from the start at 0, so rate() and increase() see their first event.
    for name in [
        "nfa_registrations_completed_total",
        "nfa_registration_flows_started_total",
        "nfa_security_csrf_failures_total",
        "nfa_security_rate_limited_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    for step in ["customer", "address", "plan", "confirm"] {
        metrics::counter!("nfa_registration_step_completed_total", "step" => step).increment(0);
    }
    for api in crate::external::ApiName::ALL {
        for outcome in ["success", "error", "timeout", "circuit_open"] {
            metrics::counter!("nfa_external_api_requests_total", "api" => api.as_str(), "outcome" => outcome).increment(0);
        }
    }
}

pub async fn render(State(state): State<AppState>) -> axum::response::Response {
    if !state.config.metrics_enabled {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], rendered(&state).await).into_response()
}

/// The Prometheus text, with the state gauges refreshed first.
pub async fn rendered(state: &AppState) -> String {
    refresh_gauges(state).await;
    install().render()
}

async fn refresh_gauges(state: &AppState) {
    let up = matches!(tokio::time::timeout(std::time::Duration::from_millis(1500), state.db.ping()).await, Ok(Ok(_)));
    metrics::gauge!("nfa_database_up").set(if up { 1.0 } else { 0.0 });
    if let Some(replica) = &state.read_db {
        let up = matches!(tokio::time::timeout(std::time::Duration::from_millis(1500), replica.ping()).await, Ok(Ok(_)));
        metrics::gauge!("nfa_database_read_up").set(if up { 1.0 } else { 0.0 });
    }
    metrics::gauge!("nfa_registration_paused").set(if state.availability.writer_up() { 0.0 } else { 1.0 });
    metrics::gauge!("nfa_app_info", "version" => env!("CARGO_PKG_VERSION"), "commit" => crate::health::COMMIT).set(1.0);
    for status in state.apis.statuses(&state.config) {
        let gauge = match status.circuit {
            "open" => 2.0,
            "half_open" => 1.0,
            _ => 0.0,
        };
        metrics::gauge!("nfa_external_api_circuit_state", "api" => status.api.as_str()).set(gauge);
    }
    let (size, idle) = with_pool!(&state.db, |pool| (pool.size(), pool.num_idle()));
    metrics::gauge!("nfa_db_pool_connections", "state" => "size").set(f64::from(size));
    metrics::gauge!("nfa_db_pool_connections", "state" => "idle").set(idle as f64);
    metrics::gauge!("nfa_db_pool_connections", "state" => "in_use").set(f64::from(size).max(idle as f64) - idle as f64);
    metrics::gauge!("nfa_db_pool_max_connections").set(f64::from(state.config.db_max_connections));
    if let Ok((active, reviews)) = active_flows_and_pending_reviews(&state.db).await {
        metrics::gauge!("nfa_registration_active_flows").set(active as f64);
        metrics::gauge!("nfa_manual_reviews_pending").set(reviews as f64);
    }
    // Only pending and failed mail: counting every sent message would scan the whole outbox.
    if let Ok((pending, failed, oldest)) = crate::mail::worker::stats(&state.db).await {
        metrics::gauge!("nfa_outbox_messages", "state" => "pending").set(pending as f64);
        metrics::gauge!("nfa_outbox_messages", "state" => "failed").set(failed as f64);
        metrics::gauge!("nfa_outbox_oldest_pending_age_seconds").set(oldest);
    }
    record_process_metrics();
}

/// Active flows (touched in the last 30 minutes and not completed) and pending manual reviews:
/// the gauges here and the admin dashboard's figures.
pub async fn active_flows_and_pending_reviews(db: &crate::db::Db) -> Result<(i64, i64), sqlx::Error> {
    let cutoff = time::OffsetDateTime::now_utc() - time::Duration::minutes(30);
    with_pool!(db, |pool| sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM user_sessions WHERE status = 'active' AND updated_at >= $1), \
                (SELECT COUNT(*) FROM manual_reviews WHERE status = 'pending')"
    )
    .bind(cutoff)
    .fetch_one(pool)
    .await)
}

/// CPU and memory of this process from /proc (Linux; elsewhere nothing is recorded).
fn record_process_metrics() {
    let ticks_per_second = 100.0; // USER_HZ, fixed at 100 on Linux
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if let (Some(utime), Some(stime)) =
                (fields.get(11).and_then(|v| v.parse::<f64>().ok()), fields.get(12).and_then(|v| v.parse::<f64>().ok()))
            {
                metrics::counter!("process_cpu_seconds_total").absolute(((utime + stime) / ticks_per_second) as u64);
            }
        }
    }
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm")
        && let Some(resident) = statm.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok())
    {
        metrics::gauge!("process_resident_memory_bytes").set(resident * 4096.0);
    }
    metrics::gauge!("process_start_time_seconds").set(*PROCESS_START.get_or_init(unix_now));
}
