//! The embedded InventoryAPI's stock in the app's own database: each plan's units are striped
//! over rows of `plan_stock_slots` (16 on PostgreSQL, one on SQLite), and `plan_stock` is a view
//! giving each plan's total (migration 0012).
//!
//! A reservation takes one unit from one slot inside the caller's transaction (the registration's
//! or the operator's approval) and holds only that slot's row lock until it commits, so on
//! PostgreSQL up to 16 registrations of one plan proceed together instead of queueing on one row.
//! `stock > 0` and the `CHECK (stock >= 0)` on every slot keep overselling impossible.

use futures_util::future::BoxFuture;
use sqlx::{PgConnection, SqliteConnection};
use time::OffsetDateTime;

use crate::catalog::Catalog;
use crate::db::Db;

/// Slots per plan on PostgreSQL (migration 0012 creates as many for the plans it finds).
pub const POSTGRES_SLOTS: i32 = 16;

/// Puts each catalogue plan's initial stock into its slots, once; later restarts keep the counts.
pub async fn seed_stock(db: &Db, catalog: &Catalog) -> Result<(), sqlx::Error> {
    for plan in &catalog.plans {
        let units = i64::from(plan.initial_stock);
        match db {
            Db::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO plan_stock_slots (plan_id, slot, stock) \
                     SELECT $1, s, $2 / $3 + CASE WHEN s < $2 % $3 THEN 1 ELSE 0 END FROM generate_series(0, $3 - 1) AS s \
                     ON CONFLICT (plan_id, slot) DO NOTHING",
                )
                .bind(&plan.id)
                .bind(units)
                .bind(i64::from(POSTGRES_SLOTS))
                .execute(pool)
                .await?;
            }
            Db::Sqlite(pool) => {
                sqlx::query(
                    "INSERT INTO plan_stock_slots (plan_id, slot, stock) VALUES ($1, 0, $2) ON CONFLICT (plan_id, slot) DO NOTHING",
                )
                .bind(&plan.id)
                .bind(units)
                .execute(pool)
                .await?;
            }
        }
    }
    Ok(())
}

/// The stock statements, for a connection of either backend (`&mut *tx` of a transaction).
pub trait StockSlots {
    /// Takes one unit of `plan_id`; false when none is left.
    fn reserve_unit<'a>(&'a mut self, plan_id: &'a str, now: OffsetDateTime) -> BoxFuture<'a, Result<bool, sqlx::Error>>;

    /// Writes one slot of the plan without changing it: what a reservation writes, for the
    /// duplicate-email path, whose timing must not tell a registered address from a new one.
    fn touch_slot<'a>(&'a mut self, plan_id: &'a str) -> BoxFuture<'a, Result<(), sqlx::Error>>;

    /// The plan's units left, as this transaction sees them.
    fn units_left<'a>(&'a mut self, plan_id: &'a str) -> BoxFuture<'a, Result<Option<i64>, sqlx::Error>>;
}

/// The PostgreSQL reservation, first pass: a slot with units that nobody holds (`SKIP LOCKED`),
/// from a random starting slot so that concurrent buyers spread out. It never waits.
const PG_RESERVE: &str = "WITH picked AS (\
       SELECT slot FROM plan_stock_slots WHERE plan_id = $2 AND stock > 0 \
       ORDER BY slot >= $3 DESC, slot LIMIT 1 FOR UPDATE SKIP LOCKED) \
     UPDATE plan_stock_slots AS s SET stock = s.stock - 1, updated_at = $1 FROM picked \
     WHERE s.plan_id = $2 AND s.slot = picked.slot RETURNING s.slot";
/// Second pass, when every slot with units is held by transactions in flight: wait for one, so
/// that a plan is never reported sold out while units remain. When a holder commits and its slot
/// is empty, PostgreSQL rechecks `stock > 0`, finds it false and moves on to the next slot, but
/// keeps its lock on the empty one until this transaction ends. So this pass locks in one order
/// for everybody (by slot, like the restock trigger): waiters taking slots in different orders
/// would deadlock.
const PG_RESERVE_WAITING: &str = "WITH picked AS (\
       SELECT slot FROM plan_stock_slots WHERE plan_id = $2 AND stock > 0 ORDER BY slot LIMIT 1 FOR UPDATE) \
     UPDATE plan_stock_slots AS s SET stock = s.stock - 1, updated_at = $1 FROM picked \
     WHERE s.plan_id = $2 AND s.slot = picked.slot RETURNING s.slot";

impl StockSlots for PgConnection {
    fn reserve_unit<'a>(&'a mut self, plan_id: &'a str, now: OffsetDateTime) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
        Box::pin(async move {
            let start: i16 = rand::random_range(0..POSTGRES_SLOTS as i16);
            let taken: Option<i16> = sqlx::query_scalar(PG_RESERVE).bind(now).bind(plan_id).bind(start).fetch_optional(&mut *self).await?;
            if taken.is_some() {
                return Ok(true);
            }
            let taken: Option<i16> = sqlx::query_scalar(PG_RESERVE_WAITING).bind(now).bind(plan_id).fetch_optional(&mut *self).await?;
            Ok(taken.is_some())
        })
    }

    fn touch_slot<'a>(&'a mut self, plan_id: &'a str) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let slot: i16 = rand::random_range(0..POSTGRES_SLOTS as i16);
            sqlx::query("UPDATE plan_stock_slots SET updated_at = updated_at WHERE plan_id = $1 AND slot = $2")
                .bind(plan_id)
                .bind(slot)
                .execute(&mut *self)
                .await
                .map(|_| ())
        })
    }

    fn units_left<'a>(&'a mut self, plan_id: &'a str) -> BoxFuture<'a, Result<Option<i64>, sqlx::Error>> {
        Box::pin(async move {
            sqlx::query_scalar("SELECT CAST(stock AS BIGINT) FROM plan_stock WHERE plan_id = $1").bind(plan_id).fetch_optional(self).await
        })
    }
}

/// SQLite runs one writer at a time, so its single slot is the old single-row statement.
impl StockSlots for SqliteConnection {
    fn reserve_unit<'a>(&'a mut self, plan_id: &'a str, now: OffsetDateTime) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
        Box::pin(async move {
            let taken =
                sqlx::query("UPDATE plan_stock_slots SET stock = stock - 1, updated_at = $1 WHERE plan_id = $2 AND slot = 0 AND stock > 0")
                    .bind(now)
                    .bind(plan_id)
                    .execute(self)
                    .await?;
            Ok(taken.rows_affected() == 1)
        })
    }

    fn touch_slot<'a>(&'a mut self, plan_id: &'a str) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("UPDATE plan_stock_slots SET updated_at = updated_at WHERE plan_id = $1 AND slot = 0")
                .bind(plan_id)
                .execute(self)
                .await
                .map(|_| ())
        })
    }

    fn units_left<'a>(&'a mut self, plan_id: &'a str) -> BoxFuture<'a, Result<Option<i64>, sqlx::Error>> {
        Box::pin(async move {
            sqlx::query_scalar("SELECT CAST(stock AS BIGINT) FROM plan_stock WHERE plan_id = $1").bind(plan_id).fetch_optional(self).await
        })
    }
}
