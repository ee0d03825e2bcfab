//! What the プランの選択 step offers: every catalogue plan with its live stock status
//! (InventoryAPI) and whether it is offered at the entered address (RegionAPI).

use futures_util::future::join_all;

use super::flow::FlowData;
use crate::apis::Apis;
use crate::catalog::{Catalog, Plan};
use crate::inventory::StockStatus;
use crate::region::RegionCheck;

#[derive(Clone, Debug)]
pub struct PlanOption {
    pub plan: Plan,
    pub stock: StockStatus,
    pub region: RegionCheck,
}

impl PlanOption {
    pub fn selectable(&self) -> bool {
        self.stock.selectable() && !matches!(self.region, RegionCheck::Ineligible(_))
    }

    /// Why the plan cannot be chosen, for the person.
    pub fn unavailable_reason(&self) -> Option<String> {
        if !self.stock.selectable() {
            return Some("在庫がなくなりました。".into());
        }
        match &self.region {
            RegionCheck::Ineligible(reason) => Some(reason.clone()),
            _ => None,
        }
    }
}

pub async fn options(apis: &Apis, catalog: &Catalog, data: &FlowData) -> Vec<PlanOption> {
    let levels = apis.inventory.levels(catalog, apis.low_stock_threshold).await;
    let (prefecture, postal_code) = (data.get("prefecture"), data.get("postal_code"));
    let checks = join_all(catalog.plans.iter().map(|plan| apis.region.check(&plan.id, prefecture, postal_code))).await;
    catalog
        .plans
        .iter()
        .zip(checks)
        .map(|(plan, region)| PlanOption {
            plan: plan.clone(),
            stock: levels.get(&plan.id).copied().unwrap_or(StockStatus::NeedsCheck),
            region,
        })
        .collect()
}
