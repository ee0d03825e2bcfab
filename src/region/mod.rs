//! RegionAPI: is a plan offered at the entered address? Embedded provider: the catalogue's rules
//! (allowed prefectures and/or postal-code prefixes). HTTP provider: `REGION_API_URL`.
//!
//! When the API cannot answer, every region is accepted, the registration is flagged
//! `unchecked`, and `recheck_unchecked` — run by every instance in the background — settles each
//! flagged registration once the API is back (runbook: 後処理で地域制限を確認).

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Plan};
use crate::db::Db;
use crate::external::{Api, ExternalError, HttpApi, Provider};
use crate::with_pool;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eligibility {
    pub eligible: bool,
    /// Why not, in Japanese, for the person.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What the form knows about a plan at an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegionCheck {
    Eligible,
    Ineligible(String),
    /// The API could not answer: accepted now, checked later.
    Unchecked,
}

pub trait RegionApi: Provider {
    fn check<'a>(
        &'a self,
        plan_id: &'a str,
        prefecture: &'a str,
        postal_code: &'a str,
    ) -> BoxFuture<'a, Result<Eligibility, ExternalError>>;
}

/// The catalogue's own rules.
pub struct EmbeddedRegion {
    catalog: std::sync::Arc<Catalog>,
}

impl EmbeddedRegion {
    pub fn new(catalog: std::sync::Arc<Catalog>) -> EmbeddedRegion {
        EmbeddedRegion { catalog }
    }
}

pub fn eligibility(plan: &Plan, prefecture: &str, postal_code: &str) -> Eligibility {
    let unrestricted = plan.allowed_prefectures.is_empty() && plan.allowed_postal_prefixes.is_empty();
    let by_prefecture = plan.allowed_prefectures.iter().any(|p| p == prefecture);
    let by_postal = plan.allowed_postal_prefixes.iter().any(|p| postal_code.starts_with(p.as_str()));
    if unrestricted || by_prefecture || by_postal {
        return Eligibility { eligible: true, reason: None };
    }
    let area = if plan.allowed_prefectures.is_empty() { "一部の地域".to_string() } else { plan.allowed_prefectures.join("・") };
    Eligibility { eligible: false, reason: Some(format!("このプランは{area}でのみお申し込みいただけます。")) }
}

impl RegionApi for EmbeddedRegion {
    fn check<'a>(
        &'a self,
        plan_id: &'a str,
        prefecture: &'a str,
        postal_code: &'a str,
    ) -> BoxFuture<'a, Result<Eligibility, ExternalError>> {
        Box::pin(async move {
            match self.catalog.plan(plan_id) {
                Some(plan) => Ok(eligibility(plan, prefecture, postal_code)),
                None => Ok(Eligibility {
                    eligible: false, reason: Some("このプランは現在お申し込みいただけません。".into())
                }),
            }
        })
    }
}

impl Provider for EmbeddedRegion {}

/// The HTTP provider: `GET {REGION_API_URL}/eligibility`.
impl RegionApi for HttpApi {
    fn check<'a>(
        &'a self,
        plan_id: &'a str,
        prefecture: &'a str,
        postal_code: &'a str,
    ) -> BoxFuture<'a, Result<Eligibility, ExternalError>> {
        Box::pin(async move {
            let query = [("plan_id", plan_id), ("prefecture", prefecture), ("postal_code", postal_code)];
            self.get_json("/eligibility", &query).await?.ok_or(ExternalError::Status(404))
        })
    }
}

pub type Region = Api<dyn RegionApi>;

impl Api<dyn RegionApi> {
    pub async fn check(&self, plan_id: &str, prefecture: &str, postal_code: &str) -> RegionCheck {
        match self.guard.call(self.provider.check(plan_id, prefecture, postal_code)).await {
            Ok(Eligibility { eligible: true, .. }) => RegionCheck::Eligible,
            Ok(Eligibility { eligible: false, reason }) => {
                RegionCheck::Ineligible(reason.unwrap_or_else(|| "このプランはご入力の住所ではお申し込みいただけません。".into()))
            }
            Err(_) => RegionCheck::Unchecked,
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecheckSummary {
    pub eligible: u32,
    pub to_review: u32,
    pub still_unchecked: u32,
}

/// Settles registrations flagged `unchecked` while RegionAPI was down: eligible ones are marked
/// so, ineligible ones go to the manual-review queue. Safe with several instances: each row is
/// moved only from `unchecked`, in one transaction with its review entry.
pub async fn recheck_unchecked(db: &Db, region: &Region, batch: i64) -> Result<RecheckSummary, sqlx::Error> {
    let mut summary = RecheckSummary::default();
    if !region.available() {
        return Ok(summary);
    }
    let flagged: Vec<(i64, String, String, String)> = with_pool!(db, |pool| sqlx::query_as(
        "SELECT id, plan_id, prefecture, postal_code FROM users WHERE region_status = 'unchecked' ORDER BY id LIMIT $1"
    )
    .bind(batch)
    .fetch_all(pool)
    .await)?;
    for (user_id, plan_id, prefecture, postal_code) in flagged {
        match region.check(&plan_id, &prefecture, &postal_code).await {
            RegionCheck::Eligible => {
                with_pool!(db, |pool| sqlx::query(
                    "UPDATE users SET region_status = 'eligible' WHERE id = $1 AND region_status = 'unchecked'"
                )
                .bind(user_id)
                .execute(pool)
                .await
                .map(|_| ()))?;
                summary.eligible += 1;
            }
            RegionCheck::Ineligible(reason) => {
                with_pool!(db, |pool| {
                    let mut tx = pool.begin().await?;
                    let moved = sqlx::query("UPDATE users SET region_status = 'ineligible' WHERE id = $1 AND region_status = 'unchecked'")
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if moved == 1 {
                        sqlx::query("INSERT INTO manual_reviews (user_id, kind, reason) VALUES ($1, 'region', $2)")
                            .bind(user_id)
                            .bind(&reason)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await
                })?;
                summary.to_review += 1;
            }
            RegionCheck::Unchecked => {
                // The API failed again: leave the rest for the next round.
                summary.still_unchecked += 1;
                break;
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_rules() {
        let catalog = Catalog::embedded().expect("catalog");
        let premium = catalog.plan("premium").expect("premium");
        assert!(eligibility(premium, "東京都", "1500002").eligible);
        let refused = eligibility(premium, "大阪府", "5300001");
        assert!(!refused.eligible);
        assert!(refused.reason.unwrap_or_default().contains("東京都"));
        let basic = catalog.plan("basic").expect("basic");
        assert!(eligibility(basic, "沖縄県", "9000001").eligible);
        let by_prefix = Plan { allowed_postal_prefixes: vec!["150".into()], allowed_prefectures: vec![], ..basic.clone() };
        assert!(eligibility(&by_prefix, "東京都", "1500002").eligible);
        assert!(!eligibility(&by_prefix, "東京都", "1600002").eligible);
    }
}
