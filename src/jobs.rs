//! Background jobs every instance runs beside the web server: deferred migrations, and the
//! periodic chores (metrics upkeep, idle rate-limit entries, expired admin sessions, plan stock,
//! the region re-check). `startup` spawns them and stops them at shutdown.

use std::time::Duration;

use crate::db::Db;
use crate::state::AppState;

/// Applies the migrations once the database answers (the service started while it did not).
pub async fn retry_migrations(db: Db) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        match db.migrate().await {
            Ok(()) => {
                tracing::info!(event = "migrations_applied", "database reachable again; migrations applied");
                return;
            }
            Err(err) if err.is_unreachable() => continue,
            Err(err) => {
                tracing::error!(event = "migrations_failed", error = %err, "applying database migrations failed");
                return;
            }
        }
    }
}

/// Periodic chores every instance runs.
pub async fn housekeeping(state: AppState) {
    let mut minute = tokio::time::interval(Duration::from_secs(60));
    let mut recheck = tokio::time::interval(state.config.external.region_recheck_interval);
    let mut metrics_upkeep = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = metrics_upkeep.tick() => crate::metrics::run_upkeep(),
            _ = minute.tick() => {
                state.rate_limits.forget_idle_clients();
                if let Err(err) = crate::admin::session::purge_expired(&state.db).await {
                    tracing::error!(event = "admin_session_purge_failed", error = %err, "could not purge expired admin sessions");
                }
                if let Err(err) = crate::inventory::seed_stock(&state.db, &state.catalog).await {
                    tracing::error!(event = "stock_seed_failed", error = %err, "could not seed plan stock");
                }
            }
            _ = recheck.tick() => match crate::region::recheck_unchecked(&state.db, &state.apis.region, 100).await {
                Ok(summary) if summary != Default::default() => {
                    tracing::info!(event = "region_recheck", eligible = summary.eligible, to_review = summary.to_review, "re-checked region-unchecked registrations");
                }
                Ok(_) => {}
                Err(err) => tracing::error!(event = "region_recheck_failed", error = %err, "region re-check failed"),
            },
        }
    }
}
