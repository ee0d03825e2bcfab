//! CSV export of a filtered 登録一覧 (operators only): UTF-8 with a BOM so Excel opens it as
//! UTF-8, or Shift_JIS (CP932) on request. Rows are read in keyset batches and written to the
//! response as they come, so a million rows never sit in memory. Cells that a spreadsheet would
//! take for a formula (`=`, `+`, `-`, `@`, tab, CR first) are prefixed with `'`. Each export is
//! audited when it starts — who, which filters (not their values) and the encoding.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use encoding_rs::{EncoderResult, SHIFT_JIS};
use futures_util::stream;

use super::filters::{Filters, RawFilters, inventory_label, region_label};
use super::query::{Cursor, Direction, ListRow, fetch_page};
use crate::admin::actor::Role;
use crate::admin::audit;
use crate::admin::error::AdminError;
use crate::admin::session::AdminSession;
use crate::db::Db;
use crate::http::error::error_page;
use crate::state::AppState;
use crate::values::fields::display_postal_code;
use crate::values::jst;

/// Rows per database round trip.
pub const BATCH_ROWS: i64 = 5000;

pub const HEADER: [&str; 18] = [
    "受付番号",
    "登録日時（日本時間）",
    "姓",
    "名",
    "セイ",
    "メイ",
    "メールアドレス",
    "メール確認",
    "電話番号",
    "生年月日",
    "郵便番号",
    "都道府県",
    "市区町村",
    "番地",
    "建物名",
    "プラン",
    "在庫確認",
    "地域確認",
];

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/registrations/export.csv", get(export))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Cp932,
}

impl Encoding {
    fn parse(raw: &str) -> Option<Encoding> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "" | "utf8" | "utf-8" => Some(Encoding::Utf8),
            "cp932" | "sjis" | "shift_jis" | "windows-31j" => Some(Encoding::Cp932),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf8",
            Encoding::Cp932 => "cp932",
        }
    }
}

/// A cell a spreadsheet would read as a formula (or a DDE call) gets a leading `'` (OWASP CSV
/// injection).
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}").into() } else { cell.into() }
}

/// Characters that JIS X 0208 and Microsoft's CP932 map differently (the 「〜」 problem): the
/// JIS form is written as the CP932 one, which Excel shows as the same glyph.
fn cp932_variant(c: char) -> char {
    match c {
        '\u{301C}' => '\u{FF5E}', // WAVE DASH → FULLWIDTH TILDE
        '\u{2016}' => '\u{2225}', // DOUBLE VERTICAL LINE → PARALLEL TO
        '\u{2212}' => '\u{FF0D}', // MINUS SIGN → FULLWIDTH HYPHEN-MINUS
        '\u{2014}' => '\u{2015}', // EM DASH → HORIZONTAL BAR
        '\u{00A2}' => '\u{FFE0}',
        '\u{00A3}' => '\u{FFE1}',
        '\u{00AC}' => '\u{FFE2}',
        other => other,
    }
}

/// CP932 bytes of every BMP character (0: none), built once from encoding_rs's Shift_JIS
/// encoder (the WHATWG one, i.e. Microsoft's CP932 with the NEC and IBM extensions). encoding_rs
/// does not optimise legacy encoders for speed; a table keeps a million-row export fast.
fn cp932_table() -> &'static [u16] {
    static TABLE: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = vec![0u16; 0x10000];
        let mut buf = [0u8; 8];
        for (code, slot) in table.iter_mut().enumerate().skip(0x80) {
            let Some(c) = char::from_u32(code as u32) else { continue };
            let mut utf8 = [0u8; 4];
            let mut encoder = SHIFT_JIS.new_encoder();
            let (result, _, written) = encoder.encode_from_utf8_without_replacement(c.encode_utf8(&mut utf8), &mut buf, true);
            *slot = match (result, written) {
                (EncoderResult::InputEmpty, 1) => u16::from(buf[0]),
                (EncoderResult::InputEmpty, 2) => u16::from_be_bytes([buf[0], buf[1]]),
                _ => 0,
            };
        }
        table
    })
}

/// UTF-8 text as CP932; a character CP932 lacks becomes `?`.
pub fn to_cp932(text: &str, out: &mut Vec<u8>) {
    let table = cp932_table();
    out.reserve(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c as u8);
            continue;
        }
        let c = cp932_variant(c);
        match table.get(c as usize).copied().unwrap_or(0) {
            0 => out.push(b'?'),
            one if one < 0x100 => out.push(one as u8),
            two => out.extend_from_slice(&two.to_be_bytes()),
        }
    }
}

fn write_rows(rows: &[ListRow], plans: &HashMap<String, String>, header: bool) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::with_capacity(rows.len() * 256));
    if header {
        writer.write_record(HEADER)?;
    }
    for row in rows {
        let created = jst::date_time(row.created_at);
        let birth = row.birth_date.to_string();
        let postal = display_postal_code(&row.postal_code);
        let verified = if row.email_verified_at.is_some() { "確認済み" } else { "未確認" };
        let plan = plans.get(&row.plan_id).map_or(row.plan_id.as_str(), |p| p.as_str());
        let cells = [
            row.registration_number.as_str(),
            &created,
            &row.family_name,
            &row.given_name,
            &row.family_name_kana,
            &row.given_name_kana,
            &row.email,
            verified,
            &row.phone,
            &birth,
            &postal,
            &row.prefecture,
            &row.city,
            &row.street,
            &row.building,
            plan,
            inventory_label(&row.inventory_status),
            region_label(&row.region_status),
        ];
        writer.write_record(cells.iter().map(|c| neutralise(c).into_owned()))?;
    }
    writer.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

