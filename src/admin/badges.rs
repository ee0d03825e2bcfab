//! Labels and badge classes that more than one screen shows: the external APIs' health and their
//! circuit breakers (the dashboard and 外部API切替).

use crate::external::ApiHealth;

/// Japanese label and badge class of an API's health.
pub fn health_label(health: ApiHealth) -> (&'static str, &'static str) {
    match health {
        ApiHealth::Ok => ("正常", "ok"),
        ApiHealth::Degraded => ("不安定", "warn"),
        ApiHealth::Down => ("停止中", "bad"),
    }
}

/// Japanese label and badge class of a circuit breaker state.
pub fn circuit_label(circuit: &str) -> (&'static str, &'static str) {
    match circuit {
        "open" => ("遮断中（open）", "bad"),
        "half_open" => ("試行中（half-open）", "warn"),
        _ => ("通常（closed）", "ok"),
    }
}
