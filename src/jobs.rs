//! Background jobs every instance runs beside the web server: deferred migrations, the watch on
//! the writer and the read replica, and the periodic chores (metrics upkeep, idle rate-limit
//! entries, expired admin sessions, plan stock, the region re-check). `startup` spawns them and
//! stops them at shutdown.

use std::time::Duration;

use crate::db::{Db, Probe};
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

/// The retention purge (`purge`), once per `PURGE_INTERVAL_SECS` (first a few minutes after the
/// start, so a fleet restarting together does not purge while it warms up); the advisory lock lets
/// one instance do it.
pub async fn purge_daily(state: AppState) {
    let retention = crate::purge::Retention::from(state.config.as_ref());
    let first = state.config.purge_interval.min(Duration::from_secs(300));
    tokio::time::sleep(first).await;
    let mut every = tokio::time::interval(state.config.purge_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if !state.availability.writer_up() {
            continue;
        }
        match crate::purge::run_exclusive(&state.db, &retention, false).await {
            Ok(Some(report)) => crate::purge::record(&report),
            Ok(None) => tracing::debug!(event = "purge_skipped", "another instance holds the purge lock"),
            Err(err) => tracing::error!(event = "purge_failed", error = %err, "retention purge failed"),
        }
    }
}

/// How often the writer and the replica are checked, and how long one check may take.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);
/// Checks that must fail in a row before a database counts as down: one lost packet must not
/// pause the form.
const FAILURES_FOR_DOWN: u32 = 2;

/// Keeps `state.availability` current: the writer and the replica are checked every second over
/// connections of their own, so the form pauses within ~2 s of the writer going and resumes
/// within ~1 s of its return.
pub async fn watch_databases(state: AppState) {
    let mut writer = Probe::new(&state.db);
    let mut reader = state.read_db.as_ref().map(Probe::new);
    let (mut writer_failures, mut reader_failures) = (0u32, 0u32);
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (writer_ok, reader_ok) = match &mut reader {
            Some(reader) => {
                let (w, r) = tokio::join!(writer.answers(WATCH_EVERY), reader.answers(WATCH_EVERY));
                (w, Some(r))
            }
            None => (writer.answers(WATCH_EVERY).await, None),
        };
        writer_failures = if writer_ok { 0 } else { writer_failures + 1 };
        if writer_ok || writer_failures >= FAILURES_FOR_DOWN {
            state.availability.set_writer(writer_ok);
        }
        if let Some(reader_ok) = reader_ok {
            reader_failures = if reader_ok { 0 } else { reader_failures + 1 };
            if reader_ok || reader_failures >= FAILURES_FOR_DOWN {
                state.availability.set_reader(reader_ok);
            }
        }
    }
}
