//! The plan catalogue (`catalog.toml`), shipped inside the binary and replaceable with
//! `CATALOG_PATH`.

use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::values::fields::PREFECTURES;

const EMBEDDED: &str = include_str!("../catalog.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub monthly_price: u32,
    pub description: String,
    pub initial_stock: u32,
    #[serde(default)]
    pub allowed_prefectures: Vec<String>,
    #[serde(default)]
    pub allowed_postal_prefixes: Vec<String>,
}

impl Plan {
    /// `¥1,980` style price for the screens.
    pub fn price_label(&self) -> String {
        let digits = self.monthly_price.to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        format!("月額 {grouped}円（税込）")
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub plans: Vec<Plan>,
}

impl Catalog {
    pub fn embedded() -> anyhow::Result<Catalog> {
        Catalog::parse(EMBEDDED).context("the embedded catalog.toml")
    }

    /// The catalogue at `CATALOG_PATH` when set, otherwise the embedded one.
    pub fn configured(path: Option<&Path>) -> anyhow::Result<Catalog> {
        path.map_or_else(Catalog::embedded, Catalog::load)
    }

    pub fn load(path: &Path) -> anyhow::Result<Catalog> {
        let text = std::fs::read_to_string(path).with_context(|| format!("CATALOG_PATH: cannot read {}", path.display()))?;
        Catalog::parse(&text).with_context(|| format!("CATALOG_PATH: {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Catalog> {
        let catalog: Catalog = toml::from_str(text)?;
        if catalog.plans.is_empty() {
            bail!("the catalogue has no plans");
        }
        let mut ids = std::collections::HashSet::new();
        for plan in &catalog.plans {
            if !ids.insert(plan.id.as_str()) {
                bail!("plan id '{}' appears twice", plan.id);
            }
            if let Some(unknown) = plan.allowed_prefectures.iter().find(|p| !PREFECTURES.contains(&p.as_str())) {
                bail!("plan '{}': '{unknown}' is not a prefecture", plan.id);
            }
            if let Some(bad) =
                plan.allowed_postal_prefixes.iter().find(|p| p.is_empty() || p.len() > 7 || !p.bytes().all(|b| b.is_ascii_digit()))
            {
                bail!("plan '{}': postal prefix '{bad}' must be 1–7 digits", plan.id);
            }
        }
        Ok(catalog)
    }

    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    /// The plan's name as people read it, or its id when the catalogue no longer has it (a
    /// registration outlives a plan that was withdrawn).
    pub fn plan_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.plan(id).map_or(id, |p| p.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_is_valid() {
        let catalog = Catalog::embedded().expect("catalog");
        assert!(catalog.plans.len() >= 2);
        assert_eq!(catalog.plan("standard").map(|p| p.price_label()), Some("月額 1,980円（税込）".to_string()));
    }

    #[test]
    fn plan_names_fall_back_to_the_id_of_a_withdrawn_plan() {
        let catalog =
            Catalog::parse("[[plans]]\nid='a'\nname='プランA'\nmonthly_price=1\ndescription=''\ninitial_stock=1\n").expect("valid");
        assert_eq!(catalog.plan_name("a"), "プランA");
        assert_eq!(catalog.plan_name("gone"), "gone");
    }

    #[test]
    fn rejects_unknown_prefecture() {
        let err =
            Catalog::parse("[[plans]]\nid='a'\nname='A'\nmonthly_price=1\ndescription=''\ninitial_stock=1\nallowed_prefectures=['東京']\n")
                .expect_err("invalid");
        assert!(err.to_string().contains("東京"));
    }
}
