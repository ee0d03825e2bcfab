//! InventoryAPI: stock per plan. Embedded provider: counts in the app's own database
//! (`plan_stock`, striped over slots: `stock`), reserved inside the registration's transaction. HTTP provider:
//! `INVENTORY_API_URL` (contract in docs/external-apis.openapi.json).
//!
//! When the API cannot answer (down, breaker open, or the operator forced the fallback), plans
//! show 「要確認」, stay selectable, and the registration is saved with inventory status
//! `needs_check` and a manual-review entry (runbook: 管理者による手動確認フローに切り替え).

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::db::Db;
use crate::external::{Api, ExternalError, HttpApi, Provider};
use crate::with_pool;

pub mod stock;

pub use stock::{StockSlots, seed_stock};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StockStatus {
    Available,
    Low,
    SoldOut,
    NeedsCheck,
}

impl StockStatus {
    pub fn label(self) -> &'static str {
        match self {
            StockStatus::Available => "在庫あり",
            StockStatus::Low => "残りわずか",
            StockStatus::SoldOut => "在庫なし",
            StockStatus::NeedsCheck => "要確認",
        }
    }

    pub fn selectable(self) -> bool {
        self != StockStatus::SoldOut
    }

    fn from_count(count: i64, low_threshold: i64) -> StockStatus {
        match count {
            c if c <= 0 => StockStatus::SoldOut,
            c if c <= low_threshold => StockStatus::Low,
            _ => StockStatus::Available,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The provider is the app's own database: reserve with the registration's transaction.
    InDatabase,
    Reserved,
    OutOfStock,
}

pub trait InventoryApi: Provider {
    /// Units left per plan id (plans the API does not know are left out).
    fn stock<'a>(&'a self, plan_ids: &'a [&'a str]) -> BoxFuture<'a, Result<HashMap<String, i64>, ExternalError>>;
    /// Reserves one unit for a registration; `reference` (the 受付番号) makes a retry safe.
    fn reserve<'a>(&'a self, plan_id: &'a str, reference: &'a str) -> BoxFuture<'a, Result<Reservation, ExternalError>>;
}

pub struct EmbeddedInventory {
    db: Db,
}

impl EmbeddedInventory {
    pub fn new(db: Db) -> EmbeddedInventory {
        EmbeddedInventory { db }
    }
}

impl InventoryApi for EmbeddedInventory {
    fn stock<'a>(&'a self, _plan_ids: &'a [&'a str]) -> BoxFuture<'a, Result<HashMap<String, i64>, ExternalError>> {
        Box::pin(async move {
            let rows: Vec<(String, i64)> =
                with_pool!(&self.db, |pool| sqlx::query_as("SELECT plan_id, CAST(stock AS BIGINT) FROM plan_stock").fetch_all(pool).await)
                    .map_err(|e| ExternalError::Connect(e.to_string()))?;
            Ok(rows.into_iter().collect())
        })
    }

    fn reserve<'a>(&'a self, _plan_id: &'a str, _reference: &'a str) -> BoxFuture<'a, Result<Reservation, ExternalError>> {
        Box::pin(async { Ok(Reservation::InDatabase) })
    }
}

impl Provider for EmbeddedInventory {}

#[derive(Serialize, Deserialize)]
pub struct StockAnswer {
    pub plans: Vec<PlanStock>,
}

#[derive(Serialize, Deserialize)]
pub struct PlanStock {
    pub plan_id: String,
    pub stock: i64,
}

#[derive(Serialize, Deserialize)]
pub struct ReservationRequest<'a> {
    pub plan_id: &'a str,
    pub reference: &'a str,
}

#[derive(Serialize, Deserialize)]
pub struct ReservationAnswer {
    pub reserved: bool,
}

/// The HTTP provider: `GET {INVENTORY_API_URL}/stock`, `POST …/reservations`.
impl InventoryApi for HttpApi {
    fn stock<'a>(&'a self, plan_ids: &'a [&'a str]) -> BoxFuture<'a, Result<HashMap<String, i64>, ExternalError>> {
        Box::pin(async move {
            let ids = plan_ids.join(",");
            let answer: StockAnswer = self.get_json("/stock", &[("plan_id", ids.as_str())]).await?.ok_or(ExternalError::Status(404))?;
            Ok(answer.plans.into_iter().map(|p| (p.plan_id, p.stock)).collect())
        })
    }

    fn reserve<'a>(&'a self, plan_id: &'a str, reference: &'a str) -> BoxFuture<'a, Result<Reservation, ExternalError>> {
        Box::pin(async move {
            let answer: ReservationAnswer =
                self.post_json("/reservations", &ReservationRequest { plan_id, reference }).await?.ok_or(ExternalError::Status(404))?;
            Ok(if answer.reserved { Reservation::Reserved } else { Reservation::OutOfStock })
        })
    }
}

pub type Inventory = Api<dyn InventoryApi>;

impl Api<dyn InventoryApi> {
    /// Stock status per plan; every plan 「要確認」 when the API cannot answer.
    pub async fn levels(&self, catalog: &Catalog, low_threshold: i64) -> HashMap<String, StockStatus> {
        let ids: Vec<&str> = catalog.plans.iter().map(|p| p.id.as_str()).collect();
        let counts = self.guard.call(self.provider.stock(&ids)).await;
        catalog
            .plans
            .iter()
            .map(|plan| {
                let status = match &counts {
                    Ok(counts) => counts.get(&plan.id).map_or(StockStatus::NeedsCheck, |c| StockStatus::from_count(*c, low_threshold)),
                    Err(_) => StockStatus::NeedsCheck,
                };
                (plan.id.clone(), status)
            })
            .collect()
    }

    pub async fn reserve(&self, plan_id: &str, reference: &str) -> Result<Reservation, ExternalError> {
        self.guard.call(self.provider.reserve(plan_id, reference)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_levels() {
        assert_eq!(StockStatus::from_count(0, 10), StockStatus::SoldOut);
        assert_eq!(StockStatus::from_count(10, 10), StockStatus::Low);
        assert_eq!(StockStatus::from_count(11, 10), StockStatus::Available);
        assert!(!StockStatus::SoldOut.selectable());
        assert!(StockStatus::NeedsCheck.selectable());
        assert_eq!(StockStatus::NeedsCheck.label(), "要確認");
    }
}
