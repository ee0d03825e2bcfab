//! ダッシュボード (`GET /admin`): the runbook's morning figures on one page — registrations today
//! and over the last 7 Japanese days (a bar chart drawn here as inline SVG), the completion rate by
//! the runbook's definition, the funnel and where people drop off, the fields that fail validation
//! most, active flows, the external APIs, pending mail and the manual-review queue.
//!
//! Every figure comes from the queries the ops report and the metrics already use (`ops::stats`,
//! `metrics`, `mail::worker`), each a range or partial-index read. The aggregates over days of
//! data (registrations, completion rate, funnel, field errors) still read tens of thousands of
//! rows at scale, so each instance computes them at most once per `DASHBOARD_CACHE_SECS` (30 s)
//! and every operator in between gets the same figures; the live ones (active flows, queues,
//! APIs) are read on every request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use askama::Template;
use axum::Extension;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use time::{Date, OffsetDateTime};

use super::badges::{circuit_label, health_label};
use super::error::AdminError;
use super::layout::{Layout, Section};
use super::session::AdminSession;
use crate::http::error::render;
use crate::ops::stats;
use crate::state::AppState;
use crate::values::form::{Step, fields_of};
use crate::values::jst;

/// The dashboard, with this instance's cache of its aggregates (kept for `cache_for`).
pub fn routes(cache_for: Duration) -> Router<AppState> {
    Router::new().route("/admin", get(dashboard)).layer(Extension(Arc::new(Cache::new(cache_for))))
}

/// The aggregates over days of data, and when they were computed.
pub struct Aggregates {
    daily: Vec<stats::DayCount>,
    completion: stats::Completion,
    funnel: stats::Funnel,
    errors: Vec<stats::FieldErrors>,
    computed_at: OffsetDateTime,
}

/// One instance's copy of the aggregates. The lock is held while they are computed, so requests
/// arriving meanwhile wait for that result instead of running the same queries again.
pub struct Cache {
    ttl: Duration,
    slot: tokio::sync::Mutex<Option<(Instant, Arc<Aggregates>)>>,
}

impl Cache {
    pub fn new(ttl: Duration) -> Cache {
        Cache { ttl, slot: tokio::sync::Mutex::new(None) }
    }

    async fn get(&self, db: &crate::db::Db, today: Date) -> Result<Arc<Aggregates>, sqlx::Error> {
        let mut slot = self.slot.lock().await;
        if let Some((at, aggregates)) = slot.as_ref()
            && at.elapsed() < self.ttl
            && jst::date_of(aggregates.computed_at) == today
        {
            return Ok(aggregates.clone());
        }
        let since = jst::start_of_day(today - time::Duration::days(DAYS - 1));
        let (daily, completion, funnel, errors) = tokio::try_join!(
            stats::daily_registrations_jst(db, since),
            stats::completion_rate(db, 1),
            stats::funnel_since(db, since),
            stats::top_field_errors(db, DAYS as i32, 5),
        )?;
        let aggregates = Arc::new(Aggregates { daily, completion, funnel, errors, computed_at: OffsetDateTime::now_utc() });
        *slot = Some((Instant::now(), aggregates.clone()));
        Ok(aggregates)
    }
}

/// How many days the chart, the funnel and the error table cover (today included).
const DAYS: i64 = 7;

/// One bar of the registrations chart, positioned in SVG user units.
struct Bar {
    x: u32,
    y: u32,
    height: u32,
    text_x: u32,
    label: String,
    count: String,
    title: String,
    today: bool,
}

/// Chart geometry (viewBox 0 0 CHART_WIDTH CHART_HEIGHT).
const CHART_WIDTH: u32 = 700;
const CHART_HEIGHT: u32 = 190;
const BAR_WIDTH: u32 = 56;
const PLOT_TOP: u32 = 28;
const PLOT_BOTTOM: u32 = 160;

struct FunnelRow {
    label: &'static str,
    reached: String,
    share: String,
    /// Percent of the flows started, 0..=100, for the small bar.
    width: u32,
    /// Who stopped at this stage (reached it but not the next).
    dropped: String,
    dropped_share: String,
}

struct ErrorRow {
    step: String,
    field: String,
    count: String,
}

