//! The application state every handler and background job is given: configuration, the database
//! pool, the catalogue, the external-API providers, the rate limits and the password hasher.
//!
//! It sits below every router and depends on none of them (docs/ARCHITECTURE.md): routers and
//! jobs import `AppState` from here, and only `startup` builds one. A feature's own per-instance
//! state (the dashboard's cache, say) belongs to that feature's router, not here.

use std::sync::Arc;
use std::time::Instant;

use crate::apis::Apis;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::db::Db;
use crate::http::rate_limit::RateLimits;
use crate::password::PasswordHasher;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub catalog: Arc<Catalog>,
    pub rate_limits: RateLimits,
    pub hasher: PasswordHasher,
    pub apis: Arc<Apis>,
    pub started_at: Instant,
}
