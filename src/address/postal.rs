//! The postal-code table in memory: every Japan Post area code (郵便番号) with its addresses.
//!
//! The table is compiled into the binary as `assets/postal/ken_all.tsv.gz` (about 1.9 MB, format
//! in `assets/README.md`) and decoded on first use into a compact form: one sorted `u32` per
//! address for the binary search, and every distinct string stored once in a single `String`
//! that rows point into, so the 124,526 addresses cost a few megabytes rather than the hundreds
//! of thousands of small allocations a `Vec<PostalAddress>` would need.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::sync::LazyLock;

use flate2::read::GzDecoder;

use crate::json::push_json_string;
use serde::{Deserialize, Serialize};

const EMBEDDED: &[u8] = include_bytes!("../../assets/postal/ken_all.tsv.gz");

/// First line of the file; any other header means a format this code does not know.
pub(crate) const HEADER: &str = "postal_code\tprefecture\tcity\ttown\tprefecture_kana\tcity_kana\ttown_kana\tnote";

/// Far above the 13 MB of the real table: a bound so that a wrong file cannot exhaust memory.
const MAX_TSV_BYTES: u64 = 64 * 1024 * 1024;

/// One address a postal code stands for. A code can stand for several (one per 町域), and a few
/// codes span two municipalities or even two prefectures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PostalAddress {
    /// Seven ASCII digits, no hyphen.
    pub postal_code: String,
    pub prefecture: String,
    pub city: String,
    /// 町域. Empty where the code covers the rest of the municipality (以下に掲載がない場合) or
    /// the address goes straight on with the 番地 (「利島村一円」): the person types the rest.
    pub town: String,
    /// Readings in full-width katakana; digits and Latin letters are ASCII (NFKC).
    pub prefecture_kana: String,
    pub city_kana: String,
    pub town_kana: String,
    /// Japan Post's parenthesised remark, without the parentheses: 「次のビルを除く」,
    /// 「地階・階層不明」, 「1〜19丁目」, 「以下に掲載がない場合」 and so on.
    pub note: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PostalDataError {
    #[error("{context}")]
    Io { context: String, source: io::Error },
    #[error("{context}")]
    Csv { context: String, source: csv::Error },
    /// `line` 0: about the file as a whole.
    #[error("{}{reason}", if *line > 0 { format!("line {line}: ") } else { String::new() })]
    Format { line: u64, reason: String },
    #[error("{path}: {error}")]
    InFile { path: String, error: Box<PostalDataError> },
}

impl PostalDataError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }

    fn format(line: u64, reason: impl Into<String>) -> Self {
        Self::Format { line, reason: reason.into() }
    }

    /// Says which file a format error is in (I/O and CSV errors name it already).
    pub(crate) fn in_file(self, path: &std::path::Path) -> Self {
        match self {
            Self::Format { .. } => Self::InFile { path: path.display().to_string(), error: Box::new(self) },
            other => other,
        }
    }
}

/// A byte range of `PostalTable::text`. Empty means absent for `note` (a note is never empty).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
struct Span {
    start: u32,
    end: u32,
}

/// 都道府県 and 市区町村 with their readings: about 1,900 distinct ones, shared by all rows.
type Area = [Span; 4];

#[derive(Clone, Copy)]
struct Row {
    area: u32,
    town: Span,
    town_kana: Span,
    note: Span,
}

/// Every area code of Japan Post's table, sorted, for lookups by code.
#[derive(Default)]
pub struct PostalTable {
    /// One entry per row, sorted, so all rows of a code are adjacent (in source order).
    codes: Vec<u32>,
    rows: Vec<Row>,
    areas: Vec<Area>,
    text: String,
    distinct_codes: usize,
}

impl std::fmt::Debug for PostalTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostalTable").field("codes", &self.distinct_codes).field("addresses", &self.rows.len()).finish()
    }
}