struct ApiRow {
    name: &'static str,
    health: &'static str,
    health_class: &'static str,
    circuit: &'static str,
    circuit_class: &'static str,
    forced: bool,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    layout: Layout,
    today: String,
    today_count: String,
    week_count: String,
    bars: Vec<Bar>,
    chart_width: u32,
    chart_height: u32,
    baseline: u32,
    bar_width: u32,
    completion_rate: String,
    completion_completed: String,
    completion_total: String,
    funnel: Vec<FunnelRow>,
    /// The stage most people leave at, with how many, when anyone left.
    worst_drop: Option<(&'static str, String, String)>,
    errors: Vec<ErrorRow>,
    /// When the aggregates above were computed (JST, HH:MM:SS), and how long they are reused.
    aggregated_at: String,
    cache_secs: u64,
    active_flows: String,
    apis: Vec<ApiRow>,
    mail_pending: String,
    mail_failed: String,
    reviews_pending: String,
}

/// `1234567` → `1,234,567`.
fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(part: i64, whole: i64) -> f64 {
    if whole > 0 { part as f64 * 100.0 / whole as f64 } else { 0.0 }
}

/// The 7 days ending today with their counts (0 where the query has no row), oldest first.
fn week(today: Date, counts: &[stats::DayCount]) -> Vec<(Date, i64)> {
    (0..DAYS)
        .rev()
        .map(|back| {
            let day = today - time::Duration::days(back);
            let key = day.to_string();
            (day, counts.iter().find(|c| c.day == key).map_or(0, |c| c.registrations))
        })
        .collect()
}

fn bars(days: &[(Date, i64)], today: Date) -> Vec<Bar> {
    let max = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let slot = CHART_WIDTH / days.len().max(1) as u32;
    days.iter()
        .enumerate()
        .map(|(i, (day, n))| {
            let height = ((*n as f64 / max as f64) * f64::from(PLOT_BOTTOM - PLOT_TOP)).round() as u32;
            // A day with registrations always shows at least a sliver.
            let height = if *n > 0 { height.max(2) } else { 0 };
            let x = i as u32 * slot + (slot - BAR_WIDTH) / 2;
            let label = format!("{}/{}", u8::from(day.month()), day.day());
            Bar {
                x,
                y: PLOT_BOTTOM - height,
                height,
                text_x: x + BAR_WIDTH / 2,
                title: format!("{label}: {}件", grouped(*n)),
                label,
                count: grouped(*n),
                today: *day == today,
            }
        })
        .collect()
}

/// The Japanese label of a form field as the form shows it.
fn field_label(step: &str, field: &str) -> String {
    let from_form = Step::from_slug(step)
        .and_then(|s| fields_of(s).find(|f| f.name == field))
        .or_else(|| Step::ALL.into_iter().find_map(|s| fields_of(s).find(|f| f.name == field)))
        .map(|f| f.label);
    let label = from_form.or(match field {
        "plan_id" => Some("プラン"),
        "agree" => Some("利用規約・個人情報の取扱いへの同意"),
        "email_confirm" => Some("メールアドレス（確認用）"),
        _ => None,
    });
    label.map_or_else(|| field.to_string(), str::to_string)
}

fn step_label(step: &str) -> String {
    Step::from_slug(step).map_or_else(|| step.to_string(), |s| s.title().to_string())
}

fn funnel_rows(funnel: &stats::Funnel) -> (Vec<FunnelRow>, Option<(&'static str, String, String)>) {
    let stages: [(&'static str, i64); 5] = [
        ("お客様情報（開始）", funnel.started),
        ("ご住所", funnel.customer),
        ("プランの選択", funnel.address),
        ("確認", funnel.plan),
        ("登録完了", funnel.completed),
    ];
    let mut rows = Vec::with_capacity(stages.len());
    let mut worst: Option<(&'static str, i64)> = None;
    for (i, (label, reached)) in stages.iter().enumerate() {
        let next = stages.get(i + 1).map(|(_, n)| *n);
        let dropped = next.map(|n| (reached - n).max(0));
        if let Some(d) = dropped
            && d > 0
            && worst.is_none_or(|(_, w)| d > w)
        {
            worst = Some((label, d));
        }
        rows.push(FunnelRow {
            label,
            reached: grouped(*reached),
            share: format!("{:.1}%", percent(*reached, funnel.started)),
            width: percent(*reached, funnel.started).round().clamp(0.0, 100.0) as u32,
            dropped: dropped.map(grouped).unwrap_or_default(),
            dropped_share: dropped.map(|d| format!("{:.1}%", percent(d, *reached))).unwrap_or_default(),
        });
    }
    let worst = worst.map(|(label, d)| {
        let reached = stages.iter().find(|(l, _)| *l == label).map_or(0, |(_, n)| *n);
        (label, grouped(d), format!("{:.1}%", percent(d, reached)))
    });
    (rows, worst)
}

async fn dashboard(
    State(state): State<AppState>,
    Extension(cache): Extension<Arc<Cache>>,
    session: AdminSession,
) -> Result<Response, AdminError> {
    let db = state.reads();
    let today = jst::today();
    let (aggregates, (active_flows, reviews_pending), (mail_pending, mail_failed)) = tokio::try_join!(
        cache.get(db, today),
        crate::metrics::active_flows_and_pending_reviews(db),
        crate::mail::worker::pending_and_failed(db),
    )?;
    let days = week(today, &aggregates.daily);
    let (funnel, worst_drop) = funnel_rows(&aggregates.funnel);
    let completion = &aggregates.completion;
    let apis = state
        .apis
        .statuses(&state.config)
        .into_iter()
        .map(|s| {
            let (health, health_class) = health_label(s.status);
            let (circuit, circuit_class) = circuit_label(s.circuit);
            ApiRow { name: s.api.as_str(), health, health_class, circuit, circuit_class, forced: s.forced_fallback }
        })
        .collect();
    let page = DashboardPage {
        layout: Layout::new(&session, Section::Dashboard),
        today: jst::japanese_date(today),
        today_count: grouped(days.last().map_or(0, |(_, n)| *n)),
        week_count: grouped(days.iter().map(|(_, n)| n).sum()),
        bars: bars(&days, today),
        chart_width: CHART_WIDTH,
        chart_height: CHART_HEIGHT,
        baseline: PLOT_BOTTOM,
        bar_width: BAR_WIDTH,
        completion_rate: completion.rate_text(),
        completion_completed: grouped(completion.completed),
        completion_total: grouped(completion.total_sessions),
        funnel,
        worst_drop,
        aggregated_at: jst::time_of_day(aggregates.computed_at),
        cache_secs: state.config.dashboard_cache.as_secs(),
        errors: aggregates
            .errors
            .iter()
            .map(|e| ErrorRow { field: field_label(&e.step, &e.field), step: step_label(&e.step), count: grouped(e.count) })
            .collect(),
        active_flows: grouped(active_flows),
        apis,
        mail_pending: grouped(mail_pending),
        mail_failed: grouped(mail_failed),
        reviews_pending: grouped(reviews_pending),
    };
    Ok(render(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(grouped(-1234), "-1,234");
    }

    #[test]
    fn the_week_is_seven_japanese_days_ending_today_with_gaps_filled() {
        let today = time::macros::date!(2026 - 11 - 29);
        let counts = vec![
            stats::DayCount { day: "2026-11-23".into(), registrations: 4 },
            stats::DayCount { day: "2026-11-29".into(), registrations: 2 },
        ];
        let days = week(today, &counts);
        assert_eq!(days.len(), 7);
        assert_eq!(days[0], (time::macros::date!(2026 - 11 - 23), 4));
        assert_eq!(days[3].1, 0);
        assert_eq!(days[6], (today, 2));
        let bars = bars(&days, today);
        assert_eq!(bars[0].height, PLOT_BOTTOM - PLOT_TOP, "the largest day fills the plot");
        assert_eq!(bars[6].height, (PLOT_BOTTOM - PLOT_TOP) / 2);
        assert_eq!(bars[3].height, 0);
        assert!(bars[6].today && !bars[5].today);
        assert_eq!(bars[6].label, "11/29");
    }

    #[test]
    fn fields_have_their_form_labels() {
        assert_eq!(field_label("customer", "phone"), "電話番号");
        assert_eq!(field_label("address", "postal_code"), "郵便番号");
        assert_eq!(field_label("plan", "plan_id"), "プラン");
        assert_eq!(field_label("customer", "unknown_field"), "unknown_field");
        assert_eq!(step_label("address"), "ご住所");
    }

    #[test]
    fn the_worst_drop_is_the_stage_most_people_leave_at() {
        let funnel = stats::Funnel { started: 10, customer: 8, address: 3, plan: 3, completed: 2 };
        let (rows, worst) = funnel_rows(&funnel);
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[1].dropped, "5");
        assert_eq!(worst, Some(("ご住所", "5".to_string(), "62.5%".to_string())));
        let (_, none) = funnel_rows(&stats::Funnel { started: 0, customer: 0, address: 0, plan: 0, completed: 0 });
        assert_eq!(none, None);
    }
}
