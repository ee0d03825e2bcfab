//! AddressAPI as the form sees it: the embedded provider answers from the bundled Japan Post
//! table; the HTTP provider asks `ADDRESS_API_URL`.
//!
//! When the API cannot answer (down, breaker open, or the operator forced the fallback), the form
//! hides 住所検索 and asks for the address to be typed (runbook: 郵便番号入力を無効化 /
//! 住所の手動入力を必須化); lookup returns by itself when the circuit closes again.

use serde::{Deserialize, Serialize};

use super::PostalAddress;
use super::postal::PostalTable;
use crate::external::breaker::CircuitState;
use crate::external::{ApiHealth, ApiName, BoxFuture, ExternalError, Guard, HttpApi};

pub trait AddressApi: Send + Sync {
    /// Every address for a 7-digit postal code; empty when the code does not exist.
    fn lookup<'a>(&'a self, code: &'a str) -> BoxFuture<'a, Result<Vec<PostalAddress>, ExternalError>>;
    fn circuit(&self) -> CircuitState;
    fn health(&self) -> ApiHealth;
}

pub struct EmbeddedAddress;

impl AddressApi for EmbeddedAddress {
    fn lookup<'a>(&'a self, code: &'a str) -> BoxFuture<'a, Result<Vec<PostalAddress>, ExternalError>> {
        Box::pin(async move { Ok(PostalTable::embedded().lookup(code)) })
    }

    fn circuit(&self) -> CircuitState {
        CircuitState::Closed
    }

    fn health(&self) -> ApiHealth {
        ApiHealth::Ok
    }
}

/// The JSON both `ADDRESS_API_URL/postal-codes/{code}` and our own `/api/v1/postal-codes/{code}`
/// answer with.
#[derive(Serialize, Deserialize)]
pub struct PostalAnswer {
    pub postal_code: String,
    pub addresses: Vec<PostalAddress>,
}

pub struct HttpAddress {
    api: HttpApi,
}

impl HttpAddress {
    pub fn new(api: HttpApi) -> HttpAddress {
        HttpAddress { api }
    }
}

impl AddressApi for HttpAddress {
    fn lookup<'a>(&'a self, code: &'a str) -> BoxFuture<'a, Result<Vec<PostalAddress>, ExternalError>> {
        Box::pin(async move {
            let answer: Option<PostalAnswer> = self.api.get_json(&format!("/postal-codes/{code}"), &[]).await?;
            Ok(answer.map(|a| a.addresses).unwrap_or_default())
        })
    }

    fn circuit(&self) -> CircuitState {
        self.api.circuit()
    }

    fn health(&self) -> ApiHealth {
        self.api.health()
    }
}

pub struct Address {
    pub guard: Guard,
    provider: Box<dyn AddressApi>,
}

impl Address {
    pub fn new(provider: Box<dyn AddressApi>, forced: bool) -> Address {
        Address { guard: Guard::new(ApiName::Address, forced), provider }
    }

    pub async fn lookup(&self, code: &str) -> Result<Vec<PostalAddress>, ExternalError> {
        self.guard.call(self.provider.lookup(code)).await
    }

    /// Whether the form offers 住所検索 now. A half-open circuit counts as available, so the
    /// first lookup after an outage is the probe that brings the feature back.
    pub fn available(&self) -> bool {
        self.circuit() != CircuitState::Open
    }

    pub fn circuit(&self) -> CircuitState {
        if self.guard.forced() { CircuitState::Open } else { self.provider.circuit() }
    }

    pub fn health(&self) -> ApiHealth {
        if self.guard.forced() { ApiHealth::Down } else { self.provider.health() }
    }
}