static EMBEDDED_TABLE: LazyLock<PostalTable> = LazyLock::new(|| match PostalTable::parse(EMBEDDED) {
    Ok(table) => table,
    Err(error) => {
        // The tests read this very file, so this means a broken build. The form still works
        // with every field typed by hand, so lookups find nothing rather than the server failing.
        tracing::error!(
            event = "postal_table_unreadable",
            error = format!("{:#}", anyhow::Error::from(error)),
            "the bundled postal-code table cannot be read"
        );
        PostalTable::default()
    }
});

impl PostalTable {
    /// The table compiled into the binary, decoded on first use (about 0.15 s in a release
    /// build, 0.5 s in a debug one; about 9 MiB resident afterwards) and kept for the life of
    /// the process. Call it once at start-up to keep that delay out of the first lookup.
    pub fn embedded() -> &'static PostalTable {
        &EMBEDDED_TABLE
    }

    /// Reads a gzip-compressed table file (the format of `assets/postal/ken_all.tsv.gz`).
    pub fn parse(gzipped: &[u8]) -> Result<PostalTable, PostalDataError> {
        Self::from_reader(gzipped)
    }

    /// Like `parse`, from a reader (a `File`, say).
    pub fn from_reader(reader: impl Read) -> Result<PostalTable, PostalDataError> {
        let mut text = String::new();
        GzDecoder::new(reader)
            .take(MAX_TSV_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(PostalDataError::io("decompressing the postal-code table"))?;
        if text.len() as u64 > MAX_TSV_BYTES {
            return Err(PostalDataError::format(0, format!("the table is larger than {MAX_TSV_BYTES} bytes")));
        }
        Self::from_tsv(&text)
    }

    fn from_tsv(text: &str) -> Result<PostalTable, PostalDataError> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(PostalDataError::format(1, format!("expected the header line {HEADER:?}")));
        }
        let mut builder = Builder::default();
        for (index, line) in lines.enumerate() {
            let line_number = index as u64 + 2;
            let Some([code, fields @ ..]) = split_tabs::<8>(line) else {
                return Err(PostalDataError::format(line_number, "expected 8 tab-separated columns"));
            };
            let Some(code) = parse_code(code) else {
                return Err(PostalDataError::format(line_number, format!("{code:?} is not a 7-digit postal code")));
            };
            builder.push(code, fields).map_err(|reason| PostalDataError::format(line_number, reason))?;
        }
        Ok(builder.finish())
    }

    /// Builds a table from addresses (in any order; the order within a code is kept).
    pub(crate) fn from_addresses(addresses: &[PostalAddress]) -> Result<PostalTable, PostalDataError> {
        let mut builder = Builder::default();
        for (index, address) in addresses.iter().enumerate() {
            let line = index as u64 + 1;
            let Some(code) = parse_code(&address.postal_code) else {
                return Err(PostalDataError::format(line, format!("{:?} is not a 7-digit postal code", address.postal_code)));
            };
            let fields = [
                address.prefecture.as_str(),
                &address.city,
                &address.town,
                &address.prefecture_kana,
                &address.city_kana,
                &address.town_kana,
                address.note.as_deref().unwrap_or(""),
            ];
            // The file is one line per address and one column per field.
            if let Some(bad) = fields.iter().find(|f| f.contains(['\t', '\n', '\r'])) {
                return Err(PostalDataError::format(line, format!("{bad:?} contains a tab or a line break")));
            }
            builder.push(code, fields).map_err(|reason| PostalDataError::format(line, reason))?;
        }
        Ok(builder.finish())
    }

    /// Every address for a postal code of 7 ASCII digits (normalise user input first, e.g. with
    /// `values::fields::postal_code`). Empty if the code is unknown or not 7 digits.
    pub fn lookup(&self, code: &str) -> Vec<PostalAddress> {
        let Some(code) = parse_code(code) else { return Vec::new() };
        self.range_of(code).map(|index| self.address(index)).collect()
    }

    /// The answer of `GET /api/v1/postal-codes/{code}`: `PostalAnswer` as JSON, byte for byte as
    /// serde writes it, but straight from the table's text, without building the addresses and
    /// their nine strings each. `None` if the code is unknown or not 7 ASCII digits.
    pub fn answer_json(&self, code: &str) -> Option<String> {
        let range = self.range_of(parse_code(code)?);
        if range.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(48 + 480 * range.len());
        out.push_str("{\"postal_code\":\"");
        out.push_str(code);
        out.push_str("\",\"addresses\":[");
        for index in range {
            if !out.ends_with('[') {
                out.push(',');
            }
            out.push_str("{\"postal_code\":\"");
            out.push_str(code);
            out.push('"');
            let [prefecture, city, town, prefecture_kana, city_kana, town_kana, note] = self.fields(index);
            let named = [
                ("prefecture", prefecture),
                ("city", city),
                ("town", town),
                ("prefecture_kana", prefecture_kana),
                ("city_kana", city_kana),
                ("town_kana", town_kana),
            ];
            for (name, value) in named {
                out.push_str(",\"");
                out.push_str(name);
                out.push_str("\":");
                push_json_string(&mut out, value);
            }
            out.push_str(",\"note\":");
            if note.is_empty() {
                out.push_str("null");
            } else {
                push_json_string(&mut out, note);
            }
            out.push('}');
        }
        out.push_str("]}");
        Some(out)
    }

    /// Number of distinct postal codes.
    pub fn len(&self) -> usize {
        self.distinct_codes
    }

    pub fn is_empty(&self) -> bool {
        self.distinct_codes == 0
    }

    /// Number of addresses (rows); larger than `len` because some codes have several.
    pub fn address_count(&self) -> usize {
        self.rows.len()
    }

    /// Every address, by postal code and, within a code, in Japan Post's order.
    pub fn iter(&self) -> impl Iterator<Item = PostalAddress> + '_ {
        (0..self.rows.len()).map(|index| self.address(index))
    }

    /// Writes the table as uncompressed TSV, header included: the content of the bundled file.
    pub fn write_tsv(&self, out: impl Write) -> io::Result<()> {
        let mut out = io::BufWriter::new(out);
        writeln!(out, "{HEADER}")?;
        for index in 0..self.rows.len() {
            let [prefecture, city, town, prefecture_kana, city_kana, town_kana, note] = self.fields(index);
            let code = self.codes[index];
            writeln!(out, "{code:07}\t{prefecture}\t{city}\t{town}\t{prefecture_kana}\t{city_kana}\t{town_kana}\t{note}")?;
        }
        out.flush()
    }

    /// Row ranges of each code, in code order.
    pub(crate) fn code_ranges(&self) -> impl Iterator<Item = (u32, Range<usize>)> + '_ {
        let mut start = 0;
        self.codes.chunk_by(|a, b| a == b).map(move |chunk| {
            let range = start..start + chunk.len();
            start = range.end;
            (chunk[0], range)
        })
    }

    /// The seven text fields of a row (the note as "" when there is none).
    pub(crate) fn fields(&self, index: usize) -> [&str; 7] {
        let row = &self.rows[index];
        let [prefecture, city, prefecture_kana, city_kana] = self.areas[row.area as usize];
        [
            self.str(prefecture),
            self.str(city),
            self.str(row.town),
            self.str(prefecture_kana),
            self.str(city_kana),
            self.str(row.town_kana),
            self.str(row.note),
        ]
    }

    fn range_of(&self, code: u32) -> Range<usize> {
        let start = self.codes.partition_point(|&c| c < code);
        let end = start + self.codes[start..].partition_point(|&c| c == code);
        start..end
    }

    fn address(&self, index: usize) -> PostalAddress {
        let [prefecture, city, town, prefecture_kana, city_kana, town_kana, note] = self.fields(index);
        PostalAddress {
            postal_code: format!("{:07}", self.codes[index]),
            prefecture: prefecture.to_string(),
            city: city.to_string(),
            town: town.to_string(),
            prefecture_kana: prefecture_kana.to_string(),
            city_kana: city_kana.to_string(),
            town_kana: town_kana.to_string(),
            note: (!note.is_empty()).then(|| note.to_string()),
        }
    }

    fn str(&self, span: Span) -> &str {
        self.text.get(span.start as usize..span.end as usize).unwrap_or_default()
    }
}