struct ExportState {
    db: Db,
    filters: Filters,
    plans: Arc<HashMap<String, String>>,
    encoding: Encoding,
    cursor: Option<Cursor>,
    started: bool,
    done: bool,
}

impl ExportState {
    /// The next chunk of the file: the header (with a BOM in UTF-8) and the first batch, then a
    /// batch per call; `None` at the end.
    async fn next_chunk(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.done {
            return None;
        }
        let direction = match self.cursor {
            Some(cursor) => Direction::After(cursor),
            None => Direction::First,
        };
        let (rows, more) = match fetch_page(&self.db, &self.filters, &direction, BATCH_ROWS).await {
            Ok(page) => page,
            Err(err) => {
                self.done = true;
                tracing::error!(event = "admin_export_failed", error = %err, "CSV export stopped: database error");
                return Some(Err(std::io::Error::other(err)));
            }
        };
        self.cursor = rows.last().map(ListRow::cursor);
        self.done = !more;
        let header = !self.started;
        self.started = true;
        let text = match write_rows(&rows, &self.plans, header) {
            Ok(text) => text,
            Err(err) => {
                self.done = true;
                return Some(Err(std::io::Error::other(err)));
            }
        };
        let bytes = match self.encoding {
            Encoding::Utf8 if header => [&b"\xEF\xBB\xBF"[..], &text].concat(),
            Encoding::Utf8 => text,
            Encoding::Cp932 => {
                let mut out = Vec::with_capacity(text.len());
                to_cp932(&String::from_utf8_lossy(&text), &mut out);
                out
            }
        };
        Some(Ok(Bytes::from(bytes)))
    }
}

async fn export(session: AdminSession, State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, AdminError> {
    session.require(Role::Operator)?;
    let raw = RawFilters::from_query(query.as_deref());
    let Some(encoding) = Encoding::parse(&raw.encoding) else {
        return Ok(error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "文字コードを確認してください",
            "文字コードは utf8（UTF-8）または cp932（Shift_JIS）を指定してください。",
        ));
    };
    let filters = match Filters::parse(&raw) {
        Ok(filters) => filters,
        Err(errors) => return Ok(error_page(StatusCode::UNPROCESSABLE_ENTITY, "検索条件を確認してください", &errors.join(" "))),
    };
    if session.read_only {
        // Every export is recorded in the audit log, which lives on the writer.
        let mut response = error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "ただいまCSV出力を停止しています",
            "CSV出力は監査ログへの記録が必要なため、データベース（書き込み）の復旧後にご利用ください。一覧・検索はこのままご覧いただけます。",
        );
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(crate::http::writer_gate::RETRY_AFTER_SECS));
        return Ok(response);
    }
    audit::record(
        &state.db,
        Some(&session.user),
        "registrations.export",
        "users",
        serde_json::json!({ "encoding": encoding.as_str(), "filters": filters.summary() }),
    )
    .await?;
    tracing::info!(event = "admin_export", admin = %session.user.email, encoding = encoding.as_str(), "CSV export started");
    let plans = Arc::new(state.catalog.plans.iter().map(|p| (p.id.clone(), p.name.clone())).collect());
    let export = ExportState { db: state.reads().clone(), filters, plans, encoding, cursor: None, started: false, done: false };
    let body = Body::from_stream(stream::unfold(export, |mut export| async move {
        let chunk = export.next_chunk().await?;
        Some((chunk, export))
    }));
    let filename = format!("registrations-{}.csv", jst::compact_date(jst::today()));
    let content_type = match encoding {
        Encoding::Utf8 => "text/csv; charset=utf-8",
        Encoding::Cp932 => "text/csv; charset=Shift_JIS",
    };
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")).map_err(anyhow::Error::from)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        for cell in ["=1+1", "+81", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralise(cell), format!("'{cell}"));
        }
        assert_eq!(neutralise("山田"), "山田");
        assert_eq!(neutralise("a=b"), "a=b");
    }

    #[test]
    fn cp932_replaces_what_it_lacks() {
        let mut out = Vec::new();
        to_cp932("山田①髙😀〜−", &mut out);
        let (text, _, _) = SHIFT_JIS.decode(&out);
        assert_eq!(text, "山田①髙?～－");
        // The table agrees with encoding_rs on ordinary text.
        let sample = "受付番号,ｶﾀｶﾅ,東京都渋谷区渋谷２丁目,髙橋﨑,Ⅱ№㈱";
        let mut ours = Vec::new();
        to_cp932(sample, &mut ours);
        assert_eq!(ours, SHIFT_JIS.encode(sample).0.into_owned());
    }
}
