//! Rebuilds the bundled postal-code table from Japan Post's `utf_ken_all.csv`, with a progress
//! bar, until `normal-form-app postal import FILE` takes this over:
//!
//! `cargo run --example postal_import -- utf_ken_all.csv [assets/postal/ken_all.tsv.gz]`

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let Some(source) = args.next().map(PathBuf::from) else {
        anyhow::bail!("usage: postal_import utf_ken_all.csv [assets/postal/ken_all.tsv.gz]");
    };
    let out = args.next().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("assets/postal/ken_all.tsv.gz"));
    normal_form_app::address::import::run_import_cli(&source, &out)
}
