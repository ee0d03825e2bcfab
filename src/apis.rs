//! The three external APIs as the rest of the app sees them, built from configuration: the HTTP
//! provider when `{NAME}_API_URL` is set, the embedded one otherwise.

use std::sync::Arc;

use serde::Serialize;

use crate::address::api::{Address, AddressApi, EmbeddedAddress};
use crate::catalog::Catalog;
use crate::config::{ApiConfig, Config};
use crate::db::Db;
use crate::external::Api;
use crate::external::breaker::CircuitState;
use crate::external::{ApiHealth, ApiName, HttpApi, HttpSettings};
use crate::inventory::{EmbeddedInventory, Inventory, InventoryApi};
use crate::region::{EmbeddedRegion, Region, RegionApi};

pub struct Apis {
    pub address: Address,
    pub inventory: Inventory,
    pub region: Region,
    pub low_stock_threshold: i64,
}

fn http(name: ApiName, api: &ApiConfig, config: &Config) -> anyhow::Result<Option<HttpApi>> {
    let Some(url) = &api.url else { return Ok(None) };
    let settings = HttpSettings {
        base_url: url.clone(),
        timeout: api.timeout,
        retries: config.external.retries,
        breaker_threshold: config.external.breaker_threshold,
        breaker_open_for: config.external.breaker_open_for,
    };
    Ok(Some(HttpApi::new(name, &settings)?))
}

#[derive(Serialize)]
pub struct ApiStatus {
    pub api: ApiName,
    pub status: ApiHealth,
    pub circuit: &'static str,
    pub provider: &'static str,
    pub forced_fallback: bool,
}

impl Apis {
    pub fn from_config(config: &Config, db: &Db, catalog: &Arc<Catalog>) -> anyhow::Result<Apis> {
        let external = &config.external;
        let address: Box<dyn AddressApi> = match http(ApiName::Address, &external.address, config)? {
            Some(api) => Box::new(api),
            None => Box::new(EmbeddedAddress),
        };
        let inventory: Box<dyn InventoryApi> = match http(ApiName::Inventory, &external.inventory, config)? {
            Some(api) => Box::new(api),
            None => Box::new(EmbeddedInventory::new(db.clone())),
        };
        let region: Box<dyn RegionApi> = match http(ApiName::Region, &external.region, config)? {
            Some(api) => Box::new(api),
            None => Box::new(EmbeddedRegion::new(catalog.clone())),
        };
        Ok(Apis {
            address: Api::new(ApiName::Address, address, external.address.force_fallback),
            inventory: Api::new(ApiName::Inventory, inventory, external.inventory.force_fallback),
            region: Api::new(ApiName::Region, region, external.region.force_fallback),
            low_stock_threshold: config.low_stock_threshold,
        })
    }

    /// Each API's state for `/health` and the metrics.
    pub fn statuses(&self, config: &Config) -> Vec<ApiStatus> {
        let provider = |api: &ApiConfig| if api.url.is_some() { "http" } else { "embedded" };
        let entry = |api: ApiName, health: ApiHealth, circuit: CircuitState, forced: bool, cfg: &ApiConfig| ApiStatus {
            api,
            status: health,
            circuit: circuit.as_str(),
            provider: provider(cfg),
            forced_fallback: forced,
        };
        let external = &config.external;
        vec![
            entry(ApiName::Address, self.address.health(), self.address.circuit(), self.address.guard.forced(), &external.address),
            entry(
                ApiName::Inventory,
                self.inventory.health(),
                self.inventory.circuit(),
                self.inventory.guard.forced(),
                &external.inventory,
            ),
            entry(ApiName::Region, self.region.health(), self.region.circuit(), self.region.guard.forced(), &external.region),
        ]
    }
}
