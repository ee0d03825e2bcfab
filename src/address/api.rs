//! AddressAPI as the form sees it: the embedded provider answers from the bundled Japan Post
//! table; the HTTP provider asks `ADDRESS_API_URL`.
//!
//! When the API cannot answer (down, breaker open, or the operator forced the fallback), the form
//! hides 住所検索 and asks for the address to be typed (runbook: 郵便番号入力を無効化 /
//! 住所の手動入力を必須化); lookup returns by itself when the circuit closes again.

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::postal::{PostalAddress, PostalTable};
use crate::external::{Api, ExternalError, HttpApi, Provider};

pub trait AddressApi: Provider {
    /// Every address for a 7-digit postal code; empty when the code does not exist.
    fn lookup<'a>(&'a self, code: &'a str) -> BoxFuture<'a, Result<Vec<PostalAddress>, ExternalError>>;

    /// The same as `PostalAnswer` JSON, for `/api/v1/postal-codes/{code}`; `None` when the code
    /// does not exist.
    fn answer_json<'a>(&'a self, code: &'a str) -> BoxFuture<'a, Result<Option<String>, ExternalError>> {
        Box::pin(async move {
            let addresses = self.lookup(code).await?;
            if addresses.is_empty() {
                return Ok(None);
            }
            let answer = PostalAnswer { postal_code: code.to_string(), addresses };
            serde_json::to_string(&answer).map(Some).map_err(|err| ExternalError::Malformed(err.to_string()))
        })
    }
}

pub struct EmbeddedAddress;

impl AddressApi for EmbeddedAddress {
    fn lookup<'a>(&'a self, code: &'a str) -> BoxFuture<'a, Result<Vec<PostalAddress>, ExternalError>> {
        Box::pin(async move { Ok(PostalTable::embedded().lookup(code)) })
    }

    /// Written straight from the table: this is the hot path of the lookup API.
    fn answer_json<'a>(&'a self, code: &'a str) -> BoxFuture<'a, Result<Option<String>, ExternalError>> {
        Box::pin(std::future::ready(Ok(PostalTable::embedded().answer_json(code))))
    }
}

impl Provider for EmbeddedAddress {}

/// The JSON both `ADDRESS_API_URL/postal-codes/{code}` and our own `/api/v1/postal-codes/{code}`
/// answer with.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct PostalAnswer {
    pub postal_code: String,
    pub addresses: Vec<PostalAddress>,
}

/// The HTTP provider: `GET {ADDRESS_API_URL}/postal-codes/{code}`.
impl AddressApi for HttpApi {
    fn lookup<'a>(&'a self, code: &'a str) -> BoxFuture<'a, Result<Vec<PostalAddress>, ExternalError>> {
        Box::pin(async move {
            let answer: Option<PostalAnswer> = self.get_json(&format!("/postal-codes/{code}"), &[]).await?;
            Ok(answer.map(|a| a.addresses).unwrap_or_default())
        })
    }
}

pub type Address = Api<dyn AddressApi>;

impl Api<dyn AddressApi> {
    pub async fn lookup(&self, code: &str) -> Result<Vec<PostalAddress>, ExternalError> {
        self.guard.call(self.provider.lookup(code)).await
    }

    pub async fn answer_json(&self, code: &str) -> Result<Option<String>, ExternalError> {
        self.guard.call(self.provider.answer_json(code)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_direct_json_answer_is_what_serde_writes_for_every_code() {
        let table = PostalTable::embedded();
        let mut checked = 0;
        for (code, rows) in table.code_ranges() {
            let code = format!("{code:07}");
            let addresses = table.lookup(&code);
            assert_eq!(addresses.len(), rows.len());
            let expected = serde_json::to_string(&PostalAnswer { postal_code: code.clone(), addresses }).expect("serialises");
            assert_eq!(table.answer_json(&code).as_deref(), Some(expected.as_str()), "{code}");
            checked += 1;
        }
        assert_eq!(checked, 120_720);
        assert_eq!(table.answer_json("0000000"), None);
        assert_eq!(table.answer_json("150-0002"), None);
    }
}
