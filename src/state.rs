//! The application state every handler and background job is given: configuration, the database
//! pools (writer and optional read replica) and whether they answer, the catalogue, the
//! external-API providers, the rate limits and the password hasher.
//!
//! It sits below every router and depends on none of them (docs/ARCHITECTURE.md): routers and
//! jobs import `AppState` from here, and only `startup` builds one. A feature's own per-instance
//! state (the dashboard's cache, say) belongs to that feature's router, not here.

use std::sync::Arc;
use std::time::Instant;

use crate::apis::Apis;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::db::{Availability, Db};
use crate::http::rate_limit::RateLimits;
use crate::password::PasswordHasher;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// The writer: every registration, flow and decision.
    pub db: Db,
    /// The read replica (`DATABASE_READ_URL`), when there is one; see [`AppState::reads`].
    pub read_db: Option<Db>,
    /// Whether the writer and the replica answer.
    pub availability: Availability,
    pub catalog: Arc<Catalog>,
    pub rate_limits: RateLimits,
    pub hasher: PasswordHasher,
    pub apis: Arc<Apis>,
    pub started_at: Instant,
}

impl AppState {
    /// Where the admin console's lists, search, dashboard and CSV read: the replica when there is
    /// one and it answers, else the writer.
    pub fn reads(&self) -> &Db {
        match &self.read_db {
            Some(replica) if self.availability.reader_up() => replica,
            _ => &self.db,
        }
    }

    /// Where a read that must see the latest writes goes (a session, the record an operator is
    /// about to act on): the writer, or the replica while the writer is down.
    pub fn fresh_reads(&self) -> &Db {
        match &self.read_db {
            Some(replica) if !self.availability.writer_up() => replica,
            _ => &self.db,
        }
    }
}