/// `"0600000"` → `600000`; anything but exactly seven ASCII digits → `None`.
fn parse_code(code: &str) -> Option<u32> {
    if code.len() == 7 && code.bytes().all(|b| b.is_ascii_digit()) { code.parse().ok() } else { None }
}

fn split_tabs<const N: usize>(line: &str) -> Option<[&str; N]> {
    let mut parts = line.split('\t');
    let mut fields = [""; N];
    for field in &mut fields {
        *field = parts.next()?;
    }
    if parts.next().is_some() { None } else { Some(fields) }
}

/// Collects rows, storing each distinct string once.
#[derive(Default)]
struct Builder<'a> {
    strings: HashMap<&'a str, Span>,
    areas: HashMap<Area, u32>,
    rows: Vec<(u32, Row)>,
    table: PostalTable,
}

impl<'a> Builder<'a> {
    /// `fields`: prefecture, city, town, prefecture_kana, city_kana, town_kana, note ("" = none).
    fn push(&mut self, code: u32, fields: [&'a str; 7]) -> Result<(), String> {
        let [prefecture, city, town, prefecture_kana, city_kana, town_kana, note] = fields;
        let area = [self.intern(prefecture)?, self.intern(city)?, self.intern(prefecture_kana)?, self.intern(city_kana)?];
        let next_area = u32::try_from(self.table.areas.len()).map_err(|_| "too many areas")?;
        let area = *self.areas.entry(area).or_insert_with(|| {
            self.table.areas.push(area);
            next_area
        });
        let row = Row { area, town: self.intern(town)?, town_kana: self.intern(town_kana)?, note: self.intern(note)? };
        self.rows.push((code, row));
        Ok(())
    }

    fn intern(&mut self, value: &'a str) -> Result<Span, String> {
        if let Some(span) = self.strings.get(value) {
            return Ok(*span);
        }
        let text = &mut self.table.text;
        let start = u32::try_from(text.len()).map_err(|_| "the table text exceeds 4 GiB")?;
        text.push_str(value);
        let end = u32::try_from(text.len()).map_err(|_| "the table text exceeds 4 GiB")?;
        let span = Span { start, end };
        self.strings.insert(value, span);
        Ok(span)
    }

    fn finish(mut self) -> PostalTable {
        // Stable, so the rows of one code keep their source order.
        self.rows.sort_by_key(|(code, _)| *code);
        let mut table = self.table;
        table.codes = self.rows.iter().map(|(code, _)| *code).collect();
        table.rows = self.rows.into_iter().map(|(_, row)| row).collect();
        table.distinct_codes = table.codes.chunk_by(|a, b| a == b).count();
        table.text.shrink_to_fit();
        table.areas.shrink_to_fit();
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(code: &str) -> PostalAddress {
        let found = PostalTable::embedded().lookup(code);
        assert_eq!(found.len(), 1, "{code}: {found:?}");
        found.into_iter().next().expect("one address")
    }

    fn places(found: &[PostalAddress]) -> Vec<(&str, &str, &str)> {
        found.iter().map(|a| (a.prefecture.as_str(), a.city.as_str(), a.town.as_str())).collect()
    }

    #[test]
    fn embedded_table_has_every_area_code() {
        let table = PostalTable::embedded();
        assert_eq!(table.len(), 120_720);
        assert_eq!(table.address_count(), 124_526);
        assert!(!table.is_empty());
        let prefectures: std::collections::BTreeSet<String> = table.iter().map(|a| a.prefecture).collect();
        assert_eq!(prefectures.len(), 47);
        assert!(crate::values::fields::PREFECTURES.iter().all(|p| prefectures.contains(*p)));
    }

    #[test]
    fn shibuya_with_its_note() {
        let shibuya = one("1500002");
        assert_eq!((shibuya.prefecture.as_str(), shibuya.city.as_str(), shibuya.town.as_str()), ("東京都", "渋谷区", "渋谷"));
        assert_eq!(
            (shibuya.prefecture_kana.as_str(), shibuya.city_kana.as_str(), shibuya.town_kana.as_str()),
            ("トウキョウト", "シブヤク", "シブヤ")
        );
        assert_eq!(shibuya.note.as_deref(), Some("次のビルを除く"));
        assert_eq!(shibuya.postal_code, "1500002");
    }

    #[test]
    fn rest_of_municipality_has_an_empty_town() {
        let sapporo = one("0600000");
        assert_eq!(places(std::slice::from_ref(&sapporo)), [("北海道", "札幌市中央区", "")]);
        assert_eq!(sapporo.town_kana, "");
        assert_eq!(sapporo.note.as_deref(), Some("以下に掲載がない場合"));
    }

    #[test]
    fn parenthesised_notes_are_split_out() {
        let building = one("1006090");
        assert_eq!(building.town, "霞が関霞が関ビル");
        assert_eq!(building.note.as_deref(), Some("地階・階層不明"));
        let odori = one("0600042");
        assert_eq!((odori.town.as_str(), odori.town_kana.as_str()), ("大通西", "オオドオリニシ"));
        assert_eq!(odori.note.as_deref(), Some("1〜19丁目"));
        let floor = one("4506201");
        assert_eq!((floor.town.as_str(), floor.note.as_deref()), ("名駅ミッドランドスクエア", Some("高層棟1階")));
        let kyoto = one("6028368");
        assert_eq!((kyoto.town.as_str(), kyoto.town_kana.as_str()), ("北町", "キタマチ"));
        assert!(
            kyoto.note.as_deref().is_some_and(|n| n.starts_with("上の下立売通天神道西入上る、") && n.ends_with("御前通西裏下立売上る"))
        );
    }

    #[test]
    fn a_code_with_several_towns_returns_all() {
        let found = PostalTable::embedded().lookup("0360103");
        let towns: Vec<&str> = found.iter().map(|a| a.town.as_str()).collect();
        assert_eq!(towns, ["本町北柳田", "本町富岡", "本町西宮", "本町平野", "本町南柳田", "本町村元"]);
        assert!(found.iter().all(|a| a.prefecture == "青森県" && a.city == "平川市" && a.postal_code == "0360103"));
    }

    #[test]
    fn codes_spanning_municipalities_and_prefectures() {
        let table = PostalTable::embedded();
        assert_eq!(places(&table.lookup("4980000")), [("愛知県", "弥富市", ""), ("三重県", "桑名郡木曽岬町", "")]);
        assert_eq!(places(&table.lookup("6180000")), [("京都府", "乙訓郡大山崎町", ""), ("大阪府", "三島郡島本町", "")]);
        assert_eq!(table.lookup("9850000").len(), 3);
    }

    #[test]
    fn hamamatsu_wards_of_2024() {
        let table = PostalTable::embedded();
        let cities: Vec<String> = table.lookup("4320000").into_iter().map(|a| a.city).collect();
        assert_eq!(cities, ["浜松市中央区", "浜松市浜名区", "浜松市天竜区"]);
        assert_eq!(places(&table.lookup("4300801")), [("静岡県", "浜松市中央区", "神立町")]);
        assert!(table.iter().all(|a| !a.city.starts_with("浜松市中区")), "the pre-2024 wards are gone");
    }

    #[test]
    fn iwate_chiwari_and_whole_village_codes() {
        let table = PostalTable::embedded();
        let nishiwaga = table.lookup("0295503");
        assert_eq!(nishiwaga[0].town, "穴明");
        assert_eq!(nishiwaga[0].note.as_deref(), Some("22地割、穴明23地割"));
        let taneichi = one("0287915");
        assert_eq!((taneichi.town.as_str(), taneichi.town_kana.as_str()), ("種市", "タネイチ"));
        assert_eq!(taneichi.note.as_deref(), Some("第15地割〜第21地割(鹿糠、小路合、緑町、大久保、高取)"));
        let toshima = one("1000301");
        assert_eq!((toshima.city.as_str(), toshima.town.as_str(), toshima.note.as_deref()), ("利島村", "", None));
        let kosuge = one("4090142");
        assert_eq!((kosuge.town.as_str(), kosuge.note.as_deref()), ("", Some("小菅村の次に1〜663番地がくる場合")));
        assert_eq!(one("5220317").town, "一円", "a place really called 一円 keeps its name");
    }

    #[test]
    fn text_is_normalised() {
        let half_width_kana = |c: char| ('\u{FF61}'..='\u{FF9F}').contains(&c);
        let full_width_ascii = |c: char| ('\u{FF01}'..='\u{FF5E}').contains(&c);
        let katakana = |c: char| matches!(c, '\u{30A1}'..='\u{30FA}' | 'ー' | '・' | '、') || c.is_ascii_alphanumeric() || c == '-';
        for address in PostalTable::embedded().iter() {
            let fields =
                [&address.prefecture, &address.city, &address.town, &address.prefecture_kana, &address.city_kana, &address.town_kana];
            assert!(fields.iter().all(|f| !f.chars().any(|c| half_width_kana(c) || full_width_ascii(c))), "{address:?}");
            let kana = [&address.prefecture_kana, &address.city_kana, &address.town_kana];
            assert!(kana.iter().all(|k| k.chars().all(katakana)), "{address:?}");
            assert!(!address.town.contains(['(', ')', '（', '）']), "{address:?}");
            assert_ne!(address.note.as_deref(), Some(""));
        }
    }

    #[test]
    fn malformed_codes_find_nothing() {
        let table = PostalTable::embedded();
        for code in ["", "150-0002", "150000", "15000021", "１５００００２", "abcdefg", "9999999"] {
            assert!(table.lookup(code).is_empty(), "{code}");
        }
    }

    #[test]
    fn tsv_round_trip() {
        let table = PostalTable::embedded();
        let mut tsv = Vec::new();
        table.write_tsv(&mut tsv).expect("write");
        let again = PostalTable::from_tsv(std::str::from_utf8(&tsv).expect("UTF-8")).expect("parse");
        assert_eq!(again.len(), table.len());
        assert!(again.iter().eq(table.iter()));
    }

    #[test]
    fn rejects_malformed_files() {
        let header = format!("{HEADER}\n");
        let error = |text: &str| PostalTable::from_tsv(text).expect_err("malformed").to_string();
        assert!(error("code\tprefecture\n").starts_with("line 1:"));
        assert!(error(&format!("{header}1500002\t東京都\n")).starts_with("line 2: expected 8"));
        assert!(error(&format!("{header}150-002\t東京都\t渋谷区\t渋谷\tトウキョウト\tシブヤク\tシブヤ\t\n")).contains("not a 7-digit"));
        assert!(PostalTable::parse(b"not gzip").is_err());
        let empty = PostalTable::from_tsv(&header).expect("header only");
        assert!(empty.is_empty() && empty.lookup("1500002").is_empty());
    }

    #[test]
    fn from_addresses_keeps_source_order_within_a_code() {
        let address = |code: &str, town: &str| PostalAddress {
            postal_code: code.into(),
            prefecture: "東京都".into(),
            city: "千代田区".into(),
            town: town.into(),
            prefecture_kana: "トウキョウト".into(),
            city_kana: "チヨダク".into(),
            town_kana: String::new(),
            note: None,
        };
        let table =
            PostalTable::from_addresses(&[address("1000002", "b"), address("1000001", "z"), address("1000002", "a")]).expect("build");
        assert_eq!((table.len(), table.address_count()), (2, 3));
        let towns: Vec<String> = table.lookup("1000002").into_iter().map(|a| a.town).collect();
        assert_eq!(towns, ["b", "a"]);
        assert!(PostalTable::from_addresses(&[address("1000001", "a\tb")]).is_err());
    }
}
