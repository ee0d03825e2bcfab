//! The embedded stock striped over slots (migration 0012, `inventory::stock`): exact counts under
//! concurrency, the total in `plan_stock`, restocks shared out over the slots, and the migration
//! of existing stock rows.

use std::time::Duration;

use normal_form_app::db::Db;
use normal_form_app::inventory::StockSlots;
use normal_form_app::with_pool;

use crate::helpers::{Backend, fresh_postgres_database};
use crate::on_both_backends;

async fn total(db: &Db, plan: &str) -> i64 {
    with_pool!(db, |pool| sqlx::query_scalar("SELECT CAST(stock AS BIGINT) FROM plan_stock WHERE plan_id = $1")
        .bind(plan)
        .fetch_one(pool)
        .await)
    .expect("plan_stock")
}

async fn slots(db: &Db, plan: &str) -> Vec<i64> {
    with_pool!(db, |pool| sqlx::query_scalar("SELECT CAST(stock AS BIGINT) FROM plan_stock_slots WHERE plan_id = $1 ORDER BY slot")
        .bind(plan)
        .fetch_all(pool)
        .await)
    .expect("slots")
}

async fn set_stock(db: &Db, plan: &str, sql: &'static str) {
    with_pool!(db, |pool| sqlx::query(sql).bind(plan).execute(pool).await.map(|_| ())).expect("restock");
}

/// One buyer: a transaction that takes a unit, holds it a moment (as the submit's transaction
/// holds its slot until the users row, the outbox row and the commit are written), then commits.
async fn buy(db: Db, plan: &'static str) -> bool {
    with_pool!(&db, |pool| async {
        let mut tx = pool.begin().await?;
        let taken = StockSlots::reserve_unit(&mut *tx, plan, time::OffsetDateTime::now_utc()).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.commit().await?;
        Ok::<bool, sqlx::Error>(taken)
    }
    .await)
    .expect("buy")
}

on_both_backends! {
    async fn fifty_concurrent_buyers_of_ten_units_get_exactly_ten(app) {
        set_stock(&app.db, "basic", "UPDATE plan_stock SET stock = 10 WHERE plan_id = $1").await;
        assert_eq!(total(&app.db, "basic").await, 10);
        let expected_slots = if app.backend == Backend::Postgres { 16 } else { 1 };
        assert_eq!(slots(&app.db, "basic").await.len(), expected_slots);
        let buyers: Vec<_> = (0..50).map(|_| tokio::spawn(buy(app.db.clone(), "basic"))).collect();
        let mut sold = 0;
        for buyer in buyers {
            sold += usize::from(buyer.await.expect("task"));
        }
        assert_eq!((sold, 50 - sold), (10, 40), "10 sold, 40 refused");
        assert_eq!(total(&app.db, "basic").await, 0);
        assert!(slots(&app.db, "basic").await.iter().all(|units| *units == 0));
        assert!(!buy(app.db.clone(), "basic").await, "sold out stays sold out");
    }

    async fn restocks_are_shared_over_the_slots_and_keep_the_sales_made(app) {
        set_stock(&app.db, "basic", "UPDATE plan_stock SET stock = 100 WHERE plan_id = $1").await;
        let shares = slots(&app.db, "basic").await;
        assert_eq!(shares.iter().sum::<i64>(), 100);
        assert!(shares.iter().max().expect("a slot") - shares.iter().min().expect("a slot") <= 1, "{shares:?}");
        for _ in 0..3 {
            assert!(buy(app.db.clone(), "basic").await);
        }
        assert_eq!(total(&app.db, "basic").await, 97);
        set_stock(&app.db, "basic", "UPDATE plan_stock SET stock = stock + 10 WHERE plan_id = $1").await;
        assert_eq!(total(&app.db, "basic").await, 107);
        // A restart seeds nothing over the current counts.
        let catalog = normal_form_app::catalog::Catalog::configured(None).expect("catalog");
        normal_form_app::inventory::seed_stock(&app.db, &catalog).await.expect("seed");
        assert_eq!(total(&app.db, "basic").await, 107);
        set_stock(&app.db, "basic", "UPDATE plan_stock SET stock = 0 WHERE plan_id = $1").await;
        assert_eq!(total(&app.db, "basic").await, 0);
        assert!(!buy(app.db.clone(), "basic").await);
        // The embedded InventoryAPI (the plan page's stock labels) reads the total through the view.
        set_stock(&app.db, "basic", "UPDATE plan_stock SET stock = 33 WHERE plan_id = $1").await;
        let inventory = normal_form_app::inventory::EmbeddedInventory::new(app.db.clone());
        let counts = normal_form_app::inventory::InventoryApi::stock(&inventory, &["basic"]).await.expect("stock");
        assert_eq!(counts.get("basic"), Some(&33));
    }
}

/// Migration 0012 turns each existing `plan_stock` row into slots with the same total.
#[tokio::test]
async fn migration_0012_moves_existing_stock_into_slots() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("m.db").display()),
            Backend::Postgres => fresh_postgres_database().await,
        };
        let settings = normal_form_app::db::PoolSettings {
            max_connections: 2,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
        };
        let db = Db::connect(&url, &settings).expect("connect");
        let folder = match backend {
            Backend::Sqlite => "migrations/sqlite",
            Backend::Postgres => "migrations/postgres",
        };
        let mut migrator = sqlx::migrate::Migrator::new(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/")).join(folder))
            .await
            .expect("migrations");
        let all = migrator.migrations.to_vec();
        migrator.migrations = all.iter().filter(|m| m.version < 12).cloned().collect::<Vec<_>>().into();
        with_pool!(&db, |pool| migrator.run(pool).await).expect("migrate to 0011");
        with_pool!(&db, |pool| sqlx::query("INSERT INTO plan_stock (plan_id, stock) VALUES ('old', 37), ('empty', 0)")
            .execute(pool)
            .await
            .map(|_| ()))
        .expect("old stock");
        migrator.migrations = all.into();
        with_pool!(&db, |pool| migrator.run(pool).await).expect("migrate 0012");
        assert_eq!((total(&db, "old").await, total(&db, "empty").await), (37, 0), "{backend:?}");
        let shares = slots(&db, "old").await;
        assert_eq!(shares.len(), if backend == Backend::Postgres { 16 } else { 1 });
        assert_eq!(shares.iter().sum::<i64>(), 37);
        db.close().await;
    }
}
