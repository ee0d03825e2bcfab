//! `/health` (can we take registrations? 503 when the database does not answer) and
//! `/health/live` (the process is up; no dependencies) for container probes.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::db::Db;
use crate::state::AppState;

/// Well inside the 2 s the load balancer and the runbook's `curl -f` allow.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    version: &'static str,
    /// The commit the binary was built from (`NFA_GIT_COMMIT` at build time).
    commit: &'static str,
    uptime_seconds: u64,
    /// `open`, or `paused` while the writer is down (the form answers 503 then).
    registration: &'static str,
    checks: Checks,
    /// External APIs: reported here, but never a reason for 503 (the form has fallbacks).
    external_apis: Vec<crate::apis::ApiStatus>,
}

#[derive(Serialize)]
struct Checks {
    /// The writer.
    database: DatabaseCheck,
    /// The read replica (`DATABASE_READ_URL`), when there is one: its loss is no reason for 503
    /// (reads fall back to the writer).
    #[serde(skip_serializing_if = "Option::is_none")]
    database_read: Option<DatabaseCheck>,
}

#[derive(Serialize)]
struct DatabaseCheck {
    status: &'static str,
    backend: &'static str,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replication_lag_seconds: Option<f64>,
}

/// The commit baked in at build time (the Dockerfile passes it), or `unknown`.
pub const COMMIT: &str = match option_env!("NFA_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

async fn check(db: &Db, role: &'static str) -> DatabaseCheck {
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(DATABASE_CHECK_TIMEOUT, db.ping()).await;
    let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    let error = match outcome {
        Ok(Ok(_)) => None,
        Ok(Err(err)) => {
            tracing::error!(event = "health_database_error", role, error = %err, "database check failed");
            Some("unreachable")
        }
        Err(_) => {
            tracing::error!(event = "health_database_timeout", role, "database check timed out");
            Some("timeout")
        }
    };
    let replication_lag_seconds = match (role, error) {
        ("reader", None) => db.replication_lag().await.ok().flatten().map(|lag| (lag * 1000.0).round() / 1000.0),
        _ => None,
    };
    DatabaseCheck { status: if error.is_none() { "ok" } else { "down" }, backend: db.backend(), latency_ms, error, replication_lag_seconds }
}

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (database, database_read) = match &state.read_db {
        Some(replica) => {
            let (writer, reader) = tokio::join!(check(&state.db, "writer"), check(replica, "reader"));
            (writer, Some(reader))
        }
        None => (check(&state.db, "writer").await, None),
    };
    // The form's pause follows the watch job's own connections (`jobs::watch_databases`), not
    // this check: a pool that is busy under load must not pause registration.
    let healthy = database.error.is_none();
    let reader_down = database_read.as_ref().is_some_and(|r| r.error.is_some());
    let body = Health {
        status: match (healthy, reader_down) {
            (false, _) => "unavailable",
            (true, true) => "degraded",
            (true, false) => "ok",
        },
        version: env!("CARGO_PKG_VERSION"),
        commit: COMMIT,
        uptime_seconds: state.started_at.elapsed().as_secs(),
        registration: if state.availability.writer_up() { "open" } else { "paused" },
        checks: Checks { database, database_read },
        external_apis: state.apis.statuses(&state.config),
    };
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}

pub async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION"), "commit": COMMIT }))
}
