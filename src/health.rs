//! `/health` (can we take registrations? 503 when the database does not answer) and
//! `/health/live` (the process is up; no dependencies) for container probes.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::state::AppState;

/// Well inside the 2 s the load balancer and the runbook's `curl -f` allow.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    checks: Checks,
    /// External APIs: reported here, but never a reason for 503 (the form has fallbacks).
    external_apis: Vec<crate::apis::ApiStatus>,
}

#[derive(Serialize)]
struct Checks {
    database: DatabaseCheck,
}

#[derive(Serialize)]
struct DatabaseCheck {
    status: &'static str,
    backend: &'static str,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(DATABASE_CHECK_TIMEOUT, state.db.ping()).await;
    let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    let error = match outcome {
        Ok(Ok(_)) => None,
        Ok(Err(err)) => {
            tracing::error!(event = "health_database_error", error = %err, "database check failed");
            Some("unreachable")
        }
        Err(_) => {
            tracing::error!(event = "health_database_timeout", "database check timed out");
            Some("timeout")
        }
    };
    let database = DatabaseCheck { status: if error.is_none() { "ok" } else { "down" }, backend: state.db.backend(), latency_ms, error };
    let healthy = database.error.is_none();
    metrics::gauge!("nfa_database_up").set(if healthy { 1.0 } else { 0.0 });
    let body = Health {
        status: if healthy { "ok" } else { "unavailable" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started_at.elapsed().as_secs(),
        checks: Checks { database },
        external_apis: state.apis.statuses(&state.config),
    };
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}

pub async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}
